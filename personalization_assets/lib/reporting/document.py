"""Assembling and rendering: ``Report`` and ``build_report`` (every section from ``ReportInputs``), the HTML
page (Jinja template in ``personalization_assets/templates``), its PDF, and the analysis notebook."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TypedDict

import jinja2
import pandas as pd
from matplotlib.figure import Figure

from personalization_assets.lib.reporting.attribution import Attribution, feature_attribution
from personalization_assets.lib.reporting.charts import (
    CHART_DPI,
    attribution_chart,
    coverage_chart,
    figure_png,
    funnel_chart,
    lift_chart,
    png_data_uri,
)
from personalization_assets.lib.reporting.formatting import (
    METRIC_EVENTS,
    METRIC_LABELS,
    DisplayTable,
    fmt_int,
    fmt_money,
    fmt_p,
    fmt_pct,
    fmt_pp,
    fmt_prob,
)
from personalization_assets.lib.reporting.inputs import ReportInputs, campaign_segments
from personalization_assets.lib.reporting.recommendations import (
    DECISION_LABELS,
    Recommendation,
    format_headline,
    headline_frame,
    recommend,
)
from personalization_assets.lib.reporting.tables import (
    ExampleMessage,
    PersonalizedMessages,
    SafetySummary,
    cost_table,
    example_messages,
    experiment_health,
    funnel_table,
    personalized_messages,
    profiles_table,
    results_table,
    retrieval_coverage,
    safety_summary,
)
from personalization_assets.lib.statistics import BINARY_METRICS

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
TEMPLATE_NAME = "report.html.j2"
# The charts' files next to the report (the PDF embeds them from there; the HTML page embeds data URIs).
CHART_FILES = {name: f"{name}.png" for name in ("lift", "funnel", "coverage", "attribution")}


class ReportFacts(TypedDict):
    """Small figures the report's text quotes."""

    segments: int
    customers: int
    engagement_rows: int
    library_size: int
    documents_used: int
    missing_tables: list[str]
    decided: list[Recommendation]  # segments with a statistically supported decision
    open_questions: list[Recommendation]
    without_message: list[Recommendation]  # segments without an example message in the report
    segment_descriptions: list[str]


@dataclass
class Report:
    title: str
    generated_at: datetime
    run_label: str
    primary_metric: str
    confidence: float
    power: float
    correction: str  # the experiment's multiplicity adjustment: "holm" or "fdr_bh"
    recommendations: list[Recommendation]
    overall: Recommendation
    headline: pd.DataFrame
    headline_table: DisplayTable
    charts: dict[str, str]  # name -> PNG data URI (or its file name, CHART_FILES, until render_charts)
    chart_png: dict[str, bytes]  # name -> the same PNG (rendered once; written next to the report)
    tables: dict[str, DisplayTable]
    safety: SafetySummary
    cost_totals: dict[str, float]
    attribution: Attribution
    examples: list[ExampleMessage]
    personalized: PersonalizedMessages
    facts: ReportFacts  # small figures quoted in the text (customers, segments, missing tables, ...)
    # Segments of the campaign this report leaves out, with why: (segment, status, one-line reason).
    excluded: tuple[tuple[str, str, str], ...] = ()
    # name -> how to draw the chart (render_charts calls each once)
    chart_makers: dict[str, Callable[[], Figure]] = field(default_factory=dict, repr=False, compare=False)

    def headline_lines(self, width: int = 12) -> dict[str, str]:
        """The headline as one line of plain text per segment (pooled first): the recommendation, then the
        lift of the tone it rests on with its confidence interval and a bar drawn in text (a lift chart that
        a metadata table shows as it is)."""
        recommendations = [self.overall, *self.recommendations]
        lifts = [_number(r.figures.get("abs_lift")) for r in recommendations]
        scale = max((abs(lift) for lift in lifts if lift is not None), default=0.0) or 1.0
        lines = {}
        for number, (rec, lift) in enumerate(zip(recommendations, lifts, strict=True), start=1):
            text = rec.label
            if lift is not None:
                low, high = _number(rec.figures.get("abs_ci_low")), _number(rec.figures.get("abs_ci_high"))
                bar = ("█" * max(1, round(abs(lift) / scale * width))).rjust(width if lift < 0 else 0)
                interval = f", CI {fmt_pp(low, 1)} to {fmt_pp(high, 1)}" if low is not None and high is not None else ""
                side = f"{bar}│" if lift < 0 else f"{' ' * width}│{bar}"
                text += f" · {rec.figures.get('arm')}: {fmt_pp(lift, 1)}{interval}  {side}"
            lines[f"{number}. {rec.segment_name}"] = text
        for segment, status, reason in self.excluded:
            lines[f"not served: {segment}"] = f"{status}: {reason}"
        return lines

    def headline_markdown(self) -> str:
        text = self.headline_table.to_markdown()
        if self.excluded:
            left_out = "\n".join(f"- **{segment}**: {status} — {reason}" for segment, status, reason in self.excluded)
            text += f"\n\nNot in this report (not served in this run; no older numbers shown):\n\n{left_out}"
        return text


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if number != number else number  # NaN: no figure


