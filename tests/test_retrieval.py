"""Retrieval: profile -> query, snippets, score scaling, the embedded BM25 index, the Azure AI Search resource
(real SDK against the HTTP emulator), and the assets and checks on the sample data."""

import json
import random
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from dagster import AssetCheckSeverity, materialize

from personalization_assets import retrieval, segmentation
from personalization_assets.config import ConfigError, load_yaml_model
from personalization_assets.lib.content import load_content_library
from personalization_assets.lib.retrieval import (
    ELLIPSIS,
    RETRIEVED_COLUMNS,
    SNIPPET_MAX_CHARS,
    QueryConfig,
    RetrievalConfig,
    SearchHit,
    build_query,
    cut_snippet,
    ends_on_word_boundary,
    normalize_bm25,
    normalize_reranker,
    population_means,
    select_hits,
    split_passages,
)
from personalization_assets.lib.segmentation import profile_segments
from resources.azure_auth import InsecureEndpointError, MissingCredentialError
from resources.search import (
    AzureAISearchResource,
    EmbeddedSearchResource,
    SearchIndexMissingError,
    SearchServiceError,
    search_resource_from_config,
    write_content_index,
)
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CONTENT = ROOT / "data" / "content"
CONFIG = load_yaml_model(ROOT / "config" / "retrieval.yaml", RetrievalConfig)
THRESHOLD = CONFIG.threshold
# The sample library's best document for each segment of config/segmentation.yaml.
EXPECTED_TOP = {
    "at_risk": "DOC-PROMO-001",  # "We Miss You: 25% Off" win-back promotion
    "high_value_recent": "DOC-PROMO-003",  # VIP early access
    "loyal_frequent": "DOC-PROMO-007",  # member anniversary bonus points
    "new_customer": "DOC-PROD-014",  # first-trip starter picks
    "standard": "DOC-PROD-002",  # bestsellers
}
# Documents about something else entirely, per segment: must score below the threshold.
OFF_TOPIC = {
    "at_risk": ["DOC-PROD-009", "DOC-SUPP-003", "DOC-SUPP-007", "DOC-PROD-012"],
    "high_value_recent": ["DOC-SUPP-004", "DOC-SUPP-007", "DOC-PROMO-002", "DOC-PROMO-001"],
    "loyal_frequent": ["DOC-PROD-009", "DOC-SUPP-003", "DOC-PROMO-002", "DOC-PROD-004"],
    "new_customer": ["DOC-PROMO-004", "DOC-PROMO-007", "DOC-SUPP-012", "DOC-PROD-009"],
    "standard": ["DOC-SUPP-008", "DOC-PROMO-001", "DOC-SUPP-012", "DOC-PROD-004"],
}
AZURE_FAST_RETRY = {"max_retries": 2, "retry_backoff_seconds": 0.01, "retry_backoff_max_seconds": 0.05}


# ---- fixtures ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_profiles() -> pd.DataFrame:
    from personalization_assets.config.segmentation import SegmentationConfig

    customers = pd.read_csv(ROOT / "data" / "customers.csv")
    segments, _ = segmentation.segment_customers(
        customers, load_yaml_model(ROOT / "config" / "segmentation.yaml", SegmentationConfig)
    )
    return profile_segments(customers, segments)


@pytest.fixture(scope="module")
def segment_queries(sample_profiles) -> dict[str, str]:
    population = population_means(sample_profiles)
    return {
        row["segment"]: build_query(row, population, CONFIG.query).text
        for row in sample_profiles.to_dict(orient="records")
    }


def _indexed_warehouse(
    path: Path, content: Path = SAMPLE_CONTENT, as_of: date | None = None
) -> DuckDBWarehouse:
    warehouse = DuckDBWarehouse(path=str(path))
    library = load_content_library(content, as_of=as_of)
    with warehouse.transaction() as connection:
        write_content_index(connection, library.to_frame(), library.version)
    return warehouse


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> EmbeddedSearchResource:
    warehouse = _indexed_warehouse(tmp_path_factory.mktemp("index") / "warehouse.duckdb")
    return search_resource_from_config(CONFIG, warehouse)  # type: ignore[return-value]


