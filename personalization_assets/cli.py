"""`personalize`: run the pipeline in-process, generate synthetic customers, and other operator commands."""

import argparse
import contextlib
import ctypes
import gc
import multiprocessing
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from personalization_assets.config import ENV_CONFIG, ENV_CONTENT, PROJECT_ROOT, ConfigError, default_path
from personalization_assets.jobs import CAMPAIGN_JOB, REPORT_JOB, SEGMENTATION_JOB
from personalization_assets.launch import (
    ALL_BLOCKED,
    CLI_TRIGGER,
    FAILED,
    NO_CONTENT,
    REFRESH_PARTITIONS_TAG,
    REFRESH_TAG,
    SERVED,
    TRIGGER_TAG,
    RunOutcome,
    fail_orphaned_runs,
    launch_run,
    process_tag,
    segment_status,
)
from resources.warehouse import held_between_runs


def _ensure_dagster_home() -> Path:
    """Runs are recorded in DAGSTER_HOME so `dagster dev` shows them afterwards (default: ./.dagster_home); a
    home without instance settings gets the project's dagster.yaml, as `make ui` gives it."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster_home"))).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    if not (home / "dagster.yaml").exists():
        shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def _run_config(verbose: bool) -> dict:
    """The console shows Dagster's own log lines only with --verbose; every event is stored either way."""
    return {"loggers": {"console": {"config": {"log_level": "INFO" if verbose else "CRITICAL"}}}}


RELEASE_ABOVE_BYTES = 512 * 2**20  # without a loaded size noted: release above this resident size
RELEASE_GROWTH_BYTES = 256 * 2**20  # with one: release when runs have grown the process by this much
_loaded_bytes: int | None = None


