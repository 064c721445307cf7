"""The LLM second opinion on variant texts the screen approved near a threshold (issue 18).

The LLM is the real openai SDK (OpenAICompatibleResource / AzureOpenAIResource) talking to the Responses API
emulator on 127.0.0.1; the screen is the real embedded screen. Nothing of the project is mocked.
"""

import json
from datetime import UTC, datetime

import pytest

from personalization_assets.config import ConfigError
from personalization_assets.config.safety import SafetyConfig
from personalization_assets.lib.safety import CONCERNS
from personalization_assets.store import safety as store
from personalization_assets.workflows import safety as flow
from resources.content_safety import (
    SECOND_OPINION_INSTRUCTIONS,
    SECOND_OPINION_SCHEMA_NAME,
    EmbeddedContentSafetyResource,
    LLMSecondOpinionResource,
    ScreenOutcome,
    parse_second_opinion,
)
from resources.llm import AzureOpenAIResource, EmbeddedComposerResource, OpenAICompatibleResource
from tests.emulators.composing_model import composing_responder
from tests.emulators.openai_responses import (
    Incomplete,
    OpenAIResponsesEmulator,
    PromptFiltered,
    Refusal,
    last_user_text,
)
from tests.test_safety import (
    azure_resource,
    checks_of,
    failure_message,
    metadata_of,
    run_safety,
    settings_with,
    variant_rows,
    verdicts_by_tone,
    write_inputs,
)

KEY_ENV = "TEST_SECOND_OPINION_KEY"
# The embedded screen scores this just under a violence threshold (3 today; the tests set the threshold one
# above whatever it scores, so they hold if the screen is retuned).
NEAR = "This drill will murder any wall."
ZEROS = {"hate": 0, "violence": 0, "self_harm": 0, "sexual": 0, "phishing": False}


def opinion(**changes) -> str:
    return json.dumps({**ZEROS, **changes})


def is_second_opinion(body: dict) -> bool:
    return body.get("instructions") == SECOND_OPINION_INSTRUCTIONS


def second_opinion_requests(emulator) -> list[dict]:
    return [r.json for r in emulator.requests if isinstance(r.json, dict) and is_second_opinion(r.json)]


def responder_for(answers: dict[str, object], default: object = None):
    """Second-opinion requests get the answer of the first marker their email contains (else `default`, else
    all zeros); generation requests (rewrites) get the composer's message."""

    def respond(body: dict):
        if not is_second_opinion(body):
            return composing_responder(body)
        email = last_user_text(body)
        for marker, answer in answers.items():
            if marker in email:
                if isinstance(answer, Exception):
                    raise answer
                return answer
        return default if default is not None else opinion()

    return respond


def compatible_llm(emulator, monkeypatch, **fields) -> OpenAICompatibleResource:
    monkeypatch.setenv(KEY_ENV, emulator.api_key)
    return OpenAICompatibleResource(
        base_url=emulator.endpoint + "/v1",
        model="gpt-4o-mini",
        api_key_env=KEY_ENV,
        **{"structured_output": True, "max_retries": 0, "timeout_seconds": 5.0, **fields},
    )


def azure_llm(emulator, monkeypatch) -> AzureOpenAIResource:
    monkeypatch.setenv(KEY_ENV, emulator.api_key)
    return AzureOpenAIResource(
        endpoint=emulator.endpoint,
        deployment="gpt-4o-mini",
        auth="api_key",
        api_key_env=KEY_ENV,
        max_retries=0,
        timeout_seconds=5.0,
    )


def near_violence() -> int:
    """What the embedded screen gives NEAR for violence (must be a signal, so a threshold can sit above it)."""
    severity = EmbeddedContentSafetyResource().screen(NEAR).severities["violence"]
    assert severity >= 1, f"the embedded screen no longer scores {NEAR!r} for violence: pick another text"
    return severity


