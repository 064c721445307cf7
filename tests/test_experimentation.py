"""Experimentation assets and checks through Dagster: assignment, engagement, metrics, pooled metrics and the
per-customer messages, on the sample customers with small message_variants / safety_verdicts tables written
straight to the warehouse (the generation and safety stages are not run here)."""

import json
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from dagster import AssetKey, DagsterInstance, materialize

from personalization_assets import experimentation, segmentation
from personalization_assets.config import ConfigError
from personalization_assets.config.experiment import ExperimentConfig
from personalization_assets.config.safety import SafetyConfig
from personalization_assets.experimentation import (
    ARMS_BALANCED,
    ASSIGNMENT_COMPLETE,
    FUNNEL_CONSISTENT,
    SAMPLE_RATIO_MATCHES,
)
from personalization_assets.lib import experimentation as lib
from personalization_assets.lib.personalization import (
    opening_lines,
    personal_field_values,
    plain_name,
    render_message,
    tier_name,
)
from personalization_assets.lib.statistics import (
    METRICS_COLUMNS,
    POOLED_SEGMENT,
    SEQUENTIAL_TEST,
    compute_pooled_metrics,
)
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME
from personalization_assets.store import experiment as store
from personalization_assets.store import safety as safety_store
from personalization_assets.workflows import safety as safety_flow
from resources.content_safety import EmbeddedContentSafetyResource
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TONES = ("urgent", "informational", "friendly")
ALL_DEFS = [
    segmentation.load_customers,
    segmentation.customer_segments,
    segmentation.segment_profiles,
    experimentation.assignments,
    experimentation.engagement,
    experimentation.experiment_metrics,
    experimentation.personalized_messages,
    experimentation.pooled_experiment_metrics,
]
PER_SEGMENT = ("assignments", "engagement", "experiment_metrics", "personalized_messages")
BODY = "Hi there,\n\nOur spring trail guide is out [Source: Trail Guide].\n\nBest regards,\nThe team"


# --- helpers ------------------------------------------------------------------------------------------------


def store_variants(
    warehouse,
    segments,
    blocked=None,
    rejected=None,
    unscreened=None,
    rewritten=None,
    minimal_verdicts=False,
    screen_fields=True,
) -> None:
    """Write message_variants and safety_verdicts for `segments`, shaped like the real stages' tables. Every
    tone is valid and approved unless listed in blocked / rejected / unscreened / rewritten (each a
    {segment: {tone, ...}} mapping); a rewritten variant is approved under a new id with a new subject, as the
    safety stage stores a rewrite. `minimal_verdicts` keeps only segment, variant_id, decision. `screen_fields`
    screens the segments' tier and city values with the embedded screen and stores the verdicts."""
    blocked, rejected, unscreened, rewritten = (
        blocked or {},
        rejected or {},
        unscreened or {},
        rewritten or {},
    )
    variants, verdicts = [], []
    for segment in segments:
        for tone in TONES:
            variant = {
                "segment": segment,
                "variant_id": f"{segment}-{tone}-v1",
                "tone": tone,
                "subject": f"{tone.title()}: spring picks for you",
                "body": BODY,
                "citations": json.dumps(["DOC-1"]),
                "status": "rejected" if tone in rejected.get(segment, ()) else "valid",
            }
            variants.append(variant)
            if variant["status"] != "valid" or tone in unscreened.get(segment, ()):
                continue  # safety screens valid variants only
            verdict = {**variant, "source_variant_id": variant["variant_id"], "decision": "approved"}
            if tone in blocked.get(segment, ()):
                verdict["decision"] = "blocked"
            if tone in rewritten.get(segment, ()):
                verdict |= {"variant_id": f"{segment}-{tone}-v2", "subject": f"Rewritten {tone} subject"}
            verdicts.append(verdict)
    variant_frame = pd.DataFrame(variants)  # noqa: F841 (read by DuckDB)
    verdict_frame = pd.DataFrame(verdicts).drop(columns="status")
    if minimal_verdicts:
        verdict_frame = verdict_frame[["segment", "variant_id", "decision"]]
    with warehouse.transaction() as connection:
        connection.execute("create or replace table main.message_variants as select * from variant_frame")
        connection.execute("create or replace table main.safety_verdicts as select * from verdict_frame")
    if screen_fields:  # as the safety stage does: the tier and city values opening lines may quote
        for segment in segments:
            values = safety_store.read_personal_field_values(warehouse, segment)
            screenings = safety_flow.screen_personal_fields(
                values, EmbeddedContentSafetyResource(), SafetyConfig().thresholds
            )
            safety_store.store_field_verdicts(warehouse, segment, safety_flow.field_verdicts(segment, screenings))


