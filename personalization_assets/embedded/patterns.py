"""The embedded screen's regular expressions, compiled once per process in a cache of their own.

Python's `re` functions keep one cache of 512 compiled patterns for the whole process and drop the oldest when it
is full. The screen matches several hundred large patterns (word lists in alternations, 3-10 ms each to compile),
and pandas', Dagster's and the other stages' patterns share that cache: screening the sample library filled it and
recompiled the screen's patterns again and again (about a third of the screen's time). These functions take the
same arguments as `re.search`, `re.finditer`, ... and compile through an LRU cache that only the screen uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache

# Static patterns number in the hundreds; the rest are built per text (a group named in it) and may be dropped.
CACHE_SIZE = 4096


@lru_cache(maxsize=CACHE_SIZE)
def compiled(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


def search(pattern: str, string: str, flags: int = 0) -> re.Match[str] | None:
    return compiled(pattern, flags).search(string)


def match(pattern: str, string: str, flags: int = 0) -> re.Match[str] | None:
    return compiled(pattern, flags).match(string)


def fullmatch(pattern: str, string: str, flags: int = 0) -> re.Match[str] | None:
    return compiled(pattern, flags).fullmatch(string)


def findall(pattern: str, string: str, flags: int = 0) -> list:
    return compiled(pattern, flags).findall(string)


def finditer(pattern: str, string: str, flags: int = 0) -> Iterator[re.Match[str]]:
    return compiled(pattern, flags).finditer(string)


def sub(pattern: str, repl: str | Callable[[re.Match[str]], str], string: str, count: int = 0, flags: int = 0) -> str:
    return compiled(pattern, flags).sub(repl, string, count)


def split(pattern: str, string: str, maxsplit: int = 0, flags: int = 0) -> list:
    return compiled(pattern, flags).split(string, maxsplit)