def opinion_settings(
    base_resources, tmp_path, *, enabled=True, margin=1, model_margin=0.0, rewrite_attempts=0, **changes
):
    """Second opinion on near severities only (model_margin 0): which plain variants the model scores close to
    its boundary depends on the shipped weights; that route has its own tests below."""
    thresholds = {**dict.fromkeys(CONCERNS, 4), "violence": near_violence() + 1}
    return settings_with(
        base_resources["settings"],
        tmp_path,
        thresholds=thresholds,
        rewrite_attempts=rewrite_attempts,
        second_opinion={"enabled": enabled, "margin": margin, "model_margin": model_margin},
        **changes,
    )


# --- The answer and when a text is near a threshold -------------------------------------------------------------


def test_a_strict_json_answer_is_read_and_anything_else_is_an_error():
    assert parse_second_opinion(opinion(violence=5, phishing=True)) == (
        {"hate": 0, "violence": 5, "self_harm": 0, "sexual": 0, "phishing": 6},
        (),
    )
    assert parse_second_opinion("```json\n" + opinion(hate=2) + "\n```")[0]["hate"] == 2  # local models fence it
    for answer, reason in [
        ("Looks fine to me.", "the answer is not valid JSON ('Looks fine to me.')"),
        ("", "the answer is empty"),
        ("[0, 0, 0, 0]", "the answer is not a JSON object (list)"),
        ('{"hate": 0, "violence": 1}', "the answer lacks self_harm, sexual, phishing"),
        (opinion(violence=9), "the answer's violence 9 is not an integer 0-7"),
        (opinion(sexual=True), "the answer's sexual True is not an integer 0-7"),
        (opinion(hate="2"), "the answer's hate '2' is not an integer 0-7"),
        (opinion(phishing="no"), "the answer's phishing 'no' is not true or false"),
    ]:
        severities, errors = parse_second_opinion(answer)
        assert errors == (f"LLM second opinion unavailable: {reason}",), answer
    # A partial answer keeps what it did say: it can only make the verdict stricter.
    assert parse_second_opinion('{"hate": 0, "violence": 6}')[0] == {"hate": 0, "violence": 6}


def test_near_means_within_margin_below_the_threshold():
    thresholds = {**dict.fromkeys(CONCERNS, 4), "sexual": 8}
    severities = {"hate": 3, "violence": 2, "self_harm": 4, "sexual": 7, "phishing": 0}
    assert flow.near_threshold(severities, thresholds, 1) == ["hate"]  # self_harm 4 is over, not near
    assert flow.near_threshold(severities, thresholds, 2) == ["hate", "violence"]
    assert flow.near_threshold(severities, thresholds, 4) == ["hate", "violence", "phishing"]
    # A threshold above the scale (8: never blocks) has nothing near it.
    assert "sexual" not in flow.near_threshold(severities, thresholds, 7)


def screening(severities: dict[str, int]) -> flow.Screening:
    candidate = flow.Candidate("v", "v", "friendly", "Subject", "Body", "[]")
    outcome = ScreenOutcome(severities, backend="embedded")
    decision, reasons = flow.decide_outcome(outcome, dict.fromkeys(CONCERNS, 4))
    return flow.Screening(candidate, outcome, decision, tuple(reasons), datetime.now(UTC))


def test_the_second_opinion_only_makes_a_verdict_stricter():
    thresholds = dict.fromkeys(CONCERNS, 4)
    screened = screening({**dict.fromkeys(CONCERNS, 0), "violence": 3})
    lower = ScreenOutcome(dict.fromkeys(CONCERNS, 0), backend="LLM second opinion (x y)")
    kept = flow.with_second_opinion(screened, lower, thresholds)
    assert (kept.decision, kept.outcome.severities["violence"]) == ("approved", 3)  # never lowered
    higher = ScreenOutcome({**dict.fromkeys(CONCERNS, 0), "hate": 5}, backend="LLM second opinion (x y)")
    blocked = flow.with_second_opinion(screened, higher, thresholds)
    assert blocked.decision == "blocked"
    assert blocked.reasons == ("LLM second opinion: hate severity 5 >= 4",)
    assert (blocked.outcome.severities["hate"], blocked.outcome.severities["violence"]) == (5, 3)
    assert blocked.rewritable  # blocked for its content: a rewrite may fix it
    assert blocked.backend == "embedded + LLM second opinion (x y)"


