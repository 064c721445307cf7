"""The DuckDB warehouse: a resource for direct SQL and the IO manager that stores every asset in it.

Two properties the stock dagster-duckdb IO manager does not give, and this one does:
- **Atomic partition replacement.** Deleting a segment's old rows and inserting the new ones happen in one
  transaction, so a run killed mid-write leaves either the old partition or the new one, never half of each.
- **Columns matched by name.** Inserts use `INSERT ... BY NAME`, so a reordered DataFrame cannot silently write
  values into the wrong columns, and an empty partition still creates its table.
DuckDB allows one writing process per file; opening is retried with backoff while another process (a parallel
partition run) holds the lock.

**One open database per process.** Opening the file costs ~14 ms and closing the last connection ~6 ms (it
checkpoints), and a segment run connects ~50 times (every read, write and check). So the process keeps one
read-write connection to a local file (the "anchor") and hands out a cursor of it per `connect()`; each cursor is
its own connection with its own transactions, so threads do not share one. The anchor is closed, releasing the
file lock for other processes (parallel partition runs, the notebook kernel, a reader), when no cursor has been in
use for `IDLE_RELEASE_SECONDS`, when it has been held `MAX_HOLD_SECONDS` and its last cursor closes, at the end of
each run (`release_after_run`, the resource's teardown), and before a fork (a child opens its own). A process
that runs one run after another and nothing else between them (`personalize run` without `--parallel`) holds the
anchor across them (`held_between_runs`): only idleness and the process's end release it, so it is not closed and
checkpointed at every run's end and reopened at the next run's start (0.3-0.5 s of a sample `personalize run`);
another process waiting for the file gets it whenever the runs leave it unused for `IDLE_RELEASE_SECONDS`.
DuckDB refuses a read-only connection in a process that holds the same file read-write, so a read-only
`connect()` is a cursor of the anchor while one is open, and otherwise a read-only connection of its own as before.
"""

import atexit
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
from dagster import (
    ConfigurableIOManagerFactory,
    ConfigurableResource,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
)
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb.io_manager import DuckDbClient
from pydantic import Field

from personalization_assets.config import ENV_WAREHOUSE, default_path
from personalization_assets.lib.frames import arrow_to_pandas

SCHEMA = "main"
MAX_LOCK_RETRY_DELAY_SECONDS = 0.2
# duckdb.connect() opening a file another thread of this process is opening at the same moment fails with
# "Unique file handle conflict": opening is serialized (a millisecond), the connections then run in parallel.
_OPEN_LOCK = threading.Lock()
REMOTE_PREFIXES = ("md:", "motherduck:")  # DuckDB paths of MotherDuck databases, not files
IDLE_RELEASE_SECONDS = 0.25  # close the process's connection when unused this long (other processes need the lock)
MAX_HOLD_SECONDS = 1.0  # ... and when its last cursor closes after it has been open this long (no starving others)


class _Anchor:
    """The process's open read-write connection to one database file, and how many cursors of it are in use."""

    def __init__(self, connection: duckdb.DuckDBPyConnection):
        self.connection = connection
        self.users = 0
        self.opened = time.monotonic()
        self.last_used = self.opened


_ANCHORS: dict[str, _Anchor] = {}
_ANCHORS_LOCK = threading.RLock()
_HELD_BETWEEN_RUNS = threading.Event()  # set by `held_between_runs`
_FORGOTTEN: list[_Anchor] = []  # inherited across a fork: never used or closed in the child


def _close_anchor(path: str) -> None:
    anchor = _ANCHORS.pop(path, None)
    if anchor is not None:
        anchor.connection.close()


def release_connections() -> None:
    """Close this process's idle warehouse connections now (end of a run): other processes can take the lock.
    Connections with a cursor in use are closed when their last cursor closes."""
    with _ANCHORS_LOCK:
        for path, anchor in list(_ANCHORS.items()):
            if anchor.users == 0:
                _close_anchor(path)
            else:
                anchor.opened = -MAX_HOLD_SECONDS  # closed as soon as its last cursor closes


def release_after_run() -> None:
    """The end of a run: `release_connections`, unless the process holds the warehouse between its runs."""
    if not _HELD_BETWEEN_RUNS.is_set():
        release_connections()


@contextmanager
def held_between_runs() -> Iterator[None]:
    """Within the block, the end of a run and the hold limit do not close the process's connection (see the module
    docstring); it is released when idle and when the block ends."""
    _HELD_BETWEEN_RUNS.set()
    try:
        yield
    finally:
        _HELD_BETWEEN_RUNS.clear()
        release_connections()


def _release_if_idle(path: str, anchor: _Anchor) -> None:
    with _ANCHORS_LOCK:
        if (
            _ANCHORS.get(path) is anchor
            and anchor.users == 0
            and time.monotonic() - anchor.last_used >= IDLE_RELEASE_SECONDS * 0.9
        ):
            _close_anchor(path)


