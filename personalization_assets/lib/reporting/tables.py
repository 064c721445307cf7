"""The report's section tables: results per segment and tone, funnel, experiment health, segment profiles,
retrieval coverage, the safety summary, generation cost, example messages and personalized messages."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from personalization_assets.lib.assignment import ordered_arms
from personalization_assets.lib.audit_chain import verify_audit_chain
from personalization_assets.lib.personalization import render_message
from personalization_assets.lib.privacy import hash_customer_id
from personalization_assets.lib.reporting.formatting import (
    METRIC_EVENTS,
    METRIC_LABELS,
    POOLED_LABEL,
    DisplayTable,
    _bool,
    _missing,
    _parse_json_list,
    fmt_ci_pp,
    fmt_int,
    fmt_money,
    fmt_p,
    fmt_pct,
    fmt_pp,
)
from personalization_assets.lib.reporting.inputs import empty_table
from personalization_assets.lib.reporting.recommendations import KEEP_CONTROL, LEAN, SEND, UNDECIDED, Recommendation
from personalization_assets.lib.safety import CATEGORIES
from personalization_assets.lib.statistics import BINARY_METRICS, CONTROL, sample_ratio_mismatch


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
                # All undefined (arms of a customer or two): NaN, without numpy's "Mean of empty slice" warning.
                "mde_abs": rows["mde_abs"].median() if rows["mde_abs"].notna().any() else np.nan,
                # Analyses of recorded engagement so far (the sequential tests stay valid at every look).
                "looks": int(rows["looks"].max()) if "looks" in rows and rows["looks"].notna().any() else 0,
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
            "looks",
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
            "Looks": frame["looks"].map(lambda v: fmt_int(v) if v else "–"),
        }
    )
    return DisplayTable.from_frame(
        display, numeric=["SRM p-value", display.columns[4], "Detectable lift", "Looks"]
    ), frame


def profiles_table(profiles: pd.DataFrame) -> DisplayTable:
    def top_key(value: object) -> str:
        if _missing(value):
            return "–"
        if isinstance(value, str):
            mix = json.loads(value)
        elif isinstance(value, Mapping):
            mix = dict(value)
        else:
            raise TypeError(f"tier_mix must be JSON text or a mapping, not {type(value).__name__}")
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
    field_values_screened: int = 0  # tier and city values the safety stage screened for the opening lines
    field_values_withheld: int = 0  # of those, not approved: left out of every line


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
    personal_fields: pd.DataFrame | None = None,
) -> PersonalizedMessages:
    """Coverage of personalized_messages against the experiment's treated customers (engagement rows outside
    control), and per segment the sampled customers with their opening lines and one message in full: the
    customer of ``preferred_tones[segment]`` (the recommended tone) if sampled, else the first one.
    ``personal_fields`` (PERSONAL_FIELDS_COLUMNS) says how many tier and city values the safety stage screened
    per segment and how many it withheld from the lines."""
    preferred_tones = preferred_tones or {}
    fields = (personal_fields if personal_fields is not None else empty_table("personal_fields")).set_index("segment")
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
                "Tier/city values withheld": (
                    f"{fmt_int(fields.at[segment, 'values_withheld'])} of "
                    f"{fmt_int(fields.at[segment, 'values_screened'])}"
                    if segment in fields.index
                    else "not screened"
                ),
                "Coverage": status,
            }
        )
    coverage = DisplayTable.from_frame(
        pd.DataFrame(rows, columns=["Segment", "Treated customers", "Messages", "Distinct opening lines",
                                    "Control (regular newsletter)", "Tier/city values withheld", "Coverage"]),
        numeric=["Treated customers", "Messages", "Distinct opening lines", "Control (regular newsletter)",
                 "Tier/city values withheld"],
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
        field_values_screened=int(fields["values_screened"].sum()) if len(fields) else 0,
        field_values_withheld=int(fields["values_withheld"].sum()) if len(fields) else 0,
    )
