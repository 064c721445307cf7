"""Stage 5 — experimentation: who gets which approved variant, what they did, what it means, and each
customer's personalized message.

Per segment partition:
- `assignments`: every customer of the segment in `control` or in the arm of one approved variant (a keyed
  hash of experiment id, salt and customer id, dealt by weight: deterministic and stateless).
- `engagement`: opened / clicked / converted per assigned customer, simulated (seeded) or read from a recorded
  events file — both behind `EngagementSource`.
- `experiment_metrics`: each arm against control per metric, with CIs, campaign-adjusted p-values, power, MDE
  and the chance to beat control (docs/statistics.md).
- `personalized_messages`: for customers in a tone arm, the variant plus a name-free personal opening line.
Across segments: `pooled_experiment_metrics`, stratified by segment. The safety gate is enforced in the data
path: only variants with status `valid` in message_variants AND decision `approved` in safety_verdicts get an arm
or a message. Checks are evaluated on the frame an asset is about to store; a failed blocking check stops the
asset before the write (gates.gated_output).
"""

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    Failure,
    MetadataValue,
    asset,
)

from personalization_assets.config.experiment import ExperimentConfig
from personalization_assets.constants import (
    CUSTOMER_SEGMENTS_TABLE,
    CUSTOMERS_TABLE,
    SEGMENT_PARTITION_METADATA,
    STORAGE_KINDS,
)
from personalization_assets.gates import blocking_spec, check_result, gated_output, warning_spec
from personalization_assets.lib import experimentation as lib
from personalization_assets.lib.assignment import ASSIGNMENT_COLUMNS, assign_arms
from personalization_assets.lib.frames import ARROW_STRING
from personalization_assets.lib.personalization import PERSONALIZED_COLUMNS, opening_lines, personal_field_values
from personalization_assets.lib.simulation import ENGAGEMENT_COLUMNS, ENGAGEMENT_FLAGS, RecordedEngagement
from personalization_assets.lib.statistics import (
    CONTROL,
    REVENUE_METRIC,
    compute_experiment_metrics,
    compute_pooled_metrics,
)
from personalization_assets.metadata import markdown_preview
from personalization_assets.partitions import segment_partitions
from personalization_assets.schemas import (
    AssignmentsFrame,
    EngagementFrame,
    ExperimentMetricsFrame,
    PersonalizedMessagesFrame,
    PooledExperimentMetricsFrame,
)
from personalization_assets.store import experiment as store
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse

GROUP = "experimentation"
# The checks, one property each (the names Dagster shows).
ASSIGNMENT_COMPLETE = "assignment_complete"  # every customer of the segment assigned exactly once (blocking)
ARMS_BALANCED = "arms_balanced"  # arm shares within tolerance, enough customers per arm (warning)
SAMPLE_RATIO_MATCHES = "sample_ratio_matches"  # analysed rows reconcile with the exact assignment (blocking)
FUNNEL_CONSISTENT = "funnel_consistent"  # no click without open, no conversion without click (blocking)
GATE_TABLES = [AssetKey(store.MESSAGE_VARIANTS_TABLE), AssetKey(store.SAFETY_VERDICTS_TABLE)]


@contextmanager
def _as_failure(prefix: str = "") -> Iterator[None]:
    """Missing inputs and bad settings as one clear Dagster Failure (no traceback)."""
    try:
        yield
    except (store.MissingInput, ValueError) as error:
        raise Failure(f"{prefix}{error}") from None


def _result(name: str, segment: str, outcome: lib.CheckOutcome, warn: bool = False) -> AssetCheckResult:
    description = f"segment '{segment}': {outcome.description}"
    return check_result(name, outcome.passed, outcome.metadata, warn=warn, description=description, preview_rows=None)


def _gate_and_weights(warehouse: store.Source, config: ExperimentConfig, segment: str):
    with _as_failure():
        gate = lib.variant_gate(*store.read_variant_tables(warehouse, segment))
    variants = lib.approved_arms(gate)
    with _as_failure(f"{ExperimentConfig.FILENAME}: "):
        weights = lib.arm_weights(config.assignment.weights, [tone for _, tone in variants])
    return gate, variants, weights


