"""Segmentation: rule and K-means logic (plain functions) and the Dagster assets that register partitions."""

import pandas as pd
import pytest
from dagster import materialize

from personalization_assets import segmentation
from personalization_assets.config import ConfigError, load_yaml_model
from personalization_assets.config.segmentation import SegmentationConfig
from personalization_assets.constants import PER_SEGMENT_TABLES
from personalization_assets.launch import run_warnings
from personalization_assets.lib.privacy import hash_customer_id
from personalization_assets.lib.segmentation import (
    Condition,
    Rule,
    assign_kmeans_segments,
    assign_rule_segments,
    profile_segments,
    slugify,
)
from personalization_assets.lib.synthetic import generate_customers
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME
from resources.settings import PipelineSettings

SEGMENTATION_ASSETS = [
    segmentation.load_customers,
    segmentation.customer_segments,
    segmentation.segment_profiles,
]


def customer(**values) -> dict:
    base = dict(
        customer_id="C1",
        age=40,
        location="Boston",
        tier="Gold",
        purchase_frequency=5.0,
        avg_order_value=100.0,
        last_engagement_days=10,
        historical_open_rate=0.3,
        historical_click_rate=0.05,
    )
    return base | values


@pytest.fixture
def default_config(settings) -> SegmentationConfig:
    return settings.load("segmentation.yaml", SegmentationConfig)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (dict(avg_order_value=250, last_engagement_days=5), "high_value_recent"),
        # High value but lapsed and frequent: the first rule fails on recency, at-risk matches.
        (dict(avg_order_value=250, last_engagement_days=45, purchase_frequency=8), "at_risk"),
        (dict(purchase_frequency=2), "new_customer"),
        (dict(purchase_frequency=15, historical_open_rate=0.5), "loyal_frequent"),
        # Frequent and engaged but lapsed: at-risk comes before loyal in the rule order.
        (dict(purchase_frequency=15, historical_open_rate=0.5, last_engagement_days=60), "at_risk"),
        (dict(purchase_frequency=5), "standard"),
        # Boundaries are strict, as in the rules ("> 200", "< 30").
        (dict(avg_order_value=200, last_engagement_days=5), "standard"),
        (dict(avg_order_value=250, last_engagement_days=30), "standard"),
    ],
)
def test_default_rules_first_match_wins(default_config, values, expected):
    frame = pd.DataFrame([customer(**values)])
    segments, _ = segmentation.segment_customers(frame, default_config)
    assert segments.loc[0, "segment"] == expected


def test_rule_order_is_configurable():
    frame = pd.DataFrame([customer(purchase_frequency=15, historical_open_rate=0.5, last_engagement_days=60)])
    at_risk = Rule("at_risk", "At-Risk", "win_back", (Condition("last_engagement_days", ">", 30),))
    loyal = Rule("loyal", "Loyal", "loyalty", (Condition("purchase_frequency", ">", 12),))
    default = Rule("standard", "Standard", "nurture", ())
    assert assign_rule_segments(frame, [at_risk, loyal], default).loc[0, "segment"] == "at_risk"
    assert assign_rule_segments(frame, [loyal, at_risk], default).loc[0, "segment"] == "loyal"


def test_kmeans_is_seeded_named_and_within_3_to_5():
    customers = generate_customers(3000, seed=5)
    first = assign_kmeans_segments(customers, seed=1)
    second = assign_kmeans_segments(customers, seed=1)
    assert 3 <= first.k <= 5 and set(first.silhouette_by_k) == {3, 4, 5}
    pd.testing.assert_frame_equal(first.segments, second.segments)
    keys = first.segments["segment"].unique()
    assert len(keys) == first.k
    assert all(key == slugify(key) for key in keys)
    fixed = assign_kmeans_segments(customers, k=4, seed=1)
    assert fixed.k == 4 and fixed.segments["segment"].nunique() == 4


def test_profiles_sum_to_population():
    customers = generate_customers(2000, seed=2)
    segments = assign_kmeans_segments(customers, k=3).segments
    profiles = profile_segments(customers, segments)
    assert profiles["customers"].sum() == 2000
    assert profiles["share"].sum() == pytest.approx(1.0)
    assert {"mean_avg_order_value", "median_last_engagement_days", "tier_mix", "engagement_level"} <= set(
        profiles.columns
    )


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("method: rules\nrules: []\n", "method 'rules' needs at least one rule"),
        ("method: clustering\n", "method: Input should be 'rules' or 'kmeans'"),
        ("methd: rules\n", "methd: unknown key"),
        ("kmeans:\n  k: 9\n", "kmeans.k: Input should be less than or equal to 5"),
        (
            "rules:\n  - name: X\n    intent: vip\n    when: [{feature: salary, op: '>', value: 1}]\n",
            "rules.0.when.0.feature",
        ),
        ("rules: [\n", "malformed YAML at line"),
    ],
)
def test_bad_segmentation_config_names_file_and_key(tmp_path, yaml_text, expected):
    path = tmp_path / "segmentation.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as error:
        load_yaml_model(path, SegmentationConfig)
    assert str(path) in str(error.value) and expected in str(error.value)


