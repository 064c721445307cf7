"""Reading and validating the customer table (CSV or Parquet).

Validation is vectorized: each rule is a boolean mask over the whole column, and the error names the column, the
problem and the first offending rows by their line number in the file (header = line 1) or row number in Parquet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from personalization_assets.lib.frames import ARROW_STRING, arrow_to_pandas
from personalization_assets.lib.privacy import hash_customer_id

ID_COLUMN = "customer_id"
TEXT_COLUMNS = ("location", "tier")
# (column, lower bound, upper bound, integer-valued)
NUMERIC_RULES: dict[str, tuple[float, float, bool]] = {
    "age": (13, 120, True),
    "purchase_frequency": (0, np.inf, False),
    "avg_order_value": (0, np.inf, False),
    "last_engagement_days": (0, np.inf, False),
    "historical_open_rate": (0, 1, False),
    "historical_click_rate": (0, 1, False),
}
REQUIRED_COLUMNS = (ID_COLUMN, "age", "location", "tier", *[c for c in NUMERIC_RULES if c != "age"])
NUMERIC_FEATURES = tuple(NUMERIC_RULES)

# A CSV row longer than this is refused instead of being read into memory (pyarrow reads in blocks of this size).
MAX_CSV_LINE_BYTES = 16 * 1024 * 1024
# Line lengths are checked in chunks of this size before parsing, so the check's memory stays bounded.
LINE_SCAN_CHUNK_BYTES = 1024 * 1024
MAX_EXAMPLES = 5


class CustomerDataError(ValueError):
    """The customer file cannot be used; the message names the file, the column and the offending rows."""


@dataclass
class ValidationResult:
    valid: pd.DataFrame
    # One row per rejected input row: line, customer_id, reasons, and the raw values.
    rejected: pd.DataFrame
    problems: list[str] = field(default_factory=list)


def read_customer_file(path: str | Path) -> pd.DataFrame:
    """Read every column as text (types are checked by `validate_customers`) and add the source `_line`."""
    path = Path(path)
    if not path.exists():
        raise CustomerDataError(f"{path}: customer file not found")
    if path.is_dir():
        raise CustomerDataError(f"{path}: expected a customer file (.csv or .parquet), found a folder")
    if path.stat().st_size == 0:
        raise CustomerDataError(f"{path}: the file is empty (expected a header row and customer rows)")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as error:
            raise CustomerDataError(f"{path}: not a readable Parquet file ({error})") from None
        frame = arrow_to_pandas(table)
        first_line = 1  # Parquet has no header line: rows are numbered from 1
    elif suffix in {".csv", ".txt"}:
        frame = _read_csv_as_text(path)
        first_line = 2  # line 1 is the header
    else:
        raise CustomerDataError(f"{path}: unsupported file type '{suffix}' (use .csv or .parquet)")
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.insert(0, "_line", np.arange(first_line, first_line + len(frame)))
    return frame


def _read_csv_as_text(path: Path) -> pd.DataFrame:
    header = _read_header(path)
    _refuse_overlong_lines(path)
    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=MAX_CSV_LINE_BYTES, use_threads=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in header}, strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as error:
        message = str(error)
        if "straddling" in message or "block" in message.lower():
            raise CustomerDataError(
                f"{path}: a line is longer than {_size(MAX_CSV_LINE_BYTES)}; "
                "the file is not a well-formed customer CSV"
            ) from None
        if "UTF8" in message or "UTF-8" in message:
            raise CustomerDataError(f"{path}: {_utf8_problem(path)}") from None
        raise CustomerDataError(f"{path}: malformed CSV ({message})") from None
    return arrow_to_pandas(table)


def _size(count: int) -> str:
    mib = 1024 * 1024
    return f"{count // mib} MiB" if count % mib == 0 else f"{count:,} bytes"


def _refuse_overlong_lines(path: Path) -> None:
    """Raise CustomerDataError naming the first line longer than MAX_CSV_LINE_BYTES, reading in small chunks.

    pyarrow alone does not enforce the limit: a row may straddle one block boundary, so rows up to twice the
    block size are read into memory. The scan stops at the first overlong line, so memory stays bounded by the
    chunk size whatever the line length.
    """
    limit = MAX_CSV_LINE_BYTES
    line_start = 0  # file offset of the current line's first byte
    complete_lines = 0  # lines ended before the current one
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(LINE_SCAN_CHUNK_BYTES):
            ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == ord("\n")) + offset
            starts = np.concatenate(([line_start], ends[:-1] + 1))
            overlong = np.flatnonzero(ends - starts > limit)
            if overlong.size:
                number = complete_lines + int(overlong[0]) + 1
                raise CustomerDataError(
                    f"{path}: a line is longer than {_size(limit)} (line {number}); "
                    "the file is not a well-formed customer CSV"
                )
            if ends.size:
                complete_lines += ends.size
                line_start = int(ends[-1]) + 1
            offset += len(chunk)
            if offset - line_start > limit:  # the current line already exceeds the limit: stop reading
                raise CustomerDataError(
                    f"{path}: a line is longer than {_size(limit)} (line {complete_lines + 1}); "
                    "the file is not a well-formed customer CSV"
                )


def _read_header(path: Path) -> list[str]:
    with path.open("rb") as handle:
        raw = handle.readline(MAX_CSV_LINE_BYTES + 1)
    if len(raw) > MAX_CSV_LINE_BYTES:
        raise CustomerDataError(f"{path}: the header line is longer than {MAX_CSV_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CustomerDataError(f"{path}: {_utf8_problem(path)}") from None
    names = [name.strip().strip('"') for name in text.rstrip("\r\n").split(",")]
    if not any(names):
        raise CustomerDataError(f"{path}: the first line is empty (expected a header row)")
    return names


def _utf8_problem(path: Path) -> str:
    """Find the first line with bytes that are not UTF-8 (only runs on the error path)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                return f"line {number} is not valid UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1})"
    return "the file is not valid UTF-8"


