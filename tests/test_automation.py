"""Sensors, schedule and run-retry settings: off by default, the right runs for the right changes."""

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    RunRequest,
    SensorResult,
    SkipReason,
    asset,
    build_run_status_sensor_context,
    build_sensor_context,
    materialize,
)
from dagster._core.events import RunFailureReason
from dagster._core.execution.retries import auto_reexecution_should_retry_run

from personalization_assets import automation, segmentation
from personalization_assets.automation import (
    CAMPAIGN_AFTER_SEGMENTATION,
    CHANGED_TAG,
    DAILY_REFRESH_SCHEDULE,
    INPUT_CHANGE_SENSOR,
    REPORT_AFTER_CAMPAIGN,
    build_automation,
    build_input_change_sensor,
    refresh_complete,
)
from personalization_assets.definitions import defs
from personalization_assets.jobs import CAMPAIGN_JOB, REPORT_JOB, SEGMENTATION_JOB, build_jobs
from personalization_assets.launch import CLI_TRIGGER, REFRESH_PARTITIONS_TAG, REFRESH_TAG, TRIGGER_TAG
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME, segment_partitions
from personalization_assets.report_currency import LOST_RUN_SENSOR
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.filterwarnings("ignore:Handling yaml-defined logging configuration")


def test_every_sensor_and_schedule_that_launches_runs_starts_stopped():
    repository = defs.get_repository_def()
    sensors = {sensor.name: sensor for sensor in repository.sensor_defs}
    schedules = {schedule.name: schedule for schedule in repository.schedule_defs}
    assert INPUT_CHANGE_SENSOR in sensors and DAILY_REFRESH_SCHEDULE in schedules
    job_names = {job.name for job in defs.resolve_all_job_defs()}
    if CAMPAIGN_JOB in job_names:
        assert CAMPAIGN_AFTER_SEGMENTATION in sensors
    if REPORT_JOB in job_names:
        assert REPORT_AFTER_CAMPAIGN in sensors
    # What launches runs starts stopped; the report-currency sensor, which only records a check, starts running.
    launching = {name: sensor for name, sensor in sensors.items() if sensor.targets}
    assert set(sensors) - set(launching) == {LOST_RUN_SENSOR}
    assert all(sensor.default_status == DefaultSensorStatus.STOPPED for sensor in launching.values())
    assert all(schedule.default_status == DefaultScheduleStatus.STOPPED for schedule in schedules.values())
    schedule = schedules[DAILY_REFRESH_SCHEDULE]
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "0 6 * * *",
        "UTC",
        SEGMENTATION_JOB,
    )
    assert sensors[INPUT_CHANGE_SENSOR].job_name == SEGMENTATION_JOB


# --- input_change_sensor ---------------------------------------------------------------------------------


@pytest.fixture
def inputs(tmp_path) -> PipelineSettings:
    """A private copy of the customers file and the content library, so the test can change them."""
    shutil.copy(PROJECT_ROOT / "data" / "customers.csv", tmp_path / "customers.csv")
    shutil.copytree(PROJECT_ROOT / "data" / "content", tmp_path / "content")
    return PipelineSettings(
        customers_path=str(tmp_path / "customers.csv"),
        content_path=str(tmp_path / "content"),
        config_dir=str(PROJECT_ROOT / "config"),
        reports_dir=str(tmp_path / "reports"),
    )


