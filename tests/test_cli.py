"""The `personalize` command line."""

import subprocess
import sys

import pandas as pd

from personalization_assets.cli import main


def test_data_writes_seeded_parquet_and_csv(tmp_path, capsys):
    assert main(["data", "--customers", "500", "--out", str(tmp_path / "c.parquet"), "--seed", "9"]) == 0
    assert main(["data", "--customers", "500", "--out", str(tmp_path / "c.csv"), "--seed", "9"]) == 0
    parquet, csv = pd.read_parquet(tmp_path / "c.parquet"), pd.read_csv(tmp_path / "c.csv")
    assert len(parquet) == 500
    pd.testing.assert_frame_equal(parquet, csv, check_dtype=False)
    assert "wrote 500 customers" in capsys.readouterr().out


def test_data_rejects_unknown_suffix(tmp_path, capsys):
    assert main(["data", "--customers", "5", "--out", str(tmp_path / "c.xlsx")]) == 2
    assert "unsupported output type '.xlsx'" in capsys.readouterr().err


def test_console_script_is_installed():
    completed = subprocess.run(
        [sys.executable, "-m", "personalization_assets.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "run" in completed.stdout and "data" in completed.stdout
