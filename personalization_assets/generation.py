"""Stage 3 — generation: one message variant per configured tone for each segment, grounded in its retrieved
content.

The variants are written by personalization_assets/workflows/generation.py (rewrites with the violations stated,
bounded concurrency, the response cache). Downstream stages read only `status == 'valid'` rows; the blocking
checks below are evaluated on the frame before it is stored (checked before written), so nothing that breaks a
rule reaches safety or the experiment, and a failed check leaves the partition's old rows in place.
"""

import statistics
import time
from collections.abc import Sequence

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    MetadataValue,
    asset,
)

from personalization_assets.config.generation import GenerationConfig
from personalization_assets.constants import SEGMENT_PARTITION_METADATA, STORAGE_KINDS
from personalization_assets.gates import blocking_spec, check_result, gated_output, warning_spec
from personalization_assets.lib.generation import (
    CheckOutcome,
    check_all_tones_present,
    check_body_within_word_range,
    check_citations_map_to_retrieved_documents,
    check_no_rejected_variants,
    check_no_template_leftovers,
    check_subject_within_max_chars,
    count_words,
    load_prompt_templates,
    segment_brief,
    segment_documents,
)
from personalization_assets.metadata import markdown_preview
from personalization_assets.partitions import segment_partitions
from personalization_assets.schemas import MessageVariantsFrame
from personalization_assets.store.generation import ResponseCache
from personalization_assets.workflows.generation import (
    Variant,
    build_variant_requests,
    generate_variants,
    variants_frame,
)
from resources.llm import STOP_CONTENT_FILTER, STOP_INCOMPLETE, STOP_REFUSAL, LLMResource
from resources.search import DOCUMENTS_TABLE as CONTENT_INDEX_TABLE
from resources.search import read_content_index
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse

GROUP = "generation"
ASSET = "message_variants"

CHECK_SPECS = [
    blocking_spec(
        "all_tones_present", ASSET, "Every configured tone has a variant row (valid or rejected) in the partition."
    ),
    blocking_spec(
        "subject_within_max_chars",
        ASSET,
        "Valid variants' subjects are non-empty and no longer than rules.subject_max_chars.",
    ),
    blocking_spec(
        "body_within_word_range",
        ASSET,
        "Valid variants' bodies have between rules.body_min_words and rules.body_max_words words.",
    ),
    blocking_spec(
        "citations_map_to_retrieved_documents",
        ASSET,
        "Valid variants cite at least one source, and every citation names a document retrieved for them.",
    ),
    blocking_spec(
        "no_template_leftovers",
        ASSET,
        "Valid variants hold no Markdown labels, placeholders ([Your Name], {first_name}) or template fields.",
    ),
    warning_spec(
        "no_rejected_variants",
        ASSET,
        "Warns when a tone was rejected after all attempts (it is kept out of safety and the experiment).",
    ),
]


def check_outcomes(
    variants: pd.DataFrame, retrieved_content: pd.DataFrame, config: GenerationConfig
) -> dict[str, CheckOutcome]:
    """Every check of `message_variants` on the frame about to be stored, by check name."""
    rules = config.rules.to_rules()
    return {
        "all_tones_present": check_all_tones_present(variants, config.tones),
        "subject_within_max_chars": check_subject_within_max_chars(variants, rules.subject_max_chars),
        "body_within_word_range": check_body_within_word_range(variants, rules),
        "citations_map_to_retrieved_documents": check_citations_map_to_retrieved_documents(
            variants, retrieved_content, rules.min_citations
        ),
        "no_template_leftovers": check_no_template_leftovers(variants),
        "no_rejected_variants": check_no_rejected_variants(variants),
    }


