"""Reading and validating the customer table (CSV, gzip/zstd-compressed CSV, or Parquet).

What is unambiguous is accepted as written: headers in any case or spacing (`Customer_ID`, `customer id`), a
UTF-8 byte-order mark, numbers written as text when they parse exactly, Excel's trailing empty rows. What is
ambiguous is refused with a diagnosis (a `;`- or tab-delimited file, a decimal comma). Nothing is changed
silently: ids are read as text exactly as written (leading zeros kept, integer ids never become `1.0`); float32
values are read at the precision they were written at (see `exact_float64`).

Validation is vectorized: each rule is a boolean mask over the whole column. Every refusal is one `InputError`
naming the file, the line (header = line 1; Parquet rows are numbered from 1), the column, the customer as a
pseudonym (never a raw value: messages end up in logs and the Dagster UI) and the fix. In quarantine mode the
rejected rows keep their raw values in the `customers_quarantine` table.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from personalization_assets.lib.frames import ARROW_STRING, arrow_to_pandas, distinct_count, each_once_on_both_sides
from personalization_assets.lib.inputs import InputError, canonical_name
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
# Columns of `customers_quarantine`: the line, the id, the reasons, each column's value as written, and the raw
# text of a line that could not be split into fields.
QUARANTINE_COLUMNS = ("line", ID_COLUMN, "reasons", *REQUIRED_COLUMNS[1:], "raw_row")
_BY_CANONICAL = {canonical_name(c): c for c in REQUIRED_COLUMNS}

# Delimiters `customers.delimiter` may name, and how messages call them.
DELIMITERS = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
# Compressed CSV, by the last suffix of the file name.
COMPRESSION = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2"}
CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
QUARANTINE_FIX = "or set validation.on_invalid_rows: quarantine in config/pipeline.yaml to load the valid rows"

# A CSV row longer than this is refused instead of being read into memory (pyarrow reads in blocks of this size).
MAX_CSV_LINE_BYTES = 16 * 1024 * 1024
# Line lengths are checked in chunks of this size before parsing, so the check's memory stays bounded.
LINE_SCAN_CHUNK_BYTES = 1024 * 1024
MAX_EXAMPLES = 3
# Lines of the file's head read to recognise the header (and a `sep=` line, and decimal commas on a diagnosis).
HEAD_LINES = 50
# A rejected row's reason for a number written with a comma (12,5 or 1,200): which one it is cannot be told.
# 12,5 / 1.234,5 / 1 234,5 / 1,234.50 (RE2 syntax; the spaces include no-break and narrow no-break).
COMMA_NUMBER = "[+-]?(?:[\\d.' \u00a0\u202f]*\\d,\\d+|\\d{1,3}(?:,\\d{3})+\\.\\d+)"
DECIMAL_COMMA = "decimal comma or thousands separator (write numbers with a '.' decimal point, no separators)"


@dataclass
class CustomerFile:
    """A customer file as read: every column as written (CSV: text), under its documented name, plus `_line`."""

    frame: pd.DataFrame
    source: str
    # Rows with the wrong number of fields: line, fields, raw_row (the raw text, kept for the quarantine only).
    malformed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"line": [], "fields": [], "raw_row": []}))
    empty_rows: int = 0  # rows with no value at all (Excel's trailing `,,,,` rows, blank lines): skipped
    written_names: dict[str, list[str]] = field(default_factory=dict)  # column -> headers as written


@dataclass
class ValidationResult:
    valid: pd.DataFrame
    # One row per rejected input row: line, customer_id, reasons, the raw values of each column, raw_row.
    rejected: pd.DataFrame
    # One line per problem (column, problem, count, first lines, customers as pseudonyms): safe to log.
    problems: list[str] = field(default_factory=list)
    empty_rows: int = 0
    # Columns beyond the documented schema that the load ignored (validation.extra_columns: drop), as written.
    ignored_columns: list[str] = field(default_factory=list)


# --- reading ------------------------------------------------------------------------------------------------


def read_customer_file(path: str | Path, delimiter: str = ",") -> CustomerFile:
    """Read the customer file as written (no type conversion yet); `validate_customers` checks it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: customer file not found; set PERSONALIZATION_CUSTOMERS or settings.customers_path")
    if path.is_dir():
        raise InputError(f"{path}: expected a customer file (.csv, .csv.gz, .csv.zst or .parquet), found a folder")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (expected a header row and customer rows)")
    suffixes = [s.lower() for s in path.suffixes]
    codec = COMPRESSION.get(suffixes[-1]) if suffixes else None
    kind = suffixes[-2] if codec and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    if kind == ".parquet" and not codec:
        return _read_parquet(path)
    if kind in CSV_SUFFIXES:
        return _read_csv(path, codec, delimiter)
    raise InputError(
        f"{path}: unsupported file type '{''.join(path.suffixes)}'; use .csv, .csv.gz, .csv.zst or .parquet"
    )


