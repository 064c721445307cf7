"""Runs that `personalize run` starts: created with the origin of the workspace's code location (the one the
UI, the daemon and `dagster job launch` use), tagged `personalization/*`, executed in this process.

A run created with `execute_job(reconstructable(...))` has no code-location origin, so the UI's timeline and job
pages do not list it and re-execution warns about versions (shared/VERIFIED.md). Here the run record names the
code location `workspace.yaml` loads (`remote_job_origin`) and how to reconstruct the job from it
(`job_code_origin`), and its steps run in this process, as `dagster api execute_run` would run them in a run
worker: the UI shows it on the timeline and the job's Runs tab, and re-executes it through the code location.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.definitions.repository_definition.valid_definitions import SINGLETON_REPOSITORY_NAME
from dagster._core.execution.api import execute_run
from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.storage.dagster_run import FINISHED_STATUSES
from dagster._core.workspace.load import location_origins_from_yaml_paths

from personalization_assets.config import PROJECT_ROOT
from personalization_assets.jobs import CAMPAIGN_JOB
from personalization_assets.run_launcher import PROCESS_TAG, process_alive
from resources.warehouse import release_after_run

DEFINITIONS_MODULE = "personalization_assets.definitions"
DEFINITIONS_ATTRIBUTE = "defs"
WORKSPACE_FILE = PROJECT_ROOT / "workspace.yaml"
LOCATION_NAME = "personalization"  # workspace.yaml's location_name

# Run tags (docs/operating.md): who started the run and which refresh (campaign) it belongs to.
TRIGGER_TAG = "personalization/trigger"
REFRESH_TAG = "personalization/refresh"
REFRESH_PARTITIONS_TAG = "personalization/refresh_partitions"
PARTITION_TAG = "dagster/partition"
CLI_TRIGGER = "personalize_run"

# Exception classes whose message is meant for a person: the input or a setting was refused, nothing is wrong
# with the code. Matched by name: the CLI reads them from the run's stored error, not from a live exception.
REFUSAL_ERRORS = frozenset(
    {
        "InputError",
        "ConfigError",
        "MissingCredentialError",
        "InsecureEndpointError",
        "ContentSafetyConfigError",
    }
)
NO_SUITABLE_CONTENT = "no suitable content for segment"


def code_location_origin(job_name: str, workspace: Path = WORKSPACE_FILE) -> RemoteJobOrigin:
    """The origin the UI gives runs of `job_name`: workspace.yaml's code location, the repository of `defs`."""
    origins = location_origins_from_yaml_paths([str(workspace)])
    origin = next((o for o in origins if o.location_name == LOCATION_NAME), None)
    if origin is None:
        raise ValueError(f"{workspace} has no code location named '{LOCATION_NAME}'")
    return RemoteJobOrigin(RemoteRepositoryOrigin(origin, SINGLETON_REPOSITORY_NAME), job_name)


def reconstructable_job(job_name: str):
    """How a run worker reconstructs the job: the module and attribute the code location loads."""
    repository = ReconstructableRepository.for_module(DEFINITIONS_MODULE, DEFINITIONS_ATTRIBUTE, os.getcwd())
    return repository.get_reconstructable_job(job_name)


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended (picklable: it comes back from a worker process)."""

    label: str
    partition: str | None
    success: bool
    seconds: float
    run_id: str
    failure: str = ""  # one line: the failed step and why
    failure_class: str = ""  # the exception class of the failure's root cause, e.g. InputError
    failed_step: str = ""
    detail: str = ""  # the failure's full error chain with tracebacks (shown with --verbose)
    metadata: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # asset -> numeric metadata
    warnings: tuple[str, ...] = ()  # the run's warning log lines ("step: message"), in order
    problems: tuple[str, ...] = ()  # a refused input's problems: column, lines, fix (printed under `failure`)

    @property
    def refused(self) -> bool:
        return self.failure_class in REFUSAL_ERRORS

    @property
    def no_suitable_content(self) -> bool:
        return NO_SUITABLE_CONTENT in self.failure


def _root_cause(error):
    while error.cause is not None:
        error = error.cause
    return error


MAX_PROBLEMS_SHOWN = 8  # of a refusal's listed problems; the run in the UI has them all


def refusal_problems(message: str, limit: int = MAX_PROBLEMS_SHOWN) -> tuple[str, ...]:
    """The problems a refusal lists under its first line ("  - column 'age': ... line 58 (cust_...)"): the
    column, lines and fix a user needs, which the first line only counts ("35 invalid row(s)")."""
    items = [line.strip()[2:] for line in message.splitlines()[1:] if line.strip().startswith("- ")]
    if len(items) > limit:
        items = [*items[:limit], f"... and {len(items) - limit} more (the run in the UI lists every one)"]
    return tuple(items)


@dataclass(frozen=True)
class FailureSummary:
    line: str  # one line: why the run failed
    failure_class: str  # the root cause's exception class
    step: str
    detail: str  # the full error chain with tracebacks
    problems: tuple[str, ...] = ()  # a refusal's listed problems (refusal_problems)


NO_FAILURE = FailureSummary("", "", "", "")


def summarize_failure(instance: DagsterInstance, run_id: str) -> FailureSummary:
    """Why the run failed: its first step failure, else the run's."""
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE).records:
        event = record.event_log_entry.dagster_event
        if event is None:  # a STEP_FAILURE record always carries its event
            continue
        data = event.step_failure_data
        description = data.user_failure_data.description if data and data.user_failure_data else None
        error = _root_cause(data.error) if data and data.error else None
        message = description or (error.message if error else "failed")
        failure_class = error.cls_name if error else ""
        problems = refusal_problems(message) if failure_class in REFUSAL_ERRORS else ()
        # The first line (and the next, if the first only introduces it and is not followed by listed problems,
        # which are printed under it); the rest is in the UI.
        lines = [part.strip() for part in message.strip().splitlines() if part.strip()] or ["failed"]
        line = " ".join(lines[:2]) if lines[0].endswith(":") and not problems else lines[0]
        if error:  # "package.module.InputError: text" -> "text"
            line = re.sub(rf"^[\w.]*\b{re.escape(error.cls_name)}: ", "", line)
        detail = data.error.to_string() if data and data.error else line
        return FailureSummary(line, failure_class, event.step_key or "", detail, problems)
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_FAILURE).records:
        message = record.event_log_entry.message or "run failed"
        return FailureSummary(message.splitlines()[0], "", "", message)
    return FailureSummary("run failed (see the Dagster UI)", "", "", "")


