"""Safety stage: the `content_safety` resource on both backends (Azure through the real SDK against the
Content Safety emulator, key and Entra-ID auth), fail-closed screening under every injected fault, the
`safety_verdicts` asset with rewrites, its gates, the hash-chained `safety_audit` log, and the
`personalize screen` / `personalize audit-export` commands."""

import io
import json
import logging
import multiprocessing
import shutil
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import yaml
from dagster import AssetSpec, materialize

from personalization_assets import safety
from personalization_assets.cli import main
from personalization_assets.config import ConfigError
from personalization_assets.config.safety import SafetyConfig, sync_configured_blocklist
from personalization_assets.constants import SEGMENT_PARTITION_METADATA
from personalization_assets.embedded.composer import compose_message
from personalization_assets.lib.audit_chain import text_sha256, verify_audit_chain
from personalization_assets.lib.generation import (
    VARIANT_COLUMNS,
    FormatRules,
    SegmentBrief,
    check_variant,
    parse_citations,
    resolve_citations,
)
from personalization_assets.lib.safety import CATEGORIES, CONCERNS
from personalization_assets.partitions import SEGMENT_PARTITIONS_NAME, segment_partitions
from personalization_assets.store import safety as store
from personalization_assets.workflows import safety as flow
from personalization_assets.workflows.safety import decide_outcome
from resources.content_safety import (
    AzureContentSafetyResource,
    ContentSafetyConfigError,
    EmbeddedContentSafetyResource,
)
from resources.llm import EmbeddedComposerResource, OpenAICompatibleResource
from resources.settings import PipelineSettings
from tests.stage_inputs import SEGMENT, source_documents, write_generation_inputs

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TONES = ("urgent", "informational", "friendly")
SENDER = "The Northwind Outfitters team"  # config/generation.yaml `sender`
THRESHOLDS = dict.fromkeys(CONCERNS, 4)
UPSTREAM = AssetSpec("message_variants", partitions_def=segment_partitions, metadata=SEGMENT_PARTITION_METADATA)
FAST = {
    "max_retries": 2,
    "retry_backoff_seconds": 0.01,
    "retry_backoff_max_seconds": 0.05,
    "timeout_seconds": 2.0,
}
KEY_ENV = "TEST_CONTENT_SAFETY_KEY"

IDIOM = "Our killer deals are to die for, and this blowout sale will knock your socks off."
THREAT = "If you ignore this offer, we will find you and kill you."


# --- Inputs as the upstream stages store them ---------------------------------------------------------------


def variant_rows(additions: dict[str, str] | None = None) -> pd.DataFrame:
    """One valid composed variant per tone; `additions` appends a sentence to a tone's body."""
    rows = []
    for tone in TONES:
        message = compose_message(
            SegmentBrief(SEGMENT, "At-Risk", "win_back"),
            source_documents(),
            tone,
            FormatRules(),
            sender=SENDER,
        )
        body = message.body + (f"\n\n{additions[tone]}" if additions and tone in additions else "")
        rows.append(
            {
                "segment": SEGMENT,
                "variant_id": f"v-{tone}",
                "tone": tone,
                "subject": message.subject,
                "body": body,
                "citations": json.dumps(list(message.citations)),
                "status": "valid",
                "rejection_reasons": "[]",
                "attempts": 1,
                "backend": "embedded",
                "model": "composer",
                "input_tokens": 0,
                "output_tokens": 0,
                "cost_usd": 0.0,
                "latency_ms": 0.0,
                "created_at": pd.Timestamp.now(tz="UTC"),
            }
        )
    return pd.DataFrame(rows, columns=VARIANT_COLUMNS)


def write_inputs(warehouse, variants: pd.DataFrame) -> None:
    """The segment's message_variants and what a rewrite reads (profiles, retrieved content, index)."""
    write_generation_inputs(warehouse, SEGMENT)
    with warehouse.transaction() as connection:
        connection.register("variant_rows", variants)
        connection.execute("create or replace table message_variants as select * from variant_rows")


def settings_with(settings: PipelineSettings, tmp_path: Path, **changes) -> PipelineSettings:
    """A copy of config/ with top-level keys of safety_thresholds.yaml replaced."""
    target = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}"
    shutil.copytree(PROJECT_ROOT / "config", target)
    path = target / "safety_thresholds.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    # A new instance (not model_copy): Dagster rebuilds resources from their constructor arguments.
    return PipelineSettings(
        customers_path=settings.customers_path,
        content_path=settings.content_path,
        config_dir=str(target),
        reports_dir=settings.reports_dir,
    )


def run_safety(instance, resources, content_safety, *, llm=None):
    instance.add_dynamic_partitions(SEGMENT_PARTITIONS_NAME, [SEGMENT])
    return materialize(
        [safety.safety_verdicts, UPSTREAM],
        instance=instance,
        partition_key=SEGMENT,
        resources={**resources, "content_safety": content_safety, "llm": llm or EmbeddedComposerResource()},
        raise_on_error=False,
    )


def run_chain_check(instance, warehouse):
    """Only the audit_chain_intact check on the stored log (no new materialization, so nothing is appended),
    against the heads the instance recorded."""
    anchors = store.recorded_audit_heads(instance, safety.VERDICTS_ASSET)
    return safety.check_audit_chain(store.read_audit(warehouse), anchors)


def metadata_of(result) -> dict:
    materialization = result.asset_materializations_for_node("safety_verdicts")[0]
    return {key: value.value for key, value in materialization.metadata.items()}


def checks_of(result) -> dict[str, bool]:
    return {evaluation.check_name: evaluation.passed for evaluation in result.get_asset_check_evaluations()}


def failure_message(result) -> str:
    """The whole error chain of the run's step failure (Dagster wraps the asset's exception)."""
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error, messages = failure.step_failure_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


def verdicts_by_tone(warehouse) -> dict[str, dict]:
    return {row["tone"]: row for row in warehouse.read_table("safety_verdicts").to_dict("records")}


def azure_resource(emulator, monkeypatch, **fields) -> AzureContentSafetyResource:
    monkeypatch.setenv(KEY_ENV, emulator.api_key)
    return AzureContentSafetyResource(
        endpoint=emulator.endpoint, auth="api_key", api_key_env=KEY_ENV, **{**FAST, **fields}
    )


def verdict(resource, text: str, thresholds=THRESHOLDS) -> tuple[str, list[str], dict]:
    outcome = resource.screen(text)
    decision, reasons = decide_outcome(outcome, thresholds)
    return decision, reasons, outcome.severities


