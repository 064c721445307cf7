"""Fault injection at the pipeline level: one segment's campaign runs on the Azure backends (real SDK clients,
configured through the stage YAML as in production) against the service emulators, on a warehouse that already
holds a good run, while the emulators answer with injected faults.

- Transient faults (429 with Retry-After, one 503) on every service are retried and the partition succeeds.
- Persistent faults (500 or timeouts forever) of search or the model fail the partition with a message naming
  the service and the status; every table the run did not finish writing keeps its earlier rows.
- Every kind of content-safety fault blocks every variant (fail-closed), with the reason recorded and audited.
- A process killed while writing a partition leaves the old rows; re-materializing recovers them exactly.
- Property: over seeded random screening answers and faults, `approved` implies a complete, below-threshold,
  blocklist-free screening.
In every case the audit log keeps its earlier records and its hash chain verifies.

Resource-level retry and fault tests are in test_safety.py, test_generation.py and test_retrieval.py;
warehouse-level kill and concurrency tests in test_reliability_warehouse.py.
"""

import json
import os
import random
import re
import signal
import time
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pytest
from dagster import DagsterInstance

from personalization_assets.config.retrieval import RetrievalConfig
from personalization_assets.lib.audit_chain import verify_audit_chain
from personalization_assets.lib.content import load_content_library
from personalization_assets.lib.safety import CATEGORIES, MAX_SEVERITY
from personalization_assets.store.safety import read_audit
from personalization_assets.workflows.safety import decide_outcome
from resources.content_safety import AZURE_CATEGORIES, AzureContentSafetyResource, merge_outcomes
from resources.warehouse import DuckDBWarehouse
from tests.emulators import ContentSafetyEmulator, OpenAIResponsesEmulator, SearchEmulator
from tests.emulators.composing_model import composing_responder
from tests.reliability.pipeline import (
    KEY_ENVS,
    PROJECT_ROOT,
    SEGMENT,
    changed_tables,
    config_copy,
    configured_resources,
    embedded_resources,
    emulator_config,
    failure_messages,
    materialized,
    prepared_run,
    run_job,
    sample_settings,
    snapshot,
)

SEARCH_QUERY = "search.post.search"
TONES = 3  # variants per partition (config/generation.yaml tones)
FIELD_TEXTS = 1  # screenings of the partition's customer field values (one text for the sample data)


@dataclass
class Services:
    search: SearchEmulator
    openai: OpenAIResponsesEmulator
    content_safety: ContentSafetyEmulator

    def all(self):
        return (self.search, self.openai, self.content_safety)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepared_run(tmp_path_factory)


@pytest.fixture(scope="module")
def services():
    """The three emulators for the module (the index is uploaded once), their keys in the environment."""
    with (
        SearchEmulator() as search,
        OpenAIResponsesEmulator(responder=composing_responder) as openai,
        ContentSafetyEmulator(trigger_words={}) as content_safety,  # the sample copy is safe: approved
        pytest.MonkeyPatch.context() as patch,
    ):
        running = Services(search, openai, content_safety)
        for service, emulator in zip(KEY_ENVS, running.all(), strict=True):
            patch.setenv(KEY_ENVS[service], emulator.api_key)
        retrieval = RetrievalConfig.model_validate(emulator_config(search=search)[RetrievalConfig.FILENAME])
        retrieval.azure.upload_documents(load_content_library(PROJECT_ROOT / "data" / "content"))
        yield running


@dataclass
class Case:
    warehouse: DuckDBWarehouse
    resources: dict
    instance: DagsterInstance
    before: dict
    audit_before: pd.DataFrame
    starts: dict  # request-log length of each emulator before the run

    def new_requests(self, emulator, path_contains: str | None = None):
        return [
            r
            for r in emulator.requests[self.starts[id(emulator)] :]
            if path_contains is None or path_contains in r.path
        ]


@pytest.fixture
def make_case(prepared, services, tmp_path):
    """A copy of the good run with the Azure backends configured for the emulators, faults cleared."""
    instances = []

    def make(timeout_seconds: float = 2.0) -> Case:
        for emulator in services.all():
            emulator.clear_faults()
        warehouse = prepared.copy_to(tmp_path / "warehouse")
        edits = emulator_config(services.search, services.openai, services.content_safety, timeout_seconds)
        settings = sample_settings(tmp_path, config_dir=str(config_copy(tmp_path, edits)))
        instance = prepared.instance()
        instances.append(instance)
        return Case(
            warehouse,
            configured_resources(settings, warehouse),
            instance,
            snapshot(warehouse.path),
            read_audit(warehouse),
            {id(emulator): len(emulator.requests) for emulator in services.all()},
        )

    yield make
    for instance in instances:
        instance.dispose()


