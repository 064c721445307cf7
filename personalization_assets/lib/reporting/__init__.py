"""Campaign report, pure logic: recommendations that follow the experiment statistics, feature attribution,
the headline table, charts, the HTML/PDF document and the analysis notebook. No Dagster import.

Flow (used by ``personalization_assets/reporting.py`` and ``notebooks/campaign_analysis.ipynb``)::

    inputs = read_inputs(read_only_duckdb_connection, sample_rows=200_000)
    report = build_report(inputs, primary_metric="conversion", title="...", generated_at=now)
    html = render_html(report); pdf = html_to_pdf(html)

``read_inputs`` is the only function here that touches the warehouse (read-only queries on a connection it is
given); a table that does not exist yet yields an empty frame with the contract's columns, so every section
can say "not available yet" instead of failing.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import math
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import jinja2
import matplotlib
import numpy as np
import pandas as pd
import statsmodels.api as sm
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationError

from personalization_assets.lib.assignment import ordered_arms
from personalization_assets.lib.customers import NUMERIC_FEATURES
from personalization_assets.lib.personalization import render_message
from personalization_assets.lib.privacy import hash_customer_id
from personalization_assets.lib.safety import CATEGORIES, verify_audit_chain
from personalization_assets.lib.statistics import (
    BINARY_METRICS,
    CONTROL,
    METRICS_COLUMNS,
    adjust_p_values,
    sample_ratio_mismatch,
)

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"
TEMPLATE_NAME = "report.html.j2"

METRIC_LABELS = {"open": "open rate", "click": "click rate", "conversion": "conversion rate"}
METRIC_EVENTS = {"open": "opens", "click": "clicks", "conversion": "conversions"}
METRIC_VERBS = {"open": "open", "click": "click", "conversion": "convert"}
TONE_COLORS = {CONTROL: "#7f7f7f", "urgent": "#d1495b", "informational": "#00798c", "friendly": "#edae49"}
EXTRA_COLORS = ("#66a182", "#2e4057", "#8d96a3")
POOLED_LABEL = "All segments (pooled)"

# Decisions, from strongest evidence to none.
SEND = "send"  # a tone beat control significantly on the primary metric
LEAN = "lean"  # no significant result on the primary metric, but a significant win on an earlier funnel stage
UNDECIDED = "undecided"  # no significant difference: the data cannot decide
KEEP_CONTROL = "keep_control"  # every tested tone did significantly worse than control
CONTROL_ONLY = "control_only"  # no approved variant: everyone got the control message, nothing to compare
NO_DATA = "no_data"  # the experiment has not produced comparable data for this segment
DECISION_LABELS = {
    SEND: "Send {tone}",
    LEAN: "Lean {tone} (unproven)",
    UNDECIDED: "Undecided: keep testing",
    KEEP_CONTROL: "Keep the control message",
    CONTROL_ONLY: "No test: all variants blocked",
    NO_DATA: "No experiment data yet",
}

# Warehouse tables the report reads and the columns it relies on (docs/architecture.md).
# fmt: off
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "segment_profiles": (
        "segment", "segment_name", "intent", "customers", "share", "mean_avg_order_value",
        "mean_purchase_frequency", "median_last_engagement_days", "mean_historical_open_rate",
        "mean_historical_click_rate", "tier_mix", "top_locations", "engagement_level", "description",
    ),
    "experiment_metrics": tuple(METRICS_COLUMNS),
    "pooled_experiment_metrics": tuple(METRICS_COLUMNS),
    "message_variants": (
        "segment", "variant_id", "tone", "subject", "body", "citations", "status", "rejection_reasons",
        "attempts", "backend", "model", "input_tokens", "output_tokens", "cost_usd", "latency_ms",
        "created_at",
    ),
    "safety_verdicts": (
        "segment", "variant_id", "hate", "violence", "self_harm", "sexual", "blocklist_hits", "decision",
        "reasons", "backend", "screened_at",
    ),
    "safety_audit": (
        "record_id", "sequence", "screened_at", "run_id", "segment", "variant_id", "text_sha256",
        "severities", "decision", "reasons", "backend", "prev_hash", "record_hash",
    ),
    "retrieved_content": ("segment", "rank", "document_id", "title", "category", "score", "snippet", "query"),
    "content_index": ("document_id", "title", "category", "source_url"),
}
# fmt: on
FUNNEL_COLUMNS = ("segment", "arm", "variant_id", "sent", "opened", "clicked", "converted")
PERSONALIZED_SUMMARY_COLUMNS = ("segment", "messages", "distinct_opening_lines", "variants")
PERSONALIZED_SAMPLE_COLUMNS = (
    "segment", "customer_id", "arm", "variant_id", "subject", "opening_line",
    "tier", "location", "last_engagement_days", "body",
)  # fmt: skip
ATTRIBUTION_FEATURES = NUMERIC_FEATURES  # every numeric customer attribute; tier enters as dummies
SAMPLE_COLUMNS = ("segment", "arm", "opened", "clicked", "converted", "tier", *ATTRIBUTION_FEATURES)


# ============================================================================================================
# Reading the warehouse
# ============================================================================================================


@dataclass
class ReportInputs:
    """Everything the report shows, read from the warehouse (or built in a test)."""

    profiles: pd.DataFrame
    metrics: pd.DataFrame
    pooled: pd.DataFrame
    funnel: pd.DataFrame  # engagement aggregated per segment × arm (FUNNEL_COLUMNS)
    variants: pd.DataFrame
    verdicts: pd.DataFrame
    audit: pd.DataFrame
    retrieved: pd.DataFrame
    content: pd.DataFrame
    attribution_sample: pd.DataFrame  # engagement joined with customer attributes (SAMPLE_COLUMNS), sampled
    engagement_rows: int = 0
    missing_tables: tuple[str, ...] = ()
    # personalized_messages: counts per segment, and a few customers per segment × tone with what they receive
    personalized_summary: pd.DataFrame = field(default_factory=lambda: empty_table("personalized_summary"))
    personalized_sample: pd.DataFrame = field(default_factory=lambda: empty_table("personalized_sample"))


_DERIVED_COLUMNS = {
    "funnel": FUNNEL_COLUMNS,
    "sample": SAMPLE_COLUMNS,
    "personalized_summary": PERSONALIZED_SUMMARY_COLUMNS,
    "personalized_sample": PERSONALIZED_SAMPLE_COLUMNS,
}


def empty_table(table: str) -> pd.DataFrame:
    columns = _DERIVED_COLUMNS.get(table) or TABLE_COLUMNS[table]
    return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})


def _existing_tables(connection) -> set[str]:
    rows = connection.execute("select table_name from information_schema.tables where table_schema = 'main'").fetchall()
    return {row[0] for row in rows}


def _columns(connection, table: str) -> set[str]:
    return {row[0] for row in connection.execute(f"describe main.{table}").fetchall()}


FUNNEL_SQL = """
select segment, arm, any_value(variant_id) as variant_id, count(*) as sent,
       sum(opened::int) as opened, sum(clicked::int) as clicked, sum(converted::int) as converted
from main.engagement
group by segment, arm
order by segment, arm
"""

# A deterministic sample: the rows with the smallest seeded hash of customer_id (same rows on every run, no
# state, and DuckDB evaluates it as a top-N, so 1M rows cost well under a second).
SAMPLE_SQL = """
select e.segment, e.arm, e.opened::int as opened, e.clicked::int as clicked, e.converted::int as converted,
       c.tier, c.age, c.purchase_frequency, c.avg_order_value, c.last_engagement_days,
       c.historical_open_rate, c.historical_click_rate
from main.engagement e join main.customers c using (customer_id)
order by hash(e.customer_id || ?), e.customer_id
limit ?
"""


PERSONALIZED_SUMMARY_SQL = """
select segment, count(*) as messages, count(distinct opening_line) as distinct_opening_lines,
       count(distinct variant_id) as variants
from main.personalized_messages
group by segment
order by segment
"""


def personalized_sample_sql(with_customers: bool, with_bodies: bool) -> str:
    """``messages_per_tone`` customers per segment × tone (the smallest seeded hashes of their ids: the same
    customers on every run), with the fields their opening line came from and the approved body it opens.
    Parameters: seed, messages_per_tone, seed. A table that is not there leaves its columns null."""
    customer_columns, customer_join = "null as tier, null as location, null as last_engagement_days", ""
    if with_customers:
        customer_columns = "c.tier, c.location, c.last_engagement_days"
        customer_join = "left join main.customers c using (customer_id)"
    body_column, body_join = "null as body", ""
    if with_bodies:  # the screened text that was approved is the text sent (docs/architecture.md)
        body_column = "v.body"
        body_join = (
            "left join main.safety_verdicts v "
            "on v.segment = s.segment and v.variant_id = s.variant_id and v.decision = 'approved'"
        )
    return f"""
