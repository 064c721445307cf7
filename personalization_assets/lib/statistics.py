"""Experiment statistics: per-segment arm-vs-control comparisons, a segment-stratified pooled analysis and
the sample-ratio-mismatch test.

Engagement frames have one row per customer: ``segment, arm, opened, clicked, converted`` (bool or 0/1) and
optionally ``revenue`` (float). Every comparison is an arm against ``control`` within one segment. Degenerate
comparisons (an empty arm, no events at all) give NaN statistics and say why in ``note``; they never raise.
docs/statistics.md explains each method choice.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contingency_tables import StratifiedTable
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    test_proportions_2indep,
)

CONTROL = "control"
# Segment label of the pooled rows: a double-underscore name cannot collide with a segment slug such as "all".
POOLED_SEGMENT = "__pooled__"
# Metric name -> engagement flag column. Rates are per customer sent to (clicks / sends, not clicks / opens).
BINARY_METRICS: dict[str, str] = {"open": "opened", "click": "clicked", "conversion": "converted"}
REVENUE_METRIC = "revenue"
CORRECTIONS = ("holm", "fdr_bh")

METRICS_COLUMNS = [
    "segment",
    "arm",
    "variant_id",
    "metric",
    "test",
    "n_segments",
    "n_control",
    "n_arm",
    "count_control",
    "count_arm",
    "rate_control",
    "rate_arm",
    "abs_lift",
    "abs_ci_low",
    "abs_ci_high",
    "rel_lift",
    "rel_ci_low",
    "rel_ci_high",
    "p_value",
    "p_adjusted",
    "significant",
    "power_achieved",
    "mde_abs",
    "prob_beat_control",
    "note",
]

_QUADRATURE_NODES = 256


# ------------------------------------------------------------------------------------------------------
# Sample ratio mismatch
# ------------------------------------------------------------------------------------------------------


def sample_ratio_mismatch(
    counts_by_arm: Mapping[str, int] | pd.Series, expected_weights: Mapping[str, float]
) -> tuple[float, float]:
    """Chi-square goodness-of-fit of observed arm sizes against the expected weights: ``(chi2, p_value)``.

    Arms in ``expected_weights`` missing from ``counts_by_arm`` count as 0; a counted arm without an expected
    weight is an error. No customers gives ``(nan, nan)``; a single arm cannot mismatch and gives ``(0.0,
    1.0)``.
    """
    counts = pd.Series(counts_by_arm, dtype=float)
    weights = pd.Series(expected_weights, dtype=float)
    unexpected = sorted(set(counts.index) - set(weights.index))
    if unexpected:
        raise ValueError(f"sample_ratio_mismatch: arm(s) {unexpected} have counts but no expected weight")
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(
            f"sample_ratio_mismatch: expected weights must be non-negative with a positive sum, "
            f"got {dict(weights)}"
        )
    counts = counts.reindex(weights.index, fill_value=0.0)
    total = counts.sum()
    if total == 0:
        return float("nan"), float("nan")
    expected = weights / weights.sum() * total
    if ((expected == 0) & (counts > 0)).any():  # customers in an arm that should be empty: certain mismatch
        return float("inf"), 0.0
    observed, expected = counts[expected > 0], expected[expected > 0]
    if len(observed) < 2:
        return 0.0, 1.0
    result = stats.chisquare(observed.to_numpy(), expected.to_numpy())
    return float(result.statistic), float(result.pvalue)


# ------------------------------------------------------------------------------------------------------
# Arm summaries
# ------------------------------------------------------------------------------------------------------


def summarize_arms(engagement: pd.DataFrame) -> pd.DataFrame:
    """Per (segment, arm): ``n``, event counts per binary metric and, if ``revenue`` is present, its mean and
    sample variance. ``variant_id`` is carried along when present."""
    required = ["segment", "arm", *BINARY_METRICS.values()]
    missing = [column for column in required if column not in engagement.columns]
    if missing:
        raise ValueError(f"engagement frame lacks column(s) {missing}; has {list(engagement.columns)}")
    for column in BINARY_METRICS.values():
        values = engagement[column]
        if values.isna().any() or not values.isin([0, 1]).all():
            raise ValueError(f"engagement column {column!r} must be boolean (or 0/1) without missing values")
    has_revenue = REVENUE_METRIC in engagement.columns
    if has_revenue and not np.isfinite(pd.to_numeric(engagement[REVENUE_METRIC], errors="coerce")).all():
        raise ValueError(
            "engagement column 'revenue' must be numeric and finite (use 0 for customers who spent nothing)"
        )

    frame = engagement.assign(
        **{column: engagement[column].astype(np.int64) for column in BINARY_METRICS.values()}
    )
    aggregations: dict[str, tuple[str, str]] = {"n": ("arm", "size")}
    aggregations |= {column: (column, "sum") for column in BINARY_METRICS.values()}
    if has_revenue:
        frame[REVENUE_METRIC] = frame[REVENUE_METRIC].astype(float)
        aggregations |= {"revenue_mean": (REVENUE_METRIC, "mean"), "revenue_var": (REVENUE_METRIC, "var")}
    if "variant_id" in frame.columns:
        aggregations["variant_id"] = ("variant_id", "first")
    summary = frame.groupby(["segment", "arm"], observed=True, sort=True).agg(**aggregations).reset_index()
    if "variant_id" not in summary.columns:
        summary["variant_id"] = None
    return summary


def _comparison_pairs(summary: pd.DataFrame, expected_arms: Sequence[str] | None) -> pd.DataFrame:
    """One row per (segment, non-control arm) with the arm's figures and the control's (suffix ``_control``).

    Arms listed in ``expected_arms`` but absent from a segment get ``n = 0`` so the gap is reported, not
    hidden.
    """
    treated = summary[summary["arm"] != CONTROL]
    if expected_arms:
        wanted = pd.MultiIndex.from_product(
            [summary["segment"].unique(), [arm for arm in expected_arms if arm != CONTROL]],
            names=["segment", "arm"],
        )
        treated = treated.set_index(["segment", "arm"]).reindex(
            wanted.union(treated.set_index(["segment", "arm"]).index)
        )
        treated = treated.reset_index()
    control = summary[summary["arm"] == CONTROL].drop(columns=["arm", "variant_id"]).set_index("segment")
    pairs = treated.join(control, on="segment", rsuffix="_control")
    count_columns = ["n", *BINARY_METRICS.values()]
    for column in [*count_columns, *(f"{c}_control" for c in count_columns)]:
        pairs[column] = pairs[column].fillna(0).astype(np.int64)
    return pairs.reset_index(drop=True)


def _append_note(notes: pd.Series, mask: np.ndarray, message: str) -> pd.Series:
    """Add ``message`` to the notes of the rows in ``mask`` (vectorized over rows)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.any():
        joined = np.where(notes[mask] == "", message, notes[mask] + "; " + message)
        notes = notes.copy()
        notes[mask] = joined
    return notes