def test_assets_register_slug_partitions(segmented, warehouse):
    keys = segmented.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)
    assert sorted(keys) == ["at_risk", "high_value_recent", "loyal_frequent", "new_customer", "standard"]
    profiles = warehouse.read_table("segment_profiles")
    assert profiles["customers"].sum() == len(warehouse.read_table("customers")) == 1000
    assert set(profiles["segment_name"]) >= {"High-Value Recent", "At-Risk"}


def test_resegmentation_removes_stale_partitions_and_their_rows(tmp_path, segmented, base_resources, warehouse):
    # A per-segment table with rows for a segment that is about to disappear.
    with warehouse.transaction() as connection:
        connection.execute("create table retrieved_content (segment varchar, document_id varchar)")
        connection.execute("insert into retrieved_content values ('at_risk', 'D1'), ('standard', 'D2')")
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "segmentation.yaml").write_text(
        "rules:\n  - name: New Customer\n    intent: onboarding\n"
        "    when: [{feature: purchase_frequency, op: '<', value: 3}]\n"
    )
    settings = PipelineSettings(
        customers_path=base_resources["settings"].customers_path,
        content_path=base_resources["settings"].content_path,
        config_dir=str(config_dir),
    )
    result = materialize(SEGMENTATION_ASSETS, instance=segmented, resources={**base_resources, "settings": settings})
    assert result.success
    assert sorted(segmented.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)) == ["new_customer", "standard"]
    assert list(warehouse.read_table("retrieved_content")["segment"]) == ["standard"]
    assert "retrieved_content" in PER_SEGMENT_TABLES


def test_failed_load_changes_no_table(tmp_path, segmented, base_resources, warehouse):
    before = warehouse.read_table("customers")
    bad = tmp_path / "bad.csv"
    frame = generate_customers(10, seed=1)
    frame.loc[2, "historical_open_rate"] = 4.0
    frame.to_csv(bad, index=False)
    settings = PipelineSettings(customers_path=str(bad), config_dir=base_resources["settings"].config_dir)
    result = materialize(
        SEGMENTATION_ASSETS,
        instance=segmented,
        resources={**base_resources, "settings": settings},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "historical_open_rate" in str(failure.step_failure_data.error)
    pd.testing.assert_frame_equal(warehouse.read_table("customers"), before)


def test_an_exports_extra_columns_are_not_loaded_and_are_named(tmp_path, instance, base_resources, warehouse):
    """A warehouse export with columns the pipeline does not use (upper-case, as Snowflake unloads them) loads
    under the shipped configuration: the extra columns are dropped before anything is stored, and the run's
    warning and the `customers` metadata name them (names only, never their values)."""
    frame = generate_customers(30, seed=3)
    frame.columns = [c.upper() for c in frame.columns]
    frame["EMAIL"] = [f"person{i}@example.com" for i in range(len(frame))]
    frame["SIGNUP_DATE"] = pd.Timestamp("2024-01-31")
    path = tmp_path / "unload.parquet"
    frame.to_parquet(path, index=False)
    settings = PipelineSettings(customers_path=str(path), config_dir=base_resources["settings"].config_dir)
    result = materialize(SEGMENTATION_ASSETS, instance=instance, resources={**base_resources, "settings": settings})
    assert result.success
    stored = warehouse.read_table("customers")
    assert "EMAIL" not in stored and "email" not in stored and len(stored) == 30
    assert list(stored["customer_id"]) == list(frame["CUSTOMER_ID"])  # ids exactly as written
    materialization = next(
        m for m in result.asset_materializations_for_node("load_customers") if m.asset_key.path == ["customers"]
    )
    assert materialization.metadata["columns_not_used"].value == "EMAIL, SIGNUP_DATE"
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert "columns not used (validation.extra_columns: drop): EMAIL, SIGNUP_DATE" in logged
    assert not any("example.com" in message for message in logged)
    # What `personalize run` prints under the run's line.
    assert run_warnings(instance, result.run_id) == (
        "load_customers: columns not used (validation.extra_columns: drop): EMAIL, SIGNUP_DATE",
    )


def test_quarantine_mode_writes_rejected_rows(tmp_path, instance, base_resources, warehouse):
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "pipeline.yaml").write_text("validation:\n  on_invalid_rows: quarantine\n")
    frame = generate_customers(50, seed=1).astype(object)
    frame.loc[4, "age"] = -3
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    settings = PipelineSettings(customers_path=str(path), config_dir=str(config_dir))
    result = materialize(SEGMENTATION_ASSETS, instance=instance, resources={**base_resources, "settings": settings})
    assert result.success
    quarantine = warehouse.read_table("customers_quarantine")
    assert list(quarantine["line"]) == [6]
    assert "age: out of range" in quarantine.loc[0, "reasons"]
    assert quarantine.loc[0, "age"] == "-3"  # the rejected raw value is kept in the warehouse
    assert len(warehouse.read_table("customers")) == 49
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    quarantined = [message for message in logged if "quarantined:" in message]
    assert quarantined == [
        "quarantined: column 'age': out of range (allowed [13, 120]) — 1 row(s), first: "
        f"line 6 ({hash_customer_id(frame.loc[4, 'customer_id'])})"
    ]  # the event log names the line and a pseudonym, never the value
    assert run_warnings(instance, result.run_id) == tuple(f"load_customers: {message}" for message in quarantined)


