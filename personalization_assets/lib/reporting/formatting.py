"""Formatting for the report (what a marketing lead reads: percentages, percentage points, plain numbers),
the metrics' display labels, and ``DisplayTable``: a table whose cells are already text."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import SupportsFloat, SupportsIndex

import numpy as np
import pandas as pd

METRIC_LABELS = {"open": "open rate", "click": "click rate", "conversion": "conversion rate"}
METRIC_EVENTS = {"open": "opens", "click": "clicks", "conversion": "conversions"}
METRIC_VERBS = {"open": "open", "click": "click", "conversion": "convert"}
POOLED_LABEL = "All segments (pooled)"


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float | np.floating) and math.isnan(float(value)))


def _number(value: object) -> float | None:
    """A cell as a float; None when it is missing (None, NA, NaN). Raises TypeError, as float() does, for a
    value that is not a number or a numeric string."""
    if _missing(value):
        return None
    if isinstance(value, str | bytes | SupportsFloat | SupportsIndex):
        return float(value)
    raise TypeError(f"float() argument must be a string or a real number, not {type(value).__name__!r}")


def fmt_pct(value: object, digits: int = 1) -> str:
    number = _number(value)
    return "–" if number is None else f"{number * 100:.{digits}f}%"


MINUS = "\u2212"  # a typographic minus: "−0.45" reads (and aligns) better than a hyphen


def _signed(value: float, digits: int) -> str:
    value = round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0: a rounded zero never shows as "−0.00"
    return f"{value:+.{digits}f}".replace("-", MINUS)


def fmt_pp(value: object, digits: int = 1, unit: bool = True) -> str:
    """A difference of two rates in percentage points, signed."""
    number = _number(value)
    return "–" if number is None else _signed(number * 100, digits) + (" pp" if unit else "")


def fmt_ci_pp(low: object, high: object, digits: int = 1, unit: bool = True) -> str:
    low_number, high_number = _number(low), _number(high)
    if low_number is None or high_number is None:
        return "–"
    return f"{_signed(low_number * 100, digits)} to {_signed(high_number * 100, digits)}" + (" pp" if unit else "")


def fmt_rel(value: object) -> str:
    number = _number(value)
    return "–" if number is None else _signed(number * 100, 0) + "%"


def fmt_p(value: object) -> str:
    number = _number(value)
    if number is None:
        return "–"
    return "<0.001" if number < 0.001 else f"{number:.3f}"


def fmt_prob(value: object) -> str:
    number = _number(value)
    if number is None:
        return "–"
    if number > 0.999:
        return ">99.9%"
    if number < 0.001:
        return "<0.1%"
    return f"{number * 100:.0f}%" if 0.01 <= number <= 0.99 else f"{number * 100:.1f}%"


def fmt_int(value: object) -> str:
    number = _number(value)
    return "–" if number is None else f"{int(round(number)):,}"


def fmt_money(value: object, digits: int = 2) -> str:
    number = _number(value)
    return "–" if number is None else f"${number:,.{digits}f}"


def _parse_json_list(value: object) -> list:
    """A JSON text column (citations, reasons, ...) as a list; lists already parsed and NULLs are accepted."""
    if isinstance(value, list | tuple | np.ndarray):
        return list(value)
    if _missing(value) or value == "":
        return []
    parsed = json.loads(value) if isinstance(value, str) else value
    return list(parsed) if isinstance(parsed, list | tuple) else [parsed]


@dataclass(frozen=True)
class DisplayTable:
    """A formatted table for the report: every cell is already text; ``numeric`` columns are right-aligned."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: frozenset[str] = frozenset()
    # (row, column) cells to emphasize, e.g. significant results.
    strong: frozenset[tuple[int, int]] = frozenset()

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        numeric: Sequence[str] = (),
        strong: frozenset[tuple[int, int]] = frozenset(),
    ) -> DisplayTable:
        rows = tuple(tuple(str(v) for v in row) for row in frame.itertuples(index=False, name=None))
        return cls(tuple(str(c) for c in frame.columns), rows, frozenset(numeric), strong)

    def to_markdown(self) -> str:
        frame = pd.DataFrame(list(self.rows), columns=list(self.columns))
        # A Markdown cell is one line: the line breaks that stack a cell in HTML become spaces.
        return frame.replace("\n", " ", regex=True).to_markdown(index=False, disable_numparse=True)

    def __len__(self) -> int:
        return len(self.rows)


def _bool(series: pd.Series) -> pd.Series:
    return series.astype("boolean").fillna(False).astype(bool)
