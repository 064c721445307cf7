"""Step output capture (dagster.yaml `compute_logs`): the UI's files get what a step writes, the terminal a copy,
and no helper process is started for it."""

import json
import subprocess
import sys
import textwrap

import yaml

from personalization_assets.compute_logs import MirroredComputeLogManager
from tests.conftest import PROJECT_ROOT

PROBE = textwrap.dedent(
    """
    import json, os, subprocess, sys
    from dagster import DagsterInstance, job, op
    from dagster._core.storage.compute_log_manager import ComputeIOType

    started = []
    real_popen = subprocess.Popen.__init__
    def recording_popen(self, args, *rest, **kwargs):
        started.append(args if isinstance(args, str) else " ".join(map(str, args)))
        real_popen(self, args, *rest, **kwargs)
    subprocess.Popen.__init__ = recording_popen

    @op
    def talk():
        print("hello from the step", flush=True)
        print("a warning from the step", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-c", "print('hello from a child process')"], check=True)

    @job
    def talking():
        talk()

    instance = DagsterInstance.get()
    result = talking.execute_in_process(instance=instance)
    manager = instance.compute_log_manager
    keys = [e.logs_captured_data.file_key for e in result.all_events if e.event_type_value == "LOGS_CAPTURED"]
    log_key = manager.build_log_key_for_run(result.run_id, keys[0])
    data = manager.get_log_data(log_key)
    print("RESULT " + json.dumps({
        "manager": type(manager).__name__,
        "stdout": data.stdout.decode(), "stderr": data.stderr.decode(),
        "complete": manager.is_capture_complete(log_key),
        "started": [s for s in started if "hello from a child" not in s],
    }), flush=True)
    """
)


def test_a_step_output_is_captured_for_the_ui_and_copied_to_the_terminal(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    settings = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    (home / "dagster.yaml").write_text(yaml.safe_dump({"compute_logs": settings["compute_logs"]}))
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result["manager"] == "MirroredComputeLogManager"
    # The UI's files: the step's own prints and a child process's output (captured by file descriptor).
    assert "hello from the step" in result["stdout"] and "hello from a child process" in result["stdout"]
    assert "a warning from the step" in result["stderr"]
    assert result["complete"]
    # The terminal's copy, made before the run ended, in the order written.
    assert done.stdout.index("hello from the step") < done.stdout.index("hello from a child process")
    assert done.stdout.index("hello from a child process") < done.stdout.index("RESULT ")
    assert "a warning from the step" in done.stderr
    helpers = [cmd for cmd in result["started"] if cmd.startswith("tail ") or "watch_orphans" in cmd]
    assert helpers == []  # Dagster's own manager starts `tail -F` and a watcher per stream


def test_base_dir_defaults_to_dagsters_place_under_dagster_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    manager = MirroredComputeLogManager.from_config_value(None, {})
    assert manager._base_dir == str(tmp_path / "storage")
    monkeypatch.delenv("DAGSTER_HOME")
    explicit = MirroredComputeLogManager.from_config_value(None, {"base_dir": str(tmp_path / "logs")})
    assert explicit._base_dir == str(tmp_path / "logs")