def _rename(names: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Documented names for headers written in any case or spacing; other headers stay as written."""
    renamed = [_BY_CANONICAL.get(canonical_name(n), str(n).strip()) for n in names]
    written: dict[str, list[str]] = {}
    for original, name in zip(names, renamed, strict=True):
        written.setdefault(name, []).append(str(original))
    return renamed, written


def _read_parquet(path: Path) -> CustomerFile:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise InputError(f"{path}: not a readable Parquet file ({error})") from None
    index_columns = [c for c in (table.schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)]
    table = table.drop_columns(index_columns)  # a pandas index stored by to_parquet is not customer data
    names, written = _rename(table.column_names)
    columns = []
    for name, column in zip(names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_dictionary(kind):
            column, kind = column.cast(kind.value_type), kind.value_type
        if name == ID_COLUMN:
            if pa.types.is_floating(kind):
                raise InputError(
                    f"{path}: column '{ID_COLUMN}' is stored as floating-point numbers, so ids such as 000123 "
                    "or 12345678901234567891 may already be lost; write customer_id as text (or integers)"
                )
            # Parquet's UUID type (DuckDB, Spark) as the text everyone shows; integer ids as their decimal digits,
            # never through float (a null would turn 7 into 7.0).
            column = uuid_text(column) if isinstance(kind, pa.UuidType) else _as_text(path, name, column)
        elif name in TEXT_COLUMNS and not pa.types.is_string(kind) and not pa.types.is_large_string(kind):
            column = _as_text(path, name, column)
        elif name in NUMERIC_RULES and pa.types.is_float32(kind):
            column = exact_float64_arrow(column)
        elif name in NUMERIC_RULES and pa.types.is_decimal(kind):
            column = column.cast(pa.float64())
        columns.append(column)
    frame = arrow_to_pandas(pa.table(columns, names=[f"_c{i}" for i in range(len(names))]))
    frame.columns = names
    frame.insert(0, "_line", np.arange(1, len(frame) + 1))  # Parquet has no header line: rows from 1
    return CustomerFile(frame=frame, source=str(path), written_names=written)


def _as_text(path: Path, name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A Parquet column as text, or one error naming it (raw bytes, say, are no text to read)."""
    if (
        pa.types.is_binary(column.type)
        or pa.types.is_large_binary(column.type)
        or pa.types.is_fixed_size_binary(column.type)
    ):
        raise InputError(f"{path}: column '{name}' is stored as raw bytes ({column.type}); write it as text")
    try:
        return column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError(f"{path}: column '{name}' ({column.type}) cannot be read as text; write it as text") from None


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def uuid_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Parquet UUIDs as their canonical text (lowercase 8-4-4-4-12, as DuckDB, Spark and Python's uuid print
    them), nulls kept; vectorized over the 16-byte values."""
    chunks = []
    for chunk in column.chunks:
        storage = chunk.storage if isinstance(chunk, pa.ExtensionArray) else chunk
        count = len(storage)
        values = np.frombuffer(storage.buffers()[1], dtype=np.uint8)[
            storage.offset * 16 : (storage.offset + count) * 16
        ]
        values = values.reshape(count, 16)
        digits = np.empty((count, 32), dtype=np.uint8)
        digits[:, 0::2], digits[:, 1::2] = _HEX_DIGITS[values >> 4], _HEX_DIGITS[values & 15]
        dash = np.full((count, 1), ord("-"), dtype=np.uint8)
        text = np.hstack([digits[:, :8], dash, digits[:, 8:12], dash, digits[:, 12:16], dash, digits[:, 16:20], dash,
                          digits[:, 20:]])  # fmt: skip
        strings = pa.array(np.ascontiguousarray(text).view("S36").ravel(), type=pa.binary(36)).cast(pa.string())
        chunks.append(pc.if_else(storage.is_null(), pa.scalar(None, pa.string()), strings))
    return pa.chunked_array(chunks, type=pa.string())


def _chunks(path: Path, codec: str | None, size: int = LINE_SCAN_CHUNK_BYTES) -> Iterator[bytes]:
    """The file's (decompressed) bytes in chunks; a corrupt archive is an InputError."""
    try:
        with pa.input_stream(str(path), compression=codec) as stream:
            while chunk := stream.read(size):
                yield chunk
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"{path}: not a readable {codec or 'CSV'} file ({error})") from None


