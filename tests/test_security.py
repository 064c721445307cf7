"""Security: secrets come only from the environment or Azure identity and are never logged or shown, customer
ids are hashed in logs, plain HTTP goes only to loopback, and the pipeline cannot rewrite the audit log.

A sample run is made once for the module, under full capture, with recognizable secrets: segmentation (with
duplicated customers quarantined, so customer ids are logged), one segment's campaign on the Azure backends
against the emulators (search and the model with API keys from the environment, content safety over TLS with
an Entra ID token from the managed-identity endpoint), with transient faults and a failed screening, then a
run the model refuses (401) and a search outage. Captured: every log record of every logger at DEBUG, the
console, Dagster's stored event log and events (with metadata and errors), the JSON log lines and every table.

Redaction itself is unit-tested in test_observability.py; the per-resource credential errors in
test_retrieval.py, test_generation.py and test_safety.py; audit tampering and appends in test_safety.py.
"""

import contextlib
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dagster import AssetKey
from dagster._serdes import serialize_value

from personalization_assets import definitions
from personalization_assets.config.retrieval import RetrievalConfig
from personalization_assets.constants import PER_SEGMENT_TABLES
from personalization_assets.jobs import SEGMENTATION_JOB
from personalization_assets.lib.audit_chain import verify_audit_chain
from personalization_assets.lib.content import load_content_library
from personalization_assets.lib.privacy import hash_customer_id
from personalization_assets.observability import DEFAULT_CUSTOMER_ID_PATTERN
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME
from personalization_assets.store.safety import AUDIT_TABLE, read_audit
from resources.azure_auth import InsecureEndpointError, MissingCredentialError, require_secure_endpoint
from resources.content_safety import AzureContentSafetyResource, ContentSafetyConfigError
from resources.llm import AzureOpenAIResource, OpenAICompatibleResource
from resources.search import AzureAISearchResource
from tests.emulators import ContentSafetyEmulator, OpenAIResponsesEmulator, SearchEmulator
from tests.emulators.composing_model import composing_responder
from tests.emulators.identity import ManagedIdentityEndpoint
from tests.reliability.pipeline import (
    KEY_ENVS,
    PROJECT_ROOT,
    SEGMENT,
    config_copy,
    configured_resources,
    embedded_resources,
    emulator_config,
    failure_messages,
    failure_text,
    prepared_run,
    run_job,
    sample_settings,
    table_text,
)

OPENAI_KEY = "sk-SECRET-openai-7d3e9b1a5c2f4e80"
SEARCH_KEY = "sk-SECRET-search-4f9a1c7e2b8d6a31"
ENTRA_TOKEN = "SECRET-entra-token-5b1e8c3f9a7d2c64"  # no JWT shape: found only if nothing printed it
IDENTITY_HEADER = "SECRET-identity-header-2a6c9e1f"
SECRETS = (OPENAI_KEY, SEARCH_KEY, ENTRA_TOKEN, IDENTITY_HEADER)
SEARCH_QUERY = "search.post.search"
THIRD_PARTY_LOGGERS = ("azure", "openai", "httpx", "httpcore", "urllib3")


