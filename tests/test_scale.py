"""Scale-out on one machine: segment partitions of the real pipeline running at the same time in separate
processes (`personalize run --parallel`, and runs whose steps use Dagster's multiprocess executor), sharing
one DuckDB warehouse and one Dagster instance. Correctness is asserted, not speed (benchmarks measure that:
scripts/benchmark.py)."""

import os
import shutil
import subprocess
import sys

import pytest
import yaml
from dagster import (
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    define_asset_job,
    multiprocess_executor,
)

from resources.warehouse import DuckDBWarehouse
from tests.conftest import PROJECT_ROOT, run_partitions_concurrently

pytestmark = pytest.mark.slow

CAMPAIGN_PART_ASSETS = ["retrieved_content", "message_variants"]


@pytest.fixture
def pipeline_env(tmp_path) -> dict[str, str]:
    """The shipped sample data and config with two segment rules (at_risk and the default, standard: every
    run of the pipeline costs seconds per segment); a fresh warehouse, reports folder and Dagster instance."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    segmentation = yaml.safe_load((config / "segmentation.yaml").read_text())
    segmentation["rules"] = [rule for rule in segmentation["rules"] if rule["name"] == "At-Risk"]
    (config / "segmentation.yaml").write_text(yaml.safe_dump(segmentation))
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PERSONALIZATION_CONFIG": str(config),
        "PERSONALIZATION_CUSTOMERS": str(PROJECT_ROOT / "data" / "customers.csv"),
        "PERSONALIZATION_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "PERSONALIZATION_REPORTS": str(tmp_path / "reports"),
    }


def personalize(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "personalization_assets.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def runs_of(job_name: str) -> list:
    """Run records of `job_name` in the instance at DAGSTER_HOME, oldest first."""
    with DagsterInstance.get() as instance:
        records = instance.get_run_records()
    return sorted((r for r in records if r.dagster_run.job_name == job_name), key=lambda r: r.start_time)


def overlapping(records) -> int:
    """How many pairs of runs were executing at the same moment."""
    return sum(
        1
        for i, first in enumerate(records)
        for second in records[i + 1 :]
        if first.start_time < second.end_time and second.start_time < first.end_time
    )


def test_personalize_run_parallel_runs_segments_at_once_and_completes_the_campaign(pipeline_env, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", pipeline_env["DAGSTER_HOME"])
    completed = personalize(pipeline_env, "run", "--parallel", "2")
    assert completed.returncode == 0, completed.stderr[-3000:]
    warehouse = DuckDBWarehouse(path=pipeline_env["PERSONALIZATION_WAREHOUSE"])
    segments = sorted(warehouse.read_table("customer_segments")["segment"].unique())
    for segment in segments:
        assert f"segment {segment} ... served: " in completed.stdout, completed.stdout
    assert "campaign report ... ok" in completed.stdout

    records = runs_of("campaign_job")
    assert sorted(r.dagster_run.tags["dagster/partition"] for r in records) == segments
    assert segments == ["at_risk", "standard"] and overlapping(records) == 1  # both in progress together

    # Every customer assigned exactly once, every per-segment table holds every segment.
    with warehouse.connect() as connection:
        unassigned, duplicated = connection.execute(
            "select (select count(*) from customer_segments anti join assignments using (customer_id)),"
            " (select count(*) - count(distinct customer_id) from assignments)"
        ).fetchone()
        per_table = {
            table: sorted(row[0] for row in connection.execute(f"select distinct segment from {table}").fetchall())
            for table in (
                "retrieved_content",
                "message_variants",
                "safety_verdicts",
                "engagement",
                "experiment_metrics",
            )
        }
    assert (unassigned, duplicated) == (0, 0)
    assert per_table == dict.fromkeys(per_table, segments)


def test_parallel_must_be_positive(pipeline_env):
    completed = personalize(pipeline_env, "run", "--parallel", "0")
    assert completed.returncode == 2 and "--parallel must be at least 1, got 0" in completed.stderr


# --- Two partition runs at once, each step in its own process (Dagster's multiprocess executor) -------------


def campaign_part_job():
    """Part of the real campaign (retrieval and generation of one segment, with the checks each evaluates before
    its write) with the code location's assets and resources, each step in a subprocess; reconstructable from
    this module."""
    from personalization_assets.definitions import defs

    job = define_asset_job(
        "campaign_part_job",
        selection=AssetSelection.assets(*CAMPAIGN_PART_ASSETS),
        executor_def=multiprocess_executor.configured({"max_concurrent": 2}),
    )
    return Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, resources=defs.resources, jobs=[job]
    ).resolve_job_def("campaign_part_job")


def test_partition_runs_with_the_multiprocess_executor_share_the_warehouse(pipeline_env, monkeypatch):
    for name in (
        "DAGSTER_HOME",
        "PERSONALIZATION_CONFIG",
        "PERSONALIZATION_CUSTOMERS",
        "PERSONALIZATION_WAREHOUSE",
    ):
        monkeypatch.setenv(name, pipeline_env[name])
    # Segmentation only (registers the segment partitions); then two segments' runs start together. It runs in
    # a subprocess too: the code location reads PERSONALIZATION_* when first imported, which in this pytest
    # process may have happened in an earlier test, before these variables were set.
    segmentation = (
        "from dagster import DagsterInstance\n"
        "from personalization_assets.launch import launch_run\n"
        "from personalization_assets.jobs import SEGMENTATION_JOB\n"
        "with DagsterInstance.get() as instance:\n"
        "    assert launch_run(instance, SEGMENTATION_JOB, 'segmentation').success\n"
    )
    subprocess.run([sys.executable, "-c", segmentation], cwd=PROJECT_ROOT, env=pipeline_env, check=True)
    segments = ["at_risk", "standard"]
    run_partitions_concurrently("tests.test_scale", "campaign_part_job", segments, pipeline_env)

    runs = runs_of("campaign_part_job")
    assert sorted(r.dagster_run.tags["dagster/partition"] for r in runs) == segments
    assert overlapping(runs) == 1
    with DagsterInstance.get() as instance:
        for run in runs:
            started = instance.all_logs(run.dagster_run.run_id, of_type=DagsterEventType.STEP_WORKER_STARTED)
            assert len(started) == len(CAMPAIGN_PART_ASSETS)  # every step in a worker process of its own
    warehouse = DuckDBWarehouse(path=pipeline_env["PERSONALIZATION_WAREHOUSE"])
    for table in CAMPAIGN_PART_ASSETS:
        assert sorted(warehouse.read_table(table)["segment"].unique()) == segments, table
    variants = warehouse.read_table("message_variants")
    assert (variants.groupby("segment")["tone"].nunique() == 3).all() and set(variants["status"]) == {"valid"}