with sampled as (
    select segment, customer_id, arm, variant_id, subject, opening_line
    from main.personalized_messages
    qualify row_number() over (partition by segment, arm order by hash(customer_id || ?), customer_id) <= ?
)
select s.segment, s.customer_id, s.arm, s.variant_id, s.subject, s.opening_line, {customer_columns}, {body_column}
from sampled s
{customer_join}
{body_join}
order by s.segment, s.arm, hash(s.customer_id || ?), s.customer_id
"""


def read_inputs(connection, sample_rows: int = 200_000, seed: int = 0, messages_per_tone: int = 2) -> ReportInputs:
    """Read the report's tables through an open (read-only) DuckDB connection; absent tables: empty frames."""
    if sample_rows < 1:
        raise ValueError(f"sample_rows must be at least 1, got {sample_rows}")
    if messages_per_tone < 0:
        raise ValueError(f"messages_per_tone must be at least 0, got {messages_per_tone}")
    existing = _existing_tables(connection)
    frames: dict[str, pd.DataFrame] = {}
    for table, columns in TABLE_COLUMNS.items():
        if table in existing:
            present = _columns(connection, table)
            wanted = ", ".join(f'"{c}"' for c in columns if c in present)
            frame = connection.execute(f"select {wanted} from main.{table}").fetchdf()
            frames[table] = frame.reindex(columns=list(columns))
        else:
            frames[table] = empty_table(table)
    funnel, sample, engagement_rows = empty_table("funnel"), empty_table("sample"), 0
    if "engagement" in existing:
        funnel = connection.execute(FUNNEL_SQL).fetchdf()
        engagement_rows = int(funnel["sent"].sum()) if len(funnel) else 0
        if "customers" in existing:
            sample = connection.execute(SAMPLE_SQL, [str(seed), int(sample_rows)]).fetchdf()
    personalized_summary = empty_table("personalized_summary")
    personalized_sample = empty_table("personalized_sample")
    if "personalized_messages" in existing:
        personalized_summary = connection.execute(PERSONALIZED_SUMMARY_SQL).fetchdf()
        bodies = "safety_verdicts" in existing and "body" in _columns(connection, "safety_verdicts")
        personalized_sample = connection.execute(
            personalized_sample_sql("customers" in existing, bodies),
            [str(seed), int(messages_per_tone), str(seed)],
        ).fetchdf()
    missing = tuple(
        t for t in (*TABLE_COLUMNS, "engagement", "customers", "personalized_messages") if t not in existing
    )
    return ReportInputs(
        profiles=frames["segment_profiles"],
        metrics=frames["experiment_metrics"],
        pooled=frames["pooled_experiment_metrics"],
        funnel=funnel,
        variants=frames["message_variants"],
        verdicts=frames["safety_verdicts"],
        audit=frames["safety_audit"],
        retrieved=frames["retrieved_content"],
        content=frames["content_index"],
        attribution_sample=sample,
        engagement_rows=engagement_rows,
        missing_tables=missing,
        personalized_summary=personalized_summary,
        personalized_sample=personalized_sample,
    )


# ============================================================================================================
# Formatting (what a marketing lead reads: percentages, percentage points, plain numbers)
# ============================================================================================================


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float | np.floating) and math.isnan(float(value)))


def fmt_pct(value: object, digits: int = 1) -> str:
    return "–" if _missing(value) else f"{float(value) * 100:.{digits}f}%"


MINUS = "\u2212"  # a typographic minus: "−0.45" reads (and aligns) better than a hyphen


def _signed(value: float, digits: int) -> str:
    value = round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0: a rounded zero never shows as "−0.00"
    return f"{value:+.{digits}f}".replace("-", MINUS)


def fmt_pp(value: object, digits: int = 1, unit: bool = True) -> str:
    """A difference of two rates in percentage points, signed."""
    return "–" if _missing(value) else _signed(float(value) * 100, digits) + (" pp" if unit else "")


def fmt_ci_pp(low: object, high: object, digits: int = 1, unit: bool = True) -> str:
    if _missing(low) or _missing(high):
        return "–"
    return f"{_signed(float(low) * 100, digits)} to {_signed(float(high) * 100, digits)}" + (" pp" if unit else "")


def fmt_rel(value: object) -> str:
    return "–" if _missing(value) else _signed(float(value) * 100, 0) + "%"


def fmt_p(value: object) -> str:
    if _missing(value):
        return "–"
    return "<0.001" if float(value) < 0.001 else f"{float(value):.3f}"


def fmt_prob(value: object) -> str:
    if _missing(value):
        return "–"
    value = float(value)
    if value > 0.999:
        return ">99.9%"
    if value < 0.001:
        return "<0.1%"
    return f"{value * 100:.0f}%" if 0.01 <= value <= 0.99 else f"{value * 100:.1f}%"


def fmt_int(value: object) -> str:
    return "–" if _missing(value) else f"{int(round(float(value))):,}"


def fmt_money(value: object, digits: int = 2) -> str:
    return "–" if _missing(value) else f"${float(value):,.{digits}f}"


def _parse_json_list(value: object) -> list:
    """A JSON text column (citations, reasons, ...) as a list; lists already parsed and NULLs are accepted."""
    if isinstance(value, list | tuple | np.ndarray):
        return list(value)
    if _missing(value) or value == "":
        return []
    parsed = json.loads(value) if isinstance(value, str) else value
    return list(parsed) if isinstance(parsed, list | tuple) else [parsed]


