"""Feature attribution: which customer attributes drive response and which change the messages' lift
(a statsmodels logistic regression on the sampled engagement)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.discrete.discrete_model import Logit  # not statsmodels.api: it imports every model (~1 s)
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationError
from threadpoolctl import threadpool_limits  # installed with scikit-learn

from personalization_assets.lib.assignment import ordered_arms
from personalization_assets.lib.customers import display_case
from personalization_assets.lib.reporting.formatting import METRIC_EVENTS, METRIC_VERBS
from personalization_assets.lib.reporting.inputs import ATTRIBUTION_FEATURES
from personalization_assets.lib.statistics import CONTROL, adjust_p_values

FEATURE_LABELS = {
    "age": "age",
    "purchase_frequency": "purchase frequency",
    "avg_order_value": "average order value",
    "last_engagement_days": "days since last engagement",
    "historical_open_rate": "historical open rate",
    "historical_click_rate": "historical click rate",
}
# BLAS threads for the fit. Its matrices are small (200,000 × ~20): on the two cores the report step shares with
# its chart process, PDF worker and notebook kernel, a second BLAS thread mostly spins; one halved the fit's CPU
# time and wall time at 1M customers (the same Newton steps: the estimates agree to rounding).
FIT_BLAS_THREADS = 1
MIN_EVENTS_PER_PARAMETER = 10  # the usual events-per-variable rule for stable logistic-regression estimates
OUTCOME_FLAGS = {"open": "opened", "click": "clicked", "conversion": "converted"}


def _feature_step(feature: str, sd: float) -> str:
    """One standard deviation of a feature in its own units ("+13 years", "+$48", "+12 points")."""
    if feature == "age":
        return f"{sd:.0f} years"
    if feature == "avg_order_value":
        return f"${sd:,.0f}"
    if feature == "last_engagement_days":
        return f"{sd:.0f} days"
    if feature == "purchase_frequency":
        return f"{sd:.1f} purchases"
    if feature.startswith("historical_"):
        return f"{sd * 100:.1f} percentage points"
    return f"{sd:.3g}"


@dataclass(frozen=True)
class Attribution:
    """Customer attributes that drive response (main effects) and the messages' lift (attribute × message)."""

    outcome: str | None  # the metric modelled, or None when no model could be fitted
    requested_outcome: str
    rows: int
    events: int
    terms: pd.DataFrame  # TERM_COLUMNS; effect is "response" (main effect) or "uplift" (attribute × message)
    reading: tuple[str, ...]
    note: str = ""

    @property
    def fitted(self) -> bool:
        return self.outcome is not None

    @property
    def outcome_events(self) -> str:
        return METRIC_EVENTS.get(self.outcome or self.requested_outcome, "events")


TERM_COLUMNS = [
    "term",
    "feature",
    "label",
    "effect",
    "odds_ratio",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "significant",
    "step",
]


def _design(sample: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, dict[str, object]]]:
    """Design matrix: intercept, standardized attributes, tier dummies, tone dummies and attribute × treated.

    The treated indicator is centred, so each attribute's main effect is its association with response for the
    average customer of this experiment, not for the control group alone.
    """
    design = pd.DataFrame({"const": 1.0}, index=sample.index)
    meta: dict[str, dict[str, object]] = {}
    numeric = []
    for feature in ATTRIBUTION_FEATURES:
        values = pd.to_numeric(sample[feature], errors="coerce").astype(float)
        sd = float(values.std())
        if not np.isfinite(sd) or sd == 0:
            continue  # a constant attribute explains nothing and would make the model singular
        design[feature] = (values - values.mean()) / sd
        meta[feature] = {
            "feature": feature,
            "label": FEATURE_LABELS[feature],
            "effect": "response",
            "step": _feature_step(feature, sd),
        }
        numeric.append(feature)
    # `GOLD`, `gold` and `Gold` are one tier (as in the segment profiles): one dummy, labelled `Gold`.
    tiers = display_case(sample["tier"]).astype(str)
    counts = tiers.value_counts()
    reference = counts.index[0] if len(counts) else None
    for tier in sorted(counts.index[1:]):
        term = f"tier[{tier}]"
        design[term] = (tiers == tier).astype(float)
        meta[term] = {
            "feature": "tier",
            "label": f"tier {tier} (vs {reference})",
            "effect": "response",
            "step": f"{tier} instead of {reference}",
        }
    arms = ordered_arms(sample["arm"].astype(str))
    for arm in [a for a in arms if a != CONTROL]:
        design[f"arm[{arm}]"] = (sample["arm"] == arm).astype(float)
    treated = (sample["arm"] != CONTROL).astype(float)
    if 0 < treated.mean() < 1:
        centred = treated - treated.mean()
        for feature in numeric:
            term = f"{feature}:message"
            design[term] = design[feature] * centred
            meta[term] = {**meta[feature], "effect": "uplift"}
    # One column-major block: the model reads it as one 2-D array without interleaving a block per column
    # (a copy that costs a quarter of a second at 200,000 rows).
    values = np.empty(design.shape, order="F")
    for j, column in enumerate(design.columns):
        values[:, j] = design[column].to_numpy(dtype=float)
    return pd.DataFrame(values, index=design.index, columns=design.columns), meta


def _full_rank(design: pd.DataFrame) -> bool:
    """Whether the design has full column rank, from its small Gram matrix (X'X): milliseconds, where statsmodels'
    own check factorizes the whole matrix. Stricter than that check, so "full" here is full there too."""
    values = design.to_numpy()
    return int(np.linalg.matrix_rank(values.T @ values)) == design.shape[1]


