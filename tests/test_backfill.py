"""Backfill semantics: re-running one segment's partition replaces that segment's rows in every per-segment
table and leaves the other segments' rows untouched. Driven through the operators' commands (`dagster asset
materialize --partition`, `personalize run --segment`) in subprocesses, on a temporary warehouse and
DAGSTER_HOME.
"""

import subprocess
import sys

import duckdb
import pandas as pd
import pytest

from personalization_assets.constants import PER_SEGMENT_TABLES, SEGMENT_COLUMN
from tests.conftest import PROJECT_ROOT, isolated_pipeline_env

pytestmark = pytest.mark.slow

APPEND_ONLY_TABLES = ("safety_audit",)  # keeps every decision ever made: a re-run adds rows
# Segmentation, then every segment's campaign, as a refresh would run them (the report is left to the tests).
PIPELINE_SCRIPT = """
import sys
from dagster import DagsterInstance
from personalization_assets.definitions import defs
from personalization_assets.jobs import CAMPAIGN_JOB, SEGMENTATION_JOB
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME

instance = DagsterInstance.get()
if not defs.resolve_job_def(SEGMENTATION_JOB).execute_in_process(instance=instance).success:
    sys.exit("segmentation_job failed")
for segment in sorted(instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)):
    campaign = defs.resolve_job_def(CAMPAIGN_JOB)
    if not campaign.execute_in_process(instance=instance, partition_key=segment).success:
        sys.exit(f"campaign_job failed for {segment}")
    print(segment)
"""


def _run(command: list[str], env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(command[:4])} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def _tables(warehouse: str) -> dict[str, pd.DataFrame]:
    """Every per-segment and append-only table the pipeline has written so far."""
    with duckdb.connect(warehouse, read_only=True) as connection:
        present = {row[0] for row in connection.execute("select table_name from information_schema.tables").fetchall()}
        return {
            table: connection.execute(f"select * from main.{table}").fetchdf()
            for table in (*PER_SEGMENT_TABLES, *APPEND_ONLY_TABLES)
            if table in present
        }


def _counts(frames: dict[str, pd.DataFrame]) -> dict[str, dict[str, int]]:
    return {table: frame[SEGMENT_COLUMN].value_counts().to_dict() for table, frame in frames.items()}


def _rows_of(frame: pd.DataFrame, segment: str) -> pd.DataFrame:
    rows = frame[frame[SEGMENT_COLUMN] == segment]
    return rows.sort_values(list(rows.columns)).reset_index(drop=True)


def _add_stale_row(warehouse: str, tables: list[str], segment: str) -> None:
    """Duplicate one row of `segment` in each table: a re-run of that segment must remove it."""
    with duckdb.connect(warehouse) as connection:
        for table in tables:
            connection.execute(
                f"insert into main.{table} select * from main.{table} where {SEGMENT_COLUMN} = ? limit 1",
                [segment],
            )


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("backfill")
    env = isolated_pipeline_env(root)
    segments = _run([sys.executable, "-c", PIPELINE_SCRIPT], env).stdout.split()
    assert len(segments) >= 3, f"the sample data should give at least 3 segments, got {segments}"
    warehouse = env["PERSONALIZATION_WAREHOUSE"]
    return {
        "env": env,
        "warehouse": warehouse,
        "segments": segments,
        "clean_counts": _counts(_tables(warehouse)),
    }


def _campaign_asset_keys() -> list[str]:
    from personalization_assets.definitions import defs
    from personalization_assets.partitions import segment_partitions

    graph = defs.resolve_asset_graph()
    return sorted(
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if graph.get(key).partitions_def == segment_partitions
    )


def _assert_rerun_replaced_only(
    before: dict, after: dict, rerun: str, stale_tables: list[str], clean_counts: dict
) -> None:
    counts_before, counts_after = _counts(before), _counts(after)
    for table in stale_tables:
        # The re-run segment lost its stale duplicates: its rows were replaced, not appended to.
        assert counts_before[table][rerun] > clean_counts[table][rerun]
        assert counts_after[table][rerun] == clean_counts[table][rerun], (table, counts_before, counts_after)
        for segment, count in counts_before[table].items():
            if segment != rerun:
                assert counts_after[table].get(segment) == count, f"{table}: {segment} changed by re-running {rerun}"
                pd.testing.assert_frame_equal(_rows_of(after[table], segment), _rows_of(before[table], segment))
    for table in APPEND_ONLY_TABLES:
        if table in before:
            assert counts_after[table][rerun] > counts_before[table][rerun], f"{table} is append-only"
            others = {s: c for s, c in counts_before[table].items() if s != rerun}
            assert {s: counts_after[table][s] for s in others} == others


def test_dagster_asset_materialize_of_one_partition_replaces_only_that_segment(pipeline):
    warehouse, env = pipeline["warehouse"], pipeline["env"]
    rerun = pipeline["segments"][0]
    tables = [table for table in _tables(warehouse) if table in PER_SEGMENT_TABLES]
    assert tables, "the campaign wrote no per-segment tables"
    _add_stale_row(warehouse, tables, rerun)
    _add_stale_row(warehouse, tables, pipeline["segments"][1])  # a neighbour's extra row must survive
    before = _tables(warehouse)

    keys = _campaign_asset_keys()
    _run(
        [
            sys.executable,
            "-m",
            "dagster",
            "asset",
            "materialize",
            "-m",
            "personalization_assets.definitions",
            "--select",
            ",".join(keys),
            "--partition",
            rerun,
        ],
        env,
    )
    _assert_rerun_replaced_only(before, _tables(warehouse), rerun, tables, pipeline["clean_counts"])


def test_personalize_run_segment_replaces_only_that_segment(pipeline):
    warehouse, env = pipeline["warehouse"], pipeline["env"]
    rerun = pipeline["segments"][1]
    tables = [table for table in _tables(warehouse) if table in PER_SEGMENT_TABLES]
    _add_stale_row(warehouse, tables, rerun)
    before = _tables(warehouse)
    untouched = pipeline["segments"][2]

    output = _run([sys.executable, "-m", "personalization_assets.cli", "run", "--segment", rerun], env)
    assert f"segment {rerun}" in output.stdout and "segmentation" not in output.stdout, output.stdout
    after = _tables(warehouse)
    _assert_rerun_replaced_only(before, after, rerun, tables, pipeline["clean_counts"])
    for table in tables:
        pd.testing.assert_frame_equal(_rows_of(after[table], untouched), _rows_of(before[table], untouched))
