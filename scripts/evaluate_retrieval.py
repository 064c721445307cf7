"""Retrieval quality per segment and library: nDCG@4, recall@4, documents above the threshold, and the score
distributions of suitable vs unsuitable documents, for the embedded backend and for the Azure AI Search backend
(the real SDK against the search emulator in tests/emulators).

    python scripts/evaluate_retrieval.py                        # the development libraries
    python scripts/evaluate_retrieval.py --libraries DIR ...    # other folders: DIR/<name>/{documents,qrels.json}

The segments are the default segments of the shipped customers (config/segmentation.yaml). A library folder
holds `documents/*.json` (or is `sample`, whose documents are `data/content`) and `qrels.json`:
{segment: {document_id: grade 0-3}}; "suitable" is grade >= 1 (tests/data/libraries/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from personalization_assets import segmentation  # noqa: E402
from personalization_assets.config import load_yaml_model  # noqa: E402
from personalization_assets.config.retrieval import RetrievalConfig  # noqa: E402
from personalization_assets.config.segmentation import SegmentationConfig  # noqa: E402
from personalization_assets.embedded.search import write_content_index  # noqa: E402
from personalization_assets.lib.content import load_content_library  # noqa: E402
from personalization_assets.lib.retrieval import (  # noqa: E402
    describe_segments,
    plan_segment,
    score_documents,
    select_documents,
)
from personalization_assets.lib.segmentation import profile_segments  # noqa: E402
from resources.search import AzureAISearchResource, SearchResource  # noqa: E402
from resources.warehouse import DuckDBWarehouse  # noqa: E402

K = 4
DEV_LIBRARIES = ROOT / "tests" / "data" / "libraries"


def ndcg(ranked: list[str], grades: dict[str, int], k: int = K) -> float:
    dcg = sum((2 ** grades.get(d, 0) - 1) / np.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum((2**g - 1) / np.log2(i + 2) for i, g in enumerate(ideal))
    return float(dcg / idcg) if idcg else 0.0


def recall(ranked: list[str], grades: dict[str, int], k: int = K) -> float:
    """Suitable documents in the top k / the most the top k could hold (min(k, suitable documents))."""
    relevant = {d for d, g in grades.items() if g >= 1}
    return len(set(ranked[:k]) & relevant) / min(k, len(relevant)) if relevant else 0.0


def default_profiles() -> pd.DataFrame:
    customers = pd.read_csv(ROOT / "data" / "customers.csv")
    config = load_yaml_model(ROOT / "config" / "segmentation.yaml", SegmentationConfig)
    segments, _ = segmentation.segment_customers(customers, config)
    return profile_segments(customers, segments)


def library_folders(root: Path) -> dict[str, tuple[Path, Path]]:
    found = {}
    for folder in sorted(p for p in root.iterdir() if (p / "qrels.json").exists()):
        documents = ROOT / "data" / "content" if folder.name == "sample" else folder / "documents"
        found[folder.name] = (documents, folder / "qrels.json")
    return found


def load_library(folder: Path):
    """The library as the pipeline reads it (export-style files included: any category case, approval date-times
    with offsets, numeric versions)."""
    return load_content_library(folder)


def evaluate(backend: str, libraries: dict[str, tuple[Path, Path]], config: RetrievalConfig, emulator=None):
    profiles = default_profiles()
    descriptions = describe_segments(
        profiles, config.query.intents, config.query.defining_features, config.query.min_relative_difference
    )
    rows, scores = [], []
    for name, (folder, qrels_path) in libraries.items():
        qrels = json.loads(qrels_path.read_text())
        library = load_library(folder)
        documents = library.to_frame()
        warehouse = DuckDBWarehouse(path=str(Path(tempfile.mkdtemp()) / "warehouse.duckdb"))
        with warehouse.transaction() as connection:
            write_content_index(connection, documents, library.version)
        search: SearchResource
        if backend == "embedded":
            search = config.embedded.model_copy(update={"warehouse": warehouse})
        else:
            emulator.reset_state()
            azure = AzureAISearchResource(
                endpoint=emulator.endpoint,
                auth="api_key",
                api_key_env="EVAL_SEARCH_KEY",
                admin_key_env="EVAL_SEARCH_KEY",
                max_retries=0,
            )
            azure.upload_documents(library)
            search = azure
        for description in descriptions:
            segment = description.segment
            plan = plan_segment(documents, descriptions, segment, config.calibration)
            answer = search.search(plan.query, top=config.candidates, category=None)
            scored = score_documents(documents, plan.evidence, segment, answer.hits, config.calibration)
            kept = select_documents(scored, config.threshold, config.top_k)
            grades = {d: int(g) for d, g in qrels.get(segment, {}).items()}
            ranked = kept["document_id"].tolist()
            rows.append(
                {
                    "backend": backend,
                    "library": name,
                    "segment": segment,
                    f"ndcg@{K}": round(ndcg(ranked, grades), 3),
                    f"recall@{K}": round(recall(ranked, grades), 3),
                    "above_threshold": int((scored["score"] >= config.threshold).sum()),
                    "suitable": sum(1 for g in grades.values() if g >= 1),
                }
            )
            scored["suitable"] = scored["document_id"].map(grades).fillna(0) >= 1
            scored["library"], scored["segment"] = name, segment
            scores.append(scored[["library", "segment", "document_id", "score", "reason", "suitable"]])
    return pd.DataFrame(rows), pd.concat(scores, ignore_index=True)


def distribution(scores: pd.DataFrame, threshold: float) -> pd.DataFrame:
    def summary(frame: pd.DataFrame) -> pd.Series:
        values = frame["score"]
        return pd.Series(
            {
                "documents": len(values),
                "min": values.min(),
                "p10": values.quantile(0.1),
                "median": values.median(),
                "p90": values.quantile(0.9),
                "max": values.max(),
                f">= {threshold}": f"{(values >= threshold).mean():.0%}",
            }
        )

    return (
        scores.groupby(["library", "suitable"])[["score"]]
        .apply(summary)
        .reset_index()
        .assign(suitable=lambda f: f["suitable"].map({True: "suitable", False: "unsuitable"}))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--libraries", type=Path, default=DEV_LIBRARIES, help="folder of library folders")
    parser.add_argument("--backend", choices=["embedded", "azure", "both"], default="both")
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "retrieval.yaml")
    args = parser.parse_args(argv)
    config = load_yaml_model(args.config, RetrievalConfig)
    libraries = library_folders(args.libraries)
    backends = ["embedded", "azure"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "azure":
            from tests.emulators.search import SearchEmulator

            with SearchEmulator() as emulator:
                os.environ["EVAL_SEARCH_KEY"] = str(emulator.api_key)
                table, scores = evaluate(backend, libraries, config, emulator)
        else:
            table, scores = evaluate(backend, libraries, config)
        print(f"\n## {backend} backend (threshold {config.threshold}, top_k {config.top_k})\n")
        print(table.drop(columns="backend").to_markdown(index=False))
        means = table.groupby("library")[[f"ndcg@{K}", f"recall@{K}"]].mean()
        means["segments with >= 3 above"] = table.groupby("library")["above_threshold"].apply(
            lambda s: f"{(s >= 3).sum()}/{len(s)}"
        )
        print("\n" + means.round(3).to_markdown())
        print(f"\nmean nDCG@{K} over libraries: {means[f'ndcg@{K}'].mean():.3f}")
        print("\nscore distribution, suitable vs unsuitable documents (every document x segment):\n")
        print(distribution(scores, config.threshold).to_markdown(index=False, floatfmt=".2f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