# --- Configuration -------------------------------------------------------------------------------------------------


def test_the_second_opinion_is_off_by_default_and_its_keys_are_validated(settings, tmp_path):
    assert SafetyConfig().second_opinion.enabled is False
    assert settings.stage(SafetyConfig).second_opinion.enabled is False  # the shipped file
    assert settings.stage(SafetyConfig).second_opinion_resource(EmbeddedComposerResource()) is None
    for value, problem in [
        ({"enabled": True, "margn": 1}, "second_opinion.margn: unknown key"),
        ({"enabled": True, "margin": 0}, "second_opinion.margin: Input should be greater than or equal to 1"),
        ({"enabled": "sometimes"}, "second_opinion.enabled: Input should be a valid boolean"),
    ]:
        broken = settings_with(settings, tmp_path, second_opinion=value)
        with pytest.raises(ConfigError) as error:
            broken.stage(SafetyConfig)
        assert "safety_thresholds.yaml" in str(error.value)
        assert problem in str(error.value)


def test_enabling_it_with_the_embedded_composer_is_a_configuration_error(settings, tmp_path, openai_emulator):
    config = settings_with(settings, tmp_path, second_opinion={"enabled": True}).stage(SafetyConfig)
    with pytest.raises(ConfigError) as error:
        config.validated_resource(llm=EmbeddedComposerResource())
    message = str(error.value)
    assert message.startswith("safety_thresholds.yaml: second_opinion.enabled is true")
    assert "generation.yaml backend: embedded" in message
    assert "second_opinion.enabled: false" in message
    llm = OpenAICompatibleResource(base_url=openai_emulator.endpoint + "/v1")
    assert isinstance(config.second_opinion_resource(llm), LLMSecondOpinionResource)
    assert openai_emulator.request_count() == 0  # validating calls nothing


def test_the_stage_refuses_to_run_enabled_with_the_embedded_composer(instance, base_resources, warehouse, tmp_path):
    base_resources["settings"] = opinion_settings(base_resources, tmp_path)
    write_inputs(warehouse, variant_rows({"friendly": NEAR}))
    result = run_safety(instance, base_resources, EmbeddedContentSafetyResource(), llm=EmbeddedComposerResource())
    assert not result.success
    assert "second_opinion.enabled is true, but the generation stage uses the embedded composer" in failure_message(
        result
    )
    assert not warehouse.table_exists("safety_verdicts")  # nothing screened, stored or audited
    assert not warehouse.table_exists(store.AUDIT_TABLE)


# --- Through the safety stage ------------------------------------------------------------------------------------