def build_report(
    inputs: ReportInputs,
    primary_metric: str = "conversion",
    attribution_metric: str = "conversion",
    confidence: float = 0.95,
    power: float = 0.8,
    correction: str = "holm",
    arm_weights: Mapping[str, float] | None = None,
    recorded_audit_head: tuple[int, str] | None = None,
    title: str = "Campaign report",
    run_label: str = "",
    generated_at: datetime | None = None,
    excluded: Sequence[tuple[str, str, str]] = (),
    charts: bool = True,
    attribution: Attribution | None = None,
) -> Report:
    """Every number, table, chart and sentence of the report, from the warehouse's tables.

    ``confidence`` (1 - alpha), ``power``, ``correction`` and ``arm_weights`` are the experiment's settings:
    the report states them and checks the split against the weights; the statistics come from
    experiment_metrics.
    ``recorded_audit_head`` is the safety audit head kept outside the warehouse (see ``safety_summary``).
    ``excluded`` names the campaign's segments left out of ``inputs`` and why; the report says so.
    ``charts=False`` leaves the charts undrawn: ``charts`` then holds their file names (``CHART_FILES``, for an
    HTML page rendered before they exist, e.g. the PDF's), and ``render_charts`` draws them.
    ``attribution``: the model already fitted on the attribution sample (``feature_attribution``), by a caller
    that fitted it beside other work; by default it is fitted here on ``inputs.attribution_sample``."""
    if primary_metric not in BINARY_METRICS:
        raise ValueError(f"primary_metric must be one of {list(BINARY_METRICS)}, got {primary_metric!r}")
    generated_at = generated_at or datetime.now().astimezone()
    segments = campaign_segments(inputs)
    recommendations, overall = recommend(inputs, primary_metric, confidence)
    headline = headline_frame([overall, *recommendations], segments)
    health_table, _ = experiment_health(inputs.funnel, inputs.metrics, segments, primary_metric, arm_weights)
    coverage_table, coverage = retrieval_coverage(
        inputs.retrieved, inputs.variants, inputs.verdicts, segments, len(inputs.content)
    )
    costs, cost_totals = cost_table(inputs.variants, segments)
    if attribution is None:
        attribution = feature_attribution(inputs.attribution_sample, attribution_metric, confidence)
    chart_makers: dict[str, Callable[[], Figure]] = {
        "lift": lambda: lift_chart(inputs.metrics, inputs.pooled, segments, confidence),
        "funnel": lambda: funnel_chart(inputs.funnel, segments),
        "coverage": lambda: coverage_chart(coverage, segments),
        "attribution": lambda: attribution_chart(attribution, confidence),
    }
    tables = {
        "results": results_table(inputs.metrics, segments, primary_metric, confidence, inputs.pooled),
        "funnel": funnel_table(inputs.funnel, segments),
        "health": health_table,
        "profiles": profiles_table(inputs.profiles),
        "coverage": coverage_table,
        "cost": costs,
    }
    if attribution.fitted:
        terms = attribution.terms
        tables["attribution"] = DisplayTable.from_frame(
            pd.DataFrame(
                {
                    "Attribute": [
                        lab if eff == "response" else f"{lab} × message"
                        for lab, eff in zip(terms["label"], terms["effect"], strict=True)
                    ],
                    "Per": terms["step"].map(lambda s: s if " instead of " in s else f"+{s}"),
                    "Odds ratio": terms["odds_ratio"].map(lambda v: f"{v:.2f}"),
                    f"{confidence:.0%} CI": [
                        f"{lo:.2f}–{hi:.2f}" for lo, hi in zip(terms["ci_low"], terms["ci_high"], strict=True)
                    ],
                    "Adj. p": terms["p_adjusted"].map(fmt_p),
                }
            ),
            numeric=["Odds ratio", f"{confidence:.0%} CI", "Adj. p"],
        )
    examples = example_messages(recommendations, inputs.variants, inputs.content)
    shown = {example.segment_name for example in examples}
    facts: ReportFacts = {
        "segments": len(segments),
        "customers": int(segments["customers"].sum()),
        "engagement_rows": inputs.engagement_rows,
        "library_size": len(inputs.content),
        "documents_used": int(inputs.retrieved["document_id"].nunique()),
        "missing_tables": list(inputs.missing_tables),
        "decided": [r for r in recommendations if r.decided],
        "open_questions": [r for r in recommendations if not r.decided],
        "without_message": [r for r in recommendations if r.segment_name not in shown],
        "segment_descriptions": [str(d) for d in inputs.profiles["description"].dropna()],
    }
    report = Report(
        title=title,
        generated_at=generated_at,
        run_label=run_label,
        primary_metric=primary_metric,
        confidence=confidence,
        power=power,
        correction=correction,
        recommendations=recommendations,
        overall=overall,
        headline=headline,
        headline_table=format_headline(headline, primary_metric, confidence),
        charts=dict(CHART_FILES),
        chart_png={},
        tables=tables,
        safety=safety_summary(
            inputs.verdicts,
            inputs.audit,
            segments,
            "safety_audit" not in inputs.missing_tables,
            recorded_audit_head,
        ),
        cost_totals=cost_totals,
        attribution=attribution,
        examples=examples,
        personalized=personalized_messages(
            inputs.personalized_summary,
            inputs.personalized_sample,
            inputs.funnel,
            segments,
            {r.segment: r.tone for r in recommendations if r.tone},
            available="personalized_messages" not in inputs.missing_tables,
            personal_fields=inputs.personal_fields,
        ),
        facts=facts,
        excluded=tuple(excluded),
        chart_makers=chart_makers,
    )
    return render_charts(report) if charts else report


