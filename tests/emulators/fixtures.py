"""Function-scoped pytest fixtures yielding running emulators (plain HTTP and TLS variants).

Each yields the emulator object: ``.endpoint``, ``.api_key``, ``.token``, ``.ca_bundle_path`` (TLS only),
``.requests``, ``.inject(...)``, ``.reset()``. Starting one takes milliseconds (the TLS certificate is
generated once per test process). Registered via ``pytest_plugins`` in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .content_safety import ContentSafetyEmulator
from .openai_responses import OpenAIResponsesEmulator
from .search import SearchEmulator


@pytest.fixture
def search_emulator() -> Iterator[SearchEmulator]:
    with SearchEmulator() as emulator:
        yield emulator


@pytest.fixture
def search_emulator_tls() -> Iterator[SearchEmulator]:
    with SearchEmulator(tls=True) as emulator:
        yield emulator


@pytest.fixture
def openai_emulator() -> Iterator[OpenAIResponsesEmulator]:
    with OpenAIResponsesEmulator() as emulator:
        yield emulator


@pytest.fixture
def openai_emulator_tls() -> Iterator[OpenAIResponsesEmulator]:
    with OpenAIResponsesEmulator(tls=True) as emulator:
        yield emulator


@pytest.fixture
def content_safety_emulator() -> Iterator[ContentSafetyEmulator]:
    with ContentSafetyEmulator() as emulator:
        yield emulator


@pytest.fixture
def content_safety_emulator_tls() -> Iterator[ContentSafetyEmulator]:
    with ContentSafetyEmulator(tls=True) as emulator:
        yield emulator