def _line_end(path: Path, codec: str | None) -> bytes:
    """The file's line end: b"\n" (Unix, and Windows' CR LF), or b"\r" for classic Mac files (Excel's "CSV
    (Macintosh)"), whose only line end is a carriage return. The first line end in the file decides."""
    head = next(_chunks(path, codec, 64 * 1024), b"")
    cr, lf = head.find(b"\r"), head.find(b"\n")
    if cr >= 0 and (lf < 0 or cr < lf) and head[cr + 1 : cr + 2] != b"\n":
        return b"\r"
    return b"\n"


def _head_lines(path: Path, codec: str | None, count: int = 2, line_end: bytes = b"\n") -> list[bytes]:
    """The first `count` lines (raw bytes, without line ends), reading at most MAX_CSV_LINE_BYTES + 1 bytes: a
    line cut there is longer than allowed (`_read_header` refuses it if it is the header)."""
    data = b""
    for chunk in _chunks(path, codec, 64 * 1024):
        data += chunk
        lines_seen = data.count(line_end)
        # Enough lines; or the header is complete and the head already large (a long line further on is
        # refused by the line scan, without being read here); or the header itself is too long.
        if lines_seen >= count or (lines_seen and len(data) > LINE_SCAN_CHUNK_BYTES) or len(data) > MAX_CSV_LINE_BYTES:
            break
    return [line.rstrip(b"\r") for line in data[: MAX_CSV_LINE_BYTES + 1].split(line_end)[:count]]


def _encoding(path: Path, codec: str | None) -> str:
    """UTF-16 when the file starts with its byte-order mark (Excel's "Unicode text"), else UTF-8."""
    start = next(_chunks(path, codec, 4), b"")
    return "utf-16" if start.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8"


