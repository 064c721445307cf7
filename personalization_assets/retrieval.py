"""Stage 2 — retrieval: the indexed library of approved content, and the documents each segment gets.

- `content_index` (whole library): validates `data/content/*.json`, keeps the approved documents, and
  writes the `content_index` table, its passages and their BM25 full-text indexes in one warehouse
  transaction. It rebuilds only when the content version (hash of every approved document) or the index
  format changes.
- `retrieved_content` (per segment): builds the segment's query from its profile, asks the configured search
  backend, keeps the approved documents above the relevance threshold (at most `top_k`), with a snippet of the
  passage that matched. A search failure fails the partition and writes nothing.
"""

import warnings

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    Failure,
    MetadataValue,
    PreviewWarning,
    asset,
    asset_check,
)

from personalization_assets.constants import SEGMENT_PARTITION_METADATA, STORAGE_KINDS
from personalization_assets.lib.retrieval import (
    SNIPPET_MAX_CHARS,
    RetrievalConfig,
    build_query,
    ends_on_word_boundary,
    population_means,
    retrieved_frame,
    select_hits,
)
from personalization_assets.partitions import segment_partitions
from resources.search import (
    DOCUMENTS_TABLE,
    SearchIndexMissingError,
    SearchResource,
    SearchServiceError,
    read_content_index,
)
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse

GROUP = "retrieval"
RETRIEVAL_CONFIG_FILE = "retrieval.yaml"
# Fewer documents than this above the threshold is a warning (generation has little to ground on).
MIN_DOCUMENTS_WARNING = 3


def _markdown(frame: pd.DataFrame, rows: int = 10) -> MetadataValue:
    return MetadataValue.md(
        frame.head(rows).to_markdown(index=False, floatfmt=".3f") if len(frame) else "(none)"
    )


def _hits_markdown(frame: pd.DataFrame) -> MetadataValue:
    return _markdown(frame[["rank", "document_id", "title", "category", "score", "snippet"]])


@asset(
    partitions_def=segment_partitions,
    metadata=SEGMENT_PARTITION_METADATA,
    group_name=GROUP,
    kinds=STORAGE_KINDS,
    deps=[AssetKey("content_index")],
)
def retrieved_content(
    context: AssetExecutionContext,
    segment_profiles: pd.DataFrame,
    settings: PipelineSettings,
    search: SearchResource,
    warehouse: DuckDBWarehouse,
) -> pd.DataFrame:
    """The 3-5 approved documents most relevant to the segment, with score, matched snippet and the query."""
    segment = context.partition_key
    config = settings.load(RETRIEVAL_CONFIG_FILE, RetrievalConfig)
    profile = segment_profiles[segment_profiles["segment"] == segment]
    if profile.empty:
        raise Failure(
            f"segment '{segment}' has no row in segment_profiles: re-materialize the segmentation assets "
            "(the segment may have disappeared)"
        )
    query = build_query(profile.iloc[0].to_dict(), population_means(segment_profiles), config.query)

    try:
        hits = search.search(query.text, top=config.top_k, category=config.category)
    except (SearchServiceError, SearchIndexMissingError) as error:
        raise Failure(
            description=f"retrieval for segment '{segment}' failed ({search.backend} backend): {error}",
            metadata={"segment": segment, "query": query.text},
        ) from None

    # Gate in the data path: only documents of the approved library (the search service may hold others).
    approved_ids = set(read_content_index(warehouse, columns=["document_id"])["document_id"])
    unknown = [hit.document_id for hit in hits if hit.document_id not in approved_ids]
    if unknown:
        context.log.warning(f"dropped hits not in the approved content library: {', '.join(unknown)}")
    kept = select_hits([h for h in hits if h.document_id in approved_ids], config.threshold, config.top_k)
    frame = retrieved_frame(segment, query.text, kept)

    candidates = pd.DataFrame(
        {
            "document_id": [h.document_id for h in hits],
            "score": [h.score for h in hits],
            "raw_score": [h.raw_score for h in hits],
            "kept": [h.document_id in set(frame["document_id"]) for h in hits],
        }
    )
    context.add_output_metadata(
        {
            "query": query.text,
            "query_sources": MetadataValue.md(
                "\n".join(
                    f"- **{source}**: {', '.join(phrases) or '(none)'}"
                    for source, phrases in query.sources.items()
                )
            ),
            "backend": search.backend,
            "threshold": config.threshold,
            "top_k": config.top_k,
            "documents_kept": len(frame),
            "hits": _hits_markdown(frame),
            "candidates": _markdown(candidates),
        }
    )
    if len(frame) < MIN_DOCUMENTS_WARNING:
        context.log.warning(
            f"segment '{segment}': only {len(frame)} document(s) scored >= {config.threshold} "
            f"for the query {query.text!r}"
        )
    return frame


