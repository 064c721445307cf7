"""Campaign report, pure logic: recommendations that follow the experiment statistics, feature attribution,
the headline table, charts, the HTML/PDF document and the analysis notebook. No Dagster import. Used by
``personalization_assets/reporting.py`` and ``notebooks/campaign_analysis.ipynb`` through the names this
package re-exports; its modules build on one another: ``formatting`` <- ``inputs`` (``read_inputs``, the only
function that touches the warehouse) <- ``recommendations`` <- ``tables``, ``inputs`` <- ``attribution`` <-
``charts``, and ``document`` assembles and renders them all::

    inputs = read_inputs(read_only_duckdb_connection, sample_rows=200_000)
    report = build_report(inputs, primary_metric="conversion", title="...", generated_at=now)
    html = render_html(report); pdf = html_to_pdf(html)

The report step itself draws the charts after the tables (``build_report(..., charts=False)``, then
``render_charts``) so that ``PdfWorker`` lays out the PDF meanwhile, and hands the report's sections to the
notebook with ``write_report_data`` (``handoff``).
"""

from personalization_assets.lib.reporting.attribution import (
    FEATURE_LABELS,
    MIN_EVENTS_PER_PARAMETER,
    OUTCOME_FLAGS,
    TERM_COLUMNS,
    Attribution,
    feature_attribution,
)
from personalization_assets.lib.reporting.charts import (
    CHART_DPI,
    CHART_STYLE,
    EXTRA_COLORS,
    TONE_COLORS,
    attribution_chart,
    coverage_chart,
    figure_png,
    funnel_chart,
    lift_chart,
    png_data_uri,
    tone_color,
)
from personalization_assets.lib.reporting.document import (
    CHART_FILES,
    NOTEBOOK_KERNEL,
    REPORT_DATA_TAG,
    TEMPLATE_NAME,
    TEMPLATES_DIR,
    Report,
    build_report,
    chart_figures,
    chart_sizes,
    execute_notebook,
    html_to_pdf,
    kernel_log_path,
    parameterize,
    render_charts,
    render_html,
)
from personalization_assets.lib.reporting.formatting import (
    METRIC_EVENTS,
    METRIC_LABELS,
    METRIC_VERBS,
    MINUS,
    POOLED_LABEL,
    DisplayTable,
    fmt_ci_pp,
    fmt_int,
    fmt_money,
    fmt_p,
    fmt_pct,
    fmt_pp,
    fmt_prob,
    fmt_rel,
)
from personalization_assets.lib.reporting.handoff import (
    REPORT_DATA_DIR,
    REPORT_DATA_FILE,
    report_frames,
    report_payload,
    write_report_data,
)
from personalization_assets.lib.reporting.inputs import (
    ATTRIBUTION_FEATURES,
    FUNNEL_COLUMNS,
    FUNNEL_SQL,
    PERSONAL_FIELDS_COLUMNS,
    PERSONAL_FIELDS_SQL,
    PERSONALIZED_SAMPLE_COLUMNS,
    PERSONALIZED_SUMMARY_COLUMNS,
    PERSONALIZED_SUMMARY_SQL,
    SAMPLE_COLUMNS,
    SAMPLE_SQL,
    TABLE_COLUMNS,
    ReportInputs,
    campaign_segments,
    empty_table,
    personalized_sample_sql,
    read_attribution_sample,
    read_inputs,
    restrict_to_segments,
)
from personalization_assets.lib.reporting.pdf_worker import PdfRenderError, PdfWorker
from personalization_assets.lib.reporting.recommendations import (
    CONTROL_ONLY,
    DECISION_LABELS,
    HEADLINE_COLUMNS,
    KEEP_CONTROL,
    LEAN,
    NO_DATA,
    SEND,
    UNDECIDED,
    Recommendation,
    format_headline,
    headline_frame,
    recommend,
    recommend_segment,
)
from personalization_assets.lib.reporting.tables import (
    SRM_ALERT_P,
    Citation,
    ExampleMessage,
    PersonalizedExample,
    PersonalizedMessages,
    PersonalizedSegment,
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

__all__ = [
    # formatting
    "METRIC_LABELS", "METRIC_EVENTS", "METRIC_VERBS", "POOLED_LABEL", "MINUS",
    "fmt_pct", "fmt_pp", "fmt_ci_pp", "fmt_rel", "fmt_p", "fmt_prob", "fmt_int", "fmt_money", "DisplayTable",
    # inputs
    "TABLE_COLUMNS", "FUNNEL_COLUMNS", "PERSONALIZED_SUMMARY_COLUMNS", "PERSONALIZED_SAMPLE_COLUMNS",
    "PERSONAL_FIELDS_COLUMNS", "PERSONAL_FIELDS_SQL",
    "ATTRIBUTION_FEATURES", "SAMPLE_COLUMNS", "FUNNEL_SQL", "SAMPLE_SQL", "PERSONALIZED_SUMMARY_SQL",
    "ReportInputs", "empty_table", "personalized_sample_sql", "read_inputs", "campaign_segments",
    "restrict_to_segments", "read_attribution_sample",
    # recommendations
    "SEND", "LEAN", "UNDECIDED", "KEEP_CONTROL", "CONTROL_ONLY", "NO_DATA", "DECISION_LABELS",
    "Recommendation", "recommend_segment", "recommend", "HEADLINE_COLUMNS", "headline_frame", "format_headline",
    # tables
    "results_table", "funnel_table", "SRM_ALERT_P", "experiment_health", "profiles_table", "retrieval_coverage",
    "SafetySummary", "safety_summary", "cost_table", "Citation", "ExampleMessage", "example_messages",
    "PersonalizedExample", "PersonalizedSegment", "PersonalizedMessages", "personalized_messages",
    # attribution
    "FEATURE_LABELS", "MIN_EVENTS_PER_PARAMETER", "OUTCOME_FLAGS", "Attribution", "TERM_COLUMNS",
    "feature_attribution",
    # charts
    "TONE_COLORS", "EXTRA_COLORS", "CHART_STYLE", "CHART_DPI", "tone_color", "figure_png", "png_data_uri",
    "lift_chart", "funnel_chart", "coverage_chart", "attribution_chart",
    # document
    "TEMPLATES_DIR", "TEMPLATE_NAME", "CHART_FILES", "Report", "build_report", "render_charts", "render_html",
    "chart_figures", "chart_sizes",
    "html_to_pdf", "NOTEBOOK_KERNEL", "REPORT_DATA_TAG", "execute_notebook", "kernel_log_path", "parameterize",
    # the PDF in a child process; the notebook's data
    "PdfWorker", "PdfRenderError", "REPORT_DATA_DIR", "REPORT_DATA_FILE", "report_payload", "report_frames",
    "write_report_data",
]  # fmt: skip
