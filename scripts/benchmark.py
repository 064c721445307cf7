"""Benchmark the pipeline; print the table and write it to a Markdown file (default docs/benchmarks.md).

Pipeline mode (embedded backends, no network):

    .venv/bin/python scripts/benchmark.py          # the sample (1,000), 10k, 100k, 1M; best of 3
    .venv/bin/python scripts/benchmark.py --sizes 1000000 --parallel 1 3 --repeat 3

Each run is the `personalize` console script (`personalize run --parallel N`) in a process of its own with its
own warehouse and DAGSTER_HOME, timed from outside; the figures its runs recorded in the Dagster instance are read
afterwards by another process, outside the timing (the customer file is generated once per size, by another
process too). Reported per run:
- per stage: Dagster step time of the stage's assets and their checks, summed over segment partitions (with
  partitions in parallel the sum exceeds the wall time it took);
- per phase: wall time of the segmentation run, of all campaign (partition) runs, and of the report run;
- wall: the whole `personalize run` command, from process start (imports included) to exit, and inside it the
  command's own "done in" figure (after its imports); CPU: user + system time of the command and every process
  it started;
- lean: the same per-customer work without Dagster (scripts/lean_pipeline.py), best of as many runs, measured
  in the same way next to it, and the ratio of the two best walls;
- the load average of the machine before and after each configuration (other work slows both alike);
- peak memory: the largest sum of proportional set sizes (PSS) of the run's process tree, sampled every
  0.25 s (worker processes and the notebook kernel included; shared pages counted once), and the largest
  single process's peak RSS.

Model-call mode (Responses API and Content Safety emulators on 127.0.0.1, each answering after a fixed delay):

    .venv/bin/python scripts/benchmark.py --llm-latency 2 --safety-latency 0.7

runs the pipeline with `generation.yaml` backend openai_compatible and `safety_thresholds.yaml` backend azure
(API keys from environment variables) pointed at the emulators, one after another and with --parallel, and
reports the wall time from the first model (screening) call sent to the last answer received, the calls made,
and the calls made by a second, unchanged run of the same warehouse (expected: none, both caches hit).
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))  # tests.emulators, for the model-call mode
DEFAULT_OUT = PROJECT_ROOT / "docs" / "benchmarks.md"
PERSONALIZE = Path(sys.executable).with_name("personalize")  # the console script `pip install` made

# Asset -> the stage it is reported under; a check's step key is "<asset>_<check>".
STAGE_OF_ASSET = {
    "load_customers": "load+validate",
    "customer_segments": "segmentation",
    "segment_profiles": "segmentation",
    "content_index": "retrieval",
    "retrieved_content": "retrieval",
    "message_variants": "generation",
    "safety_verdicts": "safety",
    "assignments": "assignment",
    "engagement": "simulation",
    "experiment_metrics": "statistics",
    "pooled_experiment_metrics": "statistics",
    "personalized_messages": "personalization",
    "campaign_report": "report",
}
STAGES = list(dict.fromkeys(STAGE_OF_ASSET.values()))
PHASES = ["segmentation run", "campaign runs (all segments)", "report run"]
SAMPLE_SECONDS = 0.25  # reading a large process's smaps_rollup costs milliseconds
LLM_KEY_ENV = "BENCHMARK_LLM_KEY"
SAFETY_KEY_ENV = "BENCHMARK_CONTENT_SAFETY_KEY"


def stage_of_step(step_key: str) -> str | None:
    """The stage of an asset's step or of one of its checks' steps (longest asset-name prefix)."""
    for asset in sorted(STAGE_OF_ASSET, key=len, reverse=True):
        if step_key == asset or step_key.startswith(asset + "_"):
            return STAGE_OF_ASSET[asset]
    return None


# --- One run, in its own process ----------------------------------------------------------------------------


def run_figures(since: float) -> dict:
    """What the runs created since `since` (a Unix time) recorded in the Dagster instance of this process's
    environment: per-stage step times, per-phase spans, the steps, and the assets' numeric metadata. Runs in a
    process of its own after `personalize run` exited, so reading the event log is not part of the timing."""
    from dagster import DagsterEventType, DagsterInstance

    stages = dict.fromkeys(STAGES, 0.0)
    steps: list[dict] = []
    runs: dict[str, list[tuple[float, float]]] = {}
    asset_metadata: dict[str, list[dict]] = {}
    with DagsterInstance.get() as instance:
        for record in instance.get_run_records():
            run = record.dagster_run
            if record.create_timestamp.timestamp() < since:  # an earlier run in the same DAGSTER_HOME
                continue
            if record.start_time and record.end_time:
                runs.setdefault(run.job_name, []).append((record.start_time, record.end_time))
            starts = {}
            for entry in instance.all_logs(
                run.run_id,
                of_type={
                    DagsterEventType.STEP_START,
                    DagsterEventType.STEP_SUCCESS,
                    DagsterEventType.ASSET_MATERIALIZATION,
                },
            ):
                event = entry.dagster_event
                if event.event_type == DagsterEventType.STEP_START:
                    starts[event.step_key] = entry.timestamp
                elif event.event_type == DagsterEventType.STEP_SUCCESS:
                    seconds = event.event_specific_data.duration_ms / 1000
                    stage = stage_of_step(event.step_key)
                    if stage:
                        stages[stage] += seconds
                    steps.append({"step": event.step_key, "start": starts.get(event.step_key), "end": entry.timestamp})
                else:
                    materialization = event.event_specific_data.materialization
                    asset_metadata.setdefault(materialization.asset_key.to_user_string(), []).append(
                        {k: v.value for k, v in materialization.metadata.items() if _plain(v.value)}
                    )

    def span(job: str) -> float:
        intervals = runs.get(job, [])
        return max(end for _, end in intervals) - min(start for start, _ in intervals) if intervals else 0.0

    return {
        "stages_s": stages,
        "phases_s": dict(
            zip(PHASES, [span("segmentation_job"), span("campaign_job"), span("report_job")], strict=True)
        ),
        "steps": steps,
        "metadata": asset_metadata,
    }


def _plain(value: object) -> bool:
    return isinstance(value, int | float | str | bool) and not (isinstance(value, str) and len(value) > 200)


# --- Running it and watching its memory ---------------------------------------------------------------------


def _process_tree(root: int) -> list[int]:
    """`root` and its descendants (worker processes, the forkserver, the notebook kernel, ...), from each
    thread's /proc children list (cheap: no scan of every process on the machine)."""
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        try:
            threads = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for thread in threads:
            try:
                pending.extend(int(child) for child in Path(f"/proc/{pid}/task/{thread}/children").read_text().split())
            except OSError:
                continue
    return tree


