"""Stage 6 — the campaign report across all segments: HTML and PDF report and an executed analysis notebook,
written to one folder per run under `settings.reports_dir`. The logic is in the `lib/reporting/` package."""

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from personalization_assets.config import PROJECT_ROOT
from personalization_assets.config.experiment import ExperimentConfig
from personalization_assets.config.reporting import ReportingConfig
from personalization_assets.launch import REFRESH_TAG, SERVED, segment_outcomes
from personalization_assets.lib import reporting
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME
from personalization_assets.report_currency import REPORT_CURRENT_CHECK, report_check_result
from personalization_assets.store.safety import latest_anchor, recorded_audit_heads
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse, release_connections

GROUP = "reporting"
NOTEBOOK_TEMPLATE = PROJECT_ROOT / "notebooks" / "campaign_analysis.ipynb"
REPORT_HTML = "campaign_report.html"
REPORT_PDF = "campaign_report.pdf"
REPORT_NOTEBOOK = "campaign_analysis.ipynb"
# The notebook's kernel starts with the step but has the least urgent work (the PDF waits for the charts, not for
# it): a lower CPU priority lets it use the processor when the charts and the PDF do not.
NOTEBOOK_NICENESS = 5

# The assets the report summarizes. They are dependencies only (the report reads the warehouse with read-only
# queries, aggregating 1M-row tables in DuckDB instead of loading every partition into memory); they put the
# report at the end of the graph, in the report job.
SUMMARIZED_ASSETS = [
    "segment_profiles",
    "content_index",
    "retrieved_content",
    "message_variants",
    "safety_verdicts",
    "engagement",
    "experiment_metrics",
    "pooled_experiment_metrics",
    "personalized_messages",
]


def report_folder_name(run_id: str, generated_at: datetime) -> str:
    """`20260105-143000-1a2b3c4d`: sorts by time, and names the Dagster run that wrote it."""
    return f"{generated_at.astimezone(UTC):%Y%m%d-%H%M%S}-{run_id[:8]}"


@asset(
    group_name=GROUP,
    deps=[AssetKey(name) for name in SUMMARIZED_ASSETS],
    kinds={"html", "pdf", "jupyter"},
)
def campaign_report(
    context: AssetExecutionContext, settings: PipelineSettings, warehouse: DuckDBWarehouse
) -> MaterializeResult:
    """Campaign report across the segments served in this campaign: recommendations, lift, funnel, safety,
    cost, attribution (HTML, PDF, executed notebook)."""
    config = settings.stage(ReportingConfig)
    experiment = settings.stage(ExperimentConfig)
    if not warehouse.exists():
        raise Failure(
            f"campaign_report: the warehouse {warehouse.path} does not exist yet; run the segmentation "
            "and campaign jobs first"
        )
    served, excluded = current_segments(context)
    generated_at = datetime.now(UTC)
    folder = Path(settings.reports_dir) / report_folder_name(context.run.run_id, generated_at)
    folder.mkdir(parents=True, exist_ok=True)
    # Three things at once, so the step costs its longest part, not the sum: this process computes the report
    # and draws its charts (the attribution model is fitted in a thread meanwhile); a WeasyPrint child process
    # (started first: its import takes a moment) lays out the PDF from the HTML as soon as the tables are known,
    # waiting for each chart's file; the notebook's kernel starts now, and its cells that show the report's data
    # run once the step has written them (report_data/).
    if config.notebook:
        _import_notebook_machinery()
    # The report reads the warehouse read-only, which DuckDB refuses in a process that holds it read-write (the
    # open connection an earlier step of this run may have left for reuse): release that first.
    release_connections()
    with contextlib.ExitStack() as stack:
        pdf_worker = stack.enter_context(reporting.PdfWorker()) if config.pdf else None
        data_ready = _Handoff(timeout=config.notebook_timeout_seconds)
        notebook_runner = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-notebook"))
        stack.callback(data_ready.abandon)  # runs before the runner's shutdown waits: a waiting notebook stops
        notebook = (
            notebook_runner.submit(_timed_notebook, folder / REPORT_NOTEBOOK, config, warehouse, data_ready.wait)
            if config.notebook
            else None
        )
        return _build_report(
            context, config, experiment, warehouse, generated_at, folder, notebook, served, excluded, pdf_worker,
            data_ready,
        )  # fmt: skip


@asset_check(
    asset=campaign_report,
    name=REPORT_CURRENT_CHECK,
    description=(
        "Warns when a segment's campaign run ended after the report was built (a failed one fails this check at "
        "once: the campaign job's failure hook, or the report_behind_after_lost_run sensor when the run's process "
        "died): the report then shows that segment as it was before."
    ),
)
def shows_latest_segment_runs(context: AssetCheckExecutionContext) -> AssetCheckResult:
    return report_check_result(context.instance)


