"""Customer file reading and validation (pure functions, no Dagster).

Each export variant users actually have is a fixture file under tests/data/exports/; the round-trip tests write
the customers table's input in every supported format and numeric type and compare ids and values exactly.
"""

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from personalization_assets.lib.customers import (
    REQUIRED_COLUMNS,
    display_case,
    exact_float64,
    read_customer_file,
    validate_customers,
)
from personalization_assets.lib.inputs import InputError
from personalization_assets.lib.privacy import hash_customer_id
from personalization_assets.lib.synthetic import generate_customers, write_customers

EXPORTS = Path(__file__).parent / "data" / "exports"
# The four customers every CSV fixture holds, as written.
FIXTURE_IDS = ["000123", "000124", "C-0042", "00000"]
FIXTURE_LOCATIONS = ["São Paulo", "Zürich", "Kraków", "Denver"]
FIXTURE_OPEN_RATES = [0.4, 0.55, 0.2, 0.31]


@pytest.fixture
def good_frame() -> pd.DataFrame:
    return generate_customers(20, seed=1)


def write_csv(tmp_path, frame: pd.DataFrame, name="customers.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def load(path, delimiter=",", **kwargs):
    return validate_customers(read_customer_file(path, delimiter=delimiter), **kwargs)


def test_valid_csv_and_parquet_load_with_types(tmp_path, good_frame):
    for name in ("c.csv", "c.parquet"):
        path = write_customers(good_frame, tmp_path / name)
        result = load(path)
        assert list(result.valid.columns) == list(REQUIRED_COLUMNS)
        assert len(result.valid) == 20
        assert result.rejected.empty
        assert result.valid["age"].dtype == np.int64
        assert result.valid["historical_open_rate"].dtype == np.float64
        pd.testing.assert_series_equal(result.valid["customer_id"].astype(str), good_frame["customer_id"].astype(str))


# --- export variants (fixture files) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "headers_any_case.csv",  # BOM, CRLF, Customer_ID / AGE / Purchase Frequency / avg-order-value
        "header_stray_spaces.csv",  # ' customer_id ': ids still read as text with their leading zeros
        "excel_trailing_rows.csv",  # Excel's ,,,,,,,, rows at the end
        "customers.csv.gz",
        "customers.csv.zst",
        "trailing_delimiter.csv",  # a ',' after the last field of every line, header included
        "pandas_index.parquet",  # a pandas index stored by to_parquet is not a column
        "all_text.parquet",
    ],
)
def test_export_variants_are_read_exactly(name):
    result = load(EXPORTS / name)
    assert list(result.valid["customer_id"]) == FIXTURE_IDS
    assert list(result.valid["location"]) == FIXTURE_LOCATIONS
    assert list(result.valid["historical_open_rate"]) == FIXTURE_OPEN_RATES
    assert list(result.valid["tier"]) == ["Gold", "PLATINUM", "silver", "Bronze"]  # stored as written
    assert result.rejected.empty


def test_excel_unicode_text_utf16_tab_delimited_is_read_with_the_tab_setting():
    result = load(EXPORTS / "excel_unicode_text.txt", delimiter="\t")
    assert list(result.valid["customer_id"]) == FIXTURE_IDS
    assert list(result.valid["location"]) == FIXTURE_LOCATIONS
    with pytest.raises(InputError, match="looks like tab-delimited"):
        read_customer_file(EXPORTS / "excel_unicode_text.txt")


def test_an_unnamed_column_with_values_is_refused_by_position(tmp_path, good_frame):
    path = write_csv(tmp_path, good_frame.assign(**{"": "x"}))
    with pytest.raises(InputError, match=r"unexpected column\(s\): \(unnamed column\)"):
        load(path)


def test_excel_trailing_rows_are_counted_not_rejected():
    assert load(EXPORTS / "excel_trailing_rows.csv").empty_rows == 3