def test_switching_to_kmeans_needs_no_code_change(tmp_path, segmented, base_resources, warehouse):
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "segmentation.yaml").write_text("method: kmeans\nkmeans:\n  k: 3\n  seed: 7\n")
    settings = PipelineSettings(customers_path=base_resources["settings"].customers_path, config_dir=str(config_dir))
    result = materialize(SEGMENTATION_ASSETS, instance=segmented, resources={**base_resources, "settings": settings})
    assert result.success
    keys = segmented.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)
    profiles = warehouse.read_table("segment_profiles")
    assert len(keys) == 3 and sorted(keys) == sorted(profiles["segment"])
    assert all(key == slugify(key) for key in keys)
    # The rule-based partitions are gone: a switch of method leaves no stale partition behind.
    assert not {"at_risk", "standard"} & set(keys)
    materialization = result.asset_materializations_for_node("customer_segments")[0]
    assert materialization.metadata["method"].value == "kmeans"


def test_float32_customers_on_a_rule_boundary_stay_on_it(tmp_path, default_config):
    """0.4 written as float32 is 0.4000000059604645 as float64: read as written, the customer is not above 0.4."""
    from personalization_assets.lib.customers import read_customer_file, validate_customers

    frame = pd.DataFrame([customer(customer_id="C1", purchase_frequency=15, historical_open_rate=0.4)])
    for column in ("purchase_frequency", "historical_open_rate", "historical_click_rate", "avg_order_value"):
        frame[column] = frame[column].astype("float32")
    frame.to_parquet(tmp_path / "c.parquet", index=False)
    customers = validate_customers(read_customer_file(tmp_path / "c.parquet")).valid
    segments, _ = segmentation.segment_customers(customers, default_config)
    assert segments.loc[0, "segment"] == "standard"  # loyal_frequent needs historical_open_rate > 0.4


def test_tier_mix_counts_tiers_in_any_case_together():
    frame = pd.DataFrame(
        [customer(customer_id=f"C{i}", tier=tier) for i, tier in enumerate(["PLATINUM", "Platinum", "gold"])]
    )
    segments = assign_rule_segments(frame, [], Rule("standard", "Standard", "nurture", ()))
    profile = profile_segments(frame, segments)
    assert profile.loc[0, "tier_mix"] == '{"Platinum": 0.667, "Gold": 0.333}'


def test_customer_settings_are_validated_with_file_and_key(tmp_path):
    from personalization_assets.config.segmentation import PipelineConfig

    path = tmp_path / "pipeline.yaml"
    path.write_text("customers:\n  delimiter: ':'\nvalidation:\n  duplicate_ids: keep_last\n")
    with pytest.raises(ConfigError) as error:
        load_yaml_model(path, PipelineConfig)
    message = str(error.value)
    assert str(path) in message
    assert "customers.delimiter: Input should be ',', ';', '\\t' or '|'" in message
    assert "validation.duplicate_ids: Input should be 'keep_first' or 'reject_all'" in message


def test_semicolon_file_loads_with_the_delimiter_setting(tmp_path, instance, base_resources, warehouse):
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "pipeline.yaml").write_text('customers:\n  delimiter: ";"\n')
    path = tmp_path / "customers.csv"
    generate_customers(50, seed=1).to_csv(path, index=False, sep=";")
    settings = PipelineSettings(customers_path=str(path), config_dir=str(config_dir))
    result = materialize(SEGMENTATION_ASSETS, instance=instance, resources={**base_resources, "settings": settings})
    assert result.success
    assert len(warehouse.read_table("customers")) == 50


def test_profiles_are_the_same_whether_the_frames_line_up_or_not():
    """Segments listed in the customers' order are joined side by side, any other order by a merge: same
    profiles (issue 19)."""
    from personalization_assets.lib.frames import ARROW_STRING

    customers = generate_customers(2000, seed=3)
    customers["customer_id"] = customers["customer_id"].astype(ARROW_STRING)
    segments = assign_kmeans_segments(customers, k=3).segments.astype(ARROW_STRING)
    aligned = profile_segments(customers, segments)
    shuffled = profile_segments(customers, segments.sample(frac=1, random_state=5).reset_index(drop=True))
    pd.testing.assert_frame_equal(aligned, shuffled)
    assert aligned["customers"].sum() == 2000