def custom_settings(tmp_path: Path, settings: PipelineSettings, changes: dict) -> PipelineSettings:
    """The shipped experiment config with `changes` merged in (nested sections merged, `weights` replaced), in
    a config folder of its own."""
    config = yaml.safe_load((PROJECT_ROOT / "config" / ExperimentConfig.FILENAME).read_text())

    def merge(base: dict, update: dict) -> None:
        for key, value in update.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict) and key != "weights":
                merge(base[key], value)
            else:
                base[key] = value

    merge(config, changes)
    folder = tmp_path / "custom_config"
    folder.mkdir(exist_ok=True)
    (folder / ExperimentConfig.FILENAME).write_text(yaml.safe_dump(config))
    return PipelineSettings(
        customers_path=settings.customers_path,
        content_path=settings.content_path,
        config_dir=str(folder),
        reports_dir=settings.reports_dir,
    )


def run(instance, resources, segment=None, select=PER_SEGMENT, **kwargs):
    return materialize(
        ALL_DEFS,
        selection=list(select),
        partition_key=segment,
        instance=instance,
        resources=resources,
        **kwargs,
    )


def table(warehouse, name: str, segment: str | None = None) -> pd.DataFrame:
    where, params = ("where segment = ?", [segment]) if segment else ("", [])
    return warehouse.read_table(name, where, params)


def checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def metadata(result, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(asset)]
    return {key: getattr(value, "value", value) for key, value in event.materialization.metadata.items()}


def segment_sizes(warehouse) -> pd.Series:
    return table(warehouse, "customer_segments")["segment"].value_counts()


def shipped_settings(folder: Path) -> PipelineSettings:
    return PipelineSettings(
        customers_path=str(PROJECT_ROOT / "data" / "customers.csv"),
        content_path=str(PROJECT_ROOT / "data" / "content"),
        config_dir=str(PROJECT_ROOT / "config"),
        reports_dir=str(folder / "reports"),
    )


@pytest.fixture(scope="module")
def segmented_template(tmp_path_factory) -> tuple[Path, list[str]]:
    """The sample customers segmented once per module: the warehouse file and the segment partition keys."""
    folder = tmp_path_factory.mktemp("segmented")
    warehouse = DuckDBWarehouse(path=str(folder / "warehouse.duckdb"))
    resources = {
        "settings": shipped_settings(folder),
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
    }
    with DagsterInstance.ephemeral() as instance:
        assert materialize(ALL_DEFS[:3], instance=instance, resources=resources).success
        return Path(warehouse.path), sorted(instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME))


@pytest.fixture
def segmented(instance, warehouse, segmented_template):
    """Same state as conftest's `segmented` (segmentation run, partitions registered), copied from a run made
    once per module, so each test does not pay for segmenting again."""
    path, segments = segmented_template
    shutil.copyfile(path, warehouse.path)
    instance.add_dynamic_partitions(SEGMENT_PARTITIONS_NAME, segments)
    return instance


@pytest.fixture
def segments(segmented) -> list[str]:
    return sorted(segmented.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME))


@pytest.fixture
def largest(warehouse, segmented) -> str:
    return str(segment_sizes(warehouse).idxmax())


# --- configuration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, key, problem",
    [
        ({"assignment": {"weights": {"control": 0.5, "urgent": 0.3}}}, "assignment.weights", "sum to 1"),
        (
            {"assignment": {"weights": {"control": 0.75, "urgent": -0.25, "friendly": 0.5}}},
            "assignment.weights.urgent",
            "greater than or equal to 0",
        ),
        ({"assignment": {"weights": {"urgent": 0.5, "friendly": 0.5}}}, "assignment.weights", "'control'"),
        ({"assignment": {"balance_tolerance": 0.5}}, "assignment.balance_tolerance", "less than 0.5"),
        ({"assignment": {"balance_tolerance": 0}}, "assignment.balance_tolerance", "greater than 0"),
        (
            {"assignment": {"min_customers_per_arm": 0}},
            "assignment.min_customers_per_arm",
            "greater than or equal",
        ),
        ({"simulation": {"uplift": {"clip": [0.3, 0.05]}}}, "simulation.uplift.clip", "low <= high"),
        ({"statistics": {"correction": "bonferroni"}}, "statistics.correction", "'holm' or 'fdr_bh'"),
        ({"statistics": {"alpha": 1.5}}, "statistics.alpha", "less than 1"),
        (
            {"engagement": {"source": "file"}},
            "engagement.engagement_events_path",
            "required when source is 'file'",
        ),
        ({"simulation": {"aa_mod": True}}, "simulation.aa_mod", "unknown key"),
    ],
)
def test_bad_config_errors_name_the_file_and_the_key(tmp_path, settings, changes, key, problem):
    bad = custom_settings(tmp_path, settings, changes)
    with pytest.raises(ConfigError) as error:
        bad.stage(ExperimentConfig)
    message = str(error.value)
    assert str(Path(bad.config_dir) / ExperimentConfig.FILENAME) in message
    assert f"  - {key}: " in message
    assert problem in message


def test_weights_summing_to_one_within_1e_9_are_accepted():
    thirds = {"control": 1 / 3, "urgent": 1 / 3, "friendly": 1 / 3 + 5e-10}
    assert ExperimentConfig(assignment={"weights": thirds}).assignment.weights == thirds


