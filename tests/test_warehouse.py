"""The warehouse IO manager: partition replacement is atomic, by column name, and survives lock contention."""

import multiprocessing
import time

import duckdb
import pandas as pd
import pytest
from dagster import DagsterInstance, asset, materialize

import resources.warehouse as warehouse_module
from personalization_assets.constants import SEGMENT_PARTITION_METADATA
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME, segment_partitions
from resources.warehouse import (
    DuckDBWarehouse,
    WarehouseIOManager,
    held_between_runs,
    release_after_run,
    release_connections,
)

ROWS = {"a": 3, "b": 2}


@asset(partitions_def=segment_partitions, metadata=SEGMENT_PARTITION_METADATA)
def per_segment(context) -> pd.DataFrame:
    key = context.partition_key
    count = int(context.run.tags.get("rows", ROWS[key]))
    if context.run.tags.get("reorder"):
        return pd.DataFrame({"value": range(count), "segment": key})
    if context.run.tags.get("break"):
        # A value DuckDB cannot put in the existing BIGINT column: the insert fails after the delete ran.
        return pd.DataFrame({"segment": key, "value": ["not a number"] * count})
    return pd.DataFrame({"segment": key, "value": range(count)})


@pytest.fixture
def partitioned_instance(instance):
    instance.add_dynamic_partitions(SEGMENT_PARTITIONS_NAME, list(ROWS))
    return instance


def run(instance, warehouse, key, **tags):
    return materialize(
        [per_segment],
        partition_key=key,
        instance=instance,
        resources={"io_manager": WarehouseIOManager(warehouse=warehouse)},
        tags={k: str(v) for k, v in tags.items()},
        raise_on_error=False,
    )


def counts(warehouse) -> dict[str, int]:
    frame = warehouse.read_table("per_segment")
    return frame.groupby("segment").size().to_dict()


def test_rematerializing_a_partition_replaces_only_its_rows(partitioned_instance, warehouse):
    for key in ROWS:
        assert run(partitioned_instance, warehouse, key).success
    assert counts(warehouse) == {"a": 3, "b": 2}
    assert run(partitioned_instance, warehouse, "a").success
    assert run(partitioned_instance, warehouse, "a", rows=5).success
    assert counts(warehouse) == {"a": 5, "b": 2}


def test_failed_write_keeps_the_old_partition(partitioned_instance, warehouse):
    assert run(partitioned_instance, warehouse, "a").success
    assert not run(partitioned_instance, warehouse, "a", **{"break": 1}).success
    assert counts(warehouse) == {"a": 3}


def test_columns_are_matched_by_name(partitioned_instance, warehouse):
    assert run(partitioned_instance, warehouse, "a").success
    assert run(partitioned_instance, warehouse, "b", reorder=1).success
    frame = warehouse.read_table("per_segment")
    assert set(frame["segment"]) == {"a", "b"} and frame["value"].max() == 2


def test_empty_partition_creates_table_and_clears_rows(partitioned_instance, warehouse):
    assert run(partitioned_instance, warehouse, "a", rows=0).success
    assert warehouse.table_exists("per_segment") and counts(warehouse) == {}
    assert run(partitioned_instance, warehouse, "a").success
    assert run(partitioned_instance, warehouse, "a", rows=0).success
    assert counts(warehouse) == {}


def _hold_lock(path: str, ready, release) -> None:
    connection = duckdb.connect(path)
    ready.set()
    release.wait(10)
    connection.close()


def test_connect_waits_for_another_process_lock(tmp_path):
    path = str(tmp_path / "locked.duckdb")
    duckdb.connect(path).close()
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(path, ready, release))
    holder.start()
    try:
        assert ready.wait(20)
        impatient = DuckDBWarehouse(path=path, lock_timeout_seconds=0.3)
        with pytest.raises(RuntimeError, match="stayed locked by another process"), impatient.connect():
            pass
        release.set()  # the patient one gets the lock once the holder lets go
        with DuckDBWarehouse(path=path, lock_timeout_seconds=20).connect() as connection:
            assert connection.execute("select 1").fetchone() == (1,)
    finally:
        release.set()
        holder.join(10)


def test_transaction_rolls_back_on_error(warehouse):
    with warehouse.transaction() as connection:
        connection.execute("create table t (x int)")
    with pytest.raises(ZeroDivisionError), warehouse.transaction() as connection:
        connection.execute("insert into t values (1)")
        raise ZeroDivisionError
    assert warehouse.read_table("t").empty