@asset(
    partitions_def=segment_partitions,
    metadata=SEGMENT_PARTITION_METADATA,
    kinds=STORAGE_KINDS,
    group_name=GROUP,
    # Read with SQL (only this segment's rows), not loaded through the IO manager.
    deps=[AssetKey(CUSTOMERS_TABLE), AssetKey(CUSTOMER_SEGMENTS_TABLE), *GATE_TABLES],
    check_specs=[
        blocking_spec(ASSIGNMENT_COMPLETE, "assignments", "every customer of the segment assigned exactly once"),
        warning_spec(ARMS_BALANCED, "assignments", "arm shares within tolerance, enough customers per arm"),
    ],
    dagster_type=AssignmentsFrame,
)
def assignments(context: AssetExecutionContext, settings: PipelineSettings, warehouse: DuckDBWarehouse):
    """Every customer of the segment in `control` or the arm of one approved variant (segment, customer_id,
    arm, variant_id, assigned_at). Deterministic: a keyed hash of (experiment id, salt, customer id) dealt by
    weight, so a re-run with the same customers and approvals reproduces every arm; assigned_at is the run's
    time."""
    segment = context.partition_key
    config = settings.stage(ExperimentConfig)
    with store.connected(warehouse) as connection:  # the inputs read back to back on one connection
        gate, variants, weights = _gate_and_weights(connection, config, segment)
        with _as_failure():
            customers = store.read_segment_customers(connection, segment, ["customer_id"])
            members = store.read_segment_members(connection, segment)
    customers["segment"] = segment
    frame = assign_arms(customers, variants, weights, config.experiment_id, config.salt, arrow_strings=True)
    frame["assigned_at"] = pd.Timestamp.now(tz="UTC")

    assignment_config = config.assignment
    balance_outcome, balance = lib.arm_balance(
        frame, weights, assignment_config.balance_tolerance, assignment_config.min_customers_per_arm
    )
    excluded = gate[~gate["approved"]]
    if not variants:
        note = (
            f"no approved variant ({'; '.join(excluded['tone'] + ': ' + excluded['reason'])}): all "
            f"{len(frame):,} customers are in control and there is nothing to compare"
        )
        context.log.warning(f"segment '{segment}': {note}")
    else:
        note = "; ".join(excluded["tone"] + " arm dropped: " + excluded["reason"]) or "all variants approved"
        if len(excluded):
            context.log.info(f"segment '{segment}': {note}; weights redistributed over the remaining arms")
    thin = balance[~balance["meets_min_per_arm"]]
    if len(thin):
        context.log.warning(
            f"segment '{segment}': fewer than {assignment_config.min_customers_per_arm} customers in arm(s) "
            + ", ".join(f"{arm} ({n})" for arm, n in zip(thin["arm"], thin["n"], strict=True))
        )
    metadata = {
        "experiment_id": config.experiment_id,
        "customers": len(frame),
        "arms": ", ".join(balance["arm"]),
        "control_only": not variants,
        "note": note,
        "arm_sizes": markdown_preview(lib.arm_table(balance, gate), rows=len(balance)),
        "variants": markdown_preview(
            gate[["tone", "source_variant_id", "variant_id", "status", "decision", "reason"]].fillna("–"),
            rows=len(gate),
        ),
        **{f"customers_{arm}": int(n) for arm, n in zip(balance["arm"], balance["n"], strict=True)},
    }
    results = [
        _result(ASSIGNMENT_COMPLETE, segment, lib.assignment_completeness(members, frame)),
        _result(ARMS_BALANCED, segment, balance_outcome, warn=True),
    ]
    yield from gated_output(frame, results, metadata)