def assert_audit_appended(case: Case, appended: int) -> pd.DataFrame:
    """The earlier records are untouched, `appended` were added after them, and the whole chain verifies."""
    audit = read_audit(case.warehouse)
    assert len(audit) == len(case.audit_before) + appended
    pd.testing.assert_frame_equal(audit.iloc[: len(case.audit_before)].reset_index(drop=True), case.audit_before)
    verification = verify_audit_chain(audit)
    assert verification.ok, verification.message
    return audit.iloc[len(case.audit_before) :]


def checks_passed(result) -> dict[str, bool]:
    return {evaluation.check_name: evaluation.passed for evaluation in result.get_asset_check_evaluations()}


# --- Transient faults: retried, the partition succeeds ------------------------------------------------------


@pytest.mark.parametrize(("kind", "retry_after"), [("429", 0.3), ("503", 0.0)])
def test_transient_faults_of_every_service_are_retried_and_the_partition_succeeds(
    make_case, services, kind, retry_after
):
    case = make_case()
    services.search.inject(kind, times=1, retry_after=retry_after, path_contains=SEARCH_QUERY)
    services.openai.inject(kind, times=1, retry_after=retry_after)
    services.content_safety.inject(kind, times=1, retry_after=retry_after)

    started = time.perf_counter()
    result = run_job(case.resources, case.instance)
    assert result.success, failure_messages(result)
    # Each service waited out its Retry-After (search, model and safety run one after another).
    assert time.perf_counter() - started >= 3 * retry_after

    queries = case.new_requests(services.search, SEARCH_QUERY)
    assert [(r.fault, r.status) for r in queries] == [(kind, int(kind)), (None, 200)]
    assert queries[0].json == queries[1].json  # the same query, sent again
    # Screening: subject and body of each variant, and one text of the segment's customer field values.
    for emulator, calls in ((services.openai, TONES), (services.content_safety, 2 * TONES + FIELD_TEXTS)):
        requests = case.new_requests(emulator)
        faulted = [r for r in requests if r.fault]
        assert [r.fault for r in faulted] == [kind] and len(requests) == calls + 1
        assert any(r.json == faulted[0].json and r.status == 200 for r in requests)  # retried, then answered

    assert all(checks_passed(result).values()), checks_passed(result)
    verdicts = case.warehouse.read_table("safety_verdicts")
    assert list(verdicts["decision"]) == ["approved"] * TONES and set(verdicts["backend"]) == {"azure"}
    assert set(case.warehouse.read_table("message_variants")["backend"]) == {"azure"}
    assert_audit_appended(case, appended=TONES + FIELD_TEXTS)


# --- Persistent faults: the partition fails clearly, earlier rows stay --------------------------------------


SEARCH_FAILED = r"Azure AI Search query failed for index 'approved-content' at {endpoint}"
MODEL_GAVE_UP = r"azure model 'gpt-4o-mini' at {endpoint}: gave up after 3 attempt\(s\)"
PERSISTENT_FAULTS = {  # emulator, fault, the asset that fails, what its message says (service, where, status)
    "search-500": (
        "search",
        "500",
        "retrieved_content",
        SEARCH_FAILED + r" \(HTTP 500\) after up to 2 retries",
    ),
    "search-timeout": (
        "search",
        "timeout",
        "retrieved_content",
        SEARCH_FAILED + r" after up to 2 retries: ServiceResponse\w*Error: .*[Rr]ead timed out",
    ),
    "model-500": ("openai", "500", "message_variants", MODEL_GAVE_UP + r": HTTP 500: Emulated 500 fault"),
    "model-timeout": ("openai", "timeout", "message_variants", MODEL_GAVE_UP + r": the request timed out"),
}


