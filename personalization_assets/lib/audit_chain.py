"""The safety audit log's hash chain: each record commits to its predecessor, so a changed, deleted, inserted or
moved record is detected (`verify_audit_chain`). Pure pandas; the warehouse side is store/safety.py."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from personalization_assets.lib.safety import is_integral as _is_integral
from personalization_assets.lib.safety import is_missing as _is_missing
from personalization_assets.lib.safety import require_columns as _require_columns

GENESIS_HASH = "0" * 64
AUDIT_FIELDS: tuple[str, ...] = (
    "record_id",
    "screened_at",
    "run_id",
    "segment",
    "variant_id",
    "text_sha256",
    "severities",
    "decision",
    "reasons",
    "backend",
)
_HEX64 = re.compile(r"[0-9a-f]{64}")


def text_sha256(text: str) -> str:
    """Hex SHA-256 of the UTF-8 bytes of ``text`` (the audit log stores this, not the text)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical_timestamp(value: object) -> str:
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        raise ValueError("screened_at is missing")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical_json(value: object, *, kind: str) -> str:
    """Severities/reasons as canonical JSON, whether given as objects or as stored JSON text."""
    parsed = json.loads(value) if isinstance(value, str) else value
    if kind == "severities":
        if not isinstance(parsed, Mapping):
            raise ValueError(f"severities must be a mapping or JSON object, got {type(parsed).__name__}")
        parsed = {str(k): (None if _is_missing(v) else int(v) if _is_integral(v) else v) for k, v in parsed.items()}
    else:
        if isinstance(parsed, np.ndarray):
            parsed = parsed.tolist()
        if not isinstance(parsed, list | tuple):
            raise ValueError(f"reasons must be a list or JSON array, got {type(parsed).__name__}")
        parsed = [str(r) for r in parsed]
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical_record(row: Mapping[str, object]) -> dict[str, object]:
    record: dict[str, object] = {}
    for name in ("record_id", "run_id", "segment", "variant_id", "text_sha256", "decision", "backend"):
        value = row[name]
        record[name] = None if _is_missing(value) else str(value)
    record["screened_at"] = _canonical_timestamp(row["screened_at"])
    record["severities"] = _canonical_json(row["severities"], kind="severities")
    record["reasons"] = _canonical_json(row["reasons"], kind="reasons")
    sequence = row["sequence"]
    if not isinstance(sequence, int | float | str | np.number):
        raise TypeError(f"sequence must be a number, got {type(sequence).__name__}")
    record["sequence"] = int(sequence)
    return record


