"""Authentication and endpoint rules shared by the Azure-backed resources.

- `managed_identity` (preferred in Azure): azure-identity's ManagedIdentityCredential; `default_credential` uses
  DefaultAzureCredential (developer logins, workload identity, ...). Both are Entra ID bearer tokens.
- `api_key`: the key is read from a named environment variable when the client is built. Errors name the variable,
  never its value.
- Endpoints must be HTTPS; plain HTTP is accepted only for loopback hosts (local emulators, Ollama, vLLM).
"""

import re
import threading
import time
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from dagster import EnvVar
from pydantic import BaseModel, ConfigDict, Field

AuthMode = Literal["managed_identity", "default_credential", "api_key"]
COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
SEARCH_SCOPE = "https://search.azure.com/.default"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
ENV_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

if TYPE_CHECKING:  # azure.core is imported when an Azure client is built (~70 ms a process on the embedded path)
    from azure.core.credentials import TokenCredential


class MissingCredentialError(RuntimeError):
    """A selected backend needs a credential that is not configured; the message names the setting."""


class InsecureEndpointError(ValueError):
    """A non-loopback endpoint is not HTTPS."""


class AzureAuthConfig(BaseModel):
    """How an Azure resource authenticates (shared field set, embedded in each service's config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    auth: AuthMode = "managed_identity"
    api_key_env: str = Field(default="", description="environment variable holding the API key (auth: api_key)")
    managed_identity_client_id: str | None = Field(
        default=None, description="client id of a user-assigned managed identity (system-assigned when unset)"
    )


def _shown(endpoint: str) -> str:
    """The endpoint for an error message: without user:password@ and query (where secrets could be)."""
    parsed = urlparse(endpoint)
    host = parsed.netloc.rpartition("@")[2]
    if not parsed.scheme:
        return "a value without a scheme (not shown)"
    return repr(f"{parsed.scheme}://{host}{parsed.path}")


def require_secure_endpoint(endpoint: str, setting: str) -> str:
    """Return the endpoint without a trailing slash; refuse plain HTTP except on loopback, and credentials in
    the URL. Messages never repeat credentials or a query string."""
    if not endpoint:
        raise MissingCredentialError(f"{setting} is not set: the endpoint of the selected Azure backend is required")
    parsed = urlparse(endpoint)
    if "@" in parsed.netloc:
        raise InsecureEndpointError(
            f"{setting} must not carry credentials (user:password@host), got {_shown(endpoint)}: "
            "use the auth settings (managed identity or an API key variable)"
        )
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise InsecureEndpointError(f"{setting} must be an http(s) URL, got {_shown(endpoint)}")
    if parsed.scheme == "http" and parsed.hostname not in LOOPBACK_HOSTS:
        raise InsecureEndpointError(
            f"{setting} must use https:// (plain http is allowed only for 127.0.0.1/localhost), got {_shown(endpoint)}"
        )
    return endpoint.rstrip("/")


def read_api_key(env_var: str, setting: str) -> str:
    if not env_var:
        raise MissingCredentialError(f"{setting} is not set: auth is api_key but no environment variable is named")
    if not ENV_VAR_NAME.fullmatch(env_var):
        # Most likely the key itself was pasted here: never repeat it.
        raise MissingCredentialError(
            f"{setting} must name an environment variable (letters, digits, underscores), not hold the key: "
            "put the key in an environment variable and name that variable here"
        )
    value = EnvVar(env_var).get_value() or ""
    if not value.strip():
        raise MissingCredentialError(
            f"environment variable {env_var} (named by {setting}) is not set or empty: the API key for the "
            "selected Azure backend is required"
        )
    return value.strip()


class SerializedTokenCredential:
    """A token credential that asks its inner credential for one token at a time and reuses it until five
    minutes before it expires. azure-core's (sync) bearer-token policy does not serialize token requests: the
    first calls of a resource's concurrent workers would each ask the identity endpoint (IMDS, which throttles)
    for a token of their own."""

    REFRESH_MARGIN_SECONDS = 300

    def __init__(self, inner: Any):
        self._inner = inner
        self._lock = threading.Lock()
        self._tokens: dict[tuple, Any] = {}

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        key = (scopes, tuple(sorted((k, str(v)) for k, v in kwargs.items())))
        with self._lock:
            token = self._tokens.get(key)
            if token is None or token.expires_on - self.REFRESH_MARGIN_SECONDS <= time.time():
                token = self._tokens[key] = self._inner.get_token(*scopes, **kwargs)
            return token

    def close(self) -> None:
        self._inner.close()


def token_credential(mode: AuthMode, managed_identity_client_id: str | None = None) -> SerializedTokenCredential:
    """An Entra ID token credential for `mode` (imported lazily: azure-identity is only needed for Azure)."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    inner: TokenCredential
    if mode == "managed_identity":
        inner = (
            ManagedIdentityCredential(client_id=managed_identity_client_id)
            if managed_identity_client_id
            else ManagedIdentityCredential()
        )
    elif mode == "default_credential":
        inner = DefaultAzureCredential(
            managed_identity_client_id=managed_identity_client_id, exclude_interactive_browser_credential=True
        )
    else:
        raise ValueError(f"auth mode {mode!r} does not use a token credential")
    return SerializedTokenCredential(inner)
