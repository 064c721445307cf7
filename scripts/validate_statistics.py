"""Monte Carlo validation of the experiment statistics and the campaign's decision rule (docs/statistics.md
quotes every figure this prints).

Prints, for simulated experiments (counts drawn per arm, vectorized; a few minutes on two cores):
  1. power: achieved power of the decision rule at the MDE the metrics report (fixed-sample and sequential);
  2. small unequal arms: the exact size of the rate test at 20 vs 80 customers and 2%, and false "Send"
     decisions in A/A segments of 200 customers with weights 0.4/0.3/0.2/0.1;
  3. campaign: A/A campaigns of several segments plus the pooled analysis, any false winner anywhere;
  4. sample ratio: the exact deal never raises a false alarm, a 1% loss at n = 100,000 is caught;
  5. sequential: A/A segments read at 14 looks as recorded engagement accumulates;
  6. test/interval agreement, the rare-event Bayesian probability, CI coverage, and timing.

    .venv/bin/python scripts/validate_statistics.py [--reps 4000] [--seed 2024]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from statsmodels.stats import proportion as sm_proportion
from statsmodels.stats.proportion import proportion_confint

from personalization_assets.lib import statistics as st
from personalization_assets.lib.assignment import assign_arms
from personalization_assets.lib.simulation import (
    Baselines,
    draw_arm_uplifts,
    engagement_propensities,
    simulate_engagement,
)

ALPHA = 0.05
ARMS = ["control", "urgent", "informational", "friendly"]
# Funnel per customer sent to: converted (rate p), clicked but not converted, opened only, nothing.
CLICK, OPEN = 0.08, 0.30


def mc(successes: int, trials: int) -> str:
    low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    return f"{successes / trials:.4f} (95% MC {low:.4f}-{high:.4f}, n={trials})"


def funnel_summary(rng, segments: int, sizes: dict[str, int], conversion: dict[str, float], prefix="s") -> pd.DataFrame:
    """summarize_arms' frame for `segments` independent segments: per arm its size and funnel counts."""
    frames = []
    for arm, n in sizes.items():
        p = conversion[arm]
        states = rng.multinomial(
            n, [p, CLICK - 0.02, OPEN - CLICK, 1 - p - (CLICK - 0.02) - (OPEN - CLICK)], size=segments
        )
        frames.append(
            pd.DataFrame(
                {
                    "segment": [f"{prefix}{k:06d}" for k in range(segments)],
                    "arm": arm,
                    "n": n,
                    "opened": states[:, :3].sum(axis=1),
                    "clicked": states[:, :2].sum(axis=1),
                    "converted": states[:, 0],
                    "variant_id": None,
                }
            )
        )
    return pd.concat(frames, ignore_index=True).sort_values(["segment", "arm"], ignore_index=True)


def sends(metrics: pd.DataFrame, by: str = "segment") -> pd.Series:
    """Per segment (or campaign): whether a 'Send' decision was made (a significant positive primary lift)."""
    send = metrics["significant"] & (metrics["metric"] == st.PRIMARY_METRIC) & (metrics["abs_lift"] > 0)
    return send.groupby(metrics[by]).any()


# 1. Power at the reported MDE ---------------------------------------------------------------------------


def power_at_reported_mde(rng, reps: int, per_arm: int, families: int, sequential: bool) -> None:
    planning = funnel_summary(rng, 1, dict.fromkeys(ARMS, per_arm), dict.fromkeys(ARMS, 0.02))
    planning.loc[:, "converted"] = round(per_arm * 0.02)  # the planned control rate, exactly
    reported = st.compute_metrics_from_summary(planning, families=families, sequential=sequential)
    row = reported[(reported["arm"] == "urgent") & (reported["metric"] == "conversion")].iloc[0]
    mde = float(row["mde_abs"])
    rates = dict.fromkeys(ARMS, 0.02) | {"urgent": 0.02 + mde}
    summary = funnel_summary(rng, reps, dict.fromkeys(ARMS, per_arm), rates)
    metrics = st.compute_metrics_from_summary(summary, families=families, sequential=sequential)
    hit = metrics[(metrics["arm"] == "urgent") & (metrics["metric"] == "conversion")]["significant"]
    kind = "sequential (mSPRT, this look)" if sequential else "fixed sample"
    print(
        f"  {kind:30s} {per_arm:,}/arm, {families} families, alpha_decision {row['alpha_decision']:.5f}: "
        f"reported MDE {mde * 100:+.3f} pp on 2% -> achieved power {mc(int(hit.sum()), reps)}"
    )