@asset(
    partitions_def=segment_partitions,
    metadata=SEGMENT_PARTITION_METADATA,
    kinds=STORAGE_KINDS,
    group_name=GROUP,
    # Read together with SQL: the segment's assignments joined to the customers' historical rates.
    deps=[assignments, AssetKey(CUSTOMERS_TABLE), *GATE_TABLES],
    check_specs=[
        blocking_spec(SAMPLE_RATIO_MATCHES, "engagement", "analysed rows reconcile with the exact assignment"),
        blocking_spec(FUNNEL_CONSISTENT, "engagement", "no click without an open, no conversion without a click"),
    ],
    dagster_type=EngagementFrame,
)
def engagement(context: AssetExecutionContext, settings: PipelineSettings, warehouse: DuckDBWarehouse):
    """Opened / clicked / converted per assigned customer: simulated from each customer's historical rates
    with a seeded per-arm uplift (or uplift 0 in A/A mode), or read from a recorded events file."""
    segment = context.partition_key
    config = settings.stage(ExperimentConfig)
    simulate = config.engagement.source == "simulate"
    history = ["historical_open_rate", "historical_click_rate"] if simulate else []
    with store.connected(warehouse) as connection:
        with _as_failure():
            assigned = store.read_assignments(connection, segment, customer_columns=history)
        _, _, weights = _gate_and_weights(connection, config, segment)
    if simulate:
        source = config.simulated_engagement(segment, sorted(assigned["arm"].dropna().unique()))
        outcomes = source.engagement(assigned)
        aa_note = ", A/A mode: every uplift 0" if config.simulation.aa_mode else ""
        described = f"simulated (seed {config.seed}{aa_note})"
        truth = pd.DataFrame(
            {"arm": list(source.uplifts), "true relative uplift": [lib.signed_pct(u) for u in source.uplifts.values()]}
        )
        # The simulation keeps row order: take its flags, keep the Arrow-backed key columns.
        frame = assigned[ASSIGNMENT_COLUMNS].assign(**{flag: outcomes[flag].to_numpy() for flag in ENGAGEMENT_FLAGS})
    else:
        path = settings.config_path(config.engagement.engagement_events_path or "")
        if not path.is_file():
            raise Failure(f"{ExperimentConfig.FILENAME}: engagement.engagement_events_path: file not found: {path}")
        recorded = RecordedEngagement(path, funnel=config.engagement.funnel, missing=config.engagement.missing)
        with _as_failure():
            outcomes = recorded.engagement(assigned)
        described = f"recorded: {path}"
        truth = pd.DataFrame()
        columns = [*ENGAGEMENT_COLUMNS, *([REVENUE_METRIC] if REVENUE_METRIC in outcomes.columns else [])]
        frame = lib.as_arrow_strings(outcomes[columns], ASSIGNMENT_COLUMNS)
    del outcomes  # the simulation's per-row Python strings: free them before the frame is stored

    funnel = frame.groupby("arm", observed=True, sort=True).agg(
        sent=("arm", "size"), opened=("opened", "mean"), clicked=("clicked", "mean"), converted=("converted", "mean")
    )
    funnel_table = funnel.reset_index().assign(
        **{column: funnel[column].map(lib.pct).to_numpy() for column in ("opened", "clicked", "converted")}
    )
    metadata = {
        "source": described,
        "customers": len(frame),
        "funnel": markdown_preview(funnel_table, rows=len(funnel_table)),
        "true_uplifts": markdown_preview(truth, rows=len(truth)) if len(truth) else MetadataValue.md("_none_"),
        "open_rate": float(frame["opened"].mean()) if len(frame) else float("nan"),
        "click_rate": float(frame["clicked"].mean()) if len(frame) else float("nan"),
        "conversion_rate": float(frame["converted"].mean()) if len(frame) else float("nan"),
    }
    allow_loss = not simulate and config.engagement.missing == "drop"
    results = [
        _result(SAMPLE_RATIO_MATCHES, segment, lib.sample_ratio_reconciliation(assigned, frame, weights, allow_loss)),
        _result(FUNNEL_CONSISTENT, segment, lib.funnel_consistency(frame)),
    ]
    yield from gated_output(frame, results, metadata)


@asset(
    partitions_def=segment_partitions,
    metadata=SEGMENT_PARTITION_METADATA,
    kinds=STORAGE_KINDS,
    group_name=GROUP,
    # engagement is read with SQL without customer ids; the approved arms come from the gate tables.
    deps=[engagement, AssetKey(CUSTOMER_SEGMENTS_TABLE), *GATE_TABLES],
    dagster_type=ExperimentMetricsFrame,
)
def experiment_metrics(
    context: AssetExecutionContext, settings: PipelineSettings, warehouse: DuckDBWarehouse
) -> pd.DataFrame:
    """Each approved arm against control per metric: n, rates, absolute and relative lift with CIs, p-value,
    campaign-adjusted p and significance, achieved power, MDE and customers needed at the decision level, and
    the chance to beat control. Recorded engagement is tested sequentially (always valid at every refresh)."""
    segment = context.partition_key
    config = settings.stage(ExperimentConfig)
    statistics = config.statistics
    with store.connected(warehouse) as connection:
        _, variants, _ = _gate_and_weights(connection, config, segment)
        with _as_failure():
            outcomes = store.read_engagement(connection, segment)
            families = store.campaign_segments(connection) + 1  # each segment and the pooled analysis
    looks = 1
    if config.sequential and len(outcomes):
        looks = store.record_look(warehouse, segment, len(outcomes), lib.counts_fingerprint(outcomes))
    metrics = lib.typed_metrics(
        compute_experiment_metrics(
            outcomes,
            statistics.alpha,
            statistics.power,
            statistics.correction,
            expected_arms=[CONTROL, *(tone for _, tone in variants)],
            families=families,
            primary_metric=statistics.primary_metric,
            sequential=config.sequential,
            looks=looks,
            mixture_sd=statistics.mixture_relative_sd,
        )
    )
    if metrics.empty:
        context.log.warning(f"segment '{segment}': control only (no approved variant), no comparisons")
    context.add_output_metadata(
        {
            "customers": len(outcomes),
            "metrics": MetadataValue.md(lib.metrics_markdown(metrics, statistics.alpha)),
            "correction": statistics.correction,
            "alpha": statistics.alpha,
            "families": families,
            "sequential": config.sequential,
            **lib.metrics_figures(metrics, statistics.primary_metric),
        }
    )
    return metrics