def chart_figures(report: Report) -> dict[str, Figure]:
    """The report's charts as matplotlib figures, built but not drawn (drawing is most of a chart's cost): their
    sizes are known before they are drawn (``chart_sizes``)."""
    return {name: make() for name, make in report.chart_makers.items()}


def chart_sizes(figures: Mapping[str, Figure], dpi: int = CHART_DPI) -> dict[str, tuple[int, int]]:
    """Each chart file's size in pixels before the figure is drawn: the figure's size at ``dpi``. The drawn PNG is
    cropped to what the figure holds (``figure_png``), so it can be a few pixels off, or wider where a label runs
    past the figure's edge; the PDF worker relays its pages when a shape is further off than it tolerates."""
    sizes = {}
    for name, figure in figures.items():
        width, height = figure.get_size_inches() * dpi
        sizes[CHART_FILES[name]] = (max(1, round(width)), max(1, round(height)))
    return sizes


def render_charts(report: Report, folder: Path | None = None, figures: Mapping[str, Figure] | None = None) -> Report:
    """``report`` with its charts drawn: PNG bytes in ``chart_png``, data URIs in ``charts``. With ``folder``, each
    PNG is also written there under its ``CHART_FILES`` name as soon as it is drawn (atomically: a PDF renderer
    waiting for the file never reads half of it). ``figures``: the charts already built (``chart_figures``)."""
    chart_png = {}
    for name, make in report.chart_makers.items():
        png = figure_png(figures[name] if figures is not None else make())
        chart_png[name] = png
        if folder is not None:
            staging = folder / f".{CHART_FILES[name]}.tmp"
            staging.write_bytes(png)
            os.replace(staging, folder / CHART_FILES[name])
    return replace(report, chart_png=chart_png, charts={name: png_data_uri(png) for name, png in chart_png.items()})


