"""The service emulators, driven by the real SDK clients (azure-search-documents, openai, content safety).

These prove the emulators speak each SDK's wire format, enforce auth (key and Entra-ID token over TLS), and
that every injected fault is observable through the SDKs -- including the SDKs' own retry policies.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2
import openai
import pytest
from azure.ai.contentsafety import BlocklistClient, ContentSafetyClient
from azure.ai.contentsafety.models import (
    AddOrUpdateTextBlocklistItemsOptions,
    AnalyzeTextOptions,
    TextBlocklist,
    TextBlocklistItem,
)
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    IncompleteReadError,
    ResourceNotFoundError,
    ServiceResponseError,
)
from azure.identity import get_bearer_token_provider
from azure.search.documents import SearchClient
from azure.search.documents.indexes import SearchIndexClient
from azure.search.documents.indexes.models import (
    SearchableField,
    SearchFieldDataType,
    SearchIndex,
    SemanticConfiguration,
    SemanticField,
    SemanticPrioritizedFields,
    SemanticSearch,
    SimpleField,
)
from openai import AzureOpenAI, OpenAI
from pydantic import BaseModel

from tests.emulators import (
    COGNITIVE_SCOPE,
    SEARCH_SCOPE,
    ContentSafetyEmulator,
    OpenAIResponsesEmulator,
    SearchEmulator,
    StaticTokenCredential,
    example_for_schema,
)
from tests.emulators.__main__ import build_emulator, parse_args

INDEX = "approved-content"
FAST_RETRY = {"retry_total": 3, "retry_backoff_factor": 0.01, "retry_backoff_max": 0.05}
NO_RETRY = {"retry_total": 0}
DOCS = [
    {
        "id": "c1",
        "title": "Loyalty rewards for frequent shoppers",
        "category": "loyalty",
        "content": "Earn double loyalty points this month. Rewards never expire.",
        "keywords": ["loyalty", "points"],
    },
    {
        "id": "c2",
        "title": "Spring sale on running shoes",
        "category": "promotion",
        "content": "Save on running shoes and gear. Free shipping on all orders.",
        "keywords": ["sale", "shoes"],
    },
    {
        "id": "c3",
        "title": "Welcome to our store",
        "category": "onboarding",
        "content": "Thanks for joining. Explore rewards, points and member perks.",
        "keywords": ["welcome"],
    },
    {
        "id": "c4",
        "title": "Free shipping weekend",
        "category": "promotion",
        "content": "Free shipping on everything this weekend only.",
        "keywords": ["shipping"],
    },
]


# ---- helpers -----------------------------------------------------------------------------------------------
def _index_definition() -> SearchIndex:
    return SearchIndex(
        name=INDEX,
        fields=[
            SimpleField(name="id", type=SearchFieldDataType.String, key=True),
            SearchableField(name="title", type=SearchFieldDataType.String),
            SearchableField(name="content", type=SearchFieldDataType.String),
            SearchableField(
                name="keywords",
                type=SearchFieldDataType.Collection(SearchFieldDataType.String),
                collection=True,
                filterable=True,
            ),
            SimpleField(name="category", type=SearchFieldDataType.String, filterable=True, sortable=True),
        ],
        semantic_search=SemanticSearch(
            configurations=[
                SemanticConfiguration(
                    name="content-semantic",
                    prioritized_fields=SemanticPrioritizedFields(
                        title_field=SemanticField(field_name="title"),
                        content_fields=[SemanticField(field_name="content")],
                        keywords_fields=[SemanticField(field_name="keywords")],
                    ),
                )
            ]
        ),
    )


def _search_client(emu: SearchEmulator, credential=None, **kwargs) -> SearchClient:
    credential = credential or AzureKeyCredential(emu.api_key)
    return SearchClient(emu.endpoint, INDEX, credential, connection_verify=emu.ca_bundle_path or True, **kwargs)


def _seeded(emu: SearchEmulator) -> SearchEmulator:
    emu.create_index(_index_definition().as_dict())  # REST JSON, as the SDK would send it
    emu.add_documents(INDEX, DOCS)
    return emu


def _safety_client(emu: ContentSafetyEmulator, credential=None, **kwargs) -> ContentSafetyClient:
    credential = credential or AzureKeyCredential(emu.api_key)
    return ContentSafetyClient(emu.endpoint, credential, connection_verify=emu.ca_bundle_path or True, **kwargs)


def _openai(emu: OpenAIResponsesEmulator, **kwargs) -> OpenAI:
    kwargs.setdefault("max_retries", 0)
    return OpenAI(base_url=emu.endpoint + "/v1", api_key=emu.api_key, timeout=5, **kwargs)


def _categories(result) -> dict[str, int]:
    return {item.category: item.severity for item in result.categories_analysis}


# ---- Azure AI Search ---------------------------------------------------------------------------------------
def test_search_sdk_creates_index_uploads_and_ranks_with_bm25(search_emulator):
    emu = search_emulator
    SearchIndexClient(emu.endpoint, AzureKeyCredential(emu.api_key)).create_index(_index_definition())
    client = _search_client(emu)
    results = client.upload_documents(DOCS)
    assert [r.succeeded for r in results] == [True] * 4 and {r.status_code for r in results} == {201}

    hits = list(client.search("loyalty rewards", include_total_count=False))
    assert [h["id"] for h in hits][:2] == ["c1", "c3"]  # c1 repeats both terms in title and content
    scores = [h["@search.score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1] > 0
    assert {h["id"] for h in hits} == {"c1", "c3"}  # documents without any term do not match
    assert client.get_document_count() == 4
    assert client.get_document("c2")["title"] == "Spring sale on running shoes"

    search_calls = emu.requests_matching(path_contains="search.post.search")
    assert len(search_calls) == 1 and search_calls[0].json["search"] == "loyalty rewards"
    assert search_calls[0].query["api-version"] and search_calls[0].auth_scheme == "api-key"


def test_search_filter_select_top_and_order(search_emulator):
    client = _search_client(_seeded(search_emulator))
    promos = list(client.search("*", filter="category eq 'promotion'", select=["id", "title"]))
    assert sorted(h["id"] for h in promos) == ["c2", "c4"]
    assert set(promos[0]) - {k for k in promos[0] if k.startswith("@search.")} == {"id", "title"}

    both = client.search(
        "free shipping",
        filter="search.in(category, 'promotion,loyalty') and keywords/any(k: k eq 'shipping')",
        top=5,
    )
    assert [h["id"] for h in both] == ["c4"]
    assert [h["id"] for h in client.search("*", top=2, order_by=["category desc"])] == ["c2", "c4"]
    assert len(list(client.search("*", top=3))) == 3
    paged = client.search("*", include_total_count=True, top=1)
    assert paged.get_count() == 4


def test_search_semantic_reranker_scores_and_captions(search_emulator):
    client = _search_client(_seeded(search_emulator))
    hits = list(
        client.search(
            "rewards points",
            query_type="semantic",
            semantic_configuration_name="content-semantic",
            query_caption="extractive",
        )
    )
    rerank = [h["@search.reranker_score"] for h in hits]
    assert all(0 <= score <= 4 for score in rerank) and rerank == sorted(rerank, reverse=True)
    assert hits[0]["id"] in {"c1", "c3"} and rerank[0] > 2
    caption = hits[0]["@search.captions"][0]
    assert "<em>" in caption.highlights and caption.text in DOCS[int(hits[0]["id"][1]) - 1]["content"]

    with pytest.raises(HttpResponseError) as unknown_config:
        list(client.search("rewards", query_type="semantic", semantic_configuration_name="nope"))
    assert unknown_config.value.status_code == 400 and "nope" in unknown_config.value.message


def test_search_rejects_unknown_index_non_filterable_field_and_bad_filter(search_emulator):
    client = _search_client(_seeded(search_emulator), **NO_RETRY)
    with pytest.raises(ResourceNotFoundError):
        list(SearchClient(search_emulator.endpoint, "missing", AzureKeyCredential(search_emulator.api_key)).search("x"))
    with pytest.raises(HttpResponseError, match="not filterable") as not_filterable:
        list(client.search("*", filter="title eq 'x'"))
    assert not_filterable.value.status_code == 400
    with pytest.raises(HttpResponseError, match="Invalid expression"):
        list(client.search("*", filter="category eq"))
    with pytest.raises(HttpResponseError, match="does not exist"):
        client.upload_documents([{"id": "c9", "unknown_field": 1}])


def test_search_token_auth_over_tls(search_emulator_tls):
    emu = search_emulator_tls
    credential = StaticTokenCredential(emu.token)
    SearchIndexClient(emu.endpoint, credential, connection_verify=emu.ca_bundle_path).create_index(_index_definition())
    client = _search_client(emu, credential)
    client.upload_documents(DOCS)
    assert [h["id"] for h in client.search("spring sale")][0] == "c2"
    assert emu.endpoint.startswith("https://")
    assert {r.auth_scheme for r in emu.requests} == {"bearer"}
    assert credential.calls >= 1 and set(credential.scopes) == {(SEARCH_SCOPE,)}


def test_search_wrong_key_and_wrong_token_are_rejected(search_emulator_tls):
    emu = _seeded(search_emulator_tls)
    with pytest.raises(ClientAuthenticationError):
        list(_search_client(emu, AzureKeyCredential("wrong-key"), **NO_RETRY).search("x"))
    with pytest.raises(ClientAuthenticationError):
        list(_search_client(emu, StaticTokenCredential("wrong-token"), **NO_RETRY).search("x"))
    assert [r.status for r in emu.requests] == [401, 401]


def test_search_429_is_retried_by_azure_core_retry_policy(search_emulator):
    emu = _seeded(search_emulator)
    emu.inject("429", times=2, retry_after=0.05, path_contains="search.post.search")
    hits = list(_search_client(emu, **FAST_RETRY).search("shipping"))
    assert {h["id"] for h in hits} == {"c2", "c4"}
    assert [r.status for r in emu.requests] == [429, 429, 200]
    assert emu.requests[0].fault == "429"

    emu.inject("429", times=None, retry_after=0.05)  # persistent: retries exhaust
    with pytest.raises(HttpResponseError) as throttled:
        list(_search_client(emu, retry_total=1, retry_backoff_factor=0.01).search("shipping"))
    assert throttled.value.status_code == 429


@pytest.mark.parametrize(
    "kind, error",
    [
        ("500", HttpResponseError),
        ("503", HttpResponseError),
        ("malformed", DecodeError),
        ("truncated", IncompleteReadError),
        ("wrong_schema", TypeError),
    ],
)
def test_search_faults_surface_as_sdk_errors(search_emulator, kind, error):
    emu = _seeded(search_emulator)
    emu.inject(kind)
    with pytest.raises(error):
        list(_search_client(emu, **NO_RETRY).search("shipping"))
    assert emu.requests[-1].fault == kind
    assert {h["id"] for h in _search_client(emu).search("shipping")} == {"c2", "c4"}  # fault consumed


def test_search_503_is_retried_and_empty_timeout_slow_faults(search_emulator):
    emu = _seeded(search_emulator)
    emu.inject("503")
    assert len(list(_search_client(emu, **FAST_RETRY).search("shipping"))) == 2
    emu.inject("empty")
    assert list(_search_client(emu).search("shipping")) == []
    emu.inject("timeout", seconds=1.0)
    with pytest.raises(ServiceResponseError):
        list(_search_client(emu, read_timeout=0.2, **NO_RETRY).search("shipping"))
    emu.inject("slow", seconds=0.3)
    started = time.monotonic()
    assert len(list(_search_client(emu).search("shipping"))) == 2
    assert time.monotonic() - started >= 0.3


# ---- OpenAI Responses --------------------------------------------------------------------------------------
def test_openai_client_with_base_url_and_key(openai_emulator):
    response = _openai(openai_emulator).responses.create(
        model="gpt-4.1-mini", instructions="Be brief.", input="Write a greeting for Ana in a friendly tone"
    )
    assert response.output_text == "Emulated answer to: Write a greeting for Ana in a friendly tone"
    assert response.status == "completed" and response.model == "gpt-4.1-mini"
    prompt_words = 11  # "Be brief." + "Write a greeting for Ana in a friendly tone"
    assert response.usage.input_tokens == -(-prompt_words * 13 // 10)  # ceil(words * 1.3)
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    request = openai_emulator.requests[-1]
    assert request.path == "/v1/responses" and request.headers["authorization"] == f"Bearer {openai_emulator.api_key}"
    assert request.json["instructions"] == "Be brief." and request.json["model"] == "gpt-4.1-mini"


def test_azure_openai_key_auth_hits_openai_path_with_api_version(openai_emulator):
    emu = openai_emulator
    client = AzureOpenAI(
        azure_endpoint=emu.endpoint,
        azure_deployment="gpt-deploy",
        api_key=emu.api_key,
        api_version="2025-04-01-preview",
        max_retries=0,
    )
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hello there"}]
    assert client.responses.create(model="gpt-deploy", input=messages).output_text.endswith("hello there")
    request = emu.requests[-1]
    assert request.path == "/openai/responses" and request.query == {"api-version": "2025-04-01-preview"}
    assert request.auth_scheme == "api-key" and request.json["input"] == messages

    bad = AzureOpenAI(azure_endpoint=emu.endpoint, api_key="wrong", api_version="2025-04-01-preview", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.responses.create(model="gpt-deploy", input="x")


def test_azure_openai_entra_token_provider_over_tls(openai_emulator_tls):
    emu = openai_emulator_tls
    credential = StaticTokenCredential(emu.token)
    with httpx2.Client(verify=emu.ssl_context()) as http_client:
        client = AzureOpenAI(
            azure_endpoint=emu.endpoint,
            api_version="2025-04-01-preview",
            max_retries=0,
            azure_ad_token_provider=get_bearer_token_provider(credential, COGNITIVE_SCOPE),
            http_client=http_client,
        )
        assert client.responses.create(model="gpt-deploy", input="hi").output_text == "Emulated answer to: hi"
    assert emu.requests[-1].headers["authorization"] == f"Bearer {emu.token}"
    assert credential.calls == 1 and credential.scopes == [(COGNITIVE_SCOPE,)]


class MessageVariant(BaseModel):
    subject: str
    body: str
    cited_content_ids: list[str]
    reading_level: int


def test_structured_output_satisfies_schema_and_can_be_refused(openai_emulator):
    parsed = _openai(openai_emulator).responses.parse(model="gpt-4.1-mini", input="draft", text_format=MessageVariant)
    variant = parsed.output_parsed
    assert isinstance(variant, MessageVariant) and variant.cited_content_ids and variant.subject
    sent_format = openai_emulator.requests[-1].json["text"]["format"]
    assert sent_format["type"] == "json_schema" and sent_format["name"] == "MessageVariant"

    schema = {
        "type": "object",
        "properties": {
            "tone": {"enum": ["warm", "formal"]},
            "items": {"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/I"}},
            "note": {"anyOf": [{"type": "null"}, {"type": "string", "minLength": 12}]},
        },
        "$defs": {"I": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3}}}},
    }
    assert example_for_schema(schema) == {
        "tone": "warm",
        "items": [{"n": 3}, {"n": 3}],
        "note": "sample notex",
    }

    openai_emulator.supports_structured_output = False
    with pytest.raises(openai.BadRequestError) as refused:
        _openai(openai_emulator).responses.parse(model="gpt-4.1-mini", input="draft", text_format=MessageVariant)
    assert "json_schema" in str(refused.value)


def test_custom_responder_receives_the_request_json(openai_emulator):
    seen = []
    openai_emulator.responder = lambda body: seen.append(body) or json.dumps({"echo": body["input"]})
    assert _openai(openai_emulator).responses.create(model="m", input="ping").output_text == '{"echo": "ping"}'
    assert seen[0]["model"] == "m"


@pytest.mark.parametrize(
    "kind, error",
    [
        ("500", openai.InternalServerError),
        ("503", openai.InternalServerError),
        ("429", openai.RateLimitError),
        ("truncated", openai.APIConnectionError),
        ("malformed", json.JSONDecodeError),
    ],
)
def test_openai_faults_surface_as_sdk_errors(openai_emulator, kind, error):
    openai_emulator.inject(kind, retry_after=0.05)
    with pytest.raises(error):
        _openai(openai_emulator).responses.create(model="m", input="hi")
    assert openai_emulator.requests[-1].fault == kind


def test_openai_sdk_retries_then_schema_empty_timeout_slow(openai_emulator):
    emu = openai_emulator
    emu.inject("429", times=2, retry_after=0.05)
    assert _openai(emu, max_retries=2).responses.create(model="m", input="hi").output_text
    assert [r.status for r in emu.requests] == [429, 429, 200]
    emu.inject("wrong_schema")
    with pytest.raises(TypeError):  # no `output` list in a chat.completion payload
        _ = _openai(emu).responses.create(model="m", input="hi").output_text
    emu.inject("empty")
    assert _openai(emu).responses.create(model="m", input="hi").output_text == ""
    emu.inject("timeout", seconds=1.0)
    with pytest.raises(openai.APITimeoutError):
        _openai(emu).with_options(timeout=0.2).responses.create(model="m", input="hi")
    emu.inject("slow", seconds=0.3)
    started = time.monotonic()
    assert _openai(emu).responses.create(model="m", input="hi").output_text
    assert time.monotonic() - started >= 0.3


def test_latency_applies_to_every_answer_and_requests_run_concurrently():
    with OpenAIResponsesEmulator(latency_seconds=0.4) as emu:
        client = _openai(emu)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda i: client.responses.create(model="m", input=f"q{i}").output_text, range(8)))
        elapsed = time.monotonic() - started
    assert sorted(answers) == [f"Emulated answer to: q{i}" for i in range(8)]
    assert elapsed >= 0.8  # every answer waited its 0.4 s: at least two waves of four
    assert emu.max_in_flight > 1  # answered concurrently (serially it would stay 1)
    assert len(emu.requests) == 8


# ---- Content Safety ----------------------------------------------------------------------------------------
def test_content_safety_severity_levels_with_key(content_safety_emulator):
    client = _safety_client(content_safety_emulator)
    text = "Those idiots will attack and kill."
    four = _categories(client.analyze_text(AnalyzeTextOptions(text=text)))
    assert four == {"Hate": 2, "SelfHarm": 0, "Sexual": 0, "Violence": 6}
    eight = _categories(client.analyze_text(AnalyzeTextOptions(text=text, output_type="EightSeverityLevels")))
    assert eight == {"Hate": 3, "SelfHarm": 0, "Sexual": 0, "Violence": 6}
    content_safety_emulator.trigger_words = {"sale": ("Sexual", 5)}
    only = client.analyze_text(AnalyzeTextOptions(text="Big SALE today", categories=["Sexual"]))
    assert _categories(only) == {"Sexual": 4}
    request = content_safety_emulator.requests[-1]
    assert request.path == "/contentsafety/text:analyze" and request.auth_scheme == "ocp-apim-subscription-key"


def test_a_fault_can_target_the_requests_whose_body_contains_a_text(content_safety_emulator):
    from azure.core.exceptions import HttpResponseError

    client = _safety_client(content_safety_emulator, retry_total=2, retry_backoff_factor=0.01)  # 3 tries
    content_safety_emulator.inject("500", times=3, body_contains="second text")
    assert _categories(client.analyze_text(AnalyzeTextOptions(text="first text")))["Violence"] == 0
    with pytest.raises(HttpResponseError):
        client.analyze_text(AnalyzeTextOptions(text="the second text"))
    assert _categories(client.analyze_text(AnalyzeTextOptions(text="second text again")))["Violence"] == 0
    faults = [(r.json["text"], r.fault) for r in content_safety_emulator.requests]
    assert faults == [("first text", None), *[("the second text", "500")] * 3, ("second text again", None)]


def test_content_safety_token_auth_over_tls(content_safety_emulator_tls):
    emu = content_safety_emulator_tls
    credential = StaticTokenCredential(emu.token)
    result = _safety_client(emu, credential).analyze_text(AnalyzeTextOptions(text="A calm, friendly note."))
    assert set(_categories(result).values()) == {0}
    assert emu.requests[-1].auth_scheme == "bearer" and credential.scopes == [(COGNITIVE_SCOPE,)]
    with pytest.raises(ClientAuthenticationError):
        _safety_client(emu, AzureKeyCredential("wrong"), **NO_RETRY).analyze_text(AnalyzeTextOptions(text="x"))


def test_managed_identity_token_is_accepted_over_tls(managed_identity, content_safety_emulator_tls):
    from azure.identity import ManagedIdentityCredential

    emu = content_safety_emulator_tls
    with ManagedIdentityCredential() as credential:
        result = _safety_client(emu, credential, **NO_RETRY).analyze_text(AnalyzeTextOptions(text="kill"))
    assert _categories(result)["Violence"] == 6
    assert emu.requests[-1].headers["authorization"] == f"Bearer {managed_identity.token}"
    assert managed_identity.requested_resources == ["https://cognitiveservices.azure.com"]


def test_content_safety_blocklist_hit_and_halt(content_safety_emulator):
    emu = content_safety_emulator
    blocklists = BlocklistClient(emu.endpoint, AzureKeyCredential(emu.api_key))
    blocklists.create_or_update_text_blocklist(
        blocklist_name="competitors",
        options=TextBlocklist(blocklist_name="competitors", description="rivals"),
    )
    added = blocklists.add_or_update_blocklist_items(
        blocklist_name="competitors",
        options=AddOrUpdateTextBlocklistItemsOptions(blocklist_items=[TextBlocklistItem(text="MegaMart")]),
    )
    item_id = added.blocklist_items[0].blocklist_item_id
    assert emu.blocklist_texts("competitors") == ["MegaMart"]

    client = _safety_client(emu)
    text = "Cheaper than megamart, and we will attack prices."
    halted = client.analyze_text(
        AnalyzeTextOptions(text=text, blocklist_names=["competitors"], halt_on_blocklist_hit=True)
    )
    match = halted.blocklists_match[0]
    assert (match.blocklist_name, match.blocklist_item_id, match.blocklist_item_text) == (
        "competitors",
        item_id,
        "MegaMart",
    )
    assert halted.categories_analysis == []
    full = client.analyze_text(AnalyzeTextOptions(text=text, blocklist_names=["competitors"]))
    assert len(full.blocklists_match) == 1 and _categories(full)["Violence"] == 4
    clean = client.analyze_text(AnalyzeTextOptions(text="megamarts are fine", blocklist_names=["competitors"]))
    assert clean.blocklists_match == []  # whole-word match only
    with pytest.raises(ResourceNotFoundError):
        client.analyze_text(AnalyzeTextOptions(text="x", blocklist_names=["missing"]))


def test_content_safety_rejects_text_over_10000_characters(content_safety_emulator):
    with pytest.raises(HttpResponseError) as too_long:
        _safety_client(content_safety_emulator, **NO_RETRY).analyze_text(AnalyzeTextOptions(text="a" * 10_001))
    assert too_long.value.status_code == 400 and too_long.value.error.code == "InvalidRequestBody"


def test_content_safety_faults(content_safety_emulator):
    emu = content_safety_emulator
    client = _safety_client(emu, **FAST_RETRY)
    emu.inject("wrong_schema")
    assert "Violence" not in _categories(client.analyze_text(AnalyzeTextOptions(text="kill")))
    emu.inject("empty")
    assert client.analyze_text(AnalyzeTextOptions(text="kill")).categories_analysis == []
    emu.inject("429", times=2, retry_after=0.05)
    assert _categories(client.analyze_text(AnalyzeTextOptions(text="kill")))["Violence"] == 6
    assert [r.status for r in emu.requests[-3:]] == [429, 429, 200]
    emu.inject("malformed")
    with pytest.raises(DecodeError):
        _safety_client(emu, **NO_RETRY).analyze_text(AnalyzeTextOptions(text="kill"))


# ---- shared machinery --------------------------------------------------------------------------------------
def test_fault_queue_order_path_targeting_persistence_and_reset(search_emulator):
    emu = _seeded(search_emulator)
    with pytest.raises(ValueError, match="unknown fault kind"):
        emu.inject("404")
    emu.inject("500", path_contains="$count")
    emu.inject("empty")
    client = _search_client(emu, **NO_RETRY)
    assert list(client.search("shipping")) == []  # the $count fault waits for its path; "empty" is consumed
    with pytest.raises(HttpResponseError):
        client.get_document_count()
    assert client.get_document_count() == 4
    emu.inject("503", times=None)
    for _ in range(3):
        with pytest.raises(HttpResponseError):
            client.get_document_count()
    emu.reset()
    assert emu.requests == [] and emu.index_names == []
    with pytest.raises(ResourceNotFoundError):
        client.get_document_count()  # faults cleared, index gone


def test_request_log_is_complete_under_concurrency(content_safety_emulator):
    client = _safety_client(content_safety_emulator)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: client.analyze_text(AnalyzeTextOptions(text=f"message {i}")), range(40)))
    logged = sorted(r.json["text"] for r in content_safety_emulator.requests)
    assert logged == sorted(f"message {i}" for i in range(40))


def test_standalone_entry_point_builds_configured_emulator():
    args = parse_args(["openai", "--port", "0", "--latency", "2", "--api-key", "k"])
    emulator = build_emulator(args)
    assert isinstance(emulator, OpenAIResponsesEmulator)
    assert (emulator.latency_seconds, emulator.api_key, emulator.tls) == (2.0, "k", False)
    assert isinstance(build_emulator(parse_args(["content-safety", "--tls"])), ContentSafetyEmulator)
