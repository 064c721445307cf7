"""Dagster behaviour the design relies on (docs/operating.md, "One run per segment, on purpose").

If an upgrade changes one of these, the reason for one campaign run per segment may be gone: revisit it."""

import warnings

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    DagsterEventType,
    Definitions,
    MaterializeResult,
    StaticPartitionsDefinition,
    asset,
    define_asset_job,
)
from dagster._core.test_utils import instance_for_test

warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")
SEGMENTS = StaticPartitionsDefinition(["at_risk", "loyal", "new"])


@asset(
    partitions_def=SEGMENTS,
    backfill_policy=BackfillPolicy.single_run(),
    check_specs=[AssetCheckSpec("has_content", asset="campaign", blocking=True, partitions_def=SEGMENTS)],
)
def campaign(context: AssetExecutionContext):
    # Only "new" lacks content: the check can only be reported once, for the whole range.
    yield MaterializeResult()
    yield AssetCheckResult(check_name="has_content", passed="new" not in context.partition_keys)


def test_a_range_run_materializes_every_partition_and_checks_once_without_a_partition():
    job = Definitions(assets=[campaign], jobs=[define_asset_job("range", [campaign])]).resolve_job_def("range")
    with instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance,
            tags={"dagster/asset_partition_range_start": "at_risk", "dagster/asset_partition_range_end": "new"},
            raise_on_error=False,
        )
    assert not result.success  # one segment's failed blocking check fails the step for all of them
    materialized = sorted(
        event.event_specific_data.materialization.partition  # type: ignore[union-attr]
        for event in result.all_events
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION
    )
    assert materialized == ["at_risk", "loyal", "new"]  # including the segment whose check failed
    evaluations = [
        e.event_specific_data for e in result.all_events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert len(evaluations) == 1
    assert evaluations[0].partition is None  # type: ignore[union-attr]