@pytest.mark.parametrize(
    ("name", "label", "setting"),
    [("semicolon.csv", "';'", '";"'), ("tab.tsv", "tab", '"\\t"')],
)
def test_another_delimiter_is_diagnosed_with_the_setting_to_change(name, label, setting):
    with pytest.raises(InputError) as error:
        read_customer_file(EXPORTS / name)
    message = str(error.value)
    assert f"looks like {label}-delimited" in message
    assert f"set `customers.delimiter: {setting}` in config/pipeline.yaml" in message
    assert str(EXPORTS / name) in message


def test_a_delimiter_diagnosis_also_names_decimal_commas_so_both_fixes_are_known_at_once():
    with pytest.raises(InputError) as error:
        read_customer_file(EXPORTS / "semicolon_decimal_comma.csv")
    message = str(error.value)
    assert "looks like ';'-delimited" in message
    assert "decimal comma (line 2, column 'purchase_frequency')" in message
    assert "4,0" not in message
    assert len(message.splitlines()) == 1


def test_the_configured_delimiter_reads_the_file():
    result = load(EXPORTS / "semicolon.csv", delimiter=";")
    assert list(result.valid["customer_id"]) == FIXTURE_IDS
    assert list(load(EXPORTS / "tab.tsv", delimiter="\t").valid["location"]) == FIXTURE_LOCATIONS


def test_decimal_comma_is_named_not_guessed():
    with pytest.raises(InputError) as error:
        load(EXPORTS / "semicolon_decimal_comma.csv", delimiter=";")
    message = str(error.value)
    assert "column 'historical_open_rate': decimal comma or thousands separator" in message
    assert "line 2" in message
    assert "0,4" not in message  # values are not printed


def test_excel_sep_line_declares_the_delimiter_and_lines_count_from_it():
    result = load(EXPORTS / "excel_sep_line.csv", on_invalid_rows="quarantine")
    assert list(result.valid["customer_id"]) == FIXTURE_IDS
    assert list(result.valid["historical_open_rate"]) == FIXTURE_OPEN_RATES


def test_thousands_separators_and_decimal_commas_are_named_with_their_lines():
    with pytest.raises(InputError) as error:
        load(EXPORTS / "thousands_and_decimal_comma.csv")
    message = str(error.value)
    assert "column 'age': decimal comma or thousands separator" in message
    assert f"line 3 ({hash_customer_id('000124')})" in message
    assert "column 'avg_order_value': decimal comma or thousands separator" in message
    assert f"line 4 ({hash_customer_id('C-0042')})" in message


def test_numbers_written_as_text_are_accepted_when_they_parse_exactly():
    result = load(EXPORTS / "numbers_as_text_quoted.csv")
    assert list(result.valid["customer_id"]) == ["000123", "000124"]
    assert list(result.valid["age"]) == [34, 51]
    assert list(result.valid["historical_click_rate"]) == [0.05, 0.12]


def test_parquet_integer_ids_with_a_null_stay_integers_and_float32_is_read_as_written():
    result = load(EXPORTS / "int_ids_nullable_float32.parquet", on_invalid_rows="quarantine")
    assert list(result.valid["customer_id"]) == ["123", "42", "7"]  # never '123.0'
    assert list(result.valid["historical_open_rate"]) == [0.4, 0.2, 0.31]  # not 0.4000000059604645
    assert list(result.valid["avg_order_value"]) == [120.5, 45.25, 88.0]
    assert list(result.rejected["line"]) == [2]  # row 2 of the Parquet file has no id
    assert result.rejected.loc[0, "reasons"] == "customer_id: empty id"


def test_float_ids_are_refused_because_digits_may_be_lost(tmp_path, good_frame):
    frame = good_frame.assign(customer_id=np.arange(len(good_frame), dtype=float))
    frame.to_parquet(tmp_path / "c.parquet", index=False)
    with pytest.raises(InputError, match="column 'customer_id' is stored as floating-point numbers"):
        read_customer_file(tmp_path / "c.parquet")


def test_a_row_with_too_many_fields_gets_its_line_and_no_values():
    with pytest.raises(InputError) as error:
        load(EXPORTS / "too_many_fields.csv")
    message = str(error.value)
    assert "line with 10 field(s) where the header has 9 — 1 row(s), first: line 3" in message
    assert "000999" not in message
    assert "Paris" not in message
    assert len(message.splitlines()) <= 3


