"""Warehouse reliability: a process killed mid-write, and concurrent partition runs in separate processes."""

import os
import subprocess
import sys

import pytest
from dagster import DagsterInstance, materialize

from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager
from tests.conftest import PROJECT_ROOT, run_partitions_concurrently
from tests.reliability import warehouse_jobs

PARTITIONS = ["alpha", "beta", "gamma"]


@pytest.fixture
def reliability_env(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        "DAGSTER_HOME": str(home),
        "RELIABILITY_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "RELIABILITY_ROWS": "20000",
        "RELIABILITY_GENERATION": "1",  # set through monkeypatch so changes made by a test are undone after it
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(SEGMENT_PARTITIONS_NAME, PARTITIONS)
    return env


def rows_by_partition(path: str) -> dict[str, tuple[int, int]]:
    frame = DuckDBWarehouse(path=path).read_table("wide_table")
    grouped = frame.groupby("segment").agg(rows=("row", "size"), generation=("generation", "max"))
    return {key: (int(row.rows), int(row.generation)) for key, row in grouped.iterrows()}


def materialize_partition(env: dict, key: str, generation: int):
    os.environ["RELIABILITY_GENERATION"] = str(generation)
    warehouse = DuckDBWarehouse(path=env["RELIABILITY_WAREHOUSE"])
    with DagsterInstance.get() as instance:
        return materialize(
            [warehouse_jobs.wide_table],
            partition_key=key,
            instance=instance,
            resources={"io_manager": WarehouseIOManager(warehouse=warehouse)},
        )


def test_process_killed_mid_write_leaves_old_rows_and_recovers(reliability_env):
    for key in PARTITIONS:
        assert materialize_partition(reliability_env, key, generation=1).success
    before = rows_by_partition(reliability_env["RELIABILITY_WAREHOUSE"])
    assert before == {key: (20000, 1) for key in PARTITIONS}

    env = {**os.environ, **reliability_env, "RELIABILITY_GENERATION": "2"}
    killed = subprocess.run(
        [sys.executable, "-m", "tests.reliability.kill_during_write", "beta"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]

    # The half-written transaction is gone: every partition has exactly its old rows.
    assert rows_by_partition(reliability_env["RELIABILITY_WAREHOUSE"]) == before

    assert materialize_partition(reliability_env, "beta", generation=2).success
    after = rows_by_partition(reliability_env["RELIABILITY_WAREHOUSE"])
    assert after == {"alpha": (20000, 1), "beta": (20000, 2), "gamma": (20000, 1)}


def partition_job():
    return warehouse_jobs.defs.resolve_job_def("partition_job")


def test_concurrent_partition_runs_with_multiprocess_executor(reliability_env):
    """Two runs at once, each with the multiprocess executor, writing different partitions into one DuckDB file."""
    env = {**os.environ, **reliability_env, "RELIABILITY_ROWS": "50000"}
    concurrent = PARTITIONS[:2]
    run_partitions_concurrently("tests.test_reliability_warehouse", "partition_job", concurrent, env)
    counts = rows_by_partition(reliability_env["RELIABILITY_WAREHOUSE"])
    assert counts == {key: (50000, 1) for key in concurrent}
    sizes = DuckDBWarehouse(path=reliability_env["RELIABILITY_WAREHOUSE"]).read_table("second_table")
    assert sorted(sizes["segment"]) == concurrent and set(sizes["size"]) == {50000}