class Collect(logging.Handler):
    """Every record that reaches the root logger, formatted with its exception and structured fields."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + f" {getattr(record, 'fields', '')}")


@contextlib.contextmanager
def capture_everything():
    """Root handler at DEBUG (third-party loggers too) and the console, for the duration of the block."""
    handler, console = Collect(), io.StringIO()
    loggers = [logging.getLogger(), *map(logging.getLogger, THIRD_PARTY_LOGGERS)]
    levels = [logger.level for logger in loggers]
    logging.getLogger().addHandler(handler)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    try:
        with contextlib.redirect_stderr(console), contextlib.redirect_stdout(console):
            yield handler.lines, console
    finally:
        logging.getLogger().removeHandler(handler)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@dataclass
class SecuredRun:
    results: dict  # name -> ExecuteInProcessResult
    records: list[str]
    console: str
    stored: list[str]  # every stored event-log entry, serialized (messages, events, metadata, errors)
    stored_messages: list[str]
    events: list[str]
    json_lines: list[str]
    tables: str
    quarantined_ids: list[str]
    services: dict

    def everything(self) -> dict[str, str]:
        return {
            "log records": "\n".join(self.records),
            "console": self.console,
            "stored event log": "\n".join(self.stored),
            "run events": "\n".join(self.events),
            "errors": "\n".join(failure_text(result) for result in self.results.values()),
            "JSON log lines": "\n".join(self.json_lines),
            "warehouse tables": self.tables,
        }


def quarantining_inputs(folder: Path, services) -> dict:
    """Customers with two rows duplicated (quarantined: their ids are logged) and the Azure configuration."""
    lines = (PROJECT_ROOT / "data" / "customers.csv").read_text(encoding="utf-8").splitlines()
    customers = folder / "customers.csv"
    customers.write_text("\n".join([*lines, lines[3], lines[9]]) + "\n", encoding="utf-8")
    edits = emulator_config(services["search"], services["openai"], services["content_safety"])
    edits["safety_thresholds.yaml"]["azure"]["auth"] = "managed_identity"  # an Entra ID token, not a key
    edits["safety_thresholds.yaml"]["max_concurrency"] = 1  # one screening after another: the fault hits one
    edits["generation.yaml"]["cache"] = False  # every run calls the model
    edits["pipeline.yaml"] = {"validation": {"on_invalid_rows": "quarantine"}}
    ids = [line.split(",")[0] for line in (lines[3], lines[9])]
    return {"customers_path": str(customers), "config_dir": str(config_copy(folder, edits)), "ids": ids}


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    prepared = prepared_run(tmp_path_factory)
    folder = tmp_path_factory.mktemp("secured_run")
    with contextlib.ExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        search = stack.enter_context(SearchEmulator(api_key=SEARCH_KEY, token=None))
        openai = stack.enter_context(
            OpenAIResponsesEmulator(api_key=OPENAI_KEY, token=None, responder=composing_responder)
        )
        content_safety = stack.enter_context(
            ContentSafetyEmulator(tls=True, api_key=None, token=ENTRA_TOKEN, trigger_words={})
        )
        identity = stack.enter_context(ManagedIdentityEndpoint(token=ENTRA_TOKEN, secret_header=IDENTITY_HEADER))
        identity.route(patch)
        patch.setenv(KEY_ENVS["search"], SEARCH_KEY)
        patch.setenv(KEY_ENVS["llm"], OPENAI_KEY)
        services = {
            "search": search,
            "openai": openai,
            "content_safety": content_safety,
            "identity": identity,
        }
        retrieval = RetrievalConfig.model_validate(emulator_config(search=search)[RetrievalConfig.FILENAME])
        retrieval.azure.upload_documents(load_content_library(PROJECT_ROOT / "data" / "content"))

        inputs = quarantining_inputs(folder, services)
        quarantined_ids = inputs.pop("ids")
        warehouse = prepared.copy_to(folder / "warehouse")
        resources = configured_resources(sample_settings(folder, **inputs), warehouse)
        json_path = folder / "json_logger.jsonl"
        loggers = {
            "loggers": {
                "console": {"config": {"log_level": "DEBUG"}},
                "json": {"config": {"log_level": "DEBUG", "path": str(json_path)}},
            }
        }
        results = {}
        with capture_everything() as (records, console), prepared.instance() as instance:
            results["segmentation"] = run_job(resources, instance, SEGMENTATION_JOB, run_config=loggers)
            search.inject("503", times=1, path_contains=SEARCH_QUERY)
            openai.inject("429", times=1, retry_after=0.05)
            # One subject's screening fails after its two retries (the other calls run concurrently).
            content_safety.inject("500", times=3, body_contains="what you need to know")
            results["campaign"] = run_job(resources, instance, run_config=loggers)
            openai.api_key = "a-key-the-service-expects-instead"  # the key we send is refused: 401
            results["refused"] = run_job(resources, instance, assets=["message_variants"], run_config=loggers)
            openai.api_key = OPENAI_KEY
            search.inject("500", times=None, path_contains=SEARCH_QUERY)
            results["outage"] = run_job(resources, instance, assets=["retrieved_content"], run_config=loggers)
            search.clear_faults()
            entries = [entry for result in results.values() for entry in instance.all_logs(result.run_id)]
        yield SecuredRun(
            results=results,
            records=records,
            console=console.getvalue(),
            stored=[serialize_value(entry) for entry in entries],
            stored_messages=[entry.user_message for entry in entries],
            events=[serialize_value(event) for result in results.values() for event in result.all_events],
            json_lines=json_path.read_text(encoding="utf-8").splitlines(),
            tables=table_text(warehouse.path),
            quarantined_ids=quarantined_ids,
            services=services,
        )


# --- Secrets ------------------------------------------------------------------------------------------------


def test_the_sample_run_used_every_secret_and_was_fully_captured(secured):
    assert secured.results["segmentation"].success and secured.results["campaign"].success
    assert not secured.results["refused"].success and not secured.results["outage"].success
    services = secured.services
    assert {r.headers.get("api-key") for r in services["search"].requests} == {SEARCH_KEY}
    assert OPENAI_KEY in {r.headers.get("api-key") for r in services["openai"].requests}
    assert {r.headers.get("authorization") for r in services["content_safety"].requests} == {f"Bearer {ENTRA_TOKEN}"}
    # One token per run that screens: segmentation screens the content library, the campaign its variants.
    assert services["identity"].requested_resources == ["https://cognitiveservices.azure.com"] * 2
    # The capture saw the SDKs' own logging, the console, the stored events and the JSON lines.
    records = "\n".join(secured.records)
    assert "azure.core.pipeline.policies.http_logging_policy" in records and "openai" in records
    assert "STEP_FAILURE" in secured.console and "ASSET_MATERIALIZATION" in secured.console
    assert len(secured.stored) > 100 and len(secured.json_lines) > 100


def test_secrets_appear_in_no_log_event_metadata_error_or_table(secured):
    for where, text in secured.everything().items():
        for secret in SECRETS:
            assert secret not in text, f"a secret ({secret[:12]}...) reached the {where}"


def test_failed_calls_name_the_service_and_status_but_not_the_credential(secured):
    refused = failure_messages(secured.results["refused"])
    assert re.search(r"azure model 'gpt-4o-mini' at http://127\.0\.0\.1:\d+: request refused: HTTP 401", refused)
    assert "check the credentials" in refused
    outage = failure_messages(secured.results["outage"])
    assert "Azure AI Search query failed for index 'approved-content'" in outage and "(HTTP 500)" in outage
    metadata = secured.results["campaign"].asset_materializations_for_node("safety_verdicts")[0].metadata
    assert metadata["blocked"].value == 1
    assert "Azure AI Content Safety HTTP 500 InternalServerError" in metadata["blocked_reasons"].value
    for text in (refused, outage, metadata["blocked_reasons"].value):
        assert not any(secret in text for secret in SECRETS)


# --- Customer ids -------------------------------------------------------------------------------------------


def test_customer_ids_are_hashed_wherever_they_are_logged_or_shown(secured):
    """Logs, and what the UI shows (event log with metadata and errors); the tables hold the ids, as data."""
    shown = {where: text for where, text in secured.everything().items() if where != "warehouse tables"}
    for where, text in shown.items():
        assert re.findall(DEFAULT_CUSTOMER_ID_PATTERN, text) == [], f"raw customer ids in the {where}"
    quarantine = [message for message in secured.stored_messages if "duplicate id" in message]
    assert quarantine, "the duplicated customers were not logged: nothing was tested"
    for customer_id in secured.quarantined_ids:
        assert hash_customer_id(customer_id) in quarantine[0]
        assert any(hash_customer_id(customer_id) in json.loads(line)["message"] for line in secured.json_lines)


# --- Credentials and endpoints ------------------------------------------------------------------------------

# resource factory (endpoint, key variable) -> the call that builds the client, and the setting it names
RESOURCES = {
    "azure_search": (
        lambda url, key_env: AzureAISearchResource(endpoint=url, auth="api_key", api_key_env=key_env),
        lambda resource: resource.search_client(),
        "retrieval.yaml azure",
    ),
    "azure_openai": (
        lambda url, key_env: AzureOpenAIResource(endpoint=url, auth="api_key", api_key_env=key_env),
        lambda resource: resource.warm_up(),
        "generation.yaml azure",
    ),
    "openai_compatible": (
        lambda url, key_env: OpenAICompatibleResource(base_url=url, model="m", api_key_env=key_env),
        lambda resource: resource.warm_up(),
        "generation.yaml openai_compatible",
    ),
    "azure_content_safety": (
        lambda url, key_env: AzureContentSafetyResource(endpoint=url, auth="api_key", api_key_env=key_env),
        lambda resource: resource.client(),
        "safety_thresholds.yaml azure",
    ),
}
CONFIG_ERRORS = (MissingCredentialError, InsecureEndpointError, ContentSafetyConfigError)


@pytest.mark.parametrize("kind", RESOURCES)
def test_credential_errors_name_the_variable_and_never_a_value(kind, monkeypatch):
    build, connect, setting = RESOURCES[kind]
    monkeypatch.setenv("SET_ELSEWHERE_KEY", OPENAI_KEY)  # a secret that is set, under another name
    monkeypatch.delenv("UNSET_SERVICE_KEY", raising=False)
    endpoint = "https://service.example.invalid"
    with pytest.raises(CONFIG_ERRORS) as missing:
        connect(build(endpoint, "UNSET_SERVICE_KEY"))
    assert re.search(
        rf"environment variable UNSET_SERVICE_KEY \(named by {setting}\.api_key_env\) is not set",
        str(missing.value),
    )
    with pytest.raises(CONFIG_ERRORS) as pasted:  # the key itself pasted where its variable's name belongs
        connect(build(endpoint, SEARCH_KEY))
    assert f"{setting}.api_key_env must name an environment variable" in str(pasted.value)
    for error in (missing.value, pasted.value):
        assert not any(secret in str(error) for secret in SECRETS)
    monkeypatch.setenv("SET_SERVICE_KEY", SEARCH_KEY)
    connect(build(endpoint, "SET_SERVICE_KEY"))  # read from the environment: the client is built


REFUSED_ENDPOINTS = [
    "http://search.example.net",
    "http://10.0.0.7:8080",
    "http://127.0.0.1.nip.io",  # a public name that merely starts like loopback
    "http://localhost.example.com",
    "ftp://127.0.0.1/",
    "127.0.0.1:8080",
    "https://admin:hunter2-password@search.example.net",  # credentials belong in the auth settings
]
LOOPBACK_ENDPOINTS = ["http://127.0.0.1:8080", "http://localhost:11434/v1", "http://[::1]:8080"]


@pytest.mark.parametrize("kind", RESOURCES)
def test_plain_http_is_refused_for_every_endpoint_but_loopback(kind, monkeypatch):
    build, connect, setting = RESOURCES[kind]
    monkeypatch.setenv("SERVICE_KEY", SEARCH_KEY)
    for endpoint in REFUSED_ENDPOINTS:
        with pytest.raises(CONFIG_ERRORS) as refused:
            connect(build(endpoint, "SERVICE_KEY"))
        message = str(refused.value)
        assert message.startswith(setting) and re.search(r"must (use https://|be an http\(s\) URL|not carry)", message)
        assert "hunter2" not in message
    for endpoint in [*LOOPBACK_ENDPOINTS, "https://search.example.net"]:
        assert require_secure_endpoint(endpoint, setting) == endpoint
        connect(build(endpoint, "SERVICE_KEY"))  # accepted: the client is built (nothing is sent yet)


# --- The audit log ------------------------------------------------------------------------------------------


def test_the_pipeline_only_ever_appends_to_the_audit_log(tmp_path_factory, tmp_path):
    """Re-running a campaign replaces every per-segment table's partition but only appends audit records; a
    segment removed by a new segmentation loses its rows everywhere except in the audit log."""
    assert AssetKey(AUDIT_TABLE) not in {key for asset in definitions.assets for key in asset.keys}  # no IO manager
    prepared = prepared_run(tmp_path_factory)
    warehouse = prepared.copy_to(tmp_path / "warehouse")
    original = read_audit(warehouse)
    with prepared.instance() as instance:
        rerun = run_job(embedded_resources(sample_settings(tmp_path), warehouse), instance)
        assert rerun.success, failure_messages(rerun)
        appended = read_audit(warehouse)
        assert len(appended) == 2 * len(original) and verify_audit_chain(appended).ok
        pd.testing.assert_frame_equal(appended.iloc[: len(original)].reset_index(drop=True), original)

        without_segment = config_copy(
            tmp_path,
            {"segmentation.yaml": {"rules": [rule for rule in _shipped_rules() if rule["name"] != "At-Risk"]}},
        )
        settings = sample_settings(tmp_path, config_dir=str(without_segment))
        resegmented = run_job(embedded_resources(settings, warehouse), instance, SEGMENTATION_JOB)
        assert resegmented.success, failure_messages(resegmented)
        assert SEGMENT not in instance.get_dynamic_partitions(SEGMENT_PARTITIONS_NAME)
    for table in PER_SEGMENT_TABLES:
        assert warehouse.read_table(table, "where segment = ?", [SEGMENT]).empty, table
    pd.testing.assert_frame_equal(read_audit(warehouse), appended)  # every record kept, the segment's too
    assert verify_audit_chain(read_audit(warehouse)).ok


def _shipped_rules() -> list[dict]:
    return yaml.safe_load((PROJECT_ROOT / "config" / "segmentation.yaml").read_text(encoding="utf-8"))["rules"]