@dataclass(frozen=True)
class DisplayTable:
    """A formatted table for the report: every cell is already text; ``numeric`` columns are right-aligned."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: frozenset[str] = frozenset()
    # (row, column) cells to emphasize, e.g. significant results.
    strong: frozenset[tuple[int, int]] = frozenset()

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        numeric: Sequence[str] = (),
        strong: frozenset[tuple[int, int]] = frozenset(),
    ) -> DisplayTable:
        rows = tuple(tuple(str(v) for v in row) for row in frame.itertuples(index=False, name=None))
        return cls(tuple(str(c) for c in frame.columns), rows, frozenset(numeric), strong)

    def to_markdown(self) -> str:
        frame = pd.DataFrame(list(self.rows), columns=list(self.columns))
        # A Markdown cell is one line: the line breaks that stack a cell in HTML become spaces.
        return frame.replace("\n", " ", regex=True).to_markdown(index=False, disable_numparse=True)

    def __len__(self) -> int:
        return len(self.rows)


# ============================================================================================================
# Segments and recommendations
# ============================================================================================================


def _bool(series: pd.Series) -> pd.Series:
    return series.astype("boolean").fillna(False).astype(bool)


def campaign_segments(inputs: ReportInputs) -> pd.DataFrame:
    """One row per segment seen anywhere (profiles, engagement, metrics, variants), in profile order:
    ``segment, segment_name, customers, arms`` (arms that received customers, canonical order)."""
    order = list(inputs.profiles["segment"].dropna())
    for frame in (inputs.funnel, inputs.metrics, inputs.variants, inputs.verdicts, inputs.retrieved):
        order += [s for s in frame["segment"].dropna().unique() if s not in order]
    names = inputs.profiles.set_index("segment")["segment_name"].to_dict() if len(inputs.profiles) else {}
    sizes = inputs.profiles.set_index("segment")["customers"].to_dict() if len(inputs.profiles) else {}
    sent = inputs.funnel.groupby("segment")["sent"].sum().to_dict() if len(inputs.funnel) else {}
    arms = (
        inputs.funnel.groupby("segment")["arm"].agg(lambda a: tuple(ordered_arms(a))).to_dict()
        if len(inputs.funnel)
        else {}
    )
    return pd.DataFrame(
        {
            "segment": order,
            "segment_name": [
                names.get(s) if not _missing(names.get(s)) else s.replace("_", " ").title() for s in order
            ],
            "customers": [int(sizes.get(s, sent.get(s, 0)) or 0) for s in order],
            "arms": [arms.get(s, ()) for s in order],
        }
    )


@dataclass(frozen=True)
class Recommendation:
    """What to send to one segment (or to everyone, for the pooled analysis), and the evidence behind it."""

    segment: str
    segment_name: str
    decision: str
    metric: str
    tone: str | None = None
    variant_id: str | None = None
    headline: str = ""
    evidence: str = ""
    caveats: tuple[str, ...] = ()
    # The experiment_metrics row the decision rests on (primary metric of the chosen or best arm), verbatim.
    figures: Mapping[str, object] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return DECISION_LABELS[self.decision].format(tone=self.tone)

    @property
    def decided(self) -> bool:
        return self.decision in (SEND, KEEP_CONTROL)


def _evidence(row: Mapping[str, object], confidence: float) -> str:
    metric = str(row["metric"])
    return (
        f"{METRIC_LABELS.get(metric, metric)} {fmt_pct(row['rate_arm'], 2)} with the {row['arm']} "
        f"message vs {fmt_pct(row['rate_control'], 2)} with control: {fmt_pp(row['abs_lift'], 2)} "
        f"({confidence:.0%} CI {fmt_ci_pp(row['abs_ci_low'], row['abs_ci_high'], 2)}"
        + ("" if _missing(row["rel_lift"]) else f"; {fmt_rel(row['rel_lift'])} relative")
        + f"), adjusted p {fmt_p(row['p_adjusted'])}, "
        f"probability of beating control {fmt_prob(row['prob_beat_control'])} "
        f"(n = {fmt_int(row['n_arm'])} vs {fmt_int(row['n_control'])})."
    )


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _power_caveat(row: Mapping[str, object]) -> str:
    """What the test could detect (its minimum detectable lift) and the sample that would settle this lift."""
    mde, lift = row.get("mde_abs"), row.get("abs_lift")
    if _missing(mde):
        return ""
    text = (
        f"With {fmt_int(row['n_arm'])} customers in the arm this test could reliably detect only lifts of "
        f"{fmt_pp(mde, 2).lstrip('+')} or more in {METRIC_LABELS.get(str(row['metric']), row['metric'])}"
    )
    if not _missing(lift) and float(lift) > 0:
        # The minimum detectable effect shrinks with 1/sqrt(n): this many times the sample detects this lift.
        factor = (float(mde) / float(lift)) ** 2
        if factor > 1.05:
            times = f"{factor:.1f}" if factor < 10 else f"{factor:,.0f}"
            text += (
                f"; confirming the observed {fmt_pp(lift, 2)} would need about "
                f"{fmt_int(factor * float(row['n_arm']))} customers per arm ({times}× as many)"
            )
    return text + "."


def _row_dict(row: pd.Series) -> dict[str, object]:
    return {key: (None if _missing(value) else value) for key, value in row.items()}


def recommend_segment(
    rows: pd.DataFrame,
    segment: str,
    segment_name: str,
    primary_metric: str = "conversion",
    arms_sent: Sequence[str] = (),
    confidence: float = 0.95,
    blocked_note: str = "",
) -> Recommendation:
    """The recommendation for one segment from its experiment_metrics rows (all arms × metrics).

    Only a significant result (``significant``: multiplicity-adjusted p below alpha) on ``primary_metric``
    yields a decision; otherwise the recommendation says the data cannot decide, shows the best estimate with
    its uncertainty and what sample would settle it.
    """
    base = {"segment": segment, "segment_name": segment_name, "metric": primary_metric}
    rows = rows.assign(significant=_bool(rows["significant"])) if len(rows) else rows
    primary = rows[rows["metric"] == primary_metric] if len(rows) else rows
    testable = primary[primary["p_value"].notna() & primary["abs_lift"].notna()] if len(primary) else primary
    if testable.empty:
        if set(arms_sent) == {CONTROL}:
            return Recommendation(
                **base,
                decision=CONTROL_ONLY,
                headline="Send the control message: no variant passed safety screening",
                evidence=blocked_note or "Every variant was blocked, so all customers got the control message.",
                caveats=("Regenerate or revise the variants to test a tone in this segment.",),
            )
        if primary.empty:
            return Recommendation(
                **base,
                decision=NO_DATA,
                headline="No experiment results for this segment yet",
                evidence=f"experiment_metrics has no {METRIC_EVENTS.get(primary_metric)} comparison for it.",
            )
        # Comparisons exist but none could be tested (e.g. no conversions at all): the data cannot decide.
        notes = "; ".join(sorted({str(n) for n in primary["note"].dropna() if n}))
        return Recommendation(
            **base,
            decision=UNDECIDED,
            headline=f"No clear winner: too few {METRIC_EVENTS.get(primary_metric)} to test",
            evidence=(
                f"No tone could be tested against control on {METRIC_EVENTS.get(primary_metric)}"
                + (f" ({notes})." if notes else ".")
            ),
        )

    winners = testable[testable["significant"] & (testable["abs_lift"] > 0)].sort_values("abs_lift", ascending=False)
    losers = testable[testable["significant"] & (testable["abs_lift"] < 0)]
    caveats: list[str] = []
    for loser in losers.itertuples():
        caveats.append(
            f"Avoid the {loser.arm} message: it lowered the {METRIC_LABELS.get(primary_metric)} "
            f"significantly ({fmt_pp(loser.abs_lift, 2)}, "
            f"CI {fmt_ci_pp(loser.abs_ci_low, loser.abs_ci_high, 2)})."
        )

    if len(winners):
        best = winners.iloc[0]
        for other in winners.iloc[1:].itertuples():
            overlap = other.abs_ci_high >= best["abs_ci_low"]
            caveats.append(
                f"The {other.arm} message also beat control ({fmt_pp(other.abs_lift, 2)})"
                + (
                    "; the intervals overlap, so which of the two is better is not certain."
                    if overlap
                    else ", but clearly by less."
                )
            )
        secondary = rows[(rows["arm"] == best["arm"]) & (rows["metric"] != primary_metric)]
        for harm in secondary[secondary["significant"] & (secondary["abs_lift"] < 0)].itertuples():
            caveats.append(
                f"It lowered the {METRIC_LABELS.get(harm.metric, harm.metric)} significantly "
                f"({fmt_pp(harm.abs_lift, 2)})."
            )
        return Recommendation(
            **base,
            decision=SEND,
            tone=str(best["arm"]),
            variant_id=None if _missing(best["variant_id"]) else str(best["variant_id"]),
            headline=f"Send the {best['arm']} message",
            evidence=_capitalized(_evidence(best, confidence)),
            caveats=tuple(caveats),
            figures=_row_dict(best),
        )

    if len(losers) == len(testable):
        least_bad = losers.sort_values("abs_lift").iloc[-1]
        return Recommendation(
            **base,
            decision=KEEP_CONTROL,
            headline="Keep the control message: every tone did worse",
            evidence="Even the best tone lost: " + _evidence(least_bad, confidence),
            caveats=tuple(caveats),
            figures=_row_dict(least_bad),
        )

    # Nothing significant on the primary metric. The best estimate is the arm most likely to beat control.
    candidates = testable[~testable["arm"].isin(losers["arm"])]
    best = candidates.sort_values(["prob_beat_control", "abs_lift"], ascending=False).iloc[0]
    funnel_order = list(BINARY_METRICS)
    earlier = funnel_order[: funnel_order.index(primary_metric)] if primary_metric in funnel_order else []
    secondary_wins = rows[
        rows["metric"].isin(earlier)
        & rows["significant"]
        & (rows["abs_lift"] > 0)
        & rows["arm"].isin(candidates["arm"])
    ]
    power_note = _power_caveat(best)
    if len(secondary_wins):
        # The stage nearest the primary metric is the most relevant signal (clicks before opens).
        secondary_wins = secondary_wins.assign(stage=secondary_wins["metric"].map(funnel_order.index))
        lean = secondary_wins.sort_values(["stage", "abs_lift"], ascending=False).iloc[0]
        lean_primary = candidates[candidates["arm"] == lean["arm"]].iloc[0]
        return Recommendation(
            **base,
            decision=LEAN,
            tone=str(lean["arm"]),
            variant_id=None if _missing(lean["variant_id"]) else str(lean["variant_id"]),
            headline=(
                f"Lean towards the {lean['arm']} message; its effect on "
                f"{METRIC_EVENTS.get(primary_metric)} is not proven"
            ),
            evidence=(
                f"It raised the {METRIC_LABELS.get(lean['metric'])} significantly: "
                f"{_evidence(lean, confidence)} "
                f"On {METRIC_EVENTS.get(primary_metric)} the difference is not significant: "
                f"{_evidence(lean_primary, confidence)}"
            ),
            caveats=tuple(c for c in [*caveats, _power_caveat(lean_primary)] if c),
            figures=_row_dict(lean_primary),
        )
    return Recommendation(
        **base,
        decision=UNDECIDED,
        tone=None,
        variant_id=None if _missing(best["variant_id"]) else str(best["variant_id"]),
        headline="No clear winner: the data cannot decide",
        evidence=(
            f"No tone changed {METRIC_EVENTS.get(primary_metric)} significantly. "
            + (
                "Best estimate: "
                if best["abs_lift"] > 0
                else "Every tone's estimate is at or below control's; the closest: "
            )
            + _evidence(best, confidence)
        ),
        caveats=tuple(c for c in [*caveats, power_note] if c),
        figures=_row_dict(best),
    )


def _blocked_note(segment: str, variants: pd.DataFrame, verdicts: pd.DataFrame) -> str:
    screened = verdicts[verdicts["segment"] == segment]
    generated = variants[variants["segment"] == segment]
    if len(screened):
        reasons = sorted({r for value in screened["reasons"] for r in _parse_json_list(value)})
        shown = "; ".join(reasons[:3]) + (" …" if len(reasons) > 3 else "")
        return (
            f"All {len(screened)} screened variant(s) were blocked ({shown or 'no reason recorded'}), "
            "so every customer got the control message and there is nothing to compare."
        )
    if len(generated):
        return (
            f"None of the {len(generated)} generated variant(s) was approved, so every customer got the "
            "control message and there is nothing to compare."
        )
    return "No variant was approved, so every customer got the control message and there is nothing to compare."


def recommend(
    inputs: ReportInputs, primary_metric: str = "conversion", confidence: float = 0.95
) -> tuple[list[Recommendation], Recommendation]:
    """Per-segment recommendations (segment order) and the pooled, all-segment one."""
    segments = campaign_segments(inputs)
    screened = inputs.verdicts.groupby("segment")["decision"].agg(lambda d: set(d.astype(str)))
    recommendations = []
    for segment in segments.itertuples():
        rows = inputs.metrics[inputs.metrics["segment"] == segment.segment]
        arms = segment.arms
        if not arms and screened.get(segment.segment) == {"blocked"}:
            arms = (CONTROL,)  # no engagement table yet, but every variant is blocked: control only
        recommendations.append(
            recommend_segment(
                rows,
                segment.segment,
                segment.segment_name,
                primary_metric,
                arms,
                confidence,
                blocked_note=_blocked_note(segment.segment, inputs.variants, inputs.verdicts),
            )
        )
    pooled_arms = tuple(ordered_arms(inputs.funnel["arm"])) if len(inputs.funnel) else ()
    overall = recommend_segment(inputs.pooled, "__pooled__", POOLED_LABEL, primary_metric, pooled_arms, confidence)
    return recommendations, overall


# ============================================================================================================
# Headline table
# ============================================================================================================

HEADLINE_COLUMNS = [
    "segment",
    "segment_name",
    "customers",
    "decision",
    "tone",
    "metric",
    "arm",
    "rate_control",
    "rate_arm",
    "abs_lift",
    "abs_ci_low",
    "abs_ci_high",
    "p_adjusted",
    "prob_beat_control",
    "power_achieved",
]


def headline_frame(recommendations: Sequence[Recommendation], segments: pd.DataFrame) -> pd.DataFrame:
    """One numeric row per recommendation; figures are the experiment_metrics row it rests on, unchanged."""
    customers = segments.set_index("segment")["customers"].to_dict() if len(segments) else {}
    records = []
    for rec in recommendations:
        figures = rec.figures
        records.append(
            {
                "segment": rec.segment,
                "segment_name": rec.segment_name,
                "customers": customers.get(
                    rec.segment, int(segments["customers"].sum()) if rec.segment == "__pooled__" else 0
                ),
                "decision": rec.decision,
                "tone": rec.tone,
                "metric": rec.metric,
                **{key: figures.get(key) for key in HEADLINE_COLUMNS[6:]},
            }
        )
    return pd.DataFrame.from_records(records, columns=HEADLINE_COLUMNS)


def format_headline(frame: pd.DataFrame, primary_metric: str, confidence: float = 0.95) -> DisplayTable:
    label = METRIC_LABELS.get(primary_metric, primary_metric).capitalize()
    rows = []
    for row in frame.itertuples():
        recommendation = DECISION_LABELS[row.decision].format(tone=row.tone)
        rows.append(
            (
                row.segment_name,
                fmt_int(row.customers),
                recommendation,
                "–"
                if _missing(row.arm)
                else f"{fmt_pct(row.rate_arm, 2)} {row.arm}\nvs {fmt_pct(row.rate_control, 2)} control",
                fmt_pp(row.abs_lift, 2),
                fmt_ci_pp(row.abs_ci_low, row.abs_ci_high, 2),
                fmt_p(row.p_adjusted),
                fmt_prob(row.prob_beat_control),
            )
        )
    columns = (
        "Segment",
        "Customers",
        "Recommendation",
        f"{label}: tone vs control",
        "Lift",
        f"{confidence:.0%} CI",
        "Adj. p",
        "P(beats control)",
    )
    return DisplayTable(columns, tuple(rows), frozenset(columns[1:2] + columns[3:]))


# ============================================================================================================
# Section tables
# ============================================================================================================


def results_table(
    metrics: pd.DataFrame,
    segments: pd.DataFrame,
    primary_metric: str = "conversion",
    confidence: float = 0.95,
    pooled: pd.DataFrame | None = None,
) -> DisplayTable:
    """One row per segment × tone: the lift of each funnel metric with its CI (significant ones emphasized),
    and the primary metric's rates and adjusted p. The numbers of the lift chart."""
    names = dict(zip(segments["segment"], segments["segment_name"], strict=True))
    frames = [metrics.assign(segment_name=metrics["segment"].map(names))]
    if pooled is not None and len(pooled):
        frames.insert(0, pooled.assign(segment_name=POOLED_LABEL))
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[frame["metric"].isin(list(BINARY_METRICS))].assign(significant=lambda f: _bool(f["significant"]))
    group_order = {name: i for i, name in enumerate([POOLED_LABEL, *segments["segment_name"]])}
    arm_order = {arm: i for i, arm in enumerate(ordered_arms(frame["arm"]))}
    pairs = frame[["segment_name", "arm"]].drop_duplicates()
    pairs = pairs.assign(_g=pairs["segment_name"].map(group_order), _a=pairs["arm"].map(arm_order)).sort_values(
        ["_g", "_a"]
    )
    indexed = frame.set_index(["segment_name", "arm", "metric"])
    columns = [
        "Segment",
        "Tone",
        *(f"{METRIC_LABELS[m].capitalize()} lift" for m in BINARY_METRICS),
        f"{METRIC_LABELS[primary_metric].capitalize()}: tone vs control",
        f"Adj. p ({METRIC_EVENTS[primary_metric]})",
    ]
    rows, strong, previous = [], set(), None
    for r, (group, arm) in enumerate(zip(pairs["segment_name"], pairs["arm"], strict=True)):
        cells = [group if group != previous else "", arm]  # the segment name once per group
        previous = group
        for m, metric in enumerate(BINARY_METRICS):
            key = (group, arm, metric)
            if key not in indexed.index:
                cells.append("–")
                continue
            row = indexed.loc[key]
            # The CI goes on a second line of the cell (numeric cells keep explicit line breaks).
            interval = fmt_ci_pp(row["abs_ci_low"], row["abs_ci_high"], 2, unit=False)
            cells.append(f"{fmt_pp(row['abs_lift'], 2)}\n{interval}")
            if row["significant"]:
                strong.add((r, 2 + m))
        key = (group, arm, primary_metric)
        if key in indexed.index:
            row = indexed.loc[key]
            cells += [
                f"{fmt_pct(row['rate_arm'], 2)} vs {fmt_pct(row['rate_control'], 2)}",
                fmt_p(row["p_adjusted"]),
            ]
        else:
            cells += ["–", "–"]
        rows.append(tuple(cells))
    return DisplayTable(tuple(columns), tuple(rows), frozenset(columns[2:]), frozenset(strong))