def _resident_bytes() -> int | None:
    """The process's resident size, or None where /proc is not there (not Linux)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def note_loaded_size() -> None:
    """Remember the process's size once the code is loaded: what runs add on top is what release_memory frees.
    The loaded code's objects (modules, definitions, resources) live as long as the process, so after one
    collection (nothing the pre-flight left, such as a connection in a reference cycle, is kept alive by what
    follows) they are moved out of the garbage collector's reach (`gc.freeze`): each later full collection, ours
    between runs and Python's own during them, walks only what the runs created (at 1M: 0.01-0.03 s instead of
    0.16-0.22 s a collection)."""
    global _loaded_bytes
    gc.collect()
    gc.freeze()
    _loaded_bytes = _resident_bytes()


def release_memory() -> None:
    """Hand memory a finished run freed back to the OS, so the next run in this process starts low: frames
    that reference cycles kept alive (Dagster's run contexts), Arrow's allocator pool (mimalloc keeps freed
    pages) and glibc's heap. Without it the process carried hundreds of MiB from one run into the next.
    Skipped while the runs have not grown the process much (the code alone is ~500 MiB): a full collection
    cost ~0.2 s before the loaded code was frozen, most of a small segment's run. Where the size is unknown,
    always released."""
    resident = _resident_bytes()
    if resident is not None:
        if _loaded_bytes is None:
            small = resident < RELEASE_ABOVE_BYTES
        else:
            small = resident - _loaded_bytes < RELEASE_GROWTH_BYTES
        if small:
            return
    import pyarrow

    gc.collect()
    pyarrow.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 2**20
TRIM_THRESHOLD_BYTES = 2**31 - 1  # mallopt takes an int


def tune_process() -> None:
    """Settings for a batch process on a small machine, made once before the first run.

    - One BLAS thread: the numerical work here is many small matrix operations (statistics' quadrature, the
      attribution fit); on 2 shared cores a second OpenBLAS thread only spins, and waking it cost 0.3-0.6 s.
    - glibc keeps freed memory for reuse instead of unmapping each large array when it is freed and mapping
      (and faulting in) a fresh one for the next: frames up to 32 MiB come from the heap, and the heap is not
      trimmed on every free. At 1M customers the segment profiles took 1.0 s of CPU instead of 1.9 s.
      `release_memory` still hands memory back between runs.
    - Arrow allocates with jemalloc rather than its default here, mimalloc, which took 0.5-1.5 s the first time
      a process filled large new buffers (the opening lines of 374k customers: 1.6 s with mimalloc, 0.1 s with
      jemalloc or the system allocator). A 1M run, best of 3: 27.1 -> 25.1 s (docs/benchmarks.md).
    A thread count the user set (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS) and an allocator chosen with
    ARROW_DEFAULT_MEMORY_POOL are kept. Other platforms: no malloc settings."""
    if not any(os.environ.get(name) for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")):
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        import pyarrow

        with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc keeps its default
            pyarrow.set_memory_pool(pyarrow.jemalloc_memory_pool())
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)


def run_job(instance, job_name: str, label: str, partition: str | None, tags: dict, verbose: bool) -> RunOutcome:
    outcome = launch_run(instance, job_name, label, partition, tags, _run_config(verbose))
    release_memory()
    return outcome


def run_campaign_partition(segment: str, tags: dict, verbose: bool) -> RunOutcome:
    """One segment's campaign run, in a worker process, recorded in DAGSTER_HOME."""
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        return run_job(instance, CAMPAIGN_JOB, f"segment {segment}", segment, tags, verbose)


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


def _parallel_partition_runs(
    pool: ProcessPoolExecutor, segments: Sequence[str], tags: dict, verbose: bool
) -> Iterator[RunOutcome]:
    """Each segment's campaign run in a worker process, yielded as they finish. Runs of different segments
    write different partitions; DuckDB's single-writer lock is waited for by the warehouse resource."""
    futures = {pool.submit(run_campaign_partition, segment, tags, verbose): segment for segment in segments}
    for future in as_completed(futures):
        try:
            yield future.result()
        except Exception as error:  # the worker process died (e.g. out of memory) or could not start the run
            segment = futures[future]
            yield RunOutcome(f"segment {segment}", segment, False, 0.0, "", f"worker process failed: {error!r}")


def _refusal(outcome: RunOutcome, verbose: bool) -> int:
    """A run that refused its input or settings: the reason in a line or a few, the trace only if asked."""
    print(f"error: {outcome.failure}", file=sys.stderr)
    for problem in outcome.problems:  # "35 invalid row(s)" says nothing of which column, which lines, what fix
        print(f"  - {problem}", file=sys.stderr)
    if verbose and outcome.detail:
        print(outcome.detail, file=sys.stderr)
    run = f"run {outcome.run_id[:8]}, " if outcome.run_id else ""
    print(f"({run}step {outcome.failed_step or '-'}; the full trace: --verbose or the run in the UI)", file=sys.stderr)
    return 2


MAX_WARNINGS_SHOWN = 5  # per run; the rest are in the run's event log


def _print_run(outcome: RunOutcome, status: str, reason: str, verbose: bool) -> None:
    run_id = outcome.run_id[:8] or "-"
    text = f"{outcome.label} ... {status}"
    if reason:
        text += f": {reason}"
    print(f"{text} ({outcome.seconds:.1f}s, run {run_id})", flush=True)
    # What the run warned about (rows quarantined, columns not used, ...) is said here, not only in the UI.
    shown = outcome.warnings if verbose else outcome.warnings[:MAX_WARNINGS_SHOWN]
    for warning in shown:
        print(f"    warning: {warning}", file=sys.stderr)
    if len(shown) < len(outcome.warnings):
        more = len(outcome.warnings) - len(shown)
        print(f"    ... and {more} more warning(s): --verbose, or run {run_id} in the UI", file=sys.stderr)
    if verbose and outcome.detail:
        print(outcome.detail, file=sys.stderr)


def command_run(args: argparse.Namespace) -> int:
    _ensure_dagster_home()
    if args.parallel < 1:
        print(f"--parallel must be at least 1, got {args.parallel}", file=sys.stderr)
        return 2
    from dagster import DagsterInstance
    from dagster._core.utils import make_new_run_id

    from personalization_assets.preflight import preflight

    started = time.perf_counter()
    instance = DagsterInstance.get()
    preflight(instance)  # ConfigError: main() prints it and exits 2, before any stage ran
    tune_process()  # after the pre-flight: its imports loaded the BLAS libraries (numpy's and scipy's)
    note_loaded_size()
    if orphaned := fail_orphaned_runs(instance):
        for run_id in orphaned:
            print(f"marked run {run_id[:8]} failed: the process that executed it is gone", file=sys.stderr)
        # Their failure hooks never ran: the latest report's check says now that it is behind them.
        from personalization_assets.report_currency import flag_report_if_behind

        flag_report_if_behind(instance)
    # SIGTERM (a `kill`, a CI timeout) interrupts the run like Ctrl-C, so Dagster records it as failed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    refresh = {TRIGGER_TAG: CLI_TRIGGER, REFRESH_TAG: make_new_run_id(), **process_tag()}
    pool = _partition_pool(args.parallel) if args.parallel > 1 else None
    # One run after another in this process: the warehouse stays open between them (resources/warehouse.py).
    with held_between_runs() if pool is None else contextlib.nullcontext():
        return _run_campaign(instance, args, refresh, pool, started)


def _run_campaign(
    instance, args: argparse.Namespace, refresh: dict, pool: ProcessPoolExecutor | None, started: float
) -> int:
    """The segmentation run, every segment's campaign run and the report run; the summary's exit status."""
    from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME

    statuses: dict[str, tuple[str, str]] = {}
    try:
        known = instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)
        if not (args.segment and known):
            outcome = run_job(instance, SEGMENTATION_JOB, "segmentation and content index", None, refresh, args.verbose)
            if outcome.refused:
                return _refusal(outcome, args.verbose)
            _print_run(outcome, "ok" if outcome.success else "FAILED", outcome.failure, args.verbose)
            if not outcome.success:
                return 1
        segments = sorted(instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME))
        if args.segment:
            if args.segment not in segments:
                known_list = ", ".join(segments) or "none"
                print(f"unknown segment '{args.segment}'; known segments: {known_list}", file=sys.stderr)
                return 2
            segments = [args.segment]
        tags = {**refresh, REFRESH_PARTITIONS_TAG: str(len(segments))}
        if pool is not None and len(segments) > 1:
            outcomes = _parallel_partition_runs(pool, segments, tags, args.verbose)
        else:
            outcomes = (run_job(instance, CAMPAIGN_JOB, f"segment {key}", key, tags, args.verbose) for key in segments)
        for outcome in outcomes:
            status, reason = segment_status(outcome)
            statuses[outcome.partition or outcome.label] = (status, reason)
            _print_run(outcome, status if status != FAILED else "FAILED", reason, args.verbose)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    served = [key for key, (status, _) in statuses.items() if status == SERVED]
    report_failed = False
    if served:
        report = run_job(instance, REPORT_JOB, "campaign report", None, refresh, args.verbose)
        _print_run(report, "ok" if report.success else "FAILED", report.failure, args.verbose)
        report_failed = not report.success
        if report.success:
            _print_report_location(instance, report.run_id)
    else:
        print("campaign report ... not built: no segment was served in this run", file=sys.stderr)
    return _summary(statuses, report_failed, started, args.strict)


