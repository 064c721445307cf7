"""Redacted JSON logs: customer ids hashed, secrets removed, every line valid JSON carrying the run id."""

import json
import logging
import re
import shutil

import pytest
from dagster import AssetExecutionContext, DagsterInstance, Definitions, asset, colored_console_logger

from personalization_assets import segmentation
from personalization_assets.lib.privacy import ENV_LOG_SALT, hash_customer_id
from personalization_assets.observability import (
    DEFAULT_CUSTOMER_ID_PATTERN,
    REDACTED,
    JsonLogFormatter,
    install_log_redaction,
    json_logger,
    log_safely,
    redact,
    register_secret,
    sanitize_fields,
    secret_env_values,
)
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME, segment_partitions
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager
from tests.conftest import PROJECT_ROOT

# dagster.yaml's log handler config is a beta feature of Dagster; the warning says nothing about this project.
pytestmark = pytest.mark.filterwarnings("ignore:Handling yaml-defined logging configuration")

# Secrets for the run test: some have a recognisable shape, one is known only by its variable's name.
OPENAI_KEY = "sk-test-7Hq2Lm9Xv4Rt8Wz1Pk6Ny3"
SEARCH_KEY = "q7Zp2LxV9mT4wR8sK3dF"
STORAGE_CONNECTION = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg=;"
STORAGE_ACCOUNT_KEY = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg="