def run_metadata(variants: Sequence[Variant], wall_seconds: float, llm: LLMResource, cache_writes: int) -> dict:
    """Figures of one partition run for the asset's metadata."""
    called = [v.latency_ms for v in variants if v.model_calls]
    rejected = [v for v in variants if not v.is_valid]
    preview = pd.DataFrame(
        {
            "tone": [v.tone for v in variants],
            "status": [v.status for v in variants],
            "subject": [v.subject for v in variants],
            "words": [count_words(v.body) for v in variants],
            "citations": [", ".join(v.citations) for v in variants],
            "attempts": [v.attempts for v in variants],
        }
    )
    reasons = pd.DataFrame(
        {"tone": [v.tone for v in rejected], "reasons": ["; ".join(v.rejection_reasons) for v in rejected]}
    )
    return {
        "backend": llm.backend_name,
        "model": llm.model_name,
        "variants": len(variants),
        "valid_variants": len(variants) - len(rejected),
        "rejected_variants": len(rejected),
        "rejection_reasons": markdown_preview(reasons),
        # Answers that were not a message (each rejects its variant at once, with the reason).
        "refusals": sum(v.stop == STOP_REFUSAL for v in variants),
        "incomplete_answers": sum(v.stop == STOP_INCOMPLETE for v in variants),
        "content_filtered": sum(v.stop == STOP_CONTENT_FILTER for v in variants),
        "model_calls": sum(v.model_calls for v in variants),
        "cache_hits": sum(v.cache_hits for v in variants),
        "cache_entries_written": cache_writes,
        "input_tokens": sum(v.input_tokens for v in variants),
        "output_tokens": sum(v.output_tokens for v in variants),
        "cost_usd": MetadataValue.float(round(sum(v.cost_usd for v in variants), 6)),
        "cost_usd_this_run": MetadataValue.float(round(sum(v.run_cost_usd for v in variants), 6)),
        "latency_ms_median": MetadataValue.float(round(statistics.median(called), 1) if called else 0.0),
        "latency_ms_max": MetadataValue.float(round(max(called), 1) if called else 0.0),
        "wall_seconds": MetadataValue.float(round(wall_seconds, 3)),
        "preview": markdown_preview(preview),
    }


@asset(
    partitions_def=segment_partitions,
    metadata=SEGMENT_PARTITION_METADATA,
    kinds=STORAGE_KINDS,
    group_name=GROUP,
    # The content index is read for document keywords through the warehouse (it is not an IO-manager output).
    deps=[AssetKey(CONTENT_INDEX_TABLE)],
    check_specs=CHECK_SPECS,
    dagster_type=MessageVariantsFrame,
)
def message_variants(
    context: AssetExecutionContext,
    retrieved_content: pd.DataFrame,
    segment_profiles: pd.DataFrame,
    settings: PipelineSettings,
    warehouse: DuckDBWarehouse,
    llm: LLMResource,
):
    """One message per tone for the segment: subject, body citing [Source: Title], status, tokens and cost."""
    config = settings.stage(GenerationConfig)
    templates = load_prompt_templates(settings.config_path(config.prompts_dir), config.tones)
    segment = context.partition_key
    brief = segment_brief(segment_profiles, segment)
    content_index = read_content_index(warehouse, columns=["document_id", "keywords"])
    documents = segment_documents(retrieved_content, content_index, segment, config.max_documents)
    cache = ResponseCache(warehouse, enabled=config.cache and llm.cacheable)
    requests = build_variant_requests(config, templates, llm, brief, documents)

    started = time.perf_counter()
    variants = generate_variants(llm, requests, cache, config.max_concurrency)
    wall_seconds = time.perf_counter() - started
    cache_writes = cache.flush()

    for variant in variants:
        if not variant.is_valid:
            context.log.warning(
                f"segment '{segment}', tone '{variant.tone}' rejected after {variant.attempts} attempt(s): "
                + "; ".join(variant.rejection_reasons)
            )
    frame = variants_frame(variants)
    outcomes = check_outcomes(frame, retrieved_content, config)
    results = [  # `no_rejected_variants` warns; the other format checks block
        check_result(name, outcome.passed, outcome.metadata, warn=name == "no_rejected_variants", asset_key=ASSET)
        for name, outcome in outcomes.items()
    ]
    yield from gated_output(frame, results, run_metadata(variants, wall_seconds, llm, cache_writes))