def _print_report_location(instance, run_id: str) -> None:
    from dagster import AssetKey, DagsterEventType

    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization and materialization.asset_key == AssetKey("campaign_report"):
            html = materialization.metadata.get("report_html")
            if html is not None:
                print(f"    report: {html.value}  (personalize report --serve to open it in a browser)")


def _summary(statuses: dict[str, tuple[str, str]], report_failed: bool, started: float, strict: bool) -> int:
    counts: dict[str, int] = {}
    for status, _ in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    tally = ", ".join(f"{count} {status}" for status, count in counts.items()) or "no segments"
    print(f"done in {time.perf_counter() - started:.1f}s: {tally}; dagster home: {os.environ['DAGSTER_HOME']}")
    failed = sorted(key for key, (status, _) in statuses.items() if status == FAILED)
    unserved = sorted(key for key, (status, _) in statuses.items() if status in (NO_CONTENT, ALL_BLOCKED))
    if failed or report_failed:
        print(f"failed: {', '.join(failed + (['report'] if report_failed else []))}", file=sys.stderr)
        return 1
    if unserved and (strict or not counts.get(SERVED)):
        print(f"not served: {', '.join(unserved)}", file=sys.stderr)
        return 1
    if unserved:
        print(f"warning: not served: {', '.join(unserved)} (--strict makes this exit 1)", file=sys.stderr)
    return 0