# --- Severities, thresholds, configuration ------------------------------------------------------------------


def test_azure_categories_map_to_columns_on_the_eight_level_scale(content_safety_emulator, monkeypatch):
    emu = content_safety_emulator
    emu.trigger_words = {
        "storm": ("Violence", 3),
        "gale": ("Hate", 5),
        "drizzle": ("SelfHarm", 1),
        "fog": ("Sexual", 7),
    }
    outcome = azure_resource(emu, monkeypatch).screen("A storm, a gale, some drizzle and fog.")
    assert outcome.severities == {"violence": 3, "hate": 5, "self_harm": 1, "sexual": 7, "phishing": 0}  # odd kept
    assert outcome.complete and outcome.backend == "azure"
    sent = emu.requests[-1]
    assert sent.json["outputType"] == "EightSeverityLevels"
    assert sorted(sent.json["categories"]) == ["Hate", "SelfHarm", "Sexual", "Violence"]
    assert sent.auth_scheme == "ocp-apim-subscription-key"


def test_thresholds_are_per_category_and_inclusive(content_safety_emulator, monkeypatch):
    emu = content_safety_emulator
    emu.trigger_words = {"three": ("Violence", 3), "four": ("Violence", 4), "six": ("Violence", 6)}
    resource = azure_resource(emu, monkeypatch)
    assert verdict(resource, "three")[0] == "approved"
    assert verdict(resource, "four")[:2] == ("blocked", ["violence severity 4 >= 4"])
    relaxed = {**THRESHOLDS, "violence": 6}
    assert verdict(resource, "four", relaxed)[0] == "approved"
    assert verdict(resource, "six", relaxed)[:2] == ("blocked", ["violence severity 6 >= 6"])
    assert verdict(resource, "six", {**THRESHOLDS, "violence": 8})[0] == "approved"  # 8: category never blocks


def test_config_completes_thresholds_and_rejects_bad_ones(settings, tmp_path):
    config = settings_with(settings, tmp_path, thresholds={"violence": 6}).stage(SafetyConfig)
    assert config.thresholds == {"hate": 4, "violence": 6, "self_harm": 4, "sexual": 4, "phishing": 4}
    with pytest.raises(
        ConfigError,
        match=r"(?s)safety_thresholds.yaml.*thresholds: .*unknown safety threshold category .selfharm.",
    ):
        settings_with(settings, tmp_path, thresholds={"selfharm": 4}).stage(SafetyConfig)
    with pytest.raises(ConfigError, match=r"thresholds: .*must be an integer 0-8"):
        settings_with(settings, tmp_path, thresholds={"hate": 9}).stage(SafetyConfig)
    with pytest.raises(ConfigError, match="rewrite_atempts: unknown key"):
        settings_with(settings, tmp_path, rewrite_atempts=2).stage(SafetyConfig)


def test_backend_is_chosen_by_configuration(monkeypatch):
    monkeypatch.setenv("AZURE_CONTENT_SAFETY_ENDPOINT", "https://cs.example.cognitiveservices.azure.com")
    embedded = SafetyConfig(blocklist=["Contoso Outdoor"]).resource()
    assert isinstance(embedded, EmbeddedContentSafetyResource) and embedded.blocklist_terms == ["Contoso Outdoor"]
    azure = SafetyConfig(backend="azure", azure={"blocklist_names": ["brand"], "max_retries": 1}).resource()
    assert isinstance(azure, AzureContentSafetyResource)
    assert (azure.endpoint, azure.blocklist_names, azure.max_retries, azure.auth) == (
        "https://cs.example.cognitiveservices.azure.com",
        ["brand"],
        1,
        "managed_identity",
    )


def test_azure_configuration_errors_raise_and_name_the_setting(monkeypatch):
    monkeypatch.delenv("MISSING_KEY_VAR", raising=False)
    with pytest.raises(ContentSafetyConfigError, match="MISSING_KEY_VAR"):
        AzureContentSafetyResource(
            endpoint="https://x.example.com", auth="api_key", api_key_env="MISSING_KEY_VAR"
        ).screen("hello")
    with pytest.raises(ContentSafetyConfigError, match="azure.endpoint must use https"):
        AzureContentSafetyResource(endpoint="http://x.example.com", auth="api_key").screen("hello")


# --- Blocklists on both backends ----------------------------------------------------------------------------


def test_embedded_blocklist_matches_configured_terms_and_obfuscations():
    resource = EmbeddedContentSafetyResource(blocklist_terms=["Contoso Outdoor", "miracle cure"])
    decision, reasons, _ = verdict(resource, "Cheaper than C0NT0SO outdoor, and a miracle-cure for sore feet.")
    assert decision == "blocked" and reasons == ["blocklist: Contoso Outdoor", "blocklist: miracle cure"]
    assert verdict(resource, "Contoso Outdoorsy people love our tents.")[0] == "approved"


def test_azure_blocklist_uses_service_lists_and_configured_terms(content_safety_emulator, monkeypatch):
    emu = content_safety_emulator
    emu.add_blocklist("competitors", ["MegaMart"])
    resource = azure_resource(emu, monkeypatch, blocklist_names=["competitors"], blocklist_terms=["Contoso Outdoor"])
    outcome = resource.screen("Cheaper than megamart and Contoso Outdoor.")
    assert outcome.blocklist_hits == (
        "MegaMart",
        "Contoso Outdoor",
    )  # the service's match, then the local one
    assert emu.requests[-1].json["blocklistNames"] == ["competitors"]
    assert decide_outcome(outcome, THRESHOLDS) == (
        "blocked",
        ["blocklist: MegaMart", "blocklist: Contoso Outdoor"],
    )


def test_halting_at_a_service_blocklist_hit_blocks_and_says_why(content_safety_emulator, monkeypatch):
    emu = content_safety_emulator
    emu.add_blocklist("competitors", ["MegaMart"])
    resource = azure_resource(emu, monkeypatch, blocklist_names=["competitors"], halt_on_blocklist_hit=True)
    outcome = resource.screen("Cheaper than MegaMart.")
    assert outcome.severities == {"phishing": 0}  # the project's own check still ran
    assert outcome.blocklist_hits == ("MegaMart",)
    decision, reasons = decide_outcome(outcome, THRESHOLDS)
    assert decision == "blocked" and reasons == [
        "screening stopped at a blocklist hit (halt_on_blocklist_hit): categories not analysed",
        "blocklist: MegaMart",
    ]
    assert emu.requests[-1].json["haltOnBlocklistHit"] is True
    assert resource.screen("Fresh trail shoes.").complete  # no hit: analysed as usual