def _with(settings: PipelineSettings, **changes) -> PipelineSettings:
    return PipelineSettings(**{**settings.model_dump(), **changes})


def _config_dir(tmp_path: Path, **retrieval_overrides) -> Path:
    """A copy of config/ with retrieval.yaml keys replaced."""
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    data = yaml.safe_load((folder / "retrieval.yaml").read_text())
    data.update(retrieval_overrides)
    (folder / "retrieval.yaml").write_text(yaml.safe_dump(data))
    return folder


def _library_with_unapproved(tmp_path: Path) -> Path:
    """The sample library plus two perfect win-back matches that are not approved (future / missing date)."""
    folder = tmp_path / "content"
    shutil.copytree(SAMPLE_CONTENT, folder)
    win_back = json.loads((SAMPLE_CONTENT / "DOC-PROMO-001.json").read_text())
    future = {**win_back, "document_id": "DOC-FUTURE-001", "approval_date": "2099-01-01"}
    undated = {key: value for key, value in win_back.items() if key != "approval_date"}
    undated["document_id"] = "DOC-UNDATED-001"
    (folder / "DOC-FUTURE-001.json").write_text(json.dumps(future))
    (folder / "DOC-UNDATED-001.json").write_text(json.dumps(undated))
    return folder


# ---- profile -> query --------------------------------------------------------------------------------------
def test_query_combines_intent_defining_features_tier_and_engagement(sample_profiles, segment_queries):
    at_risk = segment_queries["at_risk"]
    assert at_risk.startswith("win-back we miss you comeback discount lapsed customers")
    # At-risk customers last engaged far longer ago than average and bought more often.
    assert "since your last visit" in at_risk and "frequent shoppers" in at_risk
    # High-value: premium spend, mostly Platinum tier -> "vip"; new customers: low purchase frequency.
    assert (
        "premium" in segment_queries["high_value_recent"]
        and "recently" in segment_queries["high_value_recent"]
    )
    assert "first-time" in segment_queries["new_customer"]
    # Loyal frequent: high engagement adds "members" (already present via the intent, so not repeated).
    assert segment_queries["loyal_frequent"].count("members") == 1

    population = population_means(sample_profiles)
    row = sample_profiles.set_index("segment").loc["at_risk"].to_dict() | {"segment": "at_risk"}
    sources = build_query(row, population, CONFIG.query).sources
    assert any(key.startswith("last_engagement_days high") for key in sources)
    assert "dominant tier Bronze" in sources and "engagement medium" in sources


def test_population_means_weight_segments_by_size(sample_profiles):
    customers = pd.read_csv(ROOT / "data" / "customers.csv")
    means = population_means(sample_profiles)
    assert means["avg_order_value"] == pytest.approx(customers["avg_order_value"].mean())
    assert means["last_engagement_days"] == pytest.approx(customers["last_engagement_days"].mean())


def test_query_mapping_lives_in_config_and_empty_query_is_an_error(sample_profiles):
    population = population_means(sample_profiles)
    row = sample_profiles.set_index("segment").loc["at_risk"].to_dict() | {"segment": "at_risk"}
    custom = QueryConfig(intents={"win_back": ["reactivation campaign"]}, defining_features=0)
    assert build_query(row, population, custom).text == "reactivation campaign"
    with pytest.raises(ValueError, match="segment 'at_risk'.*query.intents"):
        build_query(row, population, QueryConfig(defining_features=0))


# ---- configuration -----------------------------------------------------------------------------------------
def test_shipped_config_defaults():
    assert CONFIG.backend == "embedded" and CONFIG.threshold == 0.5 and CONFIG.top_k == 4
    assert set(CONFIG.query.intents) == {"vip", "win_back", "onboarding", "loyalty", "nurture"}


