"""The safety stage's warehouse records that are not asset outputs: the append-only, hash-chained audit log
(`safety_audit`), the verdicts on customer field values (`personal_field_verdicts`), the screening cache
(`safety_screen_cache`) and the CSV export of the audit. No Dagster imports: the chain heads recorded in Dagster's
materialization metadata come in as `AuditAnchor`s (`recorded_audit_heads` reads them from any object with
Dagster's `fetch_materializations`)."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from personalization_assets.constants import CUSTOMER_SEGMENTS_TABLE, CUSTOMERS_TABLE, PERSONAL_FIELDS_TABLE
from personalization_assets.lib.audit_chain import AUDIT_FIELDS, GENESIS_HASH, chain_audit_records, verify_audit_chain
from personalization_assets.lib.personalization import personal_field_values
from personalization_assets.store.cache import WarehouseCache
from resources.content_safety import ContentSafetyResource, ScreenOutcome
from resources.warehouse import SCHEMA, DuckDBWarehouse, table_exists

AUDIT_TABLE = "safety_audit"
SCREEN_CACHE_TABLE = "safety_screen_cache"
CACHED_BACKEND_SUFFIX = " (cached)"
AUDIT_COLUMNS = ["sequence", *AUDIT_FIELDS, "prev_hash", "record_hash"]
# Materialization metadata keys that anchor the audit chain outside the warehouse.
HEAD_SEQUENCE, HEAD_HASH, CHAIN_ROOT = "audit_head_sequence", "audit_head_hash", "audit_chain_root"


# --- Screening cache ------------------------------------------------------------------------------------------


class ScreenCache:
    """Complete outcomes of a remote backend in safety_screen_cache (store/cache.py `WarehouseCache`), keyed by a
    hash of the backend's outcome settings (endpoint, blocklists, screen version) and the text: an unchanged
    text is not sent again.

    Only complete, error-free outcomes are kept (a failure is retried next run); no text is stored. A hit comes
    back with `backend` "<backend> (cached)" and no service request; the decision is still made with the
    current thresholds and audited like any other. New outcomes are written by `flush()` in one transaction.
    """

    def __init__(self, warehouse: DuckDBWarehouse | None, resource: ContentSafetyResource, enabled: bool = True):
        self._settings = json.dumps(resource.outcome_settings(), sort_keys=True)
        self._cache = WarehouseCache(warehouse, SCREEN_CACHE_TABLE, enabled=enabled and resource.cacheable)

    @property
    def enabled(self) -> bool:
        return self._cache.enabled

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self._settings}\n{text}".encode()).hexdigest()

    def lookup(self, texts: Iterable[str]) -> dict[str, ScreenOutcome]:
        """Stored outcomes of those `texts` that have one (one query for all)."""
        if not self.enabled:
            return {}
        keys = {self.key(text): text for text in texts}
        found = self._cache.lookup(keys)
        return {
            keys[key]: replace(outcome, backend=outcome.backend + CACHED_BACKEND_SUFFIX, requests=0)
            for key, payload in found.items()
            if (outcome := _outcome_from_json(payload)) is not None
        }

    def put(self, text: str, outcome: ScreenOutcome) -> None:
        if self.enabled and outcome.complete:
            self._cache.put(self.key(text), outcome.backend, _outcome_to_json(outcome))

    def flush(self) -> int:
        """Write the new outcomes; returns how many were stored."""
        return self._cache.flush()


def _outcome_to_json(outcome: ScreenOutcome) -> str:
    return json.dumps(
        {
            "severities": outcome.severities,
            "blocklist_hits": list(outcome.blocklist_hits),
            "backend": outcome.backend,
            "detail": {category: list(labels) for category, labels in outcome.detail.items()},
        },
        ensure_ascii=False,
    )


def _outcome_from_json(text: str) -> ScreenOutcome | None:
    """The stored outcome; None for an entry that cannot be read (it is screened again)."""
    try:
        stored = json.loads(text)
        return ScreenOutcome(
            severities={category: int(value) for category, value in stored["severities"].items()},
            blocklist_hits=tuple(stored["blocklist_hits"]),
            backend=stored["backend"],
            detail={category: tuple(labels) for category, labels in stored["detail"].items()},
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


# --- Personal field verdicts ----------------------------------------------------------------------------------


def read_personal_field_values(warehouse: DuckDBWarehouse, segment: str) -> list[str]:
    """The distinct tier and city values of the segment's customers that an opening line could quote."""
    with warehouse.connect() as connection:
        if not all(table_exists(connection, t) for t in (CUSTOMERS_TABLE, CUSTOMER_SEGMENTS_TABLE)):
            return []
        pairs = connection.execute(
            f"select distinct c.tier, c.location from {SCHEMA}.{CUSTOMERS_TABLE} c "
            f"join {SCHEMA}.{CUSTOMER_SEGMENTS_TABLE} s using (customer_id) where s.segment = ?",
            [segment],
        ).fetchdf()
    return personal_field_values(pairs["tier"], pairs["location"])