def test_quarantine_keeps_the_malformed_line_raw_and_later_lines_keep_their_numbers():
    result = load(EXPORTS / "too_many_fields.csv", on_invalid_rows="quarantine")
    assert list(result.valid["customer_id"]) == FIXTURE_IDS
    row = result.rejected.iloc[0]
    assert row["line"] == 3
    assert row["raw_row"] == "000999,40,Paris, TX,Gold,1,2,3,0.1,0.1"
    assert row["reasons"] == "row: 10 field(s), the header has 9"


def test_duplicate_id_keeps_the_first_and_quarantines_the_second_with_its_values():
    result = load(EXPORTS / "duplicate_ids.csv", on_invalid_rows="quarantine")
    assert list(result.valid["customer_id"]) == FIXTURE_IDS
    assert result.valid.loc[0, "age"] == 34  # the first copy
    rejected = result.rejected.iloc[0]
    assert rejected["line"] == 6
    assert rejected["customer_id"] == "000123"
    assert rejected["age"] == "35"  # the raw value, kept in the warehouse
    assert rejected["reasons"] == "customer_id: duplicate id, first copy (kept) on line 2"


def test_duplicate_ids_can_reject_every_copy():
    result = load(EXPORTS / "duplicate_ids.csv", on_invalid_rows="quarantine", duplicate_ids="reject_all")
    assert list(result.rejected["line"]) == [2, 6]
    assert "000123" not in set(result.valid["customer_id"])


def test_duplicate_id_refusal_names_lines_and_a_pseudonym_not_the_id():
    with pytest.raises(InputError) as error:
        load(EXPORTS / "duplicate_ids.csv")
    message = str(error.value)
    assert f"first: line 6 ({hash_customer_id('000123')}) (first copy on line 2)" in message
    assert "000123" not in message
    assert "validation.on_invalid_rows: quarantine" in message


# --- round trips: the customers table equals the input exactly ----------------------------------------------

NUMERIC_TYPES = ["int8", "int16", "int32", "int64", "Int64", "float32", "float64"]


def typed_input(dtype: str) -> pd.DataFrame:
    """Customers whose values fit every numeric type; ids with leading zeros."""
    frame = generate_customers(200, seed=5)
    frame["customer_id"] = [f"{i:06d}" for i in range(200)]
    for column in ("purchase_frequency", "avg_order_value", "last_engagement_days"):
        frame[column] = frame[column].round(0).clip(0, 120)
    for column in ("historical_open_rate", "historical_click_rate"):
        frame[column] = frame[column].round(2)
    if dtype.lower().startswith("int"):
        for column in ("historical_open_rate", "historical_click_rate"):
            frame[column] = (frame[column] >= 0.3).astype(float)  # 0 or 1: representable as integers
    numeric = ["age", "purchase_frequency", "avg_order_value", "last_engagement_days"]
    numeric += ["historical_open_rate", "historical_click_rate"]
    for column in numeric:
        frame[column] = frame[column].astype(dtype)
    return frame


@pytest.mark.parametrize("dtype", NUMERIC_TYPES)
@pytest.mark.parametrize("kind", ["csv", "csv.gz", "parquet"])
def test_round_trip_ids_and_values_exactly(tmp_path, kind, dtype):
    frame = typed_input(dtype)
    path = tmp_path / f"customers.{kind}"
    if kind == "parquet":
        frame.to_parquet(path, index=False)
    else:
        text = frame.to_csv(index=False).encode()
        path.write_bytes(gzip.compress(text) if kind.endswith("gz") else text)
    valid = load(path).valid
    assert list(valid["customer_id"]) == list(frame["customer_id"])
    for column in REQUIRED_COLUMNS[1:]:
        if column in ("location", "tier"):
            assert list(valid[column]) == list(frame[column]), column
        else:
            # float32 inputs compare with the decimal they were written as (0.37f is 0.37)
            expected = [float(v) for v in frame[column].astype(str)]
            assert list(valid[column]) == expected, column


