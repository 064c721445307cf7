"""Whether the latest campaign report still shows each segment's latest campaign run: the `campaign_report` check
`shows_latest_segment_runs`, evaluated in every report run, and the campaign job's failure hook that fails it
(severity WARN) as soon as a segment's campaign run fails after the report was built.

Why both: a segment re-run that succeeds gives the report Dagster's Unsynced tag (newer upstream data), but one
that fails writes nothing (checks run before writes), so the report looked current while that segment's latest
attempt had failed. The hook runs in the failing run's own process, so no daemon or sensor is needed, whoever
launched the run (`personalize run`, the UI's campaign_job, a backfill). Not covered: a run whose process died
never reaches a hook (`personalize run` marks it failed at its next start, and the report built then lists the
segment as failed), and a run of assets picked in the asset graph runs Dagster's own job, which has no hook.
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
    DagsterInstance,
    DagsterRunStatus,
    EventLogRecord,
    HookContext,
    failure_hook,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from personalization_assets.launch import PARTITION_TAG, latest_finished_campaign_run, summarize_failure
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME

REPORT_KEY = AssetKey("campaign_report")
REPORT_CURRENT_CHECK = "shows_latest_segment_runs"


@dataclass(frozen=True)
class LaterRun:
    """A segment's campaign run that ended after the report was built."""

    segment: str
    run_id: str
    ended: float  # POSIX seconds
    outcome: str  # "succeeded", or "failed: <first line of the reason>"

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
        outcome = "succeeded" if run.status == DagsterRunStatus.SUCCESS else _failed(instance, run.run_id)
        later.append(LaterRun(segment, run.run_id, record.end_time, outcome))
    return later


def _failed(instance: DagsterInstance, run_id: str) -> str:
    line, _, step, _ = summarize_failure(instance, run_id)
    return f"failed{f' in {step}' if step else ''}: {line}"


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


@failure_hook(name="flag_report_behind")
def flag_report_behind(context: HookContext) -> None:
    """A campaign run's step failed: fail the report's check now (WARN) if a report exists, naming this run."""
    instance = context.instance
    record = _latest_report(instance)
    if record is None:
        return
    run = instance.get_run_by_id(context.run_id)
    segment = run.tags.get(PARTITION_TAG, "?") if run else "?"
    # The step's failure event is stored before its hooks run: the reason reads as `personalize run` prints it.
    this_run = LaterRun(segment, context.run_id, datetime.now(UTC).timestamp(), _failed(instance, context.run_id))
    others = [r for r in later_segment_runs(instance, record.timestamp) if r.segment != segment]
    _, description, metadata = _verdict(record.timestamp, sorted([*others, this_run], key=lambda r: r.segment))
    instance.report_runless_asset_event(
        AssetCheckEvaluation(
            asset_key=REPORT_KEY,
            check_name=REPORT_CURRENT_CHECK,
            passed=False,
            severity=AssetCheckSeverity.WARN,
            description=description,
            metadata=metadata,
            target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
                storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
            ),
        )
    )