def store_field_verdicts(warehouse: DuckDBWarehouse, segment: str, verdicts: pd.DataFrame) -> None:
    """Replace the segment's rows of personal_field_verdicts in one transaction."""
    with warehouse.transaction() as connection:
        connection.execute(
            f"""create table if not exists {SCHEMA}.{PERSONAL_FIELDS_TABLE} (segment varchar not null,
                value varchar not null, decision varchar not null, reasons varchar, backend varchar,
                screened_at timestamp with time zone)"""
        )
        connection.execute(f"delete from {SCHEMA}.{PERSONAL_FIELDS_TABLE} where segment = ?", [segment])
        if len(verdicts):
            connection.register("new_field_verdicts", verdicts)
            connection.execute(f"insert into {SCHEMA}.{PERSONAL_FIELDS_TABLE} by name select * from new_field_verdicts")
            connection.unregister("new_field_verdicts")


class AuditChainError(RuntimeError):
    """The stored audit chain no longer holds a head recorded earlier: records were deleted or rewritten."""


@dataclass(frozen=True)
class AuditAnchor:
    """A chain head recorded in a materialization's metadata (outside the warehouse)."""

    root: str  # record_hash of sequence 0: which chain this head belongs to
    sequence: int
    record_hash: str


@dataclass(frozen=True)
class AuditAppend:
    appended: int
    head_sequence: int
    head_hash: str
    root: str
    new_chain: bool  # the warehouse held no chain this Dagster instance had recorded a head for


AUDIT_DDL = f"""create table if not exists {SCHEMA}.{AUDIT_TABLE} (
    record_id varchar not null, sequence bigint not null, screened_at timestamp with time zone not null,
    run_id varchar, segment varchar, variant_id varchar, text_sha256 varchar, severities varchar,
    decision varchar, reasons varchar, backend varchar, prev_hash varchar not null,
    record_hash varchar not null)"""


def anchors_from_metadata(metadata_entries: Iterable[Mapping[str, Any]]) -> list[AuditAnchor]:
    """The chain heads in materialization metadata dicts (values as Dagster metadata values or plain)."""
    anchors = []
    for metadata in metadata_entries:
        if {HEAD_SEQUENCE, HEAD_HASH, CHAIN_ROOT} <= set(metadata):
            value = {
                key: getattr(metadata[key], "value", metadata[key]) for key in (HEAD_SEQUENCE, HEAD_HASH, CHAIN_ROOT)
            }
            anchors.append(AuditAnchor(str(value[CHAIN_ROOT]), int(value[HEAD_SEQUENCE]), str(value[HEAD_HASH])))
    return anchors


