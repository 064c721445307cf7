"""The instance's run launcher: Dagster's default one, plus a health check so run monitoring fails a killed run.

Dagster's `DefaultRunLauncher` cannot say whether a run worker is alive (`supports_check_run_worker_health` is
False), so a run whose worker was killed stayed STARTED until `run_monitoring.max_runtime_seconds`. Every run
worker records its process id (the engine event "Started process for run (pid: N)", and `personalize run`'s
`personalization/process` tag): when that process no longer exists on this machine, the daemon's run monitoring
marks the run failed within one `poll_interval_seconds` (and `run_retries` may re-execute it).

A worker on another machine (a code server reached over the network) cannot be checked from here: its runs are
reported RUNNING and `max_runtime_seconds` still applies. Imported by the daemon and the webserver, so this module
imports nothing heavy.
"""

from __future__ import annotations

import json
import os
import socket

from dagster import DagsterEventType, DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import GRPC_INFO_TAG

PROCESS_TAG = "personalization/process"  # "<pid>@<host>" of the `personalize run` executing the run
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (signal 0 checks without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def _worker_is_local(run: DagsterRun) -> bool:
    """A run launched through a code server on this machine (`dagster dev`, a local `dagster code-server`)."""
    info = run.tags.get(GRPC_INFO_TAG)
    if not info:  # not launched through a code server: executed by the process that created it
        return True
    try:
        grpc = json.loads(info)
    except ValueError:
        return False
    return bool(grpc.get("socket")) or str(grpc.get("host") or "").lower() in LOCAL_HOSTS


class MonitoredRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` that answers run monitoring's health check from the run worker's process id."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def worker_pid(self, run: DagsterRun) -> int | None:
        """The process executing the run on this machine, if it is known."""
        pid, _, host = run.tags.get(PROCESS_TAG, "").partition("@")
        if pid.isdigit():
            return int(pid) if host == socket.gethostname() else None
        if not _worker_is_local(run):
            return None
        records = self._instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ENGINE_EVENT).records
        for record in reversed(records):  # the latest worker (a resumed run has a newer one)
            event = record.event_log_entry.dagster_event
            data = event.engine_event_data if event is not None else None
            value = data.metadata.get("pid") if data is not None else None
            if value is not None and str(value.value).isdigit():
                return int(str(value.value))
        return None

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = self.worker_pid(run)
        if pid is None:  # not known or not on this machine: max_runtime_seconds still applies
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker not checkable from this machine")
        if process_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"the run worker process {pid} is gone (killed or crashed) while the run was still in progress",
            run_worker_id=str(pid),
        )