def test_an_approved_tone_without_a_configured_weight_names_the_key():
    weights = ExperimentConfig(assignment={"weights": {"control": 0.5, "urgent": 0.5}}).assignment.weights
    assert lib.arm_weights(weights, ["urgent"]) == {"control": 0.5, "urgent": 0.5}
    assert lib.arm_weights(weights, []) == {"control": 1.0}
    with pytest.raises(ValueError, match=r"assignment.weights has no weight for approved tone\(s\) \['friendly'\]"):
        lib.arm_weights(weights, ["urgent", "friendly"])


# --- assignments --------------------------------------------------------------------------------------------


def test_every_customer_is_assigned_once_and_a_rerun_reproduces_it(segmented, base_resources, warehouse, segments):
    store_variants(warehouse, segments)
    segment = segments[0]
    first = run(segmented, base_resources, segment, select=["assignments"])
    stored = table(warehouse, "assignments", segment).sort_values("customer_id", ignore_index=True)
    second = run(segmented, base_resources, segment, select=["assignments"])
    again = table(warehouse, "assignments", segment).sort_values("customer_id", ignore_index=True)

    columns = ["segment", "customer_id", "arm", "variant_id"]
    pd.testing.assert_frame_equal(stored[columns], again[columns])
    assert list(stored.columns) == [*columns, "assigned_at"]
    assert str(stored["assigned_at"].dt.tz) in {"UTC", "Etc/UTC"}
    customers = table(warehouse, "customer_segments", segment)
    assert sorted(stored["customer_id"]) == sorted(customers["customer_id"])
    n = len(customers)
    counts = stored["arm"].value_counts()
    assert set(counts.index) == {"control", *TONES}
    assert all(np.floor(n / 4) <= count <= np.ceil(n / 4) for count in counts)
    treated = stored[stored["arm"] != "control"]
    assert (treated["variant_id"] == segment + "-" + treated["arm"] + "-v1").all()
    assert stored.loc[stored["arm"] == "control", "variant_id"].isna().all()
    for result in (first, second):
        evaluations = checks(result)
        assert evaluations[ASSIGNMENT_COMPLETE].passed
        assert evaluations[ARMS_BALANCED].passed
    info = metadata(first, "assignments")
    assert info["customers"] == n
    assert info["control_only"] is False
    assert "| control" in info["arm_sizes"]
    assert info["customers_control"] == counts["control"]


def test_blocked_variant_drops_its_arm_and_redistributes_its_weight(
    tmp_path, segmented, base_resources, settings, warehouse, segments, largest
):
    store_variants(warehouse, segments, blocked={largest: {"informational"}})
    weights = {"control": 0.4, "urgent": 0.3, "informational": 0.2, "friendly": 0.1}
    resources = {
        **base_resources,
        "settings": custom_settings(tmp_path, settings, {"assignment": {"weights": weights}}),
    }
    result = run(segmented, resources, largest, select=["assignments"])
    stored = table(warehouse, "assignments", largest)
    shares = stored["arm"].value_counts(normalize=True)
    # 0.4 / 0.3 / 0.1 renormalized over the remaining 0.8.
    expected = {"control": 0.5, "urgent": 0.375, "friendly": 0.125}
    assert set(shares.index) == set(expected)
    assert all(abs(shares[arm] - share) <= 1 / len(stored) for arm, share in expected.items())
    assert "informational arm dropped: blocked by safety" in metadata(result, "assignments")["note"]
    assert checks(result)[ARMS_BALANCED].passed

    run(segmented, resources, largest, select=["assignments"])  # same approvals: same assignment
    again = table(warehouse, "assignments", largest)
    key = ["customer_id", "arm", "variant_id"]
    pd.testing.assert_frame_equal(
        stored[key].sort_values("customer_id", ignore_index=True),
        again[key].sort_values("customer_id", ignore_index=True),
    )


def test_gate_reads_rejections_missing_verdicts_and_rewrites(warehouse, segmented, segments):
    segment = segments[0]
    store_variants(
        warehouse,
        segments,
        rejected={segment: {"urgent"}},
        unscreened={segment: {"friendly"}},
        rewritten={segment: {"informational"}},
    )
    gate = lib.variant_gate(*store.read_variant_tables(warehouse, segment)).set_index("tone")
    assert gate["approved"].to_dict() == {"urgent": False, "informational": True, "friendly": False}
    assert gate.loc["urgent", "reason"] == "rejected by generation (status rejected)"
    assert gate.loc["friendly", "reason"] == "no safety verdict (not screened)"
    # The safety stage's rewrite is what gets sent: its id and its screened subject.
    rewrite = gate.loc["informational"]
    assert (rewrite["source_variant_id"], rewrite["variant_id"]) == (
        f"{segment}-informational-v1",
        f"{segment}-informational-v2",
    )
    assert rewrite["subject"] == "Rewritten informational subject"
    assert rewrite["reason"] == f"approved after a safety rewrite ({segment}-informational-v2)"

    # A verdict table with only the contract's key columns works the same way.
    store_variants(warehouse, segments, blocked={segment: {"urgent"}}, minimal_verdicts=True)
    gate = lib.variant_gate(*store.read_variant_tables(warehouse, segment)).set_index("tone")
    assert gate["approved"].to_dict() == {"urgent": False, "informational": True, "friendly": True}
    assert gate.loc["urgent", "reason"] == "blocked by safety (blocked)"