def _level(level: int | str) -> int:
    """A log entry's level as a number (entries store "WARNING" or 30)."""
    number = level if isinstance(level, int) else logging.getLevelName(level.upper())
    return number if isinstance(number, int) else logging.NOTSET


# Dagster's notice for each step downstream of a failed one ("Dependencies for step engagement failed: [...].
# Not executing."): the segment's status line already says why its campaign stopped, and a segment without
# suitable content would otherwise print six of these under it.
_NOT_EXECUTING = re.compile(
    r"Dependencies for step \S+( failed: \[.*?\])?( were not executed: \[.*?\])?\. Not executing\."
)


def run_warnings(instance: DagsterInstance, run_id: str) -> tuple[str, ...]:
    """The warnings the run's steps logged (quarantined rows, unused columns, a segment with control only), each
    once, as "step: message": what a command-line user must see without --verbose. The steps log pseudonyms and
    names only, never customer values. Dagster's notices of steps not executed after a failure are left out."""
    found = (
        f"{entry.step_key}: {entry.user_message}" if entry.step_key else entry.user_message
        for entry in instance.all_logs(run_id)
        if entry.dagster_event is None
        and _level(entry.level) >= logging.WARNING
        and not _NOT_EXECUTING.fullmatch(entry.user_message)
    )
    return tuple(dict.fromkeys(found))


def materialization_metadata(instance: DagsterInstance, run_id: str) -> dict[str, dict[str, float]]:
    """The numbers each asset of the run recorded (counts, costs), by asset."""
    metadata: dict[str, dict[str, float]] = {}
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is not None:
            values = {
                key: value.value
                for key, value in materialization.metadata.items()
                if isinstance(value.value, int | float) and not isinstance(value.value, bool)
            }
            metadata.setdefault(materialization.asset_key.to_user_string(), {}).update(values)
    return metadata


def launch_run(
    instance: DagsterInstance,
    job_name: str,
    label: str,
    partition: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, object] | None = None,
) -> RunOutcome:
    """Create the run with the code location's origin and execute its steps in this process."""
    begin = time.perf_counter()
    recon = reconstructable_job(job_name)
    run_tags = {**(tags or {}), **({PARTITION_TAG: partition} if partition else {})}
    run = instance.create_run_for_job(
        recon.get_definition(),
        run_config=run_config,
        tags=run_tags,
        remote_job_origin=code_location_origin(job_name),
        job_code_origin=recon.get_python_origin(),
    )
    try:
        result = execute_run(recon, run, instance)
    finally:
        release_after_run()  # the warehouse file lock, for other processes between runs
    failure = NO_FAILURE if result.success else summarize_failure(instance, run.run_id)
    return RunOutcome(
        label=label,
        partition=partition,
        success=result.success,
        seconds=time.perf_counter() - begin,
        run_id=run.run_id,
        failure=failure.line,
        failure_class=failure.failure_class,
        failed_step=failure.step,
        detail=failure.detail,
        problems=failure.problems,
        metadata=materialization_metadata(instance, run.run_id),
        warnings=run_warnings(instance, run.run_id),
    )


