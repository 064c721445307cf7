"""Benchmark the whole pipeline on the embedded backends at several sizes; print and save a table.

    .venv/bin/python scripts/benchmark.py                      # 10k, 100k, 1M customers
    .venv/bin/python scripts/benchmark.py --sizes 10000 100000

Each size runs in a fresh subprocess (its own warehouse and DAGSTER_HOME under a temp folder), so the peak resident
memory reported is that run's alone. Stage times are the Dagster step durations of the run, summed over segment
partitions; "wall" is the whole `personalize run` including Dagster's per-run overhead.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = PROJECT_ROOT / "docs" / "benchmarks.md"

# Dagster step (op) name -> the stage it is reported under.
STAGE_OF_STEP = {
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
STAGES = [
    "load+validate", "segmentation", "retrieval", "generation", "safety", "assignment", "simulation",
    "statistics", "personalization", "report",
]


def run_single(size: int, workdir: Path) -> dict:
    """Generate `size` customers and run the pipeline in this process; return stage timings."""
    os.environ.update(
        {
            "DAGSTER_HOME": str(workdir / "dagster_home"),
            "PERSONALIZATION_CUSTOMERS": str(workdir / "customers.parquet"),
            "PERSONALIZATION_WAREHOUSE": str(workdir / "warehouse.duckdb"),
            "PERSONALIZATION_REPORTS": str(workdir / "reports"),
        }
    )
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    # The input file is written by another process so its memory does not count towards the pipeline's peak.
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "personalization_assets.cli", "data", "--customers", str(size), "--seed", "11",
         "--out", os.environ["PERSONALIZATION_CUSTOMERS"]],
        check=True, capture_output=True,
    )
    generate_seconds = time.perf_counter() - started

    from dagster import DagsterEventType, DagsterInstance

    from personalization_assets.cli import main as personalize

    started = time.perf_counter()
    status = personalize(["run"])
    wall = time.perf_counter() - started

    stages = dict.fromkeys(STAGES, 0.0)
    other = 0.0
    instance = DagsterInstance.get()
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_SUCCESS):
            event = entry.dagster_event
            seconds = event.event_specific_data.duration_ms / 1000
            if event.step_key in STAGE_OF_STEP:
                stages[STAGE_OF_STEP[event.step_key]] += seconds
            else:
                other += seconds
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "size": size,
        "status": status,
        "generate_s": round(generate_seconds, 2),
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(peak_mib),
        "stages_s": {name: round(value, 2) for name, value in stages.items()},
        "other_steps_s": round(other, 2),
    }


def render_table(results: list[dict]) -> str:
    header = "| stage | " + " | ".join(f"{r['size']:,} customers" for r in results) + " |"
    lines = [header, "|---|" + "---:|" * len(results)]
    for stage in STAGES:
        lines.append(f"| {stage} | " + " | ".join(f"{r['stages_s'][stage]:.2f} s" for r in results) + " |")
    lines.append("| **wall (personalize run)** | " + " | ".join(f"**{r['wall_s']:.1f} s**" for r in results) + " |")
    lines.append("| peak memory (RSS) | " + " | ".join(f"{r['peak_rss_mib']:,} MiB" for r in results) + " |")
    return "\n".join(lines)


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
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown file the table is written to")
    parser.add_argument("--single", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.single:
        print(json.dumps(run_single(args.single, args.workdir)))
        return 0

    results = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix=f"bench-{size}-") as workdir:
            completed = subprocess.run(
                [sys.executable, __file__, "--single", str(size), "--workdir", workdir],
                capture_output=True, text=True, cwd=PROJECT_ROOT,
            )
            if completed.returncode != 0:
                print(completed.stderr[-3000:], file=sys.stderr)
                return 1
            result = json.loads(completed.stdout.strip().splitlines()[-1])
            results.append(result)
            print(f"{size:>9,} customers: wall {result['wall_s']:.1f}s, peak {result['peak_rss_mib']:,} MiB", flush=True)

    table = render_table(results)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = f"# Pipeline benchmark\n\nMeasured {stamp} on {machine_description()}.\n\n{table}\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print()
    print(table)
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
