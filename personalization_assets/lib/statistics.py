"""Experiment statistics: per-segment arm-vs-control comparisons, a segment-stratified pooled analysis, the
campaign-wide decision rule and the exactness checks of the assignment.

Engagement frames have one row per customer: ``segment, arm, opened, clicked, converted`` (bool or 0/1) and
optionally ``revenue`` (float). Every comparison is an arm against ``control`` within one segment. Degenerate
comparisons (an empty arm, no events at all) give NaN statistics and say why in ``note``; they never raise.

The decision rule (docs/statistics.md has the reasoning and the validation figures):
  * tests: Miettinen-Nurminen score test for rates, with Fisher's exact (central) test on top where an
    expected cell count is below 5; Welch t for revenue; when engagement is recorded and refreshed over time,
    the mixture SPRT (always-valid p-values), so any number of looks keeps its error rate;
  * intervals: the inversion of the same test (score interval, confidence sequence, Welch t), widened to reach
    0 where the exact test does not reject: an interval excludes 0 exactly when ``p_value < alpha``;
  * multiplicity: per family (a segment, or the pooled rows) the primary metric's arms are corrected with Holm
    and each arm's secondary metrics are gated behind its primary (tested in funnel order only after it);
    the campaign's alpha is split equally over its families (segments + pooled), so the chance of any false
    winner anywhere in the campaign is at most alpha. ``p_adjusted`` includes both steps, so
    ``significant`` is ``p_adjusted < alpha``;
  * power, MDE and customers needed are for that rule: the level the primary comparison is first tested at,
    ``alpha_decision = alpha / (families x testable arms of the family)``, and the test actually used;
  * P(beat control): Beta posteriors from a weakly informative prior shared by both arms (half an event at
    the comparison's pooled rate), so a rare-event arm with no data cannot look better than a measured one.
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
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_effectsize

CONTROL = "control"
# Segment label of the pooled rows: a double-underscore name cannot collide with a segment slug such as "all".
POOLED_SEGMENT = "__pooled__"
# Metric name -> engagement flag column. Rates are per customer sent to (clicks / sends, not clicks / opens).
BINARY_METRICS: dict[str, str] = {"open": "opened", "click": "clicked", "conversion": "converted"}
REVENUE_METRIC = "revenue"
PRIMARY_METRIC = "conversion"
CORRECTIONS = ("holm", "fdr_bh")
# Below this many expected events (or non-events) in a cell of the 2x2 table, the normal approximation of the
# score test is not trusted: Fisher's exact test decides too (Cochran's rule).
MIN_EXPECTED_COUNT = 5.0
# Mixture SPRT: the normal mixing distribution's sd, as a share of the pooled rate (or mean revenue).
DEFAULT_MIXTURE_RELATIVE_SD = 0.2

FIXED_TEST = {"rate": "score (Miettinen-Nurminen)", "exact": "score + Fisher exact", "mean": "welch t"}
SEQUENTIAL_TEST = "mSPRT (always valid)"

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
    "alpha_decision",
    "power_achieved",
    "mde_abs",
    "n_needed",
    "prob_beat_control",
    "looks",
    "note",
]

_QUADRATURE_NODES = 256
_BISECTION_STEPS = 60


# ------------------------------------------------------------------------------------------------------
# Sample ratio: the exact deal and reconciliation
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
            f"sample_ratio_mismatch: expected weights must be non-negative with a positive sum, got {dict(weights)}"
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


def dealt_counts(total: int, weights: Mapping[str, float]) -> pd.Series:
    """Customers per arm that the assignment's deal gives ``total`` customers (lib.assignment.assign_arms):
    ranks ``r`` at positions ``(r + 0.5) / total`` go to the arm whose cumulative-weight interval holds them.
    Each count is within 1 of ``total * weight``."""
    arms = list(weights)
    cumulative = np.cumsum([float(weights[arm]) for arm in arms])
    cumulative /= cumulative[-1]
    edges = np.ceil(total * cumulative - 0.5).astype(np.int64)
    edges[-1] = total
    return pd.Series(np.diff(np.concatenate(([0], edges))), index=arms, dtype="int64")


def deal_deviation(counts: Mapping[str, int] | pd.Series, weights: Mapping[str, float]) -> pd.DataFrame:
    """Observed arm sizes against the exact deal of their total: ``arm, observed, dealt, deviation, beyond``.

    Assignment is exact (floor or ceil of ``n * weight``), so any arm more than one customer away from its
    share of the total means rows were lost, duplicated or moved after the deal; ``beyond`` flags it. An arm
    with customers but no weight is always beyond.
    """
    observed = pd.Series(counts, dtype="int64")
    arms = [*weights, *sorted(set(observed.index) - set(weights))]
    observed = observed.reindex(arms, fill_value=0)
    total = int(observed.sum())
    share = pd.Series(weights, dtype=float).reindex(arms, fill_value=0.0)
    share = share / share.sum() if share.sum() > 0 else share
    dealt = dealt_counts(total, share.to_dict()) if total and share.sum() > 0 else share * 0
    deviation = observed - share * total
    return pd.DataFrame(
        {
            "arm": arms,
            "observed": observed.to_numpy(),
            "dealt": dealt.reindex(arms, fill_value=0).to_numpy(dtype=np.int64),
            "deviation": deviation.to_numpy(),
            "beyond": (deviation.abs() > 1 + 1e-9).to_numpy() | ((share == 0) & (observed > 0)).to_numpy(),
        }
    )


def retention_p_value(assigned: Mapping[str, int], analysed: Mapping[str, int]) -> float:
    """Chi-square test that every arm kept the same share of its assigned customers (p; NaN if none lost)."""
    assigned_counts = pd.Series(assigned, dtype=float)
    kept = pd.Series(analysed, dtype=float).reindex(assigned_counts.index, fill_value=0.0)
    lost = (assigned_counts - kept).clip(lower=0)
    if lost.sum() == 0 or kept.sum() == 0 or len(assigned_counts) < 2:
        return float("nan")
    table = np.stack([kept.to_numpy(), lost.to_numpy()])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return float("nan")
    return float(stats.chi2_contingency(table, correction=False).pvalue)


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

    frame = engagement.assign(**{column: engagement[column].astype(np.int64) for column in BINARY_METRICS.values()})
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
# Tests and the intervals that invert them
# ------------------------------------------------------------------------------------------------------


def score_statistic(
    x_a: np.ndarray, n_a: np.ndarray, x_c: np.ndarray, n_c: np.ndarray, delta: np.ndarray | float = 0.0
) -> np.ndarray:
    """Miettinen-Nurminen score z for H0: p_arm - p_control = delta, element-wise.

    The rates under H0 are the restricted maximum-likelihood estimates (closed-form cubic root of
    Miettinen and Nurminen 1985); the variance carries the N / (N - 1) correction. Equal to statsmodels'
    ``test_proportions_2indep(method="score", correction=True)``, which takes one delta per call.
    """
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 where no test is defined: NaN, noted by callers
        arrays = [np.asarray(v, dtype=float) for v in (x_a, n_a, x_c, n_c)]
        return _score_statistic(arrays[0], arrays[1], arrays[2], arrays[3], delta)


def _score_statistic(
    x_a: np.ndarray, n_a: np.ndarray, x_c: np.ndarray, n_c: np.ndarray, delta: np.ndarray | float
) -> np.ndarray:
    delta = np.broadcast_to(np.asarray(delta, dtype=float), x_a.shape)
    total, events = n_a + n_c, x_a + x_c
    # Miettinen and Nurminen (1985), index 0 = control, as statsmodels writes it.
    tmp2 = (n_a + 2 * n_c) * delta - total - events
    tmp1 = (x_c * delta - total - 2 * x_c) * delta + events
    tmp0 = x_c * delta * (1 - delta)
    q = (tmp2 / (3 * total)) ** 3 - tmp1 * tmp2 / (6 * total**2) + tmp0 / (2 * total)
    p = np.sign(q) * np.sqrt(np.maximum((tmp2 / (3 * total)) ** 2 - tmp1 / (3 * total), 0.0))
    p = np.where(p == 0, 1e-300, p)
    angle = (np.pi + np.arccos(np.clip(q / p**3, -1.0, 1.0))) / 3
    restricted_c = np.where(delta == 0, events / total, 2 * p * np.cos(angle) - tmp2 / (3 * total))
    restricted_c = np.clip(restricted_c, 0.0, 1.0)
    restricted_a = np.clip(restricted_c + delta, 0.0, 1.0)
    variance = (restricted_a * (1 - restricted_a) / n_a + restricted_c * (1 - restricted_c) / n_c) * (
        total / (total - 1)
    )
    return (x_a / n_a - x_c / n_c - delta) / np.sqrt(variance)


def score_interval(
    x_a: np.ndarray, n_a: np.ndarray, x_c: np.ndarray, n_c: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """The difference values the score test does not reject at ``alpha`` (vectorized bisection): the
    Miettinen-Nurminen interval, so it excludes 0 exactly when the score test's p is below ``alpha``."""
    x_a, n_a, x_c, n_c = (np.asarray(v, dtype=float) for v in (x_a, n_a, x_c, n_c))
    critical = stats.norm.ppf(1 - alpha / 2)
    estimate = x_a / n_a - x_c / n_c
    eps = 1e-12

    def solve(lower: np.ndarray, upper: np.ndarray, target: float) -> np.ndarray:
        # score_statistic decreases in delta; find delta where it crosses `target`.
        for _ in range(_BISECTION_STEPS):
            middle = (lower + upper) / 2
            above = score_statistic(x_a, n_a, x_c, n_c, middle) > target
            lower, upper = np.where(above, middle, lower), np.where(above, upper, middle)
        return (lower + upper) / 2

    with np.errstate(invalid="ignore", divide="ignore"):
        low = solve(np.full_like(estimate, -1 + eps), estimate.copy(), critical)
        high = solve(estimate.copy(), np.full_like(estimate, 1 - eps), -critical)
        low = np.where(score_statistic(x_a, n_a, x_c, n_c, -1 + eps) <= critical, -1.0, low)
        high = np.where(score_statistic(x_a, n_a, x_c, n_c, 1 - eps) >= -critical, 1.0, high)
    return low, high


