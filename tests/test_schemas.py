"""The declared frame schemas (personalization_assets/schemas.py): each asset carries its dagster-pandas type, the
frames the stages produce pass it, and a frame missing a column or with a wrong dtype fails the step with the
column named before the IO manager writes anything."""

import pandas as pd
import pytest
from dagster import AssetKey, AssetsDefinition, asset, check_dagster_type, materialize

from personalization_assets import schemas
from personalization_assets.definitions import defs
from personalization_assets.lib.customers import REQUIRED_COLUMNS, validate_customers
from personalization_assets.lib.generation import VARIANT_COLUMNS
from personalization_assets.lib.segmentation import SEGMENT_COLUMNS
from personalization_assets.lib.synthetic import generate_customers
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager


def _output_type(assets_def: AssetsDefinition, key: str):
    output_name = assets_def.get_output_name_for_asset_key(AssetKey(key))
    return assets_def.node_def.output_def_named(output_name).dagster_type


def _declared_columns(dagster_type) -> list[str]:
    """The columns a type declares, as the UI lists them (one `**name**` header per column)."""
    return [line.split("**")[1] for line in (dagster_type.description or "").splitlines() if line.startswith("**")]


@pytest.mark.parametrize("name", sorted(schemas.ASSET_TYPES))
def test_each_asset_of_the_merged_stages_declares_its_frame_type(name):
    assets_def = defs.resolve_assets_def(name)
    assert _output_type(assets_def, name) is schemas.ASSET_TYPES[name]


def test_the_ui_description_names_every_column_of_the_table_and_fixed_dtypes():
    assert _declared_columns(schemas.MessageVariantsFrame) == VARIANT_COLUMNS
    assert "**attempts**: `int64`" in (schemas.MessageVariantsFrame.description or "")


def test_validated_customers_and_their_quarantine_pass_their_types():
    raw = generate_customers(200, seed=7).astype(str)
    raw.loc[3, "age"] = "twelve"  # one bad row goes to the quarantine
    result = validate_customers(raw, on_invalid_rows="quarantine")
    assert len(result.rejected) == 1
    assert check_dagster_type(schemas.CustomersFrame, result.valid).success
    assert check_dagster_type(schemas.CustomersQuarantineFrame, result.rejected).success


def test_a_frame_missing_a_column_fails_with_the_column_named():
    result = validate_customers(generate_customers(50, seed=3))
    check = check_dagster_type(schemas.CustomersFrame, result.valid.drop(columns=["tier", "age"]))
    assert not check.success
    assert "missing column(s): age, tier (the frame has: customer_id, location, purchase_frequency" in (
        check.description or ""
    )


def test_a_column_of_the_wrong_dtype_fails_with_column_and_dtype_named():
    result = validate_customers(generate_customers(50, seed=3))
    frame = result.valid.assign(age=result.valid["age"].astype(str))
    check = check_dagster_type(schemas.CustomersFrame, frame)
    assert not check.success
    assert 'for column "age"' in (check.description or "")
    assert "DTypes received: object" in (check.description or "")


def test_optional_revenue_is_checked_only_when_present_and_extra_columns_are_allowed():
    engagement = pd.DataFrame(
        {
            "segment": ["vip"],
            "customer_id": ["c1"],
            "arm": ["control"],
            "variant_id": [None],
            "opened": [True],
            "clicked": [False],
            "converted": [False],
        }
    )
    assert check_dagster_type(schemas.EngagementFrame, engagement).success
    assert check_dagster_type(schemas.EngagementFrame, engagement.assign(revenue=12.5, note="x")).success
    wrong = check_dagster_type(schemas.EngagementFrame, engagement.assign(revenue="12.5"))
    assert not wrong.success
    assert 'for column "revenue"' in (wrong.description or "")


def test_a_failed_type_check_stops_the_step_before_the_warehouse_write(tmp_path):
    """Through the DuckDB IO manager: the good frame is stored and loads back passing the same type; a frame
    missing a column fails the step naming the type and the column, and the stored rows stay as they were."""
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    good = pd.DataFrame(
        {"customer_id": ["c1", "c2"], "segment": ["vip", "nurture"], "segment_name": ["VIP", "Nurture"]}
    ).assign(intent=["vip", "nurture"])
    frames = {"customer_segments": good}
    loaded: list[pd.DataFrame] = []

    @asset(name="customer_segments", dagster_type=schemas.CustomerSegmentsFrame)
    def customer_segments() -> pd.DataFrame:
        return frames["customer_segments"]

    @asset
    def reader(customer_segments: pd.DataFrame) -> None:
        loaded.append(customer_segments)

    resources = {"io_manager": WarehouseIOManager(warehouse=warehouse)}
    assert materialize([customer_segments, reader], resources=resources).success
    assert list(loaded[0].columns) == list(SEGMENT_COLUMNS)
    assert check_dagster_type(schemas.CustomerSegmentsFrame, loaded[0]).success

    frames["customer_segments"] = good.drop(columns="intent").assign(customer_id=["c3", "c4"])
    result = materialize([customer_segments], resources=resources, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None
    assert 'expected type "CustomerSegmentsFrame"' in failure.message
    assert "missing column(s): intent" in failure.message
    stored = warehouse.read_table("customer_segments")
    assert sorted(stored["customer_id"]) == ["c1", "c2"]


def test_the_declared_customer_columns_are_the_validated_ones_in_order():
    assert _declared_columns(schemas.CustomersFrame) == list(REQUIRED_COLUMNS)


def test_the_safety_verdicts_type_declares_the_verdict_columns_and_accepts_the_stage_frame():
    """Defined here, attached when the lead wires it: it must accept what the safety workflow stores."""
    from datetime import UTC, datetime

    from personalization_assets.workflows.safety import VERDICT_COLUMNS, Candidate, Screening, verdicts_frame
    from resources.content_safety import ScreenOutcome

    assert _declared_columns(schemas.SafetyVerdictsFrame) == VERDICT_COLUMNS
    candidate = Candidate("vip-friendly", "vip-friendly", "friendly", "Hello", "Body [Source: A]", '["A"]')
    screened = Screening(
        candidate=candidate,
        outcome=ScreenOutcome(severities={"hate": 0, "violence": 2}, backend="embedded"),  # three not screened
        decision="blocked",
        reasons=("incomplete screening",),
        screened_at=datetime(2026, 1, 5, tzinfo=UTC),
    )
    for frame in (verdicts_frame("vip", [screened]), verdicts_frame("vip", [])):
        check = check_dagster_type(schemas.SafetyVerdictsFrame, frame)
        assert check.success, check.description