def _before_fork() -> None:
    # A forked child must not inherit an open database: DuckDB would hand the child the parent's instance (its
    # cache is keyed by path), without the file lock, and the child's writes would be lost. Idle ones are
    # closed here, in the parent (they reopen on the next connect); one with a cursor in use at that moment
    # stays open, as a short-lived connection did before.
    _ANCHORS_LOCK.acquire()
    for path, anchor in list(_ANCHORS.items()):
        if anchor.users == 0:
            _close_anchor(path)


def _after_fork_in_parent() -> None:
    _ANCHORS_LOCK.release()


def _forget_after_fork() -> None:
    # In the child: never use or close what the parent had open (closing would checkpoint the parent's file).
    global _ANCHORS_LOCK
    _FORGOTTEN.extend(_ANCHORS.values())
    _ANCHORS.clear()
    _ANCHORS_LOCK = threading.RLock()


atexit.register(release_connections)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_forget_after_fork)


class WarehouseLockedError(RuntimeError):
    """Another process held the warehouse's write lock for longer than the configured wait."""


def _is_lock_conflict(error: Exception) -> bool:
    text = str(error).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


def table_exists(connection: duckdb.DuckDBPyConnection, table: str, schema: str = SCHEMA) -> bool:
    query = "select count(*) from information_schema.tables where table_schema = ? and table_name = ?"
    (count,) = connection.execute(query, [schema, table]).fetchone() or (0,)
    return bool(count)


class DuckDBWarehouse(ConfigurableResource):
    """The DuckDB file every table of the pipeline lives in."""

    path: str = Field(
        default_factory=lambda: default_path(ENV_WAREHOUSE, "data/warehouse.duckdb"),
        description="DuckDB database file. Env: PERSONALIZATION_WAREHOUSE.",
    )
    lock_timeout_seconds: float = Field(
        default=120.0, description="How long to wait for another process's write lock before failing."
    )

    @property
    def is_local_file(self) -> bool:
        """False for a MotherDuck database (`md:<name>`, a DuckDB service shared by several machines)."""
        return not self.path.startswith(REMOTE_PREFIXES)

    def exists(self) -> bool:
        """Whether there is a database to read: the local file exists (a MotherDuck database always does)."""
        return not self.is_local_file or Path(self.path).exists()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """duckdb.connect, waiting (with backoff, up to lock_timeout_seconds) while another process holds the lock."""
        if self.is_local_file:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_seconds
        # Short waits: another process's hold is usually one statement or one partition write, and parallel
        # partition runs lose more to oversleeping than to retrying a refused connect (a millisecond).
        delay = 0.01
        while True:
            try:
                with _OPEN_LOCK:
                    return duckdb.connect(self.path, read_only=read_only)
            except (duckdb.IOException, duckdb.ConnectionException) as error:
                if not _is_lock_conflict(error) or time.monotonic() > deadline:
                    if _is_lock_conflict(error):
                        raise WarehouseLockedError(
                            f"warehouse {self.path} stayed locked by another process for "
                            f"{self.lock_timeout_seconds:.0f}s: {error}"
                        ) from None
                    raise
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, MAX_LOCK_RETRY_DELAY_SECONDS)

    def _anchor_key(self) -> str:
        return os.path.realpath(self.path)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection of its own (a cursor of the process's open database for a local file; see the module
        docstring), closed on exit."""
        if not self.is_local_file:
            connection = self._open(read_only)
            try:
                yield connection
            finally:
                connection.close()
            return
        key = self._anchor_key()
        with _ANCHORS_LOCK:
            anchor = _ANCHORS.get(key)
            if anchor is None and read_only:
                own = None
            else:
                if anchor is None:
                    anchor = _ANCHORS[key] = _Anchor(self._open(read_only=False))
                anchor.users += 1
                own = anchor
        if own is None:
            connection = self._open(read_only=True)
            try:
                yield connection
            finally:
                connection.close()
            return
        try:
            with _ANCHORS_LOCK:
                cursor = own.connection.cursor()
        except BaseException:
            self._done(key, own)
            raise
        try:
            yield cursor
        finally:
            try:
                cursor.close()
            finally:
                self._done(key, own)

    @staticmethod
    def _done(key: str, anchor: _Anchor) -> None:
        with _ANCHORS_LOCK:
            anchor.users -= 1
            anchor.last_used = time.monotonic()
            if anchor.users or _ANCHORS.get(key) is not anchor:
                return
            if anchor.last_used - anchor.opened >= MAX_HOLD_SECONDS and not _HELD_BETWEEN_RUNS.is_set():
                _close_anchor(key)
                return
        timer = threading.Timer(IDLE_RELEASE_SECONDS, _release_if_idle, args=(key, anchor))
        timer.daemon = True
        timer.start()

    def teardown_after_execution(self, context) -> None:  # end of a run (or a step in its own process)
        release_after_run()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside BEGIN/COMMIT; any exception rolls everything back."""
        with self.connect() as connection:
            connection.begin()
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    def table_exists(self, table: str, connection: duckdb.DuckDBPyConnection | None = None) -> bool:
        if connection is not None:
            return table_exists(connection, table)
        if not self.exists():
            return False
        with self.connect() as own:
            return table_exists(own, table)

    def read_table(self, table: str, where: str = "", params: Sequence[object] = ()) -> pd.DataFrame:
        with self.connect() as connection:
            if not self.table_exists(table, connection):
                return pd.DataFrame()
            return arrow_to_pandas(
                connection.execute(f"select * from {SCHEMA}.{table} {where}", list(params)).to_arrow_table()
            )

    def delete_segments(self, tables: Sequence[str], segments: Sequence[str]) -> dict[str, int]:
        """Remove rows of `segments` from every existing table in `tables`, in one transaction."""
        deleted: dict[str, int] = {}
        if not segments:
            return deleted
        with self.transaction() as connection:
            for table in tables:
                if self.table_exists(table, connection):
                    count = connection.execute(
                        f"delete from {SCHEMA}.{table} where segment in (select unnest(?))", [list(segments)]
                    ).fetchone()
                    deleted[table] = int(count[0]) if count else 0
        return deleted


