"""`personalize`: run the pipeline in-process, generate synthetic customers, and other operator commands."""

import argparse
import contextlib
import ctypes
import gc
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from personalization_assets.config import ENV_CONFIG, ENV_CONTENT, PROJECT_ROOT, default_path
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


def release_memory() -> None:
    """Hand memory a finished run freed back to the OS, so the next run in this process starts low: frames
    that reference cycles kept alive (Dagster's run contexts), Arrow's allocator pool (mimalloc keeps freed
    pages) and glibc's heap. Without it the process carried hundreds of MiB from one run into the next."""
    import pyarrow

    gc.collect()
    pyarrow.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def job_by_name(name: str):
    """A job of the code location (the reconstructable target of `execute_run`)."""
    from personalization_assets.definitions import defs

    return defs.resolve_job_def(name)


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended (picklable: it comes back from a worker process)."""

    label: str
    partition: str | None
    success: bool
    seconds: float
    run_id: str
    failure: str


def execute_run(instance, job_name: str, label: str, partition: str | None = None) -> RunOutcome:
    """Execute a job in this process (its steps in-process), recorded in the instance.

    `execute_job` rather than `JobDefinition.execute_in_process`: the latter keeps every step's output in
    memory until the run ends (for `output_for_node`), which at 1M customers holds each per-customer table
    of the run at once.
    """
    from dagster import build_reconstructable_job, execute_job

    begin = time.perf_counter()
    job = build_reconstructable_job(__spec__.name if __spec__ else __name__, "job_by_name", (job_name,))
    tags = {"dagster/partition": partition} if partition else None
    with execute_job(job, instance=instance, run_config=_quiet_run_config(), tags=tags) as result:
        outcome = RunOutcome(
            label,
            partition,
            result.success,
            time.perf_counter() - begin,
            result.run_id,
            "" if result.success else _failure_message(result),
        )
    release_memory()
    return outcome


def run_campaign_partition(segment: str) -> RunOutcome:
    """One segment's campaign run, in a worker process, recorded in DAGSTER_HOME."""
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        return execute_run(instance, JOB_CAMPAIGN, f"segment {segment}", segment)


# Imported once in the fork server, so workers do not each import them: the code location (seconds) and the
# SDKs the remote backends import on first use (openai alone takes ~0.5 s of CPU; five workers importing it
# at once on two cores delayed their first model calls by a second).
WORKER_PRELOAD = [
    "personalization_assets.definitions",
    "openai",
    "azure.ai.contentsafety",
    "azure.core.pipeline.policies",
    "azure.search.documents",
]


def _partition_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes forked from a server that has imported the code location once. The server starts
    now, so its imports overlap the segmentation run."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_PRELOAD)
    from multiprocessing import forkserver

    forkserver.ensure_running()
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def _parallel_partition_runs(pool: ProcessPoolExecutor, segments: Sequence[str]) -> Iterator[RunOutcome]:
    """Each segment's campaign run in a worker process, yielded as they finish. Runs of different segments
    write different partitions; DuckDB's single-writer lock is waited for by the warehouse resource."""
    futures = {pool.submit(run_campaign_partition, segment): segment for segment in segments}
    for future in as_completed(futures):
        try:
            yield future.result()
        except Exception as error:  # the worker process died (e.g. out of memory) or could not start the run
            segment = futures[future]
            failure = f"worker process failed: {error!r}"
            yield RunOutcome(f"segment {segment}", segment, False, 0.0, "", failure)


def command_run(args: argparse.Namespace) -> int:
    _ensure_dagster_home()
    if args.parallel < 1:
        print(f"--parallel must be at least 1, got {args.parallel}", file=sys.stderr)
        return 2
    from dagster import DagsterInstance

    from personalization_assets.definitions import defs
    from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME

    instance = DagsterInstance.get()
    started = time.perf_counter()
    job_names = {job.name for job in defs.jobs or []}
    campaign_defined = JOB_CAMPAIGN in job_names
    pool = _partition_pool(args.parallel) if args.parallel > 1 and campaign_defined else None

    def finished(outcome: RunOutcome) -> bool:
        status = "ok" if outcome.success else "FAILED"
        run_id = outcome.run_id[:8] or "-"
        print(f"{outcome.label} ... {status} ({outcome.seconds:.1f}s, run {run_id})")
        if not outcome.success:
            print(f"    {outcome.failure}", file=sys.stderr)
        return outcome.success

    def run(job_name: str, label: str, partition: str | None = None) -> bool:
        return finished(execute_run(instance, job_name, label, partition))

    try:
        known = instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)
        if not (args.segment and known) and not run(JOB_SEGMENTATION, "segmentation and content index"):
            return 1
        segments = instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)
        if args.segment:
            if args.segment not in segments:
                known_list = ", ".join(sorted(segments)) or "none"
                print(f"unknown segment '{args.segment}'; known segments: {known_list}", file=sys.stderr)
                return 2
            segments = [args.segment]

        keys = sorted(segments) if campaign_defined else []
        if pool is not None and len(keys) > 1:
            failed = [o.partition for o in _parallel_partition_runs(pool, keys) if not finished(o)]
        else:
            failed = [key for key in keys if not run(JOB_CAMPAIGN, f"segment {key}", key)]
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
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


def command_search_upload(args: argparse.Namespace) -> int:
    """Sync the approved content library to the Azure AI Search index of config/retrieval.yaml: create the
    index (fields + semantic configuration) if missing, upload every approved document, delete the ones no
    longer approved. Auth and endpoint come from its `azure:` section."""
    from personalization_assets.config import load_yaml_model
    from personalization_assets.config.retrieval import RetrievalConfig
    from resources.search import SearchServiceError, upload_content_library

    config = load_yaml_model(Path(args.config) / RetrievalConfig.FILENAME, RetrievalConfig)
    try:
        report = upload_content_library(args.content, config.azure)
    except SearchServiceError as error:  # names the index, endpoint, HTTP status and service error; never the key
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"index '{report.index_name}' ({'created' if report.index_created else 'existing'}): "
        f"{report.uploaded} approved document(s) uploaded, {len(report.deleted)} removed "
        f"({', '.join(report.deleted) or 'none'}); content version {report.content_version[:12]}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="personalize", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="materialize the whole pipeline (or one segment) in-process")
    run.add_argument("--segment", help="only this segment's partition (segmentation runs first if needed)")
    run.add_argument(
        "--parallel",
        type=int,
        default=1,
        metavar="N",
        help="run up to N segment partitions at once, each in its own process (default 1: one after another)",
    )
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

    upload = commands.add_parser(
        "search-upload", help="sync the approved content library to the Azure AI Search index (retrieval.yaml)"
    )
    upload.add_argument("--content", default=default_path(ENV_CONTENT, "data/content"), help="content folder")
    upload.add_argument("--config", default=default_path(ENV_CONFIG, "config"), help="configuration folder")
    upload.set_defaults(handler=command_search_upload)
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
