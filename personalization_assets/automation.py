"""Sensors and the schedule that keep the campaign current. All are off by default; turn them on in the UI
(Automation page) or with `dagster sensor start` / `dagster schedule start`.

Explicit jobs chained by sensors rather than declarative automation conditions: the pipeline has three
units (segmentation, one segment's campaign, the cross-segment report) that operators also launch by hand, and
a chain of job runs shows each step of a refresh as its own run, with its own logs and retries.

- `input_change_sensor`: the customers file or the content library changed (content hash; mtime and size only
  decide when to re-hash) -> a `segmentation_job` run (only the content assets when just the library changed).
- `campaign_after_segmentation`: a `segmentation_job` run succeeded -> one `campaign_job` run per segment
  partition. This makes "materialize everything" one click: launch `segmentation_job`.
- `report_after_campaign`: every campaign run of that refresh succeeded -> one `report_job` run.
- `daily_campaign_refresh`: a `segmentation_job` run every day at 06:00 UTC; the chained sensors do the rest.
"""

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from dagster import (
    AssetKey,
    AssetsDefinition,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    RunStatusSensorContext,
    ScheduleDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_status_sensor,
    sensor,
)

from personalization_assets.jobs import CAMPAIGN_JOB, REPORT_JOB, SEGMENTATION_JOB

# Run tags that tie the runs of one refresh together (visible and filterable in the UI's Runs page); the refresh
# id of an automated refresh is the run id of the segmentation run that started it.
from personalization_assets.launch import (
    CLI_TRIGGER,
    PARTITION_TAG,
    REFRESH_PARTITIONS_TAG,
    REFRESH_TAG,
    TRIGGER_TAG,
)
from personalization_assets.lib.content import is_document_file
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME
from resources.settings import PipelineSettings

INPUT_CHANGE_SENSOR = "input_change_sensor"
CAMPAIGN_AFTER_SEGMENTATION = "campaign_after_segmentation"
REPORT_AFTER_CAMPAIGN = "report_after_campaign"
DAILY_REFRESH_SCHEDULE = "daily_campaign_refresh"
DAILY_REFRESH_CRON = "0 6 * * *"

CHANGED_TAG = "personalization/changed_inputs"

# The asset that indexes the content library; a library-only change re-runs just the assets reading it.
CONTENT_ASSET_KEY = AssetKey("content_index")
SENSOR_INTERVAL_SECONDS = 60
HASH_CHUNK_BYTES = 1 << 20


# --- Input fingerprints -------------------------------------------------------------------------------------


def _stat_signature(paths: Sequence[Path]) -> str:
    """Names, sizes and mtimes: cheap to read every tick, and changes whenever the content might have."""
    stats = [(path.name, path.stat()) for path in paths]
    listing = "\n".join(f"{name}\t{stat.st_size}\t{stat.st_mtime_ns}" for name, stat in stats)
    return hashlib.sha256(listing.encode()).hexdigest()[:32]


