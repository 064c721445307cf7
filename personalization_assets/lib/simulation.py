"""Engagement outcomes for assigned customers: simulated (seeded) or recorded (loaded from an events table).

Both sit behind ``EngagementSource``: ``source.engagement(assignments)`` returns one row per assigned customer
with ``segment, customer_id, arm, variant_id, opened, clicked, converted`` (bool; plus ``revenue`` if
recorded).

The simulator's model, per customer i (docs/statistics.md has the reasoning):
  open_i  = blend of historical_open_rate and the open baseline, logit-normal noise, × (1 + uplift[arm])
  click_i = blend of historical_click_rate (clicks per send) and the click baseline, logit-normal noise
  P(click | open) = click_i / open_i before uplift, so the uplift lifts open, click and conversion rates alike
  P(convert | click) = conversion baseline / mean click propensity: control converts at the baseline rate
Random numbers come from a keyed hash of (seed, customer_id), so a customer's outcome does not depend on row
order or on who else is in the frame.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special, stats

from personalization_assets.lib.assignment import keyed_hash
from personalization_assets.lib.statistics import CONTROL, REVENUE_METRIC

ENGAGEMENT_FLAGS = ("opened", "clicked", "converted")
ENGAGEMENT_COLUMNS = ["segment", "customer_id", "arm", "variant_id", *ENGAGEMENT_FLAGS]
HISTORY_COLUMNS = ("historical_open_rate", "historical_click_rate")

# Event-row format: accepted spellings of each event type.
EVENT_TYPE_ALIASES: dict[str, str] = {
    **dict.fromkeys(["send", "sends", "sent"], "send"),
    **dict.fromkeys(["open", "opens", "opened"], "open"),
    **dict.fromkeys(["click", "clicks", "clicked"], "click"),
    **dict.fromkeys(["conversion", "conversions", "convert", "converted"], "conversion"),
}
_EVENT_FLAG = {"open": "opened", "click": "clicked", "conversion": "converted"}
_TRUE_STRINGS = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE_STRINGS = {"false", "f", "no", "n", "0", "0.0"}


@dataclass(frozen=True)
class Baselines:
    """Population rates per customer sent to: open, click (not click-through of opens) and conversion."""

    open: float = 0.30
    click: float = 0.08
    conversion: float = 0.02

    def __post_init__(self) -> None:
        if not 0 < self.conversion <= self.click <= self.open < 1:
            raise ValueError(f"baselines must satisfy 0 < conversion <= click <= open < 1, got {self}")


# ------------------------------------------------------------------------------------------------------
# Uplifts
# ------------------------------------------------------------------------------------------------------


def _arm_stream(arm: str) -> int:
    """A stable integer for ``arm`` so each arm's draw is independent of which other arms exist."""
    return int.from_bytes(hashlib.sha256(arm.encode("utf-8")).digest()[:8], "big")


def draw_arm_uplifts(
    arms: Sequence[str],
    mean: float = 0.15,
    sd: float = 0.05,
    clip: tuple[float, float] = (0.05, 0.30),
    seed: int = 0,
    aa_mode: bool = False,
) -> dict[str, float]:
    """True relative uplift per arm: Normal(mean, sd) clipped to ``clip``; 0 for control, and for all in A/A.

    Each arm's draw is seeded by (seed, arm name), so blocking one variant does not change the others'
    uplifts.
    """
    low, high = clip
    if sd < 0 or low > high or low <= -1:
        raise ValueError(f"uplift distribution needs sd >= 0 and -1 < clip low <= clip high, got sd={sd}, clip={clip}")
    uplifts = {}
    for arm in arms:  # a handful of arms, one scalar draw each
        if arm == CONTROL or aa_mode:
            uplifts[arm] = 0.0
            continue
        draw = stats.norm(loc=mean, scale=sd).rvs(random_state=np.random.default_rng([seed, _arm_stream(arm)]))
        uplifts[arm] = float(np.clip(draw, low, high))
    return uplifts