def recorded_audit_heads(instance: Any, asset_key: Any, limit: int = 100) -> list[AuditAnchor]:
    """Chain heads recorded by recent materializations of `asset_key` (safety_verdicts, any partition), newest
    first. `instance` is the DagsterInstance, `asset_key` its AssetKey (passed in: no Dagster import here)."""
    records = instance.fetch_materializations(asset_key, limit=limit).records
    return anchors_from_metadata(
        record.asset_materialization.metadata for record in records if record.asset_materialization
    )


def latest_anchor(anchors: Iterable[AuditAnchor], root: str | None) -> AuditAnchor | None:
    """The furthest recorded head of the chain starting at `root` (appends are ordered, events may not be)."""
    same_chain = [anchor for anchor in anchors if root is not None and anchor.root == root]
    return max(same_chain, key=lambda anchor: anchor.sequence, default=None)


_APPEND_LOCKS: dict[str, threading.Lock] = {}
_APPEND_LOCKS_GUARD = threading.Lock()


def _append_lock(warehouse: DuckDBWarehouse) -> threading.Lock:
    with _APPEND_LOCKS_GUARD:
        return _APPEND_LOCKS.setdefault(str(Path(warehouse.path).resolve()), threading.Lock())


# Writers that do not share a lock (processes on several machines sharing one MotherDuck database) can both read
# the same head; the unique sequence makes the second commit fail instead of forking the chain, and it retries.
AUDIT_SEQUENCE_INDEX = f"create unique index if not exists {AUDIT_TABLE}_sequence on {SCHEMA}.{AUDIT_TABLE} (sequence)"
AUDIT_APPEND_ATTEMPTS = 20


def _lost_append_race(error: Exception) -> bool:
    """Another writer committed first: the same sequence (unique index) or a concurrent catalog change."""
    text = str(error).lower()
    return isinstance(error, duckdb.ConstraintException | duckdb.TransactionException) and (
        "duplicate key" in text or "conflict" in text
    )


def append_audit(warehouse: DuckDBWarehouse, records: pd.DataFrame, anchors: Sequence[AuditAnchor] = ()) -> AuditAppend:
    """Append `records` to the chain in one transaction that reads the head first. Refuses to append when a
    recorded head is missing. A writer that loses the race for the next sequence (possible only when writers
    do not share DuckDB's file lock, e.g. a shared MotherDuck database) rolls back and retries on the new
    head, so the chain never forks."""
    # Threads of one process share DuckDB's database instance, where concurrent appends would conflict and
    # retry: a lock per warehouse file serializes them instead, as the file lock serializes processes.
    with _append_lock(warehouse):
        for attempt in range(1, AUDIT_APPEND_ATTEMPTS + 1):
            try:
                with warehouse.transaction() as connection:
                    return _append_audit_once(connection, records, anchors)
            except (duckdb.ConstraintException, duckdb.TransactionException) as error:
                if not _lost_append_race(error) or attempt == AUDIT_APPEND_ATTEMPTS:
                    raise AuditChainError(
                        f"could not append to {AUDIT_TABLE} after {attempt} attempt(s): {error}"
                    ) from None
                time.sleep(min(0.5, 0.01 * attempt) * (0.5 + random.random()))  # jitter: writers spread out
    raise AssertionError("unreachable")


