"""The `personalize` command line: runs the UI can see, the truth at the end of a run, errors a person reads."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    DagsterRunStatus,
    RunsFilter,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from personalization_assets.cli import MAX_WARNINGS_SHOWN, _print_run, _summary, main
from personalization_assets.definitions import defs
from personalization_assets.jobs import CAMPAIGN_JOB, REPORT_JOB, SEGMENTATION_JOB
from personalization_assets.launch import (
    ALL_BLOCKED,
    CLI_TRIGGER,
    FAILED,
    LOCATION_NAME,
    NO_CONTENT,
    PROCESS_TAG,
    REFRESH_PARTITIONS_TAG,
    REFRESH_TAG,
    SERVED,
    TRIGGER_TAG,
    RunOutcome,
    fail_orphaned_runs,
    refusal_problems,
    segment_status,
)
from personalization_assets.report_currency import LOST_RUN_SENSOR, REPORT_CURRENT_CHECK, REPORT_KEY
from tests.conftest import PROJECT_ROOT, dagster_instance_at, isolated_pipeline_env, run_failure_sensor_context


def test_data_writes_seeded_parquet_and_csv(tmp_path, capsys):
    assert main(["data", "--customers", "500", "--out", str(tmp_path / "c.parquet"), "--seed", "9"]) == 0
    assert main(["data", "--customers", "500", "--out", str(tmp_path / "c.csv"), "--seed", "9"]) == 0
    parquet, csv = pd.read_parquet(tmp_path / "c.parquet"), pd.read_csv(tmp_path / "c.csv")
    assert len(parquet) == 500
    pd.testing.assert_frame_equal(parquet, csv, check_dtype=False)
    assert "wrote 500 customers" in capsys.readouterr().out


def test_data_rejects_unknown_suffix(tmp_path, capsys):
    assert main(["data", "--customers", "5", "--out", str(tmp_path / "c.xlsx")]) == 2
    assert "unsupported output type '.xlsx'" in capsys.readouterr().err


def test_console_script_is_installed():
    completed = subprocess.run(
        [sys.executable, "-m", "personalization_assets.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "run" in completed.stdout
    assert "report" in completed.stdout


# --- `personalize run` in a subprocess, on a temporary DAGSTER_HOME and warehouse ------------------------------


def personalize(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "personalization_assets.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def instance_of(env: dict):
    return dagster_instance_at(env["DAGSTER_HOME"])


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """One whole sample campaign (1,000 customers, 5 segments, report) by `personalize run`."""
    env = isolated_pipeline_env(tmp_path_factory.mktemp("cli"))
    completed = personalize(env, "run")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return {"env": env, "output": completed}


@pytest.mark.slow
def test_run_prints_each_segment_served_and_exits_zero(campaign):
    lines = campaign["output"].stdout.splitlines()
    segment_lines = [line for line in lines if line.startswith("segment ")]
    assert len(segment_lines) == 5
    for line in segment_lines:
        assert " ... served: " in line, line
        assert "variants approved" in line, line
    assert any(line.startswith("campaign report ... ok") for line in lines)
    assert "done in " in lines[-1]
    assert "5 served" in lines[-1]
    assert "findfont" not in campaign["output"].stderr
    assert "warning:" not in campaign["output"].stderr  # the sample warns of nothing: no noise to learn to skip


@pytest.mark.slow
def test_runs_carry_the_code_location_origin_and_the_campaign_tags(campaign):
    with instance_of(campaign["env"]) as instance:
        runs = instance.get_runs()
    assert sorted(run.job_name for run in runs) == sorted([SEGMENTATION_JOB, REPORT_JOB] + [CAMPAIGN_JOB] * 5)
    refreshes = {run.tags[REFRESH_TAG] for run in runs}
    assert len(refreshes) == 1
    for run in runs:
        # The UI lists a run on the timeline and the job's page, and re-executes it, through this origin.
        assert run.remote_job_origin is not None, run.job_name
        assert run.remote_job_origin.location_name == LOCATION_NAME
        assert run.remote_job_origin.job_name == run.job_name
        assert run.job_code_origin is not None
        assert run.tags[TRIGGER_TAG] == CLI_TRIGGER
        assert PROCESS_TAG in run.tags
        assert run.status == DagsterRunStatus.SUCCESS
    campaign_runs = [run for run in runs if run.job_name == CAMPAIGN_JOB]
    assert {run.tags[REFRESH_PARTITIONS_TAG] for run in campaign_runs} == {"5"}
    assert len({run.tags["dagster/partition"] for run in campaign_runs}) == 5


def report_currency_check(env: dict):
    """The latest evaluation of the report's `shows_latest_segment_runs` check: (record, evaluation)."""
    key = AssetCheckKey(REPORT_KEY, REPORT_CURRENT_CHECK)
    with instance_of(env) as instance:
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
        (report,) = instance.fetch_materializations(REPORT_KEY, limit=1).records
    return record, record.event.dagster_event.event_specific_data, report