def _content_hash(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as stream:
            while chunk := stream.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def input_files(settings: PipelineSettings) -> dict[str, list[Path]]:
    """The files behind each watched input: the customers file, and the library's documents in name order."""
    customers = Path(settings.customers_path)
    if not customers.is_file():
        raise FileNotFoundError(f"customers file {customers} does not exist (setting customers_path)")
    content = Path(settings.content_path)
    if not content.is_dir():
        raise FileNotFoundError(f"content library {content} is not a folder (setting content_path)")
    # The same files the content stage reads: hidden files and macOS `._*` companions never trigger a run.
    return {"customers": [customers], "content": sorted(p for p in content.iterdir() if is_document_file(p))}


def fingerprint_inputs(settings: PipelineSettings, previous: dict | None = None) -> dict[str, dict[str, str]]:
    """{input: {"stat": ..., "sha256": ...}}; files are re-hashed only when their stat signature moved."""
    previous = previous or {}
    fingerprints = {}
    for name, paths in input_files(settings).items():
        stat = _stat_signature(paths)
        known = previous.get(name) or {}
        sha = known["sha256"] if known.get("stat") == stat and "sha256" in known else _content_hash(paths)
        fingerprints[name] = {"stat": stat, "sha256": sha}
    return fingerprints


def _load_cursor(cursor: str | None) -> dict:
    if not cursor:
        return {}
    try:
        loaded = json.loads(cursor)
    except json.JSONDecodeError:
        return {}  # an unreadable cursor counts as "never seen": the next tick refreshes everything
    return loaded if isinstance(loaded, dict) else {}


# --- Builders -----------------------------------------------------------------------------------------------


def _job_by_name(jobs: Sequence, name: str):
    return next((job for job in jobs if job.name == name), None)


def build_input_change_sensor(segmentation_job, content_assets: Sequence[AssetKey]):
    """The sensor that watches the customers file and the content library (see module docstring)."""

    @sensor(
        name=INPUT_CHANGE_SENSOR,
        job=segmentation_job,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.STOPPED,
        description=(
            "Requests a segmentation_job run when the customers file or the content library changes (by "
            "content hash); campaign_after_segmentation then refreshes every segment. The first tick after "
            "turning it on always requests a run, so the warehouse catches up with the files."
        ),
    )
    def input_change_sensor(context: SensorEvaluationContext, settings: PipelineSettings):
        previous = _load_cursor(context.cursor)
        try:
            current = fingerprint_inputs(settings, previous)
        except FileNotFoundError as error:
            return SkipReason(str(error))
        changed = [
            name
            for name in ("customers", "content")
            if (previous.get(name) or {}).get("sha256") != current[name]["sha256"]
        ]
        cursor = json.dumps(current, sort_keys=True)
        if not changed:
            return SensorResult(skip_reason="inputs unchanged (same content hashes)", cursor=cursor)
        tags = {TRIGGER_TAG: INPUT_CHANGE_SENSOR, CHANGED_TAG: ",".join(changed)}
        # Only the library changed: re-index it, keep the segmentation (its inputs are unchanged).
        selection = list(content_assets) if changed == ["content"] and content_assets else None
        request = RunRequest(
            run_key=f"inputs-{current['customers']['sha256'][:16]}-{current['content']['sha256'][:16]}",
            tags=tags,
            asset_selection=selection,
        )
        context.log.info(f"inputs changed: {', '.join(changed)}; requesting {SEGMENTATION_JOB}")
        return SensorResult(run_requests=[request], cursor=cursor)

    return input_change_sensor


def build_campaign_after_segmentation(segmentation_job, campaign_job):
    @run_status_sensor(
        name=CAMPAIGN_AFTER_SEGMENTATION,
        run_status=DagsterRunStatus.SUCCESS,
        monitored_jobs=[segmentation_job],
        request_job=campaign_job,
        default_status=DefaultSensorStatus.STOPPED,
        description=(
            "After a successful segmentation_job run, requests one campaign_job run per segment partition "
            "(tagged personalization/refresh=<segmentation run id>)."
        ),
    )
    def campaign_after_segmentation(context: RunStatusSensorContext):
        run = context.dagster_run
        if run.tags.get(TRIGGER_TAG) == CLI_TRIGGER:
            return SkipReason(f"segmentation run {run.run_id} belongs to a `personalize run`, which runs the rest")
        segments = sorted(context.instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME))
        if not segments:
            return SkipReason(f"segmentation run {run.run_id} registered no segment partitions")
        tags = {
            TRIGGER_TAG: CAMPAIGN_AFTER_SEGMENTATION,
            REFRESH_TAG: run.run_id,
            REFRESH_PARTITIONS_TAG: str(len(segments)),
        }
        return [RunRequest(run_key=f"{run.run_id}:{key}", partition_key=key, tags=tags) for key in segments]

    return campaign_after_segmentation