@pytest.mark.parametrize("name", PERSISTENT_FAULTS)
def test_persistent_faults_fail_the_partition_clearly_and_keep_earlier_rows(make_case, services, name):
    service, kind, failed_asset, expected = PERSISTENT_FAULTS[name]
    case = make_case(timeout_seconds=0.3)
    emulator = getattr(services, service)
    emulator.inject(kind, times=None, seconds=1.0, path_contains=SEARCH_QUERY if service == "search" else None)

    result = run_job(case.resources, case.instance)
    assert not result.success
    message = failure_messages(result)
    assert re.search(expected.format(endpoint=re.escape(emulator.endpoint)), message), message
    assert f"segment '{SEGMENT}'" in message
    assert len(case.new_requests(emulator, SEARCH_QUERY if service == "search" else None)) >= 3  # retried

    written = materialized(result)
    assert failed_asset not in written
    # Only assets that finished before the failure were replaced; every other table holds its earlier rows.
    assert set(changed_tables(case.before, snapshot(case.warehouse.path))) <= {f"main.{asset}" for asset in written}
    assert_audit_appended(case, appended=0)


# --- Safety faults: every kind blocks every variant, audited ------------------------------------------------

SAFETY_FAULTS = {
    "429": ({"retry_after": 0.05}, "HTTP 429 TooManyRequests after up to 2 retries"),
    "500": ({}, "HTTP 500 InternalServerError after up to 2 retries"),
    "503": ({}, "HTTP 503 ServiceUnavailable after up to 2 retries"),
    "timeout": ({"seconds": 1.0}, "gave no complete answer (timeout or dropped connection)"),
    "slow": ({"seconds": 1.0}, "gave no complete answer (timeout or dropped connection)"),
    "truncated": ({}, "answer could not be read"),
    "malformed": ({}, "answer could not be read (DecodeError)"),
    "wrong_schema": ({}, "Azure AI Content Safety answer lacks violence"),
    "empty": ({}, "Azure AI Content Safety answer lacks hate, violence, self_harm, sexual"),
}


@pytest.mark.parametrize("kind", SAFETY_FAULTS)
def test_every_safety_fault_blocks_every_variant_and_is_audited(make_case, services, kind):
    case = make_case(timeout_seconds=0.3)
    fault, reason = SAFETY_FAULTS[kind]
    services.content_safety.inject(kind, times=None, **fault)

    result = run_job(case.resources, case.instance, assets=["safety_verdicts"])
    assert result.success, failure_messages(result)  # fail-closed: a verdict, not a crash
    calls = case.new_requests(services.content_safety)
    assert len(calls) >= 2 * TONES and {call.fault for call in calls} == {kind}  # every call met the fault
    assert checks_passed(result) == dict.fromkeys(
        ["no_unsafe_variant_approved", "every_variant_screened", "audit_chain_intact"], True
    )
    verdicts = case.warehouse.read_table("safety_verdicts")
    assert list(verdicts["decision"]) == ["blocked"] * TONES
    assert not verdicts["rewritten"].any()  # a broken service is not fixed by rewriting the text
    for reasons in verdicts["reasons"].map(json.loads):
        assert any(reason in line for line in reasons), reasons
    assert verdicts["violence"].isna().all()  # never a made-up severity for what was not screened

    audited = assert_audit_appended(case, appended=TONES + FIELD_TEXTS)
    assert list(audited["decision"]) == ["blocked"] * (TONES + FIELD_TEXTS)  # the field values too
    fields = case.warehouse.read_table("personal_field_verdicts", "where segment = ?", [SEGMENT])
    assert len(fields) > 0 and (fields["decision"] == "blocked").all()  # withheld from every opening line
    assert all(any(reason in line for line in json.loads(r)) for r in audited["reasons"])
    metadata = result.asset_materializations_for_node("safety_verdicts")[0].metadata
    assert metadata["approved"].value == 0 and metadata["all_variants_blocked"].value is True


def test_a_safety_outage_reaches_no_customer(make_case, services):
    """Downstream of an outage: every customer of the segment is in control and no message is prepared."""
    case = make_case(timeout_seconds=0.3)
    services.content_safety.inject("503", times=None)
    downstream = [
        "safety_verdicts",
        "assignments",
        "engagement",
        "experiment_metrics",
        "personalized_messages",
    ]
    result = run_job(case.resources, case.instance, assets=downstream)
    assert result.success, failure_messages(result)
    assignments = case.warehouse.read_table("assignments", "where segment = ?", [SEGMENT])
    assert len(assignments) > 0 and set(assignments["arm"]) == {"control"}
    assert assignments["variant_id"].isna().all()
    assert case.warehouse.read_table("personalized_messages", "where segment = ?", [SEGMENT]).empty
    assert set(case.warehouse.read_table("experiment_metrics", "where segment = ?", [SEGMENT])["arm"]) <= {"control"}
    assert_audit_appended(case, appended=TONES + FIELD_TEXTS)