# 2. Small, unequal arms --------------------------------------------------------------------------------


def exact_size(n_arm: int, n_control: int, rate: float) -> None:
    """The exact rejection rate under H0 over every outcome (x_arm, x_control), weighted by its probability."""
    from scipy import stats

    x_a, x_c = np.meshgrid(np.arange(n_arm + 1), np.arange(n_control + 1), indexing="ij")
    x_a, x_c = x_a.ravel().astype(float), x_c.ravel().astype(float)
    weight = stats.binom.pmf(x_a, n_arm, rate) * stats.binom.pmf(x_c, n_control, rate)
    n_a, n_c = np.full_like(x_a, n_arm), np.full_like(x_c, n_control)
    testable = (x_a + x_c > 0) & (x_a + x_c < n_arm + n_control)
    with np.errstate(all="ignore"):
        _, pooled_z = sm_proportion.test_proportions_2indep(
            x_a, n_a, x_c, n_c, method="score", correction=False, return_results=False
        )
        small = st.expected_counts_small(x_a, n_a, x_c, n_c)
        score = 2 * st.stats.norm.sf(np.abs(st.score_statistic(x_a, n_a, x_c, n_c)))
        exact = np.where(small, st.fisher_central_p(x_a, n_a, x_c, n_c), 0.0)
        rule = np.maximum(score, exact)
    old = float((weight * (testable & (pooled_z < ALPHA))).sum())
    favouring_small = float((weight * (testable & (pooled_z < ALPHA) & (x_a / n_a > x_c / n_c))).sum())
    new = float((weight * (testable & (rule < ALPHA))).sum())
    print(
        f"  exact size at alpha {ALPHA}, {n_arm} vs {n_control} customers at {rate:.0%}: pooled z {old:.4f} "
        f"({favouring_small:.4f} favouring the small arm) -> score + exact guard {new:.4f}"
    )


def small_segment_aa(rng, reps: int) -> None:
    weights = {"control": 0.4, "urgent": 0.3, "informational": 0.2, "friendly": 0.1}
    sizes = st.dealt_counts(200, weights).to_dict()
    summary = funnel_summary(rng, reps, sizes, dict.fromkeys(ARMS, 0.02))
    metrics = st.compute_metrics_from_summary(summary)  # one segment's family (families = 1)
    send = sends(metrics)
    any_sig = metrics.groupby("segment")["significant"].any()
    print(f"  A/A segments of 200 customers, arms {sizes}:")
    print(f"    false 'Send' decisions per segment: {mc(int(send.sum()), reps)}")
    print(f"    any highlighted cell per segment:   {mc(int(any_sig.sum()), reps)}")
    # For contrast: the former rule (pooled z, Holm over the 9 arm x metric tests, no gate).
    x_a, n_a = metrics["count_arm"].to_numpy(float), metrics["n_arm"].to_numpy(float)
    x_c, n_c = metrics["count_control"].to_numpy(float), metrics["n_control"].to_numpy(float)
    with np.errstate(all="ignore"):
        _, p = sm_proportion.test_proportions_2indep(
            x_a, n_a, x_c, n_c, method="score", correction=False, return_results=False
        )
    p = pd.Series(np.where((x_a + x_c > 0) & (x_a + x_c < n_a + n_c), p, np.nan))
    old = st.adjust_p_values(p, metrics["segment"], "holm") < ALPHA
    old_send = old & (metrics["metric"] == "conversion").to_numpy() & (metrics["abs_lift"] > 0).to_numpy()
    print(f"    former rule's false 'Send':         {mc(int(old_send.groupby(metrics['segment']).any().sum()), reps)}")