def _read_header(
    path: Path, codec: str | None, delimiter: str, encoding: str = "utf-8", line_end: bytes = b"\n"
) -> tuple[list[str], str, int]:
    """The header's names, the delimiter and the header's line number.

    Excel's `sep=;` first line declares the delimiter explicitly: it is used, and the header is line 2.
    """
    if encoding == "utf-16":
        start = next(_chunks(path, codec, 64 * 1024), b"")
        texts = start[: len(start) // 2 * 2].decode("utf-16", errors="replace").splitlines()[:HEAD_LINES]
    else:
        try:
            head = _head_lines(path, codec, HEAD_LINES, line_end)
            texts = [head[0].decode("utf-8"), *(line.decode("utf-8", errors="replace") for line in head[1:])]
        except UnicodeDecodeError:
            raise InputError(f"{path}: {_utf8_problem(path, codec, line_end)}") from None
        texts[0] = texts[0].removeprefix("\ufeff")
    line = 1
    declared = re.fullmatch(r"\s*sep=(.)\s*", texts[0], flags=re.IGNORECASE) if texts else None
    if declared and len(texts) > 1:
        delimiter, line = declared.group(1), 2
        if delimiter not in DELIMITERS:
            raise InputError(f"{path}: line 1 declares the delimiter {delimiter!r}; use ',', ';', tab or '|'")
    text = texts[line - 1] if texts else ""
    if len(text) > MAX_CSV_LINE_BYTES:
        raise InputError(f"{path}: the header line is longer than {_size(MAX_CSV_LINE_BYTES)}")
    if not text.strip():
        raise InputError(f"{path}: the first line is empty (expected a header row)")
    names = [n.strip() for n in next(csv.reader([text], delimiter=delimiter))]
    required = set(_BY_CANONICAL)
    found = len(required & {canonical_name(n) for n in names})
    if found < len(required):
        for other, label in DELIMITERS.items():
            alternative = {canonical_name(n) for n in next(csv.reader([text], delimiter=other))}
            if other != delimiter and len(required & alternative) > max(found, 1):
                setting = other.encode("unicode_escape").decode()
                raise InputError(
                    f"{path}: line {line} looks like {label}-delimited, but customers.delimiter is "
                    f'{DELIMITERS.get(delimiter, repr(delimiter))}: set `customers.delimiter: "{setting}"` '
                    "in config/pipeline.yaml" + _decimal_comma_hint(texts[line - 1 :], other, line)
                )
    return names, delimiter, line


def _decimal_comma_hint(lines: list[str], delimiter: str, header_line: int) -> str:
    """Files written with another delimiter often write decimal commas too (a European locale): name the first
    one in the head of the file, so both fixes are known at once. Line and column only, never the value."""
    rows = list(csv.reader(lines, delimiter=delimiter))
    if not rows:
        return ""
    numeric = {
        index: _BY_CANONICAL[canonical_name(name)]
        for index, name in enumerate(rows[0])
        if _BY_CANONICAL.get(canonical_name(name)) in NUMERIC_RULES
    }
    pattern = re.compile(COMMA_NUMBER)
    for offset, fields in enumerate(rows[1:], start=1):
        for index, column in numeric.items():
            if index < len(fields) and pattern.fullmatch(fields[index].strip()):
                return (
                    f"; it also writes numbers with a decimal comma (line {header_line + offset}, column "
                    f"'{column}'): export them with a '.' decimal point"
                )
    return ""


def _read_csv(path: Path, codec: str | None, delimiter: str) -> CustomerFile:
    encoding = _encoding(path, codec)
    # Arrow's reader itself takes LF, CR LF and CR alike; the line scans here need to know which it is.
    line_end = _line_end(path, codec) if encoding == "utf-8" else b"\n"
    header, delimiter, header_line = _read_header(path, codec, delimiter, encoding, line_end)
    _refuse_overlong_lines(path, codec, line_end=line_end)
    internal = [f"_c{i}" for i in range(len(header))]

    def read(threads: bool) -> tuple[pa.Table, list[tuple[int | None, int, str]]]:
        invalid: list[tuple[int | None, int, str]] = []

        def skip(row) -> str:  # rows with too many or too few fields: kept aside, never in a message
            invalid.append((row.number, row.actual_columns, row.text))
            return "skip"

        table = pa_csv.read_csv(
            pa.input_stream(str(path), compression=codec),
            read_options=pa_csv.ReadOptions(
                block_size=MAX_CSV_LINE_BYTES,
                use_threads=threads,
                skip_rows=header_line,
                column_names=internal,
                encoding=encoding,
            ),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, invalid_row_handler=skip, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                # large_string: what pandas' Arrow-backed strings hold, so no cast of every column's text later
                column_types={name: pa.large_string() for name in internal},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        return table, invalid

    try:
        table, invalid = read(threads=True)
        if invalid:  # row numbers are known only to the single-threaded reader (this path is the rare one)
            table, invalid = read(threads=False)
    except pa.ArrowInvalid as error:
        message = str(error)
        if "straddling" in message or "block" in message.lower():
            raise InputError(
                f"{path}: a line is longer than {_size(MAX_CSV_LINE_BYTES)}; the file is not a well-formed customer CSV"
            ) from None
        if "UTF8" in message or "UTF-8" in message:
            raise InputError(f"{path}: {_utf8_problem(path, codec, line_end)}") from None
        raise InputError(f"{path}: malformed CSV ({message.splitlines()[0][:200]})") from None
    except OSError as error:
        raise InputError(f"{path}: not a readable {codec or 'CSV'} file ({error})") from None

    frame = arrow_to_pandas(table)
    names, written = _rename(header)
    frame.columns = names
    # Columns with no header and no value (a trailing delimiter on every line, as some exports write) carry
    # nothing; an unnamed column with values is kept and refused as unexpected.
    unnamed = [i for i, name in enumerate(names) if name == "" and (frame.iloc[:, i].str.strip() == "").all()]
    if unnamed:
        kept = [i for i in range(len(names)) if i not in unnamed]
        frame = frame.iloc[:, kept]
        names = [names[i] for i in kept]
    # Physical lines of the parsed rows: 2, 3, ... skipping the lines of the rows set aside.
    lines = np.arange(header_line + 1, header_line + 1 + len(frame) + len(invalid))
    bad_lines = np.array([number for number, _, _ in invalid if number is not None], dtype=np.int64)
    lines = lines[~np.isin(lines, bad_lines)][: len(frame)]
    frame.insert(0, "_line", lines)

    # A row with no value at all carries nothing (Excel's trailing `,,,,`, blank lines): skipped, counted.
    blank = np.ones(len(frame), dtype=bool)
    for name in names:
        blank &= (frame.iloc[:, names.index(name) + 1].str.strip() == "").to_numpy()
        if not blank.any():  # no row can be blank any more: the other columns need not be looked at
            break
    stripped_delimiters = [text.replace(delimiter, "").strip() for _, _, text in invalid]
    malformed = pd.DataFrame(
        {
            "line": [number for (number, _, _), rest in zip(invalid, stripped_delimiters, strict=True) if rest],
            "fields": [count for (_, count, _), rest in zip(invalid, stripped_delimiters, strict=True) if rest],
            "raw_row": [text for (_, _, text), rest in zip(invalid, stripped_delimiters, strict=True) if rest],
        }
    )
    empty_rows = int(blank.sum()) + sum(1 for rest in stripped_delimiters if not rest)
    return CustomerFile(
        frame=frame.loc[~blank].reset_index(drop=True) if blank.any() else frame,  # no copy when none is blank
        source=str(path),
        malformed=malformed,
        empty_rows=empty_rows,
        written_names=written,
    )


def _size(count: int) -> str:
    mib = 1024 * 1024
    return f"{count // mib} MiB" if count % mib == 0 else f"{count:,} bytes"


def _refuse_overlong_lines(path: Path, codec: str | None = None, line_end: bytes = b"\n") -> None:
    """Raise InputError naming the first line longer than MAX_CSV_LINE_BYTES, reading in small chunks.

    pyarrow alone does not enforce the limit: a row may straddle one block boundary, so rows up to twice the
    block size are read into memory. The scan stops at the first overlong line, so memory stays bounded by the
    chunk size whatever the line length.
    """
    limit = MAX_CSV_LINE_BYTES
    line_start = 0  # offset of the current line's first byte
    complete_lines = 0  # lines ended before the current one
    offset = 0
    for chunk in _chunks(path, codec):
        ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == ord(line_end)) + offset
        starts = np.concatenate(([line_start], ends[:-1] + 1))
        overlong = np.flatnonzero(ends - starts > limit)
        if overlong.size:
            number = complete_lines + int(overlong[0]) + 1
            raise InputError(
                f"{path}: a line is longer than {_size(limit)} (line {number}); "
                "the file is not a well-formed customer CSV"
            )
        if ends.size:
            complete_lines += ends.size
            line_start = int(ends[-1]) + 1
        offset += len(chunk)
        if offset - line_start > limit:  # the current line already exceeds the limit: stop reading
            raise InputError(
                f"{path}: a line is longer than {_size(limit)} (line {complete_lines + 1}); "
                "the file is not a well-formed customer CSV"
            )


def _utf8_problem(path: Path, codec: str | None = None, line_end: bytes = b"\n") -> str:
    """Find the first line with bytes that are not UTF-8 (only runs on the error path)."""
    number, rest = 0, b""
    for chunk in _chunks(path, codec):
        *lines, rest = (rest + chunk).split(line_end)
        for raw in lines:
            number += 1
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                return (
                    f"line {number} is not valid UTF-8 (byte 0x{raw[error.start]:02x} at column "
                    f"{error.start + 1}); save the file as UTF-8"
                )
    return "the file is not valid UTF-8; save it as UTF-8"


# --- exact values -------------------------------------------------------------------------------------------


def exact_float64_arrow(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """float32 values as the float64 of the decimal they were written as: 0.4f (0.4000000059604645 in float64)
    becomes 0.4. Each value is rounded to the shortest decimal that reads back as the same float32 (at most 9
    significant digits; 7 or fewer for any value written with 7 significant digits), so a customer exactly on
    a segment boundary stays on it."""
    return pc.cast(pc.cast(column, pa.string()), pa.float64())


def exact_float64(values: pd.Series) -> pd.Series:
    """`exact_float64_arrow` for a pandas column (float32 only; other dtypes are returned unchanged)."""
    if values.dtype != np.float32:
        return values
    array = exact_float64_arrow(pa.array(values.to_numpy(), from_pandas=True))
    return pd.Series(array.to_numpy(zero_copy_only=False), index=values.index, name=values.name)


def display_case(values: pd.Series) -> pd.Series:
    """Values written all in capitals or all in lower case, in title case for display (`PLATINUM`, `platinum`
    -> `Platinum`); mixed-case values (`McAllen`, `São Paulo`) stay as written. The stored value is unchanged."""
    text = values.astype(ARROW_STRING)
    single_case = (text == text.str.upper()) | (text == text.str.lower())
    return text.where(~single_case.fillna(False), text.str.title())


# Plain decimals (`12`, `-0.5`, `.25`) of at most 15 characters: at most 15 significant digits and a power of
# ten within 10^15, so Arrow's parser and pandas' (precise_xstrtod: digits, then one multiplication or
# division by an exact power of ten) both give the correctly rounded double, i.e. the same value.
_PLAIN_DECIMAL_MAX_CHARS = 15
_PLAIN_DECIMAL_BYTES = np.zeros(256, dtype=bool)
_PLAIN_DECIMAL_BYTES[list(b"0123456789.+-")] = True


def _only_plain_decimal_bytes(chunk: pa.Array) -> bool:
    """Every value of a string chunk at most _PLAIN_DECIMAL_MAX_CHARS long and made of digits, '.', '+', '-'
    only (read from the chunk's buffers: no string per value)."""
    offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    _, offsets_buffer, data_buffer = chunk.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[chunk.offset : chunk.offset + len(chunk) + 1]
    if (np.diff(offsets) > _PLAIN_DECIMAL_MAX_CHARS).any():
        return False
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]] if data_buffer else np.array([])
    return bool(_PLAIN_DECIMAL_BYTES[data].all())