class _Handoff:
    """The report step tells the notebook thread that the report's data are written (or that they never will be)."""

    def __init__(self, timeout: float) -> None:
        self._event = threading.Event()
        self._abandoned = False
        self._timeout = timeout

    def set(self) -> None:
        self._event.set()

    def abandon(self) -> None:
        if not self._event.is_set():
            self._abandoned = True
            self._event.set()

    def wait(self) -> None:
        if not self._event.wait(self._timeout) or self._abandoned:
            raise RuntimeError("the report step stopped before it wrote the report's data; the notebook was not run")


def current_segments(context: AssetExecutionContext) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The segments this report may show: served by the latest finished run of their partition in this
    campaign (the run's `personalization/refresh` tag), or in any run when the report runs on its own. The
    others are listed with their status and reason, never with their older rows. None served: no report."""
    partitions = sorted(context.instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME))
    refresh_id = context.run.tags.get(REFRESH_TAG)
    outcomes = segment_outcomes(context.instance, partitions, refresh_id)
    served = [key for key, (status, _) in outcomes.items() if status == SERVED]
    excluded = [(key, status, reason) for key, (status, reason) in outcomes.items() if status != SERVED]
    if not served:
        campaign = f"campaign {refresh_id}" if refresh_id else "the latest runs"
        left_out = "; ".join(f"{key}: {status}" for key, status, _ in excluded) or "no segment partitions"
        raise Failure(
            f"campaign_report: no segment was served in {campaign} ({left_out}); no report was written, "
            "so no older numbers are presented as current",
            metadata={"segments": MetadataValue.md("\n".join(f"- {k}: {s} — {r}" for k, s, r in excluded))},
        )
    return served, excluded


def _import_notebook_machinery() -> None:
    """Import here what running a notebook imports (IPython, the Jupyter client, ZeroMQ), before the notebook
    thread starts: matplotlib looks IPython up in sys.modules while drawing the report's charts and fails on
    a module another thread is still importing."""
    import IPython  # noqa: F401
    import jupyter_client.manager  # noqa: F401
    import nbclient  # noqa: F401


def _timed_notebook(
    notebook_path: Path, config: ReportingConfig, warehouse: DuckDBWarehouse, wait_for_data: Callable[[], None]
) -> float:
    started = time.perf_counter()
    warehouse_path = str(Path(warehouse.path).resolve()) if warehouse.is_local_file else warehouse.path
    reporting.execute_notebook(
        NOTEBOOK_TEMPLATE,
        notebook_path,
        {"report_data": reporting.REPORT_DATA_DIR, "warehouse_path": warehouse_path},
        timeout_seconds=config.notebook_timeout_seconds,
        before_report_data=wait_for_data,
        kernel_niceness=NOTEBOOK_NICENESS,
    )
    return time.perf_counter() - started


def _fitted_attribution(
    warehouse: DuckDBWarehouse, config: ReportingConfig, confidence: float, served: list[str]
) -> reporting.Attribution:
    """The attribution model on the sample of the served segments (the rows ``read_inputs`` would sample)."""
    with warehouse.connect(read_only=True) as connection:
        sample = reporting.read_attribution_sample(connection, config.attribution_sample_rows, config.sample_seed)
    sample = sample[sample["segment"].isin(served)].reset_index(drop=True)
    return reporting.feature_attribution(sample, config.attribution_metric, confidence)


def _build_report(
    context: AssetExecutionContext,
    config: ReportingConfig,
    experiment: ExperimentConfig,
    warehouse: DuckDBWarehouse,
    generated_at: datetime,
    folder: Path,
    notebook: Future[float] | None,
    served: list[str],
    excluded: list[tuple[str, str, str]],
    pdf_worker: reporting.PdfWorker | None,
    data_ready: _Handoff,
) -> MaterializeResult:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    confidence = 1 - experiment.statistics.alpha
    # The attribution model's sample query and fit (most of the step's own work at 1M customers; DuckDB and
    # numpy release the GIL) run in a thread while this one reads the rest. (Drawing charts meanwhile was tried:
    # both need the GIL, so the fit and the page came later.)
    fitter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-attribution")
    attribution_future = fitter.submit(_fitted_attribution, warehouse, config, confidence, served)
    fitter.shutdown(wait=False)
    with warehouse.connect(read_only=True) as connection:
        inputs = reporting.read_inputs(
            connection,
            config.attribution_sample_rows,
            config.sample_seed,
            config.personalized_sample_per_tone,
            attribution_sample=False,
        )
    inputs = reporting.restrict_to_segments(inputs, served)
    timings["read"] = time.perf_counter() - started
    started = time.perf_counter()
    attribution = attribution_future.result()
    timings["attribution (in parallel), wait"] = time.perf_counter() - started
    if inputs.missing_tables:
        context.log.warning(
            f"tables not in the warehouse yet (their sections stay empty): {', '.join(inputs.missing_tables)}"
        )

    # The chain head the safety stage recorded in Dagster (outside the warehouse) reveals deleted records.
    root = inputs.audit.loc[inputs.audit["sequence"] == 0, "record_hash"]
    heads = recorded_audit_heads(context.instance, AssetKey("safety_verdicts"))
    anchor = latest_anchor(heads, root.iloc[0] if len(root) else None)

    started = time.perf_counter()
    report = reporting.build_report(
        inputs,
        primary_metric=config.primary_metric,
        attribution_metric=config.attribution_metric,
        confidence=confidence,
        power=experiment.statistics.power,
        correction=experiment.statistics.correction,
        arm_weights=experiment.assignment.weights,
        recorded_audit_head=(anchor.sequence, anchor.record_hash) if anchor else None,
        title=config.title,
        run_label=folder.name,
        generated_at=generated_at,
        excluded=excluded,
        charts=False,  # drawn below, while the PDF worker already lays out the text
        attribution=attribution,
    )
    timings["tables"] = time.perf_counter() - started
    started = time.perf_counter()
    figures = reporting.chart_figures(report)  # built, not drawn: their sizes let the PDF be laid out meanwhile
    if pdf_worker is not None:  # the PDF's page links its charts by file name; the worker waits for each file
        pdf_worker.render(
            reporting.render_html(report),
            folder,
            folder / REPORT_PDF,
            wait_for=list(reporting.CHART_FILES.values()),
            sizes=reporting.chart_sizes(figures),
        )
    # each PNG drawn once: for the PDF, the HTML and the notebook
    report = reporting.render_charts(report, folder, figures)
    html = reporting.render_html(report)
    html_path = folder / REPORT_HTML
    html_path.write_text(html, encoding="utf-8")
    reporting.write_report_data(report, inputs, folder)
    data_ready.set()
    timings["charts_and_html"] = time.perf_counter() - started

    served_url = f"http://127.0.0.1:{config.serve_port}/{folder.name}"
    metadata: dict[str, Any] = {  # dagster validates the values (text, numbers, MetadataValue) when it stores them
        # First what the asset page shows as it is: the headline as text lines, the link to the report.
        **{f"headline {key}": text for key, text in report.headline_lines().items()},
        "report_url": MetadataValue.url(f"{served_url}/{REPORT_HTML}"),
        "headline": MetadataValue.md(report.headline_markdown()),
        "lift_chart": MetadataValue.md(f"![Lift by segment and tone]({report.charts['lift']})"),
        "segments_served": ", ".join(served),
        "segments_not_served": ", ".join(f"{key} ({status})" for key, status, _ in excluded) or "none",
        "overall_recommendation": f"{report.overall.label}: {report.overall.evidence}",
        "segments": len(report.recommendations),
        "segments_decided": len(report.facts["decided"]),
        "engagement_rows": inputs.engagement_rows,
        "attribution": report.attribution.outcome or report.attribution.note,
        "generation_cost_usd": round(report.cost_totals["cost_usd"], 6),
        "personalized_messages": report.personalized.messages,
        "report_folder": MetadataValue.path(str(folder)),
        "report_html": MetadataValue.path(str(html_path)),
        "report_data": MetadataValue.path(str(folder / reporting.REPORT_DATA_DIR)),
        "missing_tables": ", ".join(inputs.missing_tables) or "none",
    }
    if pdf_worker is not None:
        started = time.perf_counter()
        pdf_path = folder / REPORT_PDF
        try:
            pages = pdf_worker.pages()
        except reporting.PdfRenderError as error:
            raise Failure(f"campaign_report: the PDF could not be rendered: {error}") from error
        timings["pdf (in parallel, after the charts)"] = time.perf_counter() - started
        if pdf_worker.relaid():  # a chart's drawn shape was off its figure's size: correct, but slower
            context.log.info("the PDF's pages were laid out again with the drawn charts (a chart's shape changed)")
        metadata |= {
            "report_pdf": MetadataValue.path(str(pdf_path)),
            "report_pdf_url": MetadataValue.url(f"{served_url}/{REPORT_PDF}"),
            "pdf_pages": pages,
        }
    if notebook is not None:
        notebook_path = folder / REPORT_NOTEBOOK
        try:
            timings["notebook (in parallel, whole)"] = notebook.result()
        except Exception as error:  # nbclient's CellExecutionError carries the failing cell and its traceback
            kernel_log = reporting.kernel_log_path(notebook_path)
            raise Failure(
                f"campaign_report: the analysis notebook failed; the partly executed notebook is at {notebook_path}"
                + (f" (the kernel's own output: {kernel_log})" if kernel_log.exists() else ""),
                metadata={"error": MetadataValue.text(str(error)[-4000:])},
            ) from error
        metadata |= {
            "notebook": MetadataValue.notebook(str(notebook_path)),
            "notebook_execution": "executed in this step, in parallel with the PDF; it shows the report's own "
            f"data ({reporting.REPORT_DATA_DIR}/), not a second computation",
        }
    metadata["seconds"] = MetadataValue.md(" · ".join(f"{step}: {seconds:.1f}s" for step, seconds in timings.items()))
    context.log.info(f"campaign report written to {folder}")
    return MaterializeResult(metadata=metadata)
