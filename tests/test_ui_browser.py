"""The Dagster UI as an operator sees it, in headless Chromium: the asset graph, a segment-partitioned asset's
partitions and their materialization status, and asset check results per partition.

Runs Debian's Chromium (/usr/bin/chromium) through Playwright; never downloads a browser. Skipped where
Chromium is missing, except in CI (CI=true), where a missing browser is a failure. With
PERSONALIZATION_UPDATE_SCREENSHOTS=1 the PNGs in docs/screenshots/ are refreshed (otherwise: under tmp_path).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest
from dagster import AssetCheckKey, AssetKey

from personalization_assets.report_currency import REPORT_CURRENT_CHECK as REPORT_CHECK
from tests.conftest import PROJECT_ROOT, dagster_instance_at, isolated_pipeline_env

pytestmark = pytest.mark.browser

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CAMPAIGN_SEGMENTS = 2  # partitions materialized before the UI opens; the others stay missing on purpose
STARTUP_TIMEOUT_SECONDS = 60
PAGE_TIMEOUT_MS = 20_000
SCREENSHOT_DIR = PROJECT_ROOT / "docs" / "screenshots"
SCREENSHOT_SIZE = (1280, 800)

# Segmentation, CAMPAIGN_SEGMENTS segment campaigns and the report on the sample data (1,000 customers), launched
# as `personalize run` launches them (the code location's origin, the campaign tags) and recorded in
# DAGSTER_HOME; a separate process, so the code location reads this test's environment.
PIPELINE_SCRIPT = f"""
import sys
from dagster import DagsterInstance
from dagster._core.utils import make_new_run_id
from personalization_assets.jobs import CAMPAIGN_JOB, REPORT_JOB, SEGMENTATION_JOB
from personalization_assets.launch import CLI_TRIGGER, REFRESH_TAG, TRIGGER_TAG, launch_run
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME

instance = DagsterInstance.get()
tags = {{TRIGGER_TAG: CLI_TRIGGER, REFRESH_TAG: make_new_run_id()}}
if not launch_run(instance, SEGMENTATION_JOB, "segmentation", tags=tags).success:
    sys.exit("segmentation_job failed")
segments = sorted(instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME))[:{CAMPAIGN_SEGMENTS}]
for segment in segments:
    outcome = launch_run(instance, CAMPAIGN_JOB, segment, segment, tags)
    print(segment, "ok" if outcome.success else "FAILED", outcome.run_id, flush=True)
