"""Search over the approved content library: one resource interface; embedded and Azure AI Search backends.

- `EmbeddedSearchResource` (default, offline): BM25 from DuckDB's full-text-search extension over the
  `content_index` table in the warehouse (fields title, keywords, audience, content, weighted), and a second
  full-text index over `content_passages` to find the part of each document that matched. The extension is
  LOADed from the `duckdb-extension-fts` wheel; it is never installed from the network. Both indexes are built
  by the `content_index` asset (`write_content_index`), once per content version; searching is read-only.
- `AzureAISearchResource`: azure-search-documents `SearchClient`, semantic query with a configured semantic
  configuration, reranker score when present. Entra ID (managed identity preferred) or an API key from an
  environment variable; `upload_documents` creates the index if missing and syncs the library into it.

Scores come back normalized to [0, 1] (`personalization_assets/lib/retrieval.py`: `normalize_bm25`,
`normalize_reranker`), so one relevance threshold applies to both backends.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from dagster import ConfigurableResource
from pydantic import Field

from personalization_assets.lib.content import ContentLibrary, load_content_library
from personalization_assets.lib.retrieval import (
    SEARCHABLE_FIELDS,
    AzureSearchConfig,
    RetrievalConfig,
    SearchHit,
    best_passage,
    normalize_bm25,
    normalize_reranker,
    split_passages,
)
from resources.azure_auth import AuthMode, read_api_key, require_secure_endpoint, token_credential
from resources.azure_retry import read_only_post_retry_policy
from resources.warehouse import SCHEMA, DuckDBWarehouse, table_exists

DOCUMENTS_TABLE = "content_index"
PASSAGES_TABLE = "content_passages"
BUILD_TABLE = "content_index_build"
DOCUMENTS_FTS = f"fts_{SCHEMA}_{DOCUMENTS_TABLE}"
PASSAGES_FTS = f"fts_{SCHEMA}_{PASSAGES_TABLE}"
FTS_STEMMER = "porter"
FTS_STOPWORDS = "english"
# Part of the stored build state: changing how passages or indexes are built forces a rebuild.
INDEX_FORMAT = f"duckdb-fts/{FTS_STEMMER}/{FTS_STOPWORDS}/fields={','.join(SEARCHABLE_FIELDS)}/passages-v1"


class SearchServiceError(RuntimeError):
    """The search backend failed (after its retries); the message says what and where, never a secret."""


class SearchIndexMissingError(RuntimeError):
    """The embedded full-text index has not been built (materialize `content_index` first)."""


class SearchResource(ConfigurableResource):
    """Finds the approved documents most relevant to a query; one subclass per backend."""

    @property
    def backend(self) -> str:
        raise NotImplementedError

    def search(self, query: str, top: int, category: str | None = None) -> list[SearchHit]:
        """Up to `top` hits, best first, scores normalized to [0, 1]; `category` restricts to one category."""
        raise NotImplementedError


# ---- embedded: DuckDB full-text search ---------------------------------------------------------------------
def fts_extension_path() -> Path:
    """The FTS extension file shipped in the duckdb-extension-fts wheel for the installed DuckDB version."""
    import duckdb_extension_fts

    path = (
        Path(duckdb_extension_fts.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "fts.duckdb_extension"
    )
    if not path.exists():
        raise SearchIndexMissingError(
            f"DuckDB full-text-search extension not found at {path}: "
            f"install duckdb-extension-fts=={duckdb.__version__}"
        )
    return path


def load_fts(connection: duckdb.DuckDBPyConnection) -> None:
    # LOAD from the wheel; never let DuckDB auto-install from the network.
    connection.execute(f"LOAD '{fts_extension_path()}'")


def passages_frame(documents: pd.DataFrame) -> pd.DataFrame:
    """One row per passage of each document: passage_id, document_id, passage_no, text."""
    per_document = documents.set_index("document_id")["content"].map(split_passages)
    exploded = per_document.explode().dropna().rename("text").reset_index()
    exploded["passage_no"] = exploded.groupby("document_id").cumcount().astype("int64")
    exploded["passage_id"] = exploded["document_id"] + "#" + exploded["passage_no"].astype(str)
    return exploded[["passage_id", "document_id", "passage_no", "text"]]


@dataclass(frozen=True)
class IndexBuild:
    content_version: str
    documents: int
    passages: int
    rebuilt: bool


def stored_build(connection: duckdb.DuckDBPyConnection) -> tuple[str, str] | None:
    """(content_version, index_format) of the index in the warehouse; None when absent or incomplete."""
    if not all(table_exists(connection, t) for t in (BUILD_TABLE, DOCUMENTS_TABLE, PASSAGES_TABLE)):
        return None
    schemas = {row[0] for row in connection.execute("select schema_name from duckdb_schemas()").fetchall()}
    if not {DOCUMENTS_FTS, PASSAGES_FTS} <= schemas:
        return None
    row = connection.execute(f"select content_version, index_format from {SCHEMA}.{BUILD_TABLE}").fetchone()
    return (row[0], row[1]) if row else None


def write_content_index(
    connection: duckdb.DuckDBPyConnection, documents: pd.DataFrame, content_version: str, force: bool = False
) -> IndexBuild:
    """Replace the documents table, the passages table and both full-text indexes, unless already current.

    Run inside `warehouse.transaction()`: tables and indexes change together or not at all.
    """
    load_fts(connection)
    passages = passages_frame(documents)
    if not force and stored_build(connection) == (content_version, INDEX_FORMAT):
        return IndexBuild(content_version, len(documents), len(passages), rebuilt=False)
    build = pd.DataFrame(
        {
            "content_version": [content_version],
            "index_format": [INDEX_FORMAT],
            "documents": [len(documents)],
            "passages": [len(passages)],
            "built_at": [pd.Timestamp.now(tz="UTC").tz_localize(None)],
        }
    )
    for table, frame in ((DOCUMENTS_TABLE, documents), (PASSAGES_TABLE, passages), (BUILD_TABLE, build)):
        connection.register("_frame", frame)
        connection.execute(f"create or replace table {SCHEMA}.{table} as select * from _frame")
        connection.unregister("_frame")
    fields = ", ".join(f"'{f}'" for f in SEARCHABLE_FIELDS)
    options = f"stemmer = '{FTS_STEMMER}', stopwords = '{FTS_STOPWORDS}', overwrite = 1"
    connection.execute(
        f"pragma create_fts_index('{SCHEMA}.{DOCUMENTS_TABLE}', 'document_id', {fields}, {options})"
    )
    connection.execute(
        f"pragma create_fts_index('{SCHEMA}.{PASSAGES_TABLE}', 'passage_id', 'text', {options})"
    )
    return IndexBuild(content_version, len(documents), len(passages), rebuilt=True)


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
        return connection.execute(
            f"select {selected} from {SCHEMA}.{DOCUMENTS_TABLE} order by document_id"
        ).fetchdf()


class EmbeddedSearchResource(SearchResource):
    """BM25 over the DuckDB full-text index built by the `content_index` asset (read-only at search time).

    Raw score: sum over fields of `weight * BM25(field)` (title and keywords count double). Normalized score:
    a logistic curve on the raw score divided by the query's IDF sum (`normalize_bm25`), so 0.5 means the
    document explains `half_relevance_coverage` of the query.
    """

    warehouse: DuckDBWarehouse
    field_weights: dict[str, float] = Field(
        default_factory=lambda: {"title": 2.0, "keywords": 2.0, "audience": 1.5, "content": 1.0},
        description="BM25 weight per field (title, keywords, audience, content)",
    )
    half_relevance_coverage: float = Field(
        default=0.3, description="query coverage (BM25 / query IDF sum) that scores 0.5; see normalize_bm25"
    )
    steepness: float = Field(default=2.0, description="slope of the logistic curve on coverage")

    @property
    def backend(self) -> str:
        return "embedded"

    def _weighted_score_sql(self) -> str:
        unknown = sorted(set(self.field_weights) - set(SEARCHABLE_FIELDS))
        if unknown:
            raise ValueError(f"field_weights: unknown field(s) {', '.join(unknown)}")
        terms = [
            f"{float(weight)!r} * "
            f"coalesce({DOCUMENTS_FTS}.match_bm25(document_id, $query, fields := '{name}'), 0)"
            for name, weight in self.field_weights.items()
            if weight > 0
        ]
        return " + ".join(terms)

    def search(self, query: str, top: int, category: str | None = None) -> list[SearchHit]:
        missing = SearchIndexMissingError(
            f"no full-text index of the content library in {self.warehouse.path}: materialize the asset "
            "'content_index' first"
        )
        if not Path(self.warehouse.path).exists():
            raise missing
        with self.warehouse.connect(read_only=True) as connection:
            if stored_build(connection) is None:
                raise missing
            load_fts(connection)
            idf_total = self._query_idf(connection, query)
            scored = connection.execute(
                f"""
                select document_id, title, category, score from (
                    select document_id, title, category, {self._weighted_score_sql()} as score
                    from {SCHEMA}.{DOCUMENTS_TABLE}
                    where approval_date <= current_date and ($category is null or category = $category)
                ) where score > 0
                order by score desc, document_id
                """,
                {"query": query, "category": category},
            ).fetchdf()
            if scored.empty:
                return []
            scored["normalized"] = normalize_bm25(
                scored["score"], idf_total, self.half_relevance_coverage, self.steepness
            )
            scored = scored.head(top)
            passages = connection.execute(
                f"""
                select document_id, text from (
                    select document_id, passage_no, text,
                           row_number() over (
                               partition by document_id order by score desc, passage_no
                           ) as pick
                    from (
                        select document_id, passage_no, text,
                               coalesce({PASSAGES_FTS}.match_bm25(passage_id, $query), 0) as score
                        from {SCHEMA}.{PASSAGES_TABLE}
                        where document_id in (select unnest($ids))
                    )
                ) where pick = 1
                """,
                {"query": query, "ids": scored["document_id"].tolist()},
            ).fetchdf()
        passage_by_id = dict(zip(passages["document_id"], passages["text"], strict=True))
        return [
            SearchHit(
                document_id=row.document_id,
                title=row.title,
                category=row.category,
                raw_score=float(row.score),
                score=float(row.normalized),
                passage=passage_by_id.get(row.document_id, ""),
            )
            for row in scored.itertuples(index=False)
        ]

    @staticmethod
    def _query_idf(connection: duckdb.DuckDBPyConnection, query: str) -> float:
        """Sum of the BM25 IDF of the query's distinct terms, as the index tokenizes, filters and stems them.

        Terms the library never uses count with the highest IDF: they are part of the query nothing matched.
        """
        rows = connection.execute(
            f"""
            with tokens as (select unnest({DOCUMENTS_FTS}.tokenize($query)) as token),
            terms as (
                select distinct stem(token, '{FTS_STEMMER}') as term from tokens
                where token <> '' and token not in (select sw from {DOCUMENTS_FTS}.stopwords)
            )
            select coalesce(d.df, 0) as df, (select num_docs from {DOCUMENTS_FTS}.stats) as n
            from terms left join {DOCUMENTS_FTS}.dict d on d.term = terms.term
            """,
            {"query": query},
        ).fetchall()
        if not rows:
            return 0.0
        df = np.array([r[0] for r in rows], dtype=float)
        n = float(rows[0][1])
        return float(np.log((n - df + 0.5) / (df + 0.5) + 1.0).sum())


# ---- Azure AI Search ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadReport:
    index_name: str
    index_created: bool
    uploaded: int
    deleted: list[str]
    content_version: str


class AzureAISearchResource(SearchResource):
    """Azure AI Search through azure-search-documents, semantic ranking with the configured configuration.

    Normalized score: the semantic reranker score (0-4) divided by 4; for answers without reranker scores,
    the BM25 `@search.score` relative to the best one in the answer.
    """

    endpoint: str = Field(description="https://<service>.search.windows.net (http only on loopback)")
    index_name: str = "approved-content"
    semantic_configuration: str = "content-semantic"
    auth: AuthMode = "managed_identity"
    api_key_env: str = Field(
        default="", description="environment variable holding the API key (auth: api_key)"
    )
    managed_identity_client_id: str | None = None
    ca_bundle_path: str | None = Field(
        default=None, description="CA bundle for TLS verification (private CA)"
    )
    max_retries: int = 3
    retry_backoff_seconds: float = 0.8
    retry_backoff_max_seconds: float = 30.0
    timeout_seconds: float = 30.0

    @property
    def backend(self) -> str:
        return "azure"

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

    def _credential(self):
        if self.auth == "api_key":
            from azure.core.credentials import AzureKeyCredential

            return AzureKeyCredential(read_api_key(self.api_key_env, "retrieval.yaml azure.api_key_env"))
        return token_credential(self.auth, self.managed_identity_client_id)

    def _endpoint(self) -> str:
        return require_secure_endpoint(self.endpoint, "retrieval.yaml azure.endpoint")

    def search_client(self):
        from azure.search.documents import SearchClient

        return SearchClient(self._endpoint(), self.index_name, self._credential(), **self._client_kwargs())

    def index_client(self):
        from azure.search.documents.indexes import SearchIndexClient

        return SearchIndexClient(self._endpoint(), self._credential(), **self._client_kwargs())

    def _fail(self, action: str, error: Exception) -> SearchServiceError:
        status = getattr(error, "status_code", None)
        detail = getattr(error, "message", None) or str(error) or type(error).__name__
        where = f"index '{self.index_name}' at {self.endpoint}"
        return SearchServiceError(
            f"Azure AI Search {action} failed for {where}"
            f"{f' (HTTP {status})' if status else ''} after up to {self.max_retries} retries: "
            f"{type(error).__name__}: {detail.splitlines()[0][:300]}"
        )

    def search(self, query: str, top: int, category: str | None = None) -> list[SearchHit]:
        from azure.core.exceptions import AzureError

        filter_expression = f"category eq '{category.replace(chr(39), chr(39) * 2)}'" if category else None
        client = self.search_client()  # configuration errors (endpoint, missing key) surface as they are
        try:
            with client:
                results = list(
                    client.search(
                        search_text=query,
                        query_type="semantic",
                        semantic_configuration_name=self.semantic_configuration,
                        query_caption="extractive",
                        top=top,
                        filter=filter_expression,
                        select=["document_id", "title", "category", "content", "approval_date"],
                    )
                )
        except (AzureError, TypeError, ValueError, KeyError) as error:
            # TypeError/ValueError/KeyError: an answer the SDK could not deserialize (wrong shape).
            raise self._fail("query", error) from None

        today = datetime.now(UTC).date()
        approved = [r for r in results if _approved(r.get("approval_date"), today)]
        if not approved:
            return []
        rerankers = [r.get("@search.reranker_score") for r in approved]
        if all(score is not None for score in rerankers):
            raw = np.array(rerankers, dtype=float)
            normalized = normalize_reranker(raw)
        else:  # no semantic ranking in this answer: BM25 relative to the best hit
            raw = np.array([r.get("@search.score") or 0.0 for r in approved], dtype=float)
            normalized = raw / raw.max() if raw.max() > 0 else np.zeros_like(raw)
        hits = []
        for result, raw_score, score in zip(approved, raw, normalized, strict=True):
            captions = result.get("@search.captions") or []
            caption = getattr(captions[0], "text", None) if captions else None
            content = result.get("content") or ""
            hits.append(
                SearchHit(
                    document_id=str(result["document_id"]),
                    title=str(result.get("title") or ""),
                    category=str(result.get("category") or ""),
                    raw_score=float(raw_score),
                    score=float(score),
                    # Map the caption onto our own passage so the snippet is verbatim document text.
                    passage=best_passage(content, caption or query) if content else "",
                )
            )
        return sorted(hits, key=lambda h: (-h.score, h.document_id))

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

        string = SearchFieldDataType.String
        return SearchIndex(
            name=self.index_name,
            fields=[
                SimpleField(name="document_id", type=string, key=True, filterable=True),
                SearchableField(name="title", type=string),
                SimpleField(name="category", type=string, filterable=True, facetable=True),
                SearchableField(name="content", type=string),
                SearchableField(name="audience", type=string),
                SearchableField(
                    name="keywords",
                    type=SearchFieldDataType.Collection(string),
                    collection=True,
                    filterable=True,
                ),
                SimpleField(
                    name="approval_date",
                    type=SearchFieldDataType.DateTimeOffset,
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

    def upload_documents(self, library: ContentLibrary, batch_size: int = 500) -> UploadReport:
        """Create the index if missing, upload every approved document, delete documents no longer approved.

        Raises SearchServiceError naming the documents the service refused.
        """
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        documents = [
            {
                "document_id": d.document_id,
                "title": d.title,
                "category": d.category,
                "content": d.content,
                "audience": d.audience,
                "keywords": list(d.keywords),
                "approval_date": f"{d.approval_date.isoformat()}T00:00:00Z",
                "source_url": d.source_url,
                "content_sha256": d.sha256,
            }
            for d in library.approved
        ]
        try:
            with self.index_client() as index_client:
                try:
                    index_client.get_index(self.index_name)
                    created = False
                except ResourceNotFoundError:
                    index_client.create_index(self.index_definition())
                    created = True
            with self.search_client() as client:
                stored = {
                    str(r["document_id"]) for r in client.search(search_text="*", select=["document_id"])
                }
                refused: list[str] = []
                for start in range(0, len(documents), batch_size):
                    results = client.merge_or_upload_documents(documents[start : start + batch_size])
                    refused += [
                        f"{r.key} ({r.status_code}: {r.error_message})" for r in results if not r.succeeded
                    ]
                stale = sorted(stored - {d["document_id"] for d in documents})
                if stale:
                    results = client.delete_documents([{"document_id": key} for key in stale])
                    refused += [
                        f"{r.key} ({r.status_code}: {r.error_message})" for r in results if not r.succeeded
                    ]
        except AzureError as error:
            raise self._fail("upload", error) from None
        if refused:
            raise SearchServiceError(
                f"Azure AI Search index '{self.index_name}' refused {len(refused)} document(s): "
                + "; ".join(refused)
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


# ---- configuration -> resource -----------------------------------------------------------------------------
def azure_resource_from_config(azure: AzureSearchConfig) -> AzureAISearchResource:
    return AzureAISearchResource(
        endpoint=azure.endpoint,
        index_name=azure.index_name,
        semantic_configuration=azure.semantic_configuration,
        auth=azure.auth,
        api_key_env=azure.api_key_env,
        managed_identity_client_id=azure.managed_identity_client_id,
        ca_bundle_path=azure.ca_bundle_path,
        max_retries=azure.max_retries,
        retry_backoff_seconds=azure.retry_backoff_seconds,
        retry_backoff_max_seconds=azure.retry_backoff_max_seconds,
        timeout_seconds=azure.timeout_seconds,
    )


def search_resource_from_config(config: RetrievalConfig, warehouse: DuckDBWarehouse) -> SearchResource:
    """The backend selected in config/retrieval.yaml (`backend: embedded | azure`)."""
    if config.backend == "azure":
        return azure_resource_from_config(config.azure)
    return EmbeddedSearchResource(
        warehouse=warehouse,
        field_weights=dict(config.embedded.field_weights),
        half_relevance_coverage=config.embedded.half_relevance_coverage,
        steepness=config.embedded.steepness,
    )


def upload_content_library(
    content_path: str | Path, config: RetrievalConfig, as_of: date | None = None
) -> UploadReport:
    """Validate the content library and upload its approved documents to the configured Azure AI Search index.

    For a CLI command (`personalize search-upload`). Needs `backend: azure` settings in config/retrieval.yaml.
    """
    if not config.azure.endpoint:
        raise SearchServiceError("retrieval.yaml azure.endpoint is not set: nothing to upload to")
    library = load_content_library(content_path, as_of=as_of)
    return azure_resource_from_config(config.azure).upload_documents(library)
