"""Customer segmentation: ordered RFM-style rules or K-means, plus per-segment profiles.

Both methods return one segment per customer as a slug key (`high_value_recent`) and a readable name
("High-Value Recent"). Keys are Dagster partition keys, so they must stay free of spaces and commas.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from personalization_assets.lib.customers import NUMERIC_FEATURES, display_case, same_ids

OPERATORS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
INTENTS = ("vip", "win_back", "onboarding", "loyalty", "nurture")
# Columns of the `customer_segments` table (one row per customer) and of `segment_profiles` (one row per segment).
SEGMENT_COLUMNS = ("customer_id", "segment", "segment_name", "intent")
PROFILE_COLUMNS = (
    "segment",
    "segment_name",
    "intent",
    "customers",
    "share",
    *(f"mean_{feature}" for feature in NUMERIC_FEATURES),
    *(f"median_{feature}" for feature in NUMERIC_FEATURES),
    "tier_mix",
    "top_locations",
    "engagement_level",
    "description",
)


def slugify(name: str) -> str:
    """`High-Value Recent` -> `high_value_recent` (a partition key safe for UI backfills)."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise ValueError(f"segment name {name!r} has no letters or digits to build a key from")
    return slug


@dataclass(frozen=True)
class Condition:
    feature: str
    op: str
    value: float


@dataclass(frozen=True)
class Rule:
    key: str
    name: str
    intent: str
    conditions: tuple[Condition, ...]


def assign_rule_segments(customers: pd.DataFrame, rules: Sequence[Rule], default: Rule) -> pd.DataFrame:
    """First matching rule wins (rules in order); customers matching none get `default`."""
    keys = np.full(len(customers), default.key, dtype=object)
    unassigned = np.ones(len(customers), dtype=bool)
    for rule in rules:
        match = unassigned.copy()
        for condition in rule.conditions:
            match &= OPERATORS[condition.op](customers[condition.feature].to_numpy(), condition.value)
        keys[match] = rule.key
        unassigned &= ~match
    names = {rule.key: rule.name for rule in [*rules, default]}
    intents = {rule.key: rule.intent for rule in [*rules, default]}
    segment = pd.Series(keys, index=customers.index)
    return pd.DataFrame(
        {
            "customer_id": customers["customer_id"].to_numpy(),
            "segment": segment.to_numpy(),
            "segment_name": segment.map(names).to_numpy(),
            "intent": segment.map(intents).to_numpy(),
        }
    )


@dataclass(frozen=True)
class KMeansResult:
    segments: pd.DataFrame
    k: int
    silhouette_by_k: dict[int, float]


# Feature descriptions used to name clusters by what sets them apart (z-score of the cluster centre).
_HIGH_LOW_WORDS = {
    "avg_order_value": ("High-Spend", "Budget"),
    "purchase_frequency": ("Frequent", "Occasional"),
    "last_engagement_days": ("Lapsed", "Recent"),
    "historical_open_rate": ("Engaged", "Quiet"),
    "historical_click_rate": ("Clicky", "Browsing"),
    "age": ("Mature", "Young"),
}


def _name_cluster(z_centre: pd.Series) -> str:
    strongest = z_centre.abs().sort_values(ascending=False).index[:2]
    words = [_HIGH_LOW_WORDS[f][0] if z_centre[f] > 0 else _HIGH_LOW_WORDS[f][1] for f in strongest]
    return " ".join(words)


def _intent_from_profile(z_centre: pd.Series) -> str:
    if z_centre["last_engagement_days"] > 0.75:
        return "win_back"
    if z_centre["avg_order_value"] > 0.75:
        return "vip"
    if z_centre["purchase_frequency"] < -0.5:
        return "onboarding"
    if z_centre["purchase_frequency"] > 0.5 and z_centre["historical_open_rate"] > 0:
        return "loyalty"
    return "nurture"