def funnel_table(funnel: pd.DataFrame, segments: pd.DataFrame) -> DisplayTable:
    names = dict(zip(segments["segment"], segments["segment_name"], strict=True))
    segment_order = {s: i for i, s in enumerate(segments["segment"])}
    arm_order = {a: i for i, a in enumerate(ordered_arms(funnel["arm"]))}
    frame = funnel.assign(_segment=funnel["segment"].map(segment_order), _arm=funnel["arm"].map(arm_order)).sort_values(
        ["_segment", "_arm"]
    )
    sent = frame["sent"].astype(float)
    segment_names = frame["segment"].map(names)
    display = pd.DataFrame(
        {
            "Segment": segment_names.where(segment_names.ne(segment_names.shift()), ""),  # once per segment
            "Tone": frame["arm"],
            "Sent": frame["sent"].map(fmt_int),
            "Opened": [
                f"{fmt_int(o)} ({fmt_pct(o / s if s else np.nan)})" for o, s in zip(frame["opened"], sent, strict=True)
            ],
            "Clicked": [
                f"{fmt_int(c)} ({fmt_pct(c / s if s else np.nan)})" for c, s in zip(frame["clicked"], sent, strict=True)
            ],
            "Converted": [
                f"{fmt_int(c)} ({fmt_pct(c / s if s else np.nan, 2)})"
                for c, s in zip(frame["converted"], sent, strict=True)
            ],
            "Click-to-open": [
                fmt_pct(c / o if o else np.nan) for c, o in zip(frame["clicked"], frame["opened"], strict=True)
            ],
        }
    )
    return DisplayTable.from_frame(display, numeric=["Sent", "Opened", "Clicked", "Converted", "Click-to-open"])


SRM_ALERT_P = 0.001  # the usual sample-ratio-mismatch alarm level: a real SRM gives p far below it


def experiment_health(
    funnel: pd.DataFrame,
    metrics: pd.DataFrame,
    segments: pd.DataFrame,
    primary_metric: str = "conversion",
    arm_weights: Mapping[str, float] | None = None,
) -> tuple[DisplayTable, pd.DataFrame]:
    """Sample-ratio check (observed arm sizes vs the design's weights) and power per segment.

    ``arm_weights`` are the configured arm weights; arms absent from a segment give up their weight pro rata,
    as in the assignment. ``None`` means equal weights. Returns the display table and the numeric frame.
    """
    records = []
    primary = metrics[metrics["metric"] == primary_metric]
    for segment in segments.itertuples():
        counts = funnel[funnel["segment"] == segment.segment].set_index("arm")["sent"]
        arms = ordered_arms(counts.index)
        if arm_weights is not None and all(a in arm_weights for a in arms):
            weights = {a: float(arm_weights[a]) for a in arms}
        else:
            weights = dict.fromkeys(arms, 1.0)
        chi2, p = sample_ratio_mismatch(counts.astype(int).to_dict(), weights) if len(arms) else (np.nan, np.nan)
        rows = primary[primary["segment"] == segment.segment]
        records.append(
            {
                "segment": segment.segment,
                "segment_name": segment.segment_name,
                "arm_sizes": " · ".join(f"{a} {fmt_int(counts[a])}" for a in arms) or "–",
                "srm_chi2": chi2,
                "srm_p_value": p,
                "power_min": rows["power_achieved"].min() if len(rows) else np.nan,
                "power_max": rows["power_achieved"].max() if len(rows) else np.nan,
                "mde_abs": rows["mde_abs"].median() if len(rows) else np.nan,
            }
        )
    frame = pd.DataFrame.from_records(
        records,
        columns=[
            "segment",
            "segment_name",
            "arm_sizes",
            "srm_chi2",
            "srm_p_value",
            "power_min",
            "power_max",
            "mde_abs",
        ],
    )

    def srm_verdict(p: float) -> str:
        if _missing(p):
            return "no data"
        return "MISMATCH" if p < SRM_ALERT_P else "OK"

    def power_range(low: float, high: float) -> str:
        if _missing(low):
            return "–"
        return fmt_pct(low, 0) if abs(high - low) < 0.005 else f"{fmt_pct(low, 0)}–{fmt_pct(high, 0)}"

    display = pd.DataFrame(
        {
            "Segment": frame["segment_name"],
            "Customers per arm": frame["arm_sizes"],
            "SRM p-value": frame["srm_p_value"].map(fmt_p),
            "Split": frame["srm_p_value"].map(srm_verdict),
            f"Power ({METRIC_LABELS.get(primary_metric)})": [
                power_range(lo, hi) for lo, hi in zip(frame["power_min"], frame["power_max"], strict=True)
            ],
            "Detectable lift": frame["mde_abs"].map(lambda v: fmt_pp(v, 2).lstrip("+")),
        }
    )
    return DisplayTable.from_frame(display, numeric=["SRM p-value", display.columns[4], "Detectable lift"]), frame


def profiles_table(profiles: pd.DataFrame) -> DisplayTable:
    def top_key(value: object) -> str:
        if _missing(value):
            return "–"
        mix = json.loads(value) if isinstance(value, str) else dict(value)
        if not mix:
            return "–"
        tier, share = max(mix.items(), key=lambda item: item[1])
        return f"{tier} ({fmt_pct(share, 0)})"

    def cities(value: object) -> str:
        return ", ".join(str(c) for c in _parse_json_list(value)[:2]) or "–"

    display = pd.DataFrame(
        {
            "Segment": profiles["segment_name"],
            "Intent": profiles["intent"].fillna("–").str.replace("_", " "),
            "Customers": profiles["customers"].map(fmt_int),
            "Share": profiles["share"].map(lambda v: fmt_pct(v, 0)),
            "Avg order": profiles["mean_avg_order_value"].map(lambda v: fmt_money(v, 0)),
            "Purchases": profiles["mean_purchase_frequency"].map(lambda v: "–" if _missing(v) else f"{v:.1f}"),
            "Days since engaged (median)": profiles["median_last_engagement_days"].map(fmt_int),
            "Open rate": profiles["mean_historical_open_rate"].map(lambda v: fmt_pct(v, 0)),
            "Top tier": profiles["tier_mix"].map(top_key),
            "Top cities": profiles["top_locations"].map(cities),
        }
    )
    return DisplayTable.from_frame(
        display,
        numeric=["Customers", "Share", "Avg order", "Purchases", "Days since engaged (median)", "Open rate"],
    )


