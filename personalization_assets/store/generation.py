"""The generation stage's cache of model answers (warehouse table llm_response_cache), on the one WarehouseCache."""

import json
import threading

from personalization_assets.lib.generation import stable_hash
from personalization_assets.store.cache import WarehouseCache
from resources.llm import GenerationRequest, GenerationResult, LLMResource
from resources.warehouse import DuckDBWarehouse

CACHE_TABLE = "llm_response_cache"
# The GenerationResult fields a cached answer keeps (not `cached`, `extra`; only complete answers are stored).
_STORED_FIELDS = ("text", "parsed", "structured", "input_tokens", "output_tokens", "latency_ms", "model", "backend")


class ResponseCache:
    """Model answers keyed by (backend, model, prompt, parameters), as JSON in llm_response_cache.

    New answers are held in memory and written by `flush()` in one transaction, so a failed partition stores
    nothing. Only complete answers are stored: a refusal or a filtered prompt is asked again on the next run.
    """

    def __init__(self, warehouse: DuckDBWarehouse | None, enabled: bool = True):
        self._cache = WarehouseCache(warehouse, CACHE_TABLE, enabled=enabled)
        # Lookups come from the generation threads; WarehouseCache mixes read-only and read-write DuckDB
        # connections, which DuckDB refuses to open at the same time in one process.
        self._lookup_lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._cache.enabled

    @staticmethod
    def key(llm: LLMResource, request: GenerationRequest) -> str:
        messages = [(message.role, message.content) for message in request.messages]
        return stable_hash(
            llm.backend_name, llm.model_name, request.instructions, messages, request.parameters(), length=64
        )

    def get(self, key: str) -> GenerationResult | None:
        with self._lookup_lock:
            payload = self._cache.get(key)
        if payload is None:
            return None
        return GenerationResult(**json.loads(payload), cached=True)

    def put(self, key: str, result: GenerationResult) -> None:
        if not result.stop:
            stored = {name: getattr(result, name) for name in _STORED_FIELDS}
            self._cache.put(key, result.backend, json.dumps(stored, ensure_ascii=False))

    def flush(self) -> int:
        """Write the new answers; returns how many were stored."""
        return self._cache.flush()