def test_a_near_threshold_text_is_blocked_by_the_second_opinion_and_far_ones_are_not_sent(
    instance, base_resources, warehouse, tmp_path, openai_emulator, monkeypatch
):
    base_resources["settings"] = opinion_settings(base_resources, tmp_path)
    threshold = near_violence() + 1
    openai_emulator.responder = responder_for({NEAR: opinion(violence=6)})
    write_inputs(warehouse, variant_rows({"friendly": NEAR}))
    result = run_safety(
        instance, base_resources, EmbeddedContentSafetyResource(), llm=compatible_llm(openai_emulator, monkeypatch)
    )
    assert result.success
    assert all(checks_of(result).values())

    asked = second_opinion_requests(openai_emulator)
    assert len(asked) == 1  # the two plain variants are far from every threshold: not sent
    assert NEAR in last_user_text(asked[0])
    assert asked[0]["text"]["format"]["name"] == SECOND_OPINION_SCHEMA_NAME
    assert asked[0]["text"]["format"]["strict"] is True
    assert asked[0]["store"] is False

    verdicts = verdicts_by_tone(warehouse)
    friendly = verdicts["friendly"]
    assert friendly["decision"] == "blocked"
    assert json.loads(friendly["reasons"]) == [f"LLM second opinion: violence severity 6 >= {threshold}"]
    assert friendly["violence"] == 6  # the higher of the two opinions
    assert friendly["backend"] == "embedded + LLM second opinion (openai_compatible gpt-4o-mini)"
    assert {verdicts["urgent"]["decision"], verdicts["informational"]["decision"]} == {"approved"}
    assert verdicts["urgent"]["backend"] == "embedded"

    audit = store.read_audit(warehouse)
    record = audit.loc[audit["variant_id"] == "v-friendly"].iloc[0]
    assert record["decision"] == "blocked"
    assert json.loads(record["reasons"]) == [f"LLM second opinion: violence severity 6 >= {threshold}"]
    assert json.loads(record["severities"])["violence"] == 6
    assert record["backend"] == "embedded + LLM second opinion (openai_compatible gpt-4o-mini)"

    metadata = metadata_of(result)
    assert metadata["second_opinion"] == "LLM second opinion (openai_compatible gpt-4o-mini), margin 1"
    assert (metadata["second_opinions"], metadata["second_opinion_blocked"]) == (1, 1)
    assert (metadata["second_opinion_unavailable"], metadata["second_opinion_requests"]) == (0, 1)


def test_an_agreeing_second_opinion_approves_and_an_unchanged_rerun_reuses_it(
    instance, base_resources, warehouse, tmp_path, openai_emulator, monkeypatch
):
    base_resources["settings"] = opinion_settings(base_resources, tmp_path)
    openai_emulator.responder = responder_for({NEAR: opinion(violence=2)})
    write_inputs(warehouse, variant_rows({"friendly": NEAR}))
    llm = compatible_llm(openai_emulator, monkeypatch)
    first = run_safety(instance, base_resources, EmbeddedContentSafetyResource(), llm=llm)
    assert first.success
    friendly = verdicts_by_tone(warehouse)["friendly"]
    assert (friendly["decision"], json.loads(friendly["reasons"])) == ("approved", [])
    assert friendly["violence"] == near_violence()  # the LLM's lower 2 does not lower the screen's severity
    assert friendly["backend"] == "embedded + LLM second opinion (openai_compatible gpt-4o-mini)"
    assert (metadata_of(first)["second_opinions"], metadata_of(first)["second_opinion_blocked"]) == (1, 0)
    assert len(second_opinion_requests(openai_emulator)) == 1

    second = run_safety(instance, base_resources, EmbeddedContentSafetyResource(), llm=llm)
    assert second.success
    assert len(second_opinion_requests(openai_emulator)) == 1  # answered from safety_screen_cache
    metadata = metadata_of(second)
    assert (metadata["second_opinions"], metadata["second_opinion_cached"]) == (1, 1)
    assert metadata["second_opinion_requests"] == 0
    audit = store.read_audit(warehouse)
    assert list(audit.loc[audit["variant_id"] == "v-friendly", "backend"]) == [
        "embedded + LLM second opinion (openai_compatible gpt-4o-mini)",
        "embedded + LLM second opinion (openai_compatible gpt-4o-mini) (cached)",
    ]


