"""Experimentation stage, pure logic: the one import for the experimentation assets.

Three steps, each in its own module:
  assignment — ``assign_arms`` deals a segment's customers to control + approved-tone arms; ``check_balance``
  simulation — ``EngagementSource`` (``SimulatedEngagement``, ``RecordedEngagement``) gives the outcomes
  statistics — ``compute_experiment_metrics`` per segment, ``compute_pooled_metrics`` stratified across
               segments, ``sample_ratio_mismatch``

Typical flow for one segment::

    assignments = assign_arms(customers, approved_variants, weights, experiment_id, salt)
    uplifts = draw_arm_uplifts(assignments["arm"].unique(), seed=seed, aa_mode=aa_mode)
    source = SimulatedEngagement(uplifts, Baselines(), noise_sd, seed)
    engagement = source.engagement(assignments.merge(customers, on=["segment", "customer_id"]))
    metrics = compute_experiment_metrics(engagement, alpha, power, correction)
"""

from personalization_assets.lib.assignment import (
    ARM_ORDER,
    ASSIGNMENT_COLUMNS,
    BALANCE_COLUMNS,
    assign_arms,
    check_balance,
    effective_weights,
)
from personalization_assets.lib.simulation import (
    ENGAGEMENT_COLUMNS,
    Baselines,
    EngagementSource,
    RecordedEngagement,
    SimulatedEngagement,
    draw_arm_uplifts,
    engagement_propensities,
    load_engagement_events,
    simulate_engagement,
)
from personalization_assets.lib.statistics import (
    BINARY_METRICS,
    CONTROL,
    CORRECTIONS,
    METRICS_COLUMNS,
    POOLED_SEGMENT,
    REVENUE_METRIC,
    compute_experiment_metrics,
    compute_pooled_metrics,
    sample_ratio_mismatch,
)

__all__ = [
    "ARM_ORDER",
    "ASSIGNMENT_COLUMNS",
    "BALANCE_COLUMNS",
    "BINARY_METRICS",
    "CONTROL",
    "CORRECTIONS",
    "ENGAGEMENT_COLUMNS",
    "METRICS_COLUMNS",
    "POOLED_SEGMENT",
    "REVENUE_METRIC",
    "Baselines",
    "EngagementSource",
    "RecordedEngagement",
    "SimulatedEngagement",
    "assign_arms",
    "check_balance",
    "compute_experiment_metrics",
    "compute_pooled_metrics",
    "draw_arm_uplifts",
    "effective_weights",
    "engagement_propensities",
    "load_engagement_events",
    "sample_ratio_mismatch",
    "simulate_engagement",
]
