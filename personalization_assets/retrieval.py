"""Stage 2 — retrieval: the documents each segment gets (the library is indexed by `content.content_index`).

- `retrieved_content` (per segment): describes the segment from its profile, matches every document's
  audience to it, asks the configured search backend with the segment's query, scores every document
  (lib/retrieval.py `suitability`) and keeps the best ones at or above the threshold (at most `top_k`), with a
  snippet of the passage that matched. Its checks run on the frame before it is written: a failed blocking
  check (no document above the threshold: "no suitable content"; a document outside the library) writes
  nothing. A search failure fails the partition and writes nothing.
"""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    Failure,
    MetadataValue,
    asset,
)

from personalization_assets.config.retrieval import RetrievalConfig
from personalization_assets.constants import SEGMENT_PARTITION_METADATA, STORAGE_KINDS
from personalization_assets.gates import blocking_spec, gated_output, warning_spec
from personalization_assets.lib.retrieval import (
    MIN_DOCUMENTS_WARNING,
    describe_segments,
    plan_segment,
    relevant_documents_outcome,
    retrieved_frame,
    score_documents,
    select_documents,
    snippet_problems,
)
from personalization_assets.metadata import markdown_preview
from personalization_assets.partitions import segment_partitions
from personalization_assets.schemas import RetrievedContentFrame
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
RETRIEVED = "retrieved_content"


def _preview(frame: pd.DataFrame) -> MetadataValue:
    return markdown_preview(frame, 10, floatfmt=".3f") if len(frame) else MetadataValue.md("(none)")


@asset(
    partitions_def=segment_partitions,
    metadata=SEGMENT_PARTITION_METADATA,
    group_name=GROUP,
    kinds=STORAGE_KINDS,
    deps=[AssetKey(DOCUMENTS_TABLE)],
    dagster_type=RetrievedContentFrame,
    check_specs=[
        blocking_spec(
            "has_relevant_documents",
            RETRIEVED,
            "The segment has at least one document at or above the threshold (warning below 3); "
            "none is the 'no suitable content' outcome.",
        ),
        blocking_spec(
            "documents_in_content_library",
            RETRIEVED,
            "Every retrieved document_id is an approved document of the content library.",
        ),
        warning_spec(
            "snippets_short_and_on_word_boundary",
            RETRIEVED,
            "Every snippet is at most 200 characters and is document text cut on a word boundary.",
        ),
    ],
)
def retrieved_content(
    context: AssetExecutionContext,
    segment_profiles: pd.DataFrame,
    settings: PipelineSettings,
    search: SearchResource,
    warehouse: DuckDBWarehouse,
):
    """The 3-5 approved documents that suit the segment best, with score, matched snippet and the query."""
    segment = context.partition_key
    config = settings.stage(RetrievalConfig)
    if not (segment_profiles["segment"] == segment).any():
        raise Failure(
            f"segment '{segment}' has no row in segment_profiles: re-materialize the segmentation assets "
            "(the segment may have disappeared)"
        )
    columns = ["document_id", "title", "category", "audience", "keywords", "content"]
    try:
        documents = read_content_index(warehouse, columns=columns)
    except SearchIndexMissingError as error:
        raise Failure(f"retrieval for segment '{segment}': {error}") from None
    if config.category:
        documents = documents[documents["category"] == config.category].reset_index(drop=True)
    query_config = config.query
    descriptions = describe_segments(
        segment_profiles,
        query_config.intents,
        query_config.defining_features,
        query_config.min_relative_difference,
    )
    plan = plan_segment(documents, descriptions, segment, config.calibration)
    try:
        answer = search.search(plan.query, top=config.candidates, category=config.category)
    except (SearchServiceError, SearchIndexMissingError) as error:
        raise Failure(
            description=f"retrieval for segment '{segment}' failed ({search.backend} backend): {error}",
            metadata={"segment": segment, "query": plan.query},
        ) from None
    for note in answer.notes:
        context.log.warning(f"segment '{segment}': {note}")

    # Only documents of the approved library count (the search service may hold others).
    known = set(documents["document_id"])
    unknown = sorted({h.document_id for h in answer.hits} - known)
    if unknown:
        context.log.warning(f"ignored hits not in the approved content library: {', '.join(unknown)}")
    scored = score_documents(documents, plan.evidence, segment, answer.hits, config.calibration, plan.query)
    frame = retrieved_frame(segment, plan.query, select_documents(scored, config.threshold, config.top_k))

    relevant = relevant_documents_outcome(frame, segment, plan.query, config.threshold, plan.description.lacks)
    customers = int(segment_profiles.loc[segment_profiles["segment"] == segment, "customers"].iloc[0])
    missing = sorted(set(frame["document_id"]) - known)
    bad_snippets = snippet_problems(frame, documents.set_index("document_id")["content"].to_dict())
    results = [
        AssetCheckResult(
            check_name="has_relevant_documents",
            passed=relevant.passed,
            severity=AssetCheckSeverity.ERROR if relevant.blocking else AssetCheckSeverity.WARN,
            description=relevant.description,
            metadata={**relevant.metadata, "customers": customers},  # type: ignore[dict-item]
        ),
        AssetCheckResult(
            check_name="documents_in_content_library",
            passed=not missing,
            metadata={
                "segment": segment,
                "documents": len(frame),
                "not_in_library": ", ".join(missing) or "none",
                "library_table": DOCUMENTS_TABLE,
            },
        ),
        AssetCheckResult(
            check_name="snippets_short_and_on_word_boundary",
            passed=bad_snippets.empty,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "segment": segment,
                "snippets": len(frame),
                "longest_snippet": int(frame["snippet"].str.len().max()) if len(frame) else 0,
                "bad_snippets": _preview(bad_snippets),
            },
        ),
    ]
    metadata = {
        "query": plan.query,
        "query_sources": MetadataValue.md(
            "\n".join(
                f"- **{source}**: {', '.join(phrases)}"
                for source, phrases in {
                    **plan.description.sources,
                    "library feedback": plan.feedback or ["(none)"],
                }.items()
            )
        ),
        "backend": search.backend,
        "ranking": answer.ranking,
        "semantic_partial_reason": answer.partial_reason or "none",
        "threshold": config.threshold,
        "top_k": config.top_k,
        "documents_kept": len(frame),
        "hits": _preview(frame[["rank", "document_id", "title", "category", "score", "snippet"]]),
        "candidates": _preview(scored[["document_id", "score", "reason", "audience_match", "topical"]]),
    }
    if not relevant.passed and relevant.metadata.get("outcome") == "no_suitable_content":
        yield from results
        raise Failure(
            description=f"{relevant.description}; its {customers:,} customers stay in the control group",
            metadata={
                "segment": segment,
                "outcome": "no_suitable_content",
                "lacks": plan.description.lacks,
                "customers": customers,
            },
        )
    if len(frame) < MIN_DOCUMENTS_WARNING:
        context.log.warning(relevant.description)
    yield from gated_output(frame, results, metadata)
