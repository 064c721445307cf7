"""Customer file reading and validation (pure functions, no Dagster)."""

import numpy as np
import pandas as pd
import pytest

from personalization_assets.lib.customers import (
    REQUIRED_COLUMNS,
    CustomerDataError,
    read_customer_file,
    validate_customers,
)
from personalization_assets.lib.synthetic import generate_customers, write_customers


@pytest.fixture
def good_frame() -> pd.DataFrame:
    return generate_customers(20, seed=1)


def write_csv(tmp_path, frame: pd.DataFrame, name="customers.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def load(path, **kwargs):
    return validate_customers(read_customer_file(path), str(path), **kwargs)


def test_valid_csv_and_parquet_load_with_types(tmp_path, good_frame):
    for name in ("c.csv", "c.parquet"):
        path = write_customers(good_frame, tmp_path / name)
        result = load(path)
        assert list(result.valid.columns) == list(REQUIRED_COLUMNS)
        assert len(result.valid) == 20 and result.rejected.empty
        assert result.valid["age"].dtype == np.int64
        assert result.valid["historical_open_rate"].dtype == np.float64
        pd.testing.assert_series_equal(
            result.valid["customer_id"].astype(str), good_frame["customer_id"].astype(str)
        )


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
    with pytest.raises(CustomerDataError) as error:
        load(path)
    message = str(error.value)
    assert str(path) in message
    assert expected in message
    assert "line 5" in message


def test_duplicate_ids_name_every_line(tmp_path, good_frame):
    frame = good_frame.copy()
    frame.loc[7, "customer_id"] = frame.loc[2, "customer_id"]
    with pytest.raises(CustomerDataError, match=r"duplicate id — 2 row\(s\), first: line 4 .*line 9"):
        load(write_csv(tmp_path, frame))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda f: f.drop(columns="tier"), "missing required column(s): tier"),
        (lambda f: f.rename(columns={"age": "Age"}), "missing required column(s): age"),
        (lambda f: f.assign(email="x@example.com"), "unexpected column(s): email"),
    ],
)
def test_column_problems(tmp_path, good_frame, mutate, expected):
    with pytest.raises(CustomerDataError) as error:
        load(write_csv(tmp_path, mutate(good_frame)))
    assert expected in str(error.value)


def test_extra_columns_can_be_dropped_by_config(tmp_path, good_frame):
    result = load(write_csv(tmp_path, good_frame.assign(email="x@example.com")), allow_extra_columns=True)
    assert "email" not in result.valid.columns


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty"),
        (
            b"customer_id,age,location,tier,purchase_frequency,avg_order_value,last_engagement_days,"
            b"historical_open_rate,historical_click_rate\n",
            "has a header but no customer rows",
        ),
        (
            b"customer_id,age,location,tier,purchase_frequency,avg_order_value,last_engagement_days,"
            b"historical_open_rate,historical_click_rate\nC1,30,K\xf6ln,Gold,1,2,3,0.1,0.1\n",
            "line 2 is not valid UTF-8",
        ),
    ],
)
def test_unreadable_files(tmp_path, content, expected):
    path = tmp_path / "customers.csv"
    path.write_bytes(content)
    with pytest.raises(CustomerDataError, match=expected):
        load(path)


def test_overlong_line_is_refused_without_reading_it(tmp_path, monkeypatch):
    import personalization_assets.lib.customers as customers

    monkeypatch.setattr(customers, "MAX_CSV_LINE_BYTES", 4096)  # the real limit is 16 MiB; same code path
    header = ",".join(REQUIRED_COLUMNS)
    path = tmp_path / "customers.csv"
    path.write_text(f"{header}\nC1,30,{'x' * 10_000},Gold,1,2,3,0.1,0.1\n")
    with pytest.raises(CustomerDataError, match="a line is longer than"):
        load(path)


def test_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(CustomerDataError, match="customer file not found"):
        load(tmp_path / "nope.csv")
    (tmp_path / "c.xlsx").write_text("x")
    with pytest.raises(CustomerDataError, match="unsupported file type '.xlsx'"):
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


def test_generator_is_seeded_and_correlated():
    first, second = generate_customers(5000, seed=3), generate_customers(5000, seed=3)
    pd.testing.assert_frame_equal(first, second)
    assert not first.equals(generate_customers(5000, seed=4))
    assert first["customer_id"].is_unique
    # Engaged customers buy more often and open more mail; validation accepts the output as is.
    assert first["purchase_frequency"].corr(first["historical_open_rate"]) > 0.2
    assert (first["historical_click_rate"] <= first["historical_open_rate"]).all()
    validate_customers(first, "generated")