@pytest.mark.parametrize(
    "data, problem",
    [
        ({"top_k": 6}, "top_k"),
        ({"top_k": 2}, "top_k"),
        ({"threshold": 1.5}, "threshold"),
        ({"backend": "elastic"}, "backend"),
        ({"backend": "azure"}, "azure.endpoint"),
        ({"category": "blog"}, "category"),
        ({"query": {"intents": {"upsell": ["x"]}}}, "unknown intent"),
        ({"query": {"features": {"shoe_size": {"high": ["x"]}}}}, "unknown feature"),
        ({"embedded": {"field_weights": {"body": 1.0}}}, "unknown field"),
        ({"azure": {"auth": "password"}}, "azure.auth"),
        ({"tresholds": 0.5}, "tresholds: unknown key"),
    ],
)
def test_invalid_config_names_the_key(tmp_path, data, problem):
    path = tmp_path / "retrieval.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="retrieval.yaml") as error:
        load_yaml_model(path, RetrievalConfig)
    assert problem in str(error.value)


# ---- snippets ----------------------------------------------------------------------------------------------
def test_short_text_is_kept_whole_and_long_text_cut_between_words():
    assert cut_snippet("  Free   shipping\non orders over $75. ") == "Free shipping on orders over $75."
    text = "Earn double points on every order this weekend, and redeem them later for rewards. " * 5
    snippet = cut_snippet(text)
    assert len(snippet) <= SNIPPET_MAX_CHARS and snippet.endswith(ELLIPSIS)
    core = snippet.removesuffix(ELLIPSIS)
    assert text.startswith(core) and text[len(core)] in " ,"
    assert ends_on_word_boundary(snippet, text)


def test_snippet_unicode_counts_characters_and_keeps_words_whole():
    # Decomposed accents (e + combining acute) are composed first: 200 characters means 200 code points, NFC.
    word = "cafe\u0301"  # "café" in 5 code points, 4 after NFC
    words = [word, "Zürich", "naïve", "日本語の", "crème", "brûlée", "🏔️", "Ålesund"]
    text = " ".join(words * 12)
    snippet = cut_snippet(text)
    assert len(snippet) <= SNIPPET_MAX_CHARS
    assert "café" in snippet and "cafe\u0301" not in snippet
    assert ends_on_word_boundary(snippet, text)
    last_word = snippet.removesuffix(ELLIPSIS).split()[-1]
    assert last_word in {"café", *words[1:]}
    # A non-breaking space is whitespace, not part of a word.
    assert cut_snippet("a\u00a0" + "b " * 150).startswith("a b b")


def test_very_long_words_are_cut_at_an_inner_boundary_or_skipped():
    url = "https://content.northwind.example/" + "/".join(["promotions"] * 30)
    snippet = cut_snippet(url + " then words")
    assert len(snippet) <= SNIPPET_MAX_CHARS and snippet.endswith("promotions" + ELLIPSIS)
    assert ends_on_word_boundary(snippet, url)

    unbreakable = "a" * 250
    assert cut_snippet(unbreakable + " Short tail after the long word.") == "Short tail after the long word."
    assert cut_snippet(unbreakable) == ""
    assert cut_snippet("Lead " + unbreakable) == "Lead" + ELLIPSIS


def test_random_texts_always_give_bounded_snippets_on_word_boundaries():
    rng = random.Random(7)
    words = [
        "trail",
        "Ålesund",
        "日本語",
        "naïve",
        "x" * 60,
        "well-known",
        "$75.",
        "(free)",
        "—",
        "🙂",
        "a/b/c",
    ]
    for _ in range(300):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 80)))
        snippet = cut_snippet(text, max_chars=rng.choice([40, 80, 200]))
        assert len(snippet) <= 200
        assert ends_on_word_boundary(snippet, text), (snippet, text)


def test_boundary_check_rejects_mid_word_and_foreign_text():
    source = "Waterproof shells need reproofing."
    assert ends_on_word_boundary("Waterproof shells", source)
    assert ends_on_word_boundary("Waterproof shells need" + ELLIPSIS, source)
    assert not ends_on_word_boundary("Waterproof she", source)
    assert not ends_on_word_boundary("Text that is not in the document", source)