def _plain_decimals(values: pd.Series) -> pd.Series | None:
    """The column as float64 when every value (stripped) is a plain decimal, parsed in Arrow; else None (the
    caller's general path with pandas then classifies each value)."""
    try:
        text = pc.utf8_trim_whitespace(pa.chunked_array(pa.array(values.astype(ARROW_STRING).array)))
    except (pa.ArrowException, TypeError, ValueError):
        return None
    if text.null_count or not len(text) or not all(_only_plain_decimal_bytes(c) for c in text.chunks):
        return None
    try:  # refuses what only looks numeric (`1-2`, `1.2.3`, `.`, `-`, an empty value)
        numbers = pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        return None
    return pd.Series(numbers.to_numpy(), index=values.index, dtype="float64")


def _all_distinct(ids: pd.Series) -> bool:
    """No id written twice (an empty id counts as written)."""
    array = pa.chunked_array(pa.array(ids.array))
    return distinct_count(array) == len(array)  # a null counts once, like any value


def same_ids(left: pd.Series, right: pd.Series) -> bool:
    """Whether two Arrow-backed id columns hold the same ids in the same order, none missing (compared in
    Arrow: no Python string per row). False for any other dtype: callers then take their general path."""
    if len(left) != len(right) or left.dtype != ARROW_STRING or right.dtype != ARROW_STRING:
        return False
    ids = [pa.chunked_array(pa.array(column.array)) for column in (left, right)]
    if ids[0].null_count or ids[1].null_count:
        return False
    return not len(left) or bool(pc.all(pc.equal(*ids)).as_py())