def _approved_variants(variants: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """Variants that passed safety screening (the only ones sent)."""
    approved = verdicts.loc[verdicts["decision"] == "approved", ["segment", "variant_id"]]
    return variants.merge(approved, on=["segment", "variant_id"], how="inner")


def retrieval_coverage(
    retrieved: pd.DataFrame,
    variants: pd.DataFrame,
    verdicts: pd.DataFrame,
    segments: pd.DataFrame,
    library_size: int,
) -> tuple[DisplayTable, pd.DataFrame]:
    """Documents retrieved per segment and how many of them the approved messages cite.

    Also returns the long frame ``segment, document_id, title, rank, cited`` behind the coverage chart.
    """
    cited = _approved_variants(variants, verdicts)[["segment", "citations"]].copy()
    cited["document_id"] = cited["citations"].map(_parse_json_list)
    cited = cited.explode("document_id").dropna(subset=["document_id"])
    cited_pairs = set(zip(cited["segment"], cited["document_id"].astype(str), strict=True))
    long = retrieved[["segment", "document_id", "title", "category", "rank"]].copy()
    long["cited"] = [(s, str(d)) in cited_pairs for s, d in zip(long["segment"], long["document_id"], strict=True)]
    names = dict(zip(segments["segment"], segments["segment_name"], strict=True))
    records = []
    for segment in segments["segment"]:
        rows = long[long["segment"] == segment]
        records.append(
            {
                "Segment": names[segment],
                "Documents retrieved": fmt_int(rows["document_id"].nunique()),
                "Categories": ", ".join(sorted(rows["category"].dropna().astype(str).unique())) or "–",
                "Cited by approved messages": fmt_int(rows.loc[rows["cited"], "document_id"].nunique()),
                "Top document": rows.sort_values("rank")["title"].iloc[0] if len(rows) else "–",
            }
        )
    table = DisplayTable.from_frame(
        pd.DataFrame.from_records(
            records,
            columns=[
                "Segment",
                "Documents retrieved",
                "Categories",
                "Cited by approved messages",
                "Top document",
            ],
        ),
        numeric=["Documents retrieved", "Cited by approved messages"],
    )
    return table, long


def _reason_category(reason: str) -> str:
    """Which category a safety reason belongs to ("violence severity 6 >= 4" -> "violence")."""
    text = reason.strip().lower()
    if text.startswith("blocklist"):
        return "blocklist"
    if text.startswith("screening"):
        return "screening incomplete"
    for category in CATEGORIES:
        if text.startswith(category):
            return category
    return "other"


@dataclass(frozen=True)
class SafetySummary:
    screened: int
    approved: int
    blocked: int
    by_segment: DisplayTable
    by_category: DisplayTable
    by_reason: DisplayTable
    audit_records: int
    chain_ok: bool | None  # None: no audit log to verify
    chain_message: str


def safety_summary(
    verdicts: pd.DataFrame,
    audit: pd.DataFrame,
    segments: pd.DataFrame,
    audit_available: bool,
    recorded_head: tuple[int, str] | None = None,
) -> SafetySummary:
    """Screened/approved/blocked counts, blocks by category and reason, and the audit chain's status.

    ``recorded_head`` is ``(sequence, record_hash)`` of a chain head kept outside the warehouse (the safety
    stage records one in each materialization's metadata); the hash chain alone cannot reveal records deleted
    from its end, the recorded head can.
    """
    decisions = verdicts["decision"].astype(str)
    names = dict(zip(segments["segment"], segments["segment_name"], strict=True))
    by_segment = (
        verdicts.assign(approved=decisions.eq("approved"), blocked=decisions.eq("blocked"))
        .groupby("segment", sort=False)
        .agg(screened=("variant_id", "size"), approved=("approved", "sum"), blocked=("blocked", "sum"))
        .reset_index()
    )
    segment_table = DisplayTable.from_frame(
        pd.DataFrame(
            {
                "Segment": by_segment["segment"].map(lambda s: names.get(s, s)),
                "Screened": by_segment["screened"].map(fmt_int),
                "Approved": by_segment["approved"].map(fmt_int),
                "Blocked": by_segment["blocked"].map(fmt_int),
            }
        ),
        numeric=["Screened", "Approved", "Blocked"],
    )
    blocked = verdicts[decisions.eq("blocked")]
    reasons = blocked[["segment", "reasons"]].assign(reason=blocked["reasons"].map(_parse_json_list)).explode("reason")
    reasons = reasons.dropna(subset=["reason"])
    reasons["reason"] = reasons["reason"].astype(str)
    reasons["category"] = reasons["reason"].map(_reason_category)
    by_category = reasons.groupby("category").agg(variants=("segment", "size")).reset_index()
    category_table = DisplayTable.from_frame(
        pd.DataFrame(
            {
                "Category": by_category["category"].str.replace("_", " "),
                "Variants blocked": by_category["variants"].map(fmt_int),
            }
        ),
        numeric=["Variants blocked"],
    )
    by_reason = (
        reasons.groupby("reason")
        .agg(
            variants=("segment", "size"),
            segments=("segment", lambda s: ", ".join(sorted({names.get(x, x) for x in s}))),
        )
        .reset_index()
        .sort_values("variants", ascending=False)
    )
    reason_table = DisplayTable.from_frame(
        pd.DataFrame(
            {
                "Reason": by_reason["reason"],
                "Variants": by_reason["variants"].map(fmt_int),
                "Segments": by_reason["segments"],
            }
        ),
        numeric=["Variants"],
    )
    if not audit_available:
        chain_ok, message = None, "No safety audit log in the warehouse yet."
    else:
        verification = verify_audit_chain(audit)
        chain_ok, message = verification.ok, verification.message
        if chain_ok and recorded_head is not None:
            sequence, record_hash = recorded_head
            stored = audit.loc[audit["sequence"] == sequence, "record_hash"]
            if stored.empty or stored.iloc[0] != record_hash:
                chain_ok = False
                message = (
                    f"the chain head recorded by the safety stage (sequence {sequence}) is missing or "
                    "changed: records were deleted or rewritten"
                )
            else:
                message += f"; the head recorded by the safety stage (sequence {sequence}) is present"
    return SafetySummary(
        screened=len(verdicts),
        approved=int(decisions.eq("approved").sum()),
        blocked=int(decisions.eq("blocked").sum()),
        by_segment=segment_table,
        by_category=category_table,
        by_reason=reason_table,
        audit_records=len(audit),
        chain_ok=chain_ok,
        chain_message=message,
    )


def cost_table(variants: pd.DataFrame, segments: pd.DataFrame) -> tuple[DisplayTable, dict[str, float]]:
    """Generation tokens, cost and latency per segment and in total (every attempt is paid for)."""
    names = dict(zip(segments["segment"], segments["segment_name"], strict=True))
    numeric = variants.assign(
        **{
            c: pd.to_numeric(variants[c], errors="coerce")
            for c in ("attempts", "input_tokens", "output_tokens", "cost_usd", "latency_ms")
        }
    )
    grouped = (
        numeric.groupby("segment", sort=False)
        .agg(
            variants=("variant_id", "size"),
            attempts=("attempts", "sum"),
            input_tokens=("input_tokens", "sum"),
            output_tokens=("output_tokens", "sum"),
            cost_usd=("cost_usd", "sum"),
            latency_ms=("latency_ms", "mean"),
        )
        .reset_index()
    )
    totals = {
        "variants": float(len(numeric)),
        "attempts": float(numeric["attempts"].sum()),
        "input_tokens": float(numeric["input_tokens"].sum()),
        "output_tokens": float(numeric["output_tokens"].sum()),
        "cost_usd": float(numeric["cost_usd"].sum()),
        "latency_ms": float(numeric["latency_ms"].mean()) if len(numeric) else float("nan"),
    }
    total_row = pd.DataFrame([{"segment": "Total", **totals}])
    frame = pd.concat([grouped, total_row], ignore_index=True) if len(grouped) else total_row
    display = pd.DataFrame(
        {
            "Segment": frame["segment"].map(lambda s: names.get(s, s)),
            "Variants": frame["variants"].map(fmt_int),
            "Attempts": frame["attempts"].map(fmt_int),
            "Input tokens": frame["input_tokens"].map(fmt_int),
            "Output tokens": frame["output_tokens"].map(fmt_int),
            "Cost": frame["cost_usd"].map(lambda v: fmt_money(v, 4)),
            "Mean latency": frame["latency_ms"].map(lambda v: "–" if _missing(v) else f"{v / 1000:.2f} s"),
        }
    )
    return DisplayTable.from_frame(display, numeric=list(display.columns[1:])), totals


@dataclass(frozen=True)
class Citation:
    document_id: str
    title: str
    source_url: str | None


@dataclass(frozen=True)
class ExampleMessage:
    segment_name: str
    tone: str
    status: str  # why this message is shown: proven winner, leading but unproven, ...
    subject: str
    body: str
    citations: tuple[Citation, ...]


def example_messages(
    recommendations: Sequence[Recommendation], variants: pd.DataFrame, content: pd.DataFrame
) -> list[ExampleMessage]:
    """Each segment's message to send (or best estimate, labelled so), citations resolved to titles."""
    titles = content.drop_duplicates("document_id").set_index("document_id")
    status = {
        SEND: "Winner: beat control significantly",
        LEAN: "Leading, not proven on the primary metric",
        UNDECIDED: "Best estimate only: not significantly better than control",
        KEEP_CONTROL: "Did worse than control: shown for reference",
    }
    examples = []
    for rec in recommendations:
        if rec.decision not in status:
            continue
        tone = rec.tone or (str(rec.figures.get("arm")) if rec.figures.get("arm") else None)
        rows = variants[(variants["segment"] == rec.segment) & (variants["tone"] == tone)]
        if rec.variant_id is not None:
            rows = rows[rows["variant_id"] == rec.variant_id] if (rows["variant_id"] == rec.variant_id).any() else rows
        if rows.empty:
            continue
        row = rows.iloc[0]
        citations = tuple(
            Citation(
                document_id=str(doc),
                title=str(titles.at[doc, "title"]) if doc in titles.index else f"{doc} (not in the content index)",
                source_url=None
                if doc not in titles.index or _missing(titles.at[doc, "source_url"])
                else str(titles.at[doc, "source_url"]),
            )
            for doc in _parse_json_list(row["citations"])
        )
        examples.append(
            ExampleMessage(
                rec.segment_name,
                str(tone),
                status[rec.decision],
                str(row["subject"]),
                str(row["body"]),
                citations,
            )
        )
    return examples


@dataclass(frozen=True)
class PersonalizedExample:
    """One customer's message as sent: the segment's approved variant opened with their own line."""

    customer: str  # pseudonym (hash_customer_id): the report is shared more widely than the warehouse
    tone: str
    subject: str
    text: str | None  # None when the approved body is not in the warehouse


@dataclass(frozen=True)
class PersonalizedSegment:
    segment_name: str
    sample: DisplayTable  # sampled customers: pseudonym, tier, city, recency, tone, opening line
    example: PersonalizedExample | None


@dataclass(frozen=True)
class PersonalizedMessages:
    """What the report shows of personalized_messages: coverage per segment and a sample of customers."""

    available: bool
    messages: int
    coverage: DisplayTable
    segments: tuple[PersonalizedSegment, ...]
    incomplete: tuple[str, ...]  # segment names whose stored messages do not match the treated customers


def _days_ago(days: object) -> str:
    if _missing(days):
        return ""
    days = int(days)  # type: ignore[call-overload]
    return "today" if days == 0 else "1 day ago" if days == 1 else f"{days} days ago"


def personalized_messages(
    summary: pd.DataFrame,
    sample: pd.DataFrame,
    funnel: pd.DataFrame,
    segments: pd.DataFrame,
    preferred_tones: Mapping[str, str] | None = None,
    available: bool = True,
) -> PersonalizedMessages:
    """Coverage of personalized_messages against the experiment's treated customers (engagement rows outside
    control), and per segment the sampled customers with their opening lines and one message in full: the
    customer of ``preferred_tones[segment]`` (the recommended tone) if sampled, else the first one."""
    preferred_tones = preferred_tones or {}
    arms = funnel.assign(control=funnel["arm"].eq(CONTROL), sent=funnel["sent"].astype("int64"))
    treated = arms[~arms["control"]].groupby("segment")["sent"].sum()
    control = arms[arms["control"]].groupby("segment")["sent"].sum()
    stored = summary.set_index("segment")
    names = dict(zip(segments["segment"], segments["segment_name"], strict=True))
    order = list(segments["segment"]) + [s for s in stored.index if s not in names]

    rows, incomplete = [], []
    for segment in order:
        expected, have = int(treated.get(segment, 0)), int(stored["messages"].get(segment, 0))
        if not expected and not have:
            status = "no tone arm: control only" if segment in control.index else "no experiment data yet"
        elif not available:
            status = "not built yet"
        elif have == expected:
            status = "every treated customer"
        else:
            status = f"{fmt_int(have)} stored for {fmt_int(expected)} treated: re-materialize this segment"
            incomplete.append(names.get(segment, segment))
        rows.append(
            {
                "Segment": names.get(segment, segment),
                "Treated customers": fmt_int(expected),
                "Messages": fmt_int(have),
                "Distinct opening lines": fmt_int(stored["distinct_opening_lines"].get(segment, 0)),
                "Control (regular newsletter)": fmt_int(control.get(segment, 0)),
                "Coverage": status,
            }
        )
    coverage = DisplayTable.from_frame(
        pd.DataFrame(rows, columns=["Segment", "Treated customers", "Messages", "Distinct opening lines",
                                    "Control (regular newsletter)", "Coverage"]),
        numeric=["Treated customers", "Messages", "Distinct opening lines", "Control (regular newsletter)"],
    )  # fmt: skip

    sampled = []
    for segment in order:
        rows = sample[sample["segment"] == segment]
        if rows.empty:
            continue
        pseudonyms = rows["customer_id"].map(hash_customer_id)
        table = DisplayTable.from_frame(
            pd.DataFrame(
                {
                    "Customer": pseudonyms,
                    "Tier": rows["tier"].map(lambda v: "" if _missing(v) else str(v)),
                    "City": rows["location"].map(lambda v: "" if _missing(v) else str(v)),
                    "Last engaged": rows["last_engagement_days"].map(_days_ago),
                    "Tone": rows["arm"],
                    "Opening line": rows["opening_line"],
                }
            ),
            numeric=["Last engaged"],
        )
        preferred = rows[rows["arm"] == preferred_tones.get(segment)]
        first = (preferred if len(preferred) else rows).iloc[0]
        body = first["body"]
        example = PersonalizedExample(
            customer=hash_customer_id(first["customer_id"]),
            tone=str(first["arm"]),
            subject=str(first["subject"]),
            text=None if _missing(body) else render_message(str(first["opening_line"]), str(body)),
        )
        sampled.append(PersonalizedSegment(names.get(segment, segment), table, example))
    return PersonalizedMessages(
        available=available,
        messages=int(summary["messages"].sum()) if len(summary) else 0,
        coverage=coverage,
        segments=tuple(sampled),
        incomplete=tuple(incomplete),
    )


# ============================================================================================================
# Feature attribution
# ============================================================================================================

FEATURE_LABELS = {
    "age": "age",
    "purchase_frequency": "purchase frequency",
    "avg_order_value": "average order value",
    "last_engagement_days": "days since last engagement",
    "historical_open_rate": "historical open rate",
    "historical_click_rate": "historical click rate",
}
MIN_EVENTS_PER_PARAMETER = 10  # the usual events-per-variable rule for stable logistic-regression estimates
OUTCOME_FLAGS = {"open": "opened", "click": "clicked", "conversion": "converted"}


def _feature_step(feature: str, sd: float) -> str:
    """One standard deviation of a feature in its own units ("+13 years", "+$48", "+12 points")."""
    if feature == "age":
        return f"{sd:.0f} years"
    if feature == "avg_order_value":
        return f"${sd:,.0f}"
    if feature == "last_engagement_days":
        return f"{sd:.0f} days"
    if feature == "purchase_frequency":
        return f"{sd:.1f} purchases"
    if feature.startswith("historical_"):
        return f"{sd * 100:.1f} percentage points"
    return f"{sd:.3g}"


@dataclass(frozen=True)
class Attribution:
    """Customer attributes that drive response (main effects) and the messages' lift (attribute × message)."""

    outcome: str | None  # the metric modelled, or None when no model could be fitted
    requested_outcome: str
    rows: int
    events: int
    terms: pd.DataFrame  # TERM_COLUMNS; effect is "response" (main effect) or "uplift" (attribute × message)
    reading: tuple[str, ...]
    note: str = ""

    @property
    def fitted(self) -> bool:
        return self.outcome is not None

    @property
    def outcome_events(self) -> str:
        return METRIC_EVENTS.get(self.outcome or self.requested_outcome, "events")


TERM_COLUMNS = [
    "term",
    "feature",
    "label",
    "effect",
    "odds_ratio",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "significant",
    "step",
]


def _design(sample: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, dict[str, object]]]:
    """Design matrix: intercept, standardized attributes, tier dummies, tone dummies and attribute × treated.

    The treated indicator is centred, so each attribute's main effect is its association with response for the
    average customer of this experiment, not for the control group alone.
    """
    design = pd.DataFrame({"const": 1.0}, index=sample.index)
    meta: dict[str, dict[str, object]] = {}
    numeric = []
    for feature in ATTRIBUTION_FEATURES:
        values = pd.to_numeric(sample[feature], errors="coerce").astype(float)
        sd = float(values.std())
        if not np.isfinite(sd) or sd == 0:
            continue  # a constant attribute explains nothing and would make the model singular
        design[feature] = (values - values.mean()) / sd
        meta[feature] = {
            "feature": feature,
            "label": FEATURE_LABELS[feature],
            "effect": "response",
            "step": _feature_step(feature, sd),
        }
        numeric.append(feature)
    tiers = sample["tier"].astype(str)
    counts = tiers.value_counts()
    reference = counts.index[0] if len(counts) else None
    for tier in sorted(counts.index[1:]):
        term = f"tier[{tier}]"
        design[term] = (tiers == tier).astype(float)
        meta[term] = {
            "feature": "tier",
            "label": f"tier {tier} (vs {reference})",
            "effect": "response",
            "step": f"{tier} instead of {reference}",
        }
    arms = ordered_arms(sample["arm"].astype(str))
    for arm in [a for a in arms if a != CONTROL]:
        design[f"arm[{arm}]"] = (sample["arm"] == arm).astype(float)
    treated = (sample["arm"] != CONTROL).astype(float)
    if 0 < treated.mean() < 1:
        centred = treated - treated.mean()
        for feature in numeric:
            term = f"{feature}:message"
            design[term] = design[feature] * centred
            meta[term] = {**meta[feature], "effect": "uplift"}
    return design, meta