# ------------------------------------------------------------------------------------------------------
# Simulation
# ------------------------------------------------------------------------------------------------------


def _uniform_streams(customer_ids: pd.Series, seed: int, count: int) -> np.ndarray:
    """``count`` independent U(0, 1) streams per customer, shape (count, n), from a keyed hash of the id.

    SplitMix64's finalizer decorrelates the streams derived from one 64-bit hash; the top 53 bits give doubles
    strictly inside (0, 1), so ``norm.ppf`` never sees 0 or 1.
    """
    base = keyed_hash(customer_ids, "engagement", seed)
    streams = np.empty((count, len(base)))
    with np.errstate(over="ignore"):
        for stream in range(count):
            z = base + np.uint64(0x9E3779B97F4A7C15) * np.uint64(stream + 1)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            streams[stream] = ((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
    return streams


def _validated_history(frame: pd.DataFrame, column: str, baseline: float) -> np.ndarray:
    """A historical rate column as floats in [0, 1]; missing values (new customers) take the baseline."""
    values = pd.to_numeric(frame[column], errors="coerce")
    invalid = frame[column].notna() & (values.isna() | (values < 0) | (values > 1))
    if invalid.any():
        examples = frame.loc[invalid, column].head(3).tolist()
        raise ValueError(f"{column}: {int(invalid.sum())} value(s) outside [0, 1] or not numeric, e.g. {examples}")
    return values.fillna(baseline).to_numpy(float)


def _blend_with_noise(history: np.ndarray, baseline: float, weight: float, noise: np.ndarray) -> np.ndarray:
    """``weight``·history + (1-weight)·baseline, perturbed on the logit scale (keeps it inside (0, 1))."""
    blended = np.clip(weight * history + (1 - weight) * baseline, 1e-6, 1 - 1e-6)
    return special.expit(special.logit(blended) + noise)


def _stage_probabilities(
    frame: pd.DataFrame,
    uplifts: Mapping[str, float],
    baselines: Baselines,
    noise_sd: float,
    seed: int,
    history_weight: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-customer P(open), P(click | open), P(convert | click), and the uniforms that decide each stage."""
    required = ["customer_id", "arm", *HISTORY_COLUMNS]
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(f"simulate_engagement: frame lacks column(s) {missing}; join customer features first")
    unknown_arms = sorted(set(frame["arm"].unique()) - set(uplifts) - {CONTROL})
    if unknown_arms:
        raise ValueError(f"simulate_engagement: no uplift given for arm(s) {unknown_arms}; uplifts: {dict(uplifts)}")
    if any(value <= -1 for value in uplifts.values()):
        raise ValueError(f"uplifts must be > -1 (relative change), got {dict(uplifts)}")
    if noise_sd < 0 or not 0 <= history_weight <= 1:
        raise ValueError(f"need noise_sd >= 0 and 0 <= history_weight <= 1, got {noise_sd}, {history_weight}")

    uniforms = _uniform_streams(frame["customer_id"], seed, count=5)
    # The standard normal's quantiles: what stats.norm.ppf computes (ndtri), without its argument checks.
    noise_open, noise_click = noise_sd * special.ndtri(uniforms[:2])
    open_history = _validated_history(frame, "historical_open_rate", baselines.open)
    click_history = _validated_history(frame, "historical_click_rate", baselines.click)
    p_open = _blend_with_noise(open_history, baselines.open, history_weight, noise_open)
    p_click = _blend_with_noise(click_history, baselines.click, history_weight, noise_click)
    click_given_open = np.minimum(p_click / p_open, 1.0)
    # Calibrated on this frame's click propensities: the control conversion rate lands on the baseline on
    # average.
    convert_given_click = min(baselines.conversion / p_click.mean(), 1.0) if len(p_click) else 0.0

    arm_uplift = frame["arm"].map({**uplifts, CONTROL: 0.0}).to_numpy(float)
    p_open = np.minimum(p_open * (1 + arm_uplift), 1.0)
    return p_open, click_given_open, np.full(len(frame), convert_given_click), uniforms[2:]


def engagement_propensities(
    assignments_with_features: pd.DataFrame,
    uplifts: Mapping[str, float],
    baselines: Baselines = Baselines(),
    noise_sd: float = 0.2,
    seed: int = 0,
    history_weight: float = 0.5,
) -> pd.DataFrame:
    """Each customer's expected open, click and conversion rate under its arm (what the simulation draws
    from): ``customer_id, arm, p_open, p_click, p_conversion``. The ground truth for validation."""
    p_open, click_given_open, convert_given_click, _ = _stage_probabilities(
        assignments_with_features, uplifts, baselines, noise_sd, seed, history_weight
    )
    p_click = p_open * click_given_open
    return pd.DataFrame(
        {
            "customer_id": assignments_with_features["customer_id"].to_numpy(),
            "arm": assignments_with_features["arm"].to_numpy(),
            "p_open": p_open,
            "p_click": p_click,
            "p_conversion": p_click * convert_given_click,
        }
    )


def simulate_engagement(
    assignments_with_features: pd.DataFrame,
    uplifts: Mapping[str, float],
    baselines: Baselines = Baselines(),
    noise_sd: float = 0.2,
    seed: int = 0,
    history_weight: float = 0.5,
) -> pd.DataFrame:
    """Draw opened/clicked/converted for each assigned customer (funnel-consistent by construction).

    ``assignments_with_features`` is ``assign_arms`` output joined with the customers' historical rates;
    ``uplifts`` maps each non-control arm to its true relative uplift (``draw_arm_uplifts``); ``noise_sd`` is
    the sd of per-customer logit-scale noise; ``history_weight`` is the weight of a customer's own history
    against the baselines. Same inputs and seed → identical frame.
    """
    frame = assignments_with_features
    missing = [column for column in ("segment", "variant_id") if column not in frame.columns]
    if missing:
        raise ValueError(f"simulate_engagement: frame lacks column(s) {missing}; pass assign_arms output")
    p_open, click_given_open, convert_given_click, (u_open, u_click, u_convert) = _stage_probabilities(
        frame, uplifts, baselines, noise_sd, seed, history_weight
    )
    # Each stage is drawn only among those who passed the previous one: the funnel cannot be inconsistent.
    opened = u_open < p_open
    clicked = opened & (u_click < click_given_open)
    converted = clicked & (u_convert < convert_given_click)
    return pd.DataFrame(
        {
            "segment": frame["segment"].to_numpy(),
            "customer_id": frame["customer_id"].to_numpy(),
            "arm": frame["arm"].to_numpy(),
            "variant_id": frame["variant_id"].to_numpy(),
            "opened": opened,
            "clicked": clicked,
            "converted": converted,
        }
    )


# ------------------------------------------------------------------------------------------------------
# Recorded engagement
# ------------------------------------------------------------------------------------------------------


def _read_table(source: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        return source.copy(), "engagement frame"
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"engagement events file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, dtype={"customer_id": str}), str(path)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path), str(path)
    raise ValueError(f"engagement events file {path}: unsupported extension {suffix!r}; use .csv or .parquet")


def _as_flag(values: pd.Series, column: str, where: str) -> pd.Series:
    """A flag column (bool, 0/1, or true/false/yes/no text) as bool; names the first offending values."""
    if pd.api.types.is_bool_dtype(values) and not values.isna().any():
        return values.astype(bool)
    if pd.api.types.is_numeric_dtype(values) and values.isin([0, 1]).all():
        return values.astype(bool)
    text = values.astype(str).str.strip().str.lower()
    truthy, falsy = text.isin(_TRUE_STRINGS), text.isin(_FALSE_STRINGS)
    invalid = ~(truthy | falsy) | values.isna()
    if invalid.any():
        examples = values[invalid].head(3).tolist()
        raise ValueError(
            f"{where}: column {column!r} has {int(invalid.sum())} value(s) that are not a yes/no flag, e.g. {examples}"
        )
    return truthy


def _flags_from_events(events: pd.DataFrame, where: str) -> pd.DataFrame:
    """Collapse event rows (one per send/open/click/conversion) to one row of flags per customer sent to."""
    event_types = events["event_type"].astype(str).str.strip().str.lower()
    canonical = event_types.map(EVENT_TYPE_ALIASES)
    if canonical.isna().any():
        unknown = sorted(event_types[canonical.isna()].unique())[:5]
        raise ValueError(
            f"{where}: unknown event_type value(s) {unknown}; expected one of {sorted(EVENT_TYPE_ALIASES)}"
        )
    present = pd.crosstab(events["customer_id"], canonical).reindex(columns=["send", *_EVENT_FLAG], fill_value=0) > 0
    unsent = present.index[~present["send"]]
    if len(unsent):
        raise ValueError(
            f"{where}: {len(unsent)} customer(s) have open/click/conversion events but no send, "
            f"e.g. {list(unsent[:5])}; every engaged customer must have a send event"
        )
    flags = present.drop(columns="send").rename(columns=_EVENT_FLAG).rename_axis(columns=None).reset_index()
    if REVENUE_METRIC in events.columns:
        revenue = pd.to_numeric(events[REVENUE_METRIC], errors="coerce").fillna(0.0)
        flags = flags.merge(revenue.groupby(events["customer_id"]).sum().rename(REVENUE_METRIC), on="customer_id")
    return flags


def load_engagement_events(
    source: str | Path | pd.DataFrame, funnel: Literal["error", "infer"] = "error"
) -> pd.DataFrame:
    """Recorded engagement, one row per customer: ``customer_id, opened, clicked, converted`` (+ ``revenue``).

    ``source`` is a CSV/Parquet path or a DataFrame in either of two shapes: per-customer flags
    (``customer_id`` plus ``opened``, ``clicked``, ``converted`` as bool, 0/1 or yes/no), or event rows
    (``customer_id``, ``event_type`` in send/open/click/conversion, plural forms accepted). An optional
    numeric ``revenue`` column is kept (summed over event rows). Recorded funnels can be inconsistent — a
    click without a tracked open when images are blocked — so ``funnel="error"`` rejects such rows and
    ``funnel="infer"`` marks the earlier stages as happened.
    """
    table, where = _read_table(source)
    if "customer_id" not in table.columns:
        raise ValueError(f"{where}: no 'customer_id' column; has {list(table.columns)}")
    if table["customer_id"].isna().any():
        raise ValueError(f"{where}: {int(table['customer_id'].isna().sum())} row(s) without a customer_id")
    table["customer_id"] = table["customer_id"].astype(str)
    if REVENUE_METRIC in table.columns:
        revenue = pd.to_numeric(table[REVENUE_METRIC], errors="coerce")
        bad = table[REVENUE_METRIC].notna() & (revenue.isna() | ~np.isfinite(revenue) | (revenue < 0))
        if bad.any():
            raise ValueError(f"{where}: 'revenue' has {int(bad.sum())} non-numeric or negative value(s)")

    if all(flag in table.columns for flag in ENGAGEMENT_FLAGS):
        duplicated = table["customer_id"].duplicated()
        if duplicated.any():
            raise ValueError(
                f"{where}: {int(duplicated.sum())} duplicate customer_id row(s) in a per-customer flags "
                f"table, e.g. {table.loc[duplicated, 'customer_id'].head(3).tolist()}"
            )
        flags = table[["customer_id"]].copy()
        for flag in ENGAGEMENT_FLAGS:
            flags[flag] = _as_flag(table[flag], flag, where).to_numpy()
        if REVENUE_METRIC in table.columns:
            flags[REVENUE_METRIC] = pd.to_numeric(table[REVENUE_METRIC]).fillna(0.0).to_numpy()
    elif "event_type" in table.columns:
        flags = _flags_from_events(table, where)
    else:
        raise ValueError(
            f"{where}: expected per-customer flags (customer_id, opened, clicked, converted) or event rows "
            f"(customer_id, event_type); found columns {list(table.columns)}"
        )

    broken = (flags["clicked"] & ~flags["opened"]) | (flags["converted"] & ~flags["clicked"])
    if broken.any():
        if funnel == "error":
            raise ValueError(
                f"{where}: {int(broken.sum())} customer(s) clicked without opening or converted without "
                f"clicking, e.g. {flags.loc[broken, 'customer_id'].head(3).tolist()}; pass funnel='infer' "
                "to count the earlier stages as happened"
            )
        flags["clicked"] = flags["clicked"] | flags["converted"]
        flags["opened"] = flags["opened"] | flags["clicked"]
    return flags.reset_index(drop=True)


# ------------------------------------------------------------------------------------------------------
# The interface
# ------------------------------------------------------------------------------------------------------


class EngagementSource(ABC):
    """Where engagement outcomes come from; the experiment statistics do not care which."""

    @abstractmethod
    def engagement(self, assignments: pd.DataFrame) -> pd.DataFrame:
        """One row per assigned customer: segment, customer_id, arm, variant_id, opened, clicked,
        converted."""


@dataclass(frozen=True)
class SimulatedEngagement(EngagementSource):
    """Seeded simulation; ``assignments`` must carry the historical rates (see simulate_engagement)."""

    uplifts: Mapping[str, float]
    baselines: Baselines = field(default_factory=Baselines)
    noise_sd: float = 0.2
    seed: int = 0
    history_weight: float = 0.5

    def engagement(self, assignments: pd.DataFrame) -> pd.DataFrame:
        return simulate_engagement(
            assignments, self.uplifts, self.baselines, self.noise_sd, self.seed, self.history_weight
        )


@dataclass(frozen=True)
class RecordedEngagement(EngagementSource):
    """Engagement recorded by the email platform (see load_engagement_events for accepted shapes).

    The assignment is authoritative for segment, arm and variant; recorded rows for customers outside it are
    ignored. An assigned customer with no recorded row is an error by default (``missing="error"``); use
    ``"drop"`` to leave them out, or ``"no_engagement"`` when the table lists only customers who engaged.
    """

    source: str | Path | pd.DataFrame
    funnel: Literal["error", "infer"] = "error"
    missing: Literal["error", "drop", "no_engagement"] = "error"

    def engagement(self, assignments: pd.DataFrame) -> pd.DataFrame:
        recorded = load_engagement_events(self.source, funnel=self.funnel)
        keys = assignments[["segment", "customer_id", "arm", "variant_id"]].assign(
            customer_id=assignments["customer_id"].astype(str)
        )
        merged = keys.merge(recorded, on="customer_id", how="left", indicator=True, validate="many_to_one")
        absent = merged["_merge"] == "left_only"
        if absent.any():
            if self.missing == "error":
                raise ValueError(
                    f"recorded engagement has no row for {int(absent.sum())} assigned customer(s), "
                    f"e.g. {merged.loc[absent, 'customer_id'].head(3).tolist()}; set missing='drop' or "
                    "'no_engagement' if that is expected"
                )
            if self.missing == "drop":
                merged = merged[~absent]
        merged = merged.drop(columns="_merge")
        for flag in ENGAGEMENT_FLAGS:
            merged[flag] = merged[flag].astype("boolean").fillna(False).astype(bool)
        if REVENUE_METRIC in merged.columns:
            merged[REVENUE_METRIC] = merged[REVENUE_METRIC].fillna(0.0)
        return merged.reset_index(drop=True)