# 3. Campaign-level false winners -----------------------------------------------------------------------


def campaign_aa(rng, campaigns: int, segments: int, per_segment: int) -> None:
    sizes = st.dealt_counts(per_segment, dict.fromkeys(ARMS, 0.25)).to_dict()
    summary = funnel_summary(rng, campaigns * segments, sizes, dict.fromkeys(ARMS, 0.02))
    summary["campaign"] = summary["segment"].str[1:].astype(int) // segments
    families = segments + 1
    per_segment_rows = st.compute_metrics_from_summary(summary.drop(columns="campaign"), families=families)
    per_segment_rows["campaign"] = per_segment_rows["segment"].str[1:].astype(int) // segments
    pooled = []
    for campaign, rows in summary.groupby("campaign", sort=False):
        pooled.append(
            st.pooled_metrics_from_summary(rows.drop(columns="campaign"), families=families).assign(campaign=campaign)
        )
    pooled_rows = pd.concat(pooled, ignore_index=True)
    every = pd.concat([per_segment_rows, pooled_rows], ignore_index=True)
    highlighted = every.groupby("campaign")["significant"].any()
    send = sends(every, by="campaign")
    print(f"  A/A campaigns of {segments} segments x {per_segment:,} customers (4 arms) + pooled, {families} families:")
    print(f"    campaigns with any highlighted 'significant' cell: {mc(int(highlighted.sum()), campaigns)}")
    print(f"    campaigns with any false 'Send' (segment or pooled): {mc(int(send.sum()), campaigns)}")
    local = st.compute_metrics_from_summary(summary.drop(columns="campaign"), families=1)
    local["campaign"] = local["segment"].str[1:].astype(int) // segments
    print(
        "    for contrast, each segment corrected on its own (families = 1): "
        + mc(int(local.groupby("campaign")["significant"].any().sum()), campaigns)
    )


# 4. Sample ratio ---------------------------------------------------------------------------------------


def sample_ratio() -> None:
    weights = {"control": 0.4, "urgent": 0.3, "informational": 0.2, "friendly": 0.1}
    false_alarms = 0
    for n in range(1, 5_001):
        false_alarms += int(st.deal_deviation(st.dealt_counts(n, weights), weights)["beyond"].any())
    customers = pd.DataFrame({"segment": "s", "customer_id": [f"C{i:06d}" for i in range(2_000)]})
    dealt = assign_arms(customers, [("v1", "urgent"), ("v2", "informational"), ("v3", "friendly")], weights)
    matches = (dealt["arm"].value_counts().reindex(list(weights)) == st.dealt_counts(2_000, weights)).all()
    print(
        f"  exact deal, every n from 1 to 5,000 at weights {list(weights.values())}: {false_alarms} false alarms; "
        f"dealt_counts equals assign_arms' counts: {bool(matches)}"
    )
    equal = dict.fromkeys(ARMS, 0.25)
    counts = st.dealt_counts(100_000, equal)
    for loss in (0.01, 0.02):
        lost = counts.copy()
        lost["urgent"] -= int(round(counts["urgent"] * loss))
        deviation = st.deal_deviation(lost, equal)
        _, p = st.sample_ratio_mismatch(lost, equal)
        print(
            f"  n = 100,000, {loss:.0%} of the urgent arm lost ({counts['urgent'] - lost['urgent']} rows): chi-square "
            f"p = {p:.3f} ({'flagged' if p < 0.001 else 'missed'} at 0.001); exact deal: arms off the deal "
            + ", ".join(f"{row.arm} {row.deviation:+.1f}" for row in deviation.itertuples() if row.beyond)
        )


# 5. Sequential looks -----------------------------------------------------------------------------------