def test_passages_are_sentence_windows_covering_the_document():
    content = json.loads((SAMPLE_CONTENT / "DOC-PROMO-001.json").read_text())["content"]
    passages = split_passages(content)
    assert len(passages) > 3 and " ".join(passages).split() == content.split()
    # Windows of whole sentences; only a single sentence longer than the limit exceeds it.
    assert all(len(p) <= SNIPPET_MAX_CHARS or p.count(". ") == 0 for p in passages)
    assert "3. Enter COMEBACK25 in the promo code field and watch the total drop by a quarter." in passages
    assert split_passages("One sentence. " + "word " * 60)[-1].startswith(
        "word"
    )  # long sentence stands alone


# ---- score scaling and selection ---------------------------------------------------------------------------
def test_bm25_normalization_is_a_logistic_curve_on_query_coverage():
    scores = normalize_bm25(
        [0.0, 3.0, 6.0, 12.0, 60.0], query_idf=20.0, half_relevance_coverage=0.3, steepness=2
    )
    # coverage 0, 0.15, 0.3, 0.6, 3.0
    assert scores == pytest.approx([0.0, 0.2, 0.5, 0.8, 100 / 101])
    assert np.all(np.diff(scores) > 0) and scores.max() < 1
    assert normalize_bm25([5.0], query_idf=0.0).tolist() == [0.0]


def test_reranker_scores_are_divided_by_four():
    assert normalize_reranker([0, 1, 2, 4, 5]).tolist() == [0.0, 0.25, 0.5, 1.0, 1.0]


def _hit(document_id: str, score: float) -> SearchHit:
    return SearchHit(document_id, document_id, "promotion", score * 10, score, "text")


def test_threshold_and_top_k_select_the_best_documents():
    hits = [
        _hit("D1", 0.9),
        _hit("D2", 0.5),
        _hit("D3", 0.49),
        _hit("D4", 0.7),
        _hit("D5", 0.95),
        _hit("D6", 0.6),
    ]
    assert [h.document_id for h in select_hits(hits, 0.5, 3)] == ["D5", "D1", "D4"]
    assert [h.document_id for h in select_hits(hits, 0.5, 5)] == ["D5", "D1", "D4", "D6", "D2"]
    assert [h.document_id for h in select_hits(hits, 0.8, 5)] == ["D5", "D1"]
    assert select_hits(hits, 0.99, 5) == []


# ---- embedded backend --------------------------------------------------------------------------------------
@pytest.mark.parametrize("segment", sorted(EXPECTED_TOP))
def test_embedded_ranks_the_expected_document_first(embedded, segment_queries, segment):
    hits = embedded.search(segment_queries[segment], top=38)
    assert hits[0].document_id == EXPECTED_TOP[segment]
    kept = select_hits(hits, THRESHOLD, CONFIG.top_k)
    assert 3 <= len(kept) <= CONFIG.top_k
    scores = {h.document_id: h.score for h in hits}
    for document_id in OFF_TOPIC[segment]:
        assert scores.get(document_id, 0.0) < THRESHOLD, (segment, document_id, scores.get(document_id))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(0 <= h.score <= 1 for h in hits)


def test_win_back_promotion_leads_and_snippet_comes_from_the_matched_passage(embedded, segment_queries):
    top = embedded.search(segment_queries["at_risk"], top=3)[0]
    assert top.document_id == "DOC-PROMO-001" and top.category == "promotion" and top.score > 0.9
    content = json.loads((SAMPLE_CONTENT / "DOC-PROMO-001.json").read_text())["content"]
    assert top.passage in split_passages(content)
    assert "lapsed customers" in top.passage


def test_off_topic_queries_stay_below_the_threshold(embedded):
    assert embedded.search("mortgage refinancing", top=5) == []  # no word of the query is in the library
    assert all(
        h.score < THRESHOLD for h in embedded.search("mortgage refinancing rates", top=5)
    )  # only "rates"
    # Only "linen" is in the library: the linen bedding matches, but explains little of the query.
    partial = embedded.search("quantum physics lecture semiconductor linen", top=5)
    assert partial[0].document_id == "DOC-PROD-009" and partial[0].score < THRESHOLD
    assert embedded.search("waterproof rain jacket", top=1)[0].document_id == "DOC-PROD-004"