def feature_attribution(
    sample: pd.DataFrame, outcome_metric: str = "conversion", confidence: float = 0.95
) -> Attribution:
    """Logistic regression of an engagement flag on customer attributes, tone and attribute × message.

    Odds ratios are per standard deviation of each attribute. If the requested outcome has too few events for
    a stable model (fewer than 10 per parameter) the next earlier funnel stage is used, and the note says so.
    p-values are Holm-adjusted within response effects and within uplift effects.
    """
    empty = pd.DataFrame(columns=TERM_COLUMNS)
    if outcome_metric not in OUTCOME_FLAGS:
        raise ValueError(f"attribution outcome must be one of {sorted(OUTCOME_FLAGS)}, got {outcome_metric!r}")
    if sample.empty:
        return Attribution(None, outcome_metric, 0, 0, empty, (), "No engagement joined with customer attributes yet.")
    sample = sample.dropna(subset=["arm", *ATTRIBUTION_FEATURES]).reset_index(drop=True)
    design, meta = _design(sample)
    parameters = design.shape[1] - 1
    funnel = list(OUTCOME_FLAGS)
    tried = []
    for metric in reversed(funnel[: funnel.index(outcome_metric) + 1]):
        outcome = sample[OUTCOME_FLAGS[metric]].astype(float)
        events = int(min(outcome.sum(), len(outcome) - outcome.sum()))  # the rarer class limits the information
        needed = MIN_EVENTS_PER_PARAMETER * parameters
        if events < needed:
            tried.append(f"{METRIC_EVENTS[metric]} ({events:,} < {needed:,} needed)")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", ConvergenceWarning)
                result = sm.Logit(outcome, design).fit(disp=0, maxiter=100)
        except (PerfectSeparationError, ConvergenceWarning, np.linalg.LinAlgError) as error:
            tried.append(f"{METRIC_EVENTS[metric]} (model did not converge: {type(error).__name__})")
            continue
        note = ""
        if tried:
            note = (
                f"Too few events for a reliable model of {', '.join(tried)}; "
                f"{METRIC_EVENTS[metric]} are modelled instead."
            )
        return _attribution_result(
            result, meta, metric, outcome_metric, len(sample), int(outcome.sum()), confidence, note
        )
    return Attribution(
        None,
        outcome_metric,
        len(sample),
        0,
        empty,
        (),
        f"Too few events for a reliable model ({'; '.join(tried)}); a larger campaign is needed.",
    )


