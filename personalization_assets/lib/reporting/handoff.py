"""What the report step hands to the analysis notebook: the report's own sections (text, formatted tables as
Markdown, chart files) in ``report_data/report.json`` and its numeric frames as Parquet, written next to the
report. The notebook reads these instead of re-deriving the analysis from the warehouse, so its kernel does little
more than start, and it shows exactly what the report shows."""

from __future__ import annotations

import json
import numbers
import os
from pathlib import Path
from typing import Any

import pandas as pd

from personalization_assets.lib.reporting.document import CHART_FILES, Report
from personalization_assets.lib.reporting.formatting import DisplayTable
from personalization_assets.lib.reporting.inputs import ReportInputs

REPORT_DATA_DIR = "report_data"
REPORT_DATA_FILE = "report.json"
REPORT_DATA_VERSION = 1


def _table(table: DisplayTable) -> str:
    return table.to_markdown() if len(table) else ""


def report_payload(report: Report) -> dict[str, Any]:
    """Every section of ``report`` as JSON-ready text: what the notebook displays."""
    attribution = report.attribution
    safety = report.safety
    personalized = report.personalized
    return {
        "version": REPORT_DATA_VERSION,
        "title": report.title,
        "run_label": report.run_label,
        "generated_at": report.generated_at.isoformat(timespec="seconds"),
        "primary_metric": report.primary_metric,
        "confidence": report.confidence,
        "segments_served": [rec.segment for rec in report.recommendations],
        "segments_not_served": [
            {"segment": segment, "status": status, "reason": reason} for segment, status, reason in report.excluded
        ],
        "facts": {
            "segments": report.facts["segments"],
            "customers": report.facts["customers"],
            "engagement_rows": report.facts["engagement_rows"],
            "library_size": report.facts["library_size"],
            "documents_used": report.facts["documents_used"],
            "missing_tables": list(report.facts["missing_tables"]),
        },
        "headline_markdown": report.headline_markdown(),
        "recommendations": [
            {
                "segment": rec.segment,
                "segment_name": rec.segment_name,
                "label": rec.label,
                "evidence": rec.evidence,
                "caveats": list(rec.caveats),
            }
            for rec in [report.overall, *report.recommendations]
        ],
        "tables": {name: _table(table) for name, table in report.tables.items()},
        "charts": {name: CHART_FILES[name] for name in report.chart_png},
        "attribution": {
            "outcome": attribution.outcome,
            "rows": attribution.rows,
            "events": attribution.events,
            "note": attribution.note,
            "reading": list(attribution.reading),
        },
        "safety": {
            "screened": safety.screened,
            "approved": safety.approved,
            "blocked": safety.blocked,
            "audit_records": safety.audit_records,
            "chain_ok": safety.chain_ok,
            "chain_message": safety.chain_message,
            "by_segment": _table(safety.by_segment),
            "by_category": _table(safety.by_category),
            "by_reason": _table(safety.by_reason),
        },
        "cost_usd": report.cost_totals.get("cost_usd", 0.0),
        "examples": [
            {
                "segment_name": example.segment_name,
                "tone": example.tone,
                "status": example.status,
                "subject": example.subject,
                "body": example.body,
                "citations": [{"title": c.title, "source_url": c.source_url} for c in example.citations],
            }
            for example in report.examples
        ],
        "personalized": {
            "available": personalized.available,
            "messages": personalized.messages,
            "incomplete": list(personalized.incomplete),
            "field_values_screened": personalized.field_values_screened,
            "field_values_withheld": personalized.field_values_withheld,
            "coverage": _table(personalized.coverage),
            "segments": [
                {
                    "segment_name": segment.segment_name,
                    "sample": _table(segment.sample),
                    "example": None
                    if segment.example is None
                    else {
                        "customer": segment.example.customer,
                        "tone": segment.example.tone,
                        "subject": segment.example.subject,
                        "text": segment.example.text,
                    },
                }
                for segment in personalized.segments
            ],
        },
    }


def report_frames(report: Report, inputs: ReportInputs) -> dict[str, pd.DataFrame]:
    """The report's numeric frames, for analysis beyond the report (no customer ids: the report folder is shared
    more widely than the warehouse)."""
    frames = {
        "headline": report.headline,
        "experiment_metrics": inputs.metrics,
        "pooled_experiment_metrics": inputs.pooled,
        "funnel": inputs.funnel,
        "segment_profiles": inputs.profiles,
        "attribution_terms": report.attribution.terms,
    }
    return {name: frame.reset_index(drop=True) for name, frame in frames.items()}


def _storable(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns as Parquet can hold them: numbers (None as NaN) when every value is a number, else text."""
    columns = {}
    for column in frame.columns:
        values = frame[column]
        if values.dtype != object:
            continue
        present = values.dropna()
        if len(present) and all(isinstance(v, numbers.Number) for v in present):
            columns[column] = pd.to_numeric(values, errors="coerce")
        elif present.map(type).nunique() > 1 or (len(present) and not all(isinstance(v, str) for v in present)):
            columns[column] = values.map(lambda v: None if v is None or v != v else str(v))
    return frame.assign(**columns) if columns else frame


def write_report_data(report: Report, inputs: ReportInputs, folder: Path) -> Path:
    """Write ``report_data/`` under ``folder``; returns the JSON file, which is written last (atomically), so its
    presence means every frame is there."""
    data = folder / REPORT_DATA_DIR
    data.mkdir(parents=True, exist_ok=True)
    for name, frame in report_frames(report, inputs).items():
        _storable(frame).to_parquet(data / f"{name}.parquet", index=False)
    target = data / REPORT_DATA_FILE
    staging = target.with_suffix(".json.tmp")
    staging.write_text(json.dumps(report_payload(report), indent=1, default=str), encoding="utf-8")
    os.replace(staging, target)
    return target