class _TransactionalDuckDbClient(DuckDbClient):
    """DuckDbClient whose connection wraps the delete and the insert of one output in one transaction."""

    def __init__(self, warehouse: DuckDBWarehouse):
        self._warehouse = warehouse

    @contextmanager
    def connect(self, context, table_slice):  # type: ignore[override]
        with self._warehouse.transaction() as connection:
            yield connection

    @staticmethod
    def delete_table_slice(context: OutputContext, table_slice: TableSlice, connection) -> None:
        # A failed statement aborts the whole transaction, so test for the table instead of catching the error.
        if _table_exists(connection, table_slice):
            DuckDbClient.delete_table_slice(context, table_slice, connection)


def _table_exists(connection, table_slice: TableSlice) -> bool:
    return table_exists(connection, table_slice.table, table_slice.schema)


class _PandasByNameTypeHandler(DbTypeHandler[pd.DataFrame]):
    def handle_output(self, context: OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection) -> None:
        table = f"{table_slice.schema}.{table_slice.table}"
        source = _as_arrow(obj)  # noqa: F841 - DuckDB's SQL below reads the local variable `source` by name
        exists = _table_exists(connection, table_slice)
        if exists:
            stored = [row[0] for row in connection.execute(f"describe {table}").fetchall()]
            if not table_slice.partition_dimensions and stored != list(obj.columns):
                # A whole-table asset whose columns changed: replace the table (inside the same transaction).
                connection.execute(f"drop table {table}")
                exists = False
            else:
                for column in obj.columns:
                    if column not in stored:
                        column_type = connection.execute(f'select typeof("{column}") from source limit 1').fetchone()
                        connection.execute(
                            f'alter table {table} add column "{column}" {column_type[0] if column_type else "VARCHAR"}'
                        )
        if not exists:
            connection.execute(f"create table {table} as select {_typed_select_list(obj)} from source limit 0")
        if not obj.empty:
            connection.execute(f"insert into {table} by name select * from source")

        context.add_output_metadata(
            {
                **(
                    TableMetadataSet(partition_row_count=len(obj))
                    if context.has_partition_key
                    else TableMetadataSet(row_count=len(obj))
                ),
                "dagster/column_schema": MetadataValue.table_schema(
                    TableSchema(columns=[TableColumn(name=str(n), type=str(t)) for n, t in obj.dtypes.items()])
                ),
            }
        )

    def load_input(self, context: InputContext, table_slice: TableSlice, connection) -> pd.DataFrame:
        if table_slice.partition_dimensions and len(context.asset_partition_keys) == 0:
            return pd.DataFrame()
        if not _table_exists(connection, table_slice):
            raise FileNotFoundError(
                f"table '{table_slice.table}' is not in the warehouse yet: materialize the asset "
                f"'{table_slice.table}' first"
            )
        return arrow_to_pandas(connection.execute(DuckDbClient.get_select_statement(table_slice)).to_arrow_table())

    @property
    def supported_types(self):
        return [pd.DataFrame]


def _as_arrow(frame: pd.DataFrame) -> "pa.Table | pd.DataFrame":
    """Arrow for DuckDB to scan without copying; frames Arrow cannot type (mixed objects) go in as they are."""
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return frame


def _typed_select_list(frame: pd.DataFrame) -> str:
    """Columns for CREATE TABLE AS; text columns with no values yet (an empty partition) become VARCHAR instead
    of DuckDB's guess, so the next partition's strings fit."""
    items = []
    for column in frame.columns:
        if frame[column].dtype == object and frame[column].isna().all():
            items.append(f'cast("{column}" as varchar) as "{column}"')
        else:
            items.append(f'"{column}"')
    return ", ".join(items)


class WarehouseIOManager(ConfigurableIOManagerFactory):
    """Stores each asset as a table in the warehouse; partitioned assets replace their segment's rows."""

    warehouse: DuckDBWarehouse

    def create_io_manager(self, context) -> DbIOManager:
        return DbIOManager(
            db_client=_TransactionalDuckDbClient(self.warehouse),
            database=self.warehouse.path,
            schema=SCHEMA,
            type_handlers=[_PandasByNameTypeHandler()],
            default_load_type=pd.DataFrame,
            io_manager_name="WarehouseIOManager",
        )
