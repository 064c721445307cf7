"""The embedded search backend: BM25 over DuckDB full-text search in the warehouse, offline.

`write_content_index` stores the approved documents (`content_index`), their passages (`content_passages`) and
one full-text index over each, in the caller's transaction, once per content version and index format.
`bm25_search` ranks documents by field-weighted BM25 and picks each document's best-matching passage. The FTS
extension is LOADed from the `duckdb-extension-fts` wheel; it is never installed from the network. No Dagster
here: `resources/search.py` wraps this as the `EmbeddedSearchResource`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from personalization_assets.lib.retrieval import (
    SEARCHABLE_FIELDS,
    SearchHit,
    normalize_bm25,
    split_passages,
)

SCHEMA = "main"  # the warehouse schema (resources.warehouse.SCHEMA)
DOCUMENTS_TABLE = "content_index"
PASSAGES_TABLE = "content_passages"
BUILD_TABLE = "content_index_build"
DOCUMENTS_FTS = f"fts_{SCHEMA}_{DOCUMENTS_TABLE}"
PASSAGES_FTS = f"fts_{SCHEMA}_{PASSAGES_TABLE}"
FTS_STEMMER = "porter"
FTS_STOPWORDS = "english"
# Part of the stored build state: changing how passages or indexes are built forces a rebuild.
INDEX_FORMAT = f"duckdb-fts/{FTS_STEMMER}/{FTS_STOPWORDS}/fields={','.join(SEARCHABLE_FIELDS)}/passages-v1"


class SearchIndexMissingError(RuntimeError):
    """The embedded full-text index has not been built (materialize `content_index` first)."""


def fts_extension_path() -> Path:
    """The FTS extension file shipped in the duckdb-extension-fts wheel for the installed DuckDB version."""
    import duckdb_extension_fts

    path = Path(duckdb_extension_fts.__file__).parent / "extensions" / f"v{duckdb.__version__}" / "fts.duckdb_extension"
    if not path.exists():
        raise SearchIndexMissingError(
            f"DuckDB full-text-search extension not found at {path}: install duckdb-extension-fts=={duckdb.__version__}"
        )
    return path


def load_fts(connection: duckdb.DuckDBPyConnection) -> None:
    # LOAD from the wheel; never let DuckDB auto-install from the network.
    connection.execute(f"LOAD '{fts_extension_path()}'")


def _table_exists(connection: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        connection.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [SCHEMA, table],
        ).fetchone()[0]  # type: ignore[index]
    )


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
    if not all(_table_exists(connection, t) for t in (BUILD_TABLE, DOCUMENTS_TABLE, PASSAGES_TABLE)):
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
    connection.execute(f"pragma create_fts_index('{SCHEMA}.{DOCUMENTS_TABLE}', 'document_id', {fields}, {options})")
    connection.execute(f"pragma create_fts_index('{SCHEMA}.{PASSAGES_TABLE}', 'passage_id', 'text', {options})")
    return IndexBuild(content_version, len(documents), len(passages), rebuilt=True)


def _weighted_score_sql(field_weights: Mapping[str, float]) -> str:
    unknown = sorted(set(field_weights) - set(SEARCHABLE_FIELDS))
    if unknown:
        raise ValueError(f"field_weights: unknown field(s) {', '.join(unknown)}")
    terms = [
        f"{float(weight)!r} * coalesce({DOCUMENTS_FTS}.match_bm25(document_id, $query, fields := '{name}'), 0)"
        for name, weight in field_weights.items()
        if weight > 0
    ]
    return " + ".join(terms)


def query_idf(connection: duckdb.DuckDBPyConnection, query: str) -> float:
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


def bm25_search(
    connection: duckdb.DuckDBPyConnection,
    query: str,
    top: int,
    category: str | None,
    field_weights: Mapping[str, float],
    half_relevance_coverage: float,
    steepness: float,
) -> list[SearchHit]:
    """Up to `top` approved documents matching `query`, best first, with their best-matching passage.

    Raw score: sum over fields of `weight * BM25(field)`; score: `normalize_bm25` on the raw score divided by
    the query's IDF sum, so it depends only on the document and the query.
    """
    if stored_build(connection) is None:
        raise SearchIndexMissingError("no full-text index of the content library: materialize 'content_index'")
    load_fts(connection)
    idf_total = query_idf(connection, query)
    scored = connection.execute(
        f"""
        select document_id, title, category, score from (
            select document_id, title, category, {_weighted_score_sql(field_weights)} as score
            from {SCHEMA}.{DOCUMENTS_TABLE}
            where approval_date <= current_date and ($category is null or category = $category)
        ) where score > 0
        order by score desc, document_id
        limit $top
        """,
        {"query": query, "category": category, "top": top},
    ).fetchdf()
    if scored.empty:
        return []
    scored["normalized"] = normalize_bm25(scored["score"], idf_total, half_relevance_coverage, steepness)
    passages = connection.execute(
        f"""
        select document_id, text from (
            select document_id, passage_no, text,
                   row_number() over (partition by document_id order by score desc, passage_no) as pick
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
