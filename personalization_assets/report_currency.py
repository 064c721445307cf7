"""Whether the latest campaign report still shows each segment's latest campaign run: the `campaign_report` check
`shows_latest_segment_runs`, evaluated in every report run, and failed (severity WARN) as soon as a segment's
campaign run fails after the report was built.

Why: a segment re-run that succeeds gives the report Dagster's Unsynced tag (newer upstream data), but one that
fails writes nothing (checks run before writes), so the report looked current while that segment's latest
attempt had failed. Three ways a failed campaign run reaches the check, all recording the same verdict:
- the campaign job's failure hook, in the failing run's own process (no daemon needed), whoever launched the run
  (`personalize run`, the UI's campaign_job, a backfill);
- a run whose process died never reaches its hook: the daemon's run monitoring marks it failed and the sensor
  `report_behind_after_lost_run` (on by default; it launches nothing) records the verdict, or, without a daemon,
  the next `personalize run` marks it failed and records it (`flag_report_if_behind`).
A run of assets picked in the asset graph is not a campaign run (Dagster's own job, no hook): the report's
segment outcomes do not count it either, and a failed one left the stored data the report shows unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    EventLogRecord,
    HookContext,
    RunFailureSensorContext,
    SensorDefinition,
    SkipReason,
    failure_hook,
    run_failure_sensor,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from personalization_assets.launch import (
    PARTITION_TAG,
    latest_finished_campaign_run,
    outcome_of_run,
    segment_status,
)
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME

REPORT_KEY = AssetKey("campaign_report")
REPORT_CURRENT_CHECK = "shows_latest_segment_runs"


@dataclass(frozen=True)
class LaterRun:
    """A segment's campaign run that ended after the report was built."""

    segment: str
    run_id: str
    ended: float  # POSIX seconds
    outcome: str  # "<status>: <one-line reason>", the words `personalize run` prints (launch.segment_status)

    def describe(self) -> str:
        return f"segment {self.segment}: run {self.run_id[:8]} ({_utc(self.ended)}) {self.outcome}"


def _utc(timestamp: float) -> str:
    return f"{datetime.fromtimestamp(timestamp, UTC):%Y-%m-%d %H:%M:%S} UTC"


def later_segment_runs(instance: DagsterInstance, since: float) -> list[LaterRun]:
    """Each segment's latest finished campaign run, where it ended after `since` (POSIX seconds)."""
    later = []
    for segment in sorted(instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)):
        record = latest_finished_campaign_run(instance, segment)
        if record is None or record.end_time is None or record.end_time <= since:
            continue
        run = record.dagster_run
        later.append(LaterRun(segment, run.run_id, record.end_time, _status_line(instance, run)))
    return later


def _status_line(instance: DagsterInstance, run: DagsterRun) -> str:
    status, reason = segment_status(outcome_of_run(instance, run))
    return f"{status}: {reason}" if reason else status


def _verdict(report_built: float, later: Sequence[LaterRun]) -> tuple[bool, str, dict[str, str]]:
    built = _utc(report_built)
    if not later:
        return True, f"the report ({built}) shows every segment's latest campaign run", {"report_built": built}
    lines = "\n".join(f"- {run.describe()}" for run in later)
    description = (
        f"the report was built {built}; these segments' latest campaign runs ended after it, so the report shows "
        f"them as they were before (materialize campaign_report, or run report_job, to update it):\n{lines}"
    )
    return False, description, {"report_built": built, "segments_behind": ", ".join(r.segment for r in later)}


def _latest_report(instance: DagsterInstance) -> EventLogRecord | None:
    records = instance.fetch_materializations(REPORT_KEY, limit=1).records
    return records[0] if records else None


def report_check_result(instance: DagsterInstance) -> AssetCheckResult:
    """The check's result for the latest report materialization (the report run's own, when the check runs in it)."""
    record = _latest_report(instance)
    if record is None:
        return AssetCheckResult(
            passed=False, severity=AssetCheckSeverity.WARN, description="no campaign report has been built yet"
        )
    passed, description, metadata = _verdict(record.timestamp, later_segment_runs(instance, record.timestamp))
    return AssetCheckResult(passed=passed, severity=AssetCheckSeverity.WARN, description=description, metadata=metadata)