def sequential_aa(rng, reps: int, looks: int, per_arm: int) -> None:
    batch = per_arm // looks
    cumulative = None
    ever = {True: np.zeros(reps, bool), False: np.zeros(reps, bool)}
    for look in range(1, looks + 1):
        part = funnel_summary(rng, reps, dict.fromkeys(ARMS, batch), dict.fromkeys(ARMS, 0.05))
        if cumulative is None:
            cumulative = part
        else:
            for column in ("n", "opened", "clicked", "converted"):
                cumulative[column] = cumulative[column].to_numpy() + part[column].to_numpy()
        for sequential in (True, False):
            metrics = st.compute_metrics_from_summary(cumulative, sequential=sequential, looks=look)
            ever[sequential] |= metrics.groupby("segment")["significant"].any().to_numpy()
    print(
        f"  A/A segments read at {looks} looks (recorded engagement accumulating to {per_arm:,}/arm, 4 arms, "
        "5% conversion):"
    )
    print(f"    mSPRT, significant at any look:            {mc(int(ever[True].sum()), reps)}")
    print(f"    fixed-sample tests re-run at every look:   {mc(int(ever[False].sum()), reps)}")


# 6. Agreement, prior, coverage, timing -----------------------------------------------------------------


def agreement(rng) -> None:
    n_a = rng.integers(5, 400, 20_000).astype(float)
    n_c = rng.integers(5, 400, 20_000).astype(float)
    x_a = rng.binomial(n_a.astype(int), rng.uniform(0.005, 0.3, 20_000)).astype(float)
    x_c = rng.binomial(n_c.astype(int), rng.uniform(0.005, 0.3, 20_000)).astype(float)
    summary = pd.concat(
        [
            pd.DataFrame(
                {
                    "segment": np.arange(20_000),
                    "arm": "control",
                    "n": n_c,
                    "opened": x_c,
                    "clicked": x_c,
                    "converted": x_c,
                }
            ),
            pd.DataFrame(
                {
                    "segment": np.arange(20_000),
                    "arm": "urgent",
                    "n": n_a,
                    "opened": x_a,
                    "clicked": x_a,
                    "converted": x_a,
                }
            ),
        ]
    ).assign(variant_id=None)
    summary[["n", "opened", "clicked", "converted"]] = summary[["n", "opened", "clicked", "converted"]].astype(int)
    for sequential in (False, True):
        rows = st.compute_metrics_from_summary(summary, sequential=sequential)
        rows = rows[(rows["metric"] == "conversion") & rows["p_value"].notna()]
        excludes = (rows["abs_ci_low"] > 0) | (rows["abs_ci_high"] < 0)
        disagree = int((excludes != (rows["p_value"] < ALPHA)).sum())
        small = int(rows["test"].eq(st.FIXED_TEST["exact"]).sum())
        print(
            f"  {'sequential' if sequential else 'fixed'}: interval excludes 0 <=> p < {ALPHA}: {disagree} "
            f"disagreements in {len(rows):,} comparisons" + ("" if sequential else f" ({small:,} with the exact guard)")
        )


def rare_events() -> None:
    flat = st.prob_beta_greater(np.array([1.0]), np.array([11.0]), np.array([1.0]), np.array([100_001.0]))[0]
    weak = st.prob_beat_control(np.array([0.0]), np.array([10.0]), np.array([0.0]), np.array([100_000.0]))[0]
    typical = st.prob_beat_control(np.array([30.0]), np.array([1000.0]), np.array([20.0]), np.array([1000.0]))[0]
    typical_flat = st.prob_beta_greater(np.array([31.0]), np.array([971.0]), np.array([21.0]), np.array([981.0]))[0]
    print(f"  0/10 vs 0/100,000: P(beat control) flat Beta(1,1) {flat:.4f} -> weakly informative {weak:.4f}")
    print(f"  30/1000 vs 20/1000: flat {typical_flat:.4f}, weakly informative {typical:.4f}")