def _record_hash(record: Mapping[str, object], prev_hash: str) -> str:
    payload = json.dumps({**record, "prev_hash": prev_hash}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ChainHead(NamedTuple):
    """Where the next batch of audit records continues the chain."""

    prev_hash: str
    next_sequence: int


def chain_head(audit: pd.DataFrame | None) -> ChainHead:
    """Hash and next sequence after the last record of ``audit`` (genesis for an empty/None log)."""
    if audit is None or audit.empty:
        return ChainHead(GENESIS_HASH, 0)
    _require_columns(audit, ("sequence", "record_hash"), "audit log")
    last = audit.loc[audit["sequence"].astype("int64").idxmax()]
    return ChainHead(str(last["record_hash"]), int(last["sequence"]) + 1)


def chain_audit_records(records: pd.DataFrame, prev_hash: str, start_sequence: int = 0) -> pd.DataFrame:
    """Append-ready copy of ``records`` (in row order) with ``sequence``, ``prev_hash``, ``record_hash``.

    ``record_hash`` = sha256 of canonical JSON of AUDIT_FIELDS + sequence + prev_hash, so each record
    commits to its predecessor. ``severities``/``reasons`` are stored as canonical JSON strings and
    ``screened_at`` as a UTC timestamp. Continue an existing log with ``chain_head(existing)``.
    """
    _require_columns(records, AUDIT_FIELDS, "audit records")
    if not isinstance(prev_hash, str) or not _HEX64.fullmatch(prev_hash):
        raise ValueError("prev_hash must be 64 lowercase hex characters (use GENESIS_HASH for a new log)")
    if not _is_integral(start_sequence) or int(start_sequence) < 0:
        raise ValueError(f"start_sequence must be a non-negative integer, got {start_sequence!r}")
    chained = records.reset_index(drop=True).copy()
    chained["sequence"] = np.arange(int(start_sequence), int(start_sequence) + len(chained), dtype="int64")
    canonical = [_canonical_record(row) for row in chained.to_dict("records")]
    hashes: list[str] = []
    previous = prev_hash
    for record in canonical:  # inherently sequential: each hash feeds the next
        previous = _record_hash(record, previous)
        hashes.append(previous)
    chained["screened_at"] = pd.to_datetime([r["screened_at"] for r in canonical], utc=True)
    chained["severities"] = [r["severities"] for r in canonical]
    chained["reasons"] = [r["reasons"] for r in canonical]
    chained["prev_hash"] = [prev_hash, *hashes[:-1]] if hashes else []
    chained["record_hash"] = hashes
    return chained


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    records: int
    first_bad_record_id: str | None
    message: str


def verify_audit_chain(
    audit: pd.DataFrame, expected_head: str | None = None, genesis: str = GENESIS_HASH
) -> ChainVerification:
    """Check the whole audit log, in ``sequence`` order (storage row order is irrelevant).

    Detects: any changed field (record_hash mismatch), a deleted or inserted record (sequence gap or
    prev_hash mismatch), records moved in the chain (sequence values swapped), a chain not starting at
    ``genesis``. Deleting the newest records is only detectable with ``expected_head``: the last
    record_hash kept elsewhere (e.g. the run's materialization metadata).
    """
    required = (*AUDIT_FIELDS, "sequence", "prev_hash", "record_hash")
    missing = [c for c in required if c not in audit.columns]
    if missing:
        return ChainVerification(False, len(audit), None, f"audit log is missing columns {missing}")
    if audit.empty:
        if expected_head not in (None, genesis):
            return ChainVerification(False, 0, None, "audit log is empty but a non-genesis head was expected")
        return ChainVerification(True, 0, None, "audit log is empty")
    try:
        sequence_numbers = audit["sequence"].astype("int64")
    except (ValueError, TypeError):
        return ChainVerification(False, len(audit), None, "audit log has non-integer sequence values")
    ordered = audit.assign(sequence=sequence_numbers).sort_values("sequence", kind="stable").reset_index(drop=True)
    record_ids = ordered["record_id"].astype(str).to_numpy()
    sequence = ordered["sequence"].to_numpy()
    problems = np.full(len(ordered), "", dtype=object)

    recomputed: list[str | None] = []
    for i, row in enumerate(ordered.to_dict("records")):
        try:
            recomputed.append(_record_hash(_canonical_record(row), str(row["prev_hash"])))
        except (ValueError, TypeError, KeyError) as exc:
            recomputed.append(None)
            problems[i] = f"record cannot be canonicalized: {exc}"
    stored = ordered["record_hash"].astype(str).to_numpy()
    prev = ordered["prev_hash"].astype(str).to_numpy()
    expected_prev = np.concatenate([[genesis], stored[:-1]])
    expected_sequence = sequence[0] + np.arange(len(ordered))

    # Checks in priority order per record; the first record (in chain order) with a problem is reported.
    checks = [
        (
            sequence != expected_sequence,
            lambda i: (
                f"sequence {sequence[i]} where {expected_sequence[i]} was expected (record deleted, inserted or moved)"
            ),
        ),
        (
            prev != expected_prev,
            lambda i: (
                "prev_hash does not match the previous record's record_hash"
                + (" (chain does not start at genesis)" if i == 0 else f" (previous record {record_ids[i - 1]})")
            ),
        ),
        (
            np.array([r is not None and r != s for r, s in zip(recomputed, stored, strict=True)]),
            lambda i: "record_hash does not match the record's contents (field tampered)",
        ),
    ]
    for mask, describe in checks:
        for index in np.flatnonzero(mask & (problems == "")):
            problems[index] = describe(int(index))
    bad = np.flatnonzero(problems != "")
    if len(bad):
        i = int(bad[0])
        return ChainVerification(
            False, len(ordered), record_ids[i], f"record {record_ids[i]} (sequence {sequence[i]}): {problems[i]}"
        )
    if sequence[0] != 0 and genesis == GENESIS_HASH:
        return ChainVerification(
            False, len(ordered), record_ids[0], f"record {record_ids[0]}: chain starts at sequence {sequence[0]}, not 0"
        )
    if expected_head is not None and stored[-1] != expected_head:
        return ChainVerification(
            False,
            len(ordered),
            record_ids[-1],
            f"last record {record_ids[-1]} is not the expected head (records deleted "
            "from the end or appended without updating the head)",
        )
    return ChainVerification(True, len(ordered), None, f"{len(ordered)} records verified")