def test_a_blocked_variant_is_rewritten_and_the_rewrite_screened_again(
    instance, base_resources, warehouse, tmp_path, openai_emulator, monkeypatch
):
    base_resources["settings"] = opinion_settings(base_resources, tmp_path, rewrite_attempts=1)
    openai_emulator.responder = responder_for({NEAR: opinion(violence=5)})
    write_inputs(warehouse, variant_rows({"friendly": NEAR}))
    result = run_safety(
        instance, base_resources, EmbeddedContentSafetyResource(), llm=compatible_llm(openai_emulator, monkeypatch)
    )
    assert result.success
    friendly = verdicts_by_tone(warehouse)["friendly"]
    assert (friendly["decision"], friendly["rewritten"]) == ("approved", True)
    assert NEAR not in friendly["body"]
    rewrite_prompt = next(r.json for r in openai_emulator.requests if not is_second_opinion(r.json))
    assert "LLM second opinion: violence severity 5" in json.dumps(rewrite_prompt)  # the writer is told why
    audit = store.read_audit(warehouse)
    assert json.loads(audit.loc[audit["variant_id"] == "v-friendly", "reasons"].iloc[0])[0].startswith(
        "LLM second opinion: violence severity 5"
    )


def test_with_the_azure_screen_both_opinions_are_cached_and_audited_together(
    instance, base_resources, warehouse, tmp_path, openai_emulator, content_safety_emulator, monkeypatch
):
    base_resources["settings"] = opinion_settings(base_resources, tmp_path)
    content_safety_emulator.trigger_words = {"lesser folk": ("Hate", 3)}
    openai_emulator.responder = responder_for({"lesser folk": opinion(hate=5)})
    write_inputs(warehouse, variant_rows({"informational": "Made for people, not for the lesser folk."}))
    screen = azure_resource(content_safety_emulator, monkeypatch)
    llm = azure_llm(openai_emulator, monkeypatch)
    first = run_safety(instance, base_resources, screen, llm=llm)
    assert first.success
    informational = verdicts_by_tone(warehouse)["informational"]
    assert informational["decision"] == "blocked"
    assert json.loads(informational["reasons"]) == ["LLM second opinion: hate severity 5 >= 4"]
    assert informational["backend"] == "azure + LLM second opinion (azure gpt-4o-mini)"
    assert len(second_opinion_requests(openai_emulator)) == 1

    second = run_safety(instance, base_resources, screen, llm=llm)
    assert second.success
    assert len(second_opinion_requests(openai_emulator)) == 1  # nothing asked again
    audit = store.read_audit(warehouse)
    assert audit.loc[audit["variant_id"] == "v-informational", "backend"].iloc[-1] == (
        "azure (cached) + LLM second opinion (azure gpt-4o-mini) (cached)"
    )
    metadata = metadata_of(second)
    assert (metadata["cached_screenings"], metadata["second_opinion_cached"]) == (3, 1)
    assert metadata["second_opinion_blocked"] == 1


def test_when_disabled_nothing_is_sent(instance, base_resources, warehouse, tmp_path, openai_emulator, monkeypatch):
    base_resources["settings"] = opinion_settings(base_resources, tmp_path, enabled=False)
    write_inputs(warehouse, variant_rows({"friendly": NEAR}))
    result = run_safety(
        instance, base_resources, EmbeddedContentSafetyResource(), llm=compatible_llm(openai_emulator, monkeypatch)
    )
    assert result.success
    assert openai_emulator.request_count() == 0
    assert verdicts_by_tone(warehouse)["friendly"]["decision"] == "approved"
    assert verdicts_by_tone(warehouse)["friendly"]["backend"] == "embedded"
    metadata = metadata_of(result)
    assert (metadata["second_opinion"], metadata["second_opinions"]) == ("off", 0)


# --- Fail-closed -----------------------------------------------------------------------------------------------------