def test_category_filter(embedded, segment_queries):
    hits = embedded.search(segment_queries["at_risk"], top=10, category="product")
    assert hits and {h.category for h in hits} == {"product"}
    assert hits[0].document_id == "DOC-PROD-003"  # "What's New Since Your Last Visit"


def test_unapproved_documents_are_never_indexed_or_returned(tmp_path, segment_queries):
    content = _library_with_unapproved(tmp_path)
    warehouse = _indexed_warehouse(tmp_path / "w.duckdb", content)
    search = EmbeddedSearchResource(warehouse=warehouse)
    for query in [*segment_queries.values(), "we miss you comeback discount win-back"]:
        found = {h.document_id for h in search.search(query, top=38)}
        assert not found & {"DOC-FUTURE-001", "DOC-UNDATED-001"}
    indexed = set(warehouse.read_table("content_index")["document_id"])
    assert len(indexed) == len(list(SAMPLE_CONTENT.glob("*.json"))) and "DOC-FUTURE-001" not in indexed


def test_index_is_rebuilt_only_when_the_content_version_changes(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(SAMPLE_CONTENT, content)
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))

    def build():
        library = load_content_library(content)
        with warehouse.transaction() as connection:
            return write_content_index(connection, library.to_frame(), library.version)

    first, second = build(), build()
    assert first.rebuilt and not second.rebuilt and first.content_version == second.content_version
    document = json.loads((content / "DOC-SUPP-005.json").read_text())
    document["content"] += " Overnight shipping now reaches Alaska and Hawaii."
    (content / "DOC-SUPP-005.json").write_text(json.dumps(document))
    third = build()
    assert third.rebuilt and third.content_version != first.content_version
    assert (
        EmbeddedSearchResource(warehouse=warehouse).search("Alaska Hawaii", top=1)[0].document_id
        == "DOC-SUPP-005"
    )


def test_search_without_an_index_says_what_to_materialize(tmp_path):
    search = EmbeddedSearchResource(warehouse=DuckDBWarehouse(path=str(tmp_path / "empty.duckdb")))
    with pytest.raises(SearchIndexMissingError, match="materialize the asset 'content_index'"):
        search.search("win-back", top=3)


# ---- Azure AI Search (real SDK, HTTP emulator) -------------------------------------------------------------
def _azure(emulator, **overrides) -> AzureAISearchResource:
    settings = {
        "endpoint": emulator.endpoint,
        "index_name": "approved-content",
        "semantic_configuration": "content-semantic",
        "auth": "api_key",
        "api_key_env": "TEST_SEARCH_KEY",
        "ca_bundle_path": emulator.ca_bundle_path,
        **AZURE_FAST_RETRY,
        **overrides,
    }
    return AzureAISearchResource(**settings)


@pytest.fixture
def azure_search(search_emulator, monkeypatch):
    """The Azure resource (API key auth) with the sample library uploaded to the emulator."""
    monkeypatch.setenv("TEST_SEARCH_KEY", search_emulator.api_key)
    resource = _azure(search_emulator)
    report = resource.upload_documents(load_content_library(SAMPLE_CONTENT))
    assert report.index_created and report.uploaded == len(list(SAMPLE_CONTENT.glob("*.json")))
    return resource


def test_upload_creates_the_index_with_semantic_configuration_and_syncs(search_emulator, azure_search):
    definition = search_emulator.requests_matching(path_contains="/indexes", method="POST")[0].json
    fields = {f["name"]: f for f in definition["fields"]}
    assert fields["document_id"]["key"] and fields["category"]["filterable"]
    assert definition["semantic"]["configurations"][0]["name"] == "content-semantic"
    assert {r.auth_scheme for r in search_emulator.requests} == {"api-key"}

    search_emulator.add_documents("approved-content", [{"document_id": "DOC-STALE", "title": "Old"}])
    report = azure_search.upload_documents(load_content_library(SAMPLE_CONTENT))
    assert not report.index_created and report.deleted == ["DOC-STALE"]
    assert len(search_emulator.documents("approved-content")) == report.uploaded