def test_all_variants_blocked_runs_control_only_and_says_so(segmented, base_resources, warehouse, segments):
    segment = segments[0]
    store_variants(warehouse, segments, blocked={segment: set(TONES)})
    result = run(segmented, base_resources, segment)
    assert result.success
    assert set(table(warehouse, "assignments", segment)["arm"]) == {"control"}
    info = metadata(result, "assignments")
    assert info["control_only"] is True
    assert info["note"].startswith("no approved variant (")
    assert "blocked by safety" in info["note"]
    logs = [entry.user_message for entry in segmented.all_logs(result.run_id)]
    assert any(f"segment '{segment}': no approved variant" in message for message in logs)
    assert table(warehouse, "experiment_metrics", segment).empty
    assert metadata(result, "experiment_metrics")["comparisons"] == 0
    assert table(warehouse, "personalized_messages", segment).empty
    assert all(evaluation.passed for evaluation in checks(result).values())


def test_variants_must_be_generated_and_screened_first(warehouse, segmented, segments):
    with pytest.raises(store.MissingInput, match="message_variants, safety_verdicts not in the warehouse"):
        store.read_variant_tables(warehouse, segments[0])


# --- engagement, metrics, messages ------------------------------------------------------------------------


def test_whole_experiment_for_every_segment_and_pooled(segmented, base_resources, warehouse, segments):
    store_variants(warehouse, segments, blocked={segments[0]: {"urgent"}})
    for segment in segments:
        # personalized_messages has its own tests; leaving it out keeps this one quick.
        result = run(segmented, base_resources, segment, select=PER_SEGMENT[:3])
        assert result.success
        evaluations = checks(result)
        assert set(evaluations) == {
            ASSIGNMENT_COMPLETE,
            ARMS_BALANCED,
            SAMPLE_RATIO_MATCHES,
            FUNNEL_CONSISTENT,
        }
        assert evaluations[SAMPLE_RATIO_MATCHES].passed
        assert evaluations[FUNNEL_CONSISTENT].passed
        info = metadata(result, "experiment_metrics")
        assert "abs. lift [95% CI]" in info["metrics"]
        assert "p adj." in info["metrics"]
        assert info["families"] == len(segments) + 1
        assert isinstance(info["significant_comparisons"], int)

    engagement = table(warehouse, "engagement")
    assert len(engagement) == len(table(warehouse, "customers"))
    assert not (engagement["clicked"] & ~engagement["opened"]).any()
    assert not (engagement["converted"] & ~engagement["clicked"]).any()

    metrics = table(warehouse, "experiment_metrics")
    assert list(metrics.columns) == METRICS_COLUMNS
    arms = metrics.groupby("segment")["arm"].unique().map(sorted)
    assert arms[segments[0]] == ["friendly", "informational"]
    assert all(arms[segment] == sorted(TONES) for segment in segments[1:])
    assert (metrics.groupby("segment").size() == arms.map(len) * 3).all()  # open, click, conversion per arm
    assert metrics["p_adjusted"].dropna().ge(metrics["p_value"].dropna()).all()

    pooled_run = materialize(
        ALL_DEFS, selection=["pooled_experiment_metrics"], instance=segmented, resources=base_resources
    )
    pooled = table(warehouse, "pooled_experiment_metrics")
    assert list(pooled.columns) == METRICS_COLUMNS
    assert set(pooled["segment"]) == {POOLED_SEGMENT}
    by_arm = pooled[pooled["metric"] == "open"].set_index("arm")
    # Stratified: the urgent arm pools only the segments that have it; each customer of an arm counts once.
    assert by_arm.loc["urgent", "n_segments"] == len(segments) - 1
    assert by_arm.loc["friendly", "n_segments"] == len(segments)
    assert by_arm.loc["friendly", "n_arm"] == (engagement["arm"] == "friendly").sum()
    assert metadata(pooled_run, "pooled_experiment_metrics")["segments"] == len(segments)
    # The statistics read engagement as counts rebuilt into rows; the figures equal those of the stored rows.
    stored_rows = engagement.drop(columns="customer_id")
    pd.testing.assert_frame_equal(
        compute_pooled_metrics(store.read_engagement(warehouse)), compute_pooled_metrics(stored_rows)
    )
    pd.testing.assert_series_equal(
        pooled["p_value"], compute_pooled_metrics(stored_rows)["p_value"], check_exact=False, rtol=1e-12
    )


def test_aa_mode_sets_every_uplift_to_zero(tmp_path, segmented, base_resources, settings, warehouse, segments, largest):
    store_variants(warehouse, segments)
    run(segmented, base_resources, largest, select=["assignments", "engagement"])
    with_uplift = table(warehouse, "engagement", largest).set_index("customer_id").sort_index()
    aa = {
        **base_resources,
        "settings": custom_settings(tmp_path, settings, {"simulation": {"aa_mode": True}}),
    }
    result = run(segmented, aa, largest, select=["engagement"])
    without = table(warehouse, "engagement", largest).set_index("customer_id").sort_index()

    info = metadata(result, "engagement")
    assert "A/A mode" in info["source"]
    assert info["true_uplifts"].count("+0.0%") == 4
    control = with_uplift["arm"] == "control"
    # Same seed: control customers are untouched, and with the uplift removed nobody opens who did not before.
    pd.testing.assert_frame_equal(with_uplift[control], without[control])
    assert (without["opened"] <= with_uplift["opened"]).all()
    assert without.loc[~control, "opened"].sum() < with_uplift.loc[~control, "opened"].sum()