@pytest.fixture
def persistent_instance(tmp_path):
    """Sensor contexts need a persistent instance (cursors, run keys)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with DagsterInstance.local_temp(str(home)) as instance:
        yield instance


def _tick(sensor_def, instance, settings, cursor):
    context = build_sensor_context(instance=instance, cursor=cursor, resources={"settings": settings})
    result = sensor_def(context)
    assert isinstance(result, SensorResult | SkipReason), result
    return result


def _bump_mtime(path):
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))


def test_input_change_sensor_requests_runs_only_for_changed_content(inputs, persistent_instance, monkeypatch):
    sensor_def = build_input_change_sensor(
        defs.resolve_job_def(SEGMENTATION_JOB), content_assets=[AssetKey("content_index")]
    )
    hashed = []
    original_hash = automation._content_hash
    monkeypatch.setattr(automation, "_content_hash", lambda paths: hashed.append(len(paths)) or original_hash(paths))

    first = _tick(sensor_def, persistent_instance, inputs, None)
    (request,) = first.run_requests
    assert request.tags[CHANGED_TAG] == "customers,content" and request.asset_selection is None
    assert len(hashed) == 2

    unchanged = _tick(sensor_def, persistent_instance, inputs, first.cursor)
    assert not unchanged.run_requests and "unchanged" in unchanged.skip_reason.skip_message
    assert len(hashed) == 2, "files whose size and mtime did not move are not re-hashed"

    customers = Path(inputs.customers_path)
    _bump_mtime(customers)
    touched = _tick(sensor_def, persistent_instance, inputs, unchanged.cursor)
    assert not touched.run_requests, "a new mtime with the same content is not a change"
    assert len(hashed) == 3

    frame = pd.read_csv(customers)
    frame.loc[0, "avg_order_value"] = 999.0
    frame.to_csv(customers, index=False)
    changed = _tick(sensor_def, persistent_instance, inputs, touched.cursor)
    (request,) = changed.run_requests
    assert request.tags[CHANGED_TAG] == "customers" and request.asset_selection is None

    document = Path(inputs.content_path) / "DOC-PROMO-001.json"
    body = json.loads(document.read_text())
    body["title"] += " (updated)"
    document.write_text(json.dumps(body))
    content_only = _tick(sensor_def, persistent_instance, inputs, changed.cursor)
    (request,) = content_only.run_requests
    assert request.tags[CHANGED_TAG] == "content"
    assert request.asset_selection == [AssetKey("content_index")], "a library change re-indexes, not re-segments"
    assert request.run_key != changed.run_requests[0].run_key


def test_hidden_and_macos_companion_files_do_not_trigger_a_run(inputs, persistent_instance):
    """The sensor watches the files the content stage reads: a `._DOC.json` or `.DS_Store` copied in by a Mac
    is not a library change."""
    sensor_def = build_input_change_sensor(
        defs.resolve_job_def(SEGMENTATION_JOB), content_assets=[AssetKey("content_index")]
    )
    first = _tick(sensor_def, persistent_instance, inputs, None)
    folder = Path(inputs.content_path)
    (folder / "._DOC-PROMO-001.json").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    after = _tick(sensor_def, persistent_instance, inputs, first.cursor)
    assert not after.run_requests
    assert "unchanged" in after.skip_reason.skip_message


def test_input_change_sensor_skips_with_the_missing_path(inputs, persistent_instance):
    sensor_def = build_input_change_sensor(defs.resolve_job_def(SEGMENTATION_JOB), content_assets=[])
    os.remove(inputs.customers_path)
    result = _tick(sensor_def, persistent_instance, inputs, None)
    assert isinstance(result, SkipReason) and inputs.customers_path in result.skip_message


# --- The refresh chain: segmentation -> every segment's campaign -> report ---------------------------------


@asset(partitions_def=segment_partitions, group_name="test")
def campaign_stand_in(context) -> None:
    """A per-segment asset standing in for the campaign stages, so the chain is tested on its own."""
    context.log.info(f"campaign for {context.partition_key}")


@asset(deps=[campaign_stand_in], group_name="test")
def report_stand_in() -> None:
    """Stands in for the cross-segment report."""


@pytest.fixture
def chain(tmp_path, persistent_instance):
    """Segmentation assets + stand-ins, their derived jobs and sensors, and a real segmentation run."""
    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    settings = PipelineSettings(
        customers_path=str(PROJECT_ROOT / "data" / "customers.csv"),
        content_path=str(PROJECT_ROOT / "data" / "content"),
        config_dir=str(PROJECT_ROOT / "config"),
        reports_dir=str(tmp_path / "reports"),
    )
    assets = [
        segmentation.load_customers,
        segmentation.customer_segments,
        segmentation.segment_profiles,
        campaign_stand_in,
        report_stand_in,
    ]
    jobs = build_jobs(assets)
    sensors, _ = build_automation(assets, jobs)
    resources = {
        "settings": settings,
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
    }
    definitions = Definitions(assets=assets, jobs=jobs, sensors=sensors, resources=resources)
    run = definitions.resolve_job_def(SEGMENTATION_JOB).execute_in_process(instance=persistent_instance)
    assert run.success
    return definitions, {sensor.name: sensor for sensor in sensors}, run


def _success_context(instance, run_id, sensor_name):
    dagster_run = instance.get_run_by_id(run_id)
    (success,) = [
        record.event_log_entry.dagster_event
        for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_SUCCESS).records
    ]
    return build_run_status_sensor_context(
        sensor_name=sensor_name,
        dagster_event=success,
        dagster_instance=instance,
        dagster_run=dagster_run,
    )


def test_segmentation_success_requests_one_campaign_run_per_segment_then_one_report(chain, persistent_instance):
    definitions, sensors, segmentation_run = chain
    segments = sorted(persistent_instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME))
    assert len(segments) >= 3

    context = _success_context(persistent_instance, segmentation_run.run_id, CAMPAIGN_AFTER_SEGMENTATION)
    requests = list(sensors[CAMPAIGN_AFTER_SEGMENTATION](context))
    assert all(isinstance(request, RunRequest) for request in requests)
    assert sorted(request.partition_key for request in requests) == segments
    assert {request.tags[REFRESH_TAG] for request in requests} == {segmentation_run.run_id}
    assert {request.tags[REFRESH_PARTITIONS_TAG] for request in requests} == {str(len(segments))}
    assert len({request.run_key for request in requests}) == len(segments)

    # Run the requested campaign runs; the report is requested only once all of them have succeeded.
    campaign_job = definitions.resolve_job_def(CAMPAIGN_JOB)
    report_sensor = sensors[REPORT_AFTER_CAMPAIGN]
    outcomes = []
    for request in requests:
        result = campaign_job.execute_in_process(
            instance=persistent_instance, partition_key=request.partition_key, tags=request.tags
        )
        assert result.success
        context = _success_context(persistent_instance, result.run_id, REPORT_AFTER_CAMPAIGN)
        outcomes.append(report_sensor(context))
    assert all(isinstance(outcome, SkipReason) for outcome in outcomes[:-1])
    assert "succeeded so far" in outcomes[0].skip_message
    final = outcomes[-1]
    assert isinstance(final, RunRequest) and final.run_key == f"report:{segmentation_run.run_id}"
    assert refresh_complete(persistent_instance, segmentation_run.run_id)[0]


def test_report_sensor_ignores_campaign_runs_outside_a_refresh(chain, persistent_instance):
    definitions, sensors, _ = chain
    segment = persistent_instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)[0]
    manual = definitions.resolve_job_def(CAMPAIGN_JOB).execute_in_process(
        instance=persistent_instance, partition_key=segment
    )
    context = _success_context(persistent_instance, manual.run_id, REPORT_AFTER_CAMPAIGN)
    outcome = sensors[REPORT_AFTER_CAMPAIGN](context)
    assert isinstance(outcome, SkipReason) and "not part of an automated refresh" in outcome.skip_message


# --- Run retries (dagster.yaml) ---------------------------------------------------------------------------


@asset
def always_fails() -> None:
    """Fails every time, like invalid data or a blocked check would."""
    raise ValueError("deterministic failure")


def test_dagster_yaml_retries_run_level_failures_but_not_step_failures(tmp_path, monkeypatch):
    settings = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    assert settings["run_retries"] == {
        "enabled": True,
        "max_retries": 2,
        "retry_on_asset_or_op_failure": False,
    }
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # where the template's JSON log file goes
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        result = materialize([always_fails], instance=instance, raise_on_error=False)
        run = instance.get_run_by_id(result.run_id)
        assert run.status == DagsterRunStatus.FAILURE
        assert not auto_reexecution_should_retry_run(instance, run, RunFailureReason.STEP_FAILURE)
        assert auto_reexecution_should_retry_run(instance, run, RunFailureReason.RUN_WORKER_RESTART)
        assert auto_reexecution_should_retry_run(instance, run, RunFailureReason.UNEXPECTED_TERMINATION)


def test_run_status_sensors_leave_the_chain_of_personalize_run_alone(chain, persistent_instance):
    """`personalize run` runs segmentation, every segment and the report itself: the sensors request nothing
    after its runs, so they can stay on while it is used."""
    definitions, sensors, _ = chain
    tags = {TRIGGER_TAG: CLI_TRIGGER, REFRESH_TAG: "cli-refresh", REFRESH_PARTITIONS_TAG: "1"}
    segmentation = definitions.resolve_job_def(SEGMENTATION_JOB).execute_in_process(
        instance=persistent_instance, tags=tags
    )
    context = _success_context(persistent_instance, segmentation.run_id, CAMPAIGN_AFTER_SEGMENTATION)
    skipped = sensors[CAMPAIGN_AFTER_SEGMENTATION](context)
    assert isinstance(skipped, SkipReason)
    assert "personalize run" in skipped.skip_message

    segment = persistent_instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)[0]
    campaign = definitions.resolve_job_def(CAMPAIGN_JOB).execute_in_process(
        instance=persistent_instance, partition_key=segment, tags=tags
    )
    context = _success_context(persistent_instance, campaign.run_id, REPORT_AFTER_CAMPAIGN)
    skipped = sensors[REPORT_AFTER_CAMPAIGN](context)
    assert isinstance(skipped, SkipReason)
    assert "personalize run" in skipped.skip_message
