"""The report's `shows_latest_segment_runs` check for campaign runs that failed without their hook (their process
died): recorded by the next `personalize run` (`flag_report_if_behind`) or by the daemon's run-failure sensor.

A real Dagster instance and real run records; the runs are failed the way `fail_orphaned_runs` and the daemon's
run monitoring fail them (`report_run_failed`). The hook's own path is exercised end to end in tests/test_cli.py."""

import time

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetMaterialization,
    DagsterRunStatus,
    DefaultSensorStatus,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.test_utils import instance_for_test

from personalization_assets.definitions import defs
from personalization_assets.jobs import CAMPAIGN_JOB
from personalization_assets.launch import PARTITION_TAG
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME
from personalization_assets.report_currency import (
    LOST_RUN_SENSOR,
    REPORT_CURRENT_CHECK,
    REPORT_KEY,
    flag_report_if_behind,
)
from tests.conftest import run_failure_sensor_context

CHECK_KEY = AssetCheckKey(REPORT_KEY, REPORT_CURRENT_CHECK)
GONE = "the `personalize run` process 4242 that executed this run is gone"


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(SEGMENT_PARTITIONS_NAME, ["at_risk", "loyal_frequent"])
        yield instance


def build_report(instance) -> None:
    instance.report_runless_asset_event(AssetMaterialization(REPORT_KEY))


def lost_campaign_run(instance, segment: str):
    """A campaign run for `segment` that started and whose process died: failed as run monitoring fails it."""
    run = instance.create_run_for_job(defs.resolve_job_def(CAMPAIGN_JOB), tags={PARTITION_TAG: segment})
    instance.report_run_failed(run, GONE)
    return instance.get_run_by_id(run.run_id)


def lost_run_sensor():
    return defs.get_repository_def().get_sensor_def(LOST_RUN_SENSOR)


def failure_context(instance, run):
    return run_failure_sensor_context(instance, run, LOST_RUN_SENSOR)


def latest_check(instance):
    return instance.event_log_storage.get_latest_asset_check_execution_by_key([CHECK_KEY]).get(CHECK_KEY)


def test_a_lost_run_after_the_report_fails_its_check_naming_segment_run_and_reason(instance):
    build_report(instance)
    time.sleep(0.01)  # the run ends after the report, as it would
    run = lost_campaign_run(instance, "at_risk")

    assert flag_report_if_behind(instance) == ["at_risk"]

    record = latest_check(instance)
    (report,) = instance.fetch_materializations(REPORT_KEY, limit=1).records
    evaluation = record.event.dagster_event.event_specific_data
    assert record.status == AssetCheckExecutionRecordStatus.FAILED
    assert evaluation.severity == AssetCheckSeverity.WARN
    assert evaluation.target_materialization_data.storage_id == report.storage_id
    assert evaluation.metadata["segments_behind"].value == "at_risk"
    (behind,) = [line for line in evaluation.description.splitlines() if line.startswith("- ")]
    assert behind.startswith(f"- segment at_risk: run {run.run_id[:8]} (")
    assert behind.endswith(f") failed: {GONE}")  # the words `personalize run` prints for that segment


def test_nothing_is_recorded_without_a_report_or_when_the_report_is_newer(instance):
    assert flag_report_if_behind(instance) is None  # no report yet
    lost_campaign_run(instance, "at_risk")
    time.sleep(0.01)
    build_report(instance)  # built after the run: it lists the segment as failed itself
    assert flag_report_if_behind(instance) == []
    assert latest_check(instance) is None


def test_the_run_failure_sensor_flags_the_report_for_a_run_whose_hook_never_ran(instance):
    build_report(instance)
    time.sleep(0.01)
    run = lost_campaign_run(instance, "loyal_frequent")

    result = lost_run_sensor()(failure_context(instance, run))

    assert run.status == DagsterRunStatus.FAILURE
    assert "report check failed for: loyal_frequent" in result.skip_message  # it launches nothing
    record = latest_check(instance)
    assert record.status == AssetCheckExecutionRecordStatus.FAILED
    assert f"segment loyal_frequent: run {run.run_id[:8]}" in record.event.dagster_event.event_specific_data.description


def test_the_sensor_says_when_there_is_no_report_to_flag(instance):
    run = lost_campaign_run(instance, "at_risk")
    result = lost_run_sensor()(failure_context(instance, run))
    assert result.skip_message == f"run {run.run_id[:8]} failed; no campaign report has been built yet"
    assert latest_check(instance) is None


def test_the_sensor_is_on_by_default_and_launches_nothing():
    sensor = lost_run_sensor()
    assert sensor.default_status == DefaultSensorStatus.RUNNING  # a daemon flags lost runs without a click
    assert sensor.minimum_interval_seconds == 120  # its two log lines per tick stay rare in `dagster dev`
    assert not sensor.targets
