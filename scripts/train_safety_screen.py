#!/usr/bin/env python
"""Train the embedded safety screen's linear model and write personalization_assets/embedded/data/screen_model.npz.

Training text: the labelled development sets (tests/data/safety_eval.jsonl and tests/data/safety_dev_*.jsonl;
never tests/heldout/) and the sentences of the approved content library (data/content) as safe marketing copy.
Deterministic (lbfgs, fixed data order). `--cv` prints 5-fold cross-validated rates first, which is how the
threshold in embedded/model.py was chosen.

    .venv/bin/python scripts/train_safety_screen.py [--cv]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from personalization_assets.embedded.model import MODEL_PATH, MODEL_THRESHOLD, SAFE, model_text, vectorizers  # noqa: E402
from personalization_assets.embedded.screen import masked_text  # noqa: E402

DEV_FILES = [
    ROOT / "tests" / "data" / "safety_eval.jsonl",
    *sorted((ROOT / "tests" / "data").glob("safety_dev_*.jsonl")),
]
CONTENT = ROOT / "data" / "content"


def training_frame() -> pd.DataFrame:
    frames = [pd.read_json(path, lines=True) for path in DEV_FILES]
    dev = pd.concat(frames, ignore_index=True)
    dev = dev[dev["category"].fillna(SAFE) != "unsupported"]
    dev = dev.assign(target=dev["category"].fillna(SAFE).where(dev["label"].eq("unsafe"), SAFE))
    sentences = []
    for path in sorted(CONTENT.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        text = f"{document['title']}. {document['content']}"
        sentences += [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s) > 20]
    library = pd.DataFrame({"text": sentences, "target": SAFE, "language": "en", "label": "safe"})
    return pd.concat([dev[["text", "target", "language", "label"]], library], ignore_index=True)


def fit(texts: list[str], targets: list[str]):
    from scipy.sparse import hstack
    from sklearn.linear_model import LogisticRegression

    char, word = vectorizers()
    features = hstack([char.fit_transform(texts), word.fit_transform(texts)]).tocsr()
    model = LogisticRegression(C=30, max_iter=3000, class_weight="balanced").fit(features, targets)
    return char, word, model


def cross_validate(frame: pd.DataFrame, texts: list[str]) -> None:
    from scipy.sparse import hstack
    from sklearn.model_selection import StratifiedKFold

    unsafe_probability = np.zeros(len(frame))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    for train, test in folds.split(texts, frame["target"]):
        char, word, model = fit([texts[i] for i in train], frame["target"].iloc[train].tolist())
        held = [texts[i] for i in test]
        features = hstack([char.transform(held), word.transform(held)]).tocsr()
        unsafe_probability[test] = 1 - model.predict_proba(features)[:, list(model.classes_).index(SAFE)]
    unsafe = frame["label"].eq("unsafe").to_numpy()
    english_safe = (~unsafe) & frame["language"].fillna("en").eq("en").to_numpy()
    for threshold in (0.5, 0.6, 0.7, 0.75, 0.8, 0.9):
        flagged = unsafe_probability >= threshold
        print(
            f"cv threshold {threshold:.2f}: unsafe flagged {flagged[unsafe].mean():.3f}, "
            f"safe English flagged {flagged[english_safe].mean():.4f}"
            + ("   <- MODEL_THRESHOLD" if threshold == MODEL_THRESHOLD else "")
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", action="store_true", help="print 5-fold cross-validated rates first")
    args = parser.parse_args(argv)
    frame = training_frame()
    texts = [model_text(masked_text(t)) for t in frame["text"]]
    if args.cv:
        cross_validate(frame, texts)
    char, word, model = fit(texts, frame["target"].tolist())
    MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
    char_vocabulary = sorted(char.vocabulary_, key=char.vocabulary_.get)
    word_vocabulary = sorted(word.vocabulary_, key=word.vocabulary_.get)
    np.savez_compressed(
        MODEL_PATH,
        classes=np.array(model.classes_, dtype=str),
        coef=model.coef_.astype(np.float32),
        intercept=model.intercept_.astype(np.float32),
        char_vocabulary=np.array(char_vocabulary, dtype=str),
        char_idf=char.idf_.astype(np.float32),
        word_vocabulary=np.array(word_vocabulary, dtype=str),
        word_idf=word.idf_.astype(np.float32),
    )
    print(
        f"trained on {len(frame)} texts ({frame['target'].value_counts().to_dict()}); "
        f"{len(char_vocabulary) + len(word_vocabulary)} features; wrote {MODEL_PATH.relative_to(ROOT)} "
        f"({MODEL_PATH.stat().st_size / 1024:.0f} KiB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