# --- A process killed in the middle of a partition write ----------------------------------------------------


def die_in_the_middle_of_the_verdicts_write(original):
    """handle_output that deletes nothing more, inserts one row of the new partition and SIGKILLs itself."""

    def handle_output(self, context, table_slice, obj, connection):
        if table_slice.table != "safety_verdicts":
            return original(self, context, table_slice, obj, connection)
        part = pa.Table.from_pandas(obj.head(1), preserve_index=False)  # noqa: F841 - read by DuckDB by name
        connection.execute(f"insert into {table_slice.schema}.{table_slice.table} by name select * from part")
        os.kill(os.getpid(), signal.SIGKILL)

    return handle_output


def test_a_process_killed_mid_partition_leaves_the_warehouse_consistent(prepared, tmp_path):
    warehouse = prepared.copy_to(tmp_path / "warehouse")
    resources = embedded_resources(sample_settings(tmp_path), warehouse)
    before = snapshot(warehouse.path)
    verdicts_before = warehouse.read_table("safety_verdicts")
    audit_before = read_audit(warehouse)

    pid = os.fork()  # the child inherits the imported pipeline: no second interpreter start-up
    if pid == 0:
        try:
            import resources.warehouse as storage

            handler = storage._PandasByNameTypeHandler
            handler.handle_output = die_in_the_middle_of_the_verdicts_write(handler.handle_output)
            with prepared.instance() as instance:
                run_job(resources, instance, assets=["safety_verdicts"])
        finally:
            os._exit(3)  # reached only if the kill did not happen
    deadline = time.monotonic() + 120
    while (waited := os.waitpid(pid, os.WNOHANG)) == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    if waited == (0, 0):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the child run neither finished nor was killed within 120 s")
    assert os.WIFSIGNALED(waited[1]) and os.WTERMSIG(waited[1]) == signal.SIGKILL, waited

    # The open transaction died with the process: the old verdicts, no half partition. The audit records of
    # the screening (committed before the write) stay, and the chain verifies.
    after_kill = snapshot(warehouse.path)
    # The field verdicts are committed with the audit, before the verdicts write.
    assert changed_tables(before, after_kill) == ["main.personal_field_verdicts", "main.safety_audit"]
    pd.testing.assert_frame_equal(warehouse.read_table("safety_verdicts"), verdicts_before)
    killed_run_audit = read_audit(warehouse)
    assert len(killed_run_audit) == len(audit_before) + TONES + FIELD_TEXTS
    assert verify_audit_chain(killed_run_audit).ok

    with prepared.instance() as instance:
        result = run_job(resources, instance, assets=["safety_verdicts"])
    assert result.success and all(checks_passed(result).values())
    verdicts = warehouse.read_table("safety_verdicts")
    assert len(verdicts) == len(verdicts_before) and verdicts["source_variant_id"].is_unique  # none lost, none doubled
    assert sorted(verdicts["tone"]) == sorted(verdicts_before["tone"])
    audit = read_audit(warehouse)
    pd.testing.assert_frame_equal(audit.iloc[: len(killed_run_audit)].reset_index(drop=True), killed_run_audit)
    assert len(audit) == len(killed_run_audit) + TONES + FIELD_TEXTS and verify_audit_chain(audit).ok


# --- Property: approved implies complete, below threshold, no blocklist hit ---------------------------------

AZURE_NAMES = list(AZURE_CATEGORIES)
INVALID_SEVERITIES = [8, -1, None, "3", 2.5, True]
LOCAL_TERM = "Contoso Outdoor"
SERVICE_TERM = "MegaMart"
DEFECTS = ["none"] * 14 + ["drop", "invalid", "high", "extra", "repeated", "match", "match_without_text"]
PROPERTY_FAULTS = ["429", "500", "503", "timeout", "truncated", "malformed", "wrong_schema", "empty"]


