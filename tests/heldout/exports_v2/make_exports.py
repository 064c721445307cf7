#!/usr/bin/env python3
"""Held-out customer exports, set v2: a deterministic generator.

Writes, next to this file, a dozen customer files that imitate byte for byte
what ordinary tools write when someone exports a customer table, and
``manifest.json`` saying what the input stage must do with each one.

Written by a helper that read only ``data/README.md`` ("What the input stage
accepts") and the first lines of ``data/customers.csv``; no project code.

Run:  /work/main/.venv/bin/python tests/heldout/exports_v2/make_exports.py

Only pandas, numpy, pyarrow and duckdb are used (polars items are skipped
when polars is not importable).  Fixed seed 20261204; re-running rewrites
identical bytes.
"""

from __future__ import annotations

import csv
import gzip
import json
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

try:  # optional; skipped when absent
    import polars as pl  # noqa: F401
except ImportError:  # pragma: no cover - depends on the machine
    pl = None

SEED = 20261204
OUT = Path(__file__).resolve().parent

NINE = [
    "customer_id",
    "age",
    "location",
    "tier",
    "purchase_frequency",
    "avg_order_value",
    "last_engagement_days",
    "historical_open_rate",
    "historical_click_rate",
]

# ---------------------------------------------------------------- README quotes
Q = {
    "formats": "Formats: `.csv` (also `.txt`, `.tsv`), gzip- or zstd-compressed CSV (`.csv.gz`, `.csv.zst`), `.parquet`.",
    "headers": "Headers in any case and spacing: `Customer_ID`, `CUSTOMER_ID`, `customer id`, ` customer-id ` are `customer_id`.",
    "quoted": "A UTF-8 byte-order mark, UTF-16 with its byte-order mark (Excel's \"Unicode text\"), Windows line ends, quoted fields, Excel's empty trailing rows (`,,,,,,,,`) and blank lines (skipped and counted in the `empty_rows_skipped` metadata), a delimiter after the last field of every line (an unnamed column with no values), a pandas index stored in Parquet.",
    "num_text": 'Numbers written as text (`"42"`, ` 0.4 `, `1.2e-1`) when they parse exactly; `age` `42.0` is 42.',
    "ids": "Ids as text exactly as written: `000123` stays `000123`; integer Parquet ids (any width, nullable) become their digits, never `123.0`. Surrounding spaces are trimmed. Floating-point id columns are refused (digits may already be lost).",
    "exact": "float64, integer and decimal columns are exact as stored.",
    "extra": "Columns beyond these nine (an export's `SIGNUP_DATE`, `EMAIL_OPT_IN`, ...) are left out by default: never read into the warehouse, and named in the run's warning (printed by `personalize run`) and in the `customers` metadata.",
    "age": "| `age` | yes | number | whole number, 13-120 |",
    "location": "| `location` | yes | text | not empty; kept as written (accents and case) |",
    "tier": "| `tier` | yes | text | not empty; stored as written, shown in title case when written all upper or all lower (`PLATINUM` → `Platinum`) |",
    "rates": "| `historical_open_rate` | yes | number | 0-1 |",
    "nonneg": "| `purchase_frequency` | yes | number | >= 0 |",
    "one_error": "Both inputs are read exactly as written or refused with one error (`InputError`) naming the file, the line and column (or document and key), the customer as a pseudonym (`cust_…`, never a raw value) and the fix.",
    "decimal_comma": "A decimal comma (`12,5`, `1.234,5`, `1 234,5`) or thousands separator (`1,200`, `1,234.50`): named as such; write a `.` decimal point and no separators.",
    "field_count": "A line with more or fewer fields than the header: its line number and field count, never its values.",
    "invalid_rows": "Invalid rows (`validation.on_invalid_rows`): `fail` (default) refuses the file naming each problem's column, row count and first lines; `quarantine` loads the valid rows and writes one row per bad line to `customers_quarantine` (line, customer_id, reasons, every column's raw value as written, and `raw_row` for a line that could not be split).",
}

# ---------------------------------------------------------------- vocabularies
LOC_INTL = [
    "São Paulo",
    "Zürich",
    "München",
    "Montréal",
    "Kraków",
    "Malmö",
    "Bogotá",
    "Reykjavík",
    "Łódź",
    "Ciudad de México",
    "Düsseldorf",
    "Genève",
    "Québec",
    "Córdoba",
    "Ålesund",
    "Göteborg",
    "Niterói",
    "Wrocław",
    "Tromsø",
    "Plzeň",
    "Sevilla",
    "Lisboa",
    "Toronto",
    "Chicago",
    "Denver",
    "Seattle",
    "Austin",
    "Boston",
    "Vancouver",
    "Dublin",
]
LOC_US = [
    "Denver",
    "Phoenix",
    "Seattle",
    "Los Angeles",
    "Austin",
    "Boston",
    "Chicago",
    "Portland",
    "Miami",
    "Atlanta",
    "Minneapolis",
    "San Diego",
    "Nashville",
    "Salt Lake City",
    "Raleigh",
    "Columbus",
    "Omaha",
    "Tucson",
]
LOC_COMMA = ["Portland, OR", "Washington, D.C.", "Portland, ME", "Kansas City, MO"]
LOC_FR = [
    "Lyon",
    "Montréal",
    "Genève",
    "Bordeaux",
    "Nantes",
    "Québec",
    "Lausanne",
    "Besançon",
    "Orléans",
    "Liège",
    "Nîmes",
    "Saint-Étienne",
    "Paris",
]
FIRST = [
    "ana",
    "joao",
    "lena",
    "marco",
    "sofia",
    "lukas",
    "maria",
    "pedro",
    "emma",
    "noah",
    "zofia",
    "bjorn",
    "ines",
    "tomas",
    "chloe",
    "amelie",
    "kai",
    "nora",
]
LAST = [
    "souza",
    "keller",
    "novak",
    "rossi",
    "silva",
    "meyer",
    "dubois",
    "larsen",
    "kowalski",
    "garcia",
    "fischer",
    "moreau",
    "berg",
    "costa",
    "lindqvist",
]
DOMAINS = ["example.com", "example.com.br", "example.ch", "example.de", "example.org"]


def D(x: float, places: int) -> Decimal:
    """A value as the source system would hold it: fixed decimal places."""
    return Decimal(f"{x:.{places}f}")