# ---- checks ------------------------------------------------------------------------------------------------
def _per_segment_check(**kwargs):
    """`asset_check` on retrieved_content, evaluated per segment partition (a Dagster preview feature)."""

    def decorate(fn):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PreviewWarning)
            return asset_check(asset=retrieved_content, partitions_def=segment_partitions, **kwargs)(fn)

    return decorate


def _latest_query(context: AssetCheckExecutionContext, segment: str) -> str:
    """The query of the segment's latest materialization (also known when nothing was retrieved)."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=retrieved_content.key, asset_partitions=[segment]), limit=1
    ).records
    if records and records[0].asset_materialization is not None:
        value = records[0].asset_materialization.metadata.get("query")
        if value is not None:
            return str(getattr(value, "value", value))
    return "(unknown: no materialization recorded)"


@_per_segment_check(blocking=True)
def has_relevant_documents(
    context: AssetCheckExecutionContext, retrieved_content: pd.DataFrame, settings: PipelineSettings
) -> AssetCheckResult:
    """The segment has at least one document above the relevance threshold (warning below 3)."""
    segment = context.partition_key
    threshold = settings.load(RETRIEVAL_CONFIG_FILE, RetrievalConfig).threshold
    above = retrieved_content[retrieved_content["score"] >= threshold]
    query = (
        str(retrieved_content["query"].iloc[0]) if len(retrieved_content) else _latest_query(context, segment)
    )
    count = len(above)
    metadata = {
        "segment": segment,
        "query": query,
        "documents_above_threshold": count,
        "threshold": threshold,
    }
    if count == 0:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=f"segment '{segment}': no document scored >= {threshold} for the query {query!r}",
            metadata=metadata,
        )
    if count < MIN_DOCUMENTS_WARNING:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.WARN,
            description=(
                f"segment '{segment}': only {count} document(s) scored >= {threshold} "
                f"(want {MIN_DOCUMENTS_WARNING}) for the query {query!r}"
            ),
            metadata=metadata,
        )
    return AssetCheckResult(passed=True, metadata=metadata)


@_per_segment_check()
def snippets_short_and_on_word_boundary(
    context: AssetCheckExecutionContext, retrieved_content: pd.DataFrame, warehouse: DuckDBWarehouse
) -> AssetCheckResult:
    """Every snippet is at most 200 characters and is document text cut on a word boundary."""
    contents = read_content_index(warehouse, columns=["document_id", "content"]).set_index("document_id")[
        "content"
    ]
    rows = retrieved_content.assign(
        length=retrieved_content["snippet"].str.len(),
        source=retrieved_content["document_id"].map(contents).fillna(""),
    )
    too_long = rows["length"] > SNIPPET_MAX_CHARS
    off_boundary = ~pd.Series(
        [ends_on_word_boundary(s, c) for s, c in zip(rows["snippet"], rows["source"], strict=True)],
        index=rows.index,
    )
    rows["problem"] = np.where(
        too_long, "longer than 200 characters", "not document text ending on a word boundary"
    )
    bad = rows[too_long | off_boundary]
    return AssetCheckResult(
        passed=bad.empty,
        metadata={
            "segment": context.partition_key,
            "snippets": len(rows),
            "longest_snippet": int(rows["length"].max()) if len(rows) else 0,
            "bad_snippets": _markdown(bad[["rank", "document_id", "length", "problem", "snippet"]]),
        },
    )


@_per_segment_check(blocking=True)
def documents_in_content_library(
    context: AssetCheckExecutionContext, retrieved_content: pd.DataFrame, warehouse: DuckDBWarehouse
) -> AssetCheckResult:
    """Every retrieved document_id is an approved document of the content library (`content_index`)."""
    known = set(read_content_index(warehouse, columns=["document_id"])["document_id"])
    missing = sorted(set(retrieved_content["document_id"]) - known)
    return AssetCheckResult(
        passed=not missing,
        metadata={
            "segment": context.partition_key,
            "documents": len(retrieved_content),
            "not_in_library": ", ".join(missing) or "none",
            "library_table": DOCUMENTS_TABLE,
        },
    )