def test_parquet_integer_ids_of_every_width_read_as_their_digits(tmp_path, good_frame):
    for dtype in ["int8", "int16", "int32", "int64", "Int64", "uint32"]:
        frame = good_frame.assign(customer_id=pd.array(range(len(good_frame)), dtype=dtype))
        frame.to_parquet(tmp_path / "c.parquet", index=False)
        assert list(load(tmp_path / "c.parquet").valid["customer_id"]) == [str(i) for i in range(20)], dtype


def test_parquet_uuid_ids_are_read_as_their_canonical_text_nulls_included(tmp_path, good_frame):
    """Parquet's UUID logical type (16 raw bytes; DuckDB and Spark write it) is read as the text those tools
    show, in every chunk and slice; a missing one stays missing, so the id rule rejects its row."""
    import uuid

    import pyarrow.parquet as pq

    ids = [uuid.UUID(int=(i + 1) * 0x0123456789ABCDEF0123456789ABCDEF % (1 << 128)) for i in range(len(good_frame))]
    values = pa.array([u.bytes for u in ids], type=pa.uuid())
    table = pa.Table.from_pandas(good_frame.drop(columns="customer_id"), preserve_index=False)
    pq.write_table(table.add_column(0, "customer_id", values), tmp_path / "c.parquet", row_group_size=7)

    valid = load(tmp_path / "c.parquet").valid
    assert list(valid["customer_id"]) == [str(u) for u in ids]  # e.g. "01234567-89ab-cdef-0123-456789abcdef"

    with_null = pa.array([u.bytes for u in ids[:3]] + [None], type=pa.uuid())
    pq.write_table(table.slice(0, 4).add_column(0, "customer_id", with_null), tmp_path / "n.parquet")
    result = load(tmp_path / "n.parquet", on_invalid_rows="quarantine")
    assert list(result.valid["customer_id"]) == [str(u) for u in ids[:3]]
    assert len(result.rejected) == 1


def test_parquet_id_of_raw_bytes_is_refused_by_name_not_decoded(tmp_path, good_frame):
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(good_frame.drop(columns="customer_id"), preserve_index=False)
    raw = pa.array([bytes([200, i]) for i in range(len(good_frame))], type=pa.binary())
    pq.write_table(table.add_column(0, "customer_id", raw), tmp_path / "c.parquet")
    with pytest.raises(InputError, match=r"column 'customer_id' is stored as raw bytes \(binary\); write it as text"):
        read_customer_file(tmp_path / "c.parquet")


def test_classic_mac_csv_with_carriage_return_line_ends_is_read_line_by_line(tmp_path, good_frame):
    """Excel's "CSV (Macintosh)" ends lines with a lone CR: the same rows, ids and line numbers as with LF."""
    frame = good_frame.assign(customer_id=[f"{i:05d}" for i in range(len(good_frame))])
    frame.loc[4, "age"] = 7  # a row the rules refuse, to see its line number
    text = frame.to_csv(index=False, lineterminator="\r")
    assert "\n" not in text
    (tmp_path / "mac.csv").write_bytes(text.encode())
    (tmp_path / "unix.csv").write_bytes(text.replace("\r", "\n").encode())

    mac = load(tmp_path / "mac.csv", on_invalid_rows="quarantine")
    unix = load(tmp_path / "unix.csv", on_invalid_rows="quarantine")
    pd.testing.assert_frame_equal(mac.valid, unix.valid)
    assert list(mac.valid["customer_id"]) == [f"{i:05d}" for i in range(len(good_frame)) if i != 4]
    assert list(mac.rejected["line"]) == list(unix.rejected["line"]) == [6]


def test_float32_values_keep_the_precision_they_were_written_at():
    values = pd.Series(np.array([0.4, 0.1, 200.0, 29.99, 1e-7, 123456.7], dtype=np.float32))
    assert list(exact_float64(values)) == [0.4, 0.1, 200.0, 29.99, 1e-7, 123456.7]
    # A customer written at exactly a rule's boundary stays on it (0.4f > 0.4 in float64).
    assert not (exact_float64(pd.Series(np.array([0.4], dtype=np.float32))) > 0.4).any()