def _attribution_result(
    result, meta, metric: str, requested: str, rows: int, events: int, confidence: float, note: str
) -> Attribution:
    interval = np.asarray(result.conf_int(alpha=1 - confidence))
    names = list(result.params.index)
    records = []
    for i, term in enumerate(names):
        if term not in meta:
            continue  # intercept and tone dummies: the lift itself is reported from experiment_metrics
        records.append(
            {
                "term": term,
                **meta[term],
                "odds_ratio": float(np.exp(result.params.iloc[i])),
                "ci_low": float(np.exp(interval[i, 0])),
                "ci_high": float(np.exp(interval[i, 1])),
                "p_value": float(result.pvalues.iloc[i]),
            }
        )
    terms = pd.DataFrame.from_records(records)
    # Holm within each family (response, uplift effects); same as multipletests, without its gc.collect().
    terms["p_adjusted"] = adjust_p_values(terms["p_value"], terms["effect"], "holm")
    terms["significant"] = terms["p_adjusted"] < 1 - confidence
    terms = terms[TERM_COLUMNS]
    return Attribution(metric, requested, rows, events, terms, _attribution_reading(terms, metric, confidence), note)


def _attribution_reading(terms: pd.DataFrame, metric: str, confidence: float) -> tuple[str, ...]:
    event = METRIC_VERBS[metric]
    sentences = []
    response = terms[(terms["effect"] == "response") & terms["significant"]]
    response = response.assign(strength=np.abs(np.log(response["odds_ratio"]))).sort_values("strength", ascending=False)
    for row in response.head(3).itertuples():
        direction = "more" if row.odds_ratio > 1 else "less"
        if row.feature == "tier":
            sentences.append(
                f"Customers in {row.label} are {direction} likely to {event}: odds ×{row.odds_ratio:.2f} "
                f"({confidence:.0%} CI {row.ci_low:.2f}–{row.ci_high:.2f})."
            )
        else:
            sentences.append(
                f"Customers with a higher {row.label} are {direction} likely to {event}: "
                f"each +{row.step} multiplies the odds by {row.odds_ratio:.2f} "
                f"({confidence:.0%} CI {row.ci_low:.2f}–{row.ci_high:.2f})."
            )
    if response.empty:
        sentences.append(f"No customer attribute is clearly associated with the chance to {event}.")
    uplift_all = terms[terms["effect"] == "uplift"]
    uplift = uplift_all[uplift_all["significant"]]
    for row in uplift.itertuples():
        direction = "larger" if row.odds_ratio > 1 else "smaller"
        sentences.append(
            f"The new messages' lift is {direction} for customers with a higher {row.label}: "
            f"×{row.odds_ratio:.2f} on the odds ratio per +{row.step} "
            f"({confidence:.0%} CI {row.ci_low:.2f}–{row.ci_high:.2f})."
        )
    if uplift_all.empty:
        sentences.append("No tone was sent in the sample, so attribute × message effects cannot be estimated.")
    elif uplift.empty:
        sentences.append(
            "No attribute detectably changes the messages' lift: the tones work about equally across these "
            "customer types (no attribute × message interaction is significant after Holm adjustment)."
        )
    return tuple(sentences)


# ============================================================================================================
# Charts (matplotlib figures; the report embeds them as base64 PNG)
# ============================================================================================================

# Charts are built on matplotlib's object API (Figure, not pyplot): no global backend or figure registry is
# touched, so rendering is headless (Agg) in Dagster and leaves a notebook's own matplotlib set-up alone.
CHART_STYLE = {
    "font.family": ["Liberation Sans", "DejaVu Sans"],  # the report's body font when installed
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
}


def _styled(chart):
    """Build the chart under the report's rc style without changing the caller's global rcParams."""

    @functools.wraps(chart)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(CHART_STYLE):
            return chart(*args, **kwargs)

    return wrapper


def tone_color(arm: str, arms: Sequence[str] = ()) -> str:
    if arm in TONE_COLORS:
        return TONE_COLORS[arm]
    extras = [a for a in arms if a not in TONE_COLORS]
    return EXTRA_COLORS[extras.index(arm) % len(EXTRA_COLORS)] if arm in extras else EXTRA_COLORS[0]


def figure_png(figure: Figure, dpi: int = 170) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.04)
    return buffer.getvalue()


def figure_to_data_uri(figure: Figure, dpi: int = 170) -> str:
    """PNG data URI of ``figure``, for a self-contained HTML page."""
    return "data:image/png;base64," + base64.b64encode(figure_png(figure, dpi)).decode("ascii")


def _plain(text: object) -> str:
    """Text for a matplotlib label: escape "$" so prices in titles are not read as mathtext."""
    return str(text).replace("$", r"\$")


@_styled
def _message_figure(text: str, size: tuple[float, float] = (7.0, 1.2)) -> Figure:
    figure = Figure(figsize=size)
    axis = figure.subplots()
    axis.axis("off")
    axis.text(0.5, 0.5, text, ha="center", va="center", color="#666666")
    return figure


@_styled
def lift_chart(metrics: pd.DataFrame, pooled: pd.DataFrame, segments: pd.DataFrame, confidence: float = 0.95) -> Figure:
    """Forest plot: each tone's lift over control in percentage points with its CI, per segment and pooled;
    one panel per funnel metric. Filled markers are significant after multiplicity adjustment."""
    frames = [pooled.assign(segment_name=POOLED_LABEL)] if len(pooled) else []
    names = dict(zip(segments["segment"], segments["segment_name"], strict=True))
    frames.append(metrics.assign(segment_name=metrics["segment"].map(names)))
    data = pd.concat(frames, ignore_index=True)
    data = data[data["metric"].isin(list(BINARY_METRICS))]
    if data.empty:
        return _message_figure("No experiment metrics yet.")
    groups = ([POOLED_LABEL] if len(pooled) else []) + list(segments["segment_name"])
    arms = [a for a in ordered_arms(data["arm"]) if a != CONTROL]
    step = 0.8 / max(len(arms), 1)
    offsets = {arm: 0.4 - step / 2 - i * step for i, arm in enumerate(arms)}
    significant = _bool(data["significant"])
    height = 1.2 + 0.5 * len(groups) * max(1.0, len(arms) / 2.5)
    figure = Figure(figsize=(7.2, height), layout="constrained")
    axes = figure.subplots(1, len(BINARY_METRICS), sharey=True)
    positions = {group: len(groups) - 1 - i for i, group in enumerate(groups)}
    for axis, metric in zip(np.atleast_1d(axes), BINARY_METRICS, strict=True):
        rows = data[data["metric"] == metric]
        for arm in arms:
            part = rows[(rows["arm"] == arm) & rows["abs_lift"].notna()]
            y = part["segment_name"].map(positions).to_numpy(float) + offsets[arm]
            x = part["abs_lift"].to_numpy(float) * 100
            low = x - part["abs_ci_low"].to_numpy(float) * 100
            high = part["abs_ci_high"].to_numpy(float) * 100 - x
            color = tone_color(arm, arms)
            axis.errorbar(x, y, xerr=np.vstack([low, high]), fmt="none", ecolor=color, elinewidth=1.2, capsize=2)
            sig = significant[part.index].to_numpy()
            axis.scatter(x[sig], y[sig], color=color, s=22, zorder=3, label=arm if metric == "open" else None)
            axis.scatter(x[~sig], y[~sig], facecolor="white", edgecolor=color, s=22, zorder=3, linewidth=1.2)
        for group in groups:
            if not (rows["segment_name"] == group).any():
                axis.text(
                    0.5,
                    positions[group],
                    "no comparison",
                    transform=axis.get_yaxis_transform(),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="#999999",
                )
        axis.axvline(0, color="#333333", linewidth=0.8)
        axis.set_title(METRIC_LABELS[metric].capitalize())
        axis.grid(axis="y", visible=False)
    first = np.atleast_1d(axes)[0]
    first.set_yticks(list(positions.values()), [_plain(g) for g in positions])
    first.set_ylim(-0.6, len(groups) - 0.4)
    handles = [Line2D([], [], marker="o", linestyle="", color=tone_color(a, arms), label=a) for a in arms]
    handles += [
        Line2D([], [], marker="o", linestyle="", color="#555555", label="significant"),
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markerfacecolor="white",
            color="#555555",
            label="not significant",
        ),
    ]
    figure.supxlabel(f"Lift over control in percentage points, with {confidence:.0%} confidence interval", fontsize=8.5)
    figure.legend(handles=handles, loc="outside upper center", ncol=len(handles))
    return figure


