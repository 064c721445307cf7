"""A real azure-core token credential that hands out a fixed token, for the Entra-ID paths of the SDKs.

    cred = StaticTokenCredential(search_emulator_tls.token)
    SearchClient(emu.endpoint, "idx", cred, connection_verify=emu.ca_bundle_path)
    # openai: AzureOpenAI(..., azure_ad_token_provider=get_bearer_token_provider(cred, COGNITIVE_SCOPE))
    assert cred.calls >= 1 and cred.scopes[-1] == ("https://search.azure.com/.default",)

It implements both ``TokenCredential.get_token`` and ``SupportsTokenInfo.get_token_info`` (azure-core 1.41
prefers the latter) and counts calls, so tests can prove a token path was really taken.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
SEARCH_SCOPE = "https://search.azure.com/.default"


class StaticTokenCredential:
    """TokenCredential / SupportsTokenInfo returning ``token``, valid for ``lifetime_seconds`` from each
    call."""

    def __init__(self, token: str, lifetime_seconds: int = 3600):
        if not token:
            raise ValueError("StaticTokenCredential needs a non-empty token")
        self.token = token
        self.lifetime_seconds = lifetime_seconds
        self._lock = threading.Lock()
        self.calls = 0
        self.scopes: list[tuple[str, ...]] = []

    def _record(self, scopes: tuple[str, ...]) -> int:
        with self._lock:
            self.calls += 1
            self.scopes.append(scopes)
        return int(time.time()) + self.lifetime_seconds

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return AccessToken(self.token, self._record(scopes))

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        return AccessTokenInfo(self.token, self._record(scopes))

    def close(self) -> None:
        """Nothing to release; present because SupportsTokenInfo is a context manager protocol."""

    def __enter__(self) -> StaticTokenCredential:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