# --- What a segment's campaign run amounts to -----------------------------------------------------------------

SERVED = "served"
NO_CONTENT = "no suitable content"
ALL_BLOCKED = "all variants blocked"
FAILED = "failed"


def segment_status(outcome: RunOutcome) -> tuple[str, str]:
    """(status, one-line reason) of one segment's campaign run: served only if a variant was approved."""
    if not outcome.success:
        if outcome.no_suitable_content:  # the status already says it: "no suitable content: no document scored..."
            return NO_CONTENT, outcome.failure.removeprefix(f"{NO_SUITABLE_CONTENT} '{outcome.partition}': ")
        where = f"{outcome.failed_step}: " if outcome.failed_step else ""
        return FAILED, where + outcome.failure
    safety = outcome.metadata.get("safety_verdicts", {})
    approved = safety.get("approved")
    screened = int(safety.get("approved", 0)) + int(safety.get("blocked", 0))
    if approved is not None and approved == 0:
        return ALL_BLOCKED, f"0 of {screened} variants approved; no message sent"
    messages = outcome.metadata.get("personalized_messages", {}).get("messages")
    parts = [f"{int(approved)} of {screened} variants approved" if approved is not None else "campaign built"]
    if messages is not None:
        parts.append(f"{int(messages):,} messages")
    return SERVED, ", ".join(parts)


NOT_RUN = "not run"


def outcome_of_run(instance: DagsterInstance, run) -> RunOutcome:
    """A finished run's outcome, read back from the instance (for runs this process did not start)."""
    success = run.status == DagsterRunStatus.SUCCESS
    failure = NO_FAILURE if success else summarize_failure(instance, run.run_id)
    return RunOutcome(
        label=f"segment {run.tags.get(PARTITION_TAG)}",
        partition=run.tags.get(PARTITION_TAG),
        success=success,
        seconds=0.0,
        run_id=run.run_id,
        failure=failure.line,
        failure_class=failure.failure_class,
        failed_step=failure.step,
        detail=failure.detail,
        problems=failure.problems,
        metadata=materialization_metadata(instance, run.run_id),
    )


def latest_finished_campaign_run(instance: DagsterInstance, segment: str, refresh_id: str | None = None):
    """The RunRecord of the segment partition's latest finished campaign_job run (of refresh `refresh_id` if
    given), or None."""
    tags = {PARTITION_TAG: segment, **({REFRESH_TAG: refresh_id} if refresh_id else {})}
    records = instance.get_run_records(
        RunsFilter(job_name=CAMPAIGN_JOB, tags=tags, statuses=FINISHED_STATUSES), limit=1
    )
    return records[0] if records else None


def segment_outcomes(
    instance: DagsterInstance, partitions: Sequence[str], refresh_id: str | None = None
) -> dict[str, tuple[str, str]]:
    """(status, reason) of each segment partition's latest finished campaign_job run, of refresh `refresh_id` if
    given (a re-execution from the UI keeps the tags, so it counts), else of any. Only whole-campaign runs count:
    a partial run (one asset of the partition) says nothing about what its customers receive. Segments without
    one: not run."""
    outcomes: dict[str, tuple[str, str]] = {}
    for key in partitions:
        record = latest_finished_campaign_run(instance, key, refresh_id)
        if record is not None:
            outcomes[key] = segment_status(outcome_of_run(instance, record.dagster_run))
        else:
            where = f"in campaign {refresh_id}" if refresh_id else "yet"
            outcomes[key] = (NOT_RUN, f"no finished run of this segment {where}")
    return outcomes


# --- Runs whose process is gone -------------------------------------------------------------------------------


def process_tag() -> dict[str, str]:
    return {PROCESS_TAG: f"{os.getpid()}@{socket.gethostname()}"}


def fail_orphaned_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed the unfinished runs of `personalize run` processes on this host that no longer exist (killed,
    crashed, machine rebooted) at the start of the next one, also when no daemon runs (with a daemon, its run
    monitoring does it too: personalization_assets.run_launcher). Returns their ids."""
    host = socket.gethostname()
    failed = []
    unfinished = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
    for run in instance.get_runs(RunsFilter(tags={TRIGGER_TAG: CLI_TRIGGER}, statuses=unfinished)):
        pid, _, run_host = run.tags.get(PROCESS_TAG, "").partition("@")
        if run_host != host or not pid.isdigit() or process_alive(int(pid)):
            continue
        instance.report_run_failed(run, f"the `personalize run` process {pid} that executed this run is gone")
        failed.append(run.run_id)
    return failed
