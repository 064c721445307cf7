"""Experimentation stage, pure logic next to the statistics: the variant gate, arm weights, the checks the
assets evaluate on the frames they are about to store, and the metrics' presentation.

Check functions return a `CheckOutcome` (passed, description, metadata with plain values and frames); the
stage turns it into Dagster's AssetCheckResult.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from personalization_assets.lib.assignment import check_balance, effective_weights
from personalization_assets.lib.customers import same_id_set
from personalization_assets.lib.frames import ARROW_STRING, distinct_count
from personalization_assets.lib.privacy import hash_customer_id
from personalization_assets.lib.simulation import ENGAGEMENT_FLAGS
from personalization_assets.lib.statistics import (
    BINARY_METRICS,
    CONTROL,
    METRICS_COLUMNS,
    REVENUE_METRIC,
    deal_deviation,
    retention_p_value,
    sample_ratio_mismatch,
)

STATUS_VALID = "valid"
DECISION_APPROVED = "approved"
RETENTION_ALERT_P = 0.001  # lost rows allowed (missing: drop) only while every arm keeps the same share
GATE_COLUMNS = ["source_variant_id", "variant_id", "tone", "subject", "status", "decision", "approved", "reason"]
_METRIC_TEXT = ["segment", "arm", "variant_id", "metric", "test", "note"]
_METRIC_INTEGERS = ["n_segments", "n_control", "n_arm", "looks"]
# The dtype of every metrics column, the same for every partition (see typed_metrics).
METRICS_DTYPES: dict[str, object] = {
    **{column: "float64" for column in METRICS_COLUMNS},
    **dict.fromkeys(_METRIC_TEXT, ARROW_STRING),
    **dict.fromkeys(_METRIC_INTEGERS, "int64"),
    "significant": "bool",
}


@dataclass(frozen=True)
class CheckOutcome:
    """A check's verdict on a frame: metadata values are numbers, strings or frames (shown as tables)."""

    passed: bool
    description: str
    metadata: Mapping[str, object] = field(default_factory=dict)


# --- Formatting ---------------------------------------------------------------------------------------------


def pct(value: float, digits: int = 1) -> str:
    return "–" if pd.isna(value) else f"{value * 100:.{digits}f}%"


def signed_pct(value: float) -> str:
    return "–" if pd.isna(value) else f"{value * 100:+.1f}%"


def p_text(value: float) -> str:
    return "–" if pd.isna(value) else "<0.0001" if value < 1e-4 else f"{value:.4f}"


def examples(ids: Iterable[object] | None) -> str:
    """Customer ids, pseudonymized (metadata is shown in the UI and kept in the event log)."""
    return ", ".join(hash_customer_id(value) for value in ids or ()) or "none"