def test_recorded_engagement_file_replaces_the_simulation(
    tmp_path, segmented, base_resources, settings, warehouse, segments, largest
):
    store_variants(warehouse, segments)
    run(segmented, base_resources, largest, select=["assignments"])
    assigned = table(warehouse, "assignments", largest)
    # Crafted outcomes: everyone in urgent opens, clicks and converts, nobody else does; revenue 10 each.
    urgent = (assigned["arm"] == "urgent").to_numpy()
    events = pd.DataFrame(
        {
            "customer_id": assigned["customer_id"],
            "opened": urgent,
            "clicked": urgent,
            "converted": urgent,
            "revenue": np.where(urgent, 10.0, 0.0),
        }
    )
    events.to_csv(tmp_path / "events.csv", index=False)
    recorded = custom_settings(
        tmp_path, settings, {"engagement": {"source": "file", "engagement_events_path": "../events.csv"}}
    )
    result = run(
        segmented,
        {**base_resources, "settings": recorded},
        largest,
        select=["engagement", "experiment_metrics"],
    )
    engagement = table(warehouse, "engagement", largest)
    assert (
        engagement.set_index("customer_id")["opened"]
        .sort_index()
        .equals(events.set_index("customer_id")["opened"].sort_index())
    )
    assert "recorded" in metadata(result, "engagement")["source"]
    metrics = table(warehouse, "experiment_metrics", largest).set_index(["arm", "metric"])
    assert metrics.loc[("urgent", "open"), "rate_arm"] == 1.0
    # Recorded engagement is refreshed over time: always-valid sequential tests, one look so far.
    assert metrics.loc[("urgent", "open"), "significant"]
    assert (metrics["test"] == SEQUENTIAL_TEST).all()
    assert (metrics["looks"] == 1).all()
    assert metrics.loc[("friendly", "open"), "rate_arm"] == 0.0
    assert metrics.loc[("urgent", "revenue"), "rate_arm"] == 10.0

    # A refresh with the same counts is not a new look; one with new events is, and the count is reported.
    recorded_resources = {**base_resources, "settings": recorded}
    run(segmented, recorded_resources, largest, select=["experiment_metrics"])
    assert (table(warehouse, "experiment_metrics", largest)["looks"] == 1).all()
    events.loc[~urgent, "opened"] = np.arange((~urgent).sum()) % 2 == 0
    events.to_csv(tmp_path / "events.csv", index=False)
    refreshed = run(segmented, recorded_resources, largest, select=["engagement", "experiment_metrics"])
    assert (table(warehouse, "experiment_metrics", largest)["looks"] == 2).all()
    assert metadata(refreshed, "experiment_metrics")["looks"] == 2

    events.iloc[1:].to_csv(tmp_path / "events.csv", index=False)  # one assigned customer has no record
    failed = run(
        segmented,
        {**base_resources, "settings": recorded},
        largest,
        select=["engagement"],
        raise_on_error=False,
    )
    assert not failed.success
    assert "no row for 1 assigned customer(s)" in str(failed.get_step_failure_events()[0].step_failure_data.error)


def test_personalized_messages_for_every_treated_customer(segmented, base_resources, warehouse, segments, largest):
    store_variants(warehouse, segments, rewritten={largest: {"friendly"}})
    result = run(segmented, base_resources, largest, select=["assignments", "personalized_messages"])
    messages = table(warehouse, "personalized_messages", largest)
    assigned = table(warehouse, "assignments", largest)
    treated = assigned[assigned["arm"] != "control"]
    assert list(messages.columns) == [
        "segment",
        "customer_id",
        "arm",
        "variant_id",
        "subject",
        "opening_line",
    ]
    assert sorted(messages["customer_id"]) == sorted(treated["customer_id"])  # each once, no control rows
    rewritten = messages["arm"] == "friendly"
    assert (messages.loc[rewritten, "variant_id"] == f"{largest}-friendly-v2").all()
    assert (messages.loc[rewritten, "subject"] == "Rewritten friendly subject").all()
    others = messages[~rewritten]
    assert (others["subject"] == others["arm"].str.title() + ": spring picks for you").all()

    customers = table(warehouse, "customers").set_index("customer_id")
    row = messages.iloc[0]
    person = customers.loc[row["customer_id"]]
    assert f"{person['tier']} members in {person['location']}" in row["opening_line"]
    assert not messages["opening_line"].str.contains(r"C\d{6}").any()  # no ids in the text
    info = metadata(result, "personalized_messages")
    assert info["messages"] == len(treated)
    assert info["control_customers_without_message"] == len(assigned) - len(treated)
    full = render_message(row["opening_line"], BODY)
    assert full.startswith("Hi there,\n\n" + row["opening_line"] + "\n\nOur spring trail guide")


