"""The Dagster instance's event log on SQLite without a disk flush per event (dagster.yaml `event_log_storage`).

Dagster's `SqliteEventLogStorage` opens and closes a database connection for every event it stores. Closing
the last connection to a WAL database checkpoints the log into the database file and syncs it to disk: on
the development machine that cost 14-26 ms per event, and a segment's campaign run stores about 160 events
(seconds per run, most of the orchestration overhead measured in docs/benchmarks.md). This storage keeps
each shard's connections open in a small pool and sets `synchronous=NORMAL`, SQLite's recommended setting for
WAL mode: a commit is durable against a crash of the process, and after a power loss the database is
consistent but may lack the last events. Everything else (schema, queries, the UI's live view of a run) is
Dagster's own; the live view also watches the WAL file, where the events now land first.

Each run has its own shard (a database file) that Dagster initializes by checking and stamping its Alembic
revision, which loads every migration script (0.3-0.8 s per run on the development machine). After the first run
shard of the process, a new run shard gets the same tables and the same `alembic_version` table and revision the
first one got from Alembic, without loading the scripts again (the index shard always takes Dagster's path).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Field, StringSource
from dagster._core.storage.event_log.schema import SqlEventLogStorageMetadata
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SqliteEventLogStorage,
    SqliteEventLogStorageWatchdog,
)
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError
from sqlalchemy.pool import QueuePool
from watchdog.events import PatternMatchingEventHandler
from watchdog.observers.api import BaseObserver

OPEN_SHARDS = 8  # run shards with open connections (the index and the runs in progress); older ones close


def _normal_sync(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` whose connections stay open between events (see the module docstring).

    dagster.yaml::

        event_log_storage:
          module: personalization_assets.instance_storage
          class: PooledSqliteEventLogStorage

    `base_dir` defaults to Dagster's own place for it, `$DAGSTER_HOME/history/runs`.
    """

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._stamp: tuple[str, str] | None = None  # a run shard's alembic_version DDL and revision (see above)
        self._tables_present: set[str] = set()
        super().__init__(base_dir, inst_data)

    def has_table(self, table_name: str) -> bool:
        """Dagster asks for every asset-check event and dynamic-partition lookup whether an index-shard table exists
        (a new engine and a schema query each time, ~10 ms). A table that exists stays (migrations add tables),
        so a yes is remembered; a no is asked again."""
        if table_name in self._tables_present:
            return True
        present = super().has_table(table_name)
        if present:
            self._tables_present.add(table_name)
        return present

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        base_dir = config_value.get("base_dir")
        if not base_dir:
            home = os.environ.get("DAGSTER_HOME")
            if not home:
                raise ValueError("PooledSqliteEventLogStorage: set DAGSTER_HOME or event_log_storage.config.base_dir")
            base_dir = os.path.join(home, "history", "runs")
        return cls(base_dir, inst_data)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.pop(shard, None)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=QueuePool,
                    pool_size=1,
                    max_overflow=4,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
                )
                event.listen(engine, "connect", _normal_sync)
            self._engines[shard] = engine
            while len(self._engines) > OPEN_SHARDS:
                self._engines.popitem(last=False)[1].dispose()
            return engine

    def _close_shard(self, shard: str) -> None:
        with self._engines_lock:
            engine = self._engines.pop(shard, None)
        if engine is not None:
            engine.dispose()

    @contextmanager
    def _connect(self, shard: str) -> Iterator:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as connection, connection.begin():
                yield connection

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        if for_index_shard or self._stamp is None:
            super()._initdb(engine, for_index_shard)
            if not for_index_shard:
                with engine.connect() as connection:
                    ddl = connection.execute(
                        text("select sql from sqlite_master where type = 'table' and name = 'alembic_version'")
                    ).scalar()
                    revision = connection.execute(text("select version_num from alembic_version")).scalar()
                if ddl and revision:
                    self._stamp = (ddl, revision)
            return
        ddl, revision = self._stamp
        with engine.connect() as connection:
            stamped = connection.execute(
                text("select count(*) from sqlite_master where type = 'table' and name = 'alembic_version'")
            ).scalar()
        if stamped:  # an existing shard (or another process got there first): Dagster's own check
            super()._initdb(engine, for_index_shard)
            return
        try:
            # WAL first (it is a property of the file): in rollback-journal mode each CREATE of the schema
            # commits with a disk sync, ~40 ms a shard on the development machine against ~6 ms.
            with engine.connect() as connection:
                connection.execute(text("PRAGMA journal_mode=WAL;"))
            SqlEventLogStorageMetadata.create_all(engine)
            with engine.connect() as connection:
                connection.execute(text(ddl))
                connection.execute(
                    text("insert into alembic_version (version_num) values (:revision)"), {"revision": revision}
                )
                connection.commit()
        except DatabaseError:  # another process initialized it at the same moment: Dagster's check and retries
            super()._initdb(engine, for_index_shard)

    def delete_events(self, run_id: str) -> None:
        super().delete_events(run_id)
        self._close_shard(run_id)

    def wipe(self) -> None:
        for shard in list(self._engines):
            self._close_shard(shard)
        self._tables_present.clear()
        super().wipe()

    def watch(self, run_id: str, cursor: str | None, callback) -> None:
        """Dagster's watcher reacts to changes of the run's database file; the WAL file changes first."""
        observer = self._obs or self._start_observer()
        watchdog = _WalAwareWatchdog(self, run_id, callback, cursor)
        self._watchers[run_id][callback] = (watchdog, observer.schedule(watchdog, self._base_dir, recursive=True))

    def _start_observer(self) -> BaseObserver:
        from watchdog.observers import Observer

        observer = Observer()
        observer.start()
        # Dagster's SqliteEventLogStorage.__init__ sets `self._obs = None` without an annotation, so its inferred
        # type is None; the attribute really holds the observer once one is started.
        self._obs = observer  # type: ignore[assignment]
        return observer

    def dispose(self) -> None:
        for shard in list(self._engines):
            self._close_shard(shard)
        super().dispose()


class _WalAwareWatchdog(SqliteEventLogStorageWatchdog):
    def __init__(self, event_log_storage, run_id, callback, cursor, **kwargs):
        super().__init__(event_log_storage, run_id, callback, cursor, **kwargs)
        PatternMatchingEventHandler.__init__(self, patterns=[self._log_path, self._log_path + "-wal"], **kwargs)

    def on_modified(self, event) -> None:
        if event.src_path in (self._log_path, self._log_path + "-wal"):
            self._process_log()