def as_arrow_strings(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    return frame.astype({column: ARROW_STRING for column in columns})


# --- The variant gate and the arms --------------------------------------------------------------------------


def variant_gate(variants: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """Each generated variant and whether it passed both gates: `source_variant_id, variant_id, tone, subject,
    status, decision, approved, reason`.

    Approved means status `valid` in message_variants and decision `approved` in safety_verdicts; a variant
    without a verdict is not approved (fail closed). The safety stage may rewrite a blocked variant: its
    verdict row then has a new `variant_id` (`source_variant_id` names the generated one) and the screened
    subject and body. `variant_id` and `subject` here are the verdict's, i.e. what is sent.
    """
    verdicts = verdicts.copy()
    source = verdicts.get("source_variant_id", pd.Series(index=verdicts.index, dtype=object))
    verdicts["source_variant_id"] = source.fillna(verdicts["variant_id"])
    if "screened_at" in verdicts.columns:
        verdicts = verdicts.sort_values("screened_at", kind="stable")
    by_source = verdicts.groupby("source_variant_id", sort=False)
    latest = by_source.tail(1).set_index("source_variant_id")
    # One final verdict per variant by contract; should there be several, every one must approve.
    decision = by_source["decision"].agg(
        lambda values: (
            DECISION_APPROVED if (values == DECISION_APPROVED).all() else ", ".join(sorted(set(values.astype(str))))
        )
    )
    gate = variants.assign(
        variant_id=variants["source_variant_id"].map(latest["variant_id"]).fillna(variants["source_variant_id"]),
        decision=variants["source_variant_id"].map(decision),
    )
    if "subject" in latest.columns:  # the screened (possibly rewritten) subject is the one sent
        gate["subject"] = gate["source_variant_id"].map(latest["subject"]).fillna(gate["subject"])
    valid = gate["status"] == STATUS_VALID
    approved_by_safety = gate["decision"] == DECISION_APPROVED
    rewritten = gate["variant_id"] != gate["source_variant_id"]
    gate["approved"] = valid & approved_by_safety
    gate["reason"] = np.select(
        [~valid, gate["decision"].isna(), ~approved_by_safety, rewritten],
        [
            "rejected by generation (status " + gate["status"].astype(str) + ")",
            "no safety verdict (not screened)",
            "blocked by safety (" + gate["decision"].astype(str) + ")",
            "approved after a safety rewrite (" + gate["variant_id"].astype(str) + ")",
        ],
        default="approved",
    )
    return gate[GATE_COLUMNS]


def approved_arms(gate: pd.DataFrame) -> list[tuple[str, str]]:
    """(variant_id, tone) of the approved variants, the input `assign_arms` expects."""
    approved = gate[gate["approved"]]
    return list(zip(approved["variant_id"].astype(str), approved["tone"].astype(str), strict=True))


def arm_weights(configured: Mapping[str, float], approved_tones: Iterable[str]) -> dict[str, float]:
    """Effective weights of control and the approved tones' arms (blocked arms' weight redistributed)."""
    tones = list(approved_tones)
    unweighted = [tone for tone in tones if tone not in configured]
    if unweighted:
        raise ValueError(
            f"assignment.weights has no weight for approved tone(s) {unweighted}; configured arms: {sorted(configured)}"
        )
    return effective_weights([CONTROL, *tones], configured)


def counts_fingerprint(frame: pd.DataFrame) -> str:
    """A digest of the customers and event counts per arm: changes exactly when the analysed data does."""
    counts = frame.groupby("arm", observed=True, sort=True)[list(ENGAGEMENT_FLAGS)].agg(["size", "sum"])
    return hashlib.sha256(counts.to_csv().encode()).hexdigest()[:16]


# --- Checks (evaluated by the assets on the frame they are about to store) -----------------------------------


def assignment_completeness(members: pd.Series, assigned: pd.DataFrame) -> CheckOutcome:
    """Every member of the segment (customer_segments) assigned exactly once, to an arm."""
    without_arm = int(assigned["arm"].isna().sum())
    if same_id_set(members, assigned["customer_id"]):  # the usual case, decided in Arrow
        expected_count, missing, unexpected, duplicated, duplicate_rows = len(members), [], [], [], 0
    else:
        expected = pd.Index(members.astype(str).unique())
        ids = assigned["customer_id"].astype(str)
        missing = expected.difference(pd.Index(ids.unique()))
        unexpected = pd.Index(ids.unique()).difference(expected)
        duplicated = ids[ids.duplicated()].unique()
        expected_count, duplicate_rows = len(expected), int(ids.duplicated().sum())
    problems = {
        "missing customers": len(missing),
        "duplicate rows": duplicate_rows,
        "customers not in the segment": len(unexpected),
        "rows without an arm": without_arm,
    }
    found = [f"{count:,} {label}" for label, count in problems.items() if count]
    return CheckOutcome(
        passed=not found,
        description=f"{expected_count:,} customers expected, {len(assigned):,} rows"
        + (f"; {', '.join(found)}" if found else ", each customer exactly once"),
        metadata={
            "expected_customers": expected_count,
            "assigned_rows": len(assigned),
            "missing_customers": problems["missing customers"],
            "duplicate_rows": problems["duplicate rows"],
            "unexpected_customers": problems["customers not in the segment"],
            "rows_without_arm": without_arm,
            "examples_missing": examples(sorted(missing)[:5]),
            "examples_duplicated": examples(sorted(duplicated)[:5]),
            "examples_unexpected": examples(sorted(unexpected)[:5]),
        },
    )


def arm_table(balance: pd.DataFrame, gate: pd.DataFrame | None = None) -> pd.DataFrame:
    approved = gate[gate["approved"]] if gate is not None else pd.DataFrame(columns=["tone", "variant_id"])
    variant = dict(zip(approved["tone"], approved["variant_id"], strict=True))
    return pd.DataFrame(
        {
            "arm": balance["arm"],
            "variant_id": balance["arm"].map(variant).fillna("–"),
            "customers": balance["n"],
            "share": balance["share"].map(pct),
            "expected share": balance["expected_share"].map(pct),
            "deviation (points)": (balance["deviation"] * 100).map("{:+.2f}".format),
            "within tolerance": balance["within_tolerance"].map({True: "yes", False: "no"}),
            "enough customers": balance["meets_min_per_arm"].map({True: "yes", False: "no"}),
        }
    )


def arm_balance(
    assigned: pd.DataFrame, weights: Mapping[str, float], tolerance: float, min_per_arm: int
) -> tuple[CheckOutcome, pd.DataFrame]:
    """Each arm's share within `tolerance` of its weight and at least `min_per_arm` customers (a warning);
    also returns the balance table."""
    unexpected = sorted(set(assigned["arm"].dropna().unique()) - set(weights))
    is_known = assigned["arm"].isin(list(weights)).to_numpy(dtype=bool)
    known = assigned[["segment", "arm"]] if is_known.all() else assigned.loc[is_known, ["segment", "arm"]]
    # The arms as Python strings, one object per distinct arm shared by its rows (not one string per row).
    codes, names = pd.factorize(known["arm"])
    arms = np.asarray([str(name) for name in names], dtype=object)[codes] if len(known) else np.array([], dtype=object)
    balance = check_balance(known.assign(arm=arms), weights, tolerance, min_per_arm)
    problems = [f"arm(s) {unexpected} assigned but not approved for this segment"] if unexpected else []
    for row in balance.itertuples(index=False):  # one row per arm
        if not row.within_tolerance:
            problems.append(
                f"arm '{row.arm}': share {pct(row.share)} vs expected {pct(row.expected_share)} "
                f"(tolerance ±{tolerance * 100:g} points)"
            )
        if not row.meets_min_per_arm:
            problems.append(f"arm '{row.arm}': {row.n} customer(s), below the minimum of {min_per_arm}")
    outcome = CheckOutcome(
        passed=not problems,
        description="; ".join(problems) or "every arm within tolerance",
        metadata={
            "arms": arm_table(balance),
            "max_deviation_points": float(balance["deviation"].abs().max() * 100) if len(balance) else 0.0,
            "tolerance_points": float(tolerance * 100),
            "smallest_arm_customers": int(balance["n"].min()) if len(balance) else 0,
            "min_customers_per_arm": min_per_arm,
            "unexpected_arms": ", ".join(unexpected) or "none",
        },
    )
    return outcome, balance


def sample_ratio_reconciliation(
    assigned: pd.DataFrame, analysed: pd.DataFrame, weights: Mapping[str, float], allow_loss: bool = False
) -> CheckOutcome:
    """The analysed rows reconciled against the assignment, customer by customer, and the assignment against
    the exact deal of its weights.

    Assignment deals each arm floor or ceil of ``n * weight`` customers, so a chi-square test is useless here
    (p near 1 when all is well, blind to a 1% loss): instead every arm more than one customer away from the
    deal, and every lost, duplicated, moved or foreign row, is counted per arm. Lost rows pass only when
    ``allow_loss`` (engagement.missing: drop) and every arm kept the same share of its customers (chi-square
    p >= 0.001).
    """
    if _same_rows(assigned, analysed):
        # The analysed rows are the assigned rows themselves (the simulation keeps them): nothing lost,
        # duplicated, moved or foreign, so only the arm sizes need counting.
        counts = assigned["arm"].value_counts()
        arms = [*weights, *sorted(set(counts.index) - set(weights))]
        counts = counts.reindex(arms, fill_value=0).to_numpy(dtype=np.int64)
        zero = np.zeros(len(arms), dtype=np.int64)
        per_arm = pd.DataFrame(
            {"assigned": counts, "analysed": counts, "lost": zero, "duplicated": zero, "moved": zero}
            | {"not assigned": zero},
            index=pd.Index(arms, dtype=object, name="arm"),
        )
    else:
        per_arm = _reconciled_counts(assigned, analysed, weights)
    arms = list(per_arm.index)
    deal = deal_deviation(per_arm["assigned"], weights).set_index("arm")
    totals = per_arm.sum().astype(int)
    per_arm["dealt"] = deal["dealt"].reindex(arms, fill_value=0)
    per_arm["off the deal"] = deal["deviation"].reindex(arms, fill_value=0.0).round(1)
    off_deal = deal.index[deal["beyond"]].tolist()
    retention = retention_p_value(per_arm["assigned"], per_arm["analysed"] - per_arm["duplicated"])
    unbalanced_loss = bool(totals["lost"]) and not (allow_loss and not retention < RETENTION_ALERT_P)
    problems = []
    if off_deal:
        problems.append(f"assignment off the exact deal in arm(s) {off_deal}")
    for label in ("duplicated", "moved", "not assigned"):
        if totals[label]:
            problems.append(f"{totals[label]:,} {label} row(s)")
    if totals["lost"]:
        where = ", ".join(f"{arm} {n:,}" for arm, n in per_arm["lost"].items() if n)
        shares = f" and the arms kept different shares (retention p = {p_text(retention)})"
        problems.append(
            f"{totals['lost']:,} assigned customer(s) lost ({where})"
            + (shares if allow_loss and unbalanced_loss else "")
        )
    failed = bool(off_deal) or bool(totals["duplicated"] + totals["moved"] + totals["not assigned"]) or unbalanced_loss
    chi2, p_value = (
        sample_ratio_mismatch(per_arm.loc[list(weights), "analysed"], weights)
        if not per_arm.loc[[a for a in arms if a not in weights], "analysed"].sum()
        else (float("inf"), 0.0)
    )
    table = per_arm.reset_index(names="arm").assign(**{"expected share": [pct(weights.get(arm, 0.0)) for arm in arms]})
    return CheckOutcome(
        passed=not failed,
        description=(
            ("; ".join(problems) if problems else "analysed rows match the assignment customer for customer")
            + (
                f" (allowed: engagement.missing is drop, retention p = {p_text(retention)})"
                if problems and not failed
                else ""
            )
        ),
        metadata={
            "arms": table,
            "customers": int(totals["analysed"]),
            "assigned_customers": int(totals["assigned"]),
            "lost_rows": int(totals["lost"]),
            "duplicated_rows": int(totals["duplicated"]),
            "moved_rows": int(totals["moved"]),
            "unassigned_rows": int(totals["not assigned"]),
            "max_deviation_from_deal": float(deal["deviation"].abs().max()) if len(deal) else 0.0,
            "chi2": float(chi2) if np.isfinite(chi2) else float("nan"),
            "p_value": float(p_value),
            "retention_p_value": float(retention),
        },
    )


def _same_rows(assigned: pd.DataFrame, analysed: pd.DataFrame) -> bool:
    """Whether `analysed` has exactly the rows of `assigned` (customer_id and arm), in the same order, with
    every customer once and no missing value: checked in Arrow, without a Python string per row."""
    frames = (assigned, analysed)
    if len(assigned) != len(analysed) or any(
        f[c].dtype != ARROW_STRING for f in frames for c in ("customer_id", "arm")
    ):
        return False
    ids, arms = ([pa.chunked_array(pa.array(f[c].array)) for f in frames] for c in ("customer_id", "arm"))
    if any(column.null_count for column in (*ids, *arms)):
        return False
    same = pc.all(pc.and_(pc.equal(*ids), pc.equal(*arms))).as_py()
    return bool(same or not len(assigned)) and distinct_count(ids[0]) == len(assigned)


def _reconciled_counts(assigned: pd.DataFrame, analysed: pd.DataFrame, weights: Mapping[str, float]) -> pd.DataFrame:
    """Per arm: assigned, analysed, lost, duplicated, moved and not-assigned rows, customer by customer."""
    assigned_ids = assigned[["customer_id", "arm"]].astype({"customer_id": str, "arm": object})
    rows = analysed[["customer_id", "arm"]].astype({"customer_id": str, "arm": object})
    arm_of = assigned_ids.drop_duplicates("customer_id").set_index("customer_id")["arm"]
    arms = [*weights, *sorted((set(rows["arm"].dropna()) | set(assigned_ids["arm"].dropna())) - set(weights))]
    counted = rows.drop_duplicates("customer_id")
    home = counted["customer_id"].map(arm_of)
    lost = assigned_ids["customer_id"][~assigned_ids["customer_id"].isin(set(rows["customer_id"]))]
    return (
        pd.DataFrame(
            {
                "assigned": assigned_ids["arm"].value_counts().reindex(arms, fill_value=0),
                "analysed": rows["arm"].value_counts().reindex(arms, fill_value=0),
                "lost": arm_of.reindex(lost).value_counts().reindex(arms, fill_value=0),
                "duplicated": rows.loc[rows["customer_id"].duplicated(), "arm"]
                .value_counts()
                .reindex(arms, fill_value=0),
                "moved": counted.loc[home.notna() & (home != counted["arm"]), "arm"]
                .value_counts()
                .reindex(arms, fill_value=0),
                "not assigned": counted.loc[home.isna(), "arm"].value_counts().reindex(arms, fill_value=0),
            }
        )
        .fillna(0)
        .astype("int64")
    )


def funnel_consistency(frame: pd.DataFrame) -> CheckOutcome:
    """Nobody clicked without opening or converted without clicking."""
    flags = frame.assign(
        click_no_open=frame["clicked"].astype(bool) & ~frame["opened"].astype(bool),
        conversion_no_click=frame["converted"].astype(bool) & ~frame["clicked"].astype(bool),
    )
    by_arm = (
        flags.groupby("arm", observed=True, sort=True)
        .agg(
            customers=("arm", "size"),
            **{
                "clicked without opening": ("click_no_open", "sum"),
                "converted without clicking": ("conversion_no_click", "sum"),
            },
        )
        .reset_index()
    )
    clicks = int(by_arm["clicked without opening"].sum())
    conversions = int(by_arm["converted without clicking"].sum())
    return CheckOutcome(
        passed=clicks + conversions == 0,
        description=f"{clicks:,} click(s) without an open, {conversions:,} conversion(s) without a click",
        metadata={
            "customers": int(by_arm["customers"].sum()),
            "clicks_without_open": clicks,
            "conversions_without_click": conversions,
            "by_arm": by_arm,
        },
    )


# --- The metrics for people and for Dagster's plots -----------------------------------------------------------


def typed_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """The metrics frame with the same column types for every partition (an empty control-only partition
    included), so the warehouse table's types never depend on which segment was stored first."""
    metrics = metrics.reindex(columns=METRICS_COLUMNS)
    metrics = metrics.assign(significant=metrics["significant"].fillna(False))
    return metrics.astype(METRICS_DTYPES)


def metrics_markdown(metrics: pd.DataFrame, alpha: float) -> str:
    """The metrics table for people: rates in %, lifts in points / % with their CIs, raw and adjusted p."""
    if metrics.empty:
        return "_no comparisons (control only)_"
    level = f"{(1 - alpha) * 100:g}% CI"
    revenue = metrics["metric"] == REVENUE_METRIC

    def rate(value: float, is_revenue: bool) -> str:
        return ("–" if pd.isna(value) else f"{value:.2f}") if is_revenue else pct(value)

    def difference(value: float, is_revenue: bool) -> str:
        if pd.isna(value):
            return "–"
        return f"{value:+.2f}" if is_revenue else f"{value * 100:+.2f} pp"

    rows = []
    for row, is_revenue in zip(metrics.itertuples(index=False), revenue, strict=True):  # a dozen rows
        rows.append(
            {
                "segment": row.segment,
                "arm": row.arm,
                "metric": row.metric,
                "n (control / arm)": f"{int(row.n_control):,} / {int(row.n_arm):,}",
                "control": rate(row.rate_control, is_revenue),
                "arm rate": rate(row.rate_arm, is_revenue),
                f"abs. lift [{level}]": f"{difference(row.abs_lift, is_revenue)} "
                f"[{difference(row.abs_ci_low, is_revenue)}, {difference(row.abs_ci_high, is_revenue)}]",
                f"rel. lift [{level}]": f"{signed_pct(row.rel_lift)} "
                f"[{signed_pct(row.rel_ci_low)}, {signed_pct(row.rel_ci_high)}]",
                "test": row.test,
                "p": p_text(row.p_value),
                "p adj.": p_text(row.p_adjusted),
                "significant": "yes" if row.significant else "no",
                "P(beat control)": pct(row.prob_beat_control),
                "power": pct(row.power_achieved, 0),
                "MDE": difference(row.mde_abs, is_revenue),
                "n needed / arm": "–" if pd.isna(row.n_needed) else f"{int(row.n_needed):,}",
                "note": row.note or "",
            }
        )
    return pd.DataFrame(rows).to_markdown(index=False)


def metrics_figures(metrics: pd.DataFrame, primary_metric: str = "conversion") -> dict[str, object]:
    """Numbers Dagster plots across materializations: comparisons, significant ones, best lifts, min p."""
    figures: dict[str, object] = {
        "comparisons": len(metrics),
        "significant_comparisons": int(metrics["significant"].sum()) if len(metrics) else 0,
        "min_p_adjusted": float(metrics["p_adjusted"].min()) if len(metrics) else float("nan"),
        "looks": int(metrics["looks"].max()) if len(metrics) else 0,
    }
    for metric in BINARY_METRICS:
        rows = metrics[metrics["metric"] == metric]
        figures[f"best_rel_lift_{metric}"] = float(rows["rel_lift"].max()) if len(rows) else float("nan")
    primary = metrics[(metrics["metric"] == primary_metric) & metrics["rel_lift"].notna()]
    if len(primary):
        best = primary.loc[primary["rel_lift"].idxmax()]
        figures[f"best_arm_on_{primary_metric}"] = f"{best['arm']} ({signed_pct(best['rel_lift'])})"
    return figures