def same_id_set(left: pd.Series, right: pd.Series) -> bool:
    """Whether two Arrow-backed id columns hold the same ids, each once, in any order, none missing (one hash
    aggregate in DuckDB, no Python string per row). False for any other dtype: callers then take their general
    path."""
    if len(left) != len(right) or left.dtype != ARROW_STRING or right.dtype != ARROW_STRING:
        return False
    ids = [pa.chunked_array(pa.array(column.array)) for column in (left, right)]
    if ids[0].null_count or ids[1].null_count:
        return False
    return not len(left) or each_once_on_both_sides(*ids)


# --- validation ---------------------------------------------------------------------------------------------


def _examples(lines: pd.Series, ids: pd.Series | None = None) -> str:
    shown = []
    for position in range(min(MAX_EXAMPLES, len(lines))):
        item = f"line {lines.iloc[position]}"
        if ids is not None and pd.notna(ids.iloc[position]) and ids.iloc[position] != "":
            item += f" ({hash_customer_id(ids.iloc[position])})"
        shown.append(item)
    more = f" and {len(lines) - MAX_EXAMPLES} more" if len(lines) > MAX_EXAMPLES else ""
    return ", ".join(shown) + more


def check_columns(
    columns: Iterable[str], source: str, allow_extra: bool, written: dict[str, list[str]] | None = None
) -> list[str]:
    """The file's columns beyond the documented schema (as written), which `allow_extra` lets the load ignore;
    InputError for missing or duplicated columns, and for extra ones unless allowed. A missing column's message
    names the extra ones either way: a renamed column ("open_rate") is usually the missing one."""
    columns = [c for c in columns if c != "_line"]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    extra = [c or "(unnamed column)" for c in columns if c not in REQUIRED_COLUMNS]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    if duplicated:
        spelled = [f"{c} (written as {', '.join(repr(w) for w in (written or {}).get(c, [c]))})" for c in duplicated]
        problems.append(f"duplicated column(s): {'; '.join(spelled)}")
    if extra and not allow_extra:
        problems.append(
            f"unexpected column(s): {', '.join(extra)} (set validation.extra_columns: drop in "
            "config/pipeline.yaml to ignore them)"
        )
    elif extra and missing:
        problems.append(f"columns in the file that are not used: {', '.join(extra)}")
    if problems:
        raise InputError(f"{source}: " + "; ".join(problems) + f". Expected columns: {', '.join(REQUIRED_COLUMNS)}")
    return extra