def screen_near(llm, margin=1, max_concurrency=6, extra: int = 0) -> list[flow.Screening]:
    """The three composed variants, friendly with NEAR, screened with the second opinion on `llm` (and `extra`
    more variants carrying NEAR)."""
    rows = variant_rows({"friendly": NEAR})
    candidates = flow.candidates_from_variants(rows)
    candidates += [
        flow.Candidate(f"x{i}", f"x{i}", "friendly", f"Offer {i}", f"{NEAR} Number {i}.", "[]") for i in range(extra)
    ]
    thresholds = {**dict.fromkeys(CONCERNS, 4), "violence": near_violence() + 1}
    final, _ = flow.screen_with_rewrites(
        EmbeddedContentSafetyResource(),
        candidates,
        thresholds,
        max_concurrency=max_concurrency,
        rewrite_attempts=1,
        rewriter=None,
        second_opinion=flow.SecondOpinion(LLMSecondOpinionResource.for_llm(llm), margin),
    )
    return final


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("Sure - this email looks fine.", "the answer is not valid JSON ('Sure - this email looks fine.')"),
        ('{"hate": 0, "violence": 1}', "the answer lacks self_harm, sexual, phishing"),
        (opinion(violence=12), "the answer's violence 12 is not an integer 0-7"),
        (Refusal("I can't help with that."), "the model refused to answer (I can't help with that.)"),
        (Incomplete("max_output_tokens"), "the answer is incomplete (max_output_tokens)"),
        (Incomplete("content_filter"), "the answer is incomplete (content_filter)"),
    ],
    ids=["garbage", "partial", "out-of-range", "refusal", "max-tokens", "output-filtered"],
)
def test_an_unusable_answer_blocks_the_text(openai_emulator, monkeypatch, answer, reason):
    openai_emulator.responder = responder_for({NEAR: answer})
    final = screen_near(compatible_llm(openai_emulator, monkeypatch))
    friendly = next(s for s in final if s.candidate.tone == "friendly")
    assert friendly.decision == "blocked"
    assert friendly.reasons == (f"LLM second opinion unavailable: {reason}",)
    assert not friendly.rewritable  # not a verdict on the content: rewriting would not fix it
    assert friendly.outcome.severities["violence"] == near_violence()  # the screen's severities are kept
    assert [s.decision for s in final if s.candidate.tone != "friendly"] == ["approved", "approved"]


def test_a_prompt_refused_by_azures_content_filter_blocks_the_text(openai_emulator, monkeypatch):
    openai_emulator.responder = responder_for({NEAR: PromptFiltered("violence")})
    final = screen_near(azure_llm(openai_emulator, monkeypatch))
    friendly = next(s for s in final if s.candidate.tone == "friendly")
    assert friendly.decision == "blocked"
    assert friendly.reasons == (
        "LLM second opinion unavailable: the service's content filter refused the text (categories: violence (high))",
    )
    assert friendly.backend == "embedded + LLM second opinion (azure gpt-4o-mini)"
    assert openai_emulator.requests[-1].path == "/openai/v1/responses"


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("500", "LLMServiceError: openai_compatible model 'gpt-4o-mini' at "),
        ("malformed", "MalformedResponseError: openai_compatible at "),
    ],
)
def test_a_service_error_blocks_the_text(openai_emulator, monkeypatch, fault, reason):
    openai_emulator.inject(fault, times=None)
    final = screen_near(compatible_llm(openai_emulator, monkeypatch))
    friendly = next(s for s in final if s.candidate.tone == "friendly")
    assert friendly.decision == "blocked"
    assert len(friendly.reasons) == 1
    assert friendly.reasons[0].startswith(f"LLM second opinion unavailable: {reason}")
    assert not friendly.rewritable
    assert friendly.second_opinion is not None and friendly.second_opinion.requests == 1


def test_a_backend_without_structured_output_is_asked_for_json_in_the_prompt(openai_emulator, monkeypatch):
    openai_emulator.responder = responder_for({NEAR: "```json\n" + opinion(phishing=True) + "\n```"})
    final = screen_near(compatible_llm(openai_emulator, monkeypatch, structured_output=False))
    friendly = next(s for s in final if s.candidate.tone == "friendly")
    assert "text" not in second_opinion_requests(openai_emulator)[0]
    assert friendly.decision == "blocked"
    assert friendly.reasons == ("LLM second opinion: phishing severity 6 >= 4",)


