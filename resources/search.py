"""Search over the approved content library: one resource interface; embedded and Azure AI Search backends.

- `EmbeddedSearchResource` (default, offline): BM25 over DuckDB full-text search in the warehouse
  (`personalization_assets/embedded/search.py`), over the index the `content_index` asset builds.
- `AzureAISearchResource`: azure-search-documents `SearchClient`, semantic ranking with the configured semantic
  configuration (`query_type: semantic`, needs the semantic ranker enabled on the service) or plain full-text
  ranking (`query_type: simple`). Entra ID (managed identity preferred) or API keys from environment variables:
  a query key for searching, an admin key for `upload_documents`.

Both return a `SearchAnswer`: hits with a topical relevance in [0, 1] and how the answer was ranked; the
retrieval asset combines it with the documents' audience (lib/retrieval.py `suitability`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from dagster import ConfigurableResource, EnvVar
from pydantic import Field, field_validator

from personalization_assets.embedded.search import (
    DOCUMENTS_TABLE,
    SearchIndexMissingError,
    bm25_search,
    stored_build,
)
from personalization_assets.lib.content import ContentLibrary, load_content_library
from personalization_assets.lib.retrieval import SEARCHABLE_FIELDS, SearchHit, best_passage, normalize_reranker
from resources.azure_auth import (
    AuthMode,
    read_api_key,
    require_secure_endpoint,
    token_credential,
)
from resources.azure_retry import read_only_post_retry_policy
from resources.warehouse import DuckDBWarehouse, table_exists

ENDPOINT_ENV = "AZURE_SEARCH_ENDPOINT"
# Azure's answer when the semantic ranker is not enabled on the service (or its tier has none).
SEMANTIC_UNAVAILABLE_CODES = ("SemanticQueriesNotAvailable", "FeatureNotSupportedInService")


class SearchServiceError(RuntimeError):
    """The search backend failed (after its retries); the message says what and where, never a secret."""


class SearchConfigurationError(SearchServiceError):
    """The search service refuses the configuration (semantic ranker not enabled, key or role missing, index
    schema differs): retrying cannot help; the message names the setting to change."""


@dataclass(frozen=True)
class SearchAnswer:
    """A backend's answer: hits best first, and how it was ranked (shown in the asset's metadata)."""

    hits: list[SearchHit]
    ranking: str  # "bm25" | "semantic" | "semantic (partial)" | "full text"
    partial_reason: str | None = None  # Azure @search.semanticPartialResponseReason
    partial_type: str | None = None  # Azure @search.semanticPartialResponseType
    notes: list[str] = field(default_factory=list)


class SearchResource(ConfigurableResource):
    """Finds the approved documents most relevant to a query; one subclass per backend."""

    @property
    def backend(self) -> str:
        raise NotImplementedError

    def search(self, query: str, top: int, category: str | None = None) -> SearchAnswer:
        """Up to `top` hits, best first, topical scores in [0, 1]; `category` restricts to one category."""
        raise NotImplementedError


def read_content_index(warehouse: DuckDBWarehouse, columns: list[str] | None = None) -> pd.DataFrame:
    """Rows of the `content_index` table (read-only); SearchIndexMissingError when it was never built."""
    missing = SearchIndexMissingError(
        f"table '{DOCUMENTS_TABLE}' is not in the warehouse {warehouse.path}: materialize the asset "
        f"'{DOCUMENTS_TABLE}' first"
    )
    if not warehouse.exists():
        raise missing
    with warehouse.connect(read_only=True) as connection:
        if not table_exists(connection, DOCUMENTS_TABLE):
            raise missing
        selected = ", ".join(f'"{c}"' for c in columns) if columns else "*"
        return connection.execute(f"select {selected} from main.{DOCUMENTS_TABLE} order by document_id").fetchdf()


# ---- embedded ----------------------------------------------------------------------------------------------
class EmbeddedSearchResource(SearchResource):
    """BM25 over the DuckDB full-text index built by the `content_index` asset (read-only at search time).

    Topical score: a logistic curve on the field-weighted BM25 divided by the query's IDF sum
    (`normalize_bm25`), so 0.5 means the document explains `half_relevance_coverage` of the query.
    """

    warehouse: DuckDBWarehouse = Field(default_factory=DuckDBWarehouse)
    field_weights: dict[str, float] = Field(
        default_factory=lambda: {"title": 2.0, "keywords": 2.0, "audience": 1.0, "content": 1.0},
        description="BM25 weight per field (title, keywords, audience, content)",
    )
    half_relevance_coverage: float = Field(
        default=0.3, gt=0, description="query coverage (BM25 / query IDF sum) that scores 0.5"
    )
    steepness: float = Field(default=2.0, gt=0, le=10, description="slope of the logistic curve on coverage")

    @field_validator("field_weights")
    @classmethod
    def _known_fields(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(SEARCHABLE_FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}; expected some of {', '.join(SEARCHABLE_FIELDS)}")
        if not value or any(weight < 0 for weight in value.values()) or not any(value.values()):
            raise ValueError("field weights must be >= 0 with at least one positive")
        return value

    @property
    def backend(self) -> str:
        return "embedded"

    def search(self, query: str, top: int, category: str | None = None) -> SearchAnswer:
        missing = SearchIndexMissingError(
            f"no full-text index of the content library in {self.warehouse.path}: materialize the asset "
            "'content_index' first"
        )
        if not Path(self.warehouse.path).exists():
            raise missing
        with self.warehouse.connect(read_only=True) as connection:
            if stored_build(connection) is None:
                raise missing
            hits = bm25_search(
                connection,
                query,
                top,
                category,
                self.field_weights,
                self.half_relevance_coverage,
                self.steepness,
            )
        return SearchAnswer(hits, "bm25")


# ---- Azure AI Search ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UploadReport:
    index_name: str
    index_created: bool
    uploaded: int
    deleted: list[str]
    content_version: str


# The index the pipeline needs: field -> (EDM type, key, searchable, filterable).
INDEX_FIELDS = {
    "document_id": ("Edm.String", True, False, True),
    "title": ("Edm.String", False, True, False),
    "category": ("Edm.String", False, False, True),
    "content": ("Edm.String", False, True, False),
    "audience": ("Edm.String", False, True, False),
    "keywords": ("Collection(Edm.String)", False, True, True),
    "approval_date": ("Edm.DateTimeOffset", False, False, True),
    "source_url": ("Edm.String", False, False, False),
    "content_sha256": ("Edm.String", False, False, True),
}
SEMANTIC_FIELDS = {"title": ["title"], "content": ["content"], "keywords": ["keywords", "audience"]}


class AzureAISearchResource(SearchResource):
    """Azure AI Search through azure-search-documents.

    Topical score: `query_type: semantic` — the semantic reranker score (0-4) / 4; `semantic_error_handling`
    is sent explicitly: `partial` (default) accepts an answer in which the ranker did not run for some or all
    documents (HTTP 206); those documents get no topical credit (never a rescaled BM25) and are kept only on
    their audience, and the reason is logged and shown in the metadata. `fail` turns such an answer into an
    error. `query_type: simple` — plain full-text (BM25) ranking, scored `score / (score + full_text_half_score)`,
    for services without the semantic ranker.
    """

    endpoint: str = Field(
        default="", description="https://<service>.search.windows.net; empty = the variable named by endpoint_env"
    )
    endpoint_env: str = Field(default=ENDPOINT_ENV, description="environment variable with the endpoint")
    index_name: str = "approved-content"
    semantic_configuration: str = "content-semantic"
    query_type: Literal["semantic", "simple"] = Field(
        default="semantic", description="semantic ranker (Basic tier or higher) or plain full-text ranking"
    )
    semantic_error_handling: Literal["partial", "fail"] = Field(
        default="partial", description="what the service does when semantic ranking fails (sent explicitly)"
    )
    semantic_max_wait_ms: int | None = Field(
        default=None, ge=700, description="upper bound on the semantic ranker's time (then a partial answer)"
    )
    full_text_half_score: float = Field(
        default=4.0, gt=0, description="query_type simple: the BM25 @search.score that scores 0.5"
    )
    auth: AuthMode = "managed_identity"
    api_key_env: str = Field(default="AZURE_SEARCH_API_KEY", description="variable with the query key (auth: api_key)")
    admin_key_env: str = Field(
        default="AZURE_SEARCH_ADMIN_KEY", description="variable with the admin key for uploads (auth: api_key)"
    )
    managed_identity_client_id: str | None = None
    ca_bundle_path: str | None = Field(default=None, description="CA bundle for TLS verification (private CA)")
    max_retries: int = Field(default=3, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=0.8, ge=0)
    retry_backoff_max_seconds: float = Field(default=30.0, ge=0)
    timeout_seconds: float = Field(default=30.0, gt=0)

    @property
    def backend(self) -> str:
        return "azure"

    # ---- configuration ----
    def resolved_endpoint(self) -> str:
        """The endpoint setting, else the environment variable `endpoint_env` (HTTPS, or HTTP on loopback)."""
        value = self.endpoint
        setting = "retrieval.yaml azure.endpoint"
        if not value and self.endpoint_env:
            value = EnvVar(self.endpoint_env).get_value() or ""
            setting = f"retrieval.yaml azure.endpoint (or environment variable {self.endpoint_env})"
        return require_secure_endpoint(value, setting)

    def _key(self, admin: bool) -> str:
        variable, setting = (
            (self.admin_key_env, "retrieval.yaml azure.admin_key_env")
            if admin
            else (self.api_key_env, "retrieval.yaml azure.api_key_env")
        )
        read_api_key(variable, setting)  # validates the name and presence, messages never show the value
        return str(EnvVar(variable).get_value()).strip()

    def check_configuration(self) -> None:
        """Raise MissingCredentialError/InsecureEndpointError now (at load) rather than at the first query."""
        self.resolved_endpoint()
        if self.auth == "api_key":
            self._key(admin=False)

    def _client_kwargs(self) -> dict:
        return {
            "connection_verify": self.ca_bundle_path or True,
            "connection_timeout": self.timeout_seconds,
            "read_timeout": self.timeout_seconds,
            # A query (POST .../docs/search.post.search) only reads the index: safe to retry like a GET.
            "retry_policy": read_only_post_retry_policy(
                "/docs/search.post.search",
                self.max_retries,
                self.retry_backoff_seconds,
                self.retry_backoff_max_seconds,
            ),
        }

    def _credential(self, admin: bool = False):
        if self.auth == "api_key":
            from azure.core.credentials import AzureKeyCredential

            return AzureKeyCredential(self._key(admin))
        return token_credential(self.auth, self.managed_identity_client_id)

    def search_client(self, admin: bool = False):
        from azure.search.documents import SearchClient

        return SearchClient(self.resolved_endpoint(), self.index_name, self._credential(admin), **self._client_kwargs())

    def index_client(self):
        from azure.search.documents.indexes import SearchIndexClient

        return SearchIndexClient(self.resolved_endpoint(), self._credential(admin=True), **self._client_kwargs())

    def _fail(self, action: str, error: Exception, admin: bool = False) -> SearchServiceError:
        status = getattr(error, "status_code", None)
        detail = getattr(error, "message", None) or str(error) or type(error).__name__
        code = getattr(getattr(error, "error", None), "code", None) or ""
        where = f"index '{self.index_name}' at {self.endpoint or self.endpoint_env}"
        if code in SEMANTIC_UNAVAILABLE_CODES or (
            status == 400 and "semantic" in detail.lower() and "enabled" in detail.lower()
        ):
            return SearchConfigurationError(
                f"Azure AI Search {action} failed for {where} (HTTP {status} {code or ''}): semantic ranking is "
                "not enabled on this search service. Enable the semantic ranker (Basic tier or higher; the Free "
                "plan allows a limited number of semantic queries a month), or set retrieval.yaml "
                "azure.query_type: simple for plain full-text ranking"
            )
        if status in (401, 403):
            if self.auth == "api_key":
                variable = self.admin_key_env if admin else self.api_key_env
                fix = f"check the key in environment variable {variable}" + (
                    " (an admin key: uploads need one)" if admin else ""
                )
            else:
                role = "Search Index Data Contributor" if admin else "Search Index Data Reader"
                fix = f"grant the identity the role '{role}' on the search service"
            return SearchConfigurationError(
                f"Azure AI Search {action} failed for {where} (HTTP {status}): "
                f"{'not authenticated' if status == 401 else 'not authorized'}; {fix}"
            )
        return SearchServiceError(
            f"Azure AI Search {action} failed for {where}"
            f"{f' (HTTP {status})' if status else ''} after up to {self.max_retries} retries: "
            f"{type(error).__name__}: {detail.splitlines()[0][:300]}"
        )

    # ---- querying ----
    def search(self, query: str, top: int, category: str | None = None) -> SearchAnswer:
        from azure.core.exceptions import AzureError

        filter_expression = f"category eq '{category.replace(chr(39), chr(39) * 2)}'" if category else None
        semantic = self.query_type == "semantic"
        options: dict[str, Any] = {}
        if semantic:
            options = {
                "query_type": "semantic",
                "semantic_configuration_name": self.semantic_configuration,
                "query_caption": "extractive",
                "semantic_error_mode": self.semantic_error_handling,
            }
            if self.semantic_max_wait_ms is not None:
                options["semantic_max_wait_in_milliseconds"] = self.semantic_max_wait_ms
        answer_info: dict[str, Any] = {}

        def capture(response) -> None:
            # The partial-answer fields are on the response body, not on the results the SDK yields.
            http = response.http_response
            answer_info["status"] = http.status_code
            try:
                body = json.loads(http.text())
            except (ValueError, TypeError):
                return
            if isinstance(body, dict):
                answer_info["reason"] = body.get("@search.semanticPartialResponseReason")
                answer_info["type"] = body.get("@search.semanticPartialResponseType")

        client = self.search_client()  # configuration errors (endpoint, missing key) surface as they are
        try:
            with client:
                results = list(
                    client.search(
                        search_text=query,
                        top=top,
                        filter=filter_expression,
                        select=["document_id", "title", "category", "content", "approval_date"],
                        raw_response_hook=capture,
                        **options,
                    )
                )
        except (AzureError, TypeError, ValueError, KeyError) as error:
            # TypeError/ValueError/KeyError: an answer the SDK could not deserialize (wrong shape).
            raise self._fail("query", error) from None

        today = datetime.now(UTC).date()
        approved = [r for r in results if _approved(r.get("approval_date"), today)]
        reason, partial_type = answer_info.get("reason"), answer_info.get("type")
        partial = bool(reason) or answer_info.get("status") == 206
        hits = []
        for result in approved:
            bm25 = float(result.get("@search.score") or 0.0)
            reranker = result.get("@search.reranker_score")
            if semantic:
                # Without a reranker score the document has no topical score we stand behind: 0, unranked.
                ranked = reranker is not None
                raw = float(reranker) if ranked else bm25
                score = float(normalize_reranker([raw])[0]) if ranked else 0.0
            else:
                ranked, raw = True, bm25
                score = bm25 / (bm25 + self.full_text_half_score)
            captions = result.get("@search.captions") or []
            caption = getattr(captions[0], "text", None) if captions else None
            content = result.get("content") or ""
            hits.append(
                SearchHit(
                    document_id=str(result["document_id"]),
                    title=str(result.get("title") or ""),
                    category=str(result.get("category") or ""),
                    raw_score=raw,
                    score=score,
                    # Map the caption onto our own passage so the snippet is verbatim document text.
                    passage=best_passage(content, caption or query) if content else "",
                    ranked=ranked,
                )
            )
        hits.sort(key=lambda h: (not h.ranked, -h.score, h.document_id))
        notes = []
        if semantic and partial:
            unranked = sum(1 for h in hits if not h.ranked)
            notes.append(
                f"semantic ranking partly failed ({reason or 'no reason given'}, {partial_type or 'unknown type'}): "
                f"{unranked} of {len(hits)} document(s) without a reranker score get no topical credit"
            )
        ranking = ("semantic (partial)" if partial else "semantic") if semantic else "full text"
        return SearchAnswer(hits, ranking, reason if semantic else None, partial_type if semantic else None, notes)

    # ---- the index ----
    def index_definition(self):
        """The index: fields the pipeline needs and the semantic configuration used by `search`."""
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

        # SearchableField is always Edm.String (Collection(Edm.String) with collection=True); it takes no type.
        string = SearchFieldDataType.STRING
        return SearchIndex(
            name=self.index_name,
            fields=[
                SimpleField(name="document_id", type=string, key=True, filterable=True),
                SearchableField(name="title"),
                SimpleField(name="category", type=string, filterable=True, facetable=True),
                SearchableField(name="content"),
                SearchableField(name="audience"),
                SearchableField(name="keywords", collection=True, filterable=True),
                SimpleField(
                    name="approval_date",
                    type=SearchFieldDataType.DATE_TIME_OFFSET,
                    filterable=True,
                    sortable=True,
                ),
                SimpleField(name="source_url", type=string),
                SimpleField(name="content_sha256", type=string, filterable=True),
            ],
            semantic_search=SemanticSearch(
                configurations=[
                    SemanticConfiguration(
                        name=self.semantic_configuration,
                        prioritized_fields=SemanticPrioritizedFields(
                            title_field=SemanticField(field_name="title"),
                            content_fields=[SemanticField(field_name="content")],
                            keywords_fields=[
                                SemanticField(field_name="keywords"),
                                SemanticField(field_name="audience"),
                            ],
                        ),
                    )
                ]
            ),
        )

    def index_differences(self, index: Any) -> list[str]:
        """What an existing index lacks or defines differently from `index_definition` (empty: usable)."""
        problems = []
        fields = {f.name: f for f in (index.fields or [])}
        for name, (edm, key, searchable, filterable) in INDEX_FIELDS.items():
            found = fields.get(name)
            if found is None:
                problems.append(f"field '{name}' is missing (want {edm})")
                continue
            found_type = str(getattr(found.type, "value", found.type))
            if found_type != edm:
                problems.append(f"field '{name}' is {found_type}, want {edm}")
            if bool(found.key) != key and key:
                problems.append(f"field '{name}' must be the key")
            if searchable and not found.searchable:
                problems.append(f"field '{name}' must be searchable")
            if filterable and not found.filterable:
                problems.append(f"field '{name}' must be filterable")
        configurations = {
            c.name: c for c in ((index.semantic_search.configurations or []) if index.semantic_search else [])
        }
        if self.query_type == "semantic":
            chosen = configurations.get(self.semantic_configuration)
            if chosen is None:
                problems.append(
                    f"semantic configuration '{self.semantic_configuration}' is missing"
                    + (f" (the index has: {', '.join(sorted(configurations))})" if configurations else "")
                )
            else:
                prioritized = chosen.prioritized_fields
                have = {
                    "title": [prioritized.title_field.field_name] if prioritized.title_field else [],
                    "content": [f.field_name for f in prioritized.content_fields or []],
                    "keywords": [f.field_name for f in prioritized.keywords_fields or []],
                }
                for group, want in SEMANTIC_FIELDS.items():
                    if have[group] != want:
                        problems.append(
                            f"semantic configuration '{self.semantic_configuration}': {group} fields are "
                            f"{have[group] or 'none'}, want {want}"
                        )
        return problems

    def upload_documents(self, library: ContentLibrary, batch_size: int = 500) -> UploadReport:
        """Create the index if missing (or verify an existing one), upload every approved document, delete
        documents no longer approved. Raises SearchConfigurationError saying what differs in an existing index,
        SearchServiceError naming the documents the service refused."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        documents = [
            {
                "document_id": d.document_id,
                "title": d.title,
                "category": d.category,
                "content": d.content,
                "audience": d.audience,
                "keywords": list(d.keywords),
                "approval_date": f"{d.approval_date}T00:00:00Z",  # approved documents all have one
                "source_url": d.source_url,
                "content_sha256": d.sha256,
            }
            for d in library.approved
        ]
        try:
            with self.index_client() as index_client:
                try:
                    existing = index_client.get_index(self.index_name)
                    created = False
                except ResourceNotFoundError:
                    index_client.create_index(self.index_definition())
                    created = True
            if not created:
                differences = self.index_differences(existing)
                if differences:
                    raise SearchConfigurationError(
                        f"Azure AI Search index '{self.index_name}' exists but differs from what the pipeline "
                        f"needs: {'; '.join(differences)}. Fix the index (or delete it so search-upload "
                        "creates it), or set retrieval.yaml azure.index_name to another index"
                    )
            with self.search_client(admin=True) as client:
                stored = {str(r["document_id"]) for r in client.search(search_text="*", select=["document_id"])}
                refused: list[str] = []
                for start in range(0, len(documents), batch_size):
                    results = client.merge_or_upload_documents(documents[start : start + batch_size])
                    refused += [f"{r.key} ({r.status_code}: {r.error_message})" for r in results if not r.succeeded]
                stale = sorted(stored - {d["document_id"] for d in documents})
                if stale:
                    results = client.delete_documents([{"document_id": key} for key in stale])
                    refused += [f"{r.key} ({r.status_code}: {r.error_message})" for r in results if not r.succeeded]
        except AzureError as error:
            raise self._fail("upload", error, admin=True) from None
        if refused:
            raise SearchServiceError(
                f"Azure AI Search index '{self.index_name}' refused {len(refused)} document(s): " + "; ".join(refused)
            )
        return UploadReport(self.index_name, created, len(documents), stale, library.version)


def _approved(value: object, today: date) -> bool:
    """Approval gate on the service's copy: a missing or future approval date is not approved."""
    if value is None:
        return False
    if isinstance(value, datetime):
        return value.date() <= today
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date() <= today
    except ValueError:
        return False


def upload_content_library(
    content_path: str | Path, azure: AzureAISearchResource, as_of: date | None = None
) -> UploadReport:
    """Validate the content library and upload its approved documents to the configured Azure AI Search index
    (`personalize search-upload`; the `azure:` section of config/retrieval.yaml, admin key for api_key auth)."""
    library = load_content_library(content_path, as_of=as_of)
    return azure.upload_documents(library)