@functools.cache
def _environment() -> jinja2.Environment:
    """The template environment, built once per process: the report renders its page twice (for the PDF, with
    chart files; for the HTML file, with data URIs), and compiling the template is most of a render's cost."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,  # a misspelt field fails the build instead of rendering blank
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(pct=fmt_pct, pp=fmt_pp, money=fmt_money, int=fmt_int, p=fmt_p, prob=fmt_prob)
    return environment


def render_html(report: Report) -> str:
    """The self-contained HTML report (CSS inline, charts as data URIs): opens offline in any browser."""
    return (
        _environment()
        .get_template(TEMPLATE_NAME)
        .render(
            report=report,
            metric_label=METRIC_LABELS[report.primary_metric],
            metric_events=METRIC_EVENTS[report.primary_metric],
            labels=DECISION_LABELS,
        )
    )


def html_to_pdf(html: str) -> tuple[bytes, int]:
    """Render the HTML report to PDF with WeasyPrint (print CSS: A4 pages, page numbers, section breaks);
    returns the PDF and its page count."""
    from weasyprint import HTML  # imported here: loading the pango/cairo bindings takes a moment

    document = HTML(string=html, base_url=str(TEMPLATES_DIR)).render()
    return document.write_pdf(), len(document.pages)


# ============================================================================================================
# The analysis notebook
# ============================================================================================================

NOTEBOOK_KERNEL = "python3"  # ipykernel's spec: jupyter_client runs it with this interpreter (sys.executable)


REPORT_DATA_TAG = "report-data"  # cells that read the report's data: executed once it is written


PARAMETERS_TAG = "parameters"
INJECTED_PARAMETERS_TAG = "injected-parameters"


def _python_literal(value: object) -> str:
    """A parameter as papermill's Python translator writes it (strings escaped and double-quoted)."""
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode("utf-8").replace('"', r"\"") + '"'
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    raise TypeError(f"notebook parameters are strings, numbers, booleans or None; got {type(value).__name__}")


def parameterize(notebook, parameters: Mapping[str, object]):
    """``notebook`` (an nbformat v4 NotebookNode, changed in place) with a cell tagged "injected-parameters"
    assigning ``parameters``, after the cell tagged "parameters" (replacing an earlier injected cell; at the top
    when there is none), and papermill's metadata: the notebook it writes is laid out as papermill's
    ``parameterize_notebook`` lays it out (same cell, tags and ``metadata.papermill``), without importing
    papermill (its storage back-ends, boto3 among them, cost most of a second of the report step's CPU)."""
    import nbformat

    notebook = nbformat.v4.upgrade(notebook)  # a no-op on the current format, as in papermill
    source = "# Parameters\n" + "".join(f"{name} = {_python_literal(value)}\n" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source=source)
    cell.metadata["tags"] = [INJECTED_PARAMETERS_TAG]
    for existing in notebook.cells:
        existing.metadata.setdefault("tags", [])
        existing.metadata.setdefault("papermill", {})
    tagged = [i for i, c in enumerate(notebook.cells) if INJECTED_PARAMETERS_TAG in c.metadata["tags"]]
    if tagged:
        notebook.cells[tagged[0]] = cell
    else:
        after = next((i + 1 for i, c in enumerate(notebook.cells) if PARAMETERS_TAG in c.metadata["tags"]), 0)
        notebook.cells.insert(after, cell)
    notebook.metadata["papermill"] = {
        **notebook.metadata.get("papermill", {"default_parameters": {}, "environment_variables": {}}),
        "parameters": dict(parameters),
        "version": _papermill_version(),
    }
    notebook.metadata["kernelspec"] = {"name": NOTEBOOK_KERNEL, "display_name": "Python 3", "language": "python"}
    return notebook