def test_tier_display_case_leaves_stored_values_and_mixed_case_alone():
    shown = display_case(pd.Series(["PLATINUM", "gold", "Silver", "McAllen Club", None]))
    assert list(shown[:4]) == ["Platinum", "Gold", "Silver", "McAllen Club"]
    assert pd.isna(shown[4])


# --- value rules --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("historical_open_rate", 1.7, "column 'historical_open_rate': out of range (allowed [0, 1])"),
        ("historical_click_rate", -0.1, "column 'historical_click_rate': out of range"),
        ("avg_order_value", -5, "column 'avg_order_value': out of range (allowed >= 0)"),
        ("age", 7, "column 'age': out of range (allowed [13, 120])"),
        ("age", 30.5, "column 'age': not a whole number"),
        ("purchase_frequency", "often", "column 'purchase_frequency': not a number"),
        ("last_engagement_days", "inf", "column 'last_engagement_days': infinite value"),
        ("avg_order_value", "NaN", "column 'avg_order_value': missing value"),
        ("tier", "", "column 'tier': empty value"),
        ("customer_id", "", "column 'customer_id': empty id"),
    ],
)
def test_bad_value_names_column_problem_and_line(tmp_path, good_frame, column, value, expected):
    frame = good_frame.astype(object)
    frame.loc[3, column] = value  # data row 4 -> file line 5 (line 1 is the header)
    path = write_csv(tmp_path, frame)
    with pytest.raises(InputError) as error:
        load(path)
    message = str(error.value)
    assert str(path) in message
    assert expected in message
    assert "line 5" in message
    assert "quarantine" in message  # the fix


def test_refusals_show_customers_only_as_pseudonyms(tmp_path, good_frame):
    frame = good_frame.astype(object)
    frame.loc[3, "purchase_frequency"] = "often"
    with pytest.raises(InputError) as error:
        load(write_csv(tmp_path, frame))
    message = str(error.value)
    assert hash_customer_id(good_frame.loc[3, "customer_id"]) in message
    assert good_frame.loc[3, "customer_id"] not in message
    assert "often" not in message


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda f: f.drop(columns="tier"), "missing required column(s): tier"),
        (lambda f: f.assign(email="x@example.com"), "unexpected column(s): email"),
        (
            lambda f: f.assign(CUSTOMER_ID=f["customer_id"]),
            "duplicated column(s): customer_id (written as 'customer_id', 'CUSTOMER_ID')",
        ),
    ],
)
def test_column_problems(tmp_path, good_frame, mutate, expected):
    with pytest.raises(InputError) as error:
        load(write_csv(tmp_path, mutate(good_frame)))
    assert expected in str(error.value)


def test_headers_match_in_any_case_and_spacing(tmp_path, good_frame):
    renamed = good_frame.rename(columns={"age": "Age", "customer_id": "Customer ID", "tier": " TIER "})
    assert list(load(write_csv(tmp_path, renamed)).valid.columns) == list(REQUIRED_COLUMNS)


def test_extra_columns_can_be_dropped_by_config(tmp_path, good_frame):
    result = load(write_csv(tmp_path, good_frame.assign(email="x@example.com")), allow_extra_columns=True)
    assert "email" not in result.valid.columns


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty"),
        (",".join(REQUIRED_COLUMNS).encode() + b"\n", "has a header but no customer rows"),
        (
            ",".join(REQUIRED_COLUMNS).encode() + b"\nC1,30,K\xf6ln,Gold,1,2,3,0.1,0.1\n",
            "line 2 is not valid UTF-8",
        ),
    ],
)
def test_unreadable_files(tmp_path, content, expected):
    path = tmp_path / "customers.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=expected):
        load(path)


def test_corrupt_gzip_is_one_clear_error(tmp_path):
    path = tmp_path / "customers.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    with pytest.raises(InputError, match=r"customers\.csv\.gz: not a readable gzip file"):
        load(path)


def test_overlong_line_is_refused_without_reading_it(tmp_path, monkeypatch):
    import personalization_assets.lib.customers as customers

    monkeypatch.setattr(customers, "MAX_CSV_LINE_BYTES", 4096)  # the real limit is 16 MiB; same code path
    header = ",".join(REQUIRED_COLUMNS)
    path = tmp_path / "customers.csv"
    path.write_text(f"{header}\nC1,30,{'x' * 10_000},Gold,1,2,3,0.1,0.1\n")
    with pytest.raises(InputError, match=r"a line is longer than 4,096 bytes \(line 2\)"):
        load(path)