@dataclass
class Row:
    customer_id: str
    age: int
    location: str
    tier: str
    purchase_frequency: Decimal  # 1 place
    avg_order_value: Decimal  # 2 places
    last_engagement_days: int
    historical_open_rate: Decimal  # 3 places
    historical_click_rate: Decimal  # 3 places
    email: str | None = None
    signup_date: date | None = None
    marketing_opt_in: bool | None = None
    note: str = ""  # why this row is a spot check ("" = not special)


def make_rows(
    rng: np.random.Generator, ids: list[str], locations: list[str], tiers: list[str], tier_p: list[float] | None = None
) -> list[Row]:
    rows = []
    for cid in ids:
        age = int(np.clip(np.round(rng.normal(41, 13)), 18, 84))
        pf = D(min(float(rng.gamma(2.0, 2.5)), 40.0), 1)
        aov = D(min(float(rng.lognormal(4.4, 0.6)), 949.0) + 0.01, 2)
        led = int(rng.integers(1, 400))
        orate = D(float(rng.beta(2.2, 5.0)), 3)
        crate = D(float(orate) * float(rng.uniform(0.05, 0.45)), 3)
        first, last = FIRST[rng.integers(len(FIRST))], LAST[rng.integers(len(LAST))]
        email = f"{first}.{last}{int(rng.integers(1, 99))}@{DOMAINS[rng.integers(len(DOMAINS))]}"
        signup = date(2019, 1, 1) + timedelta(days=int(rng.integers(0, 2400)))
        rows.append(
            Row(
                cid,
                age,
                str(locations[rng.integers(len(locations))]),
                str(rng.choice(tiers, p=tier_p)),
                pf,
                aov,
                led,
                orate,
                crate,
                email,
                signup,
                bool(rng.random() < 0.62),
            )
        )
    return rows


def set_boundaries(rows: list[Row], at: list[int]) -> None:
    """Put documented edge values (all valid) on a few rows."""
    a, b, c = at
    rows[a].age, rows[a].purchase_frequency, rows[a].avg_order_value = 13, Decimal("0.0"), Decimal("0.00")
    rows[a].note = "boundary: age 13, purchase_frequency 0, avg_order_value 0"
    rows[b].age, rows[b].last_engagement_days = 120, 0
    rows[b].historical_open_rate, rows[b].historical_click_rate = Decimal("1.000"), Decimal("0.000")
    rows[b].note = "boundary: age 120, last_engagement_days 0, open rate 1, click rate 0"
    rows[c].historical_open_rate, rows[c].historical_click_rate = Decimal("0.000"), Decimal("0.000")
    rows[c].note = "boundary: both rates 0"