@pytest.mark.slow
def test_the_report_run_checks_that_the_report_shows_every_segments_latest_run(campaign):
    record, evaluation, report = report_currency_check(campaign["env"])
    assert record.status == AssetCheckExecutionRecordStatus.SUCCEEDED
    assert record.run_id == report.run_id  # evaluated in the report's own run, against that report
    assert "shows every segment's latest campaign run" in evaluation.description


@pytest.mark.slow
def test_report_names_the_campaigns_report_without_a_warning(campaign):
    completed = personalize(campaign["env"], "report")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[0].endswith("/campaign_report.html")
    assert "warning" not in completed.stderr


@pytest.mark.slow
def test_a_segment_that_fails_is_reported_failed_with_its_reason_and_no_report_is_presented(campaign, tmp_path):
    """A retrieval threshold no document meets: the segment is not served, the run exits 1, and no report is
    built from the warehouse's older rows."""
    env = dict(campaign["env"])
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    retrieval = (config / "retrieval.yaml").read_text()
    (config / "retrieval.yaml").write_text(retrieval.replace("threshold: 0.5", "threshold: 0.999"))
    env["PERSONALIZATION_CONFIG"] = str(config)
    reports_before = sorted(Path(env["PERSONALIZATION_REPORTS"]).glob("*"))

    completed = personalize(env, "run", "--segment", "at_risk")
    assert completed.returncode == 1, completed.stdout + completed.stderr
    line = next(line for line in completed.stdout.splitlines() if line.startswith("segment at_risk"))
    assert "served:" not in line
    assert " ... no suitable content: no document scored >= 0.999; " in line, line
    # Dagster's notices of the six steps not executed after it would bury that line: not repeated here.
    assert "Not executing" not in completed.stdout + completed.stderr
    assert "Traceback" not in completed.stdout + completed.stderr
    assert "campaign report ... not built" in completed.stderr
    assert sorted(Path(env["PERSONALIZATION_REPORTS"]).glob("*")) == reports_before
    # Asked for the latest report now, the CLI says that it predates the run that just failed.
    report = personalize(env, "report")
    assert report.returncode == 0
    assert report.stdout.splitlines()[0] == f"latest report: {reports_before[-1] / 'campaign_report.html'}"
    assert "warning: this report was built" in report.stderr
    assert "1 pipeline run(s) started after it (1 failed; newest: campaign_job at_risk, failure)" in report.stderr
    # ... and so does the UI: the failed run's hook failed the report's check (a warning), naming the segment.
    record, evaluation, report_event = report_currency_check(env)
    assert record.status == AssetCheckExecutionRecordStatus.FAILED
    assert evaluation.severity == AssetCheckSeverity.WARN
    assert evaluation.target_materialization_data.storage_id == report_event.storage_id
    assert evaluation.metadata["segments_behind"].value == "at_risk"
    (behind,) = [line for line in evaluation.description.splitlines() if line.startswith("- ")]
    with instance_of(env) as instance:
        (failed_run,) = instance.get_runs(RunsFilter(job_name=CAMPAIGN_JOB, statuses=[DagsterRunStatus.FAILURE]))
    assert behind.startswith(f"- segment at_risk: run {failed_run.run_id[:8]} (")
    # ... in the words the command printed for that segment (status and reason), not a vocabulary of its own.
    printed = line.split(" ... ", 1)[1].rsplit(" (", 1)[0]
    assert printed.startswith("no suitable content: "), line
    assert behind.endswith(f") {printed}"), (behind, printed)
    assert "materialize campaign_report, or run report_job" in evaluation.description
    # The daemon's lost-run sensor sees this failure too, finds that the run's hook flagged it, records nothing.
    with instance_of(env) as instance:
        context = run_failure_sensor_context(instance, failed_run, LOST_RUN_SENSOR)
        skipped = defs.get_repository_def().get_sensor_def(LOST_RUN_SENSOR)(context)
    assert "failure hook already flagged the report" in skipped.skip_message
    assert report_currency_check(env)[0].id == record.id  # still the hook's evaluation