# ------------------------------------------------------------------------------------------------------
# Power and Bayesian helpers
# ------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _standardized_mde(alpha: float, power: float) -> float:
    """Effect size detectable with ``power`` at ``alpha`` when the effective sample size is 1.

    NormalIndPower's power depends on effect size and sizes only through ``effect * sqrt(n1*n2/(n1+n2))``, so
    the MDE for any design is this number divided by the square root of its effective sample size.
    """
    return float(NormalIndPower().solve_power(effect_size=None, nobs1=1, alpha=alpha, power=power, ratio=0))


def _power_at_effective_n(effect_size: np.ndarray, effective_n: np.ndarray, alpha: float) -> np.ndarray:
    """NormalIndPower power, vectorized over rows whose arm-size ratios differ.

    ``ratio=0`` makes ``nobs1`` the effective sample size ``n1*n2/(n1+n2)``, which is exactly what
    NormalIndPower reduces a two-sample design to; passing it directly avoids one call per row.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        power = NormalIndPower().power(
            effect_size=np.abs(effect_size), nobs1=effective_n, alpha=alpha, ratio=0
        )
    return np.where((effective_n > 0) & np.isfinite(effect_size), power, np.nan)


def _proportion_mde(
    rate_control: np.ndarray, effective_n: np.ndarray, alpha: float, power: float
) -> np.ndarray:
    """Smallest absolute rise over ``rate_control`` detectable with ``power``: NormalIndPower's Cohen's-h
    MDE at this effective n, mapped back from the arcsine scale. NaN where no rate up to 100% suffices."""
    with np.errstate(invalid="ignore", divide="ignore"):
        arcsine_target = (
            np.arcsin(np.sqrt(rate_control)) + _standardized_mde(alpha, power) / np.sqrt(effective_n) / 2
        )
        reachable = arcsine_target <= np.pi / 2
        return np.where(reachable, np.sin(np.minimum(arcsine_target, np.pi / 2)) ** 2 - rate_control, np.nan)


@lru_cache(maxsize=1)
def _legendre_nodes() -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(_QUADRATURE_NODES)


def prob_beta_greater(a1: np.ndarray, b1: np.ndarray, a2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """P(X1 > X2) for independent X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), element-wise (Gauss-Legendre).

    The integral runs over the narrower posterior's support, ``P = E[F_other]`` under it, because the wider
    one's CDF is smooth on that range; 256 nodes then agree with the closed-form sum to ~1e-10, even when arm
    sizes differ 100-fold.
    """
    a1, b1, a2, b2 = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (a1, b1, a2, b2))
    first_narrower = stats.beta.std(a1, b1) <= stats.beta.std(a2, b2)
    a_narrow, b_narrow = np.where(first_narrower, a1, a2), np.where(first_narrower, b1, b2)
    a_other, b_other = np.where(first_narrower, a2, a1), np.where(first_narrower, b2, b1)
    low = stats.beta.ppf(1e-12, a_narrow, b_narrow)[:, None]
    high = stats.beta.ppf(1 - 1e-12, a_narrow, b_narrow)[:, None]
    nodes, weights = _legendre_nodes()
    points = low + (high - low) * (nodes + 1) / 2
    density = stats.beta.pdf(points, a_narrow[:, None], b_narrow[:, None])
    other_cdf = stats.beta.cdf(points, a_other[:, None], b_other[:, None])
    # X1 narrow: P(X1 > X2) = E[F2(X1)]; X2 narrow: P(X1 > X2) = E[1 - F1(X2)].
    integrand = density * np.where(first_narrower[:, None], other_cdf, 1 - other_cdf)
    probability = (integrand * weights).sum(axis=1) * (high[:, 0] - low[:, 0]) / 2
    return np.clip(probability, 0.0, 1.0)


# ------------------------------------------------------------------------------------------------------
# Per-segment comparisons
# ------------------------------------------------------------------------------------------------------


def _binary_comparisons(pairs: pd.DataFrame, alpha: float, power: float) -> pd.DataFrame:
    """Arm-vs-control statistics for every binary metric of every pair, vectorized over rows."""
    frames = []
    for metric, column in BINARY_METRICS.items():
        frames.append(
            pd.DataFrame(
                {
                    "segment": pairs["segment"],
                    "arm": pairs["arm"],
                    "variant_id": pairs["variant_id"],
                    "metric": metric,
                    "n_control": pairs["n_control"],
                    "n_arm": pairs["n"],
                    "count_control": pairs[f"{column}_control"],
                    "count_arm": pairs[column],
                }
            )
        )
    rows = pd.concat(frames, ignore_index=True)
    x_c, n_c = rows["count_control"].to_numpy(float), rows["n_control"].to_numpy(float)
    x_a, n_a = rows["count_arm"].to_numpy(float), rows["n_arm"].to_numpy(float)
    both = (n_c > 0) & (n_a > 0)
    no_events = both & (x_c + x_a == 0)
    all_events = both & (x_c + x_a == n_c + n_a)
    testable = both & ~no_events & ~all_events

    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rate_c, rate_a = x_c / n_c, x_a / n_a
        # Newcombe's hybrid score interval (Fagerland et al. 2015 recommend it): unlike Wald it never
        # collapses to zero width when an arm has no events (or only events), and it covers at least nominally
        # at the handful of conversions a small segment yields.
        abs_low, abs_high = confint_proportions_2indep(
            x_a, n_a, x_c, n_c, method="newcomb", compare="diff", alpha=alpha
        )
        # Katz interval: delta method on log(p_arm / p_control); needs events in both arms.
        ratio_low, ratio_high = confint_proportions_2indep(
            x_a, n_a, x_c, n_c, method="log", compare="ratio", alpha=alpha
        )
        # Score test under H0 p_arm = p_control without the small-sample correction is the pooled
        # two-proportion z-test (identical to proportions_ztest), vectorized over all comparisons at once.
        _, p_value = test_proportions_2indep(
            x_a, n_a, x_c, n_c, method="score", compare="diff", correction=False, return_results=False
        )
        effective_n = np.where(both, n_a * n_c / (n_a + n_c), 0.0)
        effect_h = proportion_effectsize(rate_a, rate_c)
        power_achieved = _power_at_effective_n(effect_h, effective_n, alpha)
        mde_abs = _proportion_mde(rate_c, effective_n, alpha, power)
        mde_reachable = np.isfinite(mde_abs)
        relative_lift = rate_a / rate_c - 1
    ratio_defined = both & (x_c > 0) & (x_a > 0)
    rows["test"] = "two-proportion z"
    rows["n_segments"] = 1
    rows["rate_control"], rows["rate_arm"] = rate_c, rate_a
    rows["abs_lift"] = np.where(both, rate_a - rate_c, np.nan)
    rows["abs_ci_low"], rows["abs_ci_high"] = (
        np.where(both, abs_low, np.nan),
        np.where(both, abs_high, np.nan),
    )
    rows["rel_lift"] = np.where(both & (x_c > 0), relative_lift, np.nan)
    rows["rel_ci_low"] = np.where(ratio_defined, ratio_low - 1, np.nan)
    rows["rel_ci_high"] = np.where(ratio_defined, ratio_high - 1, np.nan)
    rows["p_value"] = np.where(testable, p_value, np.nan)
    rows["power_achieved"] = np.where(testable, power_achieved, np.nan)
    rows["mde_abs"] = np.where(both & mde_reachable, mde_abs, np.nan)
    prob = np.full(len(rows), np.nan)
    if both.any():
        prob[both] = prob_beta_greater(
            1 + x_a[both], 1 + n_a[both] - x_a[both], 1 + x_c[both], 1 + n_c[both] - x_c[both]
        )
    rows["prob_beat_control"] = prob

    notes = pd.Series("", index=rows.index, dtype=object)
    notes = _append_note(notes, n_c == 0, "control has no customers")
    notes = _append_note(notes, n_a == 0, "arm has no customers")
    notes = _append_note(notes, no_events, "no events in either arm: test undefined")
    notes = _append_note(notes, all_events, "every customer had the event in both arms: test undefined")
    notes = _append_note(notes, both & (x_c == 0) & (x_a > 0), "control rate is 0: relative lift undefined")
    notes = _append_note(notes, both & (x_a == 0) & (x_c > 0), "no events in arm: relative CI undefined")
    notes = _append_note(
        notes, both & ~mde_reachable, "too few customers for the requested power at any lift"
    )
    rows["note"] = notes
    return rows


def _revenue_comparisons(pairs: pd.DataFrame, alpha: float, power: float) -> pd.DataFrame:
    """Welch t-test comparisons of mean revenue per customer (the ``rate_*`` columns hold the means)."""
    m_c, v_c, n_c = (
        pairs[c].to_numpy(float) for c in ("revenue_mean_control", "revenue_var_control", "n_control")
    )
    m_a, v_a, n_a = (pairs[c].to_numpy(float) for c in ("revenue_mean", "revenue_var", "n"))
    both = (n_c > 0) & (n_a > 0)
    estimable = (n_c >= 2) & (n_a >= 2)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        standard_error = np.sqrt(v_a / n_a + v_c / n_c)
        testable = estimable & (standard_error > 0)
        # Same statistic as scipy.stats.ttest_ind(equal_var=False) on the raw rows, from per-arm summaries.
        _, p_value = stats.ttest_ind_from_stats(
            m_a, np.sqrt(v_a), n_a, m_c, np.sqrt(v_c), n_c, equal_var=False
        )
        welch_df = (v_a / n_a + v_c / n_c) ** 2 / (
            (v_a / n_a) ** 2 / (n_a - 1) + (v_c / n_c) ** 2 / (n_c - 1)
        )
        half_width = stats.t.ppf(1 - alpha / 2, welch_df) * standard_error
        diff = m_a - m_c
        # Delta method on log(mean_arm / mean_control).
        log_ratio_se = np.sqrt(v_a / (n_a * m_a**2) + v_c / (n_c * m_c**2))
        z = stats.norm.ppf(1 - alpha / 2)
        ratio_defined = testable & (m_a > 0) & (m_c > 0)
        pooled_sd = np.sqrt((v_a + v_c) / 2)
        effective_n = np.where(both, n_a * n_c / (n_a + n_c), 0.0)
        power_achieved = _power_at_effective_n(diff / pooled_sd, effective_n, alpha)
        mde_abs = _standardized_mde(alpha, power) / np.sqrt(effective_n) * pooled_sd
        prob = stats.norm.cdf(diff / standard_error)  # flat-prior normal posterior of the mean difference
        # inf/NaN where control's mean is 0 (masked below); computed here so no warning escapes.
        ratio = m_a / m_c
        ratio_low, ratio_high = ratio * np.exp(-z * log_ratio_se), ratio * np.exp(z * log_ratio_se)
    rows = pd.DataFrame(
        {
            "segment": pairs["segment"],
            "arm": pairs["arm"],
            "variant_id": pairs["variant_id"],
            "metric": REVENUE_METRIC,
            "test": "welch t",
            "n_segments": 1,
            "n_control": pairs["n_control"],
            "n_arm": pairs["n"],
            "count_control": np.nan,
            "count_arm": np.nan,
            "rate_control": np.where(n_c > 0, m_c, np.nan),
            "rate_arm": np.where(n_a > 0, m_a, np.nan),
            "abs_lift": np.where(both, diff, np.nan),
            "abs_ci_low": np.where(testable, diff - half_width, np.nan),
            "abs_ci_high": np.where(testable, diff + half_width, np.nan),
            "rel_lift": np.where(both & (m_c > 0), ratio - 1, np.nan),
            "rel_ci_low": np.where(ratio_defined, ratio_low - 1, np.nan),
            "rel_ci_high": np.where(ratio_defined, ratio_high - 1, np.nan),
            "p_value": np.where(testable, p_value, np.nan),
            "power_achieved": np.where(testable, power_achieved, np.nan),
            "mde_abs": np.where(testable, mde_abs, np.nan),
            "prob_beat_control": np.where(testable, prob, np.nan),
        }
    )
    notes = pd.Series("", index=rows.index, dtype=object)
    notes = _append_note(notes, n_c == 0, "control has no customers")
    notes = _append_note(notes, n_a == 0, "arm has no customers")
    notes = _append_note(notes, both & ~estimable, "fewer than 2 customers in an arm: t-test undefined")
    notes = _append_note(
        notes, estimable & ~(standard_error > 0), "revenue has no variation: t-test undefined"
    )
    rows["note"] = notes
    return rows


def _check_parameters(alpha: float, power: float, correction: str) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power}")
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")


def adjust_p_values(p_values: pd.Series, families: pd.Series, correction: str = "holm") -> pd.Series:
    """Holm or Benjamini-Hochberg adjusted p-values within each family, vectorized over all families at once.

    Equal to ``statsmodels.stats.multitest.multipletests(method=correction)`` per family (the tests check
    this); done here because multipletests handles one family per call and its Holm branch runs
    ``gc.collect()`` on every call (~45 ms once pandas is loaded), which dominated the cost of a many-segment
    experiment. NaN p-values are left out of their family (a comparison that could not be tested does not
    count towards the correction).
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    frame = pd.DataFrame({"p": p_values.to_numpy(float), "family": families.to_numpy()}, index=p_values.index)
    frame = frame[frame["p"].notna()].sort_values(["family", "p"], kind="stable")
    grouped = frame.groupby("family", sort=False)["p"]
    rank = grouped.cumcount().to_numpy() + 1  # 1 = smallest p in the family
    size = grouped.transform("size").to_numpy()
    if correction == "holm":
        # Step-down: running max over ascending p of (m - rank + 1) * p.
        frame["scaled"] = (size - rank + 1) * frame["p"].to_numpy()
        adjusted = frame.groupby("family", sort=False)["scaled"].cummax()
    else:
        # Step-up: running min over descending p of m / rank * p.
        frame["scaled"] = size / rank * frame["p"].to_numpy()
        adjusted = frame.iloc[::-1].groupby("family", sort=False)["scaled"].cummin()
    return adjusted.clip(upper=1.0).reindex(p_values.index)