def coverage(rng, reps: int, per_arm: int, seed: int) -> None:
    n = 2 * per_arm * reps
    customers = pd.DataFrame(
        {
            "segment": np.repeat([f"cov-{k:05d}" for k in range(reps)], 2 * per_arm),
            "customer_id": [f"cov-C{i:09d}" for i in range(n)],
            "historical_open_rate": (open_rate := rng.beta(2.0, 5.0, n)),
            "historical_click_rate": open_rate * rng.beta(2.0, 9.0, n),
        }
    )
    assigned = pd.concat(
        [
            assign_arms(customers, [("v-urgent", "urgent")], None, f"coverage-{seed}", "validation"),
            customers[["historical_open_rate", "historical_click_rate"]],
        ],
        axis=1,
    )
    uplifts = {"urgent": 0.15}
    engagement = simulate_engagement(assigned, uplifts, Baselines(), 0.2, seed=seed)
    propensities = engagement_propensities(assigned, uplifts, Baselines(), 0.2, seed=seed)
    propensities["segment"] = assigned["segment"].to_numpy()
    means = propensities.groupby(["segment", "arm"])[["p_open", "p_click", "p_conversion"]].mean()
    truth = means.xs("urgent", level="arm") - means.xs("control", level="arm")
    rows = st.compute_experiment_metrics(engagement)
    text = []
    for metric, column in (("open", "p_open"), ("click", "p_click"), ("conversion", "p_conversion")):
        metric_rows = rows[rows["metric"] == metric].set_index("segment")
        true_difference = truth.loc[metric_rows.index, column]
        covered = (metric_rows["abs_ci_low"] <= true_difference) & (true_difference <= metric_rows["abs_ci_high"])
        text.append(f"{metric} {covered.mean():.4f}")
    print(f"  95% CI coverage of the true difference, {reps} experiments x {per_arm:,}/arm: " + ", ".join(text))


def timing(customers_count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    customers = pd.DataFrame(
        {
            "segment": "big",
            "customer_id": [f"big-C{i:09d}" for i in range(customers_count)],
            "historical_open_rate": (open_rate := rng.beta(2.0, 5.0, customers_count)),
            "historical_click_rate": open_rate * rng.beta(2.0, 9.0, customers_count),
        }
    )
    started = time.perf_counter()
    assignments = assign_arms(
        customers, [("v1", "urgent"), ("v2", "informational"), ("v3", "friendly")], None, "timing", "salt"
    )
    frame = pd.concat([assignments, customers[["historical_open_rate", "historical_click_rate"]]], axis=1)
    engagement = simulate_engagement(frame, draw_arm_uplifts(assignments["arm"].unique(), seed=seed), seed=seed)
    simulated = time.perf_counter()
    st.compute_experiment_metrics(engagement, families=6)
    finished = time.perf_counter()
    print(
        f"  {customers_count:,} customers: assign + simulate {simulated - started:.2f}s, "
        f"metrics {finished - simulated:.2f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4_000, help="simulated segments per scenario")
    parser.add_argument("--campaigns", type=int, default=1_000)
    parser.add_argument("--coverage-reps", type=int, default=300)
    parser.add_argument("--timing-customers", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()

    print("1. Power at the reported MDE (nominal 0.80), conversion 2%, one arm lifted, campaign of 5 segments:")
    for per_arm in (2_000, 10_000):
        power_at_reported_mde(rng, args.reps, per_arm, families=6, sequential=False)
    for per_arm in (2_000, 10_000):
        power_at_reported_mde(rng, args.reps, per_arm, families=6, sequential=True)
    print("\n2. Small, unequal arms:")
    exact_size(20, 80, 0.02)
    exact_size(40, 160, 0.02)
    small_segment_aa(rng, 5 * args.reps)
    print("\n3. Campaign-wide false winners:")
    campaign_aa(rng, args.campaigns, segments=5, per_segment=1_200)
    print("\n4. Sample ratio / completeness:")
    sample_ratio()
    print("\n5. Repeated looks:")
    sequential_aa(rng, args.reps // 2, looks=14, per_arm=1_400)
    print("\n6. Test and interval agree; the prior; coverage; timing:")
    agreement(rng)
    rare_events()
    coverage(rng, args.coverage_reps, 1_000, args.seed + 1)
    coverage(rng, args.coverage_reps, 150, args.seed + 2)
    timing(args.timing_customers, args.seed + 3)
    print(f"\n(total {time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