def test_a_refused_input_is_one_clear_error_and_exit_2(tmp_path):
    env = isolated_pipeline_env(tmp_path)
    bad = tmp_path / "customers.csv"
    bad.write_text("customer_id,age\nC000001,34\n")
    env["PERSONALIZATION_CUSTOMERS"] = str(bad)
    completed = personalize(env, "run")
    assert completed.returncode == 2
    errors = completed.stderr.strip().splitlines()
    assert len(errors) <= 3, completed.stderr
    assert errors[0].startswith(f"error: {bad}: missing required column(s)")
    assert "CustomerDataError" not in completed.stderr
    assert "Traceback" not in completed.stderr
    assert "--verbose" in errors[-1]

    verbose = personalize(env, "run", "--verbose")
    assert verbose.returncode == 2
    assert "Traceback" in verbose.stderr or 'File "' in verbose.stderr


def test_a_file_refused_for_invalid_rows_names_column_lines_and_fix_without_a_trace(tmp_path):
    """The refusal's first line only counts the rows ("2 invalid row(s)"): the command prints the problems under
    it (which column, which lines as pseudonyms, what to write instead), never a value or a traceback."""
    env = isolated_pipeline_env(tmp_path)
    lines = (PROJECT_ROOT / "data" / "customers.csv").read_text().splitlines()[:12]
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:]]
    rows[2][header.index("avg_order_value")] = '"112,29"'  # a spreadsheet's decimal comma, file line 4
    rows[5][header.index("age")] = "7"  # outside 13-120, file line 7
    bad = tmp_path / "customers.csv"
    bad.write_text("\n".join([lines[0], *(",".join(row) for row in rows)]) + "\n")
    env["PERSONALIZATION_CUSTOMERS"] = str(bad)

    completed = personalize(env, "run")

    assert completed.returncode == 2
    errors = completed.stderr.strip().splitlines()
    assert errors[0] == (
        f"error: {bad}: 2 invalid row(s); correct them, or set validation.on_invalid_rows: quarantine in "
        "config/pipeline.yaml to load the valid rows"
    )
    problems = [line for line in errors if line.startswith("  - ")]
    assert len(problems) == 2, completed.stderr
    (comma,) = [p for p in problems if "column 'avg_order_value'" in p]
    assert "decimal comma" in comma and "'.' decimal point" in comma and "line 4 (cust_" in comma
    (age,) = [p for p in problems if "column 'age'" in p]
    assert "line 7 (cust_" in age
    assert "112,29" not in completed.stderr and rows[5][0] not in completed.stderr  # no value, no raw id
    assert "Traceback" not in completed.stderr
    assert "--verbose" in errors[-1]


def test_refusal_problems_are_the_listed_lines_capped_with_the_rest_counted():
    message = "f.csv: 10 invalid row(s); correct them\n" + "\n".join(
        f"  - column 'c{i}': not a number — 1 row(s), first: line {i + 2} (cust_{i})" for i in range(10)
    )
    problems = refusal_problems(message, limit=3)
    assert problems[:3] == tuple(
        f"column 'c{i}': not a number — 1 row(s), first: line {i + 2} (cust_{i})" for i in range(3)
    )
    assert problems[3] == "... and 7 more (the run in the UI lists every one)"
    assert len(problems) == 4
    assert refusal_problems("f.csv: missing required column(s): age") == ()


def test_every_stage_setting_is_checked_before_any_stage_runs(tmp_path):
    env = isolated_pipeline_env(tmp_path)
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    (config / "reporting.yaml").write_text("primary_metrik: open\n")  # the last stage's file, misspelt
    env["PERSONALIZATION_CONFIG"] = str(config)
    completed = personalize(env, "run")
    assert completed.returncode == 2
    assert f"{config / 'reporting.yaml'}: invalid configuration" in completed.stderr
    assert "primary_metrik: unknown key" in completed.stderr
    assert "Traceback" not in completed.stderr
    with instance_of(env) as instance:
        assert instance.get_runs() == []  # refused before the segmentation stage ran