class ScriptedContentSafety(ContentSafetyEmulator):
    """text:analyze answers whatever is scripted for the text (any shape), after the usual auth and faults."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.answers: dict[str, dict] = {}

    def _analyze(self, body):
        return self.answers[body["text"]]


def random_answer(rng: random.Random) -> dict:
    """A well-formed mild answer, or one with a single defect: a category left out, an invalid or high
    severity, an extra or repeated category, a blocklist match, or a match without its text."""
    analysis = [{"category": name, "severity": rng.randint(0, 3)} for name in AZURE_NAMES]
    matches = []
    defect, target = rng.choice(DEFECTS), rng.randrange(len(AZURE_NAMES))
    if defect == "drop":
        del analysis[target]
    elif defect == "invalid":
        analysis[target]["severity"] = rng.choice(INVALID_SEVERITIES)
    elif defect == "high":
        analysis[target]["severity"] = rng.randint(4, MAX_SEVERITY)
    elif defect == "extra":
        analysis.append({"category": "Profanity", "severity": MAX_SEVERITY})  # not asked for: ignored
    elif defect == "repeated":
        analysis.append({"category": AZURE_NAMES[target], "severity": rng.randint(0, MAX_SEVERITY)})
    elif defect == "match":
        matches.append({"blocklistName": "brand", "blocklistItemId": "1", "blocklistItemText": SERVICE_TERM})
    elif defect == "match_without_text":
        matches.append({"blocklistName": "brand"})
    rng.shuffle(analysis)
    return {"blocklistsMatch": matches, "categoriesAnalysis": analysis}


def truly_safe(answer: dict, text: str, thresholds: dict[str, int]) -> bool:
    """What the scripted service meant: every category with a valid severity below its threshold, no match."""
    severities: dict[str, list] = {}
    for item in answer["categoriesAnalysis"]:
        if item["category"] in AZURE_CATEGORIES:
            severities.setdefault(AZURE_CATEGORIES[item["category"]], []).append(item["severity"])
    valid = all(type(value) is int and 0 <= value <= MAX_SEVERITY for values in severities.values() for value in values)
    return (
        valid
        and set(severities) == set(CATEGORIES)
        and all(max(severities[c]) < thresholds[c] for c in CATEGORIES)
        and not answer["blocklistsMatch"]
        and LOCAL_TERM not in text
    )


def test_approved_always_means_fully_screened_below_threshold_and_no_blocklist_hit():
    rng = random.Random(20261125)
    outcomes = {"approved": 0, "blocked": 0, "faulted": 0}
    with ScriptedContentSafety() as emulator:
        for number in range(50):
            emulator.clear_faults()
            subject = f"Case {number}: fresh trail picks" + (f" from {LOCAL_TERM}" if rng.random() < 0.25 else "")
            body = f"Case {number}: our spring collection is here for every trail."
            answers = {subject: random_answer(rng), body: random_answer(rng)}
            emulator.answers.update(answers)
            thresholds = {c: 4 if rng.random() < 0.8 else rng.randint(0, MAX_SEVERITY + 1) for c in CATEGORIES}
            kind = None if rng.random() < 0.65 else rng.choice(PROPERTY_FAULTS)
            if kind:
                emulator.inject(kind, times=rng.choice([1, 2, 3, None]), retry_after=0.01, seconds=0.1)
            resource = AzureContentSafetyResource(
                endpoint=emulator.endpoint,
                auth="api_key",
                api_key_env="PROPERTY_TEST_KEY",
                blocklist_terms=[LOCAL_TERM],
                blocklist_names=["brand"],
                max_retries=rng.choice([0, 1, 2]),
                retry_backoff_seconds=0.001,
                retry_after_max_seconds=0.01,
                timeout_seconds=0.05 if kind == "timeout" else 5.0,
            )
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("PROPERTY_TEST_KEY", emulator.api_key)
                outcome = merge_outcomes([resource.screen(subject), resource.screen(body)], ["subject", "body"])
            decision, reasons = decide_outcome(outcome, thresholds)

            described = f"case {number}: {kind=}, {thresholds=}, {answers=}, {outcome=}, {reasons=}"
            if decision == "approved":
                assert outcome.complete and not outcome.errors and not outcome.blocklist_hits, described
                assert all(
                    type(outcome.severities[c]) is int and 0 <= outcome.severities[c] < thresholds[c]
                    for c in CATEGORIES
                ), described
                assert all(truly_safe(answers[t], t, thresholds) for t in (subject, body)), described
            else:
                assert decision == "blocked" and reasons, described
            if kind is None and all(truly_safe(answers[t], t, thresholds) for t in (subject, body)):
                assert decision == "approved", described  # the gate is not simply closed
            outcomes[decision] += 1
            outcomes["faulted"] += kind is not None
    assert min(outcomes.values()) >= 5, outcomes  # the random cases reach both decisions, with and without faults