class TreeMonitor(threading.Thread):
    """Samples a process tree: the largest sum of PSS (pages shared between the processes are split, not
    repeated), the largest single peak RSS (VmHWM), and each process's CPU time as last seen."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root = root
        self.peak_pss_mib = 0.0
        self.max_rss_mib = 0.0
        self.cpu_ticks: dict[int, int] = {}
        self._done = threading.Event()

    def sample(self) -> None:
        total_pss = 0
        for pid in _process_tree(self.root):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                status = Path(f"/proc/{pid}/status").read_text()
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue  # the process ended meanwhile
            self.cpu_ticks[pid] = int(stat[11]) + int(stat[12])  # utime + stime, own threads only
            hwm = re.search(r"^VmHWM:\s+(\d+)", status, re.MULTILINE)
            pss = re.search(r"^Pss:\s+(\d+)", rollup, re.MULTILINE)
            self.max_rss_mib = max(self.max_rss_mib, int(hwm.group(1)) / 1024 if hwm else 0.0)
            total_pss += int(pss.group(1)) if pss else 0
        self.peak_pss_mib = max(self.peak_pss_mib, total_pss / 1024)

    def run(self) -> None:
        while not self._done.wait(SAMPLE_SECONDS):
            self.sample()

    def stop(self) -> None:
        self._done.set()
        self.join()

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu_ticks.values()) / os.sysconf("SC_CLK_TCK")


def run_measured(args: list[str], env: dict[str, str], script: str) -> dict:
    """Run the Python `script` with `args` as a subprocess: its wall time, its tree's CPU time and peak memory,
    and what it printed. A non-zero exit raises with the end of its stderr."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, script, *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    monitor = TreeMonitor(process.pid)
    monitor.start()
    stdout, stderr = process.communicate()
    process_wall = time.perf_counter() - started
    monitor.stop()
    if process.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} exited with {process.returncode}:\n{stderr[-3000:]}")
    return {
        "process_wall_s": process_wall,
        "peak_pss_mib": monitor.peak_pss_mib,
        "max_rss_mib": monitor.max_rss_mib,
        "cpu_s": monitor.cpu_seconds,
        "output": stdout.strip(),
    }


