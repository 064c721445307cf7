"""Campaign report: recommendations follow the statistics, attribution, HTML/PDF, the notebook, the asset.

The warehouse tables are built here from synthetic customers and the sample content with the real upstream
logic (segmentation, assignment, simulated engagement, experiment statistics, the safety audit chain), so the
report is tested on tables shaped as the pipeline writes them.
"""

import json
import warnings
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from markupsafe import escape

from personalization_assets.config.safety import SafetyConfig
from personalization_assets.config.segmentation import SegmentationConfig
from personalization_assets.lib import reporting
from personalization_assets.lib.assignment import assign_arms
from personalization_assets.lib.audit_chain import GENESIS_HASH, chain_audit_records, text_sha256
from personalization_assets.lib.personalization import opening_lines, personal_field_values, render_message
from personalization_assets.lib.privacy import hash_customer_id
from personalization_assets.lib.reporting.inputs import campaign_segments
from personalization_assets.lib.reporting.tables import experiment_health
from personalization_assets.lib.segmentation import profile_segments
from personalization_assets.lib.simulation import simulate_engagement
from personalization_assets.lib.statistics import compute_experiment_metrics, compute_pooled_metrics
from personalization_assets.lib.synthetic import generate_customers
from personalization_assets.segmentation import segment_customers
from personalization_assets.workflows import safety as safety_flow
from resources.content_safety import EmbeddedContentSafetyResource

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TONES = ("urgent", "informational", "friendly")


# ------------------------------------------------------------------------------------------------------------
# Building warehouse tables the way the pipeline does
# ------------------------------------------------------------------------------------------------------------


def content_index() -> pd.DataFrame:
    documents = [json.loads(p.read_text()) for p in sorted((PROJECT_ROOT / "data" / "content").glob("*.json"))]
    return pd.DataFrame(
        {
            "document_id": [d["document_id"] for d in documents],
            "title": [d["title"] for d in documents],
            "category": [d["category"] for d in documents],
            "content": [d["content"] for d in documents],
            "source_url": [d["source_url"] for d in documents],
        }
    )


def campaign_tables(
    customers: int = 1_000,
    uplifts: dict[str, float] | None = None,
    blocked_segments: tuple[str, ...] = ("at_risk",),
    blocked_tones: dict[str, str] | None = None,
    seed: int = 7,
) -> dict[str, pd.DataFrame]:
    """Every table the report reads, for a synthetic campaign.

    ``uplifts`` are the true relative uplifts per tone; ``blocked_segments`` have every variant blocked
    (control only); ``blocked_tones`` maps a segment to one blocked tone.
    """
    uplifts = uplifts if uplifts is not None else {"urgent": 0.05, "informational": 0.10, "friendly": 0.30}
    blocked_tones = blocked_tones if blocked_tones is not None else {"standard": "urgent"}
    people = generate_customers(customers, seed=seed)
    segments, _ = segment_customers(people, SegmentationConfig())
    profiles = profile_segments(people, segments)
    content = content_index()
    rng = np.random.default_rng(seed)

    retrieved, variants, verdicts = [], [], []
    for segment in profiles["segment"]:
        picks = rng.choice(len(content), size=5, replace=False)
        docs = content.iloc[picks].reset_index(drop=True)
        retrieved.append(
            pd.DataFrame(
                {
                    "segment": segment,
                    "rank": np.arange(1, 6),
                    "document_id": docs["document_id"],
                    "title": docs["title"],
                    "category": docs["category"],
                    "score": np.linspace(0.9, 0.5, 5),
                    "snippet": docs["content"].str[:120],
                    "query": f"{segment} campaign",
                }
            )
        )
        for i, tone in enumerate(TONES):
            variant_id = f"{segment}-{tone}"
            cited = list(docs["document_id"].iloc[[0, i + 1]])
            body = f"A {tone} note for {segment}. [Source: {docs['title'].iloc[0]}]\n\nSecond paragraph."
            variants.append(
                {
                    "segment": segment,
                    "variant_id": variant_id,
                    "tone": tone,
                    "subject": f"{tone.title()} news for you",
                    "body": body,
                    "citations": json.dumps(cited),
                    "status": "generated",
                    "rejection_reasons": "[]",
                    "attempts": 1 + i % 2,
                    "backend": "embedded",
                    "model": "template",
                    "input_tokens": 800 + 10 * i,
                    "output_tokens": 250 + 5 * i,
                    "cost_usd": 0.0012 + 0.0001 * i,
                    "latency_ms": 40.0 + i,
                    "created_at": datetime(2026, 1, 5, tzinfo=UTC),
                }
            )
            blocked = segment in blocked_segments or blocked_tones.get(segment) == tone
            reason = ("violence severity 6 >= 4" if i % 2 == 0 else "blocklist: AcmeMart") if blocked else ""
            verdicts.append(
                {
                    "segment": segment,
                    "variant_id": variant_id,
                    "hate": 0,
                    "violence": 6 if reason.startswith("violence") else 0,
                    "self_harm": 0,
                    "sexual": 0,
                    "blocklist_hits": json.dumps(["AcmeMart"] if reason.startswith("blocklist") else []),
                    "decision": "blocked" if blocked else "approved",
                    "reasons": json.dumps([reason] if reason else []),
                    "backend": "embedded",
                    "screened_at": datetime(2026, 1, 5, 12, tzinfo=UTC),
                    "body": body,
                }
            )
    retrieved = pd.concat(retrieved, ignore_index=True)
    variants = pd.DataFrame(variants)
    verdicts = pd.DataFrame(verdicts)
    audit = chain_audit_records(
        pd.DataFrame(
            {
                "record_id": [f"r{i}" for i in range(len(verdicts))],
                "screened_at": verdicts["screened_at"],
                "run_id": "run-1",
                "segment": verdicts["segment"],
                "variant_id": verdicts["variant_id"],
                "text_sha256": verdicts["body"].map(text_sha256),
                "severities": [
                    json.dumps({c: int(r[c]) for c in ("hate", "violence", "self_harm", "sexual")})
                    for _, r in verdicts.iterrows()
                ],
                "decision": verdicts["decision"],
                "reasons": verdicts["reasons"],
                "backend": "embedded",
            }
        ),
        GENESIS_HASH,
    )

    approved = verdicts[verdicts["decision"] == "approved"].merge(variants[["variant_id", "tone"]], on="variant_id")
    assignments = []
    members = segments.merge(people, on="customer_id")
    for segment, group in members.groupby("segment"):
        pairs = list(
            approved.loc[approved["segment"] == segment, ["variant_id", "tone"]].itertuples(index=False, name=None)
        )
        assignments.append(assign_arms(group[["segment", "customer_id"]], pairs, experiment_id="test"))
    assignments = pd.concat(assignments, ignore_index=True)
    with_features = assignments.merge(people, on="customer_id")
    engagement = simulate_engagement(with_features, {**uplifts, "control": 0.0}, seed=seed)
    metrics = compute_experiment_metrics(engagement, expected_arms=None)
    pooled = compute_pooled_metrics(engagement)
    treated = with_features[with_features["arm"] != "control"].merge(
        variants[["variant_id", "subject"]], on="variant_id"
    )
    personalized = treated.assign(
        opening_line=opening_lines(
            treated["arm"], treated["tier"], treated["location"], treated["last_engagement_days"]
        )
    )[["segment", "customer_id", "arm", "variant_id", "subject", "opening_line"]]
    return {
        "customers": people,
        "customer_segments": segments,
        "segment_profiles": profiles,
        "content_index": content,
        "retrieved_content": retrieved,
        "message_variants": variants,
        "safety_verdicts": verdicts,
        "safety_audit": audit,
        "assignments": assignments,
        "engagement": engagement,
        "experiment_metrics": metrics,
        "pooled_experiment_metrics": pooled,
        "personalized_messages": personalized,
        "personal_field_verdicts": pd.concat(
            [  # what the safety stage stores: the segment's tier and city values, screened
                safety_flow.field_verdicts(
                    segment,
                    safety_flow.screen_personal_fields(
                        personal_field_values(group["tier"], group["location"]),
                        EmbeddedContentSafetyResource(),
                        SafetyConfig().thresholds,
                    ),
                )
                for segment, group in members.groupby("segment")
            ],
            ignore_index=True,
        ),
    }