def test_hash_customer_id_is_stable_salted_and_not_reversible_by_eye(monkeypatch):
    monkeypatch.delenv(ENV_LOG_SALT, raising=False)
    default = hash_customer_id("C000042")
    assert re.fullmatch(r"cust_[0-9a-f]{16}", default)
    assert hash_customer_id("C000042") == default
    assert hash_customer_id("C000043") != default
    assert "000042" not in default
    monkeypatch.setenv(ENV_LOG_SALT, "production-salt")
    assert hash_customer_id("C000042") != default, "the salt from the environment must change the hash"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "eyJhbGciOiJSUzI1NiJ9"),
        ("request headers {'api-key': '0123456789abcdef0123'}", "0123456789abcdef0123"),
        ("Ocp-Apim-Subscription-Key: 9f8e7d6c5b4a39281706", "9f8e7d6c5b4a39281706"),
        ("client_secret=s3cr3t-value-here&grant_type=client_credentials", "s3cr3t-value-here"),
        (STORAGE_CONNECTION, STORAGE_ACCOUNT_KEY),
        ("https://acct.blob.core.windows.net/c/x?sv=2022&sig=abc%2Bdef%3D&se=2030", "abc%2Bdef%3D"),
        ("openai key sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX leaked", "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX"),
        ("postgresql://etl:hunter2hunter2@db.internal:5432/warehouse", "hunter2hunter2"),
        ('{"password": "correct horse battery"}', "correct"),
    ],
)
def test_redact_removes_secret_shapes(text, secret):
    cleaned = redact(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


def test_redact_removes_values_of_secret_named_environment_variables(monkeypatch):
    monkeypatch.setenv("AZURE_SEARCH_ADMIN_KEY", SEARCH_KEY)
    monkeypatch.setenv("IDENTITY_HEADER", "header-secret-value-1234")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY_ENV", "AZURE_OPENAI_API_KEY")  # names a variable: not a secret
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/token")  # a path: not a secret
    values = secret_env_values()
    assert SEARCH_KEY in values and "header-secret-value-1234" in values
    assert "AZURE_OPENAI_API_KEY" not in values and "/var/run/secrets/token" not in values
    assert redact(f"search failed for key {SEARCH_KEY} (set AZURE_OPENAI_API_KEY)") == (
        f"search failed for key {REDACTED} (set AZURE_OPENAI_API_KEY)"
    )


def test_registered_secrets_are_redacted():
    register_secret("value-read-from-a-vault-42")
    assert redact("token value-read-from-a-vault-42 expired") == f"token {REDACTED} expired"


def test_redact_keeps_ordinary_operational_text():
    text = (
        "Basic tier customers: 120; run 2f67324c-3fff-4cf5-82ce-ca2494a87207; "
        "content_sha256 9b74c9897bac770ffc029102a200c5de9b74c9897bac770ffc029102a200c5de; "
        "wrote /work/main/data/warehouse.duckdb; set AZURE_OPENAI_API_KEY to use api_key auth"
    )
    assert redact(text) == text


def test_customer_ids_in_text_become_their_hashes():
    cleaned = redact("duplicate id — 2 row(s), first: line 3 ('C000002'), line 1002 ('C000002')")
    assert "C000002" not in cleaned
    assert cleaned.count(hash_customer_id("C000002")) == 2
    assert re.search(DEFAULT_CUSTOMER_ID_PATTERN, "C000002")


def test_sanitize_fields_hashes_customer_fields_and_redacts_the_rest():
    fields = sanitize_fields(
        {
            "customer_id": "C000010",
            "customer_ids": ["C000011", "C000012"],
            "note": f"key {OPENAI_KEY}",
            "n": 3,
        }
    )
    assert fields == {
        "customer_id": hash_customer_id("C000010"),
        "customer_ids": [hash_customer_id("C000011"), hash_customer_id("C000012")],
        "note": f"key {REDACTED}",
        "n": 3,
    }
    assert sanitize_fields(fields) == fields, "sanitizing twice must not hash the hashes"


def test_formatter_writes_one_json_object_with_the_fields():
    record = logging.LogRecord("personalization.test", logging.INFO, __file__, 1, "sent %s", ("C000077",), None)
    record.fields = {"customer_id": "C000077", "segment": "at_risk"}
    line = JsonLogFormatter().format(record)
    payload = json.loads(line)
    assert payload["message"] == f"sent {hash_customer_id('C000077')}"
    assert payload["fields"] == {"customer_id": hash_customer_id("C000077"), "segment": "at_risk"}
    assert "C000077" not in line


# --- A real run: the segmentation stage on a file with duplicate ids, plus an asset that tries to leak -----


@asset(partitions_def=segment_partitions)
def leaky_partitioned_step(context: AssetExecutionContext) -> None:
    """Logs what a careless stage might: keys, a connection string, raw customer ids."""
    import os

    context.log.info(f"calling https://example.openai.azure.com with api-key: {os.environ['AZURE_OPENAI_API_KEY']}")
    context.log.warning(f"search key {os.environ['AZURE_SEARCH_ADMIN_KEY']} rejected for customer C000007")
    context.log.info("storage: %s", os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    log_safely(context.log, "info", "variant chosen", customer_id="C000008", segment=context.partition_key)


@pytest.fixture
def leaky_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("AZURE_SEARCH_ADMIN_KEY", SEARCH_KEY)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", STORAGE_CONNECTION)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    install_log_redaction()
    return home


@pytest.fixture
def quarantining_settings(tmp_path) -> PipelineSettings:
    """Sample customers with two rows duplicated; config that quarantines invalid rows (logging their ids)."""
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    (config / "pipeline.yaml").write_text("validation:\n  on_invalid_rows: quarantine\n")
    lines = (PROJECT_ROOT / "data" / "customers.csv").read_text().splitlines()
    customers = tmp_path / "customers.csv"
    customers.write_text("\n".join([*lines, lines[2], lines[5]]) + "\n")
    return PipelineSettings(
        customers_path=str(customers),
        content_path=str(PROJECT_ROOT / "data" / "content"),
        config_dir=str(config),
        reports_dir=str(tmp_path / "reports"),
    )


def _raw_customer_ids(text: str) -> list[str]:
    return re.findall(DEFAULT_CUSTOMER_ID_PATTERN, text)


def test_run_logs_are_json_with_run_id_and_free_of_customer_ids_and_secrets(
    leaky_environment, quarantining_settings, tmp_path, capfd
):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    json_path = tmp_path / "json_logger.jsonl"
    definitions = Definitions(
        assets=[segmentation.load_customers, segmentation.customer_segments, leaky_partitioned_step],
        loggers={"console": colored_console_logger, "json": json_logger},
        resources={
            "settings": quarantining_settings,
            "warehouse": warehouse,
            "io_manager": WarehouseIOManager(warehouse=warehouse),
        },
    )
    run_config = {
        "loggers": {
            "console": {"config": {"log_level": "INFO"}},
            "json": {"config": {"path": str(json_path)}},
        }
    }
    with DagsterInstance.get() as instance:  # DAGSTER_HOME with the project's dagster.yaml
        segmented = (
            definitions.resolve_implicit_global_asset_job_def()
            .get_subset(asset_selection={segmentation.customer_segments.key, *segmentation.load_customers.keys})
            .execute_in_process(instance=instance, run_config=run_config)
        )
        segment = instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)[0]
        leaky = (
            definitions.resolve_implicit_global_asset_job_def()
            .get_subset(asset_selection={leaky_partitioned_step.key})
            .execute_in_process(instance=instance, run_config=run_config, partition_key=segment)
        )
        assert segmented.success and leaky.success
        stored_messages = "\n".join(
            entry.user_message for run in (segmented, leaky) for entry in instance.all_logs(run.run_id)
        )
        metadata = json.dumps(
            [
                {key: str(value.value) for key, value in event.materialization.metadata.items()}
                for run in (segmented, leaky)
                for event in run.get_asset_materialization_events()
            ]
        )
    console = capfd.readouterr()
    instance_lines = (leaky_environment / "logs" / "personalization.jsonl").read_text().splitlines()
    logger_lines = json_path.read_text().splitlines()
    assert len(instance_lines) > 20 and len(logger_lines) >= 5

    run_ids = {segmented.run_id, leaky.run_id}
    for line in instance_lines + logger_lines:
        payload = json.loads(line)  # every line is one JSON object
        assert payload["run_id"] in run_ids, line
    leaky_payloads = [json.loads(line) for line in instance_lines if leaky.run_id in line]
    assert {p["partition"] for p in leaky_payloads} == {segment}
    assert any(p["step"] == "leaky_partitioned_step" for p in leaky_payloads)
    assert any(p.get("fields", {}).get("customer_id") == hash_customer_id("C000008") for p in leaky_payloads)
    # The quarantine warning named the duplicated customers: they are there, hashed.
    quarantine = [p["message"] for p in map(json.loads, instance_lines) if "duplicate id" in p["message"]]
    assert quarantine and hash_customer_id("C000002") in quarantine[0]

    everything = "\n".join([*instance_lines, *logger_lines, console.out, console.err, stored_messages])
    assert _raw_customer_ids(everything) == []
    for secret in (OPENAI_KEY, SEARCH_KEY, STORAGE_ACCOUNT_KEY):
        assert secret not in everything, "a secret reached the logs"
        assert secret not in metadata, "a secret reached asset metadata"
    assert REDACTED in stored_messages, "the UI's stored messages are redacted at the source"
