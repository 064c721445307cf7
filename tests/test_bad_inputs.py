"""Bad inputs: every way an input can be wrong gets a clear error naming the problem and where it is (file,
column or key, line), and nothing stored changes.

One table of cases over customers, content, configuration YAML, prompts, credentials and the segment key. Each
runs a real entry point on a warehouse that already holds a good run (the pipeline's job or asset that reads
the input, or the `personalize` command) and compares every table (row count and content hash) and the
registered segment partitions before and after. The pure validators' finer cases are in test_customers.py,
test_content.py, test_segmentation.py, test_generation.py and test_experimentation.py.
"""

import json
import re
import shutil
import tracemalloc
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from dagster import DagsterInstance

from personalization_assets.cli import main
from personalization_assets.jobs import CAMPAIGN_JOB, SEGMENTATION_JOB
from personalization_assets.lib.customers import MAX_CSV_LINE_BYTES
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME
from resources.azure_auth import MissingCredentialError
from tests.reliability.pipeline import (
    KEY_ENVS,
    PROJECT_ROOT,
    config_copy,
    configured_resources,
    embedded_resources,
    failure_messages,
    prepared_run,
    run_job,
    sample_settings,
    snapshot,
)

SAMPLE_CUSTOMERS = PROJECT_ROOT / "data" / "customers.csv"
SAMPLE_CONTENT = PROJECT_ROOT / "data" / "content"
ROW = 41  # the data row a bad value is put in: file line 43 (line 1 is the header)
LINE = ROW + 2
MiB = 1024 * 1024
UNREACHABLE = "https://{}.example.invalid"  # never contacted: the missing key is found first
# What a case materializes: the assets that read its input (the segment's partition for campaign assets).
ENTRY_ASSETS = {
    "customers": (
        SEGMENTATION_JOB,
        ["customers", "customers_quarantine", "customer_segments", "segment_profiles"],
    ),
    "content_index": (SEGMENTATION_JOB, ["content_index"]),
    **{
        asset: (CAMPAIGN_JOB, [asset])
        for asset in ("retrieved_content", "message_variants", "safety_verdicts", "assignments")
    },
}

# Writes the bad input under the case folder; returns the PipelineSettings fields that point to it.
Prepare = Callable[[Path], dict]


@dataclass(frozen=True)
class BadInput:
    name: str
    prepare: Prepare
    expected: tuple[str, ...]  # regexes the error must match; <folder> stands for the case folder
    entry: str = "customers"  # the assets that read the input (ENTRY_ASSETS), or "cli"
    services: str = "embedded"  # "configured": service backends from the case's YAML (credential cases)
    cli_args: tuple[str, ...] = ()
    max_peak_bytes: int | None = None  # Python + Arrow allocation bound while the input is refused
    absent: tuple[str, ...] = ()  # texts the error must not show (raw customer values)


# --- Bad customers ------------------------------------------------------------------------------------------


def sample_customers() -> pd.DataFrame:
    return pd.read_csv(SAMPLE_CUSTOMERS, dtype=str, keep_default_na=False)


def customers_file(edit: Callable[[pd.DataFrame], pd.DataFrame], raw: dict[str, bytes] | None = None) -> Prepare:
    """The sample customers edited as text; `raw` then replaces marker values with bytes (non-UTF-8, huge)."""

    def prepare(folder: Path) -> dict:
        path = folder / "customers.csv"
        data = edit(sample_customers()).to_csv(index=False).encode("utf-8")
        for marker, replacement in (raw or {}).items():
            data = data.replace(marker.encode(), replacement)
        path.write_bytes(data)
        return {"customers_path": str(path)}

    return prepare


def strict_columns(prepare: Prepare) -> Prepare:
    """The case with `validation.extra_columns: error` (a governance setting: only the documented columns)."""

    def strict(folder: Path) -> dict:
        return {**prepare(folder), "config_dir": str(config_copy(folder, {"pipeline.yaml": STRICT_COLUMNS}))}

    return strict


STRICT_COLUMNS = {"validation": {"extra_columns": "error"}}


def value(column: str, text: str, row: int = ROW) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, column] = text
        return frame

    return edit


def raw_file(content: bytes) -> Prepare:
    def prepare(folder: Path) -> dict:
        path = folder / "customers.csv"
        path.write_bytes(content)
        return {"customers_path": str(path)}

    return prepare