@functools.cache
def _papermill_version() -> str | None:
    """The installed papermill's version, for ``metadata.papermill`` (read from its distribution, not imported)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("papermill")
    except PackageNotFoundError:
        return None


def execute_notebook(
    template: Path,
    output: Path,
    parameters: Mapping[str, object],
    timeout_seconds: int = 600,
    before_report_data: Callable[[], None] | None = None,
    kernel_niceness: int = 0,
) -> Path:
    """Execute ``template`` with ``parameters`` injected after its cell tagged "parameters" (``parameterize``,
    papermill's layout) and save the executed notebook to ``output``. A failing cell raises nbclient's
    CellExecutionError naming the cell; the partly executed notebook is saved first, for debugging. (nbclient runs
    it, in this thread, so the report can build the PDF meanwhile.)

    ``before_report_data`` is called (in this thread) before the first code cell tagged "report-data": it may
    block until the report's data exist, so the kernel starts and runs the cells before it (imports) early, and
    it may raise to abandon the notebook. ``kernel_niceness`` > 0 starts the kernel at that lower CPU priority
    (``nice``), so a notebook executed beside more urgent work takes the processor when that work waits.

    The kernel process's own output (not its cells': nbclient keeps those in the notebook) goes to
    ``kernel_log_path(output)``, kept only when not empty: on a busy machine ipykernel can lose its heartbeat
    port to another process between jupyter_client choosing it and the kernel binding it, and prints a ZMQ
    traceback from a thread while the cells run on; that is not the command's output."""
    import nbformat
    from nbclient import NotebookClient

    notebook = parameterize(nbformat.read(template, as_version=4), parameters)
    output.parent.mkdir(parents=True, exist_ok=True)
    waiting = [before_report_data]

    def on_cell_execute(cell, cell_index: int) -> None:
        if waiting[0] is not None and REPORT_DATA_TAG in cell.get("metadata", {}).get("tags", []):
            wait, waiting[0] = waiting[0], None
            wait()

    client = NotebookClient(
        notebook,
        kernel_name=NOTEBOOK_KERNEL,
        timeout=timeout_seconds,
        resources={"metadata": {"path": str(output.parent)}},
        # The kernel listens on loopback only: its "running over TCP without encryption" warning is noise.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
        on_cell_execute=on_cell_execute,
        **({"kernel_manager_class": _nice_kernel_manager(kernel_niceness)} if kernel_niceness > 0 else {}),
    )
    log_path = kernel_log_path(output)
    try:
        with log_path.open("w", encoding="utf-8") as kernel_log:
            client.execute(stdout=kernel_log, stderr=kernel_log)  # passed on to the kernel's process
    finally:
        nbformat.write(notebook, output)
        if log_path.exists() and log_path.stat().st_size == 0:
            log_path.unlink()
    return output


def kernel_log_path(notebook: Path) -> Path:
    """Where the kernel process's own output of an executed notebook is kept (when there is any)."""
    return notebook.with_name(f"{notebook.stem}.kernel.log")


def _nice_kernel_manager(niceness: int):
    """jupyter_client's kernel manager, launching the kernel under ``nice -n niceness`` (where ``nice`` exists)."""
    import shutil

    from jupyter_client.manager import AsyncKernelManager

    nice = shutil.which("nice")

    class NiceKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            command = super().format_kernel_cmd(extra_arguments)
            return [nice, "-n", str(niceness), *command] if nice else command

    return NiceKernelManager