def test_second_opinions_run_with_bounded_concurrency(monkeypatch):
    emulator = OpenAIResponsesEmulator(latency_seconds=0.3)
    with emulator:
        emulator.responder = responder_for({})
        final = screen_near(compatible_llm(emulator, monkeypatch), max_concurrency=3, extra=8)
        assert len(second_opinion_requests(emulator)) == 9  # friendly and the eight extra texts
        assert 2 <= emulator.max_in_flight <= 3
    assert all(s.decision == "approved" for s in final)


# --- Texts the embedded screen's model found safe, but only just ------------------------------------------------

MODEL_NEAR = "Verify your account on our new portal to keep your rewards active."  # ~0.11 below blocking today


def test_a_text_near_the_models_boundary_is_sent_and_the_others_are_not(openai_emulator, monkeypatch):
    screen = EmbeddedContentSafetyResource()
    gap = screen.model_gap(MODEL_NEAR)
    assert gap is not None and gap > 0, f"pick another text: the model's gap to blocking it is {gap}"
    assert max(screen.screen(MODEL_NEAR).severities.values()) <= 1  # not near by severity
    margin = gap + 0.005  # the boundary just beyond this text's gap
    candidates = flow.candidates_from_variants(variant_rows())
    for candidate in candidates:
        for text in (candidate.subject, candidate.body):
            other = screen.model_gap(text)
            assert other is None or other > margin, f"a plain variant is {other} from blocking: pick another text"
    near = flow.Candidate("v-near", "v-near", "friendly", MODEL_NEAR, candidates[0].body, "[]")
    openai_emulator.responder = responder_for({MODEL_NEAR: opinion(phishing=True)})
    llm = compatible_llm(openai_emulator, monkeypatch)

    def screened(model_margin: float) -> list[flow.Screening]:
        final, _ = flow.screen_with_rewrites(
            screen,
            [*candidates, near],
            dict.fromkeys(CONCERNS, 4),
            max_concurrency=6,
            rewrite_attempts=0,
            rewriter=None,
            second_opinion=flow.SecondOpinion(
                LLMSecondOpinionResource.for_llm(llm), 1, screen=screen, model_margin=model_margin
            ),
        )
        return final

    final = screened(margin)
    assert len(second_opinion_requests(openai_emulator)) == 1
    assert MODEL_NEAR in last_user_text(second_opinion_requests(openai_emulator)[0])
    assert [s.decision for s in final] == ["approved", "approved", "approved", "blocked"]
    assert final[-1].reasons == ("LLM second opinion: phishing severity 6 >= 4",)

    openai_emulator.reset()
    assert [s.decision for s in screened(0.0)] == ["approved"] * 4  # model_margin 0: severities only
    assert openai_emulator.request_count() == 0


def test_only_the_embedded_screen_exposes_a_model_score(content_safety_emulator, monkeypatch):
    assert azure_resource(content_safety_emulator, monkeypatch).near_model_boundary(MODEL_NEAR, 0.7) is False
    assert EmbeddedContentSafetyResource().model_gap("Tier 3") is None  # too short for the model to judge


def test_a_short_text_is_near_the_boundary_by_its_own_higher_threshold():
    from personalization_assets.embedded.model import MODEL_THRESHOLD, SHORT_THRESHOLD, screen_model
    from personalization_assets.embedded.screen import masked_text

    screen = EmbeddedContentSafetyResource()
    model = screen_model()
    assert model is not None
    subject, body = "Confirm your login details now", MODEL_NEAR + " " + MODEL_NEAR
    assert model.threshold(masked_text(subject)) == max(MODEL_THRESHOLD, SHORT_THRESHOLD)
    for text in (subject, body):
        gap = screen.model_gap(text)
        assert gap is not None
        unsafe = model.threshold(masked_text(text)) - gap
        assert 0.0 <= unsafe <= 1.0
        assert screen.near_model_boundary(text, gap + 0.001) is (gap > 0)
        assert screen.near_model_boundary(text, max(gap - 0.001, 0.0)) is False