def validate_customers(
    raw: CustomerFile | pd.DataFrame,
    source: str | None = None,
    on_invalid_rows: str = "fail",
    allow_extra_columns: bool = False,
    duplicate_ids: str = "keep_first",
) -> ValidationResult:
    """Check columns, types, ranges and ids; return typed valid rows and rejected rows with reasons.

    With `on_invalid_rows="fail"` any invalid row raises `InputError`; with `"quarantine"` invalid rows are
    returned in `rejected` (with their raw values) and the valid ones go on. Of rows sharing an id, the first
    is kept and the others rejected (`duplicate_ids="keep_first"`), or all are rejected (`"reject_all"`).
    """
    if isinstance(raw, pd.DataFrame):
        raw = CustomerFile(frame=raw, source=source or "customers")
    source = source or raw.source
    frame_in = raw.frame
    if "_line" not in frame_in.columns:
        frame_in = frame_in.assign(_line=np.arange(2, len(frame_in) + 2))
    ignored = check_columns(list(frame_in.columns), source, allow_extra_columns, raw.written_names)
    if frame_in.empty and raw.malformed.empty:
        raise InputError(f"{source}: the file has a header but no customer rows")

    reasons = pd.Series("", index=frame_in.index, dtype=object)
    problems: list[str] = []
    lines = frame_in["_line"]

    ids = frame_in[ID_COLUMN]
    if pd.api.types.is_float_dtype(ids):
        raise InputError(
            f"{source}: column '{ID_COLUMN}' holds floating-point numbers; write customer_id as text (or integers)"
        )
    ids = ids.astype(ARROW_STRING).str.strip()

    def reject(mask: pd.Series, column: str, problem: str) -> None:
        mask = mask.fillna(False).astype(bool)
        if not mask.any():
            return
        problems.append(
            f"column '{column}': {problem} — {int(mask.sum())} row(s), first: {_examples(lines[mask], ids[mask])}"
        )
        reasons.loc[mask] = reasons.loc[mask] + f"{column}: {problem}; "

    reject(ids.isna() | (ids == ""), ID_COLUMN, "empty id")
    has_id = ids.notna() & (ids != "")
    if _all_distinct(ids):  # the usual file: one hash pass in Arrow instead of pandas' duplicated masks
        pass
    elif duplicate_ids == "reject_all":
        reject(ids.duplicated(keep=False) & has_id, ID_COLUMN, "duplicate id (every copy rejected)")
    else:
        repeated = ids.duplicated(keep="first") & has_id
        if repeated.any():
            first_line = lines[has_id].groupby(ids[has_id]).transform("min")[repeated]
            where = first_line.astype(str)
            problems.append(
                f"column '{ID_COLUMN}': duplicate id, the first copy is kept — {int(repeated.sum())} row(s), "
                f"first: {_examples(lines[repeated], ids[repeated])} (first copy on line "
                f"{', '.join(where.head(MAX_EXAMPLES))})"
            )
            reasons.loc[repeated] = reasons.loc[repeated] + (
                f"{ID_COLUMN}: duplicate id, first copy (kept) on line " + where + "; "
            )

    # The typed columns as arrays: text stays in Arrow (no Python string per value), numbers in NumPy.
    typed: dict[str, Any] = {ID_COLUMN: ids.array}
    for column in TEXT_COLUMNS:
        text = frame_in[column].astype(ARROW_STRING).str.strip()
        reject(text.isna() | (text == ""), column, "empty value")
        typed[column] = text.array

    for column, (low, high, integer) in NUMERIC_RULES.items():
        original = frame_in[column]
        plain = None if pd.api.types.is_numeric_dtype(original) else _plain_decimals(original)
        if pd.api.types.is_numeric_dtype(original) and not pd.api.types.is_bool_dtype(original):
            numbers = exact_float64(original).astype("float64")
            not_numeric = comma = pd.Series(False, index=frame_in.index)
        elif plain is not None:  # every value a plain decimal: parsed in Arrow, nothing to reject as text
            numbers = plain
            not_numeric = comma = pd.Series(False, index=frame_in.index)
        else:
            text = original.astype(ARROW_STRING).str.strip()
            numbers = pd.to_numeric(text, errors="coerce").astype("float64")
            written = text.notna() & (text != "")
            not_numeric = (
                numbers.isna()
                & written
                & ~text.str.lower().isin(["nan", "inf", "-inf", "+inf", "infinity", "-infinity"])
            )
            comma = not_numeric & text.str.fullmatch(COMMA_NUMBER).fillna(False).astype(bool)
            reject(comma, column, DECIMAL_COMMA)
            not_numeric &= ~comma
        reject(not_numeric, column, "not a number")
        reject(numbers.isna() & ~not_numeric & ~comma, column, "missing value (empty or NaN)")
        infinite = np.isinf(numbers)
        reject(infinite, column, "infinite value")
        finite = numbers.notna() & ~infinite
        bounds = f"[{low:g}, {high:g}]" if np.isfinite(high) else f">= {low:g}"
        reject(finite & ((numbers < low) | (numbers > high)), column, f"out of range (allowed {bounds})")
        if integer:
            reject(finite & (numbers % 1 != 0), column, "not a whole number")
        typed[column] = numbers.to_numpy(dtype="float64")

    invalid = (reasons != "").to_numpy()
    header_fields = len(frame_in.columns) - 1
    rejected = _rejected_rows(frame_in, ids, reasons, invalid, raw.malformed, header_fields)
    for count, group in raw.malformed.groupby("fields", sort=True):
        problems.append(
            f"line with {count} field(s) where the header has {header_fields} — {len(group)} row(s), first: "
            f"{_examples(group['line'])} (values not shown; quote values that contain the delimiter)"
        )
    if problems and on_invalid_rows == "fail":
        raise InputError(
            f"{source}: {len(rejected)} invalid row(s); correct them, {QUARANTINE_FIX}\n  - " + "\n  - ".join(problems)
        )

    # One copy of the required columns (a 1M-row frame: filter, drop and reset each copied every column): the
    # float columns are written straight into the one 2-D block pandas keeps them in (a frame built from
    # separate arrays stacks them, then consolidates them again), the others are added beside it.
    kept = ~invalid if invalid.any() else slice(None)
    floats = [column for column in REQUIRED_COLUMNS if column in NUMERIC_RULES and not NUMERIC_RULES[column][2]]
    block = np.empty((len(floats), int((~invalid).sum())))
    for row, column in enumerate(floats):
        block[row] = typed[column][kept]
    valid = pd.DataFrame(block.T, columns=floats, copy=False)
    for position, column in enumerate(REQUIRED_COLUMNS):
        if column not in floats:
            values = typed[column][kept]
            integer = column in NUMERIC_RULES and NUMERIC_RULES[column][2]
            valid.insert(position, column, values.astype("int64") if integer else values)
    if valid.empty:
        raise InputError(
            f"{source}: no valid customer rows remain after quarantining {len(rejected)}; see the "
            "customers_quarantine reasons"
        )
    return ValidationResult(
        valid=valid, rejected=rejected, problems=problems, empty_rows=raw.empty_rows, ignored_columns=ignored
    )


