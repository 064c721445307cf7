"""Run monitoring fails a run whose worker process was killed (personalization_assets.run_launcher).

The launch goes through Dagster's own path, as the UI's does: the instance's run launcher hands the run to a code
server started from a workspace file, which starts the run worker process and records its pid. The daemon's
monitoring function is then called on the run, as the daemon calls it every poll interval."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from dagster import DagsterRunStatus
from dagster._core.launcher.base import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._core.test_utils import create_run_for_test, instance_for_test
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from personalization_assets.run_launcher import PROCESS_TAG, MonitoredRunLauncher

LAUNCHER = {"module": "personalization_assets.run_launcher", "class": "MonitoredRunLauncher"}

SLOW_JOB = textwrap.dedent(
    """
    import time
    from dagster import Definitions, job, op

    @op
    def wait_a_minute():
        time.sleep(60)

    @job
    def slow_job():
        wait_a_minute()

    defs = Definitions(jobs=[slow_job])
    """
)


def _parent_pid(pid: int) -> int | None:
    with open(f"/proc/{pid}/stat") as stat:  # "pid (name) state ppid ...": the name may hold spaces
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[1]) if fields[1].isdigit() else None


def _wait_for(predicate, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached")


def test_the_projects_instance_settings_use_the_monitored_launcher(tmp_path, monkeypatch):
    import shutil

    from personalization_assets.config import PROJECT_ROOT

    shutil.copy(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        assert isinstance(instance.run_launcher, MonitoredRunLauncher)
        assert instance.run_monitoring_enabled
    finally:
        instance.dispose()


def test_a_killed_run_worker_is_failed_by_run_monitoring(tmp_path):
    (tmp_path / "slow_job.py").write_text(SLOW_JOB)
    (tmp_path / "workspace.yaml").write_text(
        f"load_from:\n  - python_file:\n      relative_path: slow_job.py\n      working_directory: {tmp_path}\n"
    )
    target = WorkspaceFileTarget([str(tmp_path / "workspace.yaml")])
    with (
        instance_for_test(overrides={"run_launcher": LAUNCHER}) as instance,
        WorkspaceProcessContext(instance, target) as process,
    ):
        workspace = process.create_request_context()
        location = workspace.get_code_location(next(iter(workspace.get_code_location_entries())))
        remote_job = location.get_repository("__repository__").get_full_job("slow_job")
        run = create_run_for_test(  # what the UI's launch creates: the snapshots and origins of the location
            instance,
            job_name="slow_job",
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=location.get_execution_plan(
                remote_job, {}, step_keys_to_execute=None, known_state=None
            ).execution_plan_snapshot,
            parent_job_snapshot=remote_job.parent_job_snapshot,
        )
        instance.launch_run(run.run_id, workspace)
        started = _wait_for(
            lambda: (r := instance.get_run_by_id(run.run_id)) and r.status == DagsterRunStatus.STARTED and r
        )
        pid = _wait_for(lambda: instance.run_launcher.worker_pid(started))  # type: ignore[attr-defined]
        assert pid != os.getpid()
        assert instance.run_launcher.check_run_worker_health(started).status == WorkerStatus.RUNNING

        # The code server that started the worker fails a run whose worker it sees die; here it goes first (a
        # restarted `dagster dev`, a crashed server), so only run monitoring can notice the worker is gone.
        code_server = _parent_pid(pid)
        assert code_server not in (None, os.getpid())
        os.kill(code_server, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: instance.run_launcher.check_run_worker_health(started).status == WorkerStatus.FAILED)
        still_started = instance.get_run_by_id(run.run_id)
        assert still_started is not None
        assert still_started.status == DagsterRunStatus.STARTED  # nothing else marked it
        record = instance.get_run_records(filters=None, limit=1)[0]
        assert record.dagster_run.run_id == run.run_id
        monitor_started_run(instance, workspace, record, logging.getLogger("test"))

        failed = instance.get_run_by_id(run.run_id)
        assert failed is not None
        assert failed.status == DagsterRunStatus.FAILURE
        messages = [r.event_log_entry.message for r in instance.get_records_for_run(run.run_id).records]
        assert any(f"run worker process {pid} is gone" in (m or "") for m in messages)


@pytest.fixture
def instance():
    with instance_for_test(overrides={"run_launcher": LAUNCHER}) as instance:
        yield instance


def test_a_personalize_run_process_is_checked_by_its_tag(instance):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = create_run_for_test(
            instance,
            status=DagsterRunStatus.STARTED,
            tags={PROCESS_TAG: f"{child.pid}@{socket.gethostname()}"},
        )
        assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    finally:
        child.kill()
        child.wait()
    health = instance.run_launcher.check_run_worker_health(run)
    assert health.status == WorkerStatus.FAILED
    assert str(child.pid) in (health.msg or "")


def test_workers_on_other_machines_are_left_to_the_maximum_runtime(instance):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    other_host = create_run_for_test(
        instance, status=DagsterRunStatus.STARTED, tags={PROCESS_TAG: f"{gone.pid}@another-host"}
    )
    remote_server = create_run_for_test(
        instance, status=DagsterRunStatus.STARTED, tags={GRPC_INFO_TAG: json.dumps({"host": "10.1.2.3", "port": 4000})}
    )
    for run in (other_host, remote_server):
        health = instance.run_launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.RUNNING
        assert "not checkable" in (health.msg or "")