def test_azure_semantic_search_ranks_win_back_first(search_emulator, azure_search, segment_queries):
    hits = azure_search.search(segment_queries["at_risk"], top=4)
    assert hits[0].document_id == "DOC-PROMO-001"
    assert all(0 <= h.score <= 1 and h.score == pytest.approx(h.raw_score / 4) for h in hits)
    body = search_emulator.requests_matching(path_contains="search.post.search")[-1].json
    assert body["queryType"] == "semantic" and body["semanticConfiguration"] == "content-semantic"
    assert body["top"] == 4 and body["search"] == segment_queries["at_risk"]
    content = json.loads((SAMPLE_CONTENT / "DOC-PROMO-001.json").read_text())["content"]
    assert hits[0].passage in split_passages(content)

    promotions = azure_search.search(segment_queries["at_risk"], top=4, category="promotion")
    assert {h.category for h in promotions} == {"promotion"}
    assert search_emulator.requests[-1].json["filter"] == "category eq 'promotion'"


def test_azure_never_returns_unapproved_documents(search_emulator, azure_search, tmp_path):
    # Upload only sends approved documents, and a future-dated document already in the index is filtered out.
    report = azure_search.upload_documents(load_content_library(_library_with_unapproved(tmp_path)))
    stored = {d["document_id"] for d in search_emulator.documents("approved-content")}
    assert report.uploaded == len(stored) and not stored & {"DOC-FUTURE-001", "DOC-UNDATED-001"}
    win_back = json.loads((SAMPLE_CONTENT / "DOC-PROMO-001.json").read_text())
    injected = {key: win_back[key] for key in ("title", "category", "content", "keywords")}
    search_emulator.add_documents(
        "approved-content",
        [{**injected, "document_id": "DOC-INJECTED", "approval_date": "2099-01-01T00:00:00Z"}],
    )
    found = {h.document_id for h in azure_search.search("we miss you win-back comeback discount", top=10)}
    assert "DOC-PROMO-001" in found and "DOC-INJECTED" not in found


def test_azure_token_auth_with_managed_identity_over_tls(search_emulator_tls, managed_identity):
    search_emulator_tls.token = managed_identity.token
    resource = _azure(search_emulator_tls, auth="managed_identity", api_key_env="")
    assert resource.endpoint.startswith("https://") and resource.ca_bundle_path
    resource.upload_documents(load_content_library(SAMPLE_CONTENT))
    hits = resource.search("double points trail rewards members", top=3)
    assert hits[0].document_id == "DOC-PROMO-004"
    assert {r.auth_scheme for r in search_emulator_tls.requests} == {"bearer"}
    assert managed_identity.requested_resources and all(
        r.startswith("https://search.azure.com") for r in managed_identity.requested_resources
    )


def test_azure_errors_are_retried_then_fail_clearly(search_emulator, azure_search):
    search_emulator.inject("503", times=2, path_contains="search.post.search")
    assert azure_search.search("win-back", top=3)[0].document_id == "DOC-PROMO-001"
    search_emulator.inject("timeout", times=1, seconds=1.0, path_contains="search.post.search")
    quick = _azure(search_emulator, timeout_seconds=0.2)
    before = search_emulator.request_count(path_contains="search.post.search")
    assert quick.search("win-back", top=3)[0].document_id == "DOC-PROMO-001"  # a read timeout is retried too
    queries = search_emulator.requests_matching(path_contains="search.post.search")[before:]
    assert [r.fault for r in queries] == ["timeout", None]

    search_emulator.inject("500", times=None, path_contains="search.post.search")
    before = search_emulator.request_count(path_contains="search.post.search")
    with pytest.raises(SearchServiceError) as error:
        azure_search.search("win-back", top=3)
    message = str(error.value)
    assert "HTTP 500" in message and "approved-content" in message and search_emulator.api_key not in message
    assert search_emulator.request_count(path_contains="search.post.search") - before == 1 + 2  # 2 retries

    search_emulator.clear_faults()
    search_emulator.inject("wrong_schema", path_contains="search.post.search")
    with pytest.raises(SearchServiceError, match="query failed"):
        azure_search.search("win-back", top=3)


