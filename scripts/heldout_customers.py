"""A customer file unlike the one the pipeline's speed work was measured on: a held-out check of that work.

`personalize data` (lib/synthetic.py) writes sequential ids (`C0000001`), US cities and Title-case tiers, as
Parquet. This writes what a CRM export might hold instead, by its own method: random 16-character ids in random
order, 400 cities worldwide (accents, spaces, apostrophes), tiers in mixed case and spacing, heavier tails,
columns in another order, CSV with a byte-order mark and CRLF line ends.

    .venv/bin/python scripts/heldout_customers.py --customers 1000000 --out /tmp/crm_export.csv
    .venv/bin/python scripts/benchmark.py --sizes --files /tmp/crm_export.csv --repeat 3 --out /tmp/heldout.md
"""

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

CITY_STEMS = [
    "São Paulo", "Zürich", "Kraków", "Montréal", "Köln", "Málaga", "Tromsø", "Łódź", "Île-de-France", "Dún Laoghaire",
    "Reykjavík", "Göteborg", "Besançon", "Ciudad de México", "Bogotá", "Brașov", "Plzeň", "Ankara", "Kyoto", "Osaka",
    "St. John's", "Hoi An", "Cape Town", "Lagos", "Nairobi", "Perth", "Christchurch", "Halifax", "Québec", "Porto",
]  # fmt: skip
TIERS = ["gold", "GOLD", "Gold ", "platinum", "Platinum", "silver", "SILVER", "bronze", "Bronze", " basic", "Basic"]


def crm_export(customers: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    alphabet = np.array(list("0123456789abcdef"))
    ids = ["".join(chars) for chars in alphabet[rng.integers(0, 16, size=(customers, 16))]]
    cities = [f"{stem} {n}" if n else stem for stem in CITY_STEMS for n in range(14)][:400]
    frame = pd.DataFrame(
        {
            "historical_click_rate": np.round(rng.beta(0.6, 25, customers), 4),
            "customer_id": ids,
            "tier": rng.choice(TIERS, customers, p=np.linspace(3, 1, len(TIERS)) / np.linspace(3, 1, len(TIERS)).sum()),
            "last_engagement_days": rng.geometric(1 / 60, customers) - 1,
            "avg_order_value": np.round(rng.lognormal(4.2, 1.1, customers), 2),
            "age": rng.integers(16, 95, customers),
            "historical_open_rate": np.round(rng.beta(1.5, 4, customers), 4),
            "location": rng.choice(cities, customers),
            "purchase_frequency": np.round(rng.gamma(0.8, 6, customers), 1),
        }
    )
    return frame.drop_duplicates("customer_id")  # 16 random hex characters: a repeat is unlikely, never kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    frame = crm_export(args.customers, args.seed)
    frame.to_csv(args.out, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    print(f"wrote {len(frame):,} customers to {args.out} in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