def write_warehouse(path: Path, tables: dict[str, pd.DataFrame], skip: tuple[str, ...] = ()) -> Path:
    with duckdb.connect(str(path)) as connection:
        for name, frame in tables.items():
            if name in skip:
                continue
            connection.register("frame", pa.Table.from_pandas(frame, preserve_index=False))
            connection.execute(f"create or replace table main.{name} as select * from frame")
            connection.unregister("frame")
    return path


def engagement_counts(segment: str, arms: dict[str, tuple[int, int, int, int]]) -> pd.DataFrame:
    """Engagement rows with exact counts per arm: ``arm -> (sent, opened, clicked, converted)``."""
    frames = []
    for arm, (sent, opened, clicked, converted) in arms.items():
        rank = np.arange(sent)
        frames.append(
            pd.DataFrame(
                {
                    "segment": segment,
                    "customer_id": [f"{segment}-{arm}-{i}" for i in rank],
                    "arm": arm,
                    "variant_id": None if arm == "control" else f"{segment}-{arm}",
                    "opened": rank < opened,
                    "clicked": rank < clicked,
                    "converted": rank < converted,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def recommend_from(
    arms: dict[str, tuple[int, int, int, int]],
) -> tuple[reporting.Recommendation, pd.DataFrame]:
    metrics = compute_experiment_metrics(engagement_counts("s", arms))
    return reporting.recommend_segment(metrics, "s", "Segment S", "conversion", list(arms)), metrics


CONTROL_COUNTS = (2000, 600, 160, 40)


# ------------------------------------------------------------------------------------------------------------
# Recommendations follow the statistics
# ------------------------------------------------------------------------------------------------------------


def test_a_tone_that_clearly_wins_is_recommended_with_its_evidence():
    rec, metrics = recommend_from(
        {
            "control": CONTROL_COUNTS,
            "urgent": (2000, 600, 160, 42),
            "informational": (2000, 610, 165, 38),
            "friendly": (2000, 700, 260, 120),
        }
    )
    winner = metrics[(metrics["arm"] == "friendly") & (metrics["metric"] == "conversion")].iloc[0]
    assert bool(winner["significant"])
    assert (rec.decision, rec.tone, rec.variant_id) == (reporting.SEND, "friendly", "s-friendly")
    assert rec.decided and rec.label == "Send friendly"
    for column in (
        "rate_arm",
        "rate_control",
        "abs_lift",
        "abs_ci_low",
        "abs_ci_high",
        "p_adjusted",
        "prob_beat_control",
    ):
        assert rec.figures[column] == winner[column]
    assert reporting.fmt_pp(winner["abs_lift"], 2) in rec.evidence
    assert reporting.fmt_ci_pp(winner["abs_ci_low"], winner["abs_ci_high"], 2) in rec.evidence
    assert "adjusted p" in rec.evidence


def test_when_nothing_is_significant_the_report_says_the_data_cannot_decide():
    rec, metrics = recommend_from(
        {
            "control": CONTROL_COUNTS,
            "urgent": (2000, 600, 160, 42),
            "informational": (2000, 605, 158, 38),
            "friendly": (2000, 610, 165, 47),
        }
    )
    assert not metrics["significant"].any()
    assert rec.decision == reporting.UNDECIDED and rec.tone is None and not rec.decided
    assert "cannot decide" in rec.headline and rec.label == "Undecided: keep testing"
    # The best estimate is shown as such, with its uncertainty and what it would take to settle it.
    assert rec.figures["arm"] == "friendly"
    assert rec.evidence.startswith("No tone changed conversions significantly. Best estimate:")
    behind, _ = recommend_from({"control": CONTROL_COUNTS, "urgent": (2000, 600, 160, 36)})
    assert behind.decision == reporting.UNDECIDED
    assert "Every tone's estimate is at or below control's; the closest: " in behind.evidence
    power_caveats = [c for c in rec.caveats if "detects only lifts of" in c]
    assert power_caveats
    assert "customers per arm" in power_caveats[0]
    friendly = metrics[(metrics["arm"] == "friendly") & (metrics["metric"] == "conversion")].iloc[0]
    assert reporting.fmt_int(friendly["n_needed"]) in power_caveats[0]


def test_a_win_on_opens_only_is_gated_behind_the_primary_metric():
    rec, metrics = recommend_from({"control": CONTROL_COUNTS, "friendly": (2000, 760, 170, 44)})
    opens = metrics[(metrics["metric"] == "open")].iloc[0]
    conversions = metrics[(metrics["metric"] == "conversion")].iloc[0]
    # The open-rate lift alone would be significant, but secondary metrics are tested only behind the primary.
    assert opens["p_value"] < 1e-6
    assert not bool(conversions["significant"])
    assert not bool(opens["significant"])
    assert opens["p_adjusted"] >= conversions["p_adjusted"]  # never below the test it is gated behind
    assert rec.decision == reporting.UNDECIDED
    assert not rec.decided
    assert rec.figures["metric"] == "conversion"
    assert rec.figures["p_adjusted"] == conversions["p_adjusted"]


def test_comparisons_that_cannot_be_tested_leave_the_segment_undecided():
    rec, metrics = recommend_from({"control": (300, 90, 20, 0), "friendly": (300, 95, 22, 0)})
    assert metrics.loc[metrics["metric"] == "conversion", "p_value"].isna().all()
    assert rec.decision == reporting.UNDECIDED and rec.tone is None
    assert rec.headline == "No clear winner: too few conversions to test"
    assert "no events in either arm" in rec.evidence


def test_tones_that_do_worse_are_flagged():
    rec, _ = recommend_from({"control": CONTROL_COUNTS, "urgent": (2000, 600, 160, 8), "friendly": (2000, 600, 160, 9)})
    assert rec.decision == reporting.KEEP_CONTROL and rec.tone is None
    mixed, _ = recommend_from(
        {"control": CONTROL_COUNTS, "urgent": (2000, 600, 160, 8), "friendly": (2000, 700, 260, 120)}
    )
    assert (mixed.decision, mixed.tone) == (reporting.SEND, "friendly")
    assert any(c.startswith("Avoid the urgent message") for c in mixed.caveats)


def test_a_segment_with_every_variant_blocked_gets_control_only():
    tables = campaign_tables(customers=600)
    inputs = inputs_from(tables)
    recommendations, _ = reporting.recommend(inputs)
    at_risk = next(r for r in recommendations if r.segment == "at_risk")
    assert at_risk.decision == reporting.CONTROL_ONLY
    assert "violence severity 6 >= 4" in at_risk.evidence and "blocklist: AcmeMart" in at_risk.evidence
    assert set(inputs.funnel.loc[inputs.funnel["segment"] == "at_risk", "arm"]) == {"control"}


def test_every_recommendation_rests_on_a_significant_result_or_says_it_does_not(campaign):
    inputs = inputs_from(campaign)
    recommendations, overall = reporting.recommend(inputs)
    metrics = inputs.metrics
    for rec in [*recommendations, overall]:
        rows = inputs.pooled if rec is overall else metrics[metrics["segment"] == rec.segment]
        primary = rows[rows["metric"] == "conversion"]
        wins = primary[primary["significant"].astype(bool) & (primary["abs_lift"] > 0)]
        if rec.decision == reporting.SEND:
            assert rec.tone in set(wins["arm"]) and rec.figures["abs_lift"] == wins["abs_lift"].max()
        else:
            assert wins.empty and not rec.decided and rec.decision != reporting.SEND


# ------------------------------------------------------------------------------------------------------------
# Feature attribution
# ------------------------------------------------------------------------------------------------------------


def attribution_sample(rows: int = 20_000, seed: int = 3) -> pd.DataFrame:
    """Conversion driven by historical open rate; the message's lift grows with age. Nothing else matters."""
    people = generate_customers(rows, seed=seed)
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "friendly"], size=rows)
    z = {c: (people[c] - people[c].mean()) / people[c].std() for c in ("historical_open_rate", "age")}
    treated = (arm == "friendly").astype(float)
    logit = -3.0 + 1.0 * z["historical_open_rate"] + treated * (0.3 + 0.6 * z["age"])
    converted = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return people.assign(segment="s", arm=arm, opened=converted, clicked=converted, converted=converted)


def test_attribution_finds_what_drives_response_and_uplift():
    attribution = reporting.feature_attribution(attribution_sample(), "conversion")
    assert attribution.outcome == "conversion" and attribution.note == ""
    terms = attribution.terms.set_index("term")
    significant = set(terms.index[terms["significant"]])
    assert {"historical_open_rate", "age:message"} <= significant
    assert terms.loc["historical_open_rate", "odds_ratio"] == pytest.approx(np.e, rel=0.15)
    assert terms.loc["age:message", "odds_ratio"] == pytest.approx(np.exp(0.6), rel=0.2)
    assert not significant & {"avg_order_value", "last_engagement_days:message", "purchase_frequency:message"}
    reading = " ".join(attribution.reading)
    assert "higher historical open rate are more likely to convert" in reading
    assert "lift is larger for customers with a higher age" in reading


def test_attribution_counts_a_tier_written_in_other_cases_as_one_tier():
    """An export with `GOLD`, `gold` and `Gold` has one Gold tier, as the segment profiles count it: one term, not
    "tier GOLD (vs gold)"."""
    sample = attribution_sample()
    tiers = sample["tier"].astype(str)
    rng = np.random.default_rng(5)
    sample["tier"] = np.where(rng.random(len(tiers)) < 0.5, tiers.str.upper(), tiers.str.lower())
    terms = reporting.feature_attribution(sample, "conversion").terms
    written = reporting.feature_attribution(attribution_sample(), "conversion").terms
    tier_terms = sorted(terms.loc[terms["feature"] == "tier", "term"])
    assert tier_terms == sorted(written.loc[written["feature"] == "tier", "term"])
    assert all(term[len("tier[") : -1].istitle() for term in tier_terms), tier_terms  # shown as `Gold`
    pd.testing.assert_frame_equal(terms, written)  # the same model: only the spelling of the tiers changed


def test_attribution_models_an_earlier_stage_when_conversions_are_too_few():
    sample = attribution_sample(rows=3_000)
    sample["converted"] = sample.index < 40
    sample["clicked"] = sample.index < 60
    sample["opened"] = sample["clicked"] | (np.random.default_rng(0).random(len(sample)) < 0.3)
    attribution = reporting.feature_attribution(sample, "conversion")
    assert attribution.outcome == "open"
    # 16 parameters (6 attributes, 3 tier dummies, 1 tone, 6 attribute × message) need 10 events each.
    assert (
        "Too few events for a reliable model of conversions (40 < 160 needed), clicks (60 < 160 needed)"
        in attribution.note
    )


def test_attribution_estimates_equal_statsmodels_with_its_own_rank_check():
    """The Gram-matrix rank check that lets the fit skip statsmodels' QR changes no estimate."""
    from statsmodels.discrete.discrete_model import Logit

    from personalization_assets.lib.reporting.attribution import _design

    sample = attribution_sample()
    design, _ = _design(sample)
    reference = Logit(sample["converted"].astype(float), design, check_rank=True).fit(disp=0, maxiter=100)
    terms = reporting.feature_attribution(sample, "conversion").terms.set_index("term")
    assert np.allclose(terms["odds_ratio"], np.exp(reference.params[terms.index]), rtol=1e-12)
    assert np.allclose(terms["p_value"], reference.pvalues[terms.index], rtol=1e-9)


def test_a_collinear_design_is_not_taken_for_full_rank():
    from personalization_assets.lib.reporting.attribution import _design, _full_rank

    design, _ = _design(attribution_sample(rows=2_000))
    assert _full_rank(design)
    assert not _full_rank(design.assign(copy_of_age=2 * design["age"]))


def test_attribution_without_data_explains_why():
    attribution = reporting.feature_attribution(reporting.empty_table("sample"))
    assert not attribution.fitted and "No engagement" in attribution.note


# ------------------------------------------------------------------------------------------------------------
# The report from warehouse tables
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def campaign() -> dict[str, pd.DataFrame]:
    return campaign_tables(customers=1_000)


def inputs_from(
    tables: dict[str, pd.DataFrame], skip: tuple[str, ...] = (), **read_options: int
) -> reporting.ReportInputs:
    with duckdb.connect() as connection:  # in memory: read_inputs sees exactly what a warehouse file would hold
        for name, frame in tables.items():
            if name not in skip:
                connection.register("frame", pa.Table.from_pandas(frame, preserve_index=False))
                connection.execute(f"create table main.{name} as select * from frame")
                connection.unregister("frame")
        return reporting.read_inputs(connection, **({"sample_rows": 5_000} | read_options))


def test_report_builds_when_upstream_tables_do_not_exist_yet(campaign):
    inputs = inputs_from(campaign, skip=("safety_audit", "safety_verdicts", "message_variants", "retrieved_content"))
    report = reporting.build_report(inputs)
    html = reporting.render_html(report)
    assert report.safety.chain_ok is None and report.safety.screened == 0
    assert "No safety audit log in the warehouse yet." in html
    assert "Not in the warehouse yet" in html and "safety_audit" in html
    empty = reporting.build_report(inputs_from({}))
    assert all(r.decision == reporting.NO_DATA for r in [empty.overall, *empty.recommendations])
    assert "No experiment data yet" in reporting.render_html(empty)


def test_safety_summary_counts_blocks_by_category_and_verifies_the_audit_chain(campaign):
    segments = reporting.campaign_segments(inputs_from(campaign))
    verdicts, audit = campaign["safety_verdicts"], campaign["safety_audit"]
    summary = reporting.safety_summary(verdicts, audit, segments, audit_available=True)
    assert (summary.screened, summary.approved, summary.blocked) == (15, 11, 4)
    assert dict(summary.by_category.rows) == {"blocklist": "1", "violence": "3"}
    assert summary.chain_ok is True and summary.audit_records == 15

    tampered = audit.assign(decision=audit["decision"].where(audit.index != 2, "approved"))
    broken = reporting.safety_summary(verdicts, tampered, segments, audit_available=True)
    assert broken.chain_ok is False and "record r2" in broken.chain_message

    # Deleting the newest records leaves a valid chain; only the head recorded elsewhere reveals it.
    head = (14, audit.loc[audit["sequence"] == 14, "record_hash"].iloc[0])
    intact = reporting.safety_summary(verdicts, audit, segments, True, recorded_head=head)
    assert intact.chain_ok is True and "(sequence 14) is present" in intact.chain_message
    truncated = audit[audit["sequence"] < 13]
    assert reporting.safety_summary(verdicts, truncated, segments, True).chain_ok is True
    cut = reporting.safety_summary(verdicts, truncated, segments, True, recorded_head=head)
    assert cut.chain_ok is False and "records were deleted or rewritten" in cut.chain_message


def test_report_samples_what_each_customer_receives(campaign):
    inputs = inputs_from(campaign)
    report = reporting.build_report(inputs)
    personalized, stored = report.personalized, campaign["personalized_messages"]
    assert personalized.available and personalized.messages == len(stored) and not personalized.incomplete
    # Coverage: messages per segment equal the customers the experiment put in a tone arm.
    engagement = campaign["engagement"]
    treated = engagement[engagement["arm"] != "control"].groupby("segment").size()
    coverage = {row[0]: row for row in personalized.coverage.rows}
    names = reporting.campaign_segments(inputs).set_index("segment")["segment_name"]
    for segment, count in treated.items():
        row = coverage[names[segment]]
        assert row[1] == row[2] == reporting.fmt_int(count) and row[-1] == "every treated customer"
    assert coverage[names["at_risk"]][-1] == "no tone arm: control only"  # every variant blocked

    # Two customers per segment and tone, shown by pseudonym, each with the opening line stored for them.
    sample = inputs.personalized_sample
    assert sample.groupby(["segment", "arm"]).size().eq(2).all()
    assert set(sample["segment"]) == set(treated.index)
    html = reporting.render_html(report)
    by_customer = stored.set_index("customer_id")
    for segment in personalized.segments:
        for row in segment.sample.rows:
            customer = sample.loc[sample["customer_id"].map(hash_customer_id) == row[0], "customer_id"].item()
            assert row[5] == by_customer.at[customer, "opening_line"] and row[4] == by_customer.at[customer, "arm"]
    assert not [c for c in stored["customer_id"] if c in html]  # never a raw customer id

    # One message in full per segment: the approved body opened with that customer's line.
    verdicts = campaign["safety_verdicts"].set_index("variant_id")
    for segment in personalized.segments:
        example = segment.example
        customer = sample.loc[sample["customer_id"].map(hash_customer_id) == example.customer].iloc[0]
        expected = render_message(customer["opening_line"], verdicts.at[customer["variant_id"], "body"])
        assert example.text == expected and customer["opening_line"] in example.text
        assert str(escape(example.text)) in html
    assert "What each customer receives" in html

    # The sample is the same on every read, and another seed picks other customers.
    again = inputs_from(campaign).personalized_sample
    pd.testing.assert_frame_equal(again, sample)
    other = inputs_from(campaign, seed=1).personalized_sample
    assert set(other["customer_id"]) != set(sample["customer_id"])
    assert len(inputs_from(campaign, messages_per_tone=0).personalized_sample) == 0


def test_report_counts_the_customer_field_values_screened_and_withheld(campaign):
    fields = campaign["personal_field_verdicts"]
    segment = fields["segment"].iloc[0]
    blocked = fields.assign(decision=fields["decision"].mask(fields.index == fields.index[0], "blocked"))
    report = reporting.build_report(inputs_from({**campaign, "personal_field_verdicts": blocked}))
    personalized = report.personalized
    assert (personalized.field_values_screened, personalized.field_values_withheld) == (len(fields), 1)
    name = reporting.campaign_segments(inputs_from(campaign)).set_index("segment").at[segment, "segment_name"]
    column = personalized.coverage.columns.index("Tier/city values withheld")
    shown = {row[0]: row[column] for row in personalized.coverage.rows}
    assert shown[name] == f"1 of {(fields['segment'] == segment).sum()}"
    html = reporting.render_html(report)
    assert f"were screened too: {len(fields)} values,\n 1 withheld from every line." in html

    unscreened = reporting.build_report(inputs_from(campaign, skip=("personal_field_verdicts",))).personalized
    assert {row[column] for row in unscreened.coverage.rows} == {"not screened"}
    assert unscreened.field_values_screened == 0


def test_report_flags_personalized_messages_that_are_missing_or_stale(campaign):
    gone = reporting.build_report(inputs_from(campaign, skip=("personalized_messages",)))
    assert not gone.personalized.available and gone.personalized.segments == ()
    html = reporting.render_html(gone)
    assert "No personalized messages in the warehouse yet" in html and "not built yet" in html

    stored = campaign["personalized_messages"]
    segment = stored["segment"].iloc[0]
    partial = stored.drop(stored.index[stored["segment"] == segment][:3])  # three customers lost
    report = reporting.build_report(inputs_from({**campaign, "personalized_messages": partial}))
    name = reporting.campaign_segments(inputs_from(campaign)).set_index("segment").at[segment, "segment_name"]
    assert report.personalized.incomplete == (name,)
    row = next(row for row in report.personalized.coverage.rows if row[0] == name)
    assert row[-1].endswith("re-materialize this segment")
    assert "re-materialize <code>personalized_messages</code> for this segment" in reporting.render_html(report)


# ------------------------------------------------------------------------------------------------------------
# The asset: files, PDF pages, notebook, Dagster metadata
# ------------------------------------------------------------------------------------------------------------

SECTIONS = [
    "Executive summary",
    "Lift by segment",
    "Engagement funnel",
    "Sample ratio and power",
    "Segment profiles",
    "Retrieval coverage",
    "Safety audit and cost",
    "What drives response",
    "Winning messages",
    "What each customer receives",
    "How the numbers are made",
]


def campaign_instance(segments, failed: dict[str, str] | None = None):
    """An ephemeral Dagster instance in which each segment partition has a finished campaign run: successful,
    or failed with the given message (as the report finds them after a campaign)."""
    from dagster import DagsterInstance, DagsterRun, DagsterRunStatus
    from dagster._core.utils import make_new_run_id

    from personalization_assets.jobs import CAMPAIGN_JOB
    from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME

    failed = failed or {}
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(SEGMENT_PARTITIONS_NAME, list(segments))
    for segment in segments:
        status = DagsterRunStatus.STARTED if segment in failed else DagsterRunStatus.SUCCESS
        run = instance.add_run(
            DagsterRun(CAMPAIGN_JOB, run_id=make_new_run_id(), status=status, tags={"dagster/partition": segment})
        )
        if segment in failed:
            instance.report_run_failed(run, failed[segment])
    return instance


def materialize_report(campaign, root, failed=None, config_dir=PROJECT_ROOT / "config"):
    from dagster import materialize

    from personalization_assets.reporting import campaign_report
    from resources.settings import PipelineSettings
    from resources.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(path=str(write_warehouse(root / "warehouse.duckdb", campaign)))
    settings = PipelineSettings(config_dir=str(config_dir), reports_dir=str(root / "reports"))
    instance = campaign_instance(campaign["segment_profiles"]["segment"], failed)
    return materialize(
        [campaign_report],
        resources={"settings": settings, "warehouse": warehouse},
        instance=instance,
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def materialized(campaign, tmp_path_factory):
    """One real materialization of campaign_report on a warehouse holding the campaign tables."""
    root = tmp_path_factory.mktemp("report")
    warehouse_path = root / "warehouse.duckdb"
    result = materialize_report(campaign, root)
    assert result.success
    metadata = result.asset_materializations_for_node("campaign_report")[0].metadata
    with duckdb.connect(str(warehouse_path), read_only=True) as connection:
        inputs = reporting.read_inputs(connection, sample_rows=200_000)
    return {
        "run_id": result.run_id,
        "metadata": metadata,
        "folder": Path(metadata["report_folder"].value),
        "inputs": inputs,
        "root": root,
    }


def test_asset_writes_the_report_folder_and_links_it_in_metadata(materialized):
    folder, metadata = materialized["folder"], materialized["metadata"]
    assert folder.parent == materialized["root"] / "reports" and folder.name.endswith(materialized["run_id"][:8])
    for key, name in (
        ("report_html", "campaign_report.html"),
        ("report_pdf", "campaign_report.pdf"),
        ("notebook", "campaign_analysis.ipynb"),
    ):
        assert Path(metadata[key].value) == folder / name and (folder / name).stat().st_size > 0
    assert metadata["report_url"].value == f"http://127.0.0.1:8765/{folder.name}/campaign_report.html"
    assert metadata["lift_chart"].value.startswith("![Lift by segment and tone](data:image/png;base64,")
    assert (folder / "lift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert metadata["segments_not_served"].value == "none"
    recommendations, overall = reporting.recommend(materialized["inputs"])
    expected = reporting.format_headline(
        reporting.headline_frame([overall, *recommendations], reporting.campaign_segments(materialized["inputs"])),
        "conversion",
    )
    assert metadata["headline"].value == expected.to_markdown()
    assert metadata["segments"].value == 5 and metadata["engagement_rows"].value == 1_000
    stored = materialized["inputs"].personalized_summary["messages"].sum()
    assert (
        metadata["personalized_messages"].value
        == stored
        == (materialized["inputs"].funnel.query("arm != 'control'")["sent"].sum())
    )


def test_headline_numbers_equal_experiment_metrics(materialized):
    inputs = materialized["inputs"]
    html = (materialized["folder"] / "campaign_report.html").read_text()
    recommendations, overall = reporting.recommend(inputs)
    headline = reporting.headline_frame([overall, *recommendations], reporting.campaign_segments(inputs))
    metrics = inputs.metrics.set_index(["segment", "arm", "metric"])
    pooled = inputs.pooled.set_index(["arm", "metric"])
    compared = 0
    for row in headline.itertuples():
        if row.arm is None:
            continue
        source = (
            pooled.loc[(row.arm, row.metric)]
            if row.segment == "__pooled__"
            else metrics.loc[(row.segment, row.arm, row.metric)]
        )
        for column in (
            "rate_control",
            "rate_arm",
            "abs_lift",
            "abs_ci_low",
            "abs_ci_high",
            "p_adjusted",
            "prob_beat_control",
        ):
            assert getattr(row, column) == source[column], (row.segment, column)
        shown = (
            reporting.fmt_pp(source["abs_lift"], 2),
            reporting.fmt_ci_pp(source["abs_ci_low"], source["abs_ci_high"], 2),
            f"{reporting.fmt_pct(source['rate_arm'], 2)} {row.arm}\n"
            f"vs {reporting.fmt_pct(source['rate_control'], 2)} control",
        )
        assert all(text in html for text in shown), (row.segment, shown)
        compared += 1
    assert compared == len(headline) - 1  # every row but the control-only segment


def test_html_is_self_contained(materialized):
    html = (materialized["folder"] / "campaign_report.html").read_text()
    assert "<link" not in html and "<script" not in html and 'src="http' not in html and "url(http" not in html
    sources = [part.split('"', 1)[0] for part in html.split('<img src="')[1:]]
    assert len(sources) == 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    import base64

    assert base64.b64decode(sources[0].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_pdf_has_every_section_on_its_own_page_with_charts_and_the_headline_numbers(materialized):
    from pypdf import PdfReader

    reader = PdfReader(materialized["folder"] / "campaign_report.pdf")
    assert len(reader.pages) == materialized["metadata"]["pdf_pages"].value

    def flatten(outline):
        for item in outline:
            yield from flatten(item) if isinstance(item, list) else [item]

    bookmarks = [(b.title, reader.get_destination_page_number(b)) for b in flatten(reader.outline)]
    assert bookmarks[0] == ("Campaign report", 0)
    titles = [title for title, _ in bookmarks[1:]]
    pages = [page for _, page in bookmarks[1:]]
    assert titles == SECTIONS
    assert pages[0] == 0 and all(later > earlier for earlier, later in zip(pages, pages[1:], strict=False))
    assert len(reader.pages) >= len(SECTIONS) + 1  # the summary takes more than a page with five segments
    page_of = dict(zip(titles, pages, strict=True))
    for section in ("Lift by segment", "Engagement funnel", "Retrieval coverage", "What drives response"):
        assert len(reader.pages[page_of[section]].images) >= 1, f"no chart on the {section} page"

    first_page = reader.pages[0].extract_text()
    pooled = materialized["inputs"].pooled
    best = pooled[(pooled["metric"] == "conversion")].sort_values("prob_beat_control").iloc[-1]
    assert reporting.fmt_pp(best["abs_lift"], 2) in first_page
    assert "Which tone to send to which segment" in first_page


def test_notebook_executes_and_reproduces_the_headline(materialized):
    import nbformat

    notebook = nbformat.read(materialized["folder"] / "campaign_analysis.ipynb", as_version=4)
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert all(cell.execution_count for cell in notebook.cells if cell.cell_type == "code")
    injected = next(cell for cell in notebook.cells if "injected-parameters" in cell.metadata.get("tags", []))
    assert "warehouse_path = " in injected.source
    markdown = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert materialized["metadata"]["headline"].value in markdown
    assert any(m.startswith("| Segment") and "Distinct opening lines" in m for m in markdown)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4  # lift, funnel, coverage, attribution: the PNG files the report embeds


def test_notebook_shows_the_report_s_own_charts_and_numbers(materialized):
    """The notebook displays what the report step computed (report_data/, the chart files), not a recomputation."""
    import base64

    import nbformat

    folder = materialized["folder"]
    notebook = nbformat.read(folder / "campaign_analysis.ipynb", as_version=4)
    images = [
        base64.b64decode(o["data"]["image/png"])
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if "image/png" in o.get("data", {})
    ]
    charts = [(folder / name).read_bytes() for name in reporting.CHART_FILES.values()]
    assert images == charts  # the very PNGs the report embeds, in report order
    html = (folder / "campaign_report.html").read_text()
    assert all(reporting.png_data_uri(png) in html for png in charts)

    payload = json.loads((folder / reporting.REPORT_DATA_DIR / reporting.REPORT_DATA_FILE).read_text())
    assert payload["headline_markdown"] == materialized["metadata"]["headline"].value
    assert payload["segments_served"] == materialized["metadata"]["segments_served"].value.split(", ")
    headline = pd.read_parquet(folder / reporting.REPORT_DATA_DIR / "headline.parquet")
    inputs = materialized["inputs"]
    recommendations, overall = reporting.recommend(inputs)
    expected = reporting.headline_frame([overall, *recommendations], reporting.campaign_segments(inputs))
    assert list(headline["segment"]) == list(expected["segment"])
    assert np.allclose(headline["abs_lift"].astype(float), expected["abs_lift"].astype(float), equal_nan=True)
    # The attribution model the report fitted is the one fitted on read_inputs' sample.
    terms = pd.read_parquet(folder / reporting.REPORT_DATA_DIR / "attribution_terms.parquet")
    reference = reporting.feature_attribution(inputs.attribution_sample, "conversion", 0.95).terms
    assert list(terms["term"]) == list(reference["term"])
    assert np.allclose(terms["odds_ratio"], reference["odds_ratio"], rtol=1e-12)


def write_template(path: Path, parameters: str, *cells: str | tuple[str, str]) -> Path:
    """A notebook file: a code cell tagged "parameters", then code cells (source, or (source, tag))."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]})] + [
        nbformat.v4.new_code_cell(cell)
        if isinstance(cell, str)
        else nbformat.v4.new_code_cell(cell[0], metadata={"tags": [cell[1]]})
        for cell in cells
    ]
    nbformat.write(notebook, path)
    return path


def test_notebook_cells_before_the_report_data_run_while_the_step_works(tmp_path):
    """The kernel starts and runs the cells before the first "report-data" cell at once; the hook then decides:
    here it gives up, so the data cells never run and the notebook (saved for debugging) says how far it got."""
    import nbformat

    template = write_template(
        tmp_path / "template.ipynb",
        "report_data = None",
        "ready = 'imports done'",
        ("print(report_data)", reporting.REPORT_DATA_TAG),
    )
    calls = []

    def abandon() -> None:
        calls.append("waited")
        raise RuntimeError("the report step stopped before it wrote the report's data")

    output = tmp_path / "out" / "executed.ipynb"
    with pytest.raises(RuntimeError, match="stopped before it wrote"):
        reporting.execute_notebook(template, output, {"report_data": "x"}, before_report_data=abandon)
    assert calls == ["waited"]
    executed = nbformat.read(output, as_version=4)
    counts = [cell.execution_count for cell in executed.cells]
    assert counts[:-1] == [1, 2, 3]  # parameters, injected parameters, the import cell
    assert counts[-1] is None  # the data cell never ran


def test_the_kernel_process_s_own_output_goes_to_a_log_beside_the_notebook_not_the_terminal(tmp_path, capfd):
    """What the kernel process itself writes (ipykernel's thread tracebacks, such as a heartbeat port taken by
    another process on a busy machine) is not the command's output: it is kept beside the notebook. A quiet
    kernel leaves no log."""
    template = write_template(
        tmp_path / "template.ipynb",
        "report_data = None",
        "import os\nos.write(2, b'zmq.error.ZMQError: Address already in use\\n')",
    )
    output = tmp_path / "out" / "executed.ipynb"
    capfd.readouterr()
    reporting.execute_notebook(template, output, {"report_data": "x"})
    printed = capfd.readouterr()
    assert "ZMQError" not in printed.err + printed.out
    assert "ZMQError: Address already in use" in reporting.kernel_log_path(output).read_text()
    assert reporting.kernel_log_path(output).name == "executed.kernel.log"

    write_template(template, "report_data = None")
    reporting.execute_notebook(template, output, {"report_data": "x"})
    assert not reporting.kernel_log_path(output).exists()


def test_pdf_worker_waits_for_the_charts_it_links(tmp_path):
    """The PDF child lays out a page whose image does not exist yet; it is written after render() returned."""
    from pypdf import PdfReader

    png = reporting.figure_png(reporting.charts._message_figure("drawn after the page was sent"))
    html = '<html><body><h1>Report</h1><img src="chart.png" style="width: 80%"></body></html>'
    with reporting.PdfWorker() as worker:
        worker.render(html, tmp_path, tmp_path / "out.pdf", wait_for=["chart.png"], timeout=300)
        (tmp_path / ".chart.png.tmp").write_bytes(png)
        (tmp_path / ".chart.png.tmp").rename(tmp_path / "chart.png")
        assert worker.pages() == 1
    reader = PdfReader(tmp_path / "out.pdf")
    assert len(reader.pages[0].images) == 1
    assert "Report" in reader.pages[0].extract_text()


@pytest.mark.parametrize("announced_off_by", [0.0, 0.25])
def test_pdf_pages_are_laid_out_before_an_announced_chart_is_drawn(tmp_path, monkeypatch, announced_off_by):
    """With a chart's size announced, the pages are laid out with a blank stand-in while the chart is not drawn
    yet, and the drawn chart takes its place: the PDF holds the real pixels, never the stand-in. A shape far off
    the announced one (25 % here) makes the worker lay the pages out again with the real chart, and say so.
    (In-process: the chart is "drawn" at the moment the worker first waits for it, after layout.)"""
    import io

    from matplotlib.figure import Figure
    from PIL import Image
    from pypdf import PdfReader

    from personalization_assets.lib.reporting import pdf_worker

    figure = Figure(figsize=(6.0, 2.0), layout="constrained")  # as the report's charts: a layout that fills it
    axis = figure.subplots()
    axis.plot([0, 1], [0, 1], color="black")
    axis.set_title("drawn after the pages were laid out")
    png = reporting.figure_png(figure)
    drawn = Image.open(io.BytesIO(png))
    width, height = reporting.chart_sizes({"lift": figure})["lift.png"]
    assert abs(width - drawn.width) <= 2 and abs(height - drawn.height) <= 2  # the tight crop: a pixel or two
    announced = {"lift.png": (width, round(height * (1 + announced_off_by)))}
    awaited = []

    def draw_when_awaited(path, timeout):
        awaited.append(path.name)
        if not path.exists():
            path.write_bytes(png)

    monkeypatch.setattr(pdf_worker, "_await_file", draw_when_awaited)
    html = (
        "<html><head><style>img { width: 80%; display: block; object-fit: contain; }</style></head>"
        '<body><h1>Report</h1><img src="lift.png"><p>after the chart</p></body></html>'
    )
    answer = pdf_worker.render_pdf(html, tmp_path, tmp_path / "out.pdf", ["lift.png"], announced)
    assert answer == {"pages": 1, "relaid": announced_off_by > 0, "stand_ins": 1}
    assert awaited == ["lift.png"]  # layout never waited: only the swap did
    page = PdfReader(tmp_path / "out.pdf").pages[0]
    (image,) = page.images
    assert image.image.size == drawn.size  # the drawn chart, not the stand-in of the announced size
    assert np.asarray(image.image.convert("L")).min() < 128  # the chart's dark text: not a blank stand-in
    text = page.extract_text()
    assert "Report" in text and "after the chart" in text


def test_pdf_worker_takes_announced_chart_sizes(tmp_path):
    """The child process's side of the protocol: sizes travel with the request, the PDF holds the drawn chart."""
    from pypdf import PdfReader

    figure = reporting.charts._message_figure("drawn after the page was sent")
    png = reporting.figure_png(figure)
    html = '<html><body><img src="chart.png" style="width: 80%; object-fit: contain"></body></html>'
    with reporting.PdfWorker() as worker:
        sizes = {"chart.png": reporting.chart_sizes({"lift": figure})["lift.png"]}
        worker.render(html, tmp_path, tmp_path / "out.pdf", wait_for=["chart.png"], timeout=300, sizes=sizes)
        (tmp_path / ".chart.png.tmp").write_bytes(png)
        (tmp_path / ".chart.png.tmp").rename(tmp_path / "chart.png")
        assert worker.pages() == 1
        assert worker.relaid() is False
    (image,) = PdfReader(tmp_path / "out.pdf").pages[0].images
    assert np.asarray(image.image.convert("L")).min() < 128


def test_pdf_worker_names_a_chart_that_never_came(tmp_path):
    html = '<html><body><img src="missing.png"></body></html>'
    with reporting.PdfWorker() as worker:
        worker.render(html, tmp_path, tmp_path / "out.pdf", wait_for=["missing.png"], timeout=0.2)
        with pytest.raises(reporting.PdfRenderError, match="missing.png was not drawn") as failure:
            worker.pages()
    # One line, whatever the paths' length: a traceback's tail once cut the chart's name off in CI.
    assert "Traceback" not in str(failure.value) and "\n" not in str(failure.value).strip()
    assert not (tmp_path / "out.pdf").exists()


def test_attribution_sample_read_apart_is_the_sample_read_inputs_takes(campaign, tmp_path):
    """The report step reads the attribution sample in a thread of its own: the same rows, in the same order."""
    path = write_warehouse(tmp_path / "warehouse.duckdb", campaign)
    with duckdb.connect(str(path), read_only=True) as connection:
        whole = reporting.read_inputs(connection, sample_rows=700, seed=3)
        without = reporting.read_inputs(connection, sample_rows=700, seed=3, attribution_sample=False)
        apart = reporting.read_attribution_sample(connection, sample_rows=700, seed=3)
    assert len(whole.attribution_sample) == 700
    pd.testing.assert_frame_equal(apart, whole.attribution_sample)
    assert without.attribution_sample.empty
    assert list(without.attribution_sample.columns) == list(whole.attribution_sample.columns)
    pd.testing.assert_frame_equal(without.metrics, whole.metrics)
    with duckdb.connect() as empty:
        assert reporting.read_attribution_sample(empty).empty


def test_notebook_parameters_are_injected_as_papermill_injects_them(tmp_path):
    """Same injected cell, tags and metadata as papermill's parameterize_notebook, without importing papermill
    in the report step (values with quotes, backslashes and newlines escaped the same way)."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    template = PROJECT_ROOT / "notebooks" / "campaign_analysis.ipynb"
    parameters = {"report_data": "report_data", "warehouse_path": 'C:\\data\\"w"\nh.duckdb', "rows": 3, "on": True}
    ours = reporting.parameterize(nbformat.read(template, as_version=4), parameters)
    theirs = parameterize_notebook(
        load_notebook_node(str(template)), parameters, kernel_name="python3", language="python"
    )
    assert [cell.source for cell in ours.cells] == [cell.source for cell in theirs.cells]
    assert [cell.metadata for cell in ours.cells] == [cell.metadata for cell in theirs.cells]
    assert ours.metadata["papermill"] == theirs.metadata["papermill"]
    injected = next(cell for cell in ours.cells if "injected-parameters" in cell.metadata["tags"])
    namespace: dict = {}
    exec(injected.source, namespace)
    assert {name: namespace[name] for name in parameters} == parameters
    # Injecting again replaces the injected cell instead of adding a second one.
    again = reporting.parameterize(ours, {"report_data": "elsewhere"})
    assert sum("injected-parameters" in cell.metadata["tags"] for cell in again.cells) == 1
    assert 'report_data = "elsewhere"' in next(
        c.source for c in again.cells if "injected-parameters" in c.metadata["tags"]
    )


def test_reporting_config_rejects_unknown_keys(tmp_path):
    from personalization_assets.config import ConfigError
    from personalization_assets.config.reporting import ReportingConfig
    from resources.settings import PipelineSettings

    (tmp_path / "reporting.yaml").write_text("primary_metrik: open\n")
    with pytest.raises(ConfigError, match="primary_metrik: unknown key"):
        PipelineSettings(config_dir=str(tmp_path)).stage(ReportingConfig)


def test_a_failing_notebook_fails_the_asset_and_names_the_partly_executed_copy(campaign, tmp_path, monkeypatch):
    """The notebook runs beside the HTML/PDF build; its failure still fails the materialization."""
    import shutil

    from personalization_assets import reporting as report_asset

    template = write_template(
        tmp_path / "failing.ipynb", "warehouse_path = None", "raise ValueError('cell three cannot run')"
    )
    monkeypatch.setattr(report_asset, "NOTEBOOK_TEMPLATE", template)
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    (config / "reporting.yaml").write_text("pdf: false\n")

    result = materialize_report(campaign, tmp_path, config_dir=config)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error = failure.step_failure_data.error
    assert "the analysis notebook failed" in error.message
    written = list((tmp_path / "reports").glob("*/campaign_analysis.ipynb"))
    assert len(written) == 1 and str(written[0]) in error.message
    assert "cell three cannot run" in failure.step_failure_data.user_failure_data.metadata["error"].value


# ------------------------------------------------------------------------------------------------------------
# Only what this campaign served: a failed segment is named, never shown with its older rows
# ------------------------------------------------------------------------------------------------------------


def test_a_segment_that_failed_in_this_run_is_named_and_none_of_its_rows_are_shown(campaign, tmp_path):
    segments = list(campaign["segment_profiles"]["segment"])
    failed = segments[1]
    reason = "message_variants: the model service kept failing after 3 retries"
    result = materialize_report(campaign, tmp_path, failed={failed: reason})
    assert result.success
    metadata = result.asset_materializations_for_node("campaign_report")[0].metadata
    assert metadata["segments_not_served"].value == f"{failed} (failed)"
    assert metadata["segments_served"].value == ", ".join(s for s in segments if s != failed)
    assert metadata["segments"].value == len(segments) - 1
    assert f"**{failed}**: failed — {reason}" in metadata["headline"].value
    assert metadata[f"headline not served: {failed}"].value == f"failed: {reason}"
    shown = [key for key in metadata if key.startswith("headline ") and "not served" not in key]
    assert len(shown) == len(segments)  # the pooled line and one per served segment
    html = (Path(metadata["report_folder"].value) / "campaign_report.html").read_text()
    assert "Not in this report." in html
    name = campaign["segment_profiles"].set_index("segment").at[failed, "segment_name"]
    assert str(escape(name)) not in html.split("Not in this report.")[1]  # no table, chart label or card
    # The pooled rows mix every stored segment (the failed one's older rows too): they are left out.
    assert "Pooled" not in metadata["headline"].value


def test_no_report_is_written_when_no_segment_was_served(campaign, tmp_path):
    segments = list(campaign["segment_profiles"]["segment"])
    result = materialize_report(
        campaign, tmp_path, failed={s: "safety_verdicts: service unavailable" for s in segments}
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith("campaign_report: no segment was served")
    assert "no older numbers are presented as current" in description
    assert not list((tmp_path / "reports").glob("*/campaign_report.html"))


def test_restrict_to_segments_keeps_only_their_rows_and_the_whole_audit_chain(campaign):
    inputs = inputs_from(campaign)
    keep = list(campaign["segment_profiles"]["segment"])[:2]
    restricted = reporting.restrict_to_segments(inputs, keep)
    for name in ("profiles", "metrics", "funnel", "variants", "verdicts", "retrieved", "personalized_summary"):
        assert set(getattr(restricted, name)["segment"]) <= set(keep), name
        assert len(getattr(restricted, name)) > 0, name
    assert restricted.engagement_rows == int(inputs.funnel[inputs.funnel["segment"].isin(keep)]["sent"].sum())
    assert len(restricted.audit) == len(inputs.audit)
    assert restricted.pooled.empty
    assert len(reporting.restrict_to_segments(inputs, list(campaign["segment_profiles"]["segment"])).pooled) > 0


def test_a_campaign_of_a_few_customers_reports_without_numpy_warnings():
    """A customer file of a few dozen rows (a CRM report export): arms of one or two customers leave the minimum
    detectable effect undefined. The report shows it as missing; nothing prints a RuntimeWarning ("Mean of empty
    slice") on the command line."""
    inputs = inputs_from(campaign_tables(customers=24))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        reporting.render_html(reporting.render_charts(reporting.build_report(inputs)))
        _, health = experiment_health(inputs.funnel, inputs.metrics, campaign_segments(inputs))
    assert health["mde_abs"].isna().any()  # a segment whose effect sizes are all undefined
