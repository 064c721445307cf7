"""Shared pytest fixtures. Service emulators live in tests/emulators (real HTTP on 127.0.0.1)."""

pytest_plugins = ["tests.emulators.fixtures"]

import pytest

from tests.emulators.identity import ManagedIdentityEndpoint


@pytest.fixture
def managed_identity(monkeypatch):
    """Route azure-identity's managed-identity flow to a local token endpoint; yields it (its `.token`)."""
    with ManagedIdentityEndpoint() as endpoint:
        for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
                     "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", endpoint.secret_header)
        yield endpoint