@asset(
    kinds=STORAGE_KINDS,
    group_name=GROUP,
    deps=[engagement, AssetKey(CUSTOMER_SEGMENTS_TABLE)],
    dagster_type=PooledExperimentMetricsFrame,
)
def pooled_experiment_metrics(
    context: AssetExecutionContext, settings: PipelineSettings, warehouse: DuckDBWarehouse
) -> pd.DataFrame:
    """Each arm against control pooled over all segments, stratified by segment (Mantel-Haenszel weights, CMH
    test), so segments with different arm mixes cannot bias the pooled lift (segment = `__pooled__`); one
    family of the campaign's alpha, like each segment."""
    config = settings.stage(ExperimentConfig)
    statistics = config.statistics
    with _as_failure(), store.connected(warehouse) as connection:
        outcomes = store.read_engagement(connection)
        families = store.campaign_segments(connection) + 1
    looks = 1
    if config.sequential and len(outcomes):
        looks = store.record_look(warehouse, "__pooled__", len(outcomes), lib.counts_fingerprint(outcomes))
    metrics = lib.typed_metrics(
        compute_pooled_metrics(
            outcomes,
            statistics.alpha,
            statistics.power,
            statistics.correction,
            families=families,
            primary_metric=statistics.primary_metric,
            sequential=config.sequential,
            looks=looks,
            mixture_sd=statistics.mixture_relative_sd,
        )
    )
    context.add_output_metadata(
        {
            "segments": int(outcomes["segment"].nunique()),
            "customers": len(outcomes),
            "metrics": MetadataValue.md(lib.metrics_markdown(metrics, statistics.alpha)),
            "correction": statistics.correction,
            "families": families,
            **lib.metrics_figures(metrics, statistics.primary_metric),
        }
    )
    return metrics


@asset(
    partitions_def=segment_partitions,
    metadata=SEGMENT_PARTITION_METADATA,
    kinds=STORAGE_KINDS,
    group_name=GROUP,
    # Read with SQL: the segment's treated customers joined to their tier, city and recency; the variants.
    deps=[assignments, AssetKey(CUSTOMERS_TABLE), *GATE_TABLES],
    dagster_type=PersonalizedMessagesFrame,
)
def personalized_messages(context: AssetExecutionContext, warehouse: DuckDBWarehouse) -> pd.DataFrame:
    """Each customer in a tone arm: their variant's subject and a personal opening line from name-free fields
    (tier, city, time since last engagement). The body is not copied per customer: the full text is
    `lib.personalization.render_message(opening_line, body)` with the body of the approved safety_verdicts row
    (the screened text) joined on (segment, variant_id). Control customers get the regular newsletter and have
    no row."""
    segment = context.partition_key
    with _as_failure(), store.connected(warehouse) as connection:
        gate = lib.variant_gate(*store.read_variant_tables(connection, segment))
        rows = store.read_assignments(
            connection, segment, ["tier", "location", "last_engagement_days"], treated_only=True
        )
        allowed = store.read_approved_field_values(connection, segment)
        control_customers = store.count_rows(connection, store.ASSIGNMENTS_TABLE, segment, f"arm = '{CONTROL}'")
    approved = gate[gate["approved"]].set_index("variant_id")
    stale = sorted(set(rows["variant_id"].dropna().unique()) - set(approved.index))
    if stale or rows["variant_id"].isna().any():
        raise Failure(
            f"segment '{segment}': assignments name variant(s) {stale or '(none)'} that are not approved now "
            "(blocked or regenerated since the assignment): re-materialize assignments for this partition"
        )
    # A handful of variants: map codes rather than each row's string.
    codes, variant_ids = pd.factorize(rows["variant_id"])
    subjects = pa.array(approved["subject"].reindex(np.asarray(variant_ids, dtype=object)).astype(str).tolist())
    rows["subject"] = pd.array(subjects.take(pa.array(codes)), dtype=ARROW_STRING)
    quoted = personal_field_values(rows["tier"], rows["location"])
    withheld = [value for value in quoted if value not in allowed]
    rows["opening_line"] = opening_lines(
        rows["arm"], rows["tier"], rows["location"], rows["last_engagement_days"], allowed_fields=allowed
    )  # same index as rows; stays Arrow-backed (no Python string per customer)
    frame = rows[list(PERSONALIZED_COLUMNS)]
    sample = frame.drop_duplicates("opening_line").head(5)[["arm", "variant_id", "subject", "opening_line"]]
    context.add_output_metadata(
        {
            "messages": len(frame),
            "control_customers_without_message": control_customers,
            "distinct_opening_lines": int(frame["opening_line"].nunique()),
            # Tier and city values left out of the lines: not approved (or never screened) by the safety stage.
            "personal_field_values_withheld": len(withheld),
            "sample": markdown_preview(sample, rows=5),
        }
    )
    return frame
