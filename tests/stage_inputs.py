"""Generation-stage inputs as the upstream stages store them, shared by the generation and safety tests (a safety
rewrite reads the same tables the generation stage does): the sample content library, segment_profiles,
content_index and a segment's retrieved_content."""

import json
from pathlib import Path

import pandas as pd

from personalization_assets.lib.generation import SourceDocument

CONTENT = Path(__file__).resolve().parents[1] / "data" / "content"
SEGMENT = "at_risk"
WIN_BACK_DOCS = ("DOC-PROMO-001", "DOC-PROD-003", "DOC-PROMO-011")


def sample_documents() -> dict[str, dict]:
    docs = (json.loads(p.read_text(encoding="utf-8")) for p in sorted(CONTENT.glob("*.json")))
    return {doc["document_id"]: doc for doc in docs}


def source_documents(ids=WIN_BACK_DOCS) -> list[SourceDocument]:
    docs = sample_documents()
    return [
        SourceDocument(i, docs[i]["title"], docs[i]["content"][:200], docs[i]["category"], tuple(docs[i]["keywords"]))
        for i in ids
    ]


def write_generation_inputs(
    warehouse, segment=SEGMENT, intent="win_back", doc_ids=WIN_BACK_DOCS, snippets=None
) -> None:
    """segment_profiles, content_index and the segment's retrieved_content (other segments' rows kept)."""
    docs = sample_documents()
    content_index = pd.DataFrame(
        [
            {
                "document_id": d["document_id"],
                "title": d["title"],
                "category": d["category"],
                "keywords": json.dumps(d["keywords"]),
            }
            for d in docs.values()
        ]
    )
    retrieved = pd.DataFrame(
        [
            {
                "segment": segment,
                "rank": rank,
                "document_id": i,
                "title": docs[i]["title"],
                "category": docs[i]["category"],
                "score": 1.0 / rank,
                "snippet": (snippets or {}).get(i, docs[i]["content"][:200]),
                "query": "win back lapsed",
            }
            for rank, i in enumerate(doc_ids, start=1)
        ]
    )
    profiles = pd.DataFrame(
        [
            {
                "segment": segment,
                "segment_name": "At-Risk",
                "intent": intent,
                "customers": 120,
                "share": 0.12,
                "mean_avg_order_value": 140.0,
                "mean_purchase_frequency": 9.0,
                "median_last_engagement_days": 60.0,
                "mean_historical_open_rate": 0.2,
                "engagement_level": "low",
                "description": "At-Risk: 120 customers",
            }
        ]
    )
    with warehouse.transaction() as connection:
        for name, frame in (
            ("content_index", content_index),
            ("segment_profiles", profiles),
            ("retrieved", retrieved),
        ):
            connection.register(f"{name}_rows", frame)
        connection.execute("create or replace table content_index as select * from content_index_rows")
        connection.execute("create or replace table segment_profiles as select * from segment_profiles_rows")
        connection.execute("create table if not exists retrieved_content as select * from retrieved_rows limit 0")
        connection.execute("delete from retrieved_content where segment = ?", [segment])
        connection.execute("insert into retrieved_content by name select * from retrieved_rows")