def test_configured_terms_sync_into_the_service_blocklist(content_safety_emulator, monkeypatch):
    emu = content_safety_emulator
    emu.add_blocklist("brand-safety", ["Old Rival"])
    monkeypatch.setenv(KEY_ENV, emu.api_key)
    config = SafetyConfig(
        blocklist=["Contoso Outdoor", "miracle cure"],
        azure={
            "endpoint": emu.endpoint,
            "auth": "api_key",
            "api_key_env": KEY_ENV,
            "sync_blocklist_name": "brand-safety",
            "blocklist_names": ["brand-safety"],
        },
    )
    report = sync_configured_blocklist(config)
    assert (report.added, report.removed) == (("Contoso Outdoor", "miracle cure"), ("Old Rival",))
    assert sorted(emu.blocklist_texts("brand-safety")) == ["Contoso Outdoor", "miracle cure"]
    assert sync_configured_blocklist(config).added == ()  # idempotent
    service_only = azure_resource(emu, monkeypatch, blocklist_names=["brand-safety"])  # no local terms
    assert service_only.screen("Try our miracle cure.").blocklist_hits == ("miracle cure",)


# --- Fail-closed: every way the service can break blocks the variant ---------------------------------------


@pytest.mark.parametrize(
    ("kind", "inject", "reason"),
    [
        ("429", {"retry_after": 0.01}, "HTTP 429 TooManyRequests after up to 2 retries"),
        ("500", {}, "HTTP 500 InternalServerError after up to 2 retries"),
        ("503", {}, "HTTP 503 ServiceUnavailable after up to 2 retries"),
        ("timeout", {"seconds": 1.0}, "gave no complete answer (timeout or dropped connection)"),
        ("truncated", {}, "answer could not be read (IncompleteReadError)"),
        ("truncated", {"full_length": False}, "answer could not be read (DecodeError)"),
        ("malformed", {}, "answer could not be read (DecodeError)"),
        ("wrong_schema", {}, "screening incomplete: Azure AI Content Safety answer lacks violence"),
        ("empty", {}, "answer lacks hate, violence, self_harm, sexual"),
    ],
)
def test_every_service_fault_blocks(content_safety_emulator, monkeypatch, kind, inject, reason):
    emu = content_safety_emulator
    emu.inject(kind, times=None, **inject)
    resource = azure_resource(emu, monkeypatch, timeout_seconds=0.3)
    outcome = resource.screen("A calm and friendly note about our spring sale.")
    decision, reasons = decide_outcome(outcome, THRESHOLDS)
    assert decision == "blocked" and not outcome.complete
    assert any(reason in r for r in reasons), reasons
    if kind in ("429", "500", "503", "timeout"):
        assert emu.request_count() == 3  # the first attempt and two retries


def test_a_passing_retry_after_429_is_approved_after_the_wait(content_safety_emulator, monkeypatch):
    emu = content_safety_emulator
    emu.inject("429", times=2, retry_after=0.2)
    started = time.perf_counter()
    decision, reasons, _ = verdict(azure_resource(emu, monkeypatch), "A friendly note.")
    assert (decision, reasons) == ("approved", [])
    assert time.perf_counter() - started >= 0.4  # Retry-After honoured twice
    assert [r.status for r in emu.requests] == [429, 429, 200]


def test_a_long_retry_after_is_capped(content_safety_emulator, monkeypatch):
    content_safety_emulator.inject("429", times=1, retry_after=30)
    started = time.perf_counter()
    outcome = azure_resource(content_safety_emulator, monkeypatch, retry_after_max_seconds=0.1).screen("Hi there.")
    assert outcome.complete and time.perf_counter() - started < 5


def test_long_text_is_screened_in_chunks_and_an_unsplittable_one_blocks(content_safety_emulator, monkeypatch):
    emu = content_safety_emulator
    resource = azure_resource(emu, monkeypatch)
    sentence = "Our spring collection has arrived with fresh colours for every trail. "
    long_text = sentence * 400 + "Then we attack."  # ~28,000 characters
    outcome = resource.screen(long_text)
    assert outcome.requests == 3 and all(len(r.json["text"]) <= 10_000 for r in emu.requests)
    assert outcome.severities["violence"] == 4  # found in the last chunk only
    assert decide_outcome(outcome, THRESHOLDS)[0] == "blocked"
    assert resource.screen(sentence * 400).complete

    emu.reset()
    decision, reasons, _ = verdict(resource, "Hello " + "x" * 10_001)
    assert decision == "blocked" and "text over the service limit" in reasons[0] and "10001 characters" in reasons[0]
    assert emu.request_count() == 0
    assert verdict(resource, "   ")[:2] == ("blocked", ["screening incomplete: the text is empty"])


# --- Azure authentication -----------------------------------------------------------------------------------


def test_managed_identity_token_over_tls_with_the_configured_ca_bundle(managed_identity, content_safety_emulator_tls):
    emu = content_safety_emulator_tls
    resource = AzureContentSafetyResource(endpoint=emu.endpoint, ca_bundle_path=emu.ca_bundle_path, **FAST)
    outcome = resource.screen("We will attack those prices.")
    assert outcome.severities["violence"] == 4 and outcome.complete
    request = emu.requests[-1]
    assert request.headers["authorization"] == f"Bearer {managed_identity.token}"
    assert managed_identity.requested_resources == ["https://cognitiveservices.azure.com"]
    untrusted = AzureContentSafetyResource(endpoint=emu.endpoint, **{**FAST, "max_retries": 0})
    assert "could not be reached" in untrusted.screen("hello").errors[0]  # no CA bundle: TLS refused, blocked


