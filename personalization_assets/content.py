"""Stage 1b — the content library: the approved documents, indexed for retrieval, and the ones left out.

`content_index` validates `data/content/*.json`, keeps the approved documents and writes the `content_index`
table, its passages and their BM25 full-text indexes (embedded/search.write_content_index), plus the
`content_quarantine` table of documents that failed validation, in one warehouse transaction. A bad document
is left out and listed; the run stops only when fewer than `content.min_documents` approved documents remain.
The index rebuilds only when the content version (hash of every approved document) or the index format changes.
"""

import hashlib

import pandas as pd
from dagster import (
    AssetExecutionContext,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)
from dagster._core.definitions.metadata import TableMetadataSet

from personalization_assets.config.safety import SafetyConfig
from personalization_assets.config.segmentation import PipelineConfig
from personalization_assets.constants import STORAGE_KINDS
from personalization_assets.embedded.search import INDEX_FORMAT, write_content_index
from personalization_assets.lib.content import load_content_library
from personalization_assets.lib.inputs import InputError
from personalization_assets.metadata import markdown_preview
from personalization_assets.store.content import CONTENT_QUARANTINE_TABLE, write_content_quarantine
from personalization_assets.workflows.safety import screen_library
from resources.content_safety import ContentSafetyResource
from resources.settings import PipelineSettings
from resources.warehouse import DuckDBWarehouse

GROUP = "retrieval"


@asset(group_name=GROUP, kinds=STORAGE_KINDS)
def content_index(
    context: AssetExecutionContext,
    settings: PipelineSettings,
    warehouse: DuckDBWarehouse,
    content_safety: ContentSafetyResource,
) -> MaterializeResult:
    """Approved documents of the content library (one row each) and their BM25 full-text index.

    Written through the warehouse resource so the table, its passages, both full-text indexes and the
    `content_quarantine` table change in one transaction. Documents with a missing or future approval date are
    left out and listed in the metadata; documents failing validation are quarantined (file, field, problem), and
    so are documents the configured safety screen blocks (unsafe text, phishing, prompt-injection instructions):
    nothing is ever retrieved or quoted from them.
    """
    config = settings.stage(PipelineConfig)
    library = load_content_library(settings.content_path, min_documents=config.content.min_documents)
    # A refused key or role raises ContentSafetyConfigError: not a verdict on any document; the run stops with it
    # (the CLI shows its one line and exits 2).
    screening = screen_library(library.to_frame(), content_safety, settings.stage(SafetyConfig), warehouse)
    documents = screening.kept
    unsafe = screening.quarantined
    minimum = max(config.content.min_documents, 1)
    if len(documents) < minimum:
        raise InputError(
            f"{library.folder}: {len(documents)} approved document(s) left after the safety screen quarantined "
            f"{len(unsafe)} ({screening.summary()}), fewer than the minimum of {minimum} (content.min_documents "
            "in config/pipeline.yaml); fix or replace the quarantined documents"
        )
    quarantine = pd.concat(
        [
            library.quarantine_frame(),
            pd.DataFrame(
                {
                    "file": [library.files.get(str(doc), "") for doc in unsafe["document_id"]],
                    "document_id": unsafe["document_id"],
                    "field": "content",
                    "problem": "safety screen: " + unsafe["reasons"].astype(str),
                },
                dtype="string",
            ),
        ],
        ignore_index=True,
    )
    # The version names what is indexed: a document quarantined by the screen changes it like an edit would.
    version = hashlib.sha256(f"{library.version}\n{sorted(unsafe['document_id'].astype(str))}".encode()).hexdigest()
    with warehouse.transaction() as connection:
        build = write_content_index(connection, documents, version)
        write_content_quarantine(connection, quarantine)
    if library.pending:
        context.log.info(library.pending_summary())
    for problem in library.quarantined:  # documents hold no customer data: file, field and problem are safe
        context.log.warning(f"content quarantined: {problem.describe()}")
    for row in unsafe.itertuples():
        context.log.warning(f"content quarantined by the safety screen: {row.document_id}: {row.reasons}")
    categories = documents["category"].value_counts().rename_axis("category").reset_index(name="documents")
    return MaterializeResult(
        metadata={
            **TableMetadataSet(row_count=len(documents)),
            "dagster/column_schema": MetadataValue.table_schema(
                TableSchema(columns=[TableColumn(name=str(n), type=str(t)) for n, t in documents.dtypes.items()])
            ),
            "content_version": build.content_version,
            "index_rebuilt": build.rebuilt,
            "index_format": INDEX_FORMAT,
            "documents": build.documents,
            "passages": build.passages,
            "not_approved": library.pending_summary(),
            "quarantined_documents": quarantine["document_id"].nunique(),
            "blocked_by_safety_screen": screening.summary(),
            "quarantine": markdown_preview(quarantine, rows=20) if len(quarantine) else "none",
            "quarantine_table": CONTENT_QUARANTINE_TABLE,
            "source": library.folder,
            "categories": markdown_preview(categories),
            "preview": markdown_preview(documents[["document_id", "title", "category", "approval_date"]]),
        },
        # Downstream partitions are stale only when the approved content really changed.
        data_version=DataVersion(build.content_version),
    )