def uuid4_from(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def unique(gen, n: int) -> list[str]:
    seen, out = set(), []
    while len(out) < n:
        v = gen()
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def sub_rng(k: int) -> np.random.Generator:
    return np.random.default_rng([SEED, k])


def num(d: Decimal | int | float):
    """JSON number for the value that must be stored."""
    if isinstance(d, int):
        return d
    return float(d)


def spot(rows: list[Row], stored_id=lambda r: r.customer_id) -> list[dict]:
    pick = [0, len(rows) - 1] + [i for i, r in enumerate(rows) if r.note]
    out = []
    for i in sorted(set(pick)):
        r = rows[i]
        out.append(
            {
                "data_row": i + 1,
                "why": r.note or ("first row" if i == 0 else "last row"),
                "customer_id": stored_id(r),
                "age": r.age,
                "location": r.location,
                "tier": r.tier,
                "purchase_frequency": num(r.purchase_frequency),
                "avg_order_value": num(r.avg_order_value),
                "last_engagement_days": r.last_engagement_days,
                "historical_open_rate": num(r.historical_open_rate),
                "historical_click_rate": num(r.historical_click_rate),
            }
        )
    return out


MANIFEST: list[dict] = []

# How each file's bytes were checked (by the helper, once, on 2026-12-04; the
# real tools are not needed to re-run this generator).
BYTES_CHECKED = {
    "duckdb_copy_header.csv": "written by the real tool (duckdb Python package)",
    "duckdb_copy_uuid_enum.parquet": "written by the real tool (duckdb Python package)",
    "r_write_csv.csv": "identical bytes: R 4.2.2 read.csv(row.names=1, typed colClasses) then write.csv() reproduced the file exactly",
    "mac_excel_2011_csv_macintosh.csv": "imitated from Excel's documented 'CSV (Macintosh)' behaviour (CR line ends, Mac Roman, General-format numbers); no Excel available to compare",
    "libreoffice_calc_all_text_quoted.csv": "identical bytes: LibreOffice 7.4.7 headless, import with every column as Text, export 'Text CSV' UTF-8 with 'Quote all text cells' reproduced the file exactly",
    "postgres_copy_csv_header.csv": "identical bytes: PostgreSQL 15.18, \\copy FROM into the typed table, then \\copy TO ... (FORMAT csv, HEADER), reproduced the file exactly",
    "snowflake_unload_data_0_0_0.csv.gz": "imitated from Snowflake's documented unload defaults (no enclosure, upper-case identifiers, NUMBER at its scale); no Snowflake account to compare",
    "pyarrow_dictionary_decimal128.parquet": "written by the real tool (pyarrow)",
    "pandas_to_csv_with_index.csv": "written by the real tool (pandas)",
    "libreoffice_calc_fr_decimal_comma.csv": "identical bytes: LibreOffice 7.4.7 headless under LANG=fr_FR.UTF-8, export 'Text CSV' with ',' delimiter and cells as shown reproduced the file exactly",
    "mysql_select_into_outfile.csv": "identical bytes: MariaDB 10.11 LOAD DATA then the same SELECT ... UNION ALL ... INTO OUTFILE FIELDS TERMINATED BY ',' reproduced the file exactly (MySQL 8 has the same escaping rules)",
    "pandas_to_csv_age_7.csv": "written by the real tool (pandas)",
}


def record(**kw) -> None:
    kw["bytes_checked"] = BYTES_CHECKED[kw["file"]]
    MANIFEST.append(kw)


def write_bytes(name: str, data: bytes) -> None:
    (OUT / name).write_bytes(data)


def accept_entry(name, tool, how, rows, rules, extra_cols=(), stored_id=lambda r: r.customer_id, notes=None):
    ids = [stored_id(r) for r in rows]
    assert len(set(ids)) == len(ids)
    exp = {
        "outcome": "accept",
        "customers": len(rows),
        "customer_ids_in_file_order": ids,
        "extra_columns_left_out_and_named_in_warning": list(extra_cols),
        "spot_checks_stored_values": spot(rows, stored_id),
    }
    record(file=name, tool=tool, how_produced=how, expected=exp, rules_exercised=rules, notes=notes or [])


# ============================================================ 1. DuckDB COPY CSV
def duckdb_con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET threads=1")
    con.execute("SET preserve_insertion_order=true")
    return con


def rows_frame_text(rows: list[Row]) -> pd.DataFrame:
    """Every value as text, so SQL casts decide the stored type exactly."""
    return pd.DataFrame(
        {
            "customer_id": [r.customer_id for r in rows],
            "age": [str(r.age) for r in rows],
            "location": [r.location for r in rows],
            "tier": [r.tier for r in rows],
            "purchase_frequency": [str(r.purchase_frequency) for r in rows],
            "avg_order_value": [str(r.avg_order_value) for r in rows],
            "last_engagement_days": [str(r.last_engagement_days) for r in rows],
            "historical_open_rate": [str(r.historical_open_rate) for r in rows],
            "historical_click_rate": [str(r.historical_click_rate) for r in rows],
            "email": [r.email for r in rows],
            "signup_date": [r.signup_date.isoformat() if r.signup_date else None for r in rows],
            "marketing_opt_in": [None if r.marketing_opt_in is None else str(r.marketing_opt_in).lower() for r in rows],
        }
    )


def f01_duckdb_csv():
    rng = sub_rng(1)
    ids = [f"C-{n:06d}" for n in sorted(rng.choice(np.arange(100, 400000), 120, replace=False))]
    rows = make_rows(
        rng, ids, LOC_INTL + LOC_COMMA[:2], ["Gold", "Silver", "Bronze", "Platinum"], [0.25, 0.4, 0.28, 0.07]
    )
    set_boundaries(rows, [17, 63, 101])
    for _i, r in enumerate(rows):
        if "," in r.location and not r.note:
            r.note = "location with a comma (quoted by DuckDB)"
    rows[44].email = None
    rows[44].note = rows[44].note or "NULL email (empty field) in an extra column"
    src = rows_frame_text(rows)
    con = duckdb_con()
    con.register("src", src)
    con.execute("""
        CREATE TABLE customers AS SELECT
            customer_id, CAST(age AS INTEGER) AS age, location, tier,
            CAST(purchase_frequency AS DOUBLE) AS purchase_frequency,
            CAST(avg_order_value AS DECIMAL(10,2)) AS avg_order_value,
            CAST(last_engagement_days AS INTEGER) AS last_engagement_days,
            CAST(historical_open_rate AS DOUBLE) AS historical_open_rate,
            CAST(historical_click_rate AS DOUBLE) AS historical_click_rate,
            email, CAST(signup_date AS DATE) AS signup_date,
            CAST(marketing_opt_in AS BOOLEAN) AS marketing_opt_in
        FROM src""")
    name = "duckdb_copy_header.csv"
    con.execute(f"COPY customers TO '{OUT / name}' (HEADER)")
    con.close()
    accept_entry(
        name,
        f"DuckDB {duckdb.__version__} CLI/Python: COPY table TO csv with HEADER",
        "Real DuckDB: table with INTEGER/DOUBLE/DECIMAL(10,2)/DATE/BOOLEAN columns, then "
        "`COPY customers TO 'duckdb_copy_header.csv' (HEADER)`. LF line ends, no BOM, a field is "
        "quoted only when it holds a comma; DOUBLE 6.0 is written `6.0`, DECIMAL `45.00`, "
        "BOOLEAN `true`/`false`, NULL as an empty field.",
        rows,
        [
            {
                "rule": Q["quoted"],
                "how": "two locations ('Portland, OR', 'Washington, D.C.') are quoted because they hold a comma",
            },
            {"rule": Q["extra"], "how": "extra columns email (one NULL), signup_date, marketing_opt_in"},
            {"rule": Q["age"], "how": "valid edge values 13 and 120"},
            {"rule": Q["rates"], "how": "rates exactly 0 and 1"},
            {"rule": Q["location"], "how": "accents: São Paulo, Zürich, Łódź, Ålesund, ..."},
        ],
        extra_cols=["email", "signup_date", "marketing_opt_in"],
    )


# ============================================================ 2. DuckDB parquet, UUID ids
def f02_duckdb_parquet_uuid():
    rng = sub_rng(2)
    ids = unique(lambda: uuid4_from(rng), 75)
    rows = make_rows(rng, ids, LOC_INTL, ["Bronze", "Silver", "Gold", "Platinum"], [0.3, 0.4, 0.22, 0.08])
    src = rows_frame_text(rows)
    con = duckdb_con()
    con.register("src", src)
    con.execute("CREATE TYPE loyalty_tier AS ENUM ('Bronze', 'Silver', 'Gold', 'Platinum')")
    con.execute("""
        CREATE TABLE customers AS SELECT
            CAST(customer_id AS UUID) AS customer_id, CAST(age AS SMALLINT) AS age, location,
            CAST(tier AS loyalty_tier) AS tier,
            CAST(purchase_frequency AS DECIMAL(5,1)) AS purchase_frequency,
            CAST(avg_order_value AS DECIMAL(10,2)) AS avg_order_value,
            CAST(last_engagement_days AS INTEGER) AS last_engagement_days,
            CAST(historical_open_rate AS DOUBLE) AS historical_open_rate,
            CAST(historical_click_rate AS DOUBLE) AS historical_click_rate
        FROM src""")
    name = "duckdb_copy_uuid_enum.parquet"
    con.execute(f"COPY customers TO '{OUT / name}' (FORMAT parquet)")
    con.close()
    accept_entry(
        name,
        f"DuckDB {duckdb.__version__}: COPY table TO parquet (UUID id column, ENUM tier)",
        "Real DuckDB: customer_id of type UUID, age SMALLINT, tier an ENUM('Bronze','Silver','Gold',"
        "'Platinum'), purchase_frequency DECIMAL(5,1), avg_order_value DECIMAL(10,2), rates DOUBLE; "
        "`COPY customers TO 'duckdb_copy_uuid_enum.parquet' (FORMAT parquet)` (snappy). In the Parquet "
        "schema the id is FIXED_LEN_BYTE_ARRAY(16) with logical type UUID (pyarrow 26 reads it as the "
        "arrow.uuid extension type, older readers as fixed_size_binary[16]); the ENUM is written as a "
        "plain UTF8 string column (dictionary-encoded pages), age as INT(16).",
        rows,
        [
            {
                "rule": Q["ids"],
                "how": "the id column is Parquet's UUID type: its text is the canonical lowercase 8-4-4-4-12 form",
            },
            {"rule": Q["exact"], "how": "DECIMAL(5,1) and DECIMAL(10,2) columns, SMALLINT age"},
            {"rule": Q["tier"], "how": "tier is a DuckDB ENUM (dictionary-encoded string in Parquet)"},
        ],
        notes=[
            "The README has no line for Parquet's UUID type. The only reading that keeps 'ids as text "
            "exactly as written' is the canonical lowercase UUID string listed here; storing bytes, "
            "hex without hyphens or \"b'...'\" is wrong. A clear refusal naming column customer_id and its "
            "type would be the second-best outcome; record it as a deviation."
        ],
    )


# ============================================================ 3. R write.csv
def r_num(x: Decimal) -> str:
    """R's as.character for doubles in write.table: 15 significant digits."""
    f = float(x)
    assert f == 0 or 1e-3 <= abs(f) < 1e5, f  # outside this R would switch to 1e-04 / 1e+05
    return format(f, ".15g")


def r_str(s: str | None) -> str:
    return "NA" if s is None else '"' + s.replace('"', '""') + '"'


def f03_r_write_csv():
    rng = sub_rng(3)
    alphabet = list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    ids = unique(lambda: "cus_" + "".join(rng.choice(alphabet, 14)), 64)
    rows = make_rows(rng, ids, LOC_INTL, ["gold", "silver", "bronze"], [0.25, 0.45, 0.30])
    for i in (5, 38):
        rows[i].email = None
        rows[i].note = "email NA (written NA, unquoted) in an extra column"
    rows[51].marketing_opt_in = None
    rows[51].note = "marketing_opt_in NA"
    rows[22].purchase_frequency = Decimal("12.0")
    rows[22].avg_order_value = Decimal("250.00")
    rows[22].note = "whole doubles written by R without decimals: 12 and 250"
    cols = [
        "customer_id",
        "age",
        "location",
        "tier",
        "purchase_frequency",
        "avg_order_value",
        "last_engagement_days",
        "historical_open_rate",
        "historical_click_rate",
        "email",
        "signup_date",
        "marketing_opt_in",
    ]
    lines = [",".join(['""'] + [f'"{c}"' for c in cols])]
    for i, r in enumerate(rows, start=1):
        lines.append(
            ",".join(
                [
                    f'"{i}"',
                    r_str(r.customer_id),
                    str(r.age),
                    r_str(r.location),
                    r_str(r.tier),
                    r_num(r.purchase_frequency),
                    r_num(r.avg_order_value),
                    str(r.last_engagement_days),
                    r_num(r.historical_open_rate),
                    r_num(r.historical_click_rate),
                    r_str(r.email),
                    r.signup_date.isoformat(),
                    "NA" if r.marketing_opt_in is None else ("TRUE" if r.marketing_opt_in else "FALSE"),
                ]
            )
        )
    name = "r_write_csv.csv"
    write_bytes(name, ("\n".join(lines) + "\n").encode("utf-8"))
    accept_entry(
        name,
        'R 4.x: write.csv(customers, "r_write_csv.csv") with default arguments (row.names = TRUE)',
        "Imitated byte for byte: a data.frame with character/integer/double/Date/logical columns "
        'written by `write.csv(customers, "r_write_csv.csv")` on Linux/macOS (UTF-8, LF). R writes a '
        'first unnamed column (header `""`) of quoted row names "1".."64", quotes every header '
        "and every character value, leaves numbers, Dates and logicals unquoted, writes doubles with "
        "15 significant digits (12.0 -> `12`, 250.00 -> `250`, 0.04 -> `0.04`) and NA unquoted. "
        "Checked against a real R 4.2.2 write.csv of the same data.",
        rows,
        [
            {"rule": Q["quoted"], "how": "every header and text value quoted"},
            {
                "rule": Q["extra"],
                "how": "R's unnamed row-names column plus email (NA), signup_date, marketing_opt_in (NA)",
            },
            {
                "rule": Q["tier"],
                "how": "tiers all lower case: gold/silver/bronze (stored as written, shown Gold/Silver/Bronze)",
            },
            {"rule": Q["ids"], "how": "Stripe-style ids cus_XXXXXXXXXXXXXX (case-sensitive)"},
        ],
        extra_cols=['(unnamed first column: R row names "1".."64")', "email", "signup_date", "marketing_opt_in"],
        notes=[
            "The README lists 'a delimiter after the last field of every line (an unnamed column with "
            "no values)' and 'a pandas index stored in Parquet' but not R's leading row-names column "
            "(an unnamed column WITH values). Read as one of the 'columns beyond these nine', it is "
            "left out and named in the warning; the row names must never become customer ids or shift "
            "the columns."
        ],
    )


# ============================================================ 4. classic Mac Excel, CR only
def excel_general(x: Decimal | int) -> str:
    if isinstance(x, int):
        return str(x)
    return format(x.normalize(), "f")


def csv_min_quote(v: str, delim: str = ",") -> str:
    if any(ch in v for ch in (delim, '"', "\r", "\n")):
        return '"' + v.replace('"', '""') + '"'
    return v


def f04_mac_excel_cr():
    rng = sub_rng(4)
    ids = [str(n) for n in sorted(rng.choice(np.arange(10000, 99999), 41, replace=False))]
    rows = make_rows(rng, ids, LOC_US, ["GOLD", "SILVER", "BRONZE"], [0.3, 0.45, 0.25])
    rows[9].avg_order_value = Decimal("60.00")
    rows[9].note = "60.00 written by Excel's General format as 60"
    header = [
        "Customer ID",
        "Age",
        "Location",
        "Tier",
        "Purchase Frequency",
        "Avg Order Value",
        "Last Engagement Days",
        "Historical Open Rate",
        "Historical Click Rate",
    ]
    out = [",".join(header)]
    for r in rows:
        out.append(
            ",".join(
                [
                    r.customer_id,
                    str(r.age),
                    csv_min_quote(r.location),
                    r.tier,
                    excel_general(r.purchase_frequency),
                    excel_general(r.avg_order_value),
                    str(r.last_engagement_days),
                    excel_general(r.historical_open_rate),
                    excel_general(r.historical_click_rate),
                ]
            )
        )
    name = "mac_excel_2011_csv_macintosh.csv"
    write_bytes(name, ("\r".join(out) + "\r").encode("mac_roman"))
    accept_entry(
        name,
        "Microsoft Excel 2011 for Mac: Save As 'CSV (Macintosh)'",
        "Imitated: a sheet with typed headers ('Customer ID', 'Avg Order Value', ...) and General-format "
        "cells saved as 'CSV (Macintosh)': classic Mac line ends (CR only, 0x0D, also after the last "
        "row), Mac Roman encoding (the content is plain ASCII, so the bytes equal UTF-8), no BOM, "
        "fields quoted only when needed, numbers as General shows them (60.00 -> 60, 0.310 -> 0.31), "
        "ids typed as numbers (no leading zeros).",
        rows,
        [
            {
                "rule": Q["headers"],
                "how": "headers with spaces and title case: 'Customer ID', 'Purchase Frequency', ...",
            },
            {"rule": Q["tier"], "how": "tiers all upper case GOLD/SILVER/BRONZE (stored as written, shown Gold/...)"},
            {"rule": Q["ids"], "how": "digit-only ids from a CSV stay text: '48213', never 48213.0"},
        ],
        notes=[
            "CR-only line ends are not named in the README (it names Windows line ends). A reader that "
            "splits only on LF sees one header line of 42 'columns'; the expected outcome is accept with "
            "41 customers. If refused instead, the error must say the line ends are CR-only (old Mac) "
            "and how to re-save; record it as a deviation."
        ],
    )


# ============================================================ 5. LibreOffice Calc, every field quoted
def f05_libreoffice_quoted():
    rng = sub_rng(5)
    ids = [f"{n:06d}" for n in sorted(rng.choice(np.arange(1, 30000), 88, replace=False))]
    rows = make_rows(rng, ids, LOC_INTL, ["Gold", "GOLD", "silver", "Silver", "Bronze"], [0.2, 0.1, 0.15, 0.3, 0.25])
    for _i, r in enumerate(rows):
        if r.customer_id.startswith("000") and not r.note:
            r.note = "id with leading zeros"
            break
    out = ['"' + '","'.join(NINE) + '"']
    for r in rows:
        vals = [
            r.customer_id,
            str(r.age),
            r.location,
            r.tier,
            str(r.purchase_frequency),
            str(r.avg_order_value),
            str(r.last_engagement_days),
            str(r.historical_open_rate),
            str(r.historical_click_rate),
        ]
        out.append(",".join('"' + v.replace('"', '""') + '"' for v in vals))
    name = "libreoffice_calc_all_text_quoted.csv"
    write_bytes(name, ("\n".join(out) + "\n").encode("utf-8"))
    accept_entry(
        name,
        "LibreOffice Calc 7.x (Linux): Save As 'Text CSV', Unicode (UTF-8), field delimiter ',', "
        "string delimiter '\"', 'Quote all text cells' ticked",
        "Imitated: a customer CSV was opened in Calc with every column set to 'Text' in the import dialog "
        "(the usual way to keep ids such as 000123), then saved with 'Quote all text cells'. Every cell is "
        "text, so every field of every line is quoted, numbers included, exactly as they were typed "
        '(`"6.0"`, `"112.30"`, `"0.040"`); UTF-8 without BOM; LF line ends, also after the last row. '
        "Checked against a real LibreOffice 7.4 headless conversion with the same options.",
        rows,
        [
            {"rule": Q["quoted"], "how": "every field quoted"},
            {"rule": Q["num_text"], "how": "every number is a quoted text cell"},
            {"rule": Q["ids"], "how": "ids with leading zeros, e.g. 000123, must stay 000123"},
            {"rule": Q["tier"], "how": "mixed Gold / GOLD / silver / Silver / Bronze, each stored as written"},
        ],
    )


# ============================================================ 6. PostgreSQL \copy CSV HEADER
def pg_float(x: Decimal) -> str:
    s = repr(float(x))  # PostgreSQL >= 12 prints the shortest round-trip form
    return s[:-2] if s.endswith(".0") else s


def f06_postgres_copy():
    rng = sub_rng(6)
    ids = [f"NW-{n:05d}" for n in sorted(rng.choice(np.arange(10000, 99999), 150, replace=False))]
    rows = make_rows(rng, ids, LOC_INTL + LOC_COMMA, ["gold", "silver", "platinum", "bronze"], [0.25, 0.4, 0.08, 0.27])
    set_boundaries(rows, [3, 88, 140])
    for r in rows:
        if "," in r.location and not r.note:
            r.note = "location with a comma (quoted by PostgreSQL)"
    for i in (12, 77):
        rows[i].email = None
        rows[i].note = rows[i].note or "NULL email (empty field)"
    cols = NINE + ["email", "signup_date", "marketing_opt_in"]
    out = [",".join(cols)]
    for r in rows:
        out.append(
            ",".join(
                [
                    r.customer_id.ljust(10),
                    str(r.age),
                    csv_min_quote(r.location),
                    csv_min_quote(r.tier),
                    str(r.purchase_frequency),
                    str(r.avg_order_value),
                    str(r.last_engagement_days),
                    pg_float(r.historical_open_rate),
                    pg_float(r.historical_click_rate),
                    "" if r.email is None else csv_min_quote(r.email),
                    r.signup_date.isoformat(),
                    "t" if r.marketing_opt_in else "f",
                ]
            )
        )
    name = "postgres_copy_csv_header.csv"
    write_bytes(name, ("\n".join(out) + "\n").encode("utf-8"))
    accept_entry(
        name,
        "PostgreSQL 15 psql: \\copy customers TO 'postgres_copy_csv_header.csv' WITH (FORMAT csv, HEADER)",
        "Imitated and checked byte for byte against a real PostgreSQL 15 server + psql \\copy of the same "
        "rows. Table: customer_id character(10) (so 'NW-10042' comes out blank-padded to 'NW-10042  '), "
        "age smallint, location/tier/email text, purchase_frequency numeric(5,1), avg_order_value "
        "numeric(10,2), last_engagement_days integer, rates double precision (shortest form: 1 and 0, "
        "not 1.000), signup_date date, marketing_opt_in boolean (t/f). UTF-8, LF, quotes only around "
        "values holding a comma, NULL as an empty field.",
        rows,
        [
            {"rule": Q["ids"], "how": "char(10) ids carry trailing blanks in the file; stored trimmed ('NW-10042')"},
            {"rule": Q["quoted"], "how": "locations 'Portland, OR', 'Kansas City, MO', ... quoted"},
            {"rule": Q["extra"], "how": "email (2 NULLs), signup_date, marketing_opt_in (t/f)"},
            {"rule": Q["age"], "how": "valid edge ages 13 and 120"},
            {"rule": Q["rates"], "how": "rates written as bare 1 and 0"},
        ],
        extra_cols=["email", "signup_date", "marketing_opt_in"],
    )
    return rows  # for the verification script


# ============================================================ 7. Snowflake unload csv.gz
def snow_number(x: Decimal | int, scale: int) -> str:
    return str(Decimal(x).quantize(Decimal(1).scaleb(-scale)))


def f07_snowflake_unload():
    rng = sub_rng(7)
    ids = [f"{n:07d}" for n in sorted(rng.choice(np.arange(1, 2_000_000), 200, replace=False))]
    rows = make_rows(rng, ids, LOC_INTL, ["GOLD", "SILVER", "PLATINUM", "BRONZE"], [0.22, 0.43, 0.07, 0.28])
    set_boundaries(rows, [31, 150, 199])
    for r in rows:
        if r.customer_id.startswith("00") and not r.note:
            r.note = "unquoted id with leading zeros"
            break
    cols = [c.upper() for c in NINE + ["email", "signup_date", "marketing_opt_in"]]
    out = [",".join(cols)]
    for r in rows:
        out.append(
            ",".join(
                [
                    r.customer_id,
                    snow_number(r.age, 0),
                    r.location,
                    r.tier,
                    snow_number(r.purchase_frequency, 1),
                    snow_number(r.avg_order_value, 2),
                    snow_number(r.last_engagement_days, 0),
                    snow_number(r.historical_open_rate, 3),
                    snow_number(r.historical_click_rate, 3),
                    r.email,
                    r.signup_date.isoformat(),
                    "true" if r.marketing_opt_in else "false",
                ]
            )
        )
    text = ("\n".join(out) + "\n").encode("utf-8")
    assert b'"' not in text and all(line.count(b",") == 11 for line in text.splitlines())
    name = "snowflake_unload_data_0_0_0.csv.gz"
    write_bytes(name, gzip.compress(text, compresslevel=6, mtime=0))
    accept_entry(
        name,
        "Snowflake: COPY INTO @stage/customers/ FROM customers FILE_FORMAT=(TYPE=CSV COMPRESSION=GZIP) "
        "HEADER=TRUE SINGLE=FALSE, then GET (file data_0_0_0.csv.gz)",
        "Imitated: Snowflake unload with default CSV options (FIELD_OPTIONALLY_ENCLOSED_BY=NONE, so no "
        "quotes at all; no value holds a comma), HEADER=TRUE gives the unquoted upper-case identifiers "
        "CUSTOMER_ID, AGE, ...; NUMBER(p,s) columns printed at their scale (6.0, 112.30, 0.040, 1.000), "
        "ids VARCHAR with leading zeros, DATE as YYYY-MM-DD, BOOLEAN true/false, LF line ends, gzip.",
        rows,
        [
            {"rule": Q["formats"], "how": "gzip-compressed CSV, .csv.gz"},
            {"rule": Q["headers"], "how": "upper-case headers CUSTOMER_ID, HISTORICAL_OPEN_RATE, ..."},
            {"rule": Q["ids"], "how": "unquoted ids with leading zeros (0004217): stay text with the zeros"},
            {"rule": Q["extra"], "how": "EMAIL, SIGNUP_DATE, MARKETING_OPT_IN"},
            {"rule": Q["tier"], "how": "upper-case tiers GOLD/SILVER/PLATINUM/BRONZE"},
        ],
        extra_cols=["EMAIL", "SIGNUP_DATE", "MARKETING_OPT_IN"],
    )


# ============================================================ 8. pyarrow dictionary + decimal128
def f08_pyarrow_dict_decimal():
    rng = sub_rng(8)

    def email_id():
        first = FIRST[rng.integers(len(FIRST))].capitalize()
        last = LAST[rng.integers(len(LAST))].capitalize()
        return f"{first}.{last}{int(rng.integers(1, 999))}@{DOMAINS[rng.integers(len(DOMAINS))]}"

    ids = unique(email_id, 57)
    rows = make_rows(rng, ids, LOC_INTL, ["Gold", "Silver", "Platinum"], [0.35, 0.5, 0.15])
    set_boundaries(rows, [0, 29, 56])
    table = pa.table(
        {
            "customer_id": pa.array([r.customer_id for r in rows], pa.string()),
            "age": pa.array([r.age for r in rows], pa.int8()),
            "location": pa.array([r.location for r in rows], pa.string()).dictionary_encode(),
            "tier": pa.array([r.tier for r in rows], pa.string()).dictionary_encode(),
            "purchase_frequency": pa.array([r.purchase_frequency for r in rows], pa.decimal128(6, 1)),
            "avg_order_value": pa.array([r.avg_order_value for r in rows], pa.decimal128(10, 2)),
            "last_engagement_days": pa.array([r.last_engagement_days for r in rows], pa.uint16()),
            "historical_open_rate": pa.array([r.historical_open_rate for r in rows], pa.decimal128(4, 3)),
            "historical_click_rate": pa.array([float(r.historical_click_rate) for r in rows], pa.float64()),
            "signup_date": pa.array([r.signup_date for r in rows], pa.date32()),
            "marketing_opt_in": pa.array([r.marketing_opt_in for r in rows], pa.bool_()),
        }
    )
    name = "pyarrow_dictionary_decimal128.parquet"
    pq.write_table(table, OUT / name)  # defaults: snappy, dictionary pages, format 2.6
    accept_entry(
        name,
        f"pyarrow {pa.__version__}: pyarrow.parquet.write_table with dictionary-encoded string columns and decimal128",
        "Real pyarrow: location and tier as dictionary<values=string, indices=int32> arrays, "
        "purchase_frequency decimal128(6,1), avg_order_value decimal128(10,2), historical_open_rate "
        "decimal128(4,3), historical_click_rate float64, age int8, last_engagement_days uint16, plus "
        "signup_date date32 and marketing_opt_in bool; `pq.write_table(table, path)` with defaults. "
        "Ids are e-mail addresses with capitals (Anna.Keller12@example.ch).",
        rows,
        [
            {"rule": Q["exact"], "how": "decimal128 money and rate columns; int8 / uint16 integers"},
            {"rule": Q["ids"], "how": "e-mail-like ids kept exactly, capitals included"},
            {"rule": Q["location"], "how": "dictionary-encoded location with accents"},
            {"rule": Q["extra"], "how": "signup_date, marketing_opt_in"},
            {"rule": Q["age"], "how": "edge ages 13 and 120 in an int8 column"},
        ],
        extra_cols=["signup_date", "marketing_opt_in"],
    )


# ============================================================ 9. pandas to_csv with its index
def f09_pandas_index_csv():
    rng = sub_rng(9)
    ids = unique(lambda: uuid4_from(rng), 96)
    rows = make_rows(rng, ids, LOC_INTL, ["Gold", "Silver", "Bronze"], [0.3, 0.4, 0.3])
    rows[40].purchase_frequency, rows[40].avg_order_value = Decimal("3.0"), Decimal("75.00")
    rows[40].note = "whole floats written by pandas as 3.0 and 75.0"
    df = pd.DataFrame(
        {
            "customer_id": [r.customer_id for r in rows],
            "age": np.array([r.age for r in rows], dtype="int64"),
            "location": [r.location for r in rows],
            "tier": [r.tier for r in rows],
            "purchase_frequency": [float(r.purchase_frequency) for r in rows],
            "avg_order_value": [float(r.avg_order_value) for r in rows],
            "last_engagement_days": np.array([r.last_engagement_days for r in rows], dtype="int64"),
            "historical_open_rate": [float(r.historical_open_rate) for r in rows],
            "historical_click_rate": [float(r.historical_click_rate) for r in rows],
        }
    )
    name = "pandas_to_csv_with_index.csv"
    df.to_csv(OUT / name)  # the forgotten index=False: a leading unnamed 0..n-1 column
    accept_entry(
        name,
        f"pandas {pd.__version__}: DataFrame.to_csv(path) with default index=True",
        "Real pandas: `df.to_csv('pandas_to_csv_with_index.csv')` without index=False, so the header "
        "starts with an empty name (`,customer_id,age,...`) and every line with the RangeIndex 0..95; "
        "floats via repr (3.0, 75.0, 0.311); LF; UTF-8 without BOM. Ids are lowercase UUID text.",
        rows,
        [
            {"rule": Q["extra"], "how": "the unnamed index column 0..95"},
            {"rule": Q["ids"], "how": "UUID text ids"},
            {"rule": Q["quoted"], "how": "(contrast) the pandas index is accepted in Parquet; here it is in CSV"},
        ],
        extra_cols=["(unnamed first column: pandas index 0..95)"],
        notes=[
            "The README names 'a pandas index stored in Parquet' but not a pandas index written to CSV "
            "(an unnamed first column with values). As one of the 'columns beyond these nine' it is "
            "left out and named in the warning; it must never become the id or shift the columns."
        ],
    )


# ============================================================ 10. REFUSE: LibreOffice French locale
def f10_libreoffice_fr_decimal_comma():
    rng = sub_rng(10)
    ids = [f"FR-{n:05d}" for n in sorted(rng.choice(np.arange(100, 60000), 35, replace=False))]
    rows = make_rows(rng, ids, LOC_FR, ["Gold", "Silver", "Bronze"], [0.3, 0.4, 0.3])
    rows[0].purchase_frequency = Decimal("6.2")  # first decimal comma on line 2, purchase_frequency

    def fr(x: Decimal) -> str:
        return excel_general(x).replace(".", ",")

    out = [",".join(NINE)]
    for r in rows:
        out.append(
            ",".join(
                [
                    r.customer_id,
                    str(r.age),
                    csv_min_quote(r.location),
                    r.tier,
                    csv_min_quote(fr(r.purchase_frequency)),
                    csv_min_quote(fr(r.avg_order_value)),
                    str(r.last_engagement_days),
                    csv_min_quote(fr(r.historical_open_rate)),
                    csv_min_quote(fr(r.historical_click_rate)),
                ]
            )
        )
    name = "libreoffice_calc_fr_decimal_comma.csv"
    write_bytes(name, ("\n".join(out) + "\n").encode("utf-8"))
    record(
        file=name,
        tool="LibreOffice Calc 7.x, French (France) locale: Save As 'Text CSV' with field delimiter ',' "
        "and 'Save cell contents as shown' (the default)",
        how_produced="Imitated: numbers are shown with the French decimal comma, so Calc writes them as "
        "shown (6,2  112,29  0,31) and, because they contain the field delimiter, quotes "
        'them: `FR-00123,34,Lyon,Gold,"6,2","112,29",28,"0,31","0,042"`. Whole '
        "numbers stay bare (45). UTF-8, LF, no BOM.",
        expected={
            "outcome": "refuse",
            "error_must_mention": {
                "file": name,
                "problem": "a decimal comma (named as such, not a generic parse or type error)",
                "first_line": 2,
                "first_column": "purchase_frequency",
                "also_affected_columns": ["avg_order_value", "historical_open_rate", "historical_click_rate"],
                "fix": "write a '.' decimal point and no separators (e.g. re-save with an English "
                "locale / decimal separator '.')",
            },
            "must_not": [
                "load any row",
                'read "6,2" as 62 or as 6',
                "name a customer other than as a cust_… pseudonym",
            ],
        },
        rules_exercised=[
            {"rule": Q["decimal_comma"], "how": "every fractional number has a decimal comma, quoted"},
            {"rule": Q["one_error"], "how": "one InputError with file, line 2, column, fix"},
        ],
        notes=[],
    )


# ============================================================ 11. REFUSE: MySQL INTO OUTFILE, unquoted comma
def f11_mysql_outfile_unquoted_comma():
    rng = sub_rng(11)
    ids = [str(n) for n in range(1001, 1111)]
    rows = make_rows(
        rng, ids, LOC_US + ["São Paulo", "Montréal", "Zürich"], ["Gold", "Silver", "Bronze"], [0.3, 0.4, 0.3]
    )
    bad = 46  # data row 47 -> file line 48
    rows[bad].location = "Washington, D.C."

    def my(v: str) -> str:  # MySQL ESCAPED BY '\\' with no ENCLOSED BY: escape \ , and newline
        return v.replace("\\", "\\\\").replace(",", "\\,").replace("\n", "\\\n")

    out = [",".join(NINE)]
    for r in rows:
        out.append(
            ",".join(
                [
                    r.customer_id,
                    str(r.age),
                    my(r.location),
                    my(r.tier),
                    str(r.purchase_frequency),
                    str(r.avg_order_value),
                    str(r.last_engagement_days),
                    str(r.historical_open_rate),
                    str(r.historical_click_rate),
                ]
            )
        )
    data = ("\n".join(out) + "\n").encode("utf-8")
    counts = [len(next(csv.reader([line]))) for line in data.decode().splitlines()]
    bad_lines = [i + 1 for i, c in enumerate(counts) if c != 9]
    assert bad_lines == [bad + 2], bad_lines
    name = "mysql_select_into_outfile.csv"
    write_bytes(name, data)
    record(
        file=name,
        tool="MySQL 8 / MariaDB: SELECT ... INTO OUTFILE with FIELDS TERMINATED BY ',' (no ENCLOSED BY)",
        how_produced="Imitated and checked byte for byte against a real MariaDB 10.11 INTO OUTFILE: "
        "`SELECT 'customer_id','age',... UNION ALL SELECT customer_id, age, ... FROM customers "
        "INTO OUTFILE '/var/lib/mysql-files/customers.csv' FIELDS TERMINATED BY ',' LINES "
        "TERMINATED BY '\\n'` (the usual header trick). Without ENCLOSED BY, MySQL escapes a "
        "comma inside a value with a backslash, so 'Washington, D.C.' is written "
        "`Washington\\, D.C.` and a CSV reader splits that line into 10 fields.",
        expected={
            "outcome": "refuse",
            "error_must_mention": {
                "file": name,
                "problem": "line has 10 fields, the header has 9 (field count)",
                "line": bad + 2,
                "field_count": 10,
                "header_field_count": 9,
                "fix": "quote the fields (export with FIELDS ... OPTIONALLY ENCLOSED BY '\"') or "
                "remove the delimiter from the value",
            },
            "must_not": [
                f"print the line's values (no 'Washington', no 'D.C.', no id {rows[bad].customer_id})",
                "load any row",
                "silently drop or merge the line",
            ],
        },
        rules_exercised=[
            {"rule": Q["field_count"], "how": f"line {bad + 2} has 10 fields"},
            {"rule": Q["one_error"], "how": "one InputError naming file and line"},
        ],
        notes=[],
    )
    return rows


# ============================================================ 12. REFUSE: pandas, a child's age
def f12_pandas_age_seven():
    rng = sub_rng(12)
    ids = [f"CUST-{n:04d}" for n in range(1, 74)]
    rows = make_rows(rng, ids, LOC_INTL, ["Gold", "Silver", "Bronze"], [0.3, 0.4, 0.3])
    bad = 56  # data row 57 -> file line 58
    rows[bad].age = 7
    df = pd.DataFrame(
        {
            "customer_id": [r.customer_id for r in rows],
            "age": np.array([r.age for r in rows], dtype="int64"),
            "location": [r.location for r in rows],
            "tier": [r.tier for r in rows],
            "purchase_frequency": [float(r.purchase_frequency) for r in rows],
            "avg_order_value": [float(r.avg_order_value) for r in rows],
            "last_engagement_days": np.array([r.last_engagement_days for r in rows], dtype="int64"),
            "historical_open_rate": [float(r.historical_open_rate) for r in rows],
            "historical_click_rate": [float(r.historical_click_rate) for r in rows],
        }
    )
    name = "pandas_to_csv_age_7.csv"
    df.to_csv(OUT / name, index=False)
    record(
        file=name,
        tool=f"pandas {pd.__version__}: DataFrame.to_csv(path, index=False)",
        how_produced="Real pandas, an ordinary notebook export; every row valid except data row 57 "
        f"(file line {bad + 2}, customer {rows[bad].customer_id}) whose age is 7.",
        expected={
            "outcome": "refuse",
            "error_must_mention": {
                "file": name,
                "column": "age",
                "line": bad + 2,
                "rows_with_problem": 1,
                "customer": "as a cust_… pseudonym, never the raw id",
                "problem": "age 7 is outside 13-120",
                "fix": "correct or remove the row (or set validation.on_invalid_rows: quarantine)",
            },
            "must_not": [
                f"print the raw id {rows[bad].customer_id}",
                "load the other 72 rows under the default on_invalid_rows: fail",
            ],
            "with_on_invalid_rows_quarantine": {
                "customers": 72,
                "quarantined_lines": [bad + 2],
            },
        },
        rules_exercised=[
            {"rule": Q["age"], "how": "one age of 7"},
            {"rule": Q["invalid_rows"], "how": "default fail refuses the file"},
            {"rule": Q["one_error"], "how": "file, line, column, pseudonym, fix"},
        ],
        notes=[],
    )


def main() -> None:
    for p in OUT.iterdir():
        if p.suffix in {".csv", ".gz", ".parquet"}:
            p.unlink()
    f01_duckdb_csv()
    f02_duckdb_parquet_uuid()
    f03_r_write_csv()
    f04_mac_excel_cr()
    f05_libreoffice_quoted()
    f06_postgres_copy()
    f07_snowflake_unload()
    f08_pyarrow_dict_decimal()
    f09_pandas_index_csv()
    f10_libreoffice_fr_decimal_comma()
    f11_mysql_outfile_unquoted_comma()
    f12_pandas_age_seven()
    skipped = (
        []
        if pl is not None
        else ["polars write_csv / write_parquet (large_string, Enum tier): polars is not importable here"]
    )
    manifest = {
        "set": "exports_v2",
        "seed": SEED,
        "generator": "make_exports.py (run with /work/main/.venv/bin/python)",
        "written_by": "a helper session that read only data/README.md and the first 5 lines of "
        "data/customers.csv; no project code, no earlier held-out set",
        "rule": "measured once, never tuned on",
        "line_numbers": "1-based file lines; line 1 is the header",
        "library_versions": {
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
            "duckdb": duckdb.__version__,
            "polars": None if pl is None else pl.__version__,
        },
        "skipped": skipped,
        "files": MANIFEST,
    }
    (OUT / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for m in MANIFEST:
        e = m["expected"]
        print(f"{m['file']:45s} {e['outcome']:7s} {e.get('customers', '')}")


if __name__ == "__main__":
    main()
