"""Recommendations that follow the experiment statistics: what to send to each segment (and to everyone),
the decisions and their labels, and the headline table built from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import pandas as pd

from personalization_assets.lib.assignment import ordered_arms
from personalization_assets.lib.reporting.formatting import (
    METRIC_EVENTS,
    METRIC_LABELS,
    POOLED_LABEL,
    DisplayTable,
    _bool,
    _missing,
    _number,
    _parse_json_list,
    fmt_ci_pp,
    fmt_int,
    fmt_p,
    fmt_pct,
    fmt_pp,
    fmt_prob,
    fmt_rel,
)
from personalization_assets.lib.reporting.inputs import ReportInputs, campaign_segments
from personalization_assets.lib.statistics import CONTROL

# Decisions, from strongest evidence to none.
SEND = "send"  # a tone beat control significantly on the primary metric
# Not produced any more: secondary metrics are tested only behind a significant primary (docs/statistics.md);
# kept for the report's legend.
LEAN = "lean"
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


class _SegmentFields(TypedDict):
    """The Recommendation fields every decision for one segment shares."""

    segment: str
    segment_name: str
    metric: str


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
    """What the decision rule could detect (its minimum detectable lift at the level it tests this comparison)
    and the sample per arm that would detect the observed lift (lib.statistics computes both)."""
    mde, lift = row.get("mde_abs"), row.get("abs_lift")
    if _missing(mde):
        return ""
    level = _number(row.get("alpha_decision"))
    text = (
        f"With {fmt_int(row['n_arm'])} customers in the arm, the campaign's decision rule"
        + ("" if level is None else f" (this comparison tested at {level:.2g})")
        + f" detects only lifts of {fmt_pp(mde, 2).lstrip('+')} or more in "
        f"{METRIC_LABELS.get(str(row['metric']), row['metric'])} with the planned power"
    )
    lift_number, needed, n_arm = _number(lift), _number(row.get("n_needed")), _number(row["n_arm"])
    if (
        lift_number is not None
        and lift_number > 0
        and needed is not None
        and n_arm is not None
        and needed > 1.05 * n_arm
    ):
        factor = needed / n_arm
        times = f"{factor:.1f}" if factor < 10 else f"{factor:,.0f}"
        text += (
            f"; confirming the observed {fmt_pp(lift, 2)} would need about "
            f"{fmt_int(needed)} customers per arm ({times}× as many)"
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

    Only a significant result (``significant``: p adjusted across the campaign below alpha) on
    ``primary_metric`` yields a decision; otherwise the recommendation says the data cannot decide, shows the
    best estimate with its uncertainty and what sample would settle it.
    """
    base: _SegmentFields = {"segment": segment, "segment_name": segment_name, "metric": primary_metric}
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
    # (Secondary metrics are gated behind the primary one, so none of them can be significant here: no "lean".)
    candidates = testable[~testable["arm"].isin(losers["arm"])]
    best = candidates.sort_values(["prob_beat_control", "abs_lift"], ascending=False).iloc[0]
    power_note = _power_caveat(best)
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