def assign_kmeans_segments(
    customers: pd.DataFrame,
    features: Sequence[str] = NUMERIC_FEATURES,
    k: int | None = None,
    k_range: tuple[int, int] = (3, 5),
    seed: int = 42,
    fit_sample: int = 50_000,
    silhouette_sample: int = 5_000,
) -> KMeansResult:
    """K-means on standardized features. `k=None` picks k in `k_range` by silhouette on a sample.

    Fitting uses a seeded sample (the centres of 50k customers are as good as those of 1M), then every customer is
    assigned to the nearest centre, so a million rows segment in about a second.
    """
    # scikit-learn is imported here, not at module load: the default rule-based segmentation never needs it and
    # its import is ~0.7 s of every `personalize run` and code-location load.
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    low, high = k_range
    if not 2 <= low <= high:
        raise ValueError(f"k_range must satisfy 2 <= low <= high, got {k_range}")
    candidates = [k] if k is not None else list(range(low, high + 1))
    if len(customers) < max(candidates):
        raise ValueError(f"K-means needs at least {max(candidates)} customers, got {len(customers)}")

    values = customers[list(features)].to_numpy(dtype=float)
    scaler = StandardScaler().fit(values)
    scaled = scaler.transform(values)
    rng = np.random.default_rng(seed)
    fit_rows = scaled[rng.choice(len(scaled), min(fit_sample, len(scaled)), replace=False)]
    score_rows = fit_rows[: min(silhouette_sample, len(fit_rows))]

    models: dict[int, KMeans] = {}
    silhouettes: dict[int, float] = {}
    for candidate in candidates:
        model = KMeans(n_clusters=candidate, n_init=4, random_state=seed).fit(fit_rows)
        models[candidate] = model
        labels = model.predict(score_rows)
        silhouettes[candidate] = float(silhouette_score(score_rows, labels)) if len(set(labels)) > 1 else float("nan")
    chosen = k if k is not None else max(silhouettes, key=lambda c: np.nan_to_num(silhouettes[c], nan=-1))
    model = models[chosen]

    # Order clusters by centre value so names and keys are stable across refits with the same seed.
    centres = pd.DataFrame(model.cluster_centers_, columns=list(features))
    order = centres.sort_values(list(features)).index.to_list()
    names: dict[int, str] = {}
    intents: dict[int, str] = {}
    for cluster in order:
        name = _name_cluster(centres.loc[cluster])
        while name in names.values():  # two clusters with the same two strongest traits
            name += " II" if not name.endswith(" II") else "I"
        names[cluster] = name
        intents[cluster] = _intent_from_profile(centres.loc[cluster])

    labels = model.predict(scaled)
    name_series = pd.Series(labels).map(names)
    segments = pd.DataFrame(
        {
            "customer_id": customers["customer_id"].to_numpy(),
            "segment": name_series.map(slugify).to_numpy(),
            "segment_name": name_series.to_numpy(),
            "intent": pd.Series(labels).map(intents).to_numpy(),
        }
    )
    return KMeansResult(segments=segments, k=chosen, silhouette_by_k=silhouettes)


def engagement_level(open_rate: float) -> str:
    return "high" if open_rate >= 0.4 else "medium" if open_rate >= 0.2 else "low"


def profile_segments(customers: pd.DataFrame, segments: pd.DataFrame) -> pd.DataFrame:
    """One row per segment: size, share, feature means and medians, tier mix, top cities, engagement level."""
    # customer_id is unique on both sides (validated on load), so no merge validation pass is needed; when both
    # list the same customers in the same order (segments are assigned in the customers' order), the inner
    # join is the two frames side by side.
    if same_ids(customers["customer_id"], segments["customer_id"]):
        joined = pd.DataFrame(
            {column: customers[column].array for column in customers.columns}
            | {column: segments[column].array for column in segments.columns if column != "customer_id"}
        )
    else:
        joined = customers.merge(segments, on="customer_id", how="inner")
    grouped = joined.groupby("segment", sort=True)
    profile = grouped.agg(
        segment_name=("segment_name", "first"),
        intent=("intent", "first"),
        customers=("customer_id", "size"),
    )
    profile["share"] = profile["customers"] / len(joined)
    means = grouped[list(NUMERIC_FEATURES)].mean().add_prefix("mean_")
    medians = grouped[list(NUMERIC_FEATURES)].median().add_prefix("median_")
    profile = profile.join(means).join(medians)

    # `PLATINUM` and `Platinum` are one tier: counted together, shown as `Platinum` (stored values unchanged).
    tier_share = pd.crosstab(joined["segment"], display_case(joined["tier"]).to_numpy(), normalize="index")
    profile["tier_mix"] = [
        json.dumps({tier: round(float(share), 3) for tier, share in row.sort_values(ascending=False).items() if share})
        for _, row in tier_share.reindex(profile.index).iterrows()
    ]
    city_counts = joined.groupby(["segment", "location"]).size().rename("n").reset_index()
    top_cities = (
        city_counts.sort_values(["segment", "n", "location"], ascending=[True, False, True])
        .groupby("segment")
        .head(3)
        .groupby("segment")["location"]
        .agg(list)
    )
    profile["top_locations"] = top_cities.reindex(profile.index).map(json.dumps)
    profile["engagement_level"] = profile["mean_historical_open_rate"].map(engagement_level)
    profile["description"] = [
        f"{row.segment_name}: {row.customers:,} customers ({row.share:.1%}); "
        f"avg order ${row.mean_avg_order_value:,.0f}, {row.mean_purchase_frequency:.1f} purchases, "
        f"last engaged {row.median_last_engagement_days:.0f} days ago (median), "
        f"open rate {row.mean_historical_open_rate:.0%} ({row.engagement_level} engagement)"
        for row in profile.itertuples()
    ]
    return profile.reset_index()