def test_concurrent_first_calls_share_one_managed_identity_token(managed_identity, content_safety_emulator_tls):
    # azure-core's sync bearer-token policy does not serialize token requests; our credential does, so the
    # identity endpoint (IMDS, which throttles) is asked once, however many screening calls start together.
    emu = content_safety_emulator_tls
    resource = AzureContentSafetyResource(endpoint=emu.endpoint, ca_bundle_path=emu.ca_bundle_path, **FAST)
    barrier = threading.Barrier(8)

    def screen(i: int):
        barrier.wait()
        return resource.screen(f"hello {i}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(screen, range(8)))
    assert all(outcome.complete for outcome in outcomes) and len(emu.requests) == 8
    assert managed_identity.requested_resources == ["https://cognitiveservices.azure.com"]


def test_a_key_the_service_refuses_stops_with_one_configuration_line_and_no_retries(
    content_safety_emulator, monkeypatch
):
    emu = content_safety_emulator
    resource = azure_resource(emu, monkeypatch)
    monkeypatch.setenv(KEY_ENV, "not-the-key")
    with pytest.raises(ContentSafetyConfigError) as refused:
        resource.screen("A friendly note about our spring sale.")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("Azure AI Content Safety refused the credentials (HTTP 401, not retried)")
    assert KEY_ENV in message
    assert "not-the-key" not in message  # the key itself is never repeated
    assert emu.request_count() == 1  # a 401 is not retried, and no retries are claimed


def test_an_identity_without_the_role_gets_403_naming_cognitive_services_user(
    managed_identity, content_safety_emulator_tls
):
    emu = content_safety_emulator_tls
    emu.bearer_role = None
    resource = AzureContentSafetyResource(endpoint=emu.endpoint, ca_bundle_path=emu.ca_bundle_path, **FAST)
    with pytest.raises(ContentSafetyConfigError) as refused:
        resource.screen("A friendly note about our spring sale.")
    message = str(refused.value)
    assert "HTTP 403 PermissionDenied, not retried" in message
    assert 'lacks the role "Cognitive Services User"' in message
    assert "safety_thresholds.yaml azure.managed_identity_client_id" in message
    assert emu.request_count() == 1


def test_refused_credentials_fail_the_run_instead_of_blocking_every_variant(
    instance, base_resources, warehouse, content_safety_emulator, monkeypatch
):
    write_inputs(warehouse, variant_rows())
    resource = azure_resource(content_safety_emulator, monkeypatch)
    monkeypatch.setenv(KEY_ENV, "not-the-key")
    result = run_safety(instance, base_resources, resource)
    assert not result.success
    assert "refused the credentials (HTTP 401, not retried)" in failure_message(result)
    assert not warehouse.table_exists("safety_verdicts")  # no "blocked" verdicts stored for a wrong key
    assert not warehouse.table_exists(store.AUDIT_TABLE)  # and nothing audited as a decision


def test_personalize_screen_reports_refused_credentials_on_one_line(
    content_safety_emulator, monkeypatch, capsys, tmp_path
):
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    data = yaml.safe_load((config / "safety_thresholds.yaml").read_text(encoding="utf-8"))
    data["backend"] = "azure"
    data["azure"].update(endpoint=content_safety_emulator.endpoint, auth="api_key", api_key_env=KEY_ENV)
    (config / "safety_thresholds.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setenv("PERSONALIZATION_CONFIG", str(config))
    monkeypatch.setenv(KEY_ENV, "not-the-key")
    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "Hello there"}\n'))
    assert main(["screen"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: Azure AI Content Safety refused the credentials (HTTP 401")


# --- The asset ----------------------------------------------------------------------------------------------


def test_idioms_pass_and_threats_are_blocked_through_the_asset(instance, base_resources, warehouse, tmp_path):
    base_resources["settings"] = settings_with(base_resources["settings"], tmp_path, rewrite_attempts=0)
    write_inputs(
        warehouse,
        variant_rows({"friendly": IDIOM, "urgent": THREAT, "informational": "Ask about Contoso Outdoor prices."}),
    )
    result = run_safety(instance, base_resources, EmbeddedContentSafetyResource(blocklist_terms=["Contoso Outdoor"]))
    assert result.success and checks_of(result) == dict.fromkeys(
        ["no_unsafe_variant_approved", "every_variant_screened", "audit_chain_intact"], True
    )
    verdicts = verdicts_by_tone(warehouse)
    assert verdicts["friendly"]["decision"] == "approved" and verdicts["friendly"]["violence"] < 4
    assert verdicts["urgent"]["decision"] == "blocked"
    assert json.loads(verdicts["urgent"]["reasons"]) == ["violence severity 6 >= 4"]
    assert verdicts["informational"]["decision"] == "blocked"
    assert json.loads(verdicts["informational"]["blocklist_hits"]) == ["Contoso Outdoor"]
    assert list(warehouse.read_table("safety_verdicts").columns) == flow.VERDICT_COLUMNS
    metadata = metadata_of(result)
    assert (metadata["approved"], metadata["blocked"], metadata["rewritten"]) == (1, 2, 0)
    assert "violence severity 6 >= 4" in metadata["blocked_reasons"]


def test_a_blocked_variant_is_rewritten_once_and_the_rewrite_is_screened(instance, base_resources, warehouse):
    write_inputs(warehouse, variant_rows({"urgent": THREAT}))
    result = run_safety(instance, base_resources, EmbeddedContentSafetyResource())
    assert result.success and all(checks_of(result).values())
    urgent = verdicts_by_tone(warehouse)["urgent"]
    assert (urgent["decision"], urgent["rewritten"], urgent["attempts"]) == ("approved", True, 2)
    assert urgent["source_variant_id"] == "v-urgent" and urgent["variant_id"] != "v-urgent"
    assert THREAT not in urgent["body"]
    # The stored rewrite passes generation's own format rules.
    documents = source_documents()
    found = resolve_citations(parse_citations(urgent["body"]), documents, json.loads(urgent["citations"]))
    assert check_variant(urgent["subject"], urgent["body"], found, FormatRules()) == []
    audit = store.read_audit(warehouse)
    assert len(audit) == 4  # three first screenings + the rewrite
    first, rewrite = audit.loc[audit["variant_id"] == "v-urgent"].iloc[0], audit.iloc[-1]
    assert (first["decision"], rewrite["decision"], rewrite["variant_id"]) == (
        "blocked",
        "approved",
        urgent["variant_id"],
    )
    assert rewrite["text_sha256"] == text_sha256(flow.screened_text(urgent["subject"], urgent["body"]))


def test_variants_that_still_fail_stay_blocked_and_the_segment_is_reported(
    instance, base_resources, warehouse, tmp_path
):
    # The sender's name is in every composed sign-off, so each rewrite hits the blocklist again.
    base_resources["settings"] = settings_with(
        base_resources["settings"], tmp_path, rewrite_attempts=2, blocklist=["Northwind"]
    )
    write_inputs(warehouse, variant_rows())
    result = run_safety(instance, base_resources, EmbeddedContentSafetyResource(blocklist_terms=["Northwind"]))
    assert result.success and all(checks_of(result).values())  # nothing unsafe was approved
    verdicts = warehouse.read_table("safety_verdicts")
    assert set(verdicts["decision"]) == {"blocked"} and set(verdicts["attempts"]) == {3}
    audit = store.read_audit(warehouse)
    assert len(audit) == 9 and set(audit["decision"]) == {"blocked"}  # every attempt audited
    metadata = metadata_of(result)
    assert metadata["all_variants_blocked"] is True and metadata["approved"] == 0
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.WARNING and "no approved variant" in entry.user_message
    ]
    assert len(warnings) == 1 and "segment 'at_risk': no approved variant (3 screened" in warnings[0]


def test_a_failed_rewrite_keeps_the_variant_blocked_with_the_reason(warehouse, settings, openai_emulator, monkeypatch):
    openai_emulator.inject("500", times=None)
    monkeypatch.setenv("TEST_LLM_KEY", openai_emulator.api_key)
    llm = OpenAICompatibleResource(
        base_url=openai_emulator.endpoint + "/v1",
        model="gpt-4o-mini",
        api_key_env="TEST_LLM_KEY",
        max_retries=0,
        timeout_seconds=5.0,
    )
    write_inputs(warehouse, variant_rows({"urgent": THREAT}))
    candidates = flow.candidates_from_variants(warehouse.read_table("message_variants"))
    logged: list[str] = []
    final, history = flow.screen_with_rewrites(
        EmbeddedContentSafetyResource(),
        candidates,
        THRESHOLDS,
        max_concurrency=6,
        rewrite_attempts=1,
        rewriter=lambda: flow.Rewriter(settings, llm, warehouse, SEGMENT),
        log=logged.append,
    )
    urgent = next(s for s in final if s.candidate.tone == "urgent")
    assert urgent.decision == "blocked" and urgent.candidate.attempt == 0 and len(history) == 3
    assert urgent.notes[0].startswith("rewrite failed: LLMServiceError") and "HTTP 500" in urgent.notes[0]
    assert logged == [f"tone 'urgent': {urgent.notes[0]}"]
    frame = flow.verdicts_frame(SEGMENT, final)
    stored = json.loads(frame.loc[frame["tone"] == "urgent", "reasons"].iloc[0])
    assert stored == ["violence severity 6 >= 4", urgent.notes[0]]
    assert openai_emulator.request_count() == 1


def test_without_generation_inputs_blocked_variants_stay_blocked(warehouse, settings):
    write_inputs(warehouse, variant_rows({"urgent": THREAT}))
    with warehouse.transaction() as connection:
        connection.execute("drop table content_index")
    candidates = flow.candidates_from_variants(warehouse.read_table("message_variants"))
    final, history = flow.screen_with_rewrites(
        EmbeddedContentSafetyResource(),
        candidates,
        THRESHOLDS,
        max_concurrency=6,
        rewrite_attempts=1,
        rewriter=lambda: flow.Rewriter(settings, EmbeddedComposerResource(), warehouse, SEGMENT),
    )
    urgent = next(s for s in final if s.candidate.tone == "urgent")
    assert urgent.decision == "blocked" and len(history) == 3
    assert urgent.notes[0].startswith("rewrite unavailable: SearchIndexMissingError: table 'content_index'")


def test_azure_backend_screens_a_partition_concurrently(
    instance, base_resources, warehouse, content_safety_emulator, monkeypatch
):
    emu = content_safety_emulator
    emu.latency_seconds = 0.7
    emu.trigger_words = {}  # its default words ("hate") occur in composed copy: no rewrite round here
    write_inputs(warehouse, variant_rows())
    result = run_safety(instance, base_resources, azure_resource(emu, monkeypatch))
    assert result.success and all(checks_of(result).values())
    metadata = metadata_of(result)
    print(f"3 variants x 2 texts, 0.7 s per answer: {metadata['screening_seconds']:.2f} s")
    # One wave of six parallel calls takes 0.7 s; one after another 4.2 s. The bound leaves room for a loaded
    # machine but fails at three waves (a pool of two).
    assert 0.7 <= metadata["screening_seconds"] < 2.1
    assert (metadata["approved"], metadata["service_requests"], emu.request_count()) == (3, 6, 6)
    assert set(warehouse.read_table("safety_verdicts")["backend"]) == {"azure"}


def test_an_unchanged_rerun_reuses_stored_outcomes_and_audits_each_decision(
    instance, base_resources, warehouse, content_safety_emulator, monkeypatch, settings, tmp_path
):
    emu = content_safety_emulator
    emu.trigger_words = {}
    write_inputs(warehouse, variant_rows())
    resource = azure_resource(emu, monkeypatch)
    assert run_safety(instance, base_resources, resource).success
    first = metadata_of(run_safety(instance, base_resources, resource))
    assert emu.request_count() == 6  # the second run sent nothing
    assert (first["service_requests"], first["cached_screenings"], first["approved"]) == (0, 3, 3)
    assert set(warehouse.read_table("safety_verdicts")["backend"]) == {"azure (cached)"}
    audit = store.read_audit(warehouse)
    assert list(audit["backend"]) == ["azure"] * 3 + ["azure (cached)"] * 3
    assert verify_audit_chain(audit).ok
    assert "body" not in warehouse.read_table(store.SCREEN_CACHE_TABLE).columns  # hashes, never the text

    # Decisions apply the current thresholds to the stored severities: no new call, and now blocked.
    strict = settings_with(settings, tmp_path, thresholds=dict.fromkeys(CATEGORIES, 0), rewrite_attempts=0)
    result = run_safety(instance, {**base_resources, "settings": strict}, resource)
    assert emu.request_count() == 6 and metadata_of(result)["cached_screenings"] == 3
    assert set(warehouse.read_table("safety_verdicts")["decision"]) == {"blocked"}

    # Other outcome settings (here a service blocklist) are a different key: screened again.
    emu.add_blocklist("brand", ["Contoso Outdoor"])
    run_safety(instance, base_resources, azure_resource(emu, monkeypatch, blocklist_names=["brand"]))
    assert emu.request_count() == 12


def test_failed_screenings_are_not_cached_and_the_embedded_screen_is_not_cached(
    instance, base_resources, warehouse, content_safety_emulator, monkeypatch
):
    emu = content_safety_emulator
    emu.trigger_words = {}
    emu.inject("503", times=None)
    write_inputs(warehouse, variant_rows())
    resource = azure_resource(emu, monkeypatch, max_retries=0)
    run_safety(instance, base_resources, resource)
    failed_calls = emu.request_count()
    emu.clear_faults()
    result = run_safety(instance, base_resources, resource)
    assert emu.request_count() == failed_calls + 6  # screened again after the outage
    assert metadata_of(result)["approved"] == 3

    assert run_safety(instance, base_resources, EmbeddedContentSafetyResource()).success
    assert set(warehouse.read_table("safety_verdicts")["backend"]) == {"embedded"}


def test_a_service_outage_blocks_every_variant_without_rewrites(
    instance, base_resources, warehouse, content_safety_emulator, monkeypatch
):
    content_safety_emulator.inject("503", times=None)
    write_inputs(warehouse, variant_rows())
    result = run_safety(instance, base_resources, azure_resource(content_safety_emulator, monkeypatch))
    assert result.success and all(checks_of(result).values())
    verdicts = warehouse.read_table("safety_verdicts")
    assert set(verdicts["decision"]) == {"blocked"} and set(verdicts["attempts"]) == {1}  # not rewritten
    assert verdicts[list(CATEGORIES)].isna().all().all()
    assert all("HTTP 503" in json.loads(reasons)[0] for reasons in verdicts["reasons"])


def test_one_failed_call_blocks_only_its_variant(
    instance, base_resources, warehouse, content_safety_emulator, monkeypatch
):
    # No trigger words: which call gets the fault depends on the pool's timing, so no other reason to block
    # may exist (the win-back copy says "we'd hate to lose you", a default trigger of the emulator).
    monkeypatch.setattr(content_safety_emulator, "trigger_words", {})
    content_safety_emulator.inject("500", times=1)
    write_inputs(warehouse, variant_rows())
    resource = azure_resource(content_safety_emulator, monkeypatch, max_retries=0)
    result = run_safety(instance, base_resources, resource)
    verdicts = warehouse.read_table("safety_verdicts")
    blocked = verdicts.loc[verdicts["decision"] == "blocked"]
    assert result.success
    assert len(blocked) == 1
    reasons = json.loads(blocked["reasons"].iloc[0])
    assert "HTTP 500" in reasons[0] and reasons[0].endswith(("(subject)", "(body)"))


# --- The gates, invoked directly ----------------------------------------------------------------------------


def stored_verdicts(warehouse, **overrides) -> pd.DataFrame:
    verdicts = warehouse.read_table("safety_verdicts")
    for column, value in overrides.items():
        verdicts[column] = verdicts[column].astype(object)
        verdicts.loc[0, column] = value
    return verdicts


def test_gates_fail_on_unsafe_approved_or_unscreened_variants(instance, base_resources, warehouse, settings):
    write_inputs(warehouse, variant_rows())
    assert run_safety(instance, base_resources, EmbeddedContentSafetyResource()).success
    variants = warehouse.read_table("message_variants")
    config, audit = settings.stage(SafetyConfig), store.read_audit(warehouse)

    def check(verdicts):
        return safety.check_no_unsafe_approved(verdicts, config, audit)

    assert check(stored_verdicts(warehouse)).passed
    assert not check(stored_verdicts(warehouse, violence=5)).passed
    assert not check(stored_verdicts(warehouse, phishing=4)).passed
    assert not check(stored_verdicts(warehouse, hate=None)).passed
    assert not check(stored_verdicts(warehouse, blocklist_hits='["x"]')).passed
    edited = stored_verdicts(warehouse, body=variant_rows()["body"][0] + " Now at Contoso Outdoor.")
    result = check(edited)  # a configured term, and a text that was never screened
    assert not result.passed
    assert "Contoso Outdoor" in result.metadata["failures"].value
    assert "no approved audit record" in result.metadata["failures"].value
    assert not check(stored_verdicts(warehouse, decision="maybe")).passed

    screened = safety.check_every_variant_screened
    assert screened(stored_verdicts(warehouse), variants).passed
    assert not screened(stored_verdicts(warehouse).iloc[1:], variants).passed
    assert not screened(stored_verdicts(warehouse, source_variant_id="v-other"), variants).passed
    rejected = variants.assign(status=["rejected", "valid", "valid"])
    assert not screened(stored_verdicts(warehouse), rejected).passed  # a verdict for a rejected variant


# --- The audit log ------------------------------------------------------------------------------------------


def test_audit_appends_on_rematerialization_and_the_chain_check_catches_tampering(instance, base_resources, warehouse):
    write_inputs(warehouse, variant_rows())
    resource = EmbeddedContentSafetyResource()
    assert run_safety(instance, base_resources, resource).success
    first = store.read_audit(warehouse)
    second_run = run_safety(instance, base_resources, resource)
    assert second_run.success and checks_of(second_run)["audit_chain_intact"]
    audit = store.read_audit(warehouse)
    assert len(audit) == 6 and list(audit["sequence"]) == list(range(6))
    pd.testing.assert_frame_equal(audit.iloc[:3].reset_index(drop=True), first)  # old records untouched
    assert audit["prev_hash"].iloc[3] == first["record_hash"].iloc[2]
    assert metadata_of(second_run)["audit_head_hash"] == audit["record_hash"].iloc[-1]
    assert (
        "subject" not in audit.columns
        and not audit.apply(lambda column: column.astype(str).str.contains("Northwind")).any().any()
    )  # hashes, not text

    with warehouse.transaction() as connection:
        connection.execute("update safety_audit set decision = 'blocked' where sequence = 1")
    evaluation = run_chain_check(instance, warehouse)
    assert not evaluation.passed and "field tampered" in evaluation.metadata["result"].value
    assert evaluation.metadata["first_bad_record"].value == audit["record_id"].iloc[1]

    with warehouse.transaction() as connection:  # put it back (the unique sequence wants the delete committed
        connection.execute("delete from safety_audit")  # first), then drop the newest run's records
    with warehouse.transaction() as connection:
        connection.register("originals", pa.Table.from_pandas(audit, preserve_index=False))
        connection.execute("insert into safety_audit by name select * from originals")
        connection.execute("delete from safety_audit where sequence >= 3")
    assert verify_audit_chain(store.read_audit(warehouse)).ok  # a shorter chain is still a valid chain ...
    evaluation = run_chain_check(instance, warehouse)
    assert not evaluation.passed  # ... but it no longer reaches the head kept in the materialization metadata
    assert evaluation.metadata["expected_head_sequence"].value == 5
    refused = run_safety(instance, base_resources, resource)  # and nothing is appended onto it
    assert not refused.success and len(store.read_audit(warehouse)) == 3
    assert "no longer holds the head recorded earlier (sequence 5" in failure_message(refused)


def append_from_process(path: str, worker: int, batches: int) -> None:
    """Append `batches` audit records one transaction at a time (run in a separate process)."""
    from resources.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(path=path)
    for batch in range(batches):
        record = {
            "record_id": f"w{worker}-b{batch}",
            "screened_at": pd.Timestamp.now(tz="UTC"),
            "run_id": f"run-{worker}",
            "segment": f"segment-{worker}",
            "variant_id": f"v-{batch}",
            "text_sha256": text_sha256(f"{worker}/{batch}"),
            "severities": dict.fromkeys(CATEGORIES, 0),
            "decision": "approved",
            "reasons": [],
            "backend": "embedded",
        }
        store.append_audit(warehouse, pd.DataFrame([record]))


@pytest.mark.slow  # two fresh interpreters import the pipeline (~3 s)
def test_partitions_appending_from_separate_processes_never_fork_the_chain(warehouse):
    # Each append reads the head and inserts in one transaction; DuckDB's single-writer lock serializes the
    # processes (and a lock per warehouse file the threads of one process).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        jobs = [pool.submit(append_from_process, warehouse.path, worker, 10) for worker in range(2)]
        with ThreadPoolExecutor(max_workers=2) as threads:  # and two threads of this process
            list(threads.map(lambda worker: append_from_process(warehouse.path, worker, 10), [2, 3]))
        for job in jobs:
            job.result()
    audit = store.read_audit(warehouse)
    assert len(audit) == 40 and list(audit["sequence"]) == list(range(40))
    assert audit["prev_hash"].is_unique and verify_audit_chain(audit).ok
    assert audit["run_id"].nunique() == 4


def audit_record(record_id: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "record_id": record_id,
                "screened_at": pd.Timestamp.now(tz="UTC"),
                "run_id": "run",
                "segment": "s",
                "variant_id": record_id,
                "text_sha256": text_sha256(record_id),
                "severities": dict.fromkeys(CATEGORIES, 0),
                "decision": "approved",
                "reasons": [],
                "backend": "embedded",
            }
        ]
    )


@pytest.fixture
def unshared_append_lock(monkeypatch):
    """Each append takes its own lock, as writers on separate machines sharing one (MotherDuck) database do."""
    monkeypatch.setattr(store, "_append_lock", lambda warehouse: threading.Lock())


def test_a_writer_that_loses_the_race_for_the_next_sequence_retries_on_the_new_head(
    warehouse, unshared_append_lock, monkeypatch
):
    store.append_audit(warehouse, audit_record("first"))
    real_chain = store.chain_audit_records
    calls = []

    def rival_commits_between_our_read_and_our_write(records, prev_hash, next_sequence):
        calls.append((records["record_id"].iloc[0], next_sequence))
        if len(calls) == 1:  # our transaction has read head 0: another writer appends sequence 1 and commits
            store.append_audit(warehouse, audit_record("rival"))
        return real_chain(records, prev_hash, next_sequence)

    monkeypatch.setattr(store, "chain_audit_records", rival_commits_between_our_read_and_our_write)
    appended = store.append_audit(warehouse, audit_record("ours"))

    assert calls == [("ours", 1), ("rival", 1), ("ours", 2)]  # ours lost sequence 1, then took 2
    audit = store.read_audit(warehouse)
    assert list(audit["record_id"]) == ["first", "rival", "ours"] and list(audit["sequence"]) == [0, 1, 2]
    assert verify_audit_chain(audit).ok and appended.head_sequence == 2
    assert appended.head_hash == audit["record_hash"].iloc[-1]


def test_concurrent_writers_without_a_shared_lock_keep_one_linear_chain(warehouse, unshared_append_lock):
    def append_many(worker: int) -> None:
        for batch in range(10):
            store.append_audit(warehouse, audit_record(f"w{worker}-{batch}"))

    with ThreadPoolExecutor(max_workers=4) as threads:
        list(threads.map(append_many, range(4)))
    audit = store.read_audit(warehouse)
    assert len(audit) == 40 and list(audit["sequence"]) == list(range(40))
    assert audit["prev_hash"].is_unique and verify_audit_chain(audit).ok


def test_a_forked_chain_is_refused_with_the_sequences_that_forked(warehouse):
    with warehouse.transaction() as connection:  # a chain forked before the unique sequence existed
        connection.execute(store.AUDIT_DDL)
        for record_id, sequence in (("a", 0), ("b", 1), ("c", 1)):
            chained = store.chain_audit_records(audit_record(record_id), "0" * 64, sequence)
            connection.register("forked", chained)
            connection.execute("insert into safety_audit by name select * from forked")
            connection.unregister("forked")
    with pytest.raises(store.AuditChainError, match="more than one record with sequence 1: the chain has forked"):
        store.append_audit(warehouse, audit_record("d"))
    assert len(store.read_audit(warehouse)) == 3  # nothing appended, nothing lost


# --- Customer fields quoted by personalized opening lines --------------------------------------------------


def write_customers(warehouse, locations: list[str]) -> None:
    """customers and customer_segments: one customer of SEGMENT per location (tier Gold), one elsewhere."""
    ids = [f"C{i:06d}" for i in range(len(locations) + 1)]
    customers = pd.DataFrame({"customer_id": ids, "tier": "Gold", "location": [*locations, "Elsewhere Town"]})
    members = pd.DataFrame({"customer_id": ids, "segment": [SEGMENT] * len(locations) + ["other"]})
    with warehouse.transaction() as connection:
        for name, frame in (("customers", customers), ("customer_segments", members)):
            connection.register("frame", frame)
            connection.execute(f"create or replace table main.{name} as select * from frame")
            connection.unregister("frame")


def test_the_safety_stage_screens_the_customer_fields_opening_lines_quote(instance, base_resources, warehouse):
    write_inputs(warehouse, variant_rows())
    write_customers(warehouse, ["Denver", "Kill All Immigrants", "Salt Lake City", "<b>Austin</b>"])
    result = run_safety(instance, base_resources, EmbeddedContentSafetyResource())
    assert result.success

    fields = warehouse.read_table("personal_field_verdicts").set_index("value")
    # Only values a line could quote (markup is never quoted), only this segment's customers.
    assert sorted(fields.index) == ["Denver", "Gold", "Kill All Immigrants", "Salt Lake City"]
    assert (fields["segment"] == SEGMENT).all()
    assert fields.at["Kill All Immigrants", "decision"] == "blocked"
    assert (fields.drop(index="Kill All Immigrants")["decision"] == "approved").all()
    info = metadata_of(result)
    assert (info["personal_field_values_screened"], info["personal_field_values_withheld"]) == (4, 1)

    # Audited like the variants: the values together, then each value of the blocked text alone.
    audit = store.read_audit(warehouse)
    fields_audit = audit[audit["variant_id"] == flow.PERSONAL_FIELDS_VARIANT]
    together = "Denver\nGold\nKill All Immigrants\nSalt Lake City"
    assert list(fields_audit["text_sha256"]) == [text_sha256(t) for t in [together, *together.split("\n")]]
    assert list(fields_audit["decision"]) == ["blocked", "approved", "approved", "blocked", "approved"]
    assert verify_audit_chain(audit).ok and len(audit) == 3 + 5

    # Re-materializing replaces the segment's field verdicts.
    write_customers(warehouse, ["Denver"])
    assert run_safety(instance, base_resources, EmbeddedContentSafetyResource()).success
    assert sorted(warehouse.read_table("personal_field_verdicts")["value"]) == ["Denver", "Gold"]


def test_customer_fields_are_withheld_when_screening_fails(
    instance, base_resources, warehouse, content_safety_emulator, monkeypatch
):
    write_inputs(warehouse, variant_rows())
    write_customers(warehouse, ["Denver", "Austin"])
    content_safety_emulator.inject("503", times=None)
    result = run_safety(instance, base_resources, azure_resource(content_safety_emulator, monkeypatch))
    assert result.success  # the gate fails closed: everything blocked, nothing lost
    fields = warehouse.read_table("personal_field_verdicts")
    assert sorted(fields["value"]) == ["Austin", "Denver", "Gold"] and (fields["decision"] == "blocked").all()
    assert all("HTTP 503" in reasons for reasons in fields["reasons"])


def test_many_field_values_go_to_the_screen_a_few_texts_at_a_time():
    values = [f"Town {i:04d}" for i in range(1_200)] + ["Kill All Immigrants"]
    screenings = flow.screen_personal_fields(values, EmbeddedContentSafetyResource(), THRESHOLDS)
    chunks = [s for s in screenings if len(s.values) > 1]
    assert len(chunks) == 3 and all(len(s.text) <= flow.PERSONAL_FIELDS_CHUNK_CHARS for s in chunks)
    assert sorted(v for s in chunks for v in s.values) == sorted(values)
    flagged = next(s for s in chunks if "Kill All Immigrants" in s.values)
    singles = [s for s in screenings if len(s.values) == 1]
    assert [s.values[0] for s in singles] == list(flagged.values)  # only the blocked text's values, alone
    verdicts = flow.field_verdicts(SEGMENT, screenings)
    assert len(verdicts) == len(values) and list(verdicts.loc[verdicts["decision"] == "blocked", "value"]) == [
        "Kill All Immigrants"
    ]
    assert flow.screen_personal_fields([], EmbeddedContentSafetyResource(), THRESHOLDS) == []


def test_audit_export_csv_reverifies_and_the_command_reports_the_chain(
    instance, base_resources, warehouse, tmp_path, capsys
):
    write_inputs(warehouse, variant_rows({"urgent": THREAT}))
    assert run_safety(instance, base_resources, EmbeddedContentSafetyResource()).success
    out = tmp_path / "exports" / "audit.csv"
    assert main(["audit-export", "--out", str(out), "--warehouse", warehouse.path]) == 0
    assert "wrote 4 audit records" in capsys.readouterr().out
    exported = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(exported.columns) == store.AUDIT_COLUMNS
    exported["sequence"] = exported["sequence"].astype(int)
    assert verify_audit_chain(exported, expected_head=store.read_audit(warehouse)["record_hash"].iloc[-1]).ok
    assert exported["screened_at"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z").all()

    with warehouse.transaction() as connection:
        connection.execute("update safety_audit set backend = 'forged' where sequence = 0")
    assert main(["audit-export", "--out", str(out), "--warehouse", warehouse.path]) == 1
    assert "chain BROKEN" in capsys.readouterr().out
    assert main(["audit-export", "--out", str(out), "--warehouse", str(tmp_path / "empty.duckdb")]) == 2


# --- `personalize screen` -----------------------------------------------------------------------------------


def test_screen_command_reads_json_lines_and_reports_bad_lines(monkeypatch, capsys):
    lines = [
        json.dumps({"id": "a", "text": IDIOM}),
        json.dumps({"text": THREAT}),
        "",
        "{not json",
        json.dumps({"txt": "no text key"}),
        json.dumps({"text": "Ask about Contoso Outdoor prices."}),
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["screen"]) == 1
    captured = capsys.readouterr()
    verdicts = [json.loads(line) for line in captured.out.splitlines()]
    assert [v["line"] for v in verdicts] == [1, 2, 4, 5, 6]
    idiom, threat, broken, keyless, blocklisted = verdicts
    assert (idiom["id"], idiom["decision"], idiom["reasons"], idiom["backend"]) == (
        "a",
        "approved",
        [],
        "embedded",
    )
    assert set(CATEGORIES) <= set(idiom)
    assert threat["decision"] == "blocked" and threat["violence"] == 6
    assert broken == {
        "line": 4,
        "error": "line 4: not valid JSON (Expecting property name enclosed in double quotes at column 2)",
    }
    assert keyless["error"].startswith('line 5: expected an object with a "text" string')
    assert blocklisted["blocklist_hits"] == ["Contoso Outdoor"]  # the shipped config's terms
    assert "2 input line(s) could not be screened" in captured.err


def test_screen_command_uses_the_configured_azure_backend(
    content_safety_emulator, monkeypatch, settings, tmp_path, capsys
):
    emu = content_safety_emulator
    monkeypatch.setenv(KEY_ENV, emu.api_key)
    configured = settings_with(
        settings,
        tmp_path,
        backend="azure",
        azure={
            "endpoint": emu.endpoint,
            "auth": "api_key",
            "api_key_env": KEY_ENV,
            "max_retries": 0,
        },
        max_concurrency=1,
    )  # one line after another, so the injected fault hits the first
    monkeypatch.setenv("PERSONALIZATION_CONFIG", configured.config_dir)
    copy = tmp_path / "copy.jsonl"
    texts = ("Fresh trail shoes.", "We hate waiting.", "Fresh trail shoes.")
    copy.write_text("\n".join(json.dumps({"text": text}) for text in texts), encoding="utf-8")
    emu.inject("503", times=1)  # the first answer fails: that line is blocked; the exit code stays 0
    assert main(["screen", str(copy)]) == 0
    verdicts = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {v["backend"] for v in verdicts} == {"azure"} and emu.request_count() == 3
    assert [v["decision"] for v in verdicts] == ["blocked", "blocked", "approved"]
    assert "HTTP 503" in verdicts[0]["reasons"][0] and verdicts[0]["hate"] is None
    assert verdicts[1]["reasons"] == ["hate severity 4 >= 4"]