def refresh_complete(instance, refresh_id: str, campaign_job_name: str = CAMPAIGN_JOB) -> tuple[bool, str]:
    """Whether every campaign partition of refresh `refresh_id` has a successful run, and why not if not."""
    runs = instance.get_runs(filters=RunsFilter(job_name=campaign_job_name, tags={REFRESH_TAG: refresh_id}))
    if not runs:
        return False, f"no campaign runs of refresh {refresh_id}"
    expected = max(int(run.tags.get(REFRESH_PARTITIONS_TAG, "0")) for run in runs)
    succeeded = {run.tags.get(PARTITION_TAG) for run in runs if run.status == DagsterRunStatus.SUCCESS}
    if len(succeeded) < expected:
        return (
            False,
            f"{len(succeeded)} of {expected} segment partitions of refresh {refresh_id} succeeded so far",
        )
    return True, f"all {expected} segment partitions of refresh {refresh_id} succeeded"


def build_report_after_campaign(campaign_job, report_job):
    @run_status_sensor(
        name=REPORT_AFTER_CAMPAIGN,
        run_status=DagsterRunStatus.SUCCESS,
        monitored_jobs=[campaign_job],
        request_job=report_job,
        default_status=DefaultSensorStatus.STOPPED,
        description=(
            "When every campaign_job run of one refresh (same personalization/refresh tag) has succeeded, "
            "requests one report_job run."
        ),
    )
    def report_after_campaign(context: RunStatusSensorContext):
        refresh_id = context.dagster_run.tags.get(REFRESH_TAG)
        if context.dagster_run.tags.get(TRIGGER_TAG) == CLI_TRIGGER:
            return SkipReason("campaign run belongs to a `personalize run`, which builds its own report")
        if not refresh_id:
            return SkipReason("campaign run was not part of an automated refresh (no personalization/refresh tag)")
        complete, reason = refresh_complete(context.instance, refresh_id, campaign_job.name)
        if not complete:
            return SkipReason(reason)
        return RunRequest(
            run_key=f"report:{refresh_id}", tags={TRIGGER_TAG: REPORT_AFTER_CAMPAIGN, REFRESH_TAG: refresh_id}
        )

    return report_after_campaign


def build_daily_refresh_schedule(segmentation_job) -> ScheduleDefinition:
    return ScheduleDefinition(
        name=DAILY_REFRESH_SCHEDULE,
        cron_schedule=DAILY_REFRESH_CRON,
        execution_timezone="UTC",
        job=segmentation_job,
        tags={TRIGGER_TAG: DAILY_REFRESH_SCHEDULE},
        default_status=DefaultScheduleStatus.STOPPED,
        description=(
            "Daily campaign refresh at 06:00 UTC: a segmentation_job run; with campaign_after_segmentation "
            "and report_after_campaign on, every segment's campaign and the report follow."
        ),
    )


def build_automation(assets: Sequence[AssetsDefinition], jobs: Sequence) -> tuple[list, list]:
    """(sensors, schedules) for the jobs that exist; stages not yet defined simply get no automation."""
    segmentation_job = _job_by_name(jobs, SEGMENTATION_JOB)
    if segmentation_job is None:
        return [], []
    asset_keys = {key for asset in assets for key in asset.keys}
    content_assets = [CONTENT_ASSET_KEY] if CONTENT_ASSET_KEY in asset_keys else []
    sensors = [build_input_change_sensor(segmentation_job, content_assets)]
    campaign_job = _job_by_name(jobs, CAMPAIGN_JOB)
    if campaign_job is not None:
        sensors.append(build_campaign_after_segmentation(segmentation_job, campaign_job))
        report_job = _job_by_name(jobs, REPORT_JOB)
        if report_job is not None:
            sensors.append(build_report_after_campaign(campaign_job, report_job))
    return sensors, [build_daily_refresh_schedule(segmentation_job)]
