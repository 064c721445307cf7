"""A memoizing decorator for the embedded screen's loaders that is safe under threads.

The screen runs in thread pools (library documents, variants, personal fields). `functools.lru_cache` does not
hold other callers back while the first call computes, so every pool thread that arrived before the first load
finished loaded the weights again: at the start of a sample run, eight threads each unpacked the n-gram model
(about 1.3 s of the segmentation run on the 2-core machine). Here the first caller loads and the others wait
for its result."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Loader(Protocol[T_co]):
    """What `load_once` makes of a loader: the loader, and its cache's `cache_clear` and `cache_info`."""

    def __call__(self, *args: Any) -> T_co: ...

    def cache_clear(self) -> None: ...

    def cache_info(self) -> Any: ...


def load_once(maxsize: int = 1) -> Callable[[Callable[..., T]], Loader[T]]:
    """`lru_cache(maxsize)` whose computation runs once per key even when threads ask at the same time.
    `cache_clear` and `cache_info` are the cache's own."""

    def decorate(function: Callable[..., T]) -> Loader[T]:
        cached = lru_cache(maxsize=maxsize)(function)
        lock = threading.RLock()  # re-entrant: a loader may ask another key of itself

        @wraps(function)
        def loader(*args: Any) -> T:
            with lock:
                return cached(*args)

        loader.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        loader.cache_info = cached.cache_info  # type: ignore[attr-defined]
        return loader  # type: ignore[return-value]  # a function with the two attributes just set

    return decorate