def test_delete_segments_only_touches_named_segments(warehouse):
    with warehouse.transaction() as connection:
        connection.execute("create table t (segment varchar, x int)")
        connection.execute("insert into t values ('a', 1), ('b', 2), ('c', 3)")
    assert warehouse.delete_segments(["t", "missing_table"], ["a", "c"]) == {"t": 2}
    assert list(warehouse.read_table("t")["segment"]) == ["b"]


def test_instance_fixture_is_isolated():
    with DagsterInstance.ephemeral() as fresh:
        assert fresh.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME) == []


def _read_only_count(path: str, result) -> None:
    with duckdb.connect(path, read_only=True) as connection:
        result.put(connection.execute("select count(*) from t").fetchone()[0])


def test_released_connection_lets_another_process_read(warehouse):
    with warehouse.transaction() as connection:
        connection.execute("create table t as select 1 as x")
    release_connections()  # what the end of every run does
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    reader = context.Process(target=_read_only_count, args=(warehouse.path, result))
    reader.start()
    reader.join(60)
    assert reader.exitcode == 0
    assert result.get(timeout=5) == 1


def _open_anchor(warehouse) -> object:
    return warehouse_module._ANCHORS.get(warehouse._anchor_key())


def test_runs_one_after_another_keep_the_warehouse_open_until_idle(warehouse, monkeypatch):
    with warehouse.transaction() as connection:
        connection.execute("create table t as select 1 as x")
    release_after_run()  # outside the hold: a run's end closes the file for other processes
    assert _open_anchor(warehouse) is None

    monkeypatch.setattr(warehouse_module, "MAX_HOLD_SECONDS", 0.0)  # would close at every cursor's end
    monkeypatch.setattr(warehouse_module, "IDLE_RELEASE_SECONDS", 0.3)
    with held_between_runs():
        with warehouse.connect() as connection:
            connection.execute("select 1")
        held = _open_anchor(warehouse)
        release_after_run()  # the end of one run: the next run of this process reuses the connection
        with warehouse.connect() as connection:
            assert connection.execute("select x from t").fetchone() == (1,)
        assert held is not None and _open_anchor(warehouse) is held
        deadline = time.monotonic() + 10
        while _open_anchor(warehouse) is not None and time.monotonic() < deadline:
            time.sleep(0.05)  # unused for IDLE_RELEASE_SECONDS: released for other processes all the same
        assert _open_anchor(warehouse) is None
        with warehouse.connect() as connection:
            connection.execute("select 1")
        assert _open_anchor(warehouse) is not None
    assert _open_anchor(warehouse) is None  # the block's end releases it

    context = multiprocessing.get_context("spawn")  # and another process can read the file
    result = context.Queue()
    reader = context.Process(target=_read_only_count, args=(warehouse.path, result))
    reader.start()
    reader.join(60)
    assert reader.exitcode == 0 and result.get(timeout=5) == 1


def test_read_only_connect_while_the_process_holds_the_file(warehouse):
    # DuckDB refuses a second, read-only database of a file this process has open read-write.
    with warehouse.transaction() as writer:
        writer.execute("create table t as select 1 as x")
        with warehouse.connect(read_only=True) as reader:  # its own transaction: the table is not committed yet
            assert reader.execute("select count(*) from information_schema.tables").fetchone() == (0,)
    with warehouse.connect(read_only=True) as reader:
        assert reader.execute("select x from t").fetchone() == (1,)
    release_connections()


def test_threads_get_their_own_transactions(warehouse):
    with warehouse.transaction() as connection:
        connection.execute("create table t (x int)")
    with warehouse.transaction() as first:
        first.execute("insert into t values (1)")
        with warehouse.connect() as second:  # another cursor: the uncommitted row is not visible to it
            assert second.execute("select count(*) from t").fetchone() == (0,)
    assert len(warehouse.read_table("t")) == 1
    release_connections()


def _write_in_child(path: str) -> None:
    with DuckDBWarehouse(path=path).transaction() as connection:
        connection.execute("insert into t values (2)")
    release_connections()


def test_forked_child_opens_its_own_connection(warehouse):
    with warehouse.transaction() as connection:
        connection.execute("create table t (x int)")
        connection.execute("insert into t values (1)")
    release_connections()
    with warehouse.connect() as connection:  # the parent holds the file while the child is forked
        connection.execute("select 1")
        child = multiprocessing.get_context("fork").Process(target=_write_in_child, args=(warehouse.path,))
    child.start()  # the child waits for the lock (the parent releases it when idle), then writes with its own
    child.join(60)
    assert child.exitcode == 0
    assert sorted(warehouse.read_table("t")["x"]) == [1, 2]
    release_connections()
