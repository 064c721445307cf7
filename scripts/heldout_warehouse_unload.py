"""A second held-out customer file for the speed work, made by another method than `heldout_customers.py`.

`personalize data` (lib/synthetic.py, numpy and pandas) and `heldout_customers.py` (numpy, pandas' CSV writer)
both write what a CRM might export. This one is written by DuckDB's own SQL and random generator, as a data
warehouse unload to Parquet would be (Snowflake or BigQuery `COPY INTO ... FILE_FORMAT = PARQUET`): upper-case
column names, an `AVG_ORDER_VALUE` stored as DECIMAL(12,2) and an `AGE` as SMALLINT, ZSTD compression with small
row groups (many of them), customer ids that are UUID-shaped text, a subscription business's tiers (Free, Plus,
Pro, Enterprise, none of which the shipped segmentation names), 2,000 "City, Country" locations, and two columns
the pipeline does not use (`SIGNUP_DATE`, `EMAIL_OPT_IN`). Its behaviour differs too: most customers are recent
and frequent (a product used daily), a long tail has lapsed for years.

    .venv/bin/python scripts/heldout_warehouse_unload.py --customers 1000000 --out /tmp/warehouse_unload.parquet
    .venv/bin/python scripts/benchmark.py --sizes --files /tmp/warehouse_unload.parquet --repeat 3 --out /tmp/x.md
"""

import argparse
import time
from pathlib import Path

import duckdb

UNLOAD = """
COPY (
    WITH numbered AS (
        SELECT i, random() AS u1, random() AS u2, random() AS u3, random() AS u4, random() AS u5, random() AS u6
        FROM range(?) t(i)
    )
    SELECT
        -- UUID-shaped ids from a hash of the row number and the seed: unique, in no order
        substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' || substr(h, 17, 4) || '-'
            || substr(h, 21, 12) AS CUSTOMER_ID,
        CAST(18 + floor(62 * pow(u1, 1.3)) AS SMALLINT) AS AGE,
        'City ' || CAST(CAST(floor(2000 * pow(u2, 2)) AS INTEGER) AS VARCHAR) || ', '
            || ['Canada', 'Deutschland', 'España', 'France', 'India', 'Brasil', 'Nippon', 'United Kingdom'][
                1 + CAST(floor(8 * u3) AS INTEGER)] AS LOCATION,
        CASE WHEN u4 < 0.55 THEN 'Free' WHEN u4 < 0.85 THEN 'Plus' WHEN u4 < 0.97 THEN 'Pro' ELSE 'Enterprise' END
            AS TIER,
        round(CASE WHEN u5 < 0.8 THEN 5 + 40 * u6 ELSE 40 * u6 * u6 END, 2) AS PURCHASE_FREQUENCY,
        CAST(round(CASE WHEN u4 < 0.55 THEN 0 ELSE 9 + 900 * pow(u6, 3) END, 2) AS DECIMAL(12, 2)) AS AVG_ORDER_VALUE,
        CAST(CASE WHEN u5 < 0.8 THEN floor(10 * u1 * u2) ELSE floor(1500 * u3) END AS INTEGER) AS LAST_ENGAGEMENT_DAYS,
        round(least(1.0, 0.05 + 0.7 * u2 * u5), 4) AS HISTORICAL_OPEN_RATE,
        round(least(1.0, 0.3 * u2 * u5 * u6), 4) AS HISTORICAL_CLICK_RATE,
        DATE '2026-11-30' - CAST(floor(3000 * u3) AS INTEGER) AS SIGNUP_DATE,
        u1 < 0.7 AS EMAIL_OPT_IN
    FROM (SELECT *, md5(CAST(i AS VARCHAR) || '/' || CAST(? AS VARCHAR)) AS h FROM numbered)
) TO '{out}' (FORMAT PARQUET, COMPRESSION ZSTD, ROW_GROUP_SIZE 20000)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=float, default=0.2026, help="DuckDB's setseed, between -1 and 1")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    with duckdb.connect() as connection:
        connection.execute("SET threads = 1")  # one thread: the same rows for the same seed
        connection.execute("SELECT setseed(?)", [args.seed])
        out = str(args.out.resolve()).replace("'", "''")
        connection.execute(UNLOAD.format(out=out), [args.customers, args.seed])
        rows = connection.execute("SELECT count(*) FROM read_parquet(?)", [str(args.out)]).fetchone()
    print(f"wrote {rows[0] if rows else 0:,} customers to {args.out} in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