def test_a_second_opinion_without_an_llm_is_refused_before_any_stage_runs(tmp_path):
    env = isolated_pipeline_env(tmp_path)
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    thresholds = (config / "safety_thresholds.yaml").read_text()
    assert "  enabled: false" in thresholds
    (config / "safety_thresholds.yaml").write_text(thresholds.replace("  enabled: false", "  enabled: true", 1))
    env["PERSONALIZATION_CONFIG"] = str(config)
    completed = personalize(env, "run")
    assert completed.returncode == 2
    assert "second_opinion.enabled is true, but the generation stage uses the embedded composer" in completed.stderr
    assert "Traceback" not in completed.stderr
    with instance_of(env) as instance:
        assert instance.get_runs() == []


def test_stage_config_models_cover_every_stage_file():
    from personalization_assets.preflight import stage_config_models

    files = {model.FILENAME for model in stage_config_models()}
    assert {"pipeline.yaml", "segmentation.yaml", "reporting.yaml"} <= files


def copy_of_campaign(campaign: dict, root: Path) -> dict:
    """An environment of its own holding a copy of the campaign's Dagster home, warehouse and reports."""
    source = Path(campaign["env"]["DAGSTER_HOME"]).parent
    shutil.copytree(source, root, dirs_exist_ok=True)
    return {
        **campaign["env"],
        "DAGSTER_HOME": str(root / "dagster_home"),
        "PERSONALIZATION_WAREHOUSE": str(root / "warehouse.duckdb"),
        "PERSONALIZATION_REPORTS": str(root / "reports"),
    }


