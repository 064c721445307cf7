"""Monte Carlo validation of the experiment statistics (larger runs than the unit tests).

Prints, for simulated experiments:
  * A/A: the share of experiments with any significant result after Holm / BH (should be <= alpha), and the
    unadjusted false-positive rate per metric (should be ~alpha);
  * coverage of the absolute-difference CIs (Newcombe, and Wald for comparison) at a realistic and a small n;
  * coverage of the stratified pooled CI across unequal segments;
  * wall time of assignment + simulation + metrics for 1,000,000 customers.

Each segment is one independent experiment, so thousands of experiments are analysed in a single vectorized
call.

    .venv/bin/python scripts/validate_statistics.py [--aa-experiments 2000] [--coverage-reps 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from personalization_assets.lib.experimentation import (
    Baselines,
    assign_arms,
    compute_experiment_metrics,
    compute_pooled_metrics,
    draw_arm_uplifts,
    engagement_propensities,
    simulate_engagement,
)

ALL_VARIANTS = [("v-urgent", "urgent"), ("v-info", "informational"), ("v-friendly", "friendly")]
METRIC_PROPENSITY = {"open": "p_open", "click": "p_click", "conversion": "p_conversion"}
NOISE_SD = 0.2


def synthetic_customers(segment_sizes: list[int], seed: int, prefix: str = "seg") -> pd.DataFrame:
    """Customers with historical rates shaped like data/customers.csv, ``segment_sizes[k]`` in segment k."""
    rng = np.random.default_rng(seed)
    n = sum(segment_sizes)
    open_rate = rng.beta(2.0, 5.0, n)
    return pd.DataFrame(
        {
            "segment": np.repeat([f"{prefix}-{k:05d}" for k in range(len(segment_sizes))], segment_sizes),
            "customer_id": [f"{prefix}-C{i:09d}" for i in range(n)],
            "historical_open_rate": open_rate,
            "historical_click_rate": open_rate * rng.beta(2.0, 9.0, n),
        }
    )


def assigned_with_features(
    customers: pd.DataFrame, variants, experiment_id: str, weights=None
) -> pd.DataFrame:
    assignments = assign_arms(customers, variants, weights, experiment_id, salt="validation")
    features = customers[["historical_open_rate", "historical_click_rate"]].reset_index(drop=True)
    return pd.concat([assignments, features], axis=1)  # assign_arms keeps the input row order


def binomial_interval(successes: int, trials: int) -> str:
    low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    return f"{successes / trials:.4f}  (95% MC interval {low:.4f}-{high:.4f}, {trials} experiments)"


def aa_false_positives(experiments: int, per_segment: int, alpha: float, seed: int) -> None:
    customers = synthetic_customers([per_segment] * experiments, seed)
    frame = assigned_with_features(customers, ALL_VARIANTS, f"aa-{seed}")
    uplifts = draw_arm_uplifts(frame["arm"].unique(), aa_mode=True)
    engagement = simulate_engagement(frame, uplifts, Baselines(), NOISE_SD, seed=seed)
    print(f"\nA/A: {experiments} experiments x {per_segment} customers (4 arms, 9 tests each), alpha={alpha}")
    for correction in ("holm", "fdr_bh"):
        rows = compute_experiment_metrics(engagement, alpha=alpha, correction=correction)
        any_significant = int(rows.groupby("segment")["significant"].any().sum())
        share = binomial_interval(any_significant, experiments)
        print(f"  share with any significant result ({correction:6s}): {share}")
    for metric, metric_rows in rows.groupby("metric", sort=False):
        rejected = int((metric_rows["p_value"] < alpha).sum())
        rate = rejected / len(metric_rows)
        print(f"  unadjusted false-positive rate, {metric:10s}: {rate:.4f} of {len(metric_rows)} tests")


def coverage(reps: int, per_arm: int, uplift: float, seed: int) -> None:
    customers = synthetic_customers([2 * per_arm] * reps, seed, prefix="cov")
    frame = assigned_with_features(customers, [("v-urgent", "urgent")], f"coverage-{seed}")
    uplifts = {"urgent": uplift}
    engagement = simulate_engagement(frame, uplifts, Baselines(), NOISE_SD, seed=seed)
    propensities = engagement_propensities(frame, uplifts, Baselines(), NOISE_SD, seed=seed)
    propensities["segment"] = frame["segment"].to_numpy()
    means = propensities.groupby(["segment", "arm"])[list(METRIC_PROPENSITY.values())].mean()
    truth = means.xs("urgent", level="arm") - means.xs("control", level="arm")
    rows = compute_experiment_metrics(engagement)
    print(
        f"\nCoverage of 95% CIs for the absolute difference: {reps} experiments, {per_arm} customers/arm, "
        f"true relative uplift {uplift}"
    )
    for metric, column in METRIC_PROPENSITY.items():
        metric_rows = rows[rows["metric"] == metric].set_index("segment")
        true_difference = truth.loc[metric_rows.index, column].to_numpy()
        newcombe = (metric_rows["abs_ci_low"] <= true_difference) & (
            true_difference <= metric_rows["abs_ci_high"]
        )
        wald_low, wald_high = confint_proportions_2indep(
            metric_rows["count_arm"].to_numpy(float),
            metric_rows["n_arm"].to_numpy(float),
            metric_rows["count_control"].to_numpy(float),
            metric_rows["n_control"].to_numpy(float),
            method="wald",
        )
        wald = (wald_low <= true_difference) & (true_difference <= wald_high)
        print(
            f"  {metric:10s} (mean events/arm {metric_rows['count_control'].mean():7.1f}): "
            f"Newcombe {newcombe.mean():.4f}   Wald {wald.mean():.4f}"
        )


def pooled_coverage(reps: int, seed: int) -> None:
    """Experiments of four unequal segments with unequal arm splits: coverage of the stratified pooled CI."""
    sizes = [400, 800, 1600, 3200]
    weights = [
        {"control": 0.8, "urgent": 0.2},
        {"control": 0.5, "urgent": 0.5},
        {"control": 0.3, "urgent": 0.7},
        {"control": 0.6, "urgent": 0.4},
    ]
    customers = synthetic_customers(sizes * reps, seed, prefix="pool")
    parts = []
    for k, segment_weights in enumerate(weights):  # one deal per arm split; segments are stratified inside it
        chosen = customers[customers["segment"].str[-5:].astype(int) % len(sizes) == k].reset_index(drop=True)
        parts.append(
            assigned_with_features(chosen, [("v-urgent", "urgent")], f"pooled-{seed}", segment_weights)
        )
    frame = pd.concat(parts, ignore_index=True)
    frame["experiment"] = frame["segment"].str[-5:].astype(int) // len(sizes)
    uplifts = {"urgent": 0.15}
    engagement = simulate_engagement(frame, uplifts, Baselines(), NOISE_SD, seed=seed)
    propensities = engagement_propensities(frame, uplifts, Baselines(), NOISE_SD, seed=seed)
    propensities[["segment", "experiment"]] = frame[["segment", "experiment"]].to_numpy()
    # Truth per experiment: the MH-weighted mean of the segments' true differences (the pooled estimand).
    grouped = propensities.groupby(["experiment", "segment", "arm"])
    means, n = grouped[list(METRIC_PROPENSITY.values())].mean(), grouped.size()
    treated, control = means.xs("urgent", level="arm"), means.xs("control", level="arm")
    n_treated, n_control = n.xs("urgent", level="arm"), n.xs("control", level="arm")
    mh_weight = n_treated * n_control / (n_treated + n_control)
    truth = (
        (treated - control)
        .mul(mh_weight, axis=0)
        .groupby(level="experiment")
        .sum()
        .div(mh_weight.groupby(level="experiment").sum(), axis=0)
    )
    covered = dict.fromkeys(METRIC_PROPENSITY, 0)
    for experiment, rows in engagement.groupby(
        frame["experiment"]
    ):  # compute_pooled_metrics pools one experiment
        pooled = compute_pooled_metrics(rows).set_index("metric")
        for metric, column in METRIC_PROPENSITY.items():
            true_difference = truth.loc[experiment, column]
            covered[metric] += (
                pooled.loc[metric, "abs_ci_low"] <= true_difference <= pooled.loc[metric, "abs_ci_high"]
            )
    print(
        f"\nCoverage of the pooled (Mantel-Haenszel weighted) 95% CI: {reps} experiments of 4 segments "
        f"({sizes} customers, control shares {[w['control'] for w in weights]})"
    )
    for metric in METRIC_PROPENSITY:
        print(f"  {metric:10s}: {covered[metric] / reps:.4f}")


def timing(customers_count: int, seed: int) -> None:
    customers = synthetic_customers([customers_count], seed, prefix="big")
    started = time.perf_counter()
    assignments = assign_arms(customers, ALL_VARIANTS, None, "timing", "salt")
    assigned = time.perf_counter()
    frame = pd.concat([assignments, customers[["historical_open_rate", "historical_click_rate"]]], axis=1)
    engagement = simulate_engagement(
        frame, draw_arm_uplifts(assignments["arm"].unique(), seed=seed), seed=seed
    )
    simulated = time.perf_counter()
    compute_experiment_metrics(engagement)
    finished = time.perf_counter()
    print(
        f"\nTiming for {customers_count:,} customers: assign {assigned - started:.2f}s, simulate "
        f"{simulated - assigned:.2f}s, metrics {finished - simulated:.2f}s, total {finished - started:.2f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aa-experiments", type=int, default=2_000)
    parser.add_argument("--coverage-reps", type=int, default=1_000)
    parser.add_argument("--pooled-reps", type=int, default=500)
    parser.add_argument("--customers-per-segment", type=int, default=1_200)
    parser.add_argument("--timing-customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()

    aa_false_positives(args.aa_experiments, args.customers_per_segment, alpha=0.05, seed=args.seed)
    coverage(args.coverage_reps, per_arm=1_000, uplift=0.15, seed=args.seed + 1)
    coverage(args.coverage_reps, per_arm=150, uplift=0.15, seed=args.seed + 2)
    pooled_coverage(args.pooled_reps, seed=args.seed + 3)
    timing(args.timing_customers, seed=args.seed + 4)


if __name__ == "__main__":
    main()