def _rejected_rows(
    frame: pd.DataFrame,
    ids: pd.Series,
    reasons: pd.Series,
    invalid: np.ndarray,
    malformed: pd.DataFrame,
    header_fields: int,
) -> pd.DataFrame:
    """One row per rejected line: line, customer_id, reasons, then each column's value as written, raw_row."""
    rows = pd.DataFrame(
        {
            "line": frame["_line"].to_numpy()[invalid],
            "customer_id": ids.to_numpy()[invalid],
            "reasons": reasons.to_numpy()[invalid],
        }
    )
    rows["reasons"] = rows["reasons"].str.rstrip("; ")
    for column in REQUIRED_COLUMNS[1:]:
        rows[column] = frame[column][invalid].astype(ARROW_STRING).to_numpy()  # only the rejected rows
    rows["raw_row"] = pd.array([None] * len(rows), dtype=ARROW_STRING)
    if len(malformed):
        extra = pd.DataFrame(
            {
                "line": malformed["line"].to_numpy(),
                "customer_id": pd.array([None] * len(malformed), dtype=ARROW_STRING),
                "reasons": [f"row: {n} field(s), the header has {header_fields}" for n in malformed["fields"]],
                **{c: pd.array([None] * len(malformed), dtype=ARROW_STRING) for c in REQUIRED_COLUMNS[1:]},
                "raw_row": pd.array(malformed["raw_row"].astype(str), dtype=ARROW_STRING),
            }
        )
        rows = pd.concat([rows, extra], ignore_index=True).sort_values("line", kind="stable")
    rows["line"] = rows["line"].astype("int64")
    for column in ("customer_id", *REQUIRED_COLUMNS[1:], "raw_row"):
        rows[column] = rows[column].astype(ARROW_STRING)
    return rows[list(QUARANTINE_COLUMNS)].reset_index(drop=True)
