"""The embedded screen's loaders load once, however many screening threads ask for them first."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from personalization_assets.embedded import classifier, model
from personalization_assets.embedded.loading import load_once


def test_threads_arriving_together_share_one_load():
    loads = []
    arrived = threading.Barrier(8)

    @load_once()
    def weights() -> object:
        loads.append(threading.get_ident())
        time.sleep(0.05)  # a load long enough for every other thread to ask meanwhile
        return object()

    def ask(_: int) -> object:
        arrived.wait()
        return weights()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(ask, range(8)))
    assert len(loads) == 1
    assert all(result is results[0] for result in results)
    weights.cache_clear()  # type: ignore[attr-defined]
    assert weights() is not results[0] and len(loads) == 2


def test_keys_are_cached_apart_and_a_loader_may_call_itself():
    @load_once(maxsize=4)
    def table(language: str) -> str:
        return language.upper() if language == "en" else table("en") + language

    assert table("de") == "ENde"
    assert table("en") == "EN"
    assert table.cache_info().currsize == 2  # type: ignore[attr-defined]


def test_a_cold_start_under_threads_loads_each_shipped_model_once():
    # With a plain lru_cache each thread that asked before the first load finished got a model of its own.
    for loader in (model.screen_model, classifier.embedding_classifier):
        loader.cache_clear()  # type: ignore[attr-defined]
        arrived = threading.Barrier(6)

        def ask(_: int, loader=loader, arrived=arrived) -> object:
            arrived.wait()
            return loader()

        with ThreadPoolExecutor(max_workers=6) as pool:
            loaded = list(pool.map(ask, range(6)))
        assert loaded[0] is not None and all(m is loaded[0] for m in loaded)
