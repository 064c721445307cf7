"""Stage 1 — customers and segments: the validated customer table, each customer's segment, segment profiles."""

import pandas as pd
from dagster import AssetExecutionContext, AssetOut, Output, asset, multi_asset

from personalization_assets.config.segmentation import PipelineConfig, SegmentationConfig
from personalization_assets.constants import PER_SEGMENT_TABLES, STORAGE_KINDS
from personalization_assets.lib.customers import read_customer_file, validate_customers
from personalization_assets.lib.privacy import hash_customer_id
from personalization_assets.lib.segmentation import (
    Condition,
    Rule,
    assign_kmeans_segments,
    assign_rule_segments,
    profile_segments,
)
from personalization_assets.metadata import markdown_preview
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME
from personalization_assets.schemas import (
    CustomerSegmentsFrame,
    CustomersFrame,
    CustomersQuarantineFrame,
    SegmentProfilesFrame,
)
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse

GROUP = "segmentation"


@multi_asset(
    outs={
        "customers": AssetOut(
            description="Validated customers, one row per customer_id.",
            dagster_type=CustomersFrame,
            kinds=STORAGE_KINDS,
            group_name=GROUP,
        ),
        "customers_quarantine": AssetOut(
            description=(
                "Rejected customer rows when on_invalid_rows is quarantine: one row per bad line with its line, "
                "customer_id, reasons and the raw values as written (raw_row for a line that could not be split)."
            ),
            dagster_type=CustomersQuarantineFrame,
            kinds=STORAGE_KINDS,
            group_name=GROUP,
        ),
    }
)
def load_customers(context: AssetExecutionContext, settings: PipelineSettings):
    """Read the customer file and validate it; a failed validation stores nothing (InputError names the file,
    line, column and fix). Rejected raw values go to the warehouse only, never to the log."""
    config = settings.stage(PipelineConfig)
    result = validate_customers(
        read_customer_file(settings.customers_path, delimiter=config.customers.delimiter),
        on_invalid_rows=config.validation.on_invalid_rows,
        allow_extra_columns=config.validation.extra_columns == "drop",
        duplicate_ids=config.validation.duplicate_ids,
    )
    for problem in result.problems:  # lines, columns and pseudonyms only
        context.log.warning(f"quarantined: {problem}")
    if result.ignored_columns:  # names only: their values are never read into the warehouse or the log
        context.log.warning(f"columns not used (validation.extra_columns: drop): {', '.join(result.ignored_columns)}")
    yield Output(
        result.valid,
        output_name="customers",
        metadata={
            "source": settings.customers_path,
            "empty_rows_skipped": result.empty_rows,
            "columns_not_used": ", ".join(result.ignored_columns) or "none",
            # Pseudonymous ids: metadata is shown in the UI and kept in the run history.
            "preview": markdown_preview(
                result.valid.head(5).assign(customer_id=lambda f: f["customer_id"].map(hash_customer_id))
            ),
        },
    )
    yield Output(
        result.rejected,
        output_name="customers_quarantine",
        metadata={"rejected_rows": len(result.rejected), "reasons": "\n".join(result.problems) or "none"},
    )


def segment_customers(customers: pd.DataFrame, config: SegmentationConfig) -> tuple[pd.DataFrame, dict]:
    """Assign segments by the configured method; also return figures worth showing in the UI."""
    if config.method == "kmeans":
        result = assign_kmeans_segments(
            customers,
            features=config.kmeans.features,
            k=config.kmeans.k,
            k_range=config.kmeans.k_range,
            seed=config.kmeans.seed,
        )
        silhouettes = ", ".join(f"k={k}: {s:.3f}" for k, s in result.silhouette_by_k.items())
        return result.segments, {"method": "kmeans", "k": result.k, "silhouette": silhouettes}

    def to_rule(rule) -> Rule:
        conditions = tuple(Condition(c.feature, c.op, c.value) for c in rule.when)
        return Rule(key=rule.key, name=rule.name, intent=rule.intent, conditions=conditions)

    segments = assign_rule_segments(customers, [to_rule(r) for r in config.rules], to_rule(config.default_segment))
    return segments, {"method": "rules"}


@asset(kinds=STORAGE_KINDS, group_name=GROUP, dagster_type=CustomerSegmentsFrame)
def customer_segments(
    context: AssetExecutionContext,
    customers: pd.DataFrame,
    settings: PipelineSettings,
    warehouse: DuckDBWarehouse,
) -> pd.DataFrame:
    """Each customer's segment (slug key, readable name, campaign intent)."""
    config = settings.stage(SegmentationConfig)
    segments, figures = segment_customers(customers, config)

    present = sorted(segments["segment"].unique())
    registered = set(context.instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME))
    stale = sorted(registered - set(present))
    new = [key for key in present if key not in registered]
    if new:
        context.instance.add_dynamic_partitions(SEGMENT_PARTITIONS_NAME, new)
    removed_rows = warehouse.delete_segments(PER_SEGMENT_TABLES, stale) if stale else {}
    for key in stale:
        context.instance.delete_dynamic_partition(SEGMENT_PARTITIONS_NAME, key)

    configured = [r.key for r in config.rules] + [config.default_segment.key] if config.method == "rules" else []
    empty = [key for key in configured if key not in present]
    counts = segments["segment"].value_counts().rename_axis("segment").reset_index(name="customers")
    context.add_output_metadata(
        {
            **figures,
            "segments": len(present),
            "segment_sizes": markdown_preview(counts),
            "partitions_added": ", ".join(new) or "none",
            "partitions_removed": ", ".join(stale) or "none",
            "rows_removed_for_stale_segments": sum(removed_rows.values()),
            "empty_segments": ", ".join(empty) or "none",
        }
    )
    if empty:
        context.log.warning(f"segments with no customers get no partition: {', '.join(empty)}")
    return segments


@asset(kinds=STORAGE_KINDS, group_name=GROUP, dagster_type=SegmentProfilesFrame)
def segment_profiles(
    context: AssetExecutionContext, customers: pd.DataFrame, customer_segments: pd.DataFrame
) -> pd.DataFrame:
    """Per-segment size, share, feature means and medians, tier mix, top cities and engagement level."""
    profiles = profile_segments(customers, customer_segments)
    preview = profiles[
        [
            "segment",
            "segment_name",
            "intent",
            "customers",
            "share",
            "mean_avg_order_value",
            "mean_purchase_frequency",
            "median_last_engagement_days",
            "engagement_level",
        ]
    ]
    context.add_output_metadata({"profiles": markdown_preview(preview)})
    return profiles
