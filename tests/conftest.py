"""Shared pytest fixtures. Service emulators live in tests/emulators (real HTTP on 127.0.0.1)."""

pytest_plugins = ["tests.emulators.fixtures"]