def kill_at_first_started_run(env: dict, *args: str, job_name: str | None = None) -> str:
    """Start `personalize *args`, SIGKILL it once a run (of `job_name`) has started; that run's id."""
    process = subprocess.Popen(
        [sys.executable, "-m", "personalization_assets.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    with instance_of(env) as instance:
        started = []
        while not started and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
            started = instance.get_runs(RunsFilter(job_name=job_name, statuses=[DagsterRunStatus.STARTED]))
    assert started, "no run started"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return started[0].run_id


@pytest.mark.slow
def test_a_killed_personalize_run_leaves_no_run_started_for_ever(tmp_path):
    env = isolated_pipeline_env(tmp_path)
    run_id = kill_at_first_started_run(env, "run")
    with instance_of(env) as instance:
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED

        assert fail_orphaned_runs(instance) == [run_id]
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE
        assert fail_orphaned_runs(instance) == []


@pytest.mark.slow
def test_the_next_personalize_run_flags_the_report_behind_a_killed_segment_run(campaign, tmp_path):
    """A campaign run killed after the report never reached its failure hook: the next `personalize run` marks it
    failed and, before running anything, fails the report's check naming it (docs/operating.md)."""
    env = copy_of_campaign(campaign, tmp_path / "copy")
    killed = kill_at_first_started_run(env, "run", "--segment", "standard", job_name=CAMPAIGN_JOB)

    completed = personalize(env, "run", "--segment", "standard")

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"marked run {killed[:8]} failed: the process that executed it is gone" in completed.stderr
    key = AssetCheckKey(REPORT_KEY, REPORT_CURRENT_CHECK)
    with instance_of(env) as instance:
        history = instance.event_log_storage.get_asset_check_execution_history(key, limit=20)
    flagged = [
        record.event.dagster_event.event_specific_data.description
        for record in history
        if record.status == AssetCheckExecutionRecordStatus.FAILED
    ]
    assert any(f"- segment standard: run {killed[:8]} (" in text for text in flagged), flagged
    assert any("failed: the `personalize run` process" in text for text in flagged), flagged


def test_a_missing_credential_variable_is_refused_before_any_stage_runs(tmp_path):
    env = isolated_pipeline_env(tmp_path)
    env["PERSONALIZATION_IO_MANAGER"] = "snowflake"
    for name in list(env):
        if name.startswith("SNOWFLAKE_"):
            del env[name]
    completed = personalize(env, "run")
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: PERSONALIZATION_IO_MANAGER=snowflake needs the environment variable")
    assert "SNOWFLAKE_ACCOUNT" in completed.stderr
    assert "Traceback" not in completed.stderr
    with instance_of(env) as instance:
        assert instance.get_runs() == []


def test_a_missing_model_key_is_refused_before_any_stage_runs(tmp_path):
    """The Azure OpenAI key variable is checked by the preflight, not at the first generation step."""
    env = isolated_pipeline_env(tmp_path)
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    generation = yaml.safe_load((config / "generation.yaml").read_text())
    generation["backend"] = "azure"
    generation["azure"] = {
        **(generation.get("azure") or {}),
        "endpoint": "https://example-openai.openai.azure.com",
        "auth": "api_key",
        "api_key_env": "PERSONALIZATION_TEST_MISSING_OPENAI_KEY",
    }
    (config / "generation.yaml").write_text(yaml.safe_dump(generation))
    env["PERSONALIZATION_CONFIG"] = str(config)
    env.pop("PERSONALIZATION_TEST_MISSING_OPENAI_KEY", None)
    completed = personalize(env, "run")
    assert completed.returncode == 2
    assert "PERSONALIZATION_TEST_MISSING_OPENAI_KEY" in completed.stderr
    assert "Traceback" not in completed.stderr
    with instance_of(env) as instance:
        assert instance.get_runs() == []


# --- What a segment's run amounts to, and the exit status (pure functions) -----------------------------------


def outcome(success: bool, failure: str = "", step: str = "", **metadata) -> RunOutcome:
    return RunOutcome("segment s", "s", success, 1.0, "run-id", failure, "", step, "", metadata)


@pytest.mark.parametrize(
    ("run", "status", "reason"),
    [
        (
            outcome(True, safety_verdicts={"approved": 2, "blocked": 1}, personalized_messages={"messages": 40}),
            SERVED,
            "2 of 3 variants approved, 40 messages",
        ),
        (
            outcome(True, safety_verdicts={"approved": 0, "blocked": 3}),
            ALL_BLOCKED,
            "0 of 3 variants approved; no message sent",
        ),
        (
            outcome(False, "no suitable content for segment 's': no document scored 0.999", "retrieved_content"),
            NO_CONTENT,
            "no document scored 0.999",  # the status says "no suitable content" once
        ),
        (
            outcome(False, "the model service kept failing", "message_variants"),
            FAILED,
            "message_variants: the model service kept failing",
        ),
    ],
)
def test_segment_status_says_served_only_when_a_variant_was_approved(run, status, reason):
    assert segment_status(run) == (status, reason)


@pytest.mark.parametrize("verbose", [False, True])
def test_a_runs_warnings_are_printed_under_its_line(capsys, verbose):
    """Rows quarantined, columns not used, a segment left with control only: said on the command line, not only
    in the UI; at most MAX_WARNINGS_SHOWN per run unless --verbose, then where the rest are."""
    warnings = tuple(f"load_customers: quarantined: problem {i}" for i in range(MAX_WARNINGS_SHOWN + 2))
    run = RunOutcome("segmentation and content index", None, True, 1.0, "abcdef123456", warnings=warnings)
    _print_run(run, "ok", "", verbose)
    captured = capsys.readouterr()
    assert captured.out.startswith("segmentation and content index ... ok (1.0s, run abcdef12)")
    printed = [line for line in captured.err.splitlines() if line.startswith("    warning: ")]
    assert printed == [f"    warning: {w}" for w in (warnings if verbose else warnings[:MAX_WARNINGS_SHOWN])]
    assert ("... and 2 more warning(s): --verbose, or run abcdef12 in the UI" in captured.err) is not verbose


@pytest.mark.parametrize(
    ("statuses", "strict", "code", "warning"),
    [
        ({"a": SERVED, "b": SERVED}, False, 0, False),
        ({"a": SERVED, "b": NO_CONTENT}, False, 0, True),
        ({"a": SERVED, "b": ALL_BLOCKED}, True, 1, False),
        ({"a": NO_CONTENT, "b": ALL_BLOCKED}, False, 1, False),
        ({"a": SERVED, "b": FAILED}, False, 1, False),
    ],
)
def test_exit_status_follows_the_segments(statuses, strict, code, warning, capsys, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", "/nonexistent")
    result = _summary({key: (status, "why") for key, status in statuses.items()}, False, 0.0, strict)
    assert result == code
    assert ("warning: not served" in capsys.readouterr().err) is warning


def test_report_serve_opens_the_latest_report_over_http(tmp_path):
    import socket
    import urllib.request

    reports = tmp_path / "reports"
    for name in ("20261201-080000-aaaaaaaa", "20261202-080000-bbbbbbbb"):
        (reports / name).mkdir(parents=True)
        (reports / name / "campaign_report.html").write_text(f"<h1>{name}</h1>")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "PERSONALIZATION_REPORTS": str(reports),
        "PERSONALIZATION_CONFIG": str(PROJECT_ROOT / "config"),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "personalization_assets.cli", "report", "--serve", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        latest = server.stdout.readline().strip()
        url = server.stdout.readline().strip()
        assert latest.endswith("20261202-080000-bbbbbbbb/campaign_report.html")
        assert url == f"http://127.0.0.1:{port}/20261202-080000-bbbbbbbb/campaign_report.html"
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    assert response.read() == b"<h1>20261202-080000-bbbbbbbb</h1>"
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_memory_is_released_after_a_run_only_when_runs_grew_the_process(monkeypatch):
    from personalization_assets import cli

    collections: list[int] = []
    monkeypatch.setattr(cli.gc, "collect", lambda: collections.append(1) or 0)
    monkeypatch.setattr(cli, "_loaded_bytes", 500 * 2**20)  # the code alone, noted after the pre-flight
    monkeypatch.setattr(cli, "_resident_bytes", lambda: 600 * 2**20)
    cli.release_memory()
    assert collections == []  # grown by 100 MiB: a full collection would cost more than it frees
    monkeypatch.setattr(cli, "_resident_bytes", lambda: 800 * 2**20)
    cli.release_memory()
    assert collections == [1]
    monkeypatch.setattr(cli, "_resident_bytes", lambda: None)  # size unknown (not Linux): always released
    cli.release_memory()
    assert collections == [1, 1]


def _blas_threads() -> dict[str, int]:
    from threadpoolctl import threadpool_info

    return {pool["filepath"]: pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@pytest.fixture
def restored_blas_threads():
    from threadpoolctl import threadpool_info, threadpool_limits

    original = {pool["prefix"]: pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}
    yield
    threadpool_limits(limits=original)


def test_tune_process_runs_blas_on_one_thread_unless_the_user_set_a_count(monkeypatch, restored_blas_threads):
    import numpy  # noqa: F401  (its OpenBLAS is what is limited)

    from personalization_assets import cli

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")  # a count the user chose: kept
    before = _blas_threads()
    cli.tune_process()
    assert _blas_threads() == before
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cli.tune_process()
    limited = _blas_threads()
    assert limited
    assert set(limited.values()) == {1}


def test_tune_process_gives_arrow_jemalloc_unless_the_user_chose_an_allocator(monkeypatch, restored_blas_threads):
    import pyarrow

    from personalization_assets import cli

    original = pyarrow.default_memory_pool()
    try:
        pyarrow.set_memory_pool(pyarrow.system_memory_pool())
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")  # the user's choice: kept
        cli.tune_process()
        assert pyarrow.default_memory_pool().backend_name == "system"
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
        cli.tune_process()
        assert pyarrow.default_memory_pool().backend_name == "jemalloc"
        assert pyarrow.array(["a", "b"]).to_pylist() == ["a", "b"]  # allocations now come from it
    finally:
        pyarrow.set_memory_pool(original)


def test_the_loaded_code_is_frozen_out_of_the_collectors_reach_after_a_collection(monkeypatch):
    import gc

    from personalization_assets import cli

    class Cycle:  # garbage the pre-flight could leave: collected first, never frozen
        def __init__(self):
            self.me = self

    collected = []
    Cycle.__del__ = lambda self: collected.append(1)
    Cycle()
    monkeypatch.setattr(cli, "_loaded_bytes", None)
    try:
        cli.note_loaded_size()
        assert collected == [1]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