def _line_examples(lines: pd.Series, values: pd.Series | None = None) -> str:
    shown = []
    for position in range(min(MAX_EXAMPLES, len(lines))):
        item = f"line {lines.iloc[position]}"
        if values is not None:
            item += f" ({values.iloc[position]!r})"
        shown.append(item)
    more = f" and {len(lines) - MAX_EXAMPLES} more" if len(lines) > MAX_EXAMPLES else ""
    return ", ".join(shown) + more


def check_columns(columns: Iterable[str], source: str, allow_extra: bool) -> None:
    columns = [c for c in columns if c != "_line"]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    extra = [c for c in columns if c not in REQUIRED_COLUMNS]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    if duplicated:
        problems.append(f"duplicated column(s): {', '.join(duplicated)}")
    if extra and not allow_extra:
        problems.append(
            f"unexpected column(s): {', '.join(extra)} (set validation.extra_columns: drop in "
            "config/pipeline.yaml to ignore them)"
        )
    if problems:
        raise CustomerDataError(
            f"{source}: " + "; ".join(problems) + f". Expected columns: {', '.join(REQUIRED_COLUMNS)}"
        )


def validate_customers(
    raw: pd.DataFrame, source: str, on_invalid_rows: str = "fail", allow_extra_columns: bool = False
) -> ValidationResult:
    """Check columns, types, ranges and ids; return typed valid rows and rejected rows with reasons.

    With `on_invalid_rows="fail"` any invalid row raises `CustomerDataError`; with `"quarantine"` invalid rows are
    returned in `rejected` and the valid ones go on.
    """
    if "_line" not in raw.columns:
        raw = raw.assign(_line=np.arange(2, len(raw) + 2))
    check_columns(list(raw.columns), source, allow_extra_columns)
    if raw.empty:
        raise CustomerDataError(f"{source}: the file has a header but no customer rows")

    frame = pd.DataFrame({"_line": raw["_line"].to_numpy()})
    reasons = pd.Series("", index=raw.index, dtype=object)
    problems: list[str] = []

    def reject(mask: pd.Series, column: str, problem: str, values: pd.Series | None = None) -> None:
        mask = mask.fillna(False).astype(bool)
        if not mask.any():
            return
        problems.append(
            f"column '{column}': {problem} — {int(mask.sum())} row(s), first: "
            f"{_line_examples(raw.loc[mask, '_line'], None if values is None else values[mask])}"
        )
        reasons.loc[mask] = reasons.loc[mask] + f"{column}: {problem}; "

    ids = raw[ID_COLUMN].astype(ARROW_STRING).str.strip()
    reject(ids.isna() | (ids == ""), ID_COLUMN, "empty id")
    duplicated = ids.duplicated(keep=False) & ids.notna() & (ids != "")
    # Ids are shown as pseudonyms: errors end up in logs and the Dagster UI (the line numbers find the rows).
    reject(duplicated, ID_COLUMN, "duplicate id", ids[duplicated].map(hash_customer_id).reindex(ids.index))
    frame[ID_COLUMN] = ids.to_numpy()

    for column in TEXT_COLUMNS:
        text = raw[column].astype(ARROW_STRING).str.strip()
        reject(text.isna() | (text == ""), column, "empty value")
        frame[column] = text.to_numpy()

    for column, (low, high, integer) in NUMERIC_RULES.items():
        original = raw[column]
        if pd.api.types.is_numeric_dtype(original) and not pd.api.types.is_bool_dtype(original):
            numbers = original.astype("float64")
            not_numeric = pd.Series(False, index=raw.index)
        else:
            text = original.astype(ARROW_STRING).str.strip()
            numbers = pd.to_numeric(text, errors="coerce").astype("float64")
            not_numeric = (
                numbers.isna()
                & text.notna()
                & (text != "")
                & ~text.str.lower().isin(["nan", "inf", "-inf", "+inf", "infinity", "-infinity"])
            )
        reject(not_numeric, column, "not a number", original)
        missing = numbers.isna() & ~not_numeric
        reject(missing, column, "missing value (empty or NaN)", original)
        infinite = np.isinf(numbers)
        reject(infinite, column, "infinite value", original)
        finite = numbers.notna() & ~infinite
        bounds = f"[{low:g}, {high:g}]" if np.isfinite(high) else f">= {low:g}"
        reject(
            finite & ((numbers < low) | (numbers > high)),
            column,
            f"out of range (allowed {bounds})",
            original,
        )
        if integer:
            reject(finite & (numbers % 1 != 0), column, "not a whole number", original)
        frame[column] = numbers.to_numpy()

    invalid = (reasons != "").to_numpy()
    rejected = pd.DataFrame(
        {
            "line": raw["_line"].to_numpy()[invalid],
            "customer_id": ids.to_numpy()[invalid],
            "reasons": reasons.to_numpy()[invalid],
        }
    )
    rejected["reasons"] = rejected["reasons"].str.rstrip("; ")
    if problems and on_invalid_rows == "fail":
        raise CustomerDataError(f"{source}: {len(rejected)} invalid row(s)\n  - " + "\n  - ".join(problems))

    valid = frame.loc[~invalid].drop(columns="_line").reset_index(drop=True)
    valid["age"] = valid["age"].astype("int64")
    valid = valid[list(REQUIRED_COLUMNS)]
    if valid.empty:
        raise CustomerDataError(f"{source}: no valid customer rows remain after quarantining {len(rejected)}")
    return ValidationResult(valid=valid, rejected=rejected, problems=problems)