def test_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(InputError, match="customer file not found"):
        load(tmp_path / "nope.csv")
    (tmp_path / "c.xlsx").write_text("x")
    with pytest.raises(InputError, match="unsupported file type '.xlsx'"):
        load(tmp_path / "c.xlsx")


def test_quarantine_keeps_valid_rows_and_explains_rejected(tmp_path, good_frame):
    frame = good_frame.astype(object)
    frame.loc[0, "historical_open_rate"] = 3
    frame.loc[5, "age"] = "old"
    result = load(write_csv(tmp_path, frame), on_invalid_rows="quarantine")
    assert len(result.valid) == 18
    assert list(result.rejected["line"]) == [2, 7]
    assert "historical_open_rate: out of range" in result.rejected.loc[0, "reasons"]
    assert "age: not a number" in result.rejected.loc[1, "reasons"]
    assert result.rejected.loc[1, "age"] == "old"  # the raw value, for the warehouse only
    assert all("old" not in problem for problem in result.problems)  # what is logged


def test_generator_is_seeded_and_correlated():
    first, second = generate_customers(5000, seed=3), generate_customers(5000, seed=3)
    pd.testing.assert_frame_equal(first, second)
    assert not first.equals(generate_customers(5000, seed=4))
    assert first["customer_id"].is_unique
    # Engaged customers buy more often and open more mail; validation accepts the output as is.
    assert first["purchase_frequency"].corr(first["historical_open_rate"]) > 0.2
    assert (first["historical_click_rate"] <= first["historical_open_rate"]).all()
    validate_customers(first, "generated")


def test_arrow_float32_column_is_cast_through_its_shortest_decimal():
    from personalization_assets.lib.customers import exact_float64_arrow

    array = exact_float64_arrow(pa.array([0.4, None], type=pa.float32()))
    assert array.to_pylist() == [0.4, None]


# --- the fast paths give what the general ones give (issue 19) ------------------------------------------------


def test_plain_decimal_columns_read_as_pandas_parses_them(tmp_path, good_frame):
    """Columns of plain decimals are parsed in Arrow; the values are exactly pandas' parse of the same text, and
    a column pandas must classify (an exponent) still loads through the general path with the same values."""
    frame = good_frame.astype(str)
    frame["avg_order_value"] = [" 12.5", "+3", "5.", ".5", "007", "123456789.12345", "0.1", "99.99"] + ["1.0"] * 12
    frame["purchase_frequency"] = ["1e1"] + ["2.25"] * 19  # not a plain decimal: pandas parses this column
    result = validate_customers(frame, source="customers.csv")
    for column in ("avg_order_value", "purchase_frequency"):
        expected = pd.to_numeric(frame[column].str.strip()).to_numpy(dtype=float)
        assert np.array_equal(result.valid[column].to_numpy(), expected)
    assert result.valid["avg_order_value"].dtype == np.float64


def test_text_that_only_looks_numeric_is_still_rejected(good_frame):
    frame = good_frame.astype(str)
    frame.loc[3, "avg_order_value"] = "1-2"  # digits and a sign, not a number
    frame.loc[5, "age"] = "45.5"
    result = validate_customers(frame, source="customers.csv", on_invalid_rows="quarantine")
    reasons = dict(zip(result.rejected["line"], result.rejected["reasons"], strict=True))
    assert reasons[5] == "avg_order_value: not a number"
    assert reasons[7] == "age: not a whole number"
    assert len(result.valid) == 18


def test_valid_frame_is_arrow_backed_and_typed(tmp_path, good_frame):
    path = write_customers(good_frame, tmp_path / "c.csv")
    valid = load(path).valid
    assert [str(valid[c].dtype) for c in ("customer_id", "location", "tier")] == ["string"] * 3
    assert valid["age"].dtype == np.int64
    pd.testing.assert_index_equal(valid.index, pd.RangeIndex(20))