@_styled
def funnel_chart(funnel: pd.DataFrame, segments: pd.DataFrame) -> Figure:
    """Open, click and conversion rate (% of customers sent to) per tone, one panel per funnel stage."""
    if funnel.empty:
        return _message_figure("No engagement data yet.")
    names = dict(zip(segments["segment"], segments["segment_name"], strict=True))
    order = [s for s in segments["segment"] if s in set(funnel["segment"])]
    arms = ordered_arms(funnel["arm"])
    width = 0.8 / len(arms)
    figure = Figure(figsize=(7.2, 4.3), layout="constrained")
    axes = figure.subplots(3, 1, sharex=True)
    for axis, (metric, flag) in zip(axes, BINARY_METRICS.items(), strict=True):
        for i, arm in enumerate(arms):
            part = funnel[funnel["arm"] == arm].set_index("segment").reindex(order)
            rate = part[flag].astype(float) / part["sent"].astype(float) * 100
            x = np.arange(len(order)) - 0.4 + width * (i + 0.5)
            bars = axis.bar(x, rate.to_numpy(), width=width * 0.92, color=tone_color(arm, arms), label=arm)
            axis.bar_label(bars, labels=["" if np.isnan(v) else f"{v:.1f}" for v in rate], fontsize=6, padding=1)
        axis.set_ylabel("% of customers sent to")
        axis.set_title(METRIC_LABELS[metric].capitalize())
        axis.grid(axis="x", visible=False)
        axis.margins(y=0.15)
    axes[-1].set_xticks(np.arange(len(order)), [_plain(names.get(s, s)) for s in order])
    axes[0].legend(ncol=len(arms), loc="lower center", bbox_to_anchor=(0.5, 1.12), fontsize=7.5)
    return figure


@_styled
def coverage_chart(coverage: pd.DataFrame, segments: pd.DataFrame, max_documents: int = 30) -> Figure:
    """Which documents each segment retrieved (cell = rank) and which ones its approved messages cite."""
    if coverage.empty:
        return _message_figure("No retrieved content yet.")
    order = [s for s in segments["segment"] if s in set(coverage["segment"])]
    usage = coverage.groupby(["document_id", "title"]).agg(n=("segment", "nunique"), best=("rank", "min")).reset_index()
    usage = usage.sort_values(["n", "best", "title"], ascending=[False, True, True]).head(max_documents)
    documents = list(usage["document_id"])
    labels = [_plain(t if len(t) <= 52 else t[:50] + "…") for t in usage["title"].astype(str)]
    grid = np.full((len(documents), len(order)), np.nan)
    cited = np.zeros_like(grid, dtype=bool)
    row_of = {d: i for i, d in enumerate(documents)}
    col_of = {s: j for j, s in enumerate(order)}
    for row in coverage.itertuples():
        if row.document_id in row_of and row.segment in col_of:
            grid[row_of[row.document_id], col_of[row.segment]] = row.rank
            cited[row_of[row.document_id], col_of[row.segment]] = row.cited
    figure = Figure(figsize=(7.2, 0.9 + 0.24 * len(documents)), layout="constrained")
    axis = figure.subplots()
    retrieved_only = np.where(~np.isnan(grid) & ~cited, 1.0, np.nan)
    cited_cells = np.where(cited, 1.0, np.nan)
    axis.imshow(retrieved_only, cmap=ListedColormap(["#cfe3ea"]), aspect="auto")
    axis.imshow(cited_cells, cmap=ListedColormap(["#00798c"]), aspect="auto")
    for (i, j), rank in np.ndenumerate(grid):
        if not np.isnan(rank):
            axis.text(
                j,
                i,
                f"{int(rank)}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if cited[i, j] else "#1b3a44",
            )
    names = dict(zip(segments["segment"], segments["segment_name"], strict=True))
    axis.set_xticks(range(len(order)), [textwrap.fill(_plain(names.get(s, s)), 12) for s in order])
    axis.xaxis.tick_top()
    axis.set_yticks(range(len(documents)), labels)
    axis.grid(False)
    axis.set_xticks(np.arange(-0.5, len(order)), minor=True)
    axis.set_yticks(np.arange(-0.5, len(documents)), minor=True)
    axis.grid(which="minor", color="white", linewidth=1.5)
    axis.tick_params(which="both", length=0)
    handles = [
        Patch(color="#00798c", label="retrieved and cited by an approved message"),
        Patch(color="#cfe3ea", label="retrieved only (number = retrieval rank)"),
    ]
    axis.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.3, -0.01), ncol=2, fontsize=7)
    return figure


@_styled
def attribution_chart(attribution: Attribution, confidence: float = 0.95) -> Figure:
    """Odds ratios with CIs: attributes that drive response (left), that change the messages' lift (right)."""
    if not attribution.fitted or attribution.terms.empty:
        return _message_figure(attribution.note or "No attribution model.")
    effects = [
        ("response", f"Who {METRIC_VERBS[attribution.outcome]}s"),
        ("uplift", "Who responds more to the new messages"),
    ]
    effects = [(e, t) for e, t in effects if (attribution.terms["effect"] == e).any()]
    response_terms = attribution.terms[attribution.terms["effect"] == "response"]
    rows = len(response_terms)
    figure = Figure(figsize=(7.2, 1.0 + 0.22 * rows), layout="constrained")
    axes = figure.subplots(1, len(effects))
    for axis, (effect, title) in zip(np.atleast_1d(axes), effects, strict=True):
        terms = attribution.terms[attribution.terms["effect"] == effect].iloc[::-1]
        # Top-aligned in both panels, so "age × message" sits level with "age".
        y = np.arange(len(terms)) + rows - len(terms)
        ratio = terms["odds_ratio"].to_numpy(float)
        err = np.vstack([ratio - terms["ci_low"].to_numpy(float), terms["ci_high"].to_numpy(float) - ratio])
        sig = terms["significant"].to_numpy(bool)
        colors = np.where(ratio >= 1, "#00798c", "#d1495b")
        axis.errorbar(ratio, y, xerr=err, fmt="none", ecolor="#777777", elinewidth=1, capsize=2)
        axis.scatter(ratio[sig], y[sig], color=colors[sig], s=26, zorder=3)
        axis.scatter(ratio[~sig], y[~sig], facecolor="white", edgecolor=colors[~sig], s=26, zorder=3, linewidth=1.2)
        axis.axvline(1, color="#333333", linewidth=0.8)
        labels = [_plain(label) if effect == "response" else f"{_plain(label)} × message" for label in terms["label"]]
        axis.set_yticks(y, labels)
        axis.set_ylim(-0.6, rows - 0.4)  # the same row spacing in both panels
        axis.set_title(title)
        axis.set_xlabel("Odds ratio per +1 SD (1 = no effect)")
        axis.grid(axis="y", visible=False)
    figure.suptitle(
        f"What drives {METRIC_EVENTS[attribution.outcome]}: odds ratios with {confidence:.0%} confidence "
        "intervals (filled = significant after Holm adjustment)",
        fontsize=8.5,
    )
    return figure


# ============================================================================================================
# Assembling and rendering
# ============================================================================================================


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
    charts: dict[str, str]  # name -> PNG data URI
    tables: dict[str, DisplayTable]
    safety: SafetySummary
    cost_totals: dict[str, float]
    attribution: Attribution
    examples: list[ExampleMessage]
    personalized: PersonalizedMessages
    facts: dict[str, object]  # small figures quoted in the text (customers, segments, missing tables, ...)

    def headline_markdown(self) -> str:
        return self.headline_table.to_markdown()


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
) -> Report:
    """Every number, table, chart and sentence of the report, from the warehouse's tables.

    ``confidence`` (1 - alpha), ``power``, ``correction`` and ``arm_weights`` are the experiment's settings:
    the report states them and checks the split against the weights; the statistics come from
    experiment_metrics.
    ``recorded_audit_head`` is the safety audit head kept outside the warehouse (see ``safety_summary``)."""
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
    attribution = feature_attribution(inputs.attribution_sample, attribution_metric, confidence)
    charts = {
        "lift": figure_to_data_uri(lift_chart(inputs.metrics, inputs.pooled, segments, confidence)),
        "funnel": figure_to_data_uri(funnel_chart(inputs.funnel, segments)),
        "coverage": figure_to_data_uri(coverage_chart(coverage, segments)),
        "attribution": figure_to_data_uri(attribution_chart(attribution, confidence)),
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
    facts = {
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
    return Report(
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
        charts=charts,
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
        ),
        facts=facts,
    )


def _environment() -> jinja2.Environment:
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


def execute_notebook(
    template: Path, output: Path, parameters: Mapping[str, object], timeout_seconds: int = 600
) -> Path:
    """Execute ``template`` with ``parameters`` injected after its cell tagged "parameters" (papermill's
    convention) and save the executed notebook to ``output``. A failing cell raises nbclient's
    CellExecutionError naming the cell; the partly executed notebook is saved first, for debugging."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(template, as_version=4)
    tagged = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.get("metadata", {}).get("tags", [])]
    source = "# Parameters injected for this run\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    injected = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(tagged[0] + 1 if tagged else 0, injected)
    notebook.metadata["kernelspec"] = {
        "name": NOTEBOOK_KERNEL,
        "display_name": "Python 3",
        "language": "python",
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(
        notebook,
        kernel_name=NOTEBOOK_KERNEL,
        timeout=timeout_seconds,
        resources={"metadata": {"path": str(output.parent)}},
        # The kernel listens on loopback only: its "running over TCP without encryption" warning is noise.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    try:
        client.execute()
    finally:
        nbformat.write(notebook, output)
    return output