def _one_row(cursor: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The row of a query that always returns one (an aggregate, or the head record of a non-empty chain read in
    the same transaction)."""
    row = cursor.fetchone()
    if row is None:
        raise AuditChainError(f"{AUDIT_TABLE}: a query that always returns a row returned none")
    return row


def _append_audit_once(
    connection: duckdb.DuckDBPyConnection, records: pd.DataFrame, anchors: Sequence[AuditAnchor]
) -> AuditAppend:
    connection.execute(AUDIT_DDL)
    table = f"{SCHEMA}.{AUDIT_TABLE}"
    indexed = _one_row(
        connection.execute(
            "select count(*) from duckdb_indexes() where table_name = ? and index_name = ?",
            [AUDIT_TABLE, f"{AUDIT_TABLE}_sequence"],
        )
    )[0]
    if not indexed:  # a table from before the unique sequence: refuse a chain that already forked
        forked = connection.execute(
            f"select sequence from {table} group by sequence having count(*) > 1 order by sequence limit 5"
        ).fetchall()
        if forked:
            raise AuditChainError(
                f"{AUDIT_TABLE} holds more than one record with sequence {', '.join(str(r[0]) for r in forked)}: "
                "the chain has forked (two writers appended at once without a shared lock); export it with "
                "`personalize audit-export` and restore a linear chain before screening again"
            )
        connection.execute(AUDIT_SEQUENCE_INDEX)
    # Head, root and the recorded anchor come from aggregates over every record, never from a `where sequence
    # = n` lookup: after a writer was killed mid-run, DuckDB (1.5.5) can answer such a filter with no row for a
    # record that a plain scan returns (tests/test_fault_injection.py saw `where sequence = 7` empty with 0..7
    # stored), which would read as a deleted chain head and stop screening for good.
    count, head_sequence, head_hash, root = _one_row(
        connection.execute(
            f"select count(*), max(sequence), arg_max(record_hash, sequence), "
            f"max(case when sequence = 0 then record_hash end) from {table}"
        )
    )
    if count and root is None:
        raise AuditChainError(
            f"{AUDIT_TABLE} has {count} records but none with sequence 0: the start of the chain was "
            "deleted; restore the table before screening again"
        )
    anchor = latest_anchor(anchors, root)
    if anchor is not None:
        stored = _one_row(
            connection.execute(
                f"select max(case when sequence = ? then record_hash end) from {table}", [anchor.sequence]
            )
        )
        if stored[0] != anchor.record_hash:
            raise AuditChainError(
                f"{AUDIT_TABLE} no longer holds the head recorded earlier (sequence {anchor.sequence}, "
                f"hash {anchor.record_hash[:12]}...): records were deleted or rewritten; restore the "
                "table before screening again"
            )
    prev_hash, next_sequence = GENESIS_HASH, 0
    if count:
        prev_hash, next_sequence = head_hash, int(head_sequence) + 1
    chained = chain_audit_records(records, prev_hash, next_sequence)
    if not chained.empty:
        connection.register("new_audit_records", chained)
        connection.execute(f"insert into {table} by name select * from new_audit_records")
        connection.unregister("new_audit_records")
    head_hash = str(chained["record_hash"].iloc[-1]) if len(chained) else prev_hash
    final_sequence = next_sequence + len(chained) - 1
    root = root or (str(chained["record_hash"].iloc[0]) if len(chained) else GENESIS_HASH)
    return AuditAppend(len(chained), final_sequence, head_hash, root, new_chain=bool(anchors) and anchor is None)


def read_audit(warehouse: DuckDBWarehouse) -> pd.DataFrame:
    """The whole audit log in chain order (empty frame with the columns when there is none)."""
    if not warehouse.table_exists(AUDIT_TABLE):
        return pd.DataFrame(columns=AUDIT_COLUMNS)
    return warehouse.read_table(AUDIT_TABLE, "order by sequence")[AUDIT_COLUMNS]


@dataclass(frozen=True)
class AuditExport:
    path: Path
    records: int
    ok: bool
    message: str


def export_audit_csv(warehouse: DuckDBWarehouse, out: str | Path) -> AuditExport:
    """Write the audit log to CSV in chain order, timestamps as the hashed UTC form, so the file re-verifies.

    The chain is verified first; the file is written either way (a broken chain is evidence too).
    """
    if not warehouse.table_exists(AUDIT_TABLE):
        raise ValueError(f"no {AUDIT_TABLE} table in the warehouse {warehouse.path}: materialize safety_verdicts first")
    audit = read_audit(warehouse)
    verification = verify_audit_chain(audit)
    export = audit.copy()
    export["screened_at"] = pd.to_datetime(export["screened_at"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    export.to_csv(path, index=False)
    return AuditExport(path, len(export), verification.ok, verification.message)