def run_pipeline(parallel: int, env: dict[str, str]) -> dict:
    """`personalize run --parallel N` as a user runs it (the console script in a process of its own), timed and
    sampled from outside; then, in another process that is not timed, the figures its runs recorded. "wall_s" is
    the command's own "done in" figure (after its imports)."""
    since = time.time()
    command = [str(PERSONALIZE)] if PERSONALIZE.exists() else ["-m", "personalization_assets.cli"]
    measured = run_measured([*command[1:], "run", "--parallel", str(parallel)], env, script=command[0])
    inside = re.search(r"^done in ([0-9.]+)s", measured["output"], re.MULTILINE)
    if inside is None:
        raise RuntimeError(f"personalize run printed no summary line:\n{measured['output'][-3000:]}")
    analysed = subprocess.run(
        [sys.executable, __file__, "--child-figures", repr(since)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(analysed.stdout.strip().splitlines()[-1])
    return figures | measured | {"parallel": parallel, "wall_s": float(inside.group(1))}


def pipeline_env(workdir: Path, customers: Path, config_dir: Path | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(workdir / "dagster_home"),
        "PERSONALIZATION_CUSTOMERS": str(customers),
        "PERSONALIZATION_WAREHOUSE": str(workdir / "warehouse.duckdb"),
        "PERSONALIZATION_REPORTS": str(workdir / "reports"),
    }
    if config_dir is not None:
        env["PERSONALIZATION_CONFIG"] = str(config_dir)
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")  # the instance settings users run with
    return env


def generate_customers(size: int, out: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "personalization_assets.cli",
            "data",
            "--customers",
            str(size),
            "--seed",
            "11",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        cwd=PROJECT_ROOT,
    )


# --- Pipeline mode ------------------------------------------------------------------------------------------


SAMPLE_CUSTOMERS = PROJECT_ROOT / "data" / "customers.csv"  # the shipped sample: 1,000 customers
SAMPLE_SIZE = 1_000
LEAN_SCRIPT = str(PROJECT_ROOT / "scripts" / "lean_pipeline.py")


def lean_benchmark(customers: Path, folder: Path, repeat: int) -> dict:
    """The best of `repeat` runs of the lean script on the same customers."""
    runs = [
        run_measured([str(customers), str(folder / f"lean-{attempt}.duckdb")], dict(os.environ), LEAN_SCRIPT)
        for attempt in range(repeat)
    ]
    best = min(runs, key=lambda r: r["process_wall_s"])
    print(f"{'':>9} lean script: wall {best['process_wall_s']:.1f} s ({best['output']})", flush=True)
    return best


def pipeline_benchmark(
    sizes: list[int], parallel_modes: list[int], repeat: int, files: Sequence[Path] = ()
) -> list[dict]:
    """Per (size or customer file, parallel): the best run's figures plus every run's wall time, and the lean
    yardstick's on the same customers."""
    configurations = []
    sources: list[tuple[str, int | Path]] = [(f"{size:,}", size) for size in sizes]
    sources += [(path.name, path.resolve()) for path in files]
    for name, source in sources:
        with tempfile.TemporaryDirectory(prefix="bench-") as folder:
            if isinstance(source, Path):
                customers = source
            elif source == SAMPLE_SIZE:
                customers = SAMPLE_CUSTOMERS
            else:
                customers = Path(folder) / "customers.parquet"
                generate_customers(source, customers)
            for parallel in parallel_modes:
                runs = []
                load_before = os.getloadavg()[0]
                for attempt in range(repeat):
                    workdir = Path(folder) / f"p{parallel}-{attempt}"
                    env = pipeline_env(workdir, customers)
                    try:
                        runs.append(run_pipeline(parallel, env))
                    except RuntimeError as error:  # refused or failed: say so, and measure the others
                        reason = " ".join(str(error).split("\n")[1:3]).strip() or str(error)
                        print(f"{name:>9} customers, --parallel {parallel}: NOT MEASURED: {reason}", flush=True)
                        configurations.append({"label": name, "parallel": parallel, "failed": reason})
                        break
                    finally:
                        shutil.rmtree(workdir, ignore_errors=True)
                    result = runs[-1]
                    print(
                        f"{name:>9} customers, --parallel {parallel}: wall {result['process_wall_s']:.1f} s "
                        f"(report step {result['stages_s']['report']:.1f} s), CPU {result['cpu_s']:.1f} s, "
                        f"peak {result['peak_pss_mib']:,.0f} MiB",
                        flush=True,
                    )
                if len(runs) < repeat:
                    continue
                try:
                    lean = lean_benchmark(customers, Path(folder), repeat)
                except RuntimeError as error:  # the yardstick failed: the pipeline's figures still count
                    reason = " ".join(str(error).split("\n")[-2:]).strip()
                    print(f"{'':>9} lean script failed: {reason}", flush=True)
                    lean = {"process_wall_s": float("nan"), "peak_pss_mib": float("nan")}
                best = min(runs, key=lambda r: r["process_wall_s"])
                configurations.append(
                    {
                        **best,
                        "label": name,
                        "walls": [r["process_wall_s"] for r in runs],
                        "peaks": [r["peak_pss_mib"] for r in runs],
                        "report_steps": [r["stages_s"]["report"] for r in runs],
                        "lean_wall_s": lean["process_wall_s"],
                        "lean_peak_pss_mib": lean["peak_pss_mib"],
                        "load": (load_before, os.getloadavg()[0]),
                    }
                )
                ratio = best["process_wall_s"] / lean["process_wall_s"]
                print(f"{'':>9} ratio personalize run / lean script: {ratio:.1f}x", flush=True)
    return configurations


def render_pipeline_table(measured: list[dict]) -> str:
    """The table of the measured configurations, then one line per configuration that could not be measured."""
    configurations = [c for c in measured if "failed" not in c]
    failed = [
        f"**Not measured: {c['label']}** (`--parallel {c['parallel']}`): `personalize run` failed: {c['failed']}"
        for c in measured
        if "failed" in c
    ]
    table = _pipeline_table(configurations) if configurations else "No configuration could be measured."
    return "\n\n".join([table, *failed])


def _pipeline_table(configurations: list[dict]) -> str:
    def label(c: dict) -> str:
        mode = "one after another" if c["parallel"] == 1 else f"--parallel {c['parallel']}"
        return f"{c['label']}<br>{mode}"

    lines = [
        "| | " + " | ".join(label(c) for c in configurations) + " |",
        "|---|" + "---:|" * len(configurations),
    ]

    def row(name: str, cells: list[str]) -> None:
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    for stage in STAGES:
        row(stage, [f"{c['stages_s'][stage]:.1f} s" for c in configurations])
    for phase in PHASES:
        row(f"*{phase}* (wall)", [f"{c['phases_s'][phase]:.1f} s" for c in configurations])
    row("report step, every run", [", ".join(f"{r:.1f}" for r in c["report_steps"]) + " s" for c in configurations])
    row("**wall, personalize run** (best, whole command)", [f"**{c['process_wall_s']:.1f} s**" for c in configurations])
    row("wall inside the command (after imports)", [f"{c['wall_s']:.1f} s" for c in configurations])
    if any(len(c["walls"]) > 1 for c in configurations):
        row("wall, median of runs", [f"{statistics.median(c['walls']):.1f} s" for c in configurations])
        row("runs", [", ".join(f"{w:.1f}" for w in c["walls"]) + " s" for c in configurations])
    row("**lean script** (best, whole command)", [f"**{c['lean_wall_s']:.1f} s**" for c in configurations])
    row(
        "**ratio personalize run / lean**",
        [f"**{c['process_wall_s'] / c['lean_wall_s']:.1f}×**" for c in configurations],
    )
    row("load average before → after", [f"{c['load'][0]:.1f} → {c['load'][1]:.1f}" for c in configurations])
    row("CPU (user + system)", [f"{c['cpu_s']:.0f} s" for c in configurations])
    row(
        "**peak memory, whole process tree (PSS)**",
        [f"**{c['peak_pss_mib']:,.0f} MiB**" for c in configurations],
    )
    row("peak RSS of the largest process", [f"{c['max_rss_mib']:,.0f} MiB" for c in configurations])
    return "\n".join(lines)


# --- Model-call mode ----------------------------------------------------------------------------------------


def timed(emulator_class):
    """The emulator, recording when each answer is handled (after its fixed latency)."""

    class Timed(emulator_class):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.answered: list[float] = []

        def handle(self, request):
            self.answered.append(time.time())
            return super().handle(request)

        def window(self) -> float:
            """Seconds from the first request's arrival to the last answer."""
            return max(self.answered) - min(self.answered) + self.latency_seconds if self.answered else 0.0

    return Timed


def emulated_config(folder: Path, llm_endpoint: str, safety_endpoint: str) -> Path:
    """config/ with generation on the OpenAI-compatible backend and safety on Azure, at the emulators."""
    import yaml

    target = folder / "config"
    shutil.copytree(PROJECT_ROOT / "config", target)
    generation = yaml.safe_load((target / "generation.yaml").read_text())
    generation["backend"] = "openai_compatible"
    generation["openai_compatible"] = {
        "base_url": llm_endpoint + "/v1",
        "model": "gpt-4o-mini",
        "api_key_env": LLM_KEY_ENV,
        "structured_output": True,
        "ca_bundle_path": None,
    }
    (target / "generation.yaml").write_text(yaml.safe_dump(generation))
    safety = yaml.safe_load((target / "safety_thresholds.yaml").read_text())
    safety["backend"] = "azure"
    safety["azure"].update({"endpoint": safety_endpoint, "auth": "api_key", "api_key_env": SAFETY_KEY_ENV})
    (target / "safety_thresholds.yaml").write_text(yaml.safe_dump(safety))
    return target


def model_call_benchmark(llm_latency: float, safety_latency: float, size: int, parallel_modes: list[int]) -> list[dict]:
    from tests.emulators.composing_model import composed_answer
    from tests.emulators.content_safety import ContentSafetyEmulator
    from tests.emulators.openai_responses import OpenAIResponsesEmulator

    # Always the JSON the schema asks for, so no variant needs a second attempt.
    llm = timed(OpenAIResponsesEmulator)(
        latency_seconds=llm_latency, responder=lambda body: composed_answer(body, structured=True)
    )
    screen = timed(ContentSafetyEmulator)(latency_seconds=safety_latency, trigger_words={})
    results = []
    with llm, screen, tempfile.TemporaryDirectory(prefix="bench-calls-") as folder:
        customers = Path(folder) / "customers.parquet"
        generate_customers(size, customers)
        config_dir = emulated_config(Path(folder), llm.endpoint, screen.endpoint)
        for parallel in parallel_modes:
            workdir = Path(folder) / f"p{parallel}"
            env = {
                **pipeline_env(workdir, customers, config_dir),
                LLM_KEY_ENV: llm.api_key,
                SAFETY_KEY_ENV: screen.api_key,
            }
            rounds = []
            for label in ("first run", "second run, unchanged"):
                llm.reset(), screen.reset()
                llm.answered.clear(), screen.answered.clear()
                run = run_pipeline(parallel, env)
                rounds.append(
                    {
                        "label": label,
                        "wall_s": run["wall_s"],
                        "llm_calls": llm.request_count(path_contains="/responses"),
                        "llm_window_s": llm.window(),
                        "safety_calls": screen.request_count(path_contains="text:analyze"),
                        "safety_window_s": screen.window(),
                        "variants": sum(m.get("variants", 0) for m in run["metadata"].get("message_variants", [])),
                        "screened": sum(
                            m.get("variants_screened", 0) for m in run["metadata"].get("safety_verdicts", [])
                        ),
                        "generation_s": [m["wall_seconds"] for m in run["metadata"].get("message_variants", [])],
                        "screening_s": [m["screening_seconds"] for m in run["metadata"].get("safety_verdicts", [])],
                        "cache_hits": sum(m.get("cache_hits", 0) for m in run["metadata"].get("message_variants", [])),
                        "cached_screenings": sum(
                            m.get("cached_screenings", 0) for m in run["metadata"].get("safety_verdicts", [])
                        ),
                    }
                )
                r = rounds[-1]
                print(
                    f"--parallel {parallel}, {label}: "
                    f"{r['llm_calls']} model calls in {r['llm_window_s']:.1f} s, "
                    f"{r['safety_calls']} screening calls in {r['safety_window_s']:.1f} s, "
                    f"run {r['wall_s']:.1f} s",
                    flush=True,
                )
            results.append({"parallel": parallel, "rounds": rounds})
    return results


def render_model_call_table(results: list[dict], llm_latency: float, safety_latency: float) -> str:
    lines = [
        "| | "
        + " | ".join(
            ("one after another" if r["parallel"] == 1 else f"--parallel {r['parallel']}") + f"<br>{x['label']}"
            for r in results
            for x in r["rounds"]
        )
        + " |"
    ]
    lines.append("|---|" + "---:|" * sum(len(r["rounds"]) for r in results))
    cells = [x for r in results for x in r["rounds"]]

    def row(name: str, values: list[str]) -> None:
        lines.append(f"| {name} | " + " | ".join(values) + " |")

    row("variants generated (segments × tones)", [str(c["variants"]) for c in cells])
    row(f"model calls (answer after {llm_latency:g} s)", [str(c["llm_calls"]) for c in cells])
    row(
        "**model calls: first sent → last answered**",
        [f"**{c['llm_window_s']:.1f} s**" if c["llm_calls"] else "–" for c in cells],
    )
    row(
        "generation step, per segment (slowest / sum)",
        [f"{max(c['generation_s'], default=0):.1f} / {sum(c['generation_s']):.1f} s" for c in cells],
    )
    row("model answers from the response cache", [str(c["cache_hits"]) for c in cells])
    row("variants screened", [str(c["screened"]) for c in cells])
    row(
        f"screening calls (answer after {safety_latency:g} s; subject and body, and the customer field values)",
        [str(c["safety_calls"]) for c in cells],
    )
    row(
        "**screening calls: first sent → last answered**",
        [f"**{c['safety_window_s']:.1f} s**" if c["safety_calls"] else "–" for c in cells],
    )
    row(
        "screening, per segment (slowest / sum)",
        [f"{max(c['screening_s'], default=0):.1f} / {sum(c['screening_s']):.1f} s" for c in cells],
    )
    row("screenings from the screening cache", [str(c["cached_screenings"]) for c in cells])
    row("wall, personalize run", [f"{c['wall_s']:.1f} s" for c in cells])
    return "\n".join(lines)


# --- Output -------------------------------------------------------------------------------------------------


def write_section(out: Path, section: str, text: str) -> None:
    """Replace this mode's section of `out` (between its marker comments), keeping the rest of the file;
    a file without the section gets it appended."""
    begin, end = f"<!-- benchmark:{section} -->", f"<!-- /benchmark:{section} -->"
    block = f"{begin}\n{text}{end}\n"
    current = out.read_text() if out.exists() else "# Benchmarks\n\n"
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        updated = head + block + "\n" + rest.split(end, 1)[1].lstrip("\n")
    else:
        updated = current.rstrip("\n") + "\n\n" + block
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(updated)


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, Python {platform.python_version()}; "
        f"load average {load:.1f} when the benchmark started"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=[SAMPLE_SIZE, 10_000, 100_000, 1_000_000],
        help=f"customers per configuration; {SAMPLE_SIZE} is the shipped sample file",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        nargs="+",
        default=None,
        help="partition processes, one configuration per value (default: 1; model-call mode: 1 5)",
    )
    parser.add_argument(
        "--files",
        type=Path,
        nargs="+",
        default=[],
        help="customer files to run as well (CSV or Parquet; columns as data/README.md), one configuration each",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (the best is tabled)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown file the table is written to")
    parser.add_argument("--llm-latency", type=float, help="model-call mode: seconds before each model answer")
    parser.add_argument("--safety-latency", type=float, default=0.7, help="model-call mode: seconds per screening")
    parser.add_argument("--customers", type=int, default=10_000, help="model-call mode: customers")
    parser.add_argument("--child-figures", type=float, metavar="SINCE", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child_figures is not None:
        print(json.dumps(run_figures(args.child_figures)))
        return 0

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = machine_description()
    if args.llm_latency is not None:
        modes = args.parallel or [1, 5]
        results = model_call_benchmark(args.llm_latency, args.safety_latency, args.customers, modes)
        table = render_model_call_table(results, args.llm_latency, args.safety_latency)
        title = (
            f"## Model calls: model answers after {args.llm_latency:g} s, screening after "
            f"{args.safety_latency:g} s ({args.customers:,} customers)"
        )
        section = "model-calls"
        failures = 0
    else:
        modes = args.parallel or [1]
        measured = pipeline_benchmark(args.sizes, modes, args.repeat, args.files)
        failures = sum("failed" in c for c in measured)
        table = render_pipeline_table(measured)
        title = "## Pipeline on the embedded backends"
        section = "pipeline"
    write_section(args.out, section, f"{title}\n\nMeasured {started} on {machine}.\n\n{table}\n")
    print()
    print(table)
    print(f"\nwritten to {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
