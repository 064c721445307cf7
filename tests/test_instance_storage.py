"""The pooled SQLite event log (personalization_assets/instance_storage.py) stores what Dagster's own stores.

Run shards after the first skip Alembic: their schema and revision must be exactly what Dagster's own path
creates. The storage remembers which index tables exist: a table that appears later must still be found."""

import sqlite3

import pytest
from dagster import DagsterEventType, job, op
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.test_utils import instance_for_test

from personalization_assets.instance_storage import PooledSqliteEventLogStorage


@op
def one() -> int:
    return 1


@job
def tiny_job():
    one()


def _schema(path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        tables = db.execute("select type, name, sql from sqlite_master order by type, name").fetchall()
        revision = db.execute("select version_num from alembic_version").fetchall()
        journal = db.execute("pragma journal_mode").fetchone()
    return [*tables, ("revision", *revision), ("journal_mode", *journal)]


@pytest.fixture
def pooled(tmp_path):
    storage = {"module": "personalization_assets.instance_storage", "class": "PooledSqliteEventLogStorage"}
    storage["config"] = {"base_dir": str(tmp_path / "pooled")}  # type: ignore[assignment]
    with instance_for_test(overrides={"event_log_storage": storage}) as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        yield instance


def test_run_shards_match_dagsters_own(pooled, tmp_path):
    runs = [tiny_job.execute_in_process(instance=pooled).run_id for _ in range(3)]
    for run_id in runs:  # every run's events are stored and read back
        records = pooled.get_records_for_run(run_id, of_type=DagsterEventType.RUN_SUCCESS).records
        assert len(records) == 1

    reference = SqliteEventLogStorage(str(tmp_path / "dagster"))
    with reference.run_connection("reference"):
        pass
    expected = _schema(tmp_path / "dagster" / "reference.db")
    for run_id in runs:  # the first shard took Alembic's path, the later ones the copied stamp
        assert _schema(tmp_path / "pooled" / f"{run_id}.db") == expected
    reference.dispose()


def test_a_table_present_is_remembered_and_an_absent_one_asked_again(pooled):
    storage = pooled.event_log_storage
    assert storage.has_table("asset_check_executions")
    assert "asset_check_executions" in storage._tables_present
    assert not storage.has_table("late_table")
    with sqlite3.connect(storage.path_for_shard("index")) as db:
        db.execute("create table late_table (id integer)")
    assert storage.has_table("late_table")


def test_materializations_and_check_events_are_queryable(pooled):
    from dagster import AssetCheckResult, asset, asset_check, materialize

    @asset
    def numbers() -> int:
        return 3

    @asset_check(asset=numbers)
    def positive(numbers: int) -> AssetCheckResult:
        return AssetCheckResult(passed=numbers > 0)

    result = materialize([numbers, positive], instance=pooled)
    assert result.success
    materializations = pooled.fetch_materializations(numbers.key, limit=5).records
    assert len(materializations) == 1
    check_key = next(iter(positive.check_keys))
    executions = pooled.event_log_storage.get_latest_asset_check_execution_by_key([check_key])
    assert executions[check_key].status.value == "SUCCEEDED"