def _record_failed_verdict(instance: DagsterInstance, report: EventLogRecord, later: Sequence[LaterRun]) -> None:
    """The check failed (WARN) against the latest report, recorded outside any step (a runless evaluation)."""
    _, description, metadata = _verdict(report.timestamp, sorted(later, key=lambda run: run.segment))
    instance.report_runless_asset_event(
        AssetCheckEvaluation(
            asset_key=REPORT_KEY,
            check_name=REPORT_CURRENT_CHECK,
            passed=False,
            severity=AssetCheckSeverity.WARN,
            description=description,
            metadata=metadata,
            target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
                storage_id=report.storage_id, run_id=report.run_id, timestamp=report.timestamp
            ),
        )
    )


def flag_report_if_behind(instance: DagsterInstance) -> list[str] | None:
    """Fail the check now if a segment's latest finished campaign run ended after the latest report (for runs
    that finished without their hook). Returns the segments behind (recording nothing when there are none), or
    None when no report has been built."""
    report = _latest_report(instance)
    if report is None:
        return None
    later = later_segment_runs(instance, report.timestamp)
    if later:
        _record_failed_verdict(instance, report, later)
    return [run.segment for run in later]


@failure_hook(name="flag_report_behind")
def flag_report_behind(context: HookContext) -> None:
    """A campaign run's step failed: fail the report's check now (WARN) if a report exists, naming this run."""
    instance = context.instance
    record = _latest_report(instance)
    if record is None:
        return
    run = instance.get_run_by_id(context.run_id)
    if run is None:  # never, in the hook of the run itself
        return
    segment = run.tags.get(PARTITION_TAG, "?")
    # The step's failure event is stored before its hooks run, and the run is not SUCCESS: its status and reason
    # read as `personalize run` prints them.
    this_run = LaterRun(segment, context.run_id, datetime.now(UTC).timestamp(), _status_line(instance, run))
    others = [r for r in later_segment_runs(instance, record.timestamp) if r.segment != segment]
    _record_failed_verdict(instance, record, [*others, this_run])


LOST_RUN_SENSOR = "report_behind_after_lost_run"
LOST_RUN_SENSOR_INTERVAL_SECONDS = 120


def _hook_flagged(instance: DagsterInstance, run_id: str) -> bool:
    """Whether `flag_report_behind` completed in the run (Dagster names the hook only in the event's message)."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.HOOK_COMPLETED).records
    return any(f'hook "{flag_report_behind.name}"' in (r.event_log_entry.message or "") for r in records)


def build_lost_run_sensor(campaign_job) -> SensorDefinition:
    """A failed campaign run whose hook never ran (its process died; the daemon's run monitoring failed it):
    the report's check is failed by this sensor instead. On by default, since it only records the check."""

    @run_failure_sensor(
        name=LOST_RUN_SENSOR,
        monitored_jobs=[campaign_job],
        default_status=DefaultSensorStatus.RUNNING,
        # Every tick logs two lines in `dagster dev`'s terminal; a lost run is rare and its flag can wait 2 minutes.
        minimum_interval_seconds=LOST_RUN_SENSOR_INTERVAL_SECONDS,
        description=(
            "A campaign_job run failed without reaching its failure hook (its process died): fail campaign_report's "
            f"{REPORT_CURRENT_CHECK} check (warning) if the report no longer shows that segment's latest run. "
            "Launches nothing."
        ),
    )
    def report_behind_after_lost_run(context: RunFailureSensorContext):
        run = context.dagster_run
        if _hook_flagged(context.instance, run.run_id):
            return SkipReason(f"run {run.run_id[:8]}'s failure hook already flagged the report")
        behind = flag_report_if_behind(context.instance)
        if behind is None:
            return SkipReason(f"run {run.run_id[:8]} failed; no campaign report has been built yet")
        if not behind:
            return SkipReason(f"run {run.run_id[:8]} failed; the report still shows every segment's latest run")
        return SkipReason(f"run {run.run_id[:8]} failed; report check failed for: {', '.join(behind)}")

    return report_behind_after_lost_run