def expected_counts_small(x_a: np.ndarray, n_a: np.ndarray, x_c: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    """True where a cell of the 2x2 table expects fewer than MIN_EXPECTED_COUNT under H0 (pooled rate)."""
    with np.errstate(invalid="ignore", divide="ignore"):  # both arms empty: NaN, which is not "small"
        pooled = (x_a + x_c) / (n_a + n_c)
    smallest = np.minimum(np.minimum(n_a, n_c) * pooled, np.minimum(n_a, n_c) * (1 - pooled))
    return smallest < MIN_EXPECTED_COUNT


def fisher_central_p(x_a: np.ndarray, n_a: np.ndarray, x_c: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    """Fisher's exact test, two-sided as twice the smaller one-sided p (the 'central' test whose inversion is
    the conditional interval), vectorized through the hypergeometric distribution."""
    x_a, n_a, x_c, n_c = (np.asarray(v, dtype=np.int64) for v in (x_a, n_a, x_c, n_c))
    total, events = n_a + n_c, x_a + x_c
    less = stats.hypergeom.cdf(x_a, total, events, n_a)
    greater = stats.hypergeom.sf(x_a - 1, total, events, n_a)
    return np.minimum(1.0, 2 * np.minimum(less, greater))


def msprt(
    difference: np.ndarray | float,
    variance: np.ndarray,
    mixture_variance: np.ndarray,
    alpha: float | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Mixture sequential probability ratio test (Johari et al. 2017) of a difference with a normal mixing
    distribution of variance ``mixture_variance``: ``(always-valid p, confidence-sequence half width)``.

    The likelihood ratio against 0 is ``sqrt(V / (V + t)) * exp(t * d^2 / (2 V (V + t)))``; by Ville's
    inequality it exceeds 1 / alpha at any look with probability at most alpha under H0, so p = min(1, 1 / LR)
    may be read after every refresh. The half width is where the same ratio reaches 1 / alpha, so the
    confidence sequence excludes 0 exactly when p < alpha.
    """
    v, t = np.asarray(variance, dtype=float), np.asarray(mixture_variance, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        log_ratio = 0.5 * np.log(v / (v + t)) + t * np.asarray(difference) ** 2 / (2 * v * (v + t))
        p_value = np.minimum(1.0, np.exp(-log_ratio))
        half_width = np.sqrt(v * (v + t) / t * (2 * np.log(1 / alpha) + np.log((v + t) / v)))
    return p_value, half_width


def consistent(
    p_interval: np.ndarray, low: np.ndarray, high: np.ndarray, p_extra: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combine the test an interval inverts (``p_interval``) with a second valid test (``p_extra``, NaN where
    not used): the p-value is the larger of the two and the interval is widened to reach 0 where only the
    first rejects. Both stay valid, and the interval excludes 0 exactly when ``p < alpha``."""
    extra = np.where(np.isnan(p_extra), 0.0, p_extra)
    p_value = np.where(np.isnan(p_interval), np.nan, np.maximum(p_interval, extra))
    widen = (extra >= alpha) & ((low > 0) | (high < 0))
    return p_value, np.where(widen, np.minimum(low, 0.0), low), np.where(widen, np.maximum(high, 0.0), high)


# ------------------------------------------------------------------------------------------------------
# Power for the decision rule
# ------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _standardized_mde(alpha: float, power: float) -> float:
    """Effect size detectable with ``power`` at two-sided ``alpha`` when the effective sample size is 1
    (NormalIndPower depends on sizes only through ``effect * sqrt(n1*n2/(n1+n2))``)."""
    return float(NormalIndPower().solve_power(effect_size=None, nobs1=1, alpha=alpha, power=power, ratio=0))


def _power_at_effective_n(effect_size: np.ndarray, effective_n: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Two-sided normal-test power at level ``alpha`` (element-wise) for a standardized effect and effective
    sample size ``n1*n2/(n1+n2)``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        critical = stats.norm.isf(np.asarray(alpha, dtype=float) / 2)
        shift = np.abs(effect_size) * np.sqrt(effective_n)
        power = stats.norm.sf(critical - shift) + stats.norm.cdf(-critical - shift)
    return np.where((effective_n > 0) & np.isfinite(effect_size), power, np.nan)


def _mde_factor(alpha: np.ndarray, power: float) -> np.ndarray:
    return np.array([_standardized_mde(float(a), power) if np.isfinite(a) else np.nan for a in np.atleast_1d(alpha)])


def _proportion_mde(rate_control: np.ndarray, effective_n: np.ndarray, alpha: np.ndarray, power: float) -> np.ndarray:
    """Smallest absolute rise over ``rate_control`` detectable with ``power`` at level ``alpha``: the
    Cohen's-h MDE at this effective n, mapped back from the arcsine scale. NaN where no rate up to 100%
    suffices."""
    with np.errstate(invalid="ignore", divide="ignore"):
        arcsine_target = np.arcsin(np.sqrt(rate_control)) + _mde_factor(alpha, power) / np.sqrt(effective_n) / 2
        reachable = arcsine_target <= np.pi / 2
        return np.where(reachable, np.sin(np.minimum(arcsine_target, np.pi / 2)) ** 2 - rate_control, np.nan)


def _sequential_power(
    lift: np.ndarray,
    variance: np.ndarray,
    mixture_variance: np.ndarray,
    alpha: np.ndarray,
    power: float,
    rate_control: np.ndarray | None = None,
    n_arm: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the mSPRT at this look: power at ``lift``, the MDE, and the factor of today's sample at which the
    observed lift would be detected with ``power`` (the sample scales the variance by 1 / factor).

    For rates (``rate_control`` and ``n_arm`` given, NaN elsewhere) the MDE is solved with the variance the
    data would have at that lift: the arm's rate moves to ``rate_control + MDE``, and both the rejection
    threshold and the spread of the estimate grow with it.
    """
    z_power = stats.norm.ppf(power)
    _, half = msprt(0.0, variance, mixture_variance, alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(variance)
        achieved = stats.norm.sf((half - np.abs(lift)) / sd) + stats.norm.cdf((-np.abs(lift) - half) / sd)
        mde = half + z_power * sd
        if rate_control is not None and n_arm is not None:
            rates = np.isfinite(rate_control) & np.isfinite(n_arm)
            arm_part = rate_control * (1 - rate_control) / n_arm
            control_part = np.where(rates, variance - arm_part, 0.0)
            # The mixing sd is a share of the pooled rate, which rises with the arm's rate too.
            mixture_share = np.sqrt(mixture_variance) / rate_control
            n_control = np.where(rates, rate_control * (1 - rate_control) / control_part, np.nan)
            for _ in range(40):  # fixed point: the MDE at the variance of its own alternative
                arm_rate = np.clip(rate_control + mde, 0.0, 1.0)
                at_mde = control_part + arm_rate * (1 - arm_rate) / n_arm
                pooled = (n_arm * arm_rate + n_control * rate_control) / (n_arm + n_control)
                _, h = msprt(0.0, at_mde, (mixture_share * pooled) ** 2, alpha)
                mde = np.where(rates, h + z_power * np.sqrt(at_mde), mde)
        low, high = np.full_like(sd, -8.0), np.full_like(sd, 16.0)  # log factor
        for _ in range(_BISECTION_STEPS):
            middle = (low + high) / 2
            factor = np.exp(middle)
            _, h = msprt(0.0, variance / factor, mixture_variance, alpha)
            enough = h + z_power * sd / np.sqrt(factor) <= np.abs(lift)
            low, high = np.where(enough, low, middle), np.where(enough, middle, high)
        factor = np.exp(high)
    return achieved, mde, np.where((np.abs(lift) > 0) & (high < 16.0 - 1e-6), factor, np.nan)


# ------------------------------------------------------------------------------------------------------
# P(beat control)
# ------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _unit_nodes() -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(_QUADRATURE_NODES)
    return (nodes + 1) / 2, weights / 2


def prob_beta_greater(a1: np.ndarray, b1: np.ndarray, a2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """P(X1 > X2) for independent X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), element-wise (Gauss-Legendre).

    The integral runs over the narrower posterior, ``P = E[F_other]`` under it, because the wider one's CDF is
    smooth on that range: over its density between its 1e-12 quantiles when both its shapes are at least 1
    (agrees with the closed-form sum to ~1e-10), else over its quantiles, ``integral_0^1 F_other(Q(u)) du``,
    whose integrand stays bounded where a shape below 1 makes the density unbounded.
    """
    a1, b1, a2, b2 = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (a1, b1, a2, b2))
    first_narrower = stats.beta.std(a1, b1) <= stats.beta.std(a2, b2)
    a_narrow, b_narrow = np.where(first_narrower, a1, a2), np.where(first_narrower, b1, b2)
    a_other, b_other = np.where(first_narrower, a2, a1), np.where(first_narrower, b2, b1)
    nodes, weights = _unit_nodes()
    below = np.empty(len(a1))  # P(X_other < X_narrow)
    smooth = (a_narrow >= 1) & (b_narrow >= 1)
    if smooth.any():
        a, b = a_narrow[smooth, None], b_narrow[smooth, None]
        low, high = stats.beta.ppf(1e-12, a, b), stats.beta.ppf(1 - 1e-12, a, b)
        points = low + (high - low) * nodes
        integrand = stats.beta.pdf(points, a, b) * stats.beta.cdf(points, a_other[smooth, None], b_other[smooth, None])
        below[smooth] = (integrand * weights).sum(axis=1) * (high[:, 0] - low[:, 0])
    if (~smooth).any():
        quantiles = stats.beta.ppf(nodes[None, :], a_narrow[~smooth, None], b_narrow[~smooth, None])
        other_cdf = stats.beta.cdf(quantiles, a_other[~smooth, None], b_other[~smooth, None])
        below[~smooth] = (other_cdf * weights).sum(axis=1)
    return np.clip(np.where(first_narrower, below, 1 - below), 0.0, 1.0)


def prob_beat_control(x_a: np.ndarray, n_a: np.ndarray, x_c: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    """P(arm rate > control rate) under Beta posteriors from one prior shared by both arms.

    The prior is Beta(1/2, 1/2 (1 - m) / m) with mean m the comparison's pooled rate (with half an event added,
    so it is never 0): half a pseudo-event, i.e. weakly informative (a coefficient of variation above 100% on
    the rate) yet it keeps an arm with almost no data near its prior instead of letting a flat Beta(1, 1)
    put its rate far above a well-measured control's. With 0/10 vs 0/100,000 the answer is about 0.6, not
    0.9999.
    """
    x_a, n_a, x_c, n_c = (np.asarray(v, dtype=float) for v in (x_a, n_a, x_c, n_c))
    mean = (x_a + x_c + 0.5) / (n_a + n_c + 1)
    prior_a = np.full_like(mean, 0.5)
    prior_b = prior_a * (1 - mean) / mean
    return prob_beta_greater(prior_a + x_a, prior_b + n_a - x_a, prior_a + x_c, prior_b + n_c - x_c)


# ------------------------------------------------------------------------------------------------------
# The decision rule: Holm on the primary metric, secondary metrics gated behind it
# ------------------------------------------------------------------------------------------------------


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


def metric_order(primary_metric: str) -> list[str]:
    """The chain of one arm's tests: the primary metric, then the other metrics nearest it first."""
    order = ["conversion", "click", "open", REVENUE_METRIC]
    return [primary_metric, *(metric for metric in order if metric != primary_metric)]


def gatekeeping_adjust(
    p_values: pd.Series,
    families: pd.Series,
    arms: pd.Series,
    metrics: pd.Series,
    primary_metric: str = PRIMARY_METRIC,
    correction: str = "holm",
) -> pd.Series:
    """Adjusted p-values of a hierarchical rule per family: within each family (a segment) every arm is a
    chain of tests ``metric_order(primary_metric)``; the chains' heads (the primary metric) share the
    family's alpha, each later test of a chain is reached only when all earlier ones reject, and a chain that
    rejects completely passes its alpha on to the others.

    ``holm``: the graphical procedure (Bretz et al. 2009) with Bonferroni weights ``1/m`` on the m chain heads,
    edges head -> next metric -> ... -> the other chains' heads. Its result has a closed form: with
    ``s`` a test's running maximum p along its chain and ``Q(t)`` the Holm-adjusted t-th smallest chain
    maximum, the adjusted p is ``min over t of max(Q(t), s * (m - t))``. Strong family-wise error control.
    ``fdr_bh``: Benjamini-Hochberg at each chain position separately, a test's adjusted p being at least that
    of the tests before it in its chain (under the global null its error is still at most alpha).
    Untestable (NaN) tests are skipped in their chain; a chain whose primary is untestable tests nothing
    (adjusted 1). Returns a Series aligned with ``p_values``.
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    order = {metric: position for position, metric in enumerate(metric_order(primary_metric))}
    frame = pd.DataFrame(
        {
            "p": p_values.to_numpy(float),
            "family": families.to_numpy(),
            "arm": arms.to_numpy(),
            "position": metrics.map(order).fillna(len(order)).to_numpy(int),
        },
        index=p_values.index,
    )
    frame["row"] = np.arange(len(frame))
    adjusted = np.full(len(frame), np.nan)
    frame = frame.sort_values(["family", "arm", "position"], kind="stable")
    chain_key = pd.MultiIndex.from_arrays([frame["family"], frame["arm"]])
    heads = frame[(frame["position"] == 0) & frame["p"].notna()]
    head_ok = chain_key.isin(pd.MultiIndex.from_arrays([heads["family"], heads["arm"]]))
    gated_out = frame["p"].notna() & ~head_ok
    adjusted[frame.loc[gated_out, "row"].to_numpy()] = 1.0
    live = frame[frame["p"].notna() & ~gated_out].copy()
    if live.empty:
        return pd.Series(adjusted, index=p_values.index)
    live["running"] = live.groupby(["family", "arm"], sort=False)["p"].cummax()
    if correction == "fdr_bh":
        by_position = adjust_p_values(
            live["running"], live["family"].astype(str) + "\x1f" + live["position"].astype(str), "fdr_bh"
        )
        live["adj"] = by_position.groupby([live["family"], live["arm"]], sort=False).cummax()
        adjusted[live["row"].to_numpy()] = live["adj"].clip(upper=1.0).to_numpy()
        return pd.Series(adjusted, index=p_values.index)
    # Holm over the chains' maxima, for all families at once: Q(t) for t = 1..m in a (families x m) matrix.
    chains = live.groupby(["family", "arm"], sort=False)["running"].max().reset_index()
    chains["q"] = adjust_p_values(chains["running"], chains["family"], "holm")
    chains = chains.sort_values(["family", "q"], kind="stable")
    family_code, family_names = pd.factorize(chains["family"])
    rank = chains.groupby("family", sort=False).cumcount().to_numpy()
    sizes = np.bincount(family_code)
    width = int(sizes.max()) + 1
    q = np.full((len(family_names), width), np.inf)
    q[:, 0] = 0.0
    q[family_code, rank + 1] = chains["q"].to_numpy()
    # Each test: min over t of max(Q(t), s * (m - t)), t = 0..m of its family.
    element_family = pd.Index(family_names).get_indexer(live["family"])
    m = sizes[element_family][:, None]
    t = np.arange(width)[None, :]
    candidates = np.maximum(q[element_family], live["running"].to_numpy()[:, None] * np.maximum(m - t, 0))
    candidates = np.where(t <= m, candidates, np.inf)
    adjusted[live["row"].to_numpy()] = np.minimum(candidates.min(axis=1), 1.0)
    return pd.Series(adjusted, index=p_values.index)


def _decide(
    rows: pd.DataFrame, alpha: float, power: float, correction: str, families: int, primary_metric: str
) -> pd.DataFrame:
    """Adjusted p (family rule, then times the number of families), significance and the level each arm's
    primary comparison is first tested at (``alpha_decision``), per family (segment)."""
    within = gatekeeping_adjust(
        rows["p_value"], rows["segment"], rows["arm"], rows["metric"], primary_metric, correction
    )
    rows["p_adjusted"] = np.minimum(within * families, 1.0)
    rows["significant"] = (rows["p_adjusted"] < alpha).to_numpy()
    primary = rows[(rows["metric"] == primary_metric) & rows["p_value"].notna()]
    chains = primary.groupby("segment")["arm"].nunique()
    rows["alpha_decision"] = alpha / families / rows["segment"].map(chains).fillna(1).clip(lower=1).to_numpy(float)
    return rows


# ------------------------------------------------------------------------------------------------------
# Per-segment comparisons
# ------------------------------------------------------------------------------------------------------


def _binary_comparisons(pairs: pd.DataFrame, alpha: float, sequential: bool, mixture_sd: float) -> pd.DataFrame:
    """Arm-vs-control statistics for every binary metric of every pair, vectorized over rows (power columns
    are filled in later, once the decision level is known)."""
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
    small = testable & expected_counts_small(x_a, n_a, x_c, n_c)

    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rate_c, rate_a = x_c / n_c, x_a / n_a
        difference = rate_a - rate_c
        ratio_low, ratio_high = confint_proportions_2indep(
            x_a, n_a, x_c, n_c, method="log", compare="ratio", alpha=alpha
        )  # Katz interval for the relative lift: needs events in both arms
        if sequential:
            # Plug-in variance of the difference from rates with one event and one non-event added per arm
            # (Agresti-Caffo), so a 0% or 100% arm still has a positive variance.
            smoothed_a, smoothed_c = (x_a + 1) / (n_a + 2), (x_c + 1) / (n_c + 2)
            variance = smoothed_a * (1 - smoothed_a) / n_a + smoothed_c * (1 - smoothed_c) / n_c
            pooled = (x_a + x_c + 1) / (n_a + n_c + 2)
            mixture_variance = (mixture_sd * pooled) ** 2
            p_value, half = msprt(difference, variance, mixture_variance, alpha)
            low, high = difference - half, difference + half
            # The normal approximation needs a few events in every cell before the first look counts.
            waiting = small | ~(variance > 0)
            testable = testable & ~waiting
            test = np.full(len(rows), SEQUENTIAL_TEST, dtype=object)
        else:
            p_score = 2 * stats.norm.sf(np.abs(score_statistic(x_a, n_a, x_c, n_c)))
            score_low, score_high = score_interval(x_a, n_a, x_c, n_c, alpha)
            p_exact = np.full(len(rows), np.nan)
            if small.any():
                p_exact[small] = fisher_central_p(x_a[small], n_a[small], x_c[small], n_c[small])
            p_value, low, high = consistent(p_score, score_low, score_high, p_exact, alpha)
            waiting = np.zeros(len(rows), dtype=bool)
            variance = pooled = mixture_variance = np.full(len(rows), np.nan)
            test = np.where(small, FIXED_TEST["exact"], FIXED_TEST["rate"]).astype(object)
        relative_lift = rate_a / rate_c - 1
    ratio_defined = both & (x_c > 0) & (x_a > 0)
    rows["test"] = test
    rows["n_segments"] = 1
    rows["rate_control"], rows["rate_arm"] = rate_c, rate_a
    rows["abs_lift"] = np.where(both, difference, np.nan)
    # Where no test is possible (no events at all, or all events) the interval is still informative: Newcombe's,
    # which never collapses to zero width; it contains 0, as the undefined p-value implies.
    fallback = both & ~testable
    if fallback.any():
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            newcombe = confint_proportions_2indep(
                x_a[fallback], n_a[fallback], x_c[fallback], n_c[fallback], method="newcomb", alpha=alpha
            )
        low, high = np.array(low, dtype=float), np.array(high, dtype=float)
        low[fallback], high[fallback] = newcombe
        low[fallback], high[fallback] = np.minimum(low[fallback], 0.0), np.maximum(high[fallback], 0.0)
    rows["abs_ci_low"] = np.where(both, low, np.nan)
    rows["abs_ci_high"] = np.where(both, high, np.nan)
    rows["rel_lift"] = np.where(both & (x_c > 0), relative_lift, np.nan)
    rows["rel_ci_low"] = np.where(ratio_defined, ratio_low - 1, np.nan)
    rows["rel_ci_high"] = np.where(ratio_defined, ratio_high - 1, np.nan)
    rows["p_value"] = np.where(testable, p_value, np.nan)
    prob = np.full(len(rows), np.nan)
    if both.any():
        prob[both] = prob_beat_control(x_a[both], n_a[both], x_c[both], n_c[both])
    rows["prob_beat_control"] = prob
    rows["_variance"], rows["_mixture_variance"] = variance, mixture_variance
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 where both arms are empty: not taken
        rows["_effective_n"] = np.where(both, n_a * n_c / (n_a + n_c), 0.0)

    notes = pd.Series("", index=rows.index, dtype=object)
    notes = _append_note(notes, n_c == 0, "control has no customers")
    notes = _append_note(notes, n_a == 0, "arm has no customers")
    notes = _append_note(notes, no_events, "no events in either arm: test undefined")
    notes = _append_note(notes, all_events, "every customer had the event in both arms: test undefined")
    notes = _append_note(
        notes,
        waiting & both & ~no_events & ~all_events,
        f"fewer than {MIN_EXPECTED_COUNT:g} expected events in a cell: the sequential test waits for more data",
    )
    notes = _append_note(notes, both & (x_c == 0) & (x_a > 0), "control rate is 0: relative lift undefined")
    notes = _append_note(notes, both & (x_a == 0) & (x_c > 0), "no events in arm: relative CI undefined")
    rows["note"] = notes
    return rows


def _revenue_comparisons(pairs: pd.DataFrame, alpha: float, sequential: bool, mixture_sd: float) -> pd.DataFrame:
    """Welch t-test comparisons of mean revenue per customer (the ``rate_*`` columns hold the means); the
    mixture SPRT on the mean difference when sequential."""
    m_c, v_c, n_c = (pairs[c].to_numpy(float) for c in ("revenue_mean_control", "revenue_var_control", "n_control"))
    m_a, v_a, n_a = (pairs[c].to_numpy(float) for c in ("revenue_mean", "revenue_var", "n"))
    both = (n_c > 0) & (n_a > 0)
    estimable = (n_c >= 2) & (n_a >= 2)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        variance = v_a / n_a + v_c / n_c
        standard_error = np.sqrt(variance)
        testable = estimable & (standard_error > 0)
        diff = m_a - m_c
        if sequential:
            mixture_variance = (mixture_sd * (n_a * m_a + n_c * m_c) / (n_a + n_c)) ** 2
            mixture_variance = np.where(mixture_variance > 0, mixture_variance, variance)
            p_value, half_width = msprt(diff, variance, mixture_variance, alpha)
            test = SEQUENTIAL_TEST
        else:
            # Same statistic as scipy.stats.ttest_ind(equal_var=False) on the raw rows, from per-arm summaries.
            _, p_value = stats.ttest_ind_from_stats(m_a, np.sqrt(v_a), n_a, m_c, np.sqrt(v_c), n_c, equal_var=False)
            welch_df = variance**2 / ((v_a / n_a) ** 2 / (n_a - 1) + (v_c / n_c) ** 2 / (n_c - 1))
            half_width = stats.t.ppf(1 - alpha / 2, welch_df) * standard_error
            mixture_variance = np.full(len(diff), np.nan)
            test = FIXED_TEST["mean"]
        log_ratio_se = np.sqrt(v_a / (n_a * m_a**2) + v_c / (n_c * m_c**2))
        z = stats.norm.ppf(1 - alpha / 2)
        ratio_defined = testable & (m_a > 0) & (m_c > 0)
        ratio = m_a / m_c
        ratio_low, ratio_high = ratio * np.exp(-z * log_ratio_se), ratio * np.exp(z * log_ratio_se)
        prob = stats.norm.cdf(diff / standard_error)  # flat-prior normal posterior of the mean difference
    rows = pd.DataFrame(
        {
            "segment": pairs["segment"],
            "arm": pairs["arm"],
            "variant_id": pairs["variant_id"],
            "metric": REVENUE_METRIC,
            "test": test,
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
            "prob_beat_control": np.where(testable, prob, np.nan),
            "_variance": variance,
            "_mixture_variance": mixture_variance,
            "_effective_n": np.where(both, n_a * n_c / (n_a + n_c), 0.0),
            "_pooled_sd": np.sqrt((v_a + v_c) / 2),
        }
    )
    notes = pd.Series("", index=rows.index, dtype=object)
    notes = _append_note(notes, n_c == 0, "control has no customers")
    notes = _append_note(notes, n_a == 0, "arm has no customers")
    notes = _append_note(notes, both & ~estimable, "fewer than 2 customers in an arm: t-test undefined")
    notes = _append_note(notes, estimable & ~(standard_error > 0), "revenue has no variation: t-test undefined")
    rows["note"] = notes
    return rows


def _power_columns(rows: pd.DataFrame, power: float, sequential: bool) -> pd.DataFrame:
    """Achieved power at the observed lift, the MDE and the customers per arm that would detect the observed
    lift with ``power``, all at ``alpha_decision`` for the test the row used."""
    alpha_d = rows["alpha_decision"].to_numpy(float)
    lift = rows["abs_lift"].to_numpy(float)
    effective_n = rows["_effective_n"].to_numpy(float)
    testable = rows["p_value"].notna().to_numpy()
    n_arm = rows["n_arm"].to_numpy(float)
    revenue = (rows["metric"] == REVENUE_METRIC).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if sequential:
            # The smoothed control rate the variance was computed with (binary rows; NaN for revenue).
            counts_c, n_c = rows["count_control"].to_numpy(float), rows["n_control"].to_numpy(float)
            smoothed_c = np.where(revenue, np.nan, (counts_c + 1) / (n_c + 2))
            achieved, mde, factor = _sequential_power(
                lift,
                rows["_variance"].to_numpy(float),
                rows["_mixture_variance"].to_numpy(float),
                alpha_d,
                power,
                rate_control=smoothed_c,
                n_arm=np.where(revenue | (rows["segment"] == POOLED_SEGMENT).to_numpy(), np.nan, n_arm),
            )
        else:
            rate_c, rate_a = rows["rate_control"].to_numpy(float), rows["rate_arm"].to_numpy(float)
            pooled_sd = rows["_pooled_sd"].to_numpy(float) if "_pooled_sd" in rows else np.full(len(rows), np.nan)
            effect = np.where(
                revenue, lift / pooled_sd, proportion_effectsize(np.clip(rate_a, 0, 1), np.clip(rate_c, 0, 1))
            )
            achieved = _power_at_effective_n(effect, effective_n, alpha_d)
            standard = _mde_factor(alpha_d, power)
            mde = np.where(
                revenue,
                standard / np.sqrt(effective_n) * pooled_sd,
                _proportion_mde(rate_c, effective_n, alpha_d, power),
            )
            # MDE shrinks with 1/sqrt(n) (on the arcsine scale for rates): the sample that detects this lift.
            target_h = np.where(revenue, lift / pooled_sd, proportion_effectsize(np.clip(rate_c + lift, 0, 1), rate_c))
            factor = (standard / (np.abs(target_h) * np.sqrt(effective_n))) ** 2
            factor = np.where(np.abs(target_h) > 0, factor, np.nan)
    rows["power_achieved"] = np.where(testable, achieved, np.nan)
    rows["mde_abs"] = np.where((effective_n > 0) & np.isfinite(mde), mde, np.nan)
    rows["n_needed"] = np.where(testable & (lift > 0) & np.isfinite(factor), np.ceil(factor * n_arm), np.nan)
    unreachable = (effective_n > 0) & ~np.isfinite(mde) & ~revenue
    rows["note"] = _append_note(rows["note"], unreachable, "too few customers for the requested power at any lift")
    return rows.drop(columns=[c for c in rows.columns if c.startswith("_")])


def _check_parameters(alpha: float, power: float, correction: str, families: int = 1) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power}")
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    if int(families) < 1:
        raise ValueError(f"families must be at least 1, got {families}")


def _empty_metrics() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in METRICS_COLUMNS})


def compute_experiment_metrics(
    engagement: pd.DataFrame,
    alpha: float = 0.05,
    power: float = 0.8,
    correction: str = "holm",
    expected_arms: Sequence[str] | None = None,
    *,
    families: int = 1,
    primary_metric: str = PRIMARY_METRIC,
    sequential: bool = False,
    looks: int = 1,
    mixture_sd: float = DEFAULT_MIXTURE_RELATIVE_SD,
) -> pd.DataFrame:
    """One row per (segment, arm other than control, metric) comparing the arm with the segment's control.

    Metrics are ``open``, ``click``, ``conversion`` and, when the frame has a ``revenue`` column, ``revenue``.
    ``families`` is the number of families the campaign's ``alpha`` is shared by (its segments plus the
    pooled analysis); each segment is one family. ``sequential`` uses the mixture SPRT (recorded engagement
    read again at every refresh; ``looks`` is reported). CIs are at level 1 - alpha, unadjusted, and exclude 0
    exactly when ``p_value < alpha``. ``expected_arms`` names arms that should exist in every segment, so an
    arm left with no customers still gets rows. A segment with only a control arm yields no rows.
    """
    return compute_metrics_from_summary(
        summarize_arms(engagement),
        alpha,
        power,
        correction,
        expected_arms,
        families=families,
        primary_metric=primary_metric,
        sequential=sequential,
        looks=looks,
        mixture_sd=mixture_sd,
    )


def compute_metrics_from_summary(
    summary: pd.DataFrame,
    alpha: float = 0.05,
    power: float = 0.8,
    correction: str = "holm",
    expected_arms: Sequence[str] | None = None,
    *,
    families: int = 1,
    primary_metric: str = PRIMARY_METRIC,
    sequential: bool = False,
    looks: int = 1,
    mixture_sd: float = DEFAULT_MIXTURE_RELATIVE_SD,
) -> pd.DataFrame:
    """``compute_experiment_metrics`` from per-(segment, arm) counts (``summarize_arms``' frame)."""
    _check_parameters(alpha, power, correction, families)
    pairs = _comparison_pairs(summary, expected_arms)
    if pairs.empty:
        return _empty_metrics()
    parts = [_binary_comparisons(pairs, alpha, sequential, mixture_sd)]
    if "revenue_mean" in summary.columns:
        parts.append(_revenue_comparisons(pairs, alpha, sequential, mixture_sd))
    rows = pd.concat(parts, ignore_index=True)
    rows = _decide(rows, alpha, power, correction, int(families), primary_metric)
    rows = _power_columns(rows, power, sequential)
    rows["looks"] = int(looks)
    order = {metric: position for position, metric in enumerate([*BINARY_METRICS, REVENUE_METRIC])}
    rows = rows.sort_values(["segment", "arm", "metric"], key=lambda s: s.map(order) if s.name == "metric" else s)
    return rows[METRICS_COLUMNS].reset_index(drop=True)


# ------------------------------------------------------------------------------------------------------
# Pooled across segments
# ------------------------------------------------------------------------------------------------------


def _pooled_row(
    strata: pd.DataFrame, metric: str, alpha: float, sequential: bool, mixture_sd: float
) -> dict[str, object]:
    """Mantel-Haenszel-weighted comparison of one arm with control over the segments in ``strata``.

    Each segment's difference is weighted by ``w = n_arm * n_control / (n_arm + n_control)`` (its share of
    information), so a segment's size and its arm split cannot leak into the estimate as in naive pooling.
    Fixed sample: the interval is the weighted difference ± z SE, its test the matching z test, combined with
    the Cochran-Mantel-Haenszel test (binary metrics) by ``consistent``. Sequential: the mixture SPRT.
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
        "_variance": np.nan,
        "_mixture_variance": np.nan,
        "_effective_n": 0.0,
        "_pooled_sd": np.nan,
    }
    row |= dict.fromkeys(
        ["rate_control", "rate_arm", "abs_lift", "abs_ci_low", "abs_ci_high", "rel_lift", "rel_ci_low",
         "rel_ci_high", "p_value", "prob_beat_control"],
        np.nan,
    )  # fmt: skip
    fixed_test = "stratified z" if revenue else "cochran-mantel-haenszel"
    row["test"] = SEQUENTIAL_TEST if sequential else fixed_test
    if not usable.any():
        row["note"] = "no segment has both control and arm customers"
        return row

    weights = n_a * n_c / (n_a + n_c)
    total_weight = weights.sum()
    if revenue:
        mean_a = strata["revenue_mean"].to_numpy(float)[usable]
        mean_c = strata["revenue_mean_control"].to_numpy(float)[usable]
        var_a = strata["revenue_var"].to_numpy(float)[usable] / n_a
        var_c = strata["revenue_var_control"].to_numpy(float)[usable] / n_c
    else:
        column = BINARY_METRICS[metric]
        x_a, x_c = strata[column].to_numpy(float)[usable], strata[f"{column}_control"].to_numpy(float)[usable]
        mean_a, mean_c = x_a / n_a, x_c / n_c
        var_a, var_c = mean_a * (1 - mean_a) / n_a, mean_c * (1 - mean_c) / n_c
        row["count_control"], row["count_arm"] = float(x_c.sum()), float(x_a.sum())

    rate_a = float((weights * mean_a).sum() / total_weight)
    rate_c = float((weights * mean_c).sum() / total_weight)
    var_rate_a = float((weights**2 * var_a).sum() / total_weight**2)
    var_rate_c = float((weights**2 * var_c).sum() / total_weight**2)
    variance = var_rate_a + var_rate_c
    standard_error = float(np.sqrt(variance))
    diff = rate_a - rate_c
    z = stats.norm.ppf(1 - alpha / 2)
    row |= {"rate_control": rate_c, "rate_arm": rate_a, "abs_lift": diff, "_variance": variance}
    row["_effective_n"] = float(total_weight)
    row["_pooled_sd"] = standard_error * float(np.sqrt(total_weight))
    notes = []
    if standard_error > 0:
        if sequential:
            overall = (weights * (mean_a + mean_c) / 2).sum() / total_weight
            mixture_variance = float((mixture_sd * overall) ** 2) or variance
            p_value, half = msprt(np.array([diff]), np.array([variance]), np.array([mixture_variance]), alpha)
            row["_mixture_variance"] = mixture_variance
            low, high, p = diff - half[0], diff + half[0], p_value[0]
        else:
            p_wald = np.array([2 * stats.norm.sf(abs(diff) / standard_error)])
            p_extra = np.array([np.nan])
            if not revenue:
                tables = np.stack([np.stack([x_a, n_a - x_a]), np.stack([x_c, n_c - x_c])])  # 2 x 2 x segments
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    p_extra[0] = StratifiedTable(tables).test_null_odds(correction=False).pvalue
            p_arr, low_arr, high_arr = consistent(
                p_wald, np.array([diff - z * standard_error]), np.array([diff + z * standard_error]), p_extra, alpha
            )
            low, high, p = float(low_arr[0]), float(high_arr[0]), float(p_arr[0])
        row |= {
            "abs_ci_low": float(low),
            "abs_ci_high": float(high),
            "p_value": float(p),
            "prob_beat_control": float(stats.norm.cdf(diff / standard_error)),  # normal approximation
        }
    else:
        notes.append("no variation in any segment: test undefined")
    if rate_c > 0:
        row["rel_lift"] = rate_a / rate_c - 1
        if rate_a > 0:
            # Delta method on log(rate_arm / rate_control); with one segment this is the Katz interval.
            log_se = np.sqrt(var_rate_a / rate_a**2 + var_rate_c / rate_c**2)
            row["rel_ci_low"] = rate_a / rate_c * np.exp(-z * log_se) - 1
            row["rel_ci_high"] = rate_a / rate_c * np.exp(z * log_se) - 1
    else:
        notes.append("control rate is 0: relative lift undefined")
    row["note"] = "; ".join(notes)
    return row


def compute_pooled_metrics(
    engagement: pd.DataFrame,
    alpha: float = 0.05,
    power: float = 0.8,
    correction: str = "holm",
    expected_arms: Sequence[str] | None = None,
    *,
    families: int = 1,
    primary_metric: str = PRIMARY_METRIC,
    sequential: bool = False,
    looks: int = 1,
    mixture_sd: float = DEFAULT_MIXTURE_RELATIVE_SD,
) -> pd.DataFrame:
    """Arm-vs-control comparisons pooled over segments, stratified by segment (segment column ``__pooled__``).

    Rates and lifts are Mantel-Haenszel weighted averages of the per-segment figures (``rate_arm /
    rate_control`` is the MH risk ratio). The pooled rows are one family of the campaign (same rule as a
    segment's; ``families`` as in ``compute_experiment_metrics``). ``n_segments`` counts the segments that
    contributed.
    """
    return pooled_metrics_from_summary(
        summarize_arms(engagement),
        alpha,
        power,
        correction,
        expected_arms,
        families=families,
        primary_metric=primary_metric,
        sequential=sequential,
        looks=looks,
        mixture_sd=mixture_sd,
    )


def pooled_metrics_from_summary(
    summary: pd.DataFrame,
    alpha: float = 0.05,
    power: float = 0.8,
    correction: str = "holm",
    expected_arms: Sequence[str] | None = None,
    *,
    families: int = 1,
    primary_metric: str = PRIMARY_METRIC,
    sequential: bool = False,
    looks: int = 1,
    mixture_sd: float = DEFAULT_MIXTURE_RELATIVE_SD,
) -> pd.DataFrame:
    """``compute_pooled_metrics`` from per-(segment, arm) counts (``summarize_arms``' frame)."""
    _check_parameters(alpha, power, correction, families)
    pairs = _comparison_pairs(summary, expected_arms)
    if pairs.empty:
        return _empty_metrics()
    metrics = [*BINARY_METRICS, *([REVENUE_METRIC] if "revenue_mean" in summary.columns else [])]
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
                    **_pooled_row(strata, metric, alpha, sequential, mixture_sd),
                }
            )
    rows = _decide(pd.DataFrame.from_records(records), alpha, power, correction, int(families), primary_metric)
    rows = _power_columns(rows, power, sequential)
    rows["looks"] = int(looks)
    return rows[METRICS_COLUMNS].reset_index(drop=True)
