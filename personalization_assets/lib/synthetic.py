"""Synthetic customers with realistic, correlated features (vectorized; 1,000,000 rows in about a second).

Two latent traits drive the features: *affinity* (how much a customer likes the brand: frequency, recency,
open and click rates) and *spend* (order value, tier). Age nudges spend up and click rates down, as in most
retail panels, and a share of once-loyal customers have gone quiet so the at-risk segment is populated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CITIES = np.array(
    [
        "New York",
        "Los Angeles",
        "Chicago",
        "Houston",
        "Phoenix",
        "Philadelphia",
        "San Antonio",
        "San Diego",
        "Dallas",
        "Austin",
        "Seattle",
        "Denver",
        "Boston",
        "Portland",
        "Atlanta",
        "Miami",
        "Minneapolis",
        "Nashville",
        "Salt Lake City",
        "Raleigh",
    ]
)
# Rough population weights so big cities dominate as they do in real customer files.
CITY_WEIGHTS = np.array([18, 9, 7, 6, 5, 4, 4, 4, 4, 4, 4, 4, 4, 3, 4, 4, 3, 3, 3, 3], dtype=float)
TIERS = np.array(["Bronze", "Silver", "Gold", "Platinum"])


def generate_customers(count: int, seed: int = 42) -> pd.DataFrame:
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    rng = np.random.default_rng(seed)
    affinity = rng.standard_normal(count)
    spend = 0.35 * affinity + np.sqrt(1 - 0.35**2) * rng.standard_normal(count)

    age = np.clip(np.round(rng.normal(41, 13, count) + 2.5 * spend), 18, 85).astype(np.int64)
    purchase_frequency = np.round(np.clip(rng.gamma(2.6, 2.2, count) * np.exp(0.55 * affinity), 0, 60), 1)
    avg_order_value = np.round(np.exp(4.55 + 0.5 * spend + 0.004 * (age - 41) + rng.normal(0, 0.25, count)), 2)

    # Recency: engaged customers come back within days; a lapsed minority (incl. former frequent buyers) has not.
    lapsed = rng.random(count) < 1 / (1 + np.exp(1.2 + 0.9 * affinity))
    last_engagement_days = np.where(
        lapsed,
        rng.integers(31, 365, count),
        np.round(rng.exponential(np.exp(2.6 - 0.6 * affinity))).astype(np.int64),
    ).astype(np.int64)

    def rate(center: np.ndarray, spread: float) -> np.ndarray:
        return np.round(1 / (1 + np.exp(-(center + rng.normal(0, spread, count)))), 3)

    historical_open_rate = rate(-0.9 + 0.8 * affinity - 0.9 * lapsed, 0.45)
    historical_click_rate = np.round(historical_open_rate * rate(-1.6 + 0.5 * affinity - 0.006 * (age - 41), 0.4), 3)

    tier_score = 0.8 * spend + 0.5 * affinity + rng.normal(0, 0.5, count)
    tier = TIERS[np.digitize(tier_score, [-0.3, 0.7, 1.6])]
    location = rng.choice(CITIES, size=count, p=CITY_WEIGHTS / CITY_WEIGHTS.sum())

    width = max(6, len(str(count)))
    customer_id = np.char.add("C", np.char.zfill(np.arange(1, count + 1).astype(str), width))
    return pd.DataFrame(
        {
            "customer_id": customer_id,
            "age": age,
            "location": location,
            "tier": tier,
            "purchase_frequency": purchase_frequency,
            "avg_order_value": avg_order_value,
            "last_engagement_days": last_engagement_days,
            "historical_open_rate": historical_open_rate,
            "historical_click_rate": historical_click_rate,
        }
    )


def write_customers(frame: pd.DataFrame, out: str | Path) -> Path:
    """Write CSV or Parquet, chosen by the file's suffix."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        frame.to_parquet(out, index=False)
    elif suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        raise ValueError(f"{out}: unsupported output type '{suffix}' (use .csv or .parquet)")
    return out
