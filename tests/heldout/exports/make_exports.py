"""Generate the held-out customer export files and manifest.json.

Each file imitates what an ordinary tool writes when a user exports a customer list. Run with the project venv:

    /work/main/.venv/bin/python tests/heldout/exports/make_exports.py

Output is deterministic (fixed seed); the generated files are committed next to this script.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
COLUMNS = [
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
CITIES = [
    "São Paulo",
    "Zürich",
    "Kraków",
    "Malmö",
    "Montréal",
    "Düsseldorf",
    "Reykjavík",
    "Bogotá",
    "Denver",
    "Seattle",
    "Austin",
    "Boston",
    "Chicago",
    "Miami",
    "Portland",
    "Nashville",
]
TIERS = ["Bronze", "Silver", "Gold", "Platinum"]


def make_rows(rng: random.Random, n: int, ids: list[str]) -> list[dict]:
    rows = []
    for cid in ids[:n]:
        # values written with the precision the sample data uses (1, 2, 0, 3, 3 decimals)
        rows.append(
            {
                "customer_id": cid,
                "age": rng.randint(18, 78),
                "location": rng.choice(CITIES),
                "tier": rng.choices(TIERS, weights=[42, 32, 19, 7])[0],
                "purchase_frequency": round(rng.uniform(0.5, 30.0), 1),
                "avg_order_value": round(rng.uniform(12.0, 480.0), 2),
                "last_engagement_days": rng.randint(0, 364),
                "historical_open_rate": round(rng.uniform(0.02, 0.8), 3),
                "historical_click_rate": round(rng.uniform(0.0, 0.3), 3),
            }
        )
    return rows


def fmt(v) -> str:
    if isinstance(v, float):
        return repr(v)  # shortest round-trip text, e.g. 0.4, 112.29
    return str(v)


def write_csv(
    path: Path,
    header: list[str],
    rows: list[dict],
    *,
    delimiter=",",
    newline="\n",
    bom=False,
    decimal=".",
    trailing_empty=0,
    tier_case=None,
) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=newline, quoting=csv.QUOTE_MINIMAL)
    w.writerow(header)
    for r in rows:
        vals = []
        for c in COLUMNS:
            s = fmt(r[c])
            if c == "tier" and tier_case:
                s = tier_case(r)
            if decimal != "." and isinstance(r[c], float):
                s = s.replace(".", decimal)
            vals.append(s)
        w.writerow(vals)
    for _ in range(trailing_empty):
        buf.write(delimiter * (len(COLUMNS) - 1) + newline)
    data = buf.getvalue().encode("utf-8")
    if bom:
        data = b"\xef\xbb\xbf" + data
    path.write_bytes(data)
    return data


def sample(rows: list[dict], k: int = 3) -> list[dict]:
    return [dict(r) for r in rows[:k]]


def main() -> None:
    rng = random.Random(20261203)
    manifest = []

    # 1. Excel for Windows, "CSV UTF-8" save: BOM, CRLF, Title Case headers, trailing empty rows
    ids = [f"C{n:06d}" for n in range(4101, 4101 + 42)]
    rows = make_rows(rng, 42, ids)
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
    write_csv(HERE / "excel_windows_utf8_bom_crlf.csv", header, rows, newline="\r\n", bom=True, trailing_empty=5)
    manifest.append(
        {
            "file": "excel_windows_utf8_bom_crlf.csv",
            "tool": "Excel 365 (Windows), Save As 'CSV UTF-8 (Comma delimited)'",
            "features": [
                "UTF-8 BOM",
                "CRLF line endings",
                "Title Case headers with spaces",
                "5 trailing empty ',,,,,,,,' rows",
                "accented cities",
            ],
            "expected": "accept",
            "expected_customer_ids": ids,
            "expected_row_count": 42,
            "expected_sample": sample(rows),
        }
    )

    # 2. Excel with German locale: semicolon delimiter and decimal commas -> ambiguous, diagnose
    ids = [f"C{n:06d}" for n in range(4201, 4201 + 30)]
    rows = make_rows(rng, 30, ids)
    write_csv(HERE / "excel_german_locale_semicolon.csv", COLUMNS, rows, delimiter=";", newline="\r\n", decimal=",")
    manifest.append(
        {
            "file": "excel_german_locale_semicolon.csv",
            "tool": "Excel (Windows, German locale), Save As 'CSV (Trennzeichen-getrennt)'",
            "features": ["';' delimiter", "decimal commas (6,5 / 0,312)", "CRLF"],
            "expected": "diagnose",
            "expect_message_contains": "delimiter",
            "also_expected_in_message": ["';'", "decimal comma"],
        }
    )

    # 3. Tab-delimited text export -> diagnose
    ids = [f"C{n:06d}" for n in range(4301, 4301 + 25)]
    rows = make_rows(rng, 25, ids)
    write_csv(HERE / "numbers_tab_delimited.csv", COLUMNS, rows, delimiter="\t")
    manifest.append(
        {
            "file": "numbers_tab_delimited.csv",
            "tool": "Apple Numbers / LibreOffice 'Text CSV' with Tab field delimiter, saved as .csv",
            "features": ["tab delimiter in a .csv file"],
            "expected": "diagnose",
            "expect_message_contains": "delimiter",
            "also_expected_in_message": ["tab"],
        }
    )

    # 4. gzip-compressed CSV from pandas, upper-case headers
    ids = [f"C{n:06d}" for n in range(4401, 4401 + 55)]
    rows = make_rows(rng, 55, ids)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.columns = [c.upper() for c in COLUMNS]
    frame.to_csv(HERE / "pandas_gzip.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
    manifest.append(
        {
            "file": "pandas_gzip.csv.gz",
            "tool": "pandas DataFrame.to_csv(compression='gzip')",
            "features": ["gzip-compressed", "UPPER_CASE headers (CUSTOMER_ID)"],
            "expected": "accept",
            "expected_customer_ids": ids,
            "expected_row_count": 55,
            "expected_sample": sample(rows),
        }
    )

    # 5. Parquet with string ids that carry leading zeros
    ids = [f"{n:06d}" for n in [123, 7, 45, 990, 1001, 2, 31415, 88, 600, 4040] + list(range(5000, 5026))]
    rows = make_rows(rng, len(ids), ids)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["customer_id"] = frame["customer_id"].astype("string")
    frame["age"] = frame["age"].astype("Int64")
    frame["last_engagement_days"] = frame["last_engagement_days"].astype("Int64")
    frame.to_parquet(HERE / "pandas_string_ids_leading_zeros.parquet", index=False, engine="pyarrow")
    manifest.append(
        {
            "file": "pandas_string_ids_leading_zeros.parquet",
            "tool": "pandas to_parquet (pyarrow), customer_id as pandas 'string' dtype, Int64 nullable integers",
            "features": ["ids with leading zeros such as '000123' and '000007'", "nullable Int64 columns"],
            "expected": "accept",
            "expected_customer_ids": ids,
            "expected_row_count": len(ids),
            "expected_sample": sample(rows),
        }
    )

    # 6. Parquet with float32 rates and amounts
    ids = [f"C{n:06d}" for n in range(4601, 4601 + 34)]
    rows = make_rows(rng, 34, ids)
    # fix a few values right at segment boundaries, where float32 error would move a customer
    rows[0].update(historical_open_rate=0.4, purchase_frequency=12.1, avg_order_value=200.01, last_engagement_days=29)
    rows[1].update(historical_open_rate=0.401, purchase_frequency=6.1, last_engagement_days=31)
    rows[2].update(purchase_frequency=2.9, avg_order_value=199.99, historical_click_rate=0.1)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for c in ["purchase_frequency", "avg_order_value", "historical_open_rate", "historical_click_rate"]:
        frame[c] = frame[c].astype("float32")
    frame["age"] = frame["age"].astype("int32")
    frame["last_engagement_days"] = frame["last_engagement_days"].astype("int16")
    frame.to_parquet(HERE / "pandas_float32_rates.parquet", index=False, engine="pyarrow")
    manifest.append(
        {
            "file": "pandas_float32_rates.parquet",
            "tool": "pandas to_parquet (pyarrow) after df.astype('float32') to save memory",
            "features": [
                "float32 rates and amounts (0.4 is stored as 0.4000000059604645)",
                "int32/int16 integers",
                "boundary values: open rate 0.4, frequency 12.1/6.1/2.9, order value 200.01/199.99",
            ],
            "expected": "accept",
            "expected_customer_ids": ids,
            "expected_row_count": 34,
            "expected_sample": sample(rows),
        }
    )

    # 7. Google Sheets download: lower-case spaced headers, mixed-case tiers, quoted city with comma
    ids = [f"C{n:06d}" for n in range(4701, 4701 + 38)]
    rows = make_rows(rng, 38, ids)
    rows[4]["location"] = "Portland, OR"
    rows[9]["location"] = "São Paulo"
    header = [c.replace("_", " ") for c in COLUMNS]

    counter = iter(range(10**6))

    def mixed_tier(r):
        i = next(counter)
        return [r["tier"].upper(), r["tier"].lower(), r["tier"]][i % 3]

    write_csv(HERE / "google_sheets_download.csv", header, rows, tier_case=mixed_tier)
    manifest.append(
        {
            "file": "google_sheets_download.csv",
            "tool": "Google Sheets, File > Download > Comma-separated values",
            "features": [
                "lower-case headers with spaces ('customer id')",
                "tier case varies (PLATINUM, gold, Silver)",
                "quoted city containing a comma",
                "no trailing newline issues",
            ],
            "expected": "accept",
            "expected_customer_ids": ids,
            "expected_row_count": 38,
            "expected_sample": sample(rows),
            "note": "tier values in the file are written in upper/lower/title case in rotation; expected_sample "
            "gives the canonical tier.",
        }
    )

    # 8. Salesforce report export: headers with stray spaces, numeric-looking ids with leading zeros
    ids = [f"{n:07d}" for n in range(12, 12 + 27 * 37, 37)]
    rows = make_rows(rng, len(ids), ids)
    header = [
        " Customer ID ",
        "Age ",
        " Location",
        "Tier",
        "Purchase_Frequency",
        "Avg_Order_Value",
        "Last_Engagement_Days",
        "Historical_Open_Rate",
        "Historical_Click_Rate",
    ]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    w.writerow(header)
    for r in rows:
        w.writerow([fmt(r[c]) for c in COLUMNS])
    (HERE / "salesforce_report.csv").write_bytes(buf.getvalue().encode("utf-8"))
    manifest.append(
        {
            "file": "salesforce_report.csv",
            "tool": "Salesforce report, Export > Details only, CSV (all fields quoted)",
            "features": [
                "every field quoted",
                "headers with stray spaces (' Customer ID ')",
                "numeric-looking ids with leading zeros ('0000012')",
                "CRLF",
            ],
            "expected": "accept",
            "expected_customer_ids": ids,
            "expected_row_count": len(ids),
            "expected_sample": sample(rows),
        }
    )

    # 9. Parquet with nullable Int64 ids (no nulls): integers must stay integers, never '1.0'
    int_ids = list(range(1, 1 + 24))
    rows = make_rows(rng, 24, [str(i) for i in int_ids])
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["customer_id"] = pd.array(int_ids, dtype="Int64")
    frame.to_parquet(HERE / "pandas_int64_ids.parquet", index=False, engine="pyarrow")
    manifest.append(
        {
            "file": "pandas_int64_ids.parquet",
            "tool": "pandas to_parquet (pyarrow), customer_id as nullable Int64",
            "features": ["integer ids; read as text they must be '1', '2', ... never '1.0'"],
            "expected": "accept",
            "expected_customer_ids": [str(i) for i in int_ids],
            "expected_row_count": 24,
            "expected_sample": sample(rows),
        }
    )

    # 10. Parquet with nullable Int64 ids where one id is missing -> diagnose (never invent an id)
    int_ids2: list = list(range(101, 101 + 20))
    rows = make_rows(rng, 20, [str(i) for i in int_ids2])
    frame = pd.DataFrame(rows, columns=COLUMNS)
    int_ids2[7] = None
    frame["customer_id"] = pd.array(int_ids2, dtype="Int64")
    frame.to_parquet(HERE / "pandas_int64_ids_one_null.parquet", index=False, engine="pyarrow")
    manifest.append(
        {
            "file": "pandas_int64_ids_one_null.parquet",
            "tool": "pandas to_parquet (pyarrow), customer_id as nullable Int64 with one <NA>",
            "features": ["one missing id (row 8)", "the other ids must stay '101', '102', ... never '101.0'"],
            "expected": "diagnose",
            "expect_message_contains": "customer_id",
            "note": "Either the whole file is refused naming the missing id, or only that row is quarantined and the "
            "other 19 ids are kept exactly as '101'...'120' (without '108'). Both are acceptable; a float "
            "id or a silently dropped row is not.",
            "acceptable_if_quarantined": {
                "expected_customer_ids": [str(i) for i in int_ids2 if i is not None],
                "expected_row_count": 19,
            },
        }
    )

    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(manifest)} files")


if __name__ == "__main__":
    main()