def feature_attribution(
    sample: pd.DataFrame, outcome_metric: str = "conversion", confidence: float = 0.95
) -> Attribution:
    """Logistic regression of an engagement flag on customer attributes, tone and attribute × message.

    Odds ratios are per standard deviation of each attribute. If the requested outcome has too few events for
    a stable model (fewer than 10 per parameter) the next earlier funnel stage is used, and the note says so.
    p-values are Holm-adjusted within response effects and within uplift effects.
    """
    empty = pd.DataFrame(columns=TERM_COLUMNS)
    if outcome_metric not in OUTCOME_FLAGS:
        raise ValueError(f"attribution outcome must be one of {sorted(OUTCOME_FLAGS)}, got {outcome_metric!r}")
    if sample.empty:
        return Attribution(None, outcome_metric, 0, 0, empty, (), "No engagement joined with customer attributes yet.")
    sample = sample.dropna(subset=["arm", *ATTRIBUTION_FEATURES]).reset_index(drop=True)
    design, meta = _design(sample)
    parameters = design.shape[1] - 1
    check_rank = not _full_rank(design)  # statsmodels' check then only runs where it can matter
    funnel = list(OUTCOME_FLAGS)
    tried = []
    for metric in reversed(funnel[: funnel.index(outcome_metric) + 1]):
        outcome = sample[OUTCOME_FLAGS[metric]].astype(float)
        events = int(min(outcome.sum(), len(outcome) - outcome.sum()))  # the rarer class limits the information
        needed = MIN_EVENTS_PER_PARAMETER * parameters
        if events < needed:
            tried.append(f"{METRIC_EVENTS[metric]} ({events:,} < {needed:,} needed)")
            continue
        try:
            with warnings.catch_warnings(), threadpool_limits(FIT_BLAS_THREADS, user_api="blas"):
                warnings.simplefilter("error", ConvergenceWarning)
                result = Logit(outcome, design, check_rank=check_rank).fit(disp=0, maxiter=100)
        except (PerfectSeparationError, ConvergenceWarning, np.linalg.LinAlgError) as error:
            tried.append(f"{METRIC_EVENTS[metric]} (model did not converge: {type(error).__name__})")
            continue
        note = ""
        if tried:
            note = (
                f"Too few events for a reliable model of {', '.join(tried)}; "
                f"{METRIC_EVENTS[metric]} are modelled instead."
            )
        return _attribution_result(
            result, meta, metric, outcome_metric, len(sample), int(outcome.sum()), confidence, note
        )
    return Attribution(
        None,
        outcome_metric,
        len(sample),
        0,
        empty,
        (),
        f"Too few events for a reliable model ({'; '.join(tried)}); a larger campaign is needed.",
    )


def _attribution_result(
    result, meta, metric: str, requested: str, rows: int, events: int, confidence: float, note: str
) -> Attribution:
    interval = np.asarray(result.conf_int(alpha=1 - confidence))
    names = list(result.params.index)
    records = []
    for i, term in enumerate(names):
        if term not in meta:
            continue  # intercept and tone dummies: the lift itself is reported from experiment_metrics
        records.append(
            {
                "term": term,
                **meta[term],
                "odds_ratio": float(np.exp(result.params.iloc[i])),
                "ci_low": float(np.exp(interval[i, 0])),
                "ci_high": float(np.exp(interval[i, 1])),
                "p_value": float(result.pvalues.iloc[i]),
            }
        )
    terms = pd.DataFrame.from_records(records)
    # Holm within each family (response, uplift effects); same as multipletests, without its gc.collect().
    terms["p_adjusted"] = adjust_p_values(terms["p_value"], terms["effect"], "holm")
    terms["significant"] = terms["p_adjusted"] < 1 - confidence
    terms = terms[TERM_COLUMNS]
    return Attribution(metric, requested, rows, events, terms, _attribution_reading(terms, metric, confidence), note)


def _attribution_reading(terms: pd.DataFrame, metric: str, confidence: float) -> tuple[str, ...]:
    event = METRIC_VERBS[metric]
    sentences = []
    response = terms[(terms["effect"] == "response") & terms["significant"]]
    response = response.assign(strength=np.abs(np.log(response["odds_ratio"]))).sort_values("strength", ascending=False)
    for row in response.head(3).itertuples():
        direction = "more" if row.odds_ratio > 1 else "less"
        if row.feature == "tier":
            sentences.append(
                f"Customers in {row.label} are {direction} likely to {event}: odds ×{row.odds_ratio:.2f} "
                f"({confidence:.0%} CI {row.ci_low:.2f}–{row.ci_high:.2f})."
            )
        else:
            sentences.append(
                f"Customers with a higher {row.label} are {direction} likely to {event}: "
                f"each +{row.step} multiplies the odds by {row.odds_ratio:.2f} "
                f"({confidence:.0%} CI {row.ci_low:.2f}–{row.ci_high:.2f})."
            )
    if response.empty:
        sentences.append(f"No customer attribute is clearly associated with the chance to {event}.")
    uplift_all = terms[terms["effect"] == "uplift"]
    uplift = uplift_all[uplift_all["significant"]]
    for row in uplift.itertuples():
        direction = "larger" if row.odds_ratio > 1 else "smaller"
        sentences.append(
            f"The new messages' lift is {direction} for customers with a higher {row.label}: "
            f"×{row.odds_ratio:.2f} on the odds ratio per +{row.step} "
            f"({confidence:.0%} CI {row.ci_low:.2f}–{row.ci_high:.2f})."
        )
    if uplift_all.empty:
        sentences.append("No tone was sent in the sample, so attribute × message effects cannot be estimated.")
    elif uplift.empty:
        sentences.append(
            "No attribute detectably changes the messages' lift: the tones work about equally across these "
            "customer types (no attribute × message interaction is significant after Holm adjustment)."
        )
    return tuple(sentences)