def command_report(args: argparse.Namespace) -> int:
    """Print where the latest report is; with --serve, serve the reports folder until interrupted."""
    from personalization_assets.config.reporting import ReportingConfig
    from resources.settings import PipelineSettings

    settings = PipelineSettings()
    config = settings.stage(ReportingConfig)
    folder = Path(settings.reports_dir)
    reports = sorted(folder.glob("*/campaign_report.html"))
    port = args.port or config.serve_port
    if not reports:
        print(f"no report in {folder} yet: run `personalize run` first", file=sys.stderr)
        if not args.serve:
            return 1
    else:
        latest = reports[-1]
        print(f"latest report: {latest}")
        print(f"  {report_url(port, latest.relative_to(folder))}")
        note = _later_runs_note(latest.parent.name)
        if note:
            print(note, file=sys.stderr)
    if args.serve:
        serve_reports(folder, port)
    return 0


def _later_runs_note(report_folder: str) -> str | None:
    """A warning when pipeline runs started after the report was built (`personalize report` would otherwise
    present it as current): how many, how many failed, and the newest one's job and partition."""
    from datetime import UTC, datetime

    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    try:
        built = datetime.strptime(report_folder[:15], "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    except ValueError:  # a folder not named by the report step
        return None
    _ensure_dagster_home()
    with DagsterInstance.get() as instance:
        later = [
            record.dagster_run
            for record in instance.get_run_records(filters=RunsFilter(created_after=built))
            if record.dagster_run.job_name != REPORT_JOB
        ]
    if not later:
        return None
    failed = sum(run.status == DagsterRunStatus.FAILURE for run in later)
    newest = later[0]  # newest first
    partition = newest.tags.get("dagster/partition")
    return (
        f"warning: this report was built {built:%Y-%m-%d %H:%M:%S} UTC; {len(later)} pipeline run(s) started "
        f"after it ({failed} failed; newest: {newest.job_name}{f' {partition}' if partition else ''}, "
        f"{newest.status.value.lower()}) and no report was built from them, so it does not show them"
    )


def report_url(port: int, relative: Path) -> str:
    return f"http://127.0.0.1:{port}/{relative.as_posix()}"


def serve_reports(folder: Path, port: int) -> None:
    """The reports folder over HTTP on loopback (browsers block the UI's file:// links)."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    with ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"serving {folder} at http://127.0.0.1:{port}/ (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


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

    from personalization_assets.workflows.safety import screen_command_resource, screen_json_lines

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
    from personalization_assets.store.safety import export_audit_csv
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

    run = commands.add_parser(
        "run", help="the whole pipeline (or one segment): runs of the code location, executed in this process"
    )
    run.add_argument("--segment", help="only this segment's partition (segmentation runs first if needed)")
    run.add_argument("--verbose", action="store_true", help="Dagster's log lines and full error traces")
    run.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a segment is not served (no suitable content, all variants blocked); by default that "
        "is a warning while at least one segment is served",
    )
    run.add_argument(
        "--parallel",
        type=int,
        default=1,
        metavar="N",
        help="run up to N segment partitions at once, each in its own process (default 1: one after another)",
    )
    run.set_defaults(handler=command_run)

    report = commands.add_parser("report", help="the latest campaign report; --serve opens it over HTTP")
    report.add_argument("--serve", action="store_true", help="serve the reports folder on 127.0.0.1")
    report.add_argument("--port", type=int, help="port (default: reporting.yaml serve_port)")
    report.set_defaults(handler=command_report)

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
    except ConfigError as error:  # a settings file, endpoint or credential variable: refused before any stage ran
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
