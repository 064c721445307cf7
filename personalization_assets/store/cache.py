"""One cache of paid service answers (model responses, safety screenings) in a warehouse table.

Answers are keyed by a hash of everything that determines them and stored as JSON. New answers are held in memory
and written by `flush()` in one transaction, so a partition that fails stores nothing; a cached answer is never
re-sent to the service on the next run.
"""

import threading
from collections.abc import Iterable
from datetime import UTC, datetime

import pandas as pd

from resources.warehouse import SCHEMA, DuckDBWarehouse

CACHE_COLUMNS = ("cache_key", "backend", "payload_json", "created_at")


class WarehouseCache:
    """JSON payloads by key in `table` (columns: cache_key, backend, payload_json, created_at).

    A table left by an older release with other columns is dropped and rebuilt: it only ever held a cache.
    """

    def __init__(self, warehouse: DuckDBWarehouse | None, table: str, enabled: bool = True):
        self._warehouse = warehouse
        self.table = table
        self.enabled = enabled and warehouse is not None
        self._pending: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._layout_checked = False  # the table is known to exist with CACHE_COLUMNS: no need to ask again

    def lookup(self, keys: Iterable[str]) -> dict[str, str]:
        """The stored payloads of those `keys` that have one, pending ones included (one query for all)."""
        if not self.enabled:
            return {}
        wanted = list(dict.fromkeys(keys))
        with self._lock:
            found = {key: self._pending[key][1] for key in wanted if key in self._pending}
        missing = [key for key in wanted if key not in found]
        if missing and self._layout_is_current():
            rows = self._warehouse.read_table(  # type: ignore[union-attr]
                self.table, "where cache_key in (select unnest(?))", [missing]
            )
            found.update(zip(rows["cache_key"], rows["payload_json"], strict=True))
        return found

    def get(self, key: str) -> str | None:
        return self.lookup([key]).get(key)

    def put(self, key: str, backend: str, payload_json: str) -> None:
        if self.enabled:
            with self._lock:
                self._pending[key] = (backend, payload_json)

    def flush(self) -> int:
        """Write the new payloads in one transaction; returns how many were stored."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not self.enabled or not pending:
            return 0
        rows = pd.DataFrame(
            {
                "cache_key": list(pending),
                "backend": [backend for backend, _ in pending.values()],
                "payload_json": [payload for _, payload in pending.values()],
                "created_at": datetime.now(UTC),
            }
        )
        stale = self._warehouse.table_exists(self.table) and not self._layout_is_current()  # type: ignore[union-attr]
        with self._warehouse.transaction() as connection:  # type: ignore[union-attr]
            if stale:
                connection.execute(f"drop table {SCHEMA}.{self.table}")
            connection.execute(
                f"""create table if not exists {SCHEMA}.{self.table} (cache_key varchar primary key,
                    backend varchar, payload_json varchar, created_at timestamp with time zone)"""
            )
            connection.register("new_cache_rows", rows)
            connection.execute(f"insert or ignore into {SCHEMA}.{self.table} by name select * from new_cache_rows")
            connection.unregister("new_cache_rows")
        self._layout_checked = True
        return len(pending)

    def _layout_is_current(self) -> bool:
        """Whether the table exists with this class's columns (an older release's layout counts as absent)."""
        if self._layout_checked:
            return True
        warehouse = self._warehouse
        if warehouse is None or not warehouse.table_exists(self.table):
            return False
        # A read-write connection like every other in the process: DuckDB refuses a read-only one to a file the
        # process (another thread) holds open read-write.
        with warehouse.connect() as connection:
            columns = connection.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ?"
                " order by ordinal_position",
                [SCHEMA, self.table],
            ).fetchall()
        self._layout_checked = tuple(name for (name,) in columns) == CACHE_COLUMNS
        return self._layout_checked