def test_azure_configuration_errors_name_the_setting(search_emulator, monkeypatch):
    monkeypatch.delenv("TEST_SEARCH_KEY", raising=False)
    with pytest.raises(MissingCredentialError, match="TEST_SEARCH_KEY"):
        _azure(search_emulator).search("x", top=3)
    with pytest.raises(InsecureEndpointError, match="https"):
        _azure(search_emulator, endpoint="http://search.example.net").search("x", top=3)
    azure = RetrievalConfig(
        backend="azure", azure={"endpoint": "https://s.search.windows.net", "auth": "api_key"}
    )
    resource = search_resource_from_config(azure, DuckDBWarehouse())
    assert isinstance(resource, AzureAISearchResource) and resource.endpoint == "https://s.search.windows.net"


# ---- assets and checks -------------------------------------------------------------------------------------
RETRIEVAL_DEFS = [
    segmentation.load_customers,
    segmentation.customer_segments,
    segmentation.segment_profiles,
    retrieval.content_index,
    retrieval.retrieved_content,
    retrieval.has_relevant_documents,
    retrieval.snippets_short_and_on_word_boundary,
    retrieval.documents_in_content_library,
]


def _run(instance, resources, partition: str, select=("content_index", "retrieved_content"), **kwargs):
    return materialize(
        RETRIEVAL_DEFS,
        selection=list(select),
        partition_key=partition,
        instance=instance,
        resources=resources,
        **kwargs,
    )


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.fixture
def retrieval_resources(base_resources, warehouse):
    return {**base_resources, "search": EmbeddedSearchResource(warehouse=warehouse)}


def test_retrieved_content_for_at_risk(segmented, retrieval_resources, warehouse):
    result = _run(segmented, retrieval_resources, "at_risk")
    assert result.success
    rows = warehouse.read_table("retrieved_content")
    assert list(rows.columns) == list(RETRIEVED_COLUMNS)
    assert set(rows["segment"]) == {"at_risk"} and 3 <= len(rows) <= 4
    assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
    assert rows.iloc[0]["document_id"] == "DOC-PROMO-001"
    assert (rows["score"] >= 0.5).all() and (rows["snippet"].str.len() <= SNIPPET_MAX_CHARS).all()
    assert rows["query"].nunique() == 1 and "win-back" in rows["query"].iloc[0]

    checks = _checks(result)
    assert set(checks) == {
        "has_relevant_documents",
        "snippets_short_and_on_word_boundary",
        "documents_in_content_library",
    }
    assert all(check.passed for check in checks.values())
    metadata = result.asset_materializations_for_node("retrieved_content")[0].metadata
    assert metadata["query"].value == rows["query"].iloc[0]
    assert "DOC-PROMO-001" in metadata["hits"].value and metadata["hits"].value.startswith("|")

    index = result.asset_materializations_for_node("content_index")[0].metadata
    assert index["index_rebuilt"].value is True and index["documents"].value == len(
        list(SAMPLE_CONTENT.glob("*.json"))
    )
    assert index["not_approved"].value == "none" and len(index["content_version"].value) == 64

    # Another segment's partition leaves at_risk's rows alone; the unchanged library is not re-indexed.
    again = _run(segmented, retrieval_resources, "new_customer")
    assert again.success
    assert again.asset_materializations_for_node("content_index")[0].metadata["index_rebuilt"].value is False
    stored = warehouse.read_table("retrieved_content")
    assert set(stored["segment"]) == {"at_risk", "new_customer"}
    assert (
        stored.loc[stored["segment"] == "new_customer", "document_id"].iloc[0] == EXPECTED_TOP["new_customer"]
    )


def test_content_index_lists_unapproved_documents(segmented, base_resources, settings, tmp_path, warehouse):
    content = _library_with_unapproved(tmp_path)
    resources = {**base_resources, "settings": _with(settings, content_path=str(content))}
    result = materialize([retrieval.content_index], instance=segmented, resources=resources)
    metadata = result.asset_materializations_for_node("content_index")[0].metadata
    assert metadata["not_approved"].value == (
        "not yet approved: DOC-FUTURE-001 (approval date 2099-01-01), DOC-UNDATED-001 (no approval date)"
    )
    assert not {"DOC-FUTURE-001", "DOC-UNDATED-001"} & set(
        warehouse.read_table("content_index")["document_id"]
    )