def parquet_with_text_age(folder: Path) -> dict:
    frame = sample_customers()
    for column in frame.columns.drop(["customer_id", "location", "tier", "age"]):
        frame[column] = pd.to_numeric(frame[column])
    frame.loc[ROW, "age"] = "forty"  # the column stays text: a wrong type for a number
    path = folder / "customers.parquet"
    frame.to_parquet(path, index=False)
    return {"customers_path": str(path)}


def duplicate_id(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[ROW, "customer_id"] = frame.loc[6, "customer_id"]
    return frame


def too_many_fields(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[ROW, "location"] = "@SPLIT@"
    return frame


HEADER = SAMPLE_CUSTOMERS.read_text(encoding="utf-8").splitlines()[0]
CUSTOMERS = "<folder>/customers\\.csv"
INVALID_ROW = CUSTOMERS + r": 1 invalid row\(s\)"
PSEUDONYM = r"\(cust_[0-9a-f]{16}\)"

CUSTOMER_CASES = [
    BadInput(
        "customers-missing-column",
        customers_file(lambda f: f.drop(columns="tier")),
        (CUSTOMERS + r": missing required column\(s\): tier\. Expected columns: customer_id, age",),
    ),
    BadInput(
        "customers-extra-column-refused-by-config",
        strict_columns(customers_file(lambda f: f.assign(email="someone@example.com"))),
        (CUSTOMERS + r": unexpected column\(s\): email \(set validation\.extra_columns: drop",),
        absent=("someone@example.com",),
    ),
    BadInput(
        "customers-renamed-column",
        customers_file(lambda f: f.rename(columns={"historical_open_rate": "open_rate"})),
        (
            CUSTOMERS + r": missing required column\(s\): historical_open_rate; columns in the file that are not "
            r"used: open_rate\. Expected columns",
        ),
    ),
    BadInput(
        "customers-renamed-column-strict",
        strict_columns(customers_file(lambda f: f.rename(columns={"historical_open_rate": "open_rate"}))),
        (CUSTOMERS + r": missing required column\(s\): historical_open_rate; unexpected column\(s\): open_rate",),
    ),
    BadInput(
        "customers-wrong-type",
        customers_file(value("purchase_frequency", "often")),
        (
            INVALID_ROW,
            rf"column 'purchase_frequency': not a number — 1 row\(s\), first: line {LINE} {PSEUDONYM}",
            r"set validation\.on_invalid_rows: quarantine in config/pipeline\.yaml",
        ),
        absent=("often",),
    ),
    BadInput(
        "customers-parquet-wrong-type",
        parquet_with_text_age,
        (
            r"<folder>/customers\.parquet: 1 invalid row",
            rf"column 'age': not a number .* line {ROW + 1} {PSEUDONYM}",
        ),
        absent=("forty",),
    ),
    BadInput(
        "customers-nan",
        customers_file(value("avg_order_value", "NaN")),
        (
            INVALID_ROW,
            rf"column 'avg_order_value': missing value \(empty or NaN\) — 1 row\(s\), first: line {LINE}",
        ),
    ),
    BadInput(
        "customers-inf",
        customers_file(value("last_engagement_days", "inf")),
        (INVALID_ROW, rf"column 'last_engagement_days': infinite value — 1 row\(s\), first: line {LINE}"),
    ),
    BadInput(
        "customers-negative",
        customers_file(value("avg_order_value", "-12.5")),
        (INVALID_ROW, rf"column 'avg_order_value': out of range \(allowed >= 0\) .* line {LINE} {PSEUDONYM}"),
        absent=("-12.5",),
    ),
    BadInput(
        "customers-rate-over-1",
        customers_file(value("historical_click_rate", "1.2")),
        (INVALID_ROW, rf"column 'historical_click_rate': out of range \(allowed \[0, 1\]\) .* line {LINE}"),
    ),
    BadInput(
        "customers-duplicate-id",
        customers_file(duplicate_id),
        (
            INVALID_ROW,
            rf"column 'customer_id': duplicate id, the first copy is kept — 1 row\(s\), first: line {LINE} "
            rf"{PSEUDONYM} \(first copy on line 8\)",
        ),
    ),
    BadInput(
        "customers-semicolon-delimited",
        customers_file(lambda f: f, raw={",": b";"}),
        (
            CUSTOMERS + r": line 1 looks like ';'-delimited, but customers\.delimiter is ',': "
            r"set `customers\.delimiter: \";\"` in config/pipeline\.yaml",
        ),
    ),
    BadInput(
        "customers-too-many-fields",
        customers_file(too_many_fields, raw={"@SPLIT@": b"Paris,TX"}),
        (
            INVALID_ROW,
            rf"line with 10 field\(s\) where the header has 9 — 1 row\(s\), first: line {LINE} \(values not shown",
        ),
        absent=("Paris",),
    ),
    BadInput(
        "customers-empty-id",
        customers_file(value("customer_id", "  ")),
        (INVALID_ROW, rf"column 'customer_id': empty id — 1 row\(s\), first: line {LINE}"),
    ),
    BadInput("customers-empty-file", raw_file(b""), (CUSTOMERS + r": the file is empty",)),
    BadInput(
        "customers-header-only",
        raw_file(HEADER.encode() + b"\n"),
        (CUSTOMERS + r": the file has a header but no customer rows",),
    ),
    BadInput(
        "customers-not-utf8",
        customers_file(value("location", "@LATIN1@"), raw={"@LATIN1@": "Köln".encode("latin-1")}),
        (CUSTOMERS + rf": line {LINE} is not valid UTF-8 \(byte 0xf6 at column \d+\)",),
    ),
    BadInput(
        # A "2 GB line" in miniature: one line just over the real 16 MiB limit, refused before it is read.
        "customers-line-over-16-MiB",
        customers_file(value("location", "@HUGE@"), raw={"@HUGE@": b"x" * (MAX_CSV_LINE_BYTES + MiB)}),
        (CUSTOMERS + rf": a line is longer than 16 MiB \(line {LINE}\)",),
        max_peak_bytes=MAX_CSV_LINE_BYTES // 2,
    ),
]


# --- Bad content documents ----------------------------------------------------------------------------------


def content_folder(edit: Callable[[Path], None]) -> Prepare:
    def prepare(folder: Path) -> dict:
        content = folder / "content"
        shutil.copytree(SAMPLE_CONTENT, content)
        edit(content)
        return {"content_path": str(content)}

    return prepare


def edit_document(name: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    def edit(content: Path) -> None:
        document = json.loads((content / name).read_text(encoding="utf-8"))
        change(document)
        (content / name).write_text(json.dumps(document), encoding="utf-8")

    return edit


def only_future_documents(content: Path) -> None:
    """One document, approved only in the future: nothing may be retrieved yet."""
    first, *others = sorted(content.glob("*.json"))
    for path in others:
        path.unlink()
    edit_document(first.name, lambda d: d.update(approval_date="2099-01-01"))(content)


FIRST_DOCUMENT = sorted(SAMPLE_CONTENT.glob("*.json"))[0].stem


def only_document(name: str, change: Callable[[Path], None]) -> Callable[[Path], None]:
    """The library reduced to one document, then changed: with it quarantined, no approved document is left."""

    def edit(content: Path) -> None:
        for path in content.glob("*.json"):
            if path.name != name:
                path.unlink()
        change(content)

    return edit


TOO_FEW = r"<folder>/content: 0 approved document\(s\) as of \d{4}-\d\d-\d\d, fewer than the minimum of 1"
CONTENT_CASES = [
    BadInput(
        "content-missing-field",
        content_folder(
            only_document("DOC-PROMO-001.json", edit_document("DOC-PROMO-001.json", lambda d: d.pop("audience")))
        ),
        (TOO_FEW, r"DOC-PROMO-001\.json: audience: required field is missing"),
        entry="content_index",
    ),
    BadInput(
        "content-malformed-json",
        content_folder(
            only_document(
                "DOC-PROD-003.json",
                lambda c: (c / "DOC-PROD-003.json").write_text('{"document_id": "DOC-PROD-003",\n "title": '),
            )
        ),
        (
            TOO_FEW,
            r"DOC-PROD-003\.json: \(file\): malformed JSON at line 2, column \d+",
        ),
        entry="content_index",
    ),
    BadInput(
        "content-future-approval-date",
        content_folder(only_future_documents),
        (TOO_FEW + rf".*not yet approved: {FIRST_DOCUMENT} \(approval date 2099-01-01\)",),
        entry="content_index",
    ),
]


# --- Bad configuration, prompts and credentials -------------------------------------------------------------


def config(edits: dict) -> Prepare:
    return lambda folder: {"config_dir": str(config_copy(folder, edits))}


def prompt_without_documents(folder: Path) -> dict:
    target = config_copy(folder)
    user = target / "prompts" / "user.md"
    user.write_text(user.read_text(encoding="utf-8").replace("{{ documents }}", "(documents)"), encoding="utf-8")
    return {"config_dir": str(target)}


SERVICE_OF_FILE = {
    "retrieval.yaml": "search",
    "generation.yaml": "llm",
    "safety_thresholds.yaml": "content_safety",
}


def azure_with_api_key(file: str) -> Prepare:
    """The file selects its Azure backend with API-key auth; the key's variable is not set."""
    service = SERVICE_OF_FILE[file]
    azure = {"endpoint": UNREACHABLE.format(service), "auth": "api_key", "api_key_env": KEY_ENVS[service]}
    return config({file: {"backend": "azure", "azure": azure}})


CONFIG_CASES = [
    BadInput(
        "yaml-malformed",
        config(
            {
                "segmentation.yaml": (
                    "method: rules\nrules:\n  - name: X\n    intent: vip\n"
                    "    when: [{feature: age, op: '>', value: 1}\n"  # the list is never closed
                )
            }
        ),
        (r"<folder>/config/segmentation\.yaml: malformed YAML at line 6, column 1",),
    ),
    BadInput(
        "yaml-unknown-key",
        config({"generation.yaml": {"temprature": 0.5}}),
        (r"<folder>/config/generation\.yaml: invalid configuration\n  - temprature: unknown key",),
        entry="message_variants",
    ),
    BadInput(
        "safety-threshold-out-of-range",
        config({"safety_thresholds.yaml": {"thresholds": {"hate": 9}}}),
        (
            r"safety_thresholds\.yaml: invalid configuration\n"
            r"  - thresholds: .*threshold for hate must be an integer 0-8, got 9",
        ),
        entry="safety_verdicts",
    ),
    BadInput(
        "retrieval-threshold-out-of-range",
        config({"retrieval.yaml": {"threshold": 1.5}}),
        (
            r"retrieval\.yaml: invalid configuration\n"
            r"  - threshold: Input should be less than or equal to 1 \(got 1\.5\)",
        ),
        entry="retrieved_content",
    ),
    BadInput(
        "arm-weights-not-summing-to-1",
        config(
            {
                "experiment_config.yaml": {
                    "assignment": {"weights": {"control": 0.5, "urgent": 0.5, "informational": 0.25, "friendly": 0.25}}
                }
            }
        ),
        (
            r"experiment_config\.yaml: invalid configuration\n"
            r"  - assignment\.weights: .*weights must sum to 1 .*they sum to 1\.5",
        ),
        entry="assignments",
    ),
    BadInput(
        "prompt-missing-placeholder",
        prompt_without_documents,
        (
            r"<folder>/config/prompts/user\.md: invalid prompt template: "
            r"missing required placeholder\(s\) \{\{ documents \}\}",
        ),
        entry="message_variants",
    ),
    BadInput(
        "credentials-missing-llm",
        azure_with_api_key("generation.yaml"),
        (
            r"environment variable AZURE_OPENAI_API_KEY \(named by generation\.yaml azure\.api_key_env\) "
            r"is not set or empty",
        ),
        entry="message_variants",
        services="configured",
    ),
    BadInput(
        "credentials-missing-search",
        azure_with_api_key("retrieval.yaml"),
        (
            r"environment variable AZURE_SEARCH_API_KEY \(named by retrieval\.yaml azure\.api_key_env\) "
            r"is not set or empty",
        ),
        entry="retrieved_content",
        services="configured",
    ),
    BadInput(
        "credentials-missing-content-safety",
        azure_with_api_key("safety_thresholds.yaml"),
        (
            r"environment variable AZURE_CONTENT_SAFETY_KEY "
            r"\(named by safety_thresholds\.yaml azure\.api_key_env\) is not set or empty",
        ),
        entry="safety_verdicts",
        services="configured",
    ),
]

SEGMENT_CASES = [
    BadInput(
        "unknown-segment",
        lambda folder: {},
        (
            r"unknown segment 'nope'; "
            r"known segments: at_risk, high_value_recent, loyal_frequent, new_customer, standard",
        ),
        entry="cli",
        cli_args=("run", "--segment", "nope"),
    ),
]

CASES = [*CUSTOMER_CASES, *CONTENT_CASES, *CONFIG_CASES, *SEGMENT_CASES]


# --- Running a case -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepared_run(tmp_path_factory)


@contextmanager
def peak_allocation():
    """Peak bytes allocated while the block runs: Python objects and NumPy (tracemalloc) plus Arrow's pool."""
    arrow = pa.proxy_memory_pool(pa.default_memory_pool())
    previous = pa.default_memory_pool()
    pa.set_memory_pool(arrow)
    tracemalloc.start()
    peak = {}
    try:
        yield peak
    finally:
        peak["python"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        pa.set_memory_pool(previous)
        peak["arrow"] = arrow.max_memory()


def run_cli(case: BadInput, prepared, tmp_path, monkeypatch, capsys) -> tuple[str, int]:
    """`personalize ...` with a Dagster home that knows the good run's segments; asserts it ran no job."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(SEGMENT_PARTITIONS_NAME, list(prepared.partitions))
    code = main(list(case.cli_args))
    with DagsterInstance.get() as instance:
        assert instance.get_runs() == [], "a rejected command must not start a run"
        assert sorted(instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)) == list(prepared.partitions)
    return capsys.readouterr().err, code


def run_entry(case: BadInput, prepared, warehouse, settings) -> str:
    """Materialize the assets that read the case's input, on the copy; returns the failure's messages."""
    build = configured_resources if case.services == "configured" else embedded_resources
    job, assets = ENTRY_ASSETS[case.entry]
    try:
        resources = build(settings, warehouse)
    except MissingCredentialError as error:  # refused where the code location loads, before any run
        return str(error)
    with prepared.instance() as instance:
        result = run_job(resources, instance, job, assets=assets)
        assert not result.success, f"{case.name}: the run succeeded"
        assert sorted(instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)) == list(prepared.partitions)
    return failure_messages(result)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_input_is_refused_with_a_clear_error_and_nothing_stored_changes(
    case, prepared, tmp_path, monkeypatch, capsys
):
    for variable in KEY_ENVS.values():
        monkeypatch.delenv(variable, raising=False)
    warehouse = prepared.copy_to(tmp_path / "warehouse")
    settings = sample_settings(tmp_path, **case.prepare(tmp_path))
    before = snapshot(warehouse.path)

    if case.entry == "cli":
        message, code = run_cli(case, prepared, tmp_path, monkeypatch, capsys)
        assert code == 2, message
    elif case.max_peak_bytes is not None:
        with peak_allocation() as peak:
            message = run_entry(case, prepared, warehouse, settings)
        assert peak["arrow"] + peak["python"] < case.max_peak_bytes, peak  # refused before it was read
    else:
        message = run_entry(case, prepared, warehouse, settings)

    for pattern in case.expected:
        assert re.search(pattern.replace("<folder>", re.escape(str(tmp_path))), message, re.DOTALL), (
            f"{case.name}: {pattern!r} not in:\n{message}"
        )
    for text in case.absent:
        assert text not in message, f"{case.name}: {text!r} shown in:\n{message}"
    assert snapshot(warehouse.path) == before, f"{case.name} changed stored tables"


def test_the_suite_covers_every_entry_point():
    assert len(CASES) >= 20 and len({case.name for case in CASES}) == len(CASES)
    assert {case.entry for case in CASES} == {*ENTRY_ASSETS, "cli"}


def test_a_document_approved_in_the_future_is_held_back_and_the_index_is_unchanged(prepared, tmp_path):
    """Not an error (the library's rule): the document is pending, named in the metadata, and not indexed."""
    warehouse = prepared.copy_to(tmp_path / "warehouse")
    content = tmp_path / "content"
    shutil.copytree(SAMPLE_CONTENT, content)
    document = json.loads((content / "DOC-PROMO-001.json").read_text(encoding="utf-8"))
    document.update(document_id="DOC-PROMO-FUTURE", approval_date="2099-01-01")
    (content / "DOC-PROMO-FUTURE.json").write_text(json.dumps(document), encoding="utf-8")
    before = snapshot(warehouse.path)
    with prepared.instance() as instance:
        result = run_job(
            embedded_resources(sample_settings(tmp_path, content_path=str(content)), warehouse),
            instance,
            SEGMENTATION_JOB,
            assets=["content_index"],
        )
    assert result.success
    metadata = result.asset_materializations_for_node("content_index")[0].metadata
    assert metadata["not_approved"].value == "not yet approved: DOC-PROMO-FUTURE (approval date 2099-01-01)"
    assert metadata["index_rebuilt"].value is False
    assert snapshot(warehouse.path) == before