def _adjust_p_values(rows: pd.DataFrame, alpha: float, correction: str) -> pd.DataFrame:
    """Adjust within each segment's family (its arms × metrics with a defined p); flag significance."""
    rows["p_adjusted"] = adjust_p_values(rows["p_value"], rows["segment"], correction)
    rows["significant"] = (rows["p_adjusted"] < alpha).to_numpy()
    return rows


def _empty_metrics() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in METRICS_COLUMNS})


def compute_experiment_metrics(
    engagement: pd.DataFrame,
    alpha: float = 0.05,
    power: float = 0.8,
    correction: str = "holm",
    expected_arms: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per (segment, arm other than control, metric) comparing the arm with the segment's control.

    Metrics are ``open``, ``click``, ``conversion`` (two-proportion z-test, Newcombe CI for the difference,
    Katz log-ratio CI for the relative lift, Beta(1,1) posterior P(arm > control)) and, when the frame has a
    ``revenue`` column, ``revenue`` (Welch t-test on the mean per customer). ``p_adjusted`` applies
    ``correction`` ("holm" or "fdr_bh") across all of a segment's arms × metrics. CIs are at level 1 - alpha
    and not adjusted. ``expected_arms`` names arms that should exist in every segment, so an arm left with no
    customers still gets rows (NaN statistics and a note). A segment with only a control arm has no
    comparisons and yields no rows.
    """
    _check_parameters(alpha, power, correction)
    summary = summarize_arms(engagement)
    pairs = _comparison_pairs(summary, expected_arms)
    if pairs.empty:
        return _empty_metrics()
    parts = [_binary_comparisons(pairs, alpha, power)]
    if REVENUE_METRIC in engagement.columns:
        parts.append(_revenue_comparisons(pairs, alpha, power))
    rows = pd.concat(parts, ignore_index=True)
    rows = _adjust_p_values(rows, alpha, correction)
    metric_order = {metric: position for position, metric in enumerate([*BINARY_METRICS, REVENUE_METRIC])}
    rows = rows.sort_values(
        ["segment", "arm", "metric"], key=lambda s: s.map(metric_order) if s.name == "metric" else s
    )
    return rows[METRICS_COLUMNS].reset_index(drop=True)


# ------------------------------------------------------------------------------------------------------
# Pooled across segments
# ------------------------------------------------------------------------------------------------------


def _pooled_row(strata: pd.DataFrame, metric: str, alpha: float, power: float) -> dict[str, object]:
    """Mantel-Haenszel-weighted comparison of one arm with control over the segments in ``strata``.

    Each segment's difference is weighted by ``w = n_arm * n_control / (n_arm + n_control)`` (its share of
    information), so a segment's size and its arm split cannot leak into the estimate as they do in naive
    pooling.
    """
    n_a, n_c = strata["n"].to_numpy(float), strata["n_control"].to_numpy(float)
    revenue = metric == REVENUE_METRIC
    usable = (n_a >= 2) & (n_c >= 2) if revenue else (n_a > 0) & (n_c > 0)
    n_a, n_c = n_a[usable], n_c[usable]
    row: dict[str, object] = {
        "n_segments": int(usable.sum()),
        "n_control": int(n_c.sum()),
        "n_arm": int(n_a.sum()),
        "count_control": np.nan,
        "count_arm": np.nan,
    }
    undefined = dict.fromkeys(
        [
            "rate_control",
            "rate_arm",
            "abs_lift",
            "abs_ci_low",
            "abs_ci_high",
            "rel_lift",
            "rel_ci_low",
            "rel_ci_high",
            "p_value",
            "power_achieved",
            "mde_abs",
            "prob_beat_control",
        ],
        np.nan,
    )
    row |= undefined
    if not usable.any():
        row["note"] = "no segment has both control and arm customers"
        row["test"] = "stratified z" if revenue else "cochran-mantel-haenszel"
        return row

    weights = n_a * n_c / (n_a + n_c)
    total_weight = weights.sum()
    if revenue:
        mean_a, mean_c = (
            strata["revenue_mean"].to_numpy(float)[usable],
            strata["revenue_mean_control"].to_numpy(float)[usable],
        )
        var_a = strata["revenue_var"].to_numpy(float)[usable] / n_a
        var_c = strata["revenue_var_control"].to_numpy(float)[usable] / n_c
        test_var = var_a + var_c
        row["test"] = "stratified z"
    else:
        column = BINARY_METRICS[metric]
        x_a, x_c = strata[column].to_numpy(float)[usable], strata[f"{column}_control"].to_numpy(float)[usable]
        mean_a, mean_c = x_a / n_a, x_c / n_c
        var_a, var_c = mean_a * (1 - mean_a) / n_a, mean_c * (1 - mean_c) / n_c
        # Under H0 both arms of a segment share its pooled rate: the variance the test standardizes by.
        pooled_rate = (x_a + x_c) / (n_a + n_c)
        test_var = pooled_rate * (1 - pooled_rate) * (1 / n_a + 1 / n_c)
        row["count_control"], row["count_arm"] = float(x_c.sum()), float(x_a.sum())
        row["test"] = "cochran-mantel-haenszel"

    rate_a = float((weights * mean_a).sum() / total_weight)
    rate_c = float((weights * mean_c).sum() / total_weight)
    var_rate_a = float((weights**2 * var_a).sum() / total_weight**2)
    var_rate_c = float((weights**2 * var_c).sum() / total_weight**2)
    standard_error = np.sqrt(var_rate_a + var_rate_c)
    test_se = float(np.sqrt((weights**2 * test_var).sum()) / total_weight)
    diff = rate_a - rate_c
    z = stats.norm.ppf(1 - alpha / 2)
    row |= {"rate_control": rate_c, "rate_arm": rate_a, "abs_lift": diff}
    notes = []
    if standard_error > 0:
        row |= {
            "abs_ci_low": diff - z * standard_error,
            "abs_ci_high": diff + z * standard_error,
            "prob_beat_control": float(stats.norm.cdf(diff / standard_error)),  # normal approximation
        }
    if rate_c > 0:
        row["rel_lift"] = rate_a / rate_c - 1
        if rate_a > 0:
            # Delta method on log(rate_arm / rate_control); with one segment this is the Katz interval.
            log_se = np.sqrt(var_rate_a / rate_a**2 + var_rate_c / rate_c**2)
            row["rel_ci_low"] = rate_a / rate_c * np.exp(-z * log_se) - 1
            row["rel_ci_high"] = rate_a / rate_c * np.exp(z * log_se) - 1
    else:
        notes.append("control rate is 0: relative lift undefined")
    if test_se > 0:
        if revenue:
            row["p_value"] = float(2 * stats.norm.sf(abs(diff) / test_se))
            row["power_achieved"] = float(
                _power_at_effective_n(np.array([diff / test_se]), np.array([1.0]), alpha)[0]
            )
            row["mde_abs"] = _standardized_mde(alpha, power) * test_se
        else:
            tables = np.stack([np.stack([x_a, n_a - x_a]), np.stack([x_c, n_c - x_c])])  # 2 x 2 x segments
            row["p_value"] = float(StratifiedTable(tables).test_null_odds(correction=False).pvalue)
            # With MH weights the pooled difference has variance p(1-p) / sum(w) under a common rate p, i.e.
            # it is a two-sample comparison with effective size sum(w): the per-segment power formulas apply
            # unchanged.
            effective_n = np.array([total_weight])
            effect_h = proportion_effectsize(np.array([rate_a]), np.array([rate_c]))
            row["power_achieved"] = float(_power_at_effective_n(effect_h, effective_n, alpha)[0])
            row["mde_abs"] = float(_proportion_mde(np.array([rate_c]), effective_n, alpha, power)[0])
    else:
        notes.append("no variation in any segment: test undefined")
    row["note"] = "; ".join(notes)
    return row


def compute_pooled_metrics(
    engagement: pd.DataFrame,
    alpha: float = 0.05,
    power: float = 0.8,
    correction: str = "holm",
    expected_arms: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Arm-vs-control comparisons pooled over segments, stratified by segment (segment column ``__pooled__``).

    Rates and lifts are Mantel-Haenszel weighted averages of the per-segment figures (``rate_arm /
    rate_control`` is the MH risk ratio); binary metrics are tested with the Cochran-Mantel-Haenszel test,
    revenue with a z-test on the weighted mean difference. The multiplicity family is the pooled rows (arms ×
    metrics). Same columns as ``compute_experiment_metrics``; ``n_segments`` counts the segments that
    contributed.
    """
    _check_parameters(alpha, power, correction)
    summary = summarize_arms(engagement)
    pairs = _comparison_pairs(summary, expected_arms)
    if pairs.empty:
        return _empty_metrics()
    metrics = [*BINARY_METRICS, *([REVENUE_METRIC] if REVENUE_METRIC in engagement.columns else [])]
    records = []
    for arm, strata in pairs.groupby("arm", sort=True):  # one pass per arm × metric; segments are vectorized
        variant_ids = strata["variant_id"].dropna().unique()
        for metric in metrics:
            records.append(
                {
                    "segment": POOLED_SEGMENT,
                    "arm": arm,
                    # Each segment has its own variant of a tone; name it only if it is the same everywhere.
                    "variant_id": variant_ids[0] if len(variant_ids) == 1 else None,
                    "metric": metric,
                    **_pooled_row(strata, metric, alpha, power),
                }
            )
    rows = _adjust_p_values(pd.DataFrame.from_records(records), alpha, correction)
    return rows[METRICS_COLUMNS].reset_index(drop=True)