def test_opening_lines_quote_only_field_values_the_safety_stage_approved(
    segmented, base_resources, warehouse, segments, largest
):
    # Never screened (no personal_field_verdicts yet): fail closed, no tier or city in any line.
    store_variants(warehouse, segments, screen_fields=False)
    result = run(segmented, base_resources, largest, select=["assignments", "personalized_messages"])
    lines = table(warehouse, "personalized_messages", largest)["opening_line"]
    customers = table(warehouse, "customers")
    quoted = safety_store.read_personal_field_values(warehouse, largest)
    assert quoted
    assert not lines.str.contains("|".join(quoted)).any()
    assert metadata(result, "personalized_messages")["personal_field_values_withheld"] == len(quoted)

    # A city the screen blocks is left out of its customers' lines; every other value is quoted.
    assigned = table(warehouse, "assignments", largest)
    member = assigned.loc[assigned["arm"] != "control", "customer_id"].iloc[0]  # the assignment is deterministic
    with warehouse.transaction() as connection:
        connection.execute("update customers set location = 'Kill All Immigrants' where customer_id = ?", [member])
    store_variants(warehouse, segments)
    verdicts = table(warehouse, "personal_field_verdicts", largest).set_index("value")
    assert verdicts.at["Kill All Immigrants", "decision"] == "blocked"
    assert "hate severity 7 >= 4" in verdicts.at["Kill All Immigrants", "reasons"]
    assert (verdicts.drop(index="Kill All Immigrants")["decision"] == "approved").all()
    result = run(segmented, base_resources, largest, select=["assignments", "personalized_messages"])
    messages = table(warehouse, "personalized_messages", largest).set_index("customer_id")
    assert not messages["opening_line"].str.contains("Kill").any()
    tier = customers.set_index("customer_id").at[member, "tier"]  # still a message, without the city
    assert f"As one of our {tier} members," in messages.at[member, "opening_line"]
    others = customers[customers["customer_id"].isin(messages.index) & (customers["customer_id"] != member)]
    person = others.iloc[0]
    assert f"{person['tier']} members in {person['location']}" in messages.at[person["customer_id"], "opening_line"]
    assert metadata(result, "personalized_messages")["personal_field_values_withheld"] == 1


def test_messages_refuse_a_variant_blocked_after_the_assignment(segmented, base_resources, warehouse, segments):
    segment = segments[0]
    store_variants(warehouse, segments)
    run(segmented, base_resources, segment, select=["assignments"])
    store_variants(warehouse, segments, blocked={segment: {"urgent"}})
    result = run(segmented, base_resources, segment, select=["personalized_messages"], raise_on_error=False)
    assert not result.success
    error = str(result.get_step_failure_events()[0].step_failure_data.error)
    assert f"{segment}-urgent-v1" in error
    assert "re-materialize assignments" in error


def test_opening_lines_use_clean_fields_only():
    lines = opening_lines(
        pd.Series(["friendly", "urgent", "informational", "friendly"]),
        pd.Series(["Gold", "<b>VIP</b>", None, "Silver"]),
        pd.Series(["Denver", "Austin", "Salt Lake City", "x" * 60]),
        pd.Series([3, 45, np.nan, 200]),
    )
    assert lines.tolist() == [
        "Good to see you again so soon. As one of our Gold members in Denver, we chose this one just for you.",
        "It's been a couple of months since we last heard from you. For our customers in Austin, here's "
        "something you'll want to act on quickly.",
        "For our customers in Salt Lake City, here's an update we picked out for you.",
        "It's been a while, and we've missed you. As one of our Silver members, we chose this one just for you.",
    ]
    assert plain_name("  New   York ") == "New York"
    assert plain_name("Robert'); DROP TABLE") == ""
    tiers, cities = pd.Series(["Gold", "Gold", None]), pd.Series(["Denver", "  Salt  Lake City", "<b>x</b>"])
    assert personal_field_values(tiers, cities) == ["Denver", "Gold", "Salt Lake City"]
    screened = opening_lines(
        pd.Series(["friendly"] * 3), tiers, cities, pd.Series([3, 3, 3]), allowed_fields={"Gold", "Salt Lake City"}
    )
    assert [line.split(". ", 1)[1] for line in screened] == [
        "As one of our Gold members, we chose this one just for you.",  # Denver not approved: left out
        "As one of our Gold members in Salt Lake City, we chose this one just for you.",
        "We chose this one just for you.",
    ]
    assert render_message("Line.", "A long first paragraph that is clearly not a greeting at all.") == (
        "Line.\n\nA long first paragraph that is clearly not a greeting at all."
    )


