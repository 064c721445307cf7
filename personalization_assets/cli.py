"""`personalize`: run the pipeline in-process, generate synthetic customers, and other operator commands."""

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from personalization_assets.config import PROJECT_ROOT
from personalization_assets.jobs import CAMPAIGN_JOB as JOB_CAMPAIGN
from personalization_assets.jobs import REPORT_JOB as JOB_REPORT
from personalization_assets.jobs import SEGMENTATION_JOB as JOB_SEGMENTATION



def _ensure_dagster_home() -> Path:
    """Runs are recorded in DAGSTER_HOME so `dagster dev` shows them afterwards (default: ./.dagster_home)."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster_home"))).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _quiet_run_config() -> dict:
    return {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _failure_message(result) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            cause = error.cause.message if error.cause else error.message
            return f"step {event.step_key} failed: {cause.strip()}"
    return "run failed (see the Dagster UI for details)"


def command_run(args: argparse.Namespace) -> int:
    _ensure_dagster_home()
    from dagster import DagsterInstance

    from personalization_assets.definitions import defs
    from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME

    instance = DagsterInstance.get()
    started = time.perf_counter()

    def run(job_name: str, label: str, **kwargs) -> bool:
        begin = time.perf_counter()
        print(f"{label} ...", end="", flush=True)
        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=instance, raise_on_error=False, run_config=_quiet_run_config(), **kwargs
        )
        status = "ok" if result.success else "FAILED"
        print(f" {status} ({time.perf_counter() - begin:.1f}s, run {result.run_id[:8]})")
        if not result.success:
            print(f"    {_failure_message(result)}", file=sys.stderr)
        return result.success

    known = instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)
    if not (args.segment and known) and not run(JOB_SEGMENTATION, "segmentation and content index"):
        return 1
    segments = instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)
    if args.segment:
        if args.segment not in segments:
            print(
                f"unknown segment '{args.segment}'; known segments: {', '.join(sorted(segments)) or 'none'}",
                file=sys.stderr,
            )
            return 2
        segments = [args.segment]

    job_names = {job.name for job in defs.jobs or []}
    campaign_defined = JOB_CAMPAIGN in job_names
    failed = [
        key
        for key in (sorted(segments) if campaign_defined else [])
        if not run(JOB_CAMPAIGN, f"segment {key}", partition_key=key)
    ]
    if JOB_REPORT in job_names and not run(JOB_REPORT, "pooled metrics and campaign report"):
        failed.append("report")
    print(f"done in {time.perf_counter() - started:.1f}s; dagster home: {os.environ['DAGSTER_HOME']}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def command_data(args: argparse.Namespace) -> int:
    from personalization_assets.lib.synthetic import generate_customers, write_customers

    begin = time.perf_counter()
    frame = generate_customers(args.customers, seed=args.seed)
    path = write_customers(frame, args.out)
    print(f"wrote {len(frame):,} customers to {path} in {time.perf_counter() - begin:.1f}s (seed {args.seed})")
    return 0


def command_screen(args: argparse.Namespace) -> int:
    """One JSON verdict per input line; exit 1 when any line could not be read (its verdict says which)."""
    import json

    from personalization_assets.safety import screen_command_resource, screen_json_lines

    resource, config = screen_command_resource()
    source = open(args.input, encoding="utf-8") if args.input else sys.stdin  # noqa: SIM115
    unreadable = 0
    try:
        for verdict in screen_json_lines(source, resource, config.thresholds, config.max_concurrency):
            unreadable += "error" in verdict
            print(json.dumps(verdict, ensure_ascii=False), flush=True)
    finally:
        if args.input:
            source.close()
    if unreadable:
        print(f"{unreadable} input line(s) could not be screened (see their 'error')", file=sys.stderr)
    return 1 if unreadable else 0


def command_audit_export(args: argparse.Namespace) -> int:
    """Write safety_audit to CSV; exit 1 when its hash chain does not verify (the file is written anyway)."""
    from personalization_assets.safety import export_audit_csv
    from resources.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(path=args.warehouse) if args.warehouse else DuckDBWarehouse()
    export = export_audit_csv(warehouse, args.out)
    chain = "intact" if export.ok else "BROKEN"
    print(f"wrote {export.records:,} audit records to {export.path}; chain {chain}: {export.message}")
    return 0 if export.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="personalize", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="materialize the whole pipeline (or one segment) in-process")
    run.add_argument("--segment", help="only this segment's partition (segmentation runs first if needed)")
    run.set_defaults(handler=command_run)

    data = commands.add_parser("data", help="write synthetic customers (CSV or Parquet by the file suffix)")
    data.add_argument("--customers", type=int, default=1000, help="how many customers (default 1000)")
    data.add_argument("--out", required=True, help="output file, .csv or .parquet")
    data.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    data.set_defaults(handler=command_data)

    screen = commands.add_parser(
        "screen", help='screen copy: JSON lines {"text": ...} in, one JSON verdict per line out'
    )
    screen.add_argument("input", nargs="?", help="JSON-lines file (default: standard input)")
    screen.set_defaults(handler=command_screen)

    audit = commands.add_parser("audit-export", help="export the safety audit log (hash chain) to CSV")
    audit.add_argument("--out", required=True, help="CSV file to write")
    audit.add_argument("--warehouse", help="DuckDB file (default: PERSONALIZATION_WAREHOUSE or data/)")
    audit.set_defaults(handler=command_audit_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