def test_high_threshold_warns_with_segment_and_query(segmented, retrieval_resources, settings, tmp_path):
    strict = _with(settings, config_dir=str(_config_dir(tmp_path, threshold=0.9)))
    result = _run(segmented, {**retrieval_resources, "settings": strict}, "at_risk")
    assert result.success
    check = _checks(result)["has_relevant_documents"]
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert "segment 'at_risk'" in check.description and "win-back we miss you" in check.description
    assert check.metadata["documents_above_threshold"].value == 1  # only the win-back promotion scores >= 0.9


def test_no_document_above_threshold_fails_the_check(segmented, retrieval_resources, settings, tmp_path):
    impossible = _with(settings, config_dir=str(_config_dir(tmp_path, threshold=1.0)))
    result = _run(
        segmented, {**retrieval_resources, "settings": impossible}, "standard", raise_on_error=False
    )
    check = _checks(result)["has_relevant_documents"]
    assert not check.passed and check.severity == AssetCheckSeverity.ERROR
    assert "segment 'standard'" in check.description and "bestsellers" in check.description
    assert check.metadata["documents_above_threshold"].value == 0


def test_top_k_from_config(segmented, retrieval_resources, settings, tmp_path, warehouse):
    wide = _with(settings, config_dir=str(_config_dir(tmp_path, top_k=5)))
    assert _run(segmented, {**retrieval_resources, "settings": wide}, "loyal_frequent").success
    assert len(warehouse.read_table("retrieved_content")) == 5


def test_azure_backed_partition_and_failure_writes_nothing(
    segmented, base_resources, settings, warehouse, search_emulator, azure_search, tmp_path
):
    # The emulator's reranker is a stand-in (share of query terms present) that scores long queries low.
    lenient = _with(settings, config_dir=str(_config_dir(tmp_path, threshold=0.2)))
    resources = {**base_resources, "settings": lenient, "search": azure_search}
    ok = _run(segmented, resources, "at_risk")
    assert ok.success and all(check.passed for check in _checks(ok).values())
    before = warehouse.read_table("retrieved_content")
    assert before.iloc[0]["document_id"] == "DOC-PROMO-001" and len(before) >= 3

    search_emulator.inject("503", times=None, path_contains="search.post.search")
    failed = _run(segmented, resources, "at_risk", raise_on_error=False)
    assert not failed.success
    failure = next(e for e in failed.all_node_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "retrieval for segment 'at_risk' failed (azure backend)" in message and "HTTP 503" in message
    pd.testing.assert_frame_equal(warehouse.read_table("retrieved_content"), before)  # old partition intact


def test_search_upload_command_syncs_the_library_to_the_configured_index(
    search_emulator, monkeypatch, tmp_path, capsys
):
    from personalization_assets.cli import main

    monkeypatch.setenv("TEST_SEARCH_KEY", search_emulator.api_key)
    azure = {"endpoint": search_emulator.endpoint, "auth": "api_key", "api_key_env": "TEST_SEARCH_KEY"}
    config = _config_dir(tmp_path, azure=azure)
    upload = ["search-upload", "--content", str(SAMPLE_CONTENT), "--config", str(config)]

    assert main(upload) == 0
    documents = len(list(SAMPLE_CONTENT.glob("*.json")))
    assert (
        f"index 'approved-content' (created): {documents} approved document(s) uploaded"
        in capsys.readouterr().out
    )
    assert len(search_emulator.documents("approved-content")) == documents
    assert main(upload) == 0 and "index 'approved-content' (existing)" in capsys.readouterr().out

    # A key the service refuses: a one-line error naming the endpoint, exit 1, and never the key itself.
    monkeypatch.setenv("TEST_SEARCH_KEY", "not-the-emulator-key-3f9a")
    assert main(upload) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: Azure AI Search upload failed for index 'approved-content'")
    assert search_emulator.endpoint in error and "HTTP 401" in error
    assert "not-the-emulator-key-3f9a" not in error and len(error.strip().splitlines()) == 1