@pytest.mark.parametrize("allowed", [None, {"Gold", "Platinum", "Zürich", "Denver", "St. John's"}])
def test_opening_lines_equal_one_sentence_per_row(allowed):
    """On many distinct values (tier spellings, accents, markup, unknown and missing tones, missing and negative
    days), each line is `opening_sentence` of its own row's quoted fields and recency band."""
    from personalization_assets.lib.personalization import RECENCY_BANDS, opening_sentence, tier_name

    rng = np.random.default_rng(8)
    rows = 3_000
    tones = pd.Series(rng.choice(["friendly", "urgent", "informational", "teaser", None], rows), dtype=object)
    tiers = pd.Series(rng.choice(["Gold", "GOLD", "gold", "Platinum", "<b>VIP</b>", "McSilver", None], rows))
    cities = [f"{stem} {n}" for stem in ("Zürich", "St. John's", "Denver", "x" * 45) for n in range(25)]
    locations = pd.Series(rng.choice([*cities, "Zürich", unicodedata.normalize("NFD", "Zürich"), None], rows))
    days = pd.Series(rng.choice([0, 3, 7, 8, 30, 31, 90, 91, 400, -2, np.nan], rows))

    def quoted(text: str) -> str:
        return text if allowed is None or text in allowed else ""

    bounds = [bound for bound, _ in RECENCY_BANDS]
    expected = [
        opening_sentence(
            "" if tone is None else str(tone),
            quoted(tier_name(tier)),
            quoted(plain_name(location)),
            -1 if pd.isna(day) or day < 0 else int(np.searchsorted(bounds, day, side="left")),
        )
        for tone, tier, location, day in zip(tones, tiers, locations, days, strict=True)
    ]
    lines = opening_lines(tones, tiers, locations, days, allowed_fields=allowed)
    assert lines.tolist() == expected
    assert str(lines.dtype) == str(pd.StringDtype("pyarrow")) and lines.name == "opening_line"


@pytest.mark.parametrize(
    ("city", "quoted"),
    [("São Paulo", "São Paulo"), ("Zürich", "Zürich"), ("Kraków", "Kraków"), ("Malmö", "Malmö")],
)
def test_accented_cities_are_quoted_as_written(city, quoted):
    decomposed = unicodedata.normalize("NFD", city)  # how macOS exports write accents
    lines = opening_lines(
        pd.Series(["friendly", "friendly"]),
        pd.Series(["Gold", "Gold"]),
        pd.Series([city, decomposed]),
        pd.Series([3, 3]),
    )
    assert all(f"in {quoted}," in line for line in lines)
    assert personal_field_values(pd.Series(["Gold"]), pd.Series([city, decomposed])) == sorted(["Gold", quoted])


def test_tier_case_is_normalized_for_display_only():
    assert tier_name("PLATINUM") == "Platinum"
    assert tier_name("gold") == "Gold"
    assert tier_name("McSilver") == "McSilver"
    line = opening_lines(pd.Series(["friendly"]), pd.Series(["PLATINUM"]), pd.Series(["Denver"]), pd.Series([3]))[0]
    assert "As one of our Platinum members in Denver" in line
    assert personal_field_values(pd.Series(["PLATINUM", "platinum"]), pd.Series([], dtype=object)) == ["Platinum"]


# --- checks on crafted data -------------------------------------------------------------------------------
# The assets evaluate their checks on the frame they are about to store, with these functions.


@dataclass(frozen=True)
class Experiment:
    """One segment's assignment and engagement as the pipeline stored them, and its design weights."""

    members: pd.Series
    assignments: pd.DataFrame
    engagement: pd.DataFrame
    weights: dict[str, float]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, segmented_template) -> Experiment:
    """The largest segment assigned and simulated once per module."""
    folder = tmp_path_factory.mktemp("experiment")
    path, segments = segmented_template
    warehouse = DuckDBWarehouse(path=str(folder / "warehouse.duckdb"))
    shutil.copyfile(path, warehouse.path)
    resources = {
        "settings": shipped_settings(folder),
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
    }
    store_variants(warehouse, segments)
    segment = str(segment_sizes(warehouse).idxmax())
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(SEGMENT_PARTITIONS_NAME, segments)
        assert run(instance, resources, segment, select=["assignments", "engagement"]).success
    return Experiment(
        store.read_segment_members(warehouse, segment),
        table(warehouse, "assignments", segment),
        table(warehouse, "engagement", segment),
        dict.fromkeys(["control", *TONES], 0.25),
    )


def test_assignment_complete_fails_on_missing_duplicate_and_foreign_rows(experiment):
    assigned = experiment.assignments
    good = lib.assignment_completeness(experiment.members, assigned)
    assert good.passed
    assert good.metadata["expected_customers"] == len(assigned)

    foreign = assigned.iloc[[0]].assign(customer_id="C999999")
    result = lib.assignment_completeness(
        experiment.members, pd.concat([assigned.iloc[2:], assigned.iloc[[2]], foreign])
    )
    assert not result.passed
    figures = result.metadata
    counts = (figures["missing_customers"], figures["duplicate_rows"], figures["unexpected_customers"])
    assert counts == (2, 1, 1)
    assert "2 missing customers" in result.description
    assert "1 duplicate rows" in result.description
    assert figures["examples_unexpected"].startswith("cust_")
    assert "C999999" not in str(figures)