report = launch_run(instance, REPORT_JOB, "report", tags=tags)
print("report", "ok" if report.success else "FAILED " + report.failure, report.run_id, flush=True)
"""

WORKSPACE_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def chromium_path() -> str:
    """The system Chromium, or skip (fail under CI=true: CI installs it from Debian packages)."""
    found = next((path for path in CHROMIUM_CANDIDATES if os.access(path, os.X_OK)), None) or shutil.which("chromium")
    problem = None
    if not found:
        problem = "Chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed (pip install -e '.[dev]')"
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser test cannot run in CI: {problem}")
        pytest.skip(problem)
    return found


def test_missing_chromium_skips_locally_but_fails_in_ci(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM_CANDIDATES", ("/nonexistent/chromium",))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run in CI: Chromium is not installed"):
        chromium_path()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="Chromium is not installed"):
        chromium_path()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _wait_for_code_location(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    last = "no answer"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            entries = _graphql(port, WORKSPACE_QUERY)["data"]["workspaceOrError"]["locationEntries"]
            states = {entry["name"]: entry for entry in entries}
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                errors = [e for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
                if errors:
                    raise RuntimeError(f"code location failed to load: {errors[0]['locationOrLoadError']}")
                return
            last = str({name: entry["loadStatus"] for name, entry in states.items()})
        except (OSError, KeyError, ValueError) as error:
            last = str(error)
        time.sleep(0.5)
    raise TimeoutError(
        f"webserver on port {port} not ready in {STARTUP_TIMEOUT_SECONDS}s ({last}):\n" + log.read_text()[-3000:]
    )


def _expected_state(home: Path) -> dict:
    """What the UI should show, read from the same instance: partitions, materialized ones, check results."""
    env_home = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        from dagster import DagsterEventType, DagsterInstance

        from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME

        with DagsterInstance.get() as instance:
            segments = sorted(instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME))
            materialized = defaultdict(set)  # asset -> partitions
            checks = defaultdict(dict)  # (asset, check) -> {partition: passed}, in evaluation order
            for run in reversed(instance.get_runs()):  # oldest first
                for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
                    event = entry.dagster_event
                    if event.partition:
                        materialized[event.asset_key.to_user_string()].add(event.partition)
                for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
                    evaluation = entry.dagster_event.event_specific_data
                    key = (evaluation.asset_key.to_user_string(), evaluation.check_name)
                    checks[key][evaluation.partition] = evaluation.passed
        return {"segments": segments, "materialized": dict(materialized), "checks": dict(checks)}
    finally:
        if env_home is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = env_home


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory):
    """A webserver on a free 127.0.0.1 port over a fresh DAGSTER_HOME and warehouse, after a small run."""
    chromium = chromium_path()
    root = tmp_path_factory.mktemp("ui")
    env = isolated_pipeline_env(root)
    home = Path(env["DAGSTER_HOME"])
    port = _free_port()
    log = root / "webserver.log"
    # Create the instance's storage once, before three processes (webserver, code server, pipeline) would all
    # find it missing at the same moment: Dagster's SQLite initialisation can then stamp its schema twice.
    with dagster_instance_at(home) as instance:
        instance.get_runs(limit=1)
    with log.open("w") as log_stream:
        # The webserver starts while the pipeline runs: it reads the instance live, so both overlap.
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagster_webserver",
                "-w",
                "workspace.yaml",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log_stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            pipeline = subprocess.run(
                [sys.executable, "-c", PIPELINE_SCRIPT],
                cwd=PROJECT_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
            )
            assert pipeline.returncode == 0, f"pipeline run failed:\n{pipeline.stdout}\n{pipeline.stderr[-3000:]}"
            campaign_lines = [line.split() for line in pipeline.stdout.splitlines() if line.strip()]
            assert all(line[1] == "ok" for line in campaign_lines), pipeline.stdout
            _wait_for_code_location(port, server, log)
            yield {
                "url": f"http://127.0.0.1:{port}",
                "chromium": chromium,
                "root": root,
                "expected": _expected_state(home),
                "runs": {line[0]: line[2] for line in campaign_lines},
                "env": env,
            }
        finally:
            os.killpg(server.pid, signal.SIGTERM)  # the webserver and the code server it started
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=5)


@pytest.fixture(scope="module")
def browser_context(dagster_ui):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(dagster_ui["root"] / "chromium-profile"),  # a fresh --user-data-dir
            executable_path=dagster_ui["chromium"],
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": SCREENSHOT_SIZE[0], "height": SCREENSHOT_SIZE[1]},
        )
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        # Only the local webserver: nothing may try to reach the internet (this machine has none).
        context.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(dagster_ui["url"]) or route.request.url.startswith("data:")
                else route.abort()
            ),
        )
        # Dismiss the one-time "join the community" dialog before it opens.
        context.add_init_script("window.localStorage.setItem('communityNux', '1')")
        yield context
        context.close()


@pytest.fixture
def page(browser_context):
    page = browser_context.new_page()
    yield page
    page.close()


def save_screenshot(page, name: str, tmp_path: Path, clip: dict | None = None) -> Path:
    """A small palette PNG: docs/screenshots/ when refreshing them, else tmp_path."""
    from PIL import Image

    folder = SCREENSHOT_DIR if os.environ.get("PERSONALIZATION_UPDATE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.png"
    page.screenshot(path=str(target), clip=clip)
    with Image.open(target) as image:
        # An octree palette keeps the UI's status colours (median cut turns small green dots grey).
        palette = image.convert("RGB").quantize(colors=128, method=Image.Quantize.FASTOCTREE)
        palette.save(target, optimize=True)
    return target


def _shown(name: str, labels: list[str]) -> bool:
    """The UI truncates long names in the middle ("custom…_quarantine")."""
    for label in labels:
        if label == name:
            return True
        if "…" in label:
            head, tail = label.split("…", 1)
            if name.startswith(head) and name.endswith(tail):
                return True
    return False


def _asset_keys() -> list[str]:
    from personalization_assets.definitions import defs

    return sorted(key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys())


def test_asset_graph_shows_every_asset(dagster_ui, page, tmp_path):
    page.goto(f"{dagster_ui['url']}/asset-groups")
    page.get_by_text("Materialize all").wait_for()
    names = page.locator("[class*='AssetNode_assetName']")
    expected = _asset_keys()
    deadline = time.monotonic() + 15
    while names.count() < len(expected) and time.monotonic() < deadline:
        if names.count() == 0:
            page.keyboard.press("Alt+KeyE")  # "Expand all groups" (groups start collapsed)
        page.wait_for_timeout(500)
    labels = [text.strip() for text in names.all_inner_texts()]
    missing = [key for key in expected if not _shown(key, labels)]
    assert not missing, f"assets not drawn in the graph: {missing} (labels: {labels})"
    # For the screenshot only: fold the asset-group tree and the navigation away, and draw the graph on a
    # larger canvas (it is fitted to the canvas), so the asset names can be read in the README.
    page.locator("//input[starts-with(@placeholder,'Jump to')]/following::button[1]").first.click()
    page.get_by_text("Hide navigation").click()
    page.set_viewport_size({"width": 2000, "height": 1250})
    page.reload()  # the graph is fitted to the canvas when it loads
    page.get_by_text("Materialize all").wait_for()
    page.wait_for_timeout(2000)
    boxes = [box for box in (node.bounding_box() for node in names.all()) if box]
    left = max(0, min(b["x"] for b in boxes) - 40)
    top = max(0, min(b["y"] for b in boxes) - 60)
    right = max(b["x"] + b["width"] for b in boxes) + 24  # names sit inside their nodes; the zoom controls follow
    bottom = max(b["y"] + b["height"] for b in boxes) + 50
    save_screenshot(
        page, "asset_graph", tmp_path, clip={"x": left, "y": top, "width": right - left, "height": bottom - top}
    )


def _partitioned_asset(expected: dict) -> str:
    """The first per-segment asset the campaign materialized (retrieval's, once that stage exists)."""
    assert expected["materialized"], "the pipeline run materialized no segment partitions"
    return sorted(expected["materialized"])[0]


def test_partitioned_asset_page_shows_segments_and_their_status(dagster_ui, page, tmp_path):
    expected = dagster_ui["expected"]
    asset = _partitioned_asset(expected)
    done = expected["materialized"][asset]
    segments = expected["segments"]
    assert 0 < len(done) < len(segments), "the test wants both materialized and missing partitions"

    page.goto(f"{dagster_ui['url']}/assets/{asset}?view=partitions")
    page.get_by_text(f"Materialized ({len(done)})").wait_for()
    page.get_by_text(f"Missing ({len(segments) - len(done)})").wait_for()
    page.get_by_text(f"{len(segments)} Partitions Selected").wait_for()
    body = page.inner_text("body")
    assert all(segment in body for segment in segments), f"segments missing from {asset}'s partitions page"

    # Selecting a materialized segment shows its latest materialization and the campaign job that made it.
    segment = sorted(done)[0]
    page.goto(f"{dagster_ui['url']}/assets/{asset}?view=partitions&partition={segment}")
    page.get_by_text("Latest materialization").wait_for()
    page.get_by_text("campaign_job", exact=False).first.wait_for()
    save_screenshot(page, "partitions", tmp_path)


def _assert_check_listing(page, url: str, asset: str, asset_checks: dict) -> None:
    """The asset's Checks tab lists every check with its latest result."""
    page.goto(f"{url}/assets/{asset}?view=checks")
    page.get_by_text(f"Checks ({len(asset_checks)})").wait_for()
    deadline = time.monotonic() + 10
    while True:  # the list fills in as each check's latest result arrives
        labels = [line.strip() for line in page.inner_text("body").splitlines()]
        missing = [check for check in asset_checks if not _shown(check, labels)]
        statuses = [line for line in labels if line in {"Succeeded", "Failed", "Warning"}]
        if (not missing and len(statuses) == len(asset_checks)) or time.monotonic() > deadline:
            break
        page.wait_for_timeout(300)
    assert not missing, f"checks of {asset} not listed: {missing}"
    latest = [list(results.values())[-1] for results in asset_checks.values()]
    assert len(statuses) == len(asset_checks), f"{asset}: statuses {statuses}"
    assert statuses.count("Succeeded") == sum(latest), f"{asset}: statuses {statuses}, latest results {latest}"


def test_asset_checks_show_results_per_partition(dagster_ui, page, tmp_path):
    checks = dagster_ui["expected"]["checks"]
    partitioned = {key: results for key, results in checks.items() if None not in results}
    assert partitioned, "the pipeline run evaluated no per-segment asset checks"
    by_asset = defaultdict(dict)
    for (asset, check), results in partitioned.items():
        by_asset[asset][check] = results
    # Format, safety and audit chain, balance, SRM ...: every per-segment asset's checks and their results.
    for asset in sorted(by_asset):
        _assert_check_listing(page, dagster_ui["url"], asset, by_asset[asset])
    asset = max(sorted(by_asset), key=lambda name: len(by_asset[name]))  # the asset with the most checks
    asset_checks = by_asset[asset]
    page.goto(f"{dagster_ui['url']}/assets/{asset}?view=checks")
    page.get_by_text(f"Checks ({len(asset_checks)})").wait_for()

    # The first check's Partitions tab: one result per evaluated segment.
    first_check = sorted(asset_checks)[0]
    results = asset_checks[first_check]
    page.get_by_text(first_check, exact=True).first.click()
    page.get_by_text("Partitions", exact=True).nth(1).click()
    passed = sum(results.values())
    page.get_by_text(f"Passed ({passed})").wait_for()
    page.get_by_text(f"Failed ({len(results) - passed})", exact=True).wait_for()
    missing = len(dagster_ui["expected"]["segments"]) - len(results)
    page.get_by_text(f"Missing ({missing})", exact=True).wait_for()
    body = page.inner_text("body")
    assert all(segment in body for segment in results)
    save_screenshot(page, "check_partitions", tmp_path)


def test_automation_page_lists_sensors_and_schedule_off_except_the_report_check_sensor(dagster_ui, page, tmp_path):
    from personalization_assets.definitions import defs
    from personalization_assets.report_currency import LOST_RUN_SENSOR

    repository = defs.get_repository_def()
    names = sorted([sensor.name for sensor in repository.sensor_defs] + [s.name for s in repository.schedule_defs])
    page.goto(f"{dagster_ui['url']}/automation")
    for name in names:
        page.get_by_text(name, exact=True).wait_for()
    switches = page.locator("label[class*='formatSwitch'] input")
    switches.nth(len(names) - 1).wait_for(state="attached")  # the on/off states load after the names
    assert switches.count() == len(names)
    # What launches runs starts off; the sensor that only records the report's check starts on.
    assert switches.evaluate_all("inputs => inputs.filter(input => input.checked).length") == 1
    # The checked switch's row: its nearest ancestor that names a sensor or schedule.
    (row,) = switches.evaluate_all(
        """(inputs, names) => inputs.filter(input => input.checked).map(input => {
            let row = input;
            while (row && !names.some(name => (row.innerText || "").includes(name))) row = row.parentElement;
            return row ? row.innerText : "";
        })""",
        names,
    )
    assert [name for name in names if name in row] == [LOST_RUN_SENSOR], row
    save_screenshot(page, "automation", tmp_path)


def test_runs_of_personalize_run_are_listed_on_the_job_page(dagster_ui, page, tmp_path):
    """Launched with the code location's origin, they appear where users look (the job's Runs tab)."""
    runs = {name: run_id for name, run_id in dagster_ui["runs"].items() if name != "report"}
    page.goto(f"{dagster_ui['url']}/locations/personalization/jobs/campaign_job/runs")
    for run_id in runs.values():
        page.get_by_text(run_id[:8]).first.wait_for()
    body = page.inner_text("body")
    assert "No runs found" not in body
    assert "personalization/trigger" in body or "personalize_run" in body
    save_screenshot(page, "job_runs", tmp_path)


def _runs_of_partition(home: Path, partition: str) -> list:
    from dagster import RunsFilter

    with dagster_instance_at(home) as instance:
        return instance.get_runs(RunsFilter(job_name="campaign_job", tags={"dagster/partition": partition}))


def test_one_segment_chain_is_rerun_from_the_job_with_the_partition_picker(dagster_ui, page, tmp_path):
    """Jobs -> campaign_job -> Materialize all: one dialog, pick the segment, Launch 1 run of its whole chain."""
    segment = dagster_ui["expected"]["segments"][-1]  # never materialized before this test
    home = dagster_ui["root"] / "dagster_home"
    assert _runs_of_partition(home, segment) == []
    page.goto(f"{dagster_ui['url']}/locations/personalization/jobs/campaign_job")
    page.get_by_text("Materialize all").first.click()
    dialog = page.locator(".dagster-dialog")
    dialog.get_by_text("Select a partition or create one").click()
    page.keyboard.type(segment)
    page.locator(f".dagster-popover >> text={segment} >> visible=true").first.click()
    page.keyboard.press("Escape")  # closes the picker's list, not the dialog
    dialog.get_by_text("Launch 1 run").wait_for()
    assert "1 partition" in dialog.inner_text()
    assert "Launch runs to materialize" in dialog.inner_text()
    save_screenshot(page, "rerun_one_segment", tmp_path)

    # The run is submitted to the instance's run queue (dagster.yaml limits concurrent runs); `dagster dev`'s
    # daemon starts it. This test has no daemon: that the segment's run was created is what is checked here.
    dialog.get_by_role("button", name="Launch 1 run").click()
    page.get_by_text("Launched run").first.wait_for()
    deadline = time.monotonic() + 30
    runs = []
    while not runs and time.monotonic() < deadline:
        runs = _runs_of_partition(home, segment)
        time.sleep(0.5)
    assert len(runs) == 1, runs
    assert runs[0].status.value in {"QUEUED", "STARTING", "STARTED", "SUCCESS"}, runs
    assert runs[0].tags["dagster/from_ui"] == "true"
    from personalization_assets.definitions import defs
    from personalization_assets.partitions import segment_partitions

    graph = defs.resolve_asset_graph()
    chain = {key for key in graph.get_all_asset_keys() if graph.get(key).partitions_def == segment_partitions}
    assert set(runs[0].asset_selection) == chain  # the segment's whole chain


def test_campaign_report_headline_and_link_are_on_the_asset_page(dagster_ui, page, tmp_path):
    page.goto(f"{dagster_ui['url']}/assets/campaign_report")
    page.get_by_text("headline").first.wait_for()
    body = page.inner_text("body")
    assert "report_url" in body
    assert "http://127.0.0.1:8765/" in body
    assert "segments_not_served" in body
    assert "headline 1. All segments (pooled)" in body  # the recommendation table, readable without a click
    page.set_viewport_size({"width": 1280, "height": 1300})
    page.get_by_text("Metadata", exact=True).first.scroll_into_view_if_needed()
    save_screenshot(page, "campaign_report_metadata", tmp_path)


RERUN_SCRIPT = """
import sys
from personalization_assets.jobs import CAMPAIGN_JOB
from personalization_assets.launch import launch_run
from dagster import DagsterInstance

outcome = launch_run(DagsterInstance.get(), CAMPAIGN_JOB, sys.argv[1], sys.argv[1])
sys.exit(0 if outcome.success else outcome.failure)
"""


def test_a_report_older_than_a_segments_rerun_is_shown_unsynced(dagster_ui, page, tmp_path):
    """Truth in the UI: once a segment's chain is re-run without the report (from the UI, or a CLI run of one
    segment whose report failed), the report asset page says its data changed upstream ("Unsynced"), and says
    nothing of the kind while the report is the latest. (Runs last in this file: it changes the report's state.)"""
    page.goto(f"{dagster_ui['url']}/assets/campaign_report")
    page.get_by_text("Latest materialization").first.wait_for()
    page.get_by_text("headline").first.wait_for()
    assert "Unsynced" not in page.inner_text("body")

    segment = dagster_ui["expected"]["segments"][0]  # one of the segments the report was built from
    rerun = subprocess.run(
        [sys.executable, "-c", RERUN_SCRIPT, segment],
        cwd=PROJECT_ROOT,
        env=dagster_ui["env"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    page.goto(f"{dagster_ui['url']}/assets/campaign_report")
    unsynced = page.get_by_text("Unsynced").first
    unsynced.wait_for()
    unsynced.hover()  # the tag's popover lists what changed upstream
    page.get_by_text("changes since last materialization").first.wait_for()
    popover = page.inner_text("body")
    assert "has a new materialization" in popover
    assert "experiment_metrics" in popover and "message_variants" in popover  # what the re-run changed
    save_screenshot(page, "report_unsynced", tmp_path, clip={"x": 240, "y": 0, "width": 1040, "height": 360})


def test_a_segment_run_that_fails_after_the_report_warns_on_the_report(dagster_ui, page, tmp_path):
    """A failed re-run writes nothing, so nothing upstream is newer: the campaign job's failure hook fails the
    report's `shows_latest_segment_runs` check (a warning), and the report's Checks tab shows it with the segment.
    (After the Unsynced test: both change the report's state.)"""
    segment = dagster_ui["expected"]["segments"][0]
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    retrieval = (config / "retrieval.yaml").read_text()
    assert "threshold: 0.5" in retrieval
    (config / "retrieval.yaml").write_text(retrieval.replace("threshold: 0.5", "threshold: 0.999"))
    failing = subprocess.run(
        [sys.executable, "-c", RERUN_SCRIPT, segment],
        cwd=PROJECT_ROOT,
        env={**dagster_ui["env"], "PERSONALIZATION_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert failing.returncode != 0, "the re-run was meant to find no suitable content"
    # What the hook stored, read from the instance: the UI must show exactly this line.
    check_key = AssetCheckKey(AssetKey("campaign_report"), REPORT_CHECK)
    with dagster_instance_at(dagster_ui["env"]["DAGSTER_HOME"]) as instance:
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key([check_key])[check_key]
        description = record.event.dagster_event.event_specific_data.description
    (line,) = [line.removeprefix("- ") for line in description.splitlines() if line.startswith(f"- segment {segment}")]
    assert line.startswith(f"segment {segment}: run ") and ") no suitable content: no document scored" in line, (
        description,
        failing.stderr[-2000:],
    )

    page.goto(f"{dagster_ui['url']}/assets/campaign_report?view=checks")
    page.get_by_text("Checks (1)").wait_for()
    page.get_by_text(REPORT_CHECK, exact=True).first.click()
    page.get_by_text("Latest execution").first.wait_for()
    # The panel's parts arrive by separate queries: wait for the segment's line itself, not just the metadata.
    page.get_by_text(line, exact=True).first.wait_for()
    page.get_by_text("segments_behind").first.wait_for()
    body = page.inner_text("body")
    assert "non-blocking" in body  # a warning (the icon shows its severity), never a gate on the report
    assert "Failed" in body
    assert "materialize campaign_report, or run report_job, to update it" in body
    save_screenshot(page, "report_check_warning", tmp_path)