def test_arms_balanced_warns_with_the_numbers(experiment):
    assigned = experiment.assignments
    assert lib.arm_balance(assigned, experiment.weights, 0.05, 5)[0].passed

    skewed = assigned.copy()
    skewed.loc[skewed.index[skewed["arm"] == "friendly"][: len(skewed) // 8], "arm"] = "control"
    result, _ = lib.arm_balance(skewed, experiment.weights, 0.05, 5)
    assert not result.passed
    assert "arm 'control': share" in result.description
    assert "tolerance ±5 points" in result.description
    assert result.metadata["max_deviation_points"] > 5

    few = pd.concat([assigned[assigned["arm"] != "friendly"], assigned[assigned["arm"] == "friendly"].head(3)])
    thin, _ = lib.arm_balance(few, experiment.weights, 0.05, 5)
    assert not thin.passed
    assert "arm 'friendly': 3 customer(s), below the minimum of 5" in thin.description
    assert thin.metadata["smallest_arm_customers"] == 3


def test_sample_ratio_check_reconciles_every_row_with_the_assignment(experiment):
    assigned, engagement, weights = experiment.assignments, experiment.engagement, experiment.weights
    good = lib.sample_ratio_reconciliation(assigned, engagement, weights)
    assert good.passed
    assert good.metadata["lost_rows"] == 0
    assert good.metadata["max_deviation_from_deal"] <= 1

    # One customer of the urgent arm lost between assignment and analysis: a chi-square could never see it.
    urgent = engagement.index[engagement["arm"] == "urgent"]
    one_lost = lib.sample_ratio_reconciliation(assigned, engagement.drop(urgent[:1]), weights)
    assert not one_lost.passed
    assert "1 assigned customer(s) lost (urgent 1)" in one_lost.description
    assert one_lost.metadata["p_value"] > 0.5
    arms = one_lost.metadata["arms"].set_index("arm")
    assert arms.loc["urgent", "lost"] == 1
    assert arms.loc["urgent", "analysed"] == arms.loc["urgent", "assigned"] - 1

    duplicated = lib.sample_ratio_reconciliation(assigned, pd.concat([engagement, engagement.iloc[:2]]), weights)
    assert not duplicated.passed
    assert duplicated.metadata["duplicated_rows"] == 2

    moved = engagement.assign(arm=engagement["arm"].replace({"friendly": "playful"}))
    stray = lib.sample_ratio_reconciliation(assigned, moved, weights)
    assert not stray.passed
    assert stray.metadata["moved_rows"] == (engagement["arm"] == "friendly").sum()


def test_sample_ratio_check_flags_an_assignment_off_the_exact_deal(experiment):
    assigned = experiment.assignments
    shifted = assigned.copy()
    friendly = shifted.index[shifted["arm"] == "friendly"][:3]
    shifted.loc[friendly, "arm"] = "control"  # the same customers analysed, but not as dealt by the weights
    result = lib.sample_ratio_reconciliation(shifted, shifted, experiment.weights)
    assert not result.passed
    assert "off the exact deal in arm(s) ['control', 'friendly']" in result.description


def test_dropped_customers_pass_only_while_every_arm_keeps_the_same_share(experiment):
    assigned, engagement, weights = experiment.assignments, experiment.engagement, experiment.weights
    every_tenth = engagement.iloc[::10].index  # customers without a record, spread over the arms
    spread = lib.sample_ratio_reconciliation(assigned, engagement.drop(every_tenth), weights, allow_loss=True)
    assert spread.passed
    assert "allowed: engagement.missing is drop" in spread.description
    urgent = engagement.index[engagement["arm"] == "urgent"]
    one_arm = lib.sample_ratio_reconciliation(assigned, engagement.drop(urgent[: len(urgent) // 2]), weights, True)
    assert not one_arm.passed
    assert one_arm.metadata["retention_p_value"] < 0.001


def test_funnel_consistent_fails_on_a_click_without_an_open(experiment):
    engagement = experiment.engagement
    assert lib.funnel_consistency(engagement).passed
    broken = engagement.copy()
    broken.loc[broken.index[:2], ["opened", "clicked", "converted"]] = [False, True, False]
    broken.loc[broken.index[2], ["opened", "clicked", "converted"]] = [True, False, True]
    result = lib.funnel_consistency(broken)
    assert not result.passed
    assert result.metadata["clicks_without_open"] == 2
    assert result.metadata["conversions_without_click"] == 1
    assert str(broken["arm"].iloc[0]) in set(result.metadata["by_arm"]["arm"])


def test_a_failed_blocking_check_stops_the_downstream_assets(segmented, base_resources, warehouse, segments):
    segment = segments[0]
    store_variants(warehouse, segments)
    with warehouse.transaction() as connection:  # a segment member the customers table does not have
        connection.execute(
            "insert into main.customer_segments by name select ? as segment, 'C999999' as customer_id",
            [segment],
        )
    result = run(segmented, base_resources, segment, raise_on_error=False)
    evaluation = checks(result)[ASSIGNMENT_COMPLETE]
    assert not evaluation.passed
    assert "1 missing customers" in evaluation.description
    # Checked before written: the failed blocking check stops assignments itself, so nothing is stored.
    assert result.get_asset_materialization_events() == []
