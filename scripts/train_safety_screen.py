#!/usr/bin/env python
"""Train the embedded safety screen's linear model and write personalization_assets/embedded/data/screen_model.npz.

Training text: the labelled development sets (tests/data/safety_eval.jsonl and tests/data/safety_dev_*.jsonl;
never tests/heldout/) and the sentences of the approved content library (data/content) as safe marketing copy.
Deterministic (lbfgs, fixed data order). `--cv` prints 5-fold cross-validated rates first, which is how the
threshold in embedded/model.py was chosen.

    .venv/bin/python scripts/train_safety_screen.py [--cv]

`--classifier` instead trains only the round-5 head on WordLlama sentence vectors (embedded/classifier.py) and
writes personalization_assets/embedded/data/classifier_head.npz; `--classifier-leave-out PATH ...` leaves labelled
files out of its training (to measure it on them), `--classifier-out PATH` writes an experiment's head elsewhere.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from personalization_assets.embedded.model import (  # noqa: E402
    MODEL_PATH,
    MODEL_THRESHOLD,
    SAFE,
    model_text,
    vectorizers,
)
from personalization_assets.embedded.screen import masked_text  # noqa: E402

DATA = ROOT / "tests" / "data"
GRID = DATA / "safety_grid_round3.json"
COMPOSED = DATA / "safety_dev_round3_composed.jsonl"
# The v1 and v2 held-out sets were each measured once (rounds 1 and 2); since round 3 they are development text.
USED_HELDOUT = [
    ROOT / "tests" / "heldout" / "safety" / "heldout.jsonl",
    ROOT / "tests" / "heldout" / "safety_v2" / "heldout.jsonl",
]


# Round 4 material (minors and coded hate) is judged by rules (embedded/minors.py, structure.py), not learned: a model
# retrained with it learned "child" words as sexual and blocked "Senior portraits for high school seniors: book a
# private photo session" (docs/safety_screen.md, "Round 4"). The shipped model is the round-3 one.
NOT_TRAINED = {"safety_dev_round4_composed.jsonl"}


def dev_files() -> list[Path]:
    """The development files (read when called: `--compose` may just have written the composed one)."""
    dev = [path for path in sorted(DATA.glob("safety_dev_*.jsonl")) if path.name not in NOT_TRAINED]
    return [DATA / "safety_eval.jsonl", *dev, *USED_HELDOUT]


CONTENT = ROOT / "data" / "content"
CALIBRATION_SHARE = 0.25  # of the composed grid's frames (whole frames), held out with v2 to calibrate the threshold
_SLOT = re.compile(r"\{(\w+)\}")
_MINOR_FRAME = re.compile(r"\{minor2?\}|with the kids|14-jährig|13 años|13 ans")


def _fill(template: str, slots: dict, rng: random.Random, fixed: dict[str, str]) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name in fixed:
            return fixed[name]
        if name not in slots:
            return match.group(0)  # {first_name} stays a CRM placeholder
        return _fill(rng.choice(slots[name]), slots, rng, fixed)

    return _SLOT.sub(value, template)


def compose_grid(seed: int = 3) -> pd.DataFrame:
    """Texts composed from the round-3 grid (tests/data/safety_grid_round3.json): every frame of every concern
    filled with random slot values (target, method, condition, group ...) and wrapped in a random business's
    format. Deterministic for a seed. `group` names the frame (unsafe) or the hard-negative sentence (safe), so a
    split by group holds out whole frames."""
    grid = json.loads(GRID.read_text(encoding="utf-8"))
    rng = random.Random(seed)
    rows: list[dict] = []

    def wrap(language: str, payload: str, formats: list[str], brands: list[str], benign: list[str], names: list[str]):
        brand = rng.choice(brands)
        fixed = {
            "Brand": brand.title() if language == "en" else brand,
            "BRAND": brand.upper(),
            "brand": re.sub(r"[^a-z]", "", brand.lower()),
            "tag": re.sub(r"[^a-z]", "", brand.lower()),
            "payload": payload,
        }
        lines = rng.sample(benign, k=min(3, len(benign)))
        fixed.update(benign=lines[0], benign2=lines[1 % len(lines)], benign3=lines[2 % len(lines)])
        fixed["name"] = rng.choice(names)
        return _fill(rng.choice(formats), {}, rng, fixed)

    en = grid["en"]
    formats = [f for group in en["formats"].values() for f in group]
    business = list(en["businesses"])

    def en_wrap(payload: str) -> str:
        name = rng.choice(business)
        return wrap("en", payload, formats, [name], en["businesses"][name], en["names"])

    per_frame = {"violence": 12, "self_harm": 12, "sexual": 14, "hate": 24, "phishing": 16}
    for category, spec in en["unsafe"].items():
        slots = {**spec["slots"], **spec.get("extra", {}), "invented": spec.get("invented", []), "name": en["names"]}
        for index, frame in enumerate(spec["frames"]):
            for _ in range(per_frame[category]):
                payload = _fill(frame, slots, rng, {"brand": "acme"})
                payload = payload[0].upper() + payload[1:]
                rows.append(
                    {
                        "text": en_wrap(payload),
                        "label": "unsafe",
                        "category": category,
                        "language": "en",
                        "minor": bool(_MINOR_FRAME.search(frame)),
                        "group": f"en:{category}:{index}",
                    }
                )
    safe = en["safe"]
    for frame in safe["frames"]:
        for _ in range(60):
            lead = _SLOT.findall(frame)
            payload = _fill(frame, safe["slots"], rng, {})
            key = next((v for v in safe["slots"].get(lead[0], []) if v and v in payload), payload) if lead else payload
            rows.append(
                {
                    "text": en_wrap(payload),
                    "label": "safe",
                    "category": None,
                    "language": "en",
                    "minor": False,
                    "group": f"en:safe:{key}",
                }
            )
    for _ in range(150):  # plain business copy, no payload
        name = rng.choice(business)
        rows.append(
            {
                "text": wrap(
                    "en", rng.choice(en["businesses"][name]), formats, [name], en["businesses"][name], en["names"]
                ),
                "label": "safe",
                "category": None,
                "language": "en",
                "minor": False,
                "group": f"en:plain:{name}",
            }
        )
    for language in ("de", "es", "fr"):
        spec_l = grid[language]
        names = ["{first_name}", "Anna", "Lucía", "Camille"]
        for category, spec in spec_l["unsafe"].items():
            for index, frame in enumerate(spec["frames"]):
                for _ in range(6):
                    payload = _fill(frame, spec["slots"], rng, {})
                    rows.append(
                        {
                            "text": wrap(
                                language, payload, spec_l["formats"], spec_l["brands"], spec_l["benign"], names
                            ),
                            "label": "unsafe",
                            "category": category,
                            "language": language,
                            "minor": bool(_MINOR_FRAME.search(frame)),
                            "group": f"{language}:{category}:{index}",
                        }
                    )
        for sentence in spec_l["safe"]:
            for _ in range(4):
                rows.append(
                    {
                        "text": wrap(language, sentence, spec_l["formats"], spec_l["brands"], spec_l["benign"], names),
                        "label": "safe",
                        "category": None,
                        "language": language,
                        "minor": False,
                        "group": f"{language}:safe:{sentence}",
                    }
                )
    frame = pd.DataFrame(rows).drop_duplicates("text").reset_index(drop=True)
    return frame.assign(split="dev-round3-composed")


def calibration_groups(groups: pd.Series) -> pd.Series:
    """Whether each composed text's group (frame) is in the calibration split: a stable hash of the group name,
    so the split does not depend on row order or on the other groups."""
    digest = groups.map(lambda g: int(hashlib.sha256(g.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF)
    return digest < CALIBRATION_SHARE


def training_frame() -> pd.DataFrame:
    """Every development text with `target` (safe or its concern), `source` (file name) and, for the composed
    grid, `group` (its frame)."""
    frames = [
        pd.read_json(path, lines=True).assign(
            source=path.name if path.parent.name == "data" else f"{path.parent.name}/{path.name}"
        )
        for path in dev_files()
    ]
    dev = pd.concat(frames, ignore_index=True)
    if "label" in dev:
        dev["label"] = dev["label"].fillna(dev["category"].map(lambda c: "safe" if c in (None, "safe") else "unsafe"))
    dev["language"] = dev["language"].fillna("en")
    dev = dev[dev["category"].fillna(SAFE) != "unsupported"]
    dev = dev.assign(target=dev["category"].fillna(SAFE).where(dev["label"].eq("unsafe"), SAFE))
    sentences = []
    for path in sorted(CONTENT.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        text = f"{document['title']}. {document['content']}"
        sentences += [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s) > 20]
    library = pd.DataFrame({"text": sentences, "target": SAFE, "language": "en", "label": "safe", "source": "library"})
    columns = ["text", "target", "language", "label", "source", "group", "minor"]
    frame = pd.concat([dev.reindex(columns=columns), library], ignore_index=True)
    frame["minor"] = frame["minor"].map(lambda v: v is True or v == 1)
    return frame


REGULARIZATION = 30.0  # LogisticRegression C


def fit(texts: list[str], targets: list[str]):
    from scipy.sparse import hstack
    from sklearn.linear_model import LogisticRegression

    char, word = vectorizers()
    features = hstack([char.fit_transform(texts), word.fit_transform(texts)]).tocsr()
    model = LogisticRegression(C=REGULARIZATION, max_iter=3000, class_weight="balanced").fit(features, targets)
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


def save(char, word, model, path: Path) -> None:
    char_vocabulary = sorted(char.vocabulary_, key=char.vocabulary_.get)
    word_vocabulary = sorted(word.vocabulary_, key=word.vocabulary_.get)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        classes=np.array(model.classes_, dtype=str),
        coef=model.coef_.astype(np.float32),
        intercept=model.intercept_.astype(np.float32),
        char_vocabulary=np.array(char_vocabulary, dtype=str),
        char_idf=char.idf_.astype(np.float32),
        word_vocabulary=np.array(word_vocabulary, dtype=str),
        word_idf=word.idf_.astype(np.float32),
    )


def calibration_mask(frame: pd.DataFrame) -> pd.Series:
    """The internal calibration split: a quarter of the composed grid's frames (whole frames) and the used v2
    held-out set (another author's text, the closest thing to fresh text the project has)."""
    composed = frame["source"].eq(COMPOSED.name) & calibration_groups(frame["group"].fillna(""))
    return composed | frame["source"].eq("safety_v2/heldout.jsonl")


def calibrate(frame: pd.DataFrame, texts: list[str], show_errors: bool = False) -> None:
    """Train without the calibration split, then screen the split with the whole screen: rules alone, and rules
    plus the model at each threshold (short texts need at least SHORT_THRESHOLD, as in ScreenModel.threshold).
    Prints catch per concern and safe copy blocked, per part of the split."""
    import tempfile

    import personalization_assets.embedded.screen as screen_module
    from personalization_assets.embedded.model import ScreenModel
    from personalization_assets.lib.safety import evaluate_examples

    held = calibration_mask(frame).to_numpy()
    char, word, model = fit([t for t, h in zip(texts, held, strict=True) if not h], frame["target"][~held].tolist())
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "calibration_model.npz"
        save(char, word, model, path)
        calibration_model = ScreenModel(path)
    probes = pd.concat(
        [pd.read_json(path, lines=True).assign(source=path.name) for path in sorted(DATA.glob("safety_probe_*.jsonl"))],
        ignore_index=True,
    )
    probes = probes.assign(target=probes["category"].fillna(SAFE).where(probes["label"].eq("unsafe"), SAFE))
    split = pd.concat([frame[held], probes.reindex(columns=frame.columns)], ignore_index=True)
    split["language"] = split["language"].fillna("en")
    original = screen_module.screen_model
    # rules, concepts and structure alone:
    screen_module.screen_model = lambda: None  # type: ignore[assignment]
    try:
        scored = evaluate_examples(split, screen_module.screen_text)
    finally:
        screen_module.screen_model = original
    masked = [masked_text(t) for t in split["text"]]
    probability = 1 - calibration_model.probabilities(masked)[:, calibration_model.classes.index(SAFE)]
    # the model flags what it finds familiar, and not under a scam warning (embedded.screen lowers that signal)
    familiar = np.array(
        [
            calibration_model.familiar(m) and not screen_module._warns_of_scam(m, raw)
            for m, raw in zip(masked, split["text"], strict=True)
        ]
    )
    unsafe = split["label"].eq("unsafe").to_numpy()
    parts = {
        "composed (held-out frames)": split["source"].eq(COMPOSED.name),
        "v2 (used)": split["source"].eq("safety_v2/heldout.jsonl"),
        "probes (model never trained on)": split["source"].str.startswith("safety_probe_"),
    }
    print(f"calibration split: {len(split)} texts; model trained on {int((~held).sum())}")
    english_safe_all = ~unsafe & split["language"].eq("en").to_numpy()
    for threshold in (None, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9):
        if threshold:
            needed = np.array([calibration_model.threshold(m, threshold) for m in masked])
            flagged = (probability >= needed) & familiar
        else:
            flagged = np.zeros(len(split), dtype=bool)
        blocked = scored["blocked"].to_numpy() | flagged
        print(
            f"{'rules only' if threshold is None else f'model >= {threshold:.2f}':<14} whole split: unsafe caught "
            f"{blocked[unsafe].sum()}/{unsafe.sum()}, safe English blocked {blocked[english_safe_all].sum()}/"
            f"{english_safe_all.sum()} = {blocked[english_safe_all].mean():.3f}"
            + ("   <- MODEL_THRESHOLD" if threshold == MODEL_THRESHOLD else "")
        )
        for part, mask in parts.items():
            mask = mask.to_numpy()
            cells = []
            for category in ("hate", "violence", "self_harm", "sexual", "phishing"):
                rows = mask & unsafe & split["target"].eq(category).to_numpy()
                cells.append(f"{category} {blocked[rows].sum()}/{rows.sum()}")
            english_safe = mask & ~unsafe & split["language"].eq("en").to_numpy()
            other_safe = mask & ~unsafe & split["language"].ne("en").to_numpy()
            print(
                f"{'':<14} {part:<34} "
                + ", ".join(cells)
                + f"; all unsafe {blocked[mask & unsafe].sum()}/{(mask & unsafe).sum()}"
                + f"; safe en blocked {blocked[english_safe].sum()}/{english_safe.sum()}"
                + f", de/es/fr {blocked[other_safe].sum()}/{other_safe.sum()}"
            )
            if threshold == MODEL_THRESHOLD:
                by_language = []
                for language in ("en", "de", "es", "fr"):
                    rows = mask & unsafe & split["language"].eq(language).to_numpy()
                    if rows.any():
                        by_language.append(f"{language} {blocked[rows].sum()}/{rows.sum()}")
                print(f"{'':<14} {'':<34} unsafe caught by language: " + ", ".join(by_language))
        if show_errors and threshold == MODEL_THRESHOLD:
            for i in np.flatnonzero(blocked != unsafe):
                kind = "MISSED" if unsafe[i] else "FALSE BLOCK"
                print(f"  {kind:<11} {split['target'][i]:<9} p={probability[i]:.2f} {split['text'][i]!r}")


# Round 5 (embedded/classifier.py): the head on packaged sentence vectors trains on every labelled file the team has
# used - the development sets, the probes, the round-4 material and all used held-out sets (v1-v4) - and the
# library's sentences as safe copy. Each file is one author's style, so the threshold is chosen out of fold *by
# file* (each file scored by a head trained without it), the closest thing to text by a new author.
USED_HELDOUT_ALL = [
    *USED_HELDOUT,
    *(ROOT / "tests" / "heldout" / f"safety_{v}" / "heldout.jsonl" for v in ("v3", "v4")),
]
CLASSIFIER_HIDDEN = (64,)  # one hidden layer; a linear head on the same vectors caught about half as much (docs)
CLASSIFIER_ALPHA = 1e-3
CLASSIFIER_FOLDS = 5


def classifier_files() -> list[Path]:
    return [*sorted(DATA.glob("safety_*.jsonl")), *USED_HELDOUT_ALL]


def classifier_frame(leave_out: list[Path] = ()) -> pd.DataFrame:
    """text (what the screen's model reads: normalized, idioms masked), target, language, label, source."""
    skip = {path.resolve() for path in leave_out}
    frames = []
    for path in classifier_files():
        if path.resolve() in skip or not path.is_file():
            continue
        part = pd.read_json(path, lines=True)
        category = part["category"].where(part["category"].notna(), SAFE) if "category" in part else SAFE
        label = part["label"] if "label" in part else category.map(lambda c: SAFE if c == SAFE else "unsafe")
        frames.append(
            pd.DataFrame(
                {
                    "text": part["text"],
                    "target": np.where(label.eq("unsafe"), category, SAFE),
                    "language": part["language"].fillna("en") if "language" in part else "en",
                    "label": np.where(label.eq("unsafe"), "unsafe", SAFE),
                    "source": f"{path.parent.name}/{path.name}",
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[frame["target"] != "unsupported"]
    library = training_frame().query("source == 'library'")[["text", "target", "language", "label", "source"]]
    frame = pd.concat([frame, library], ignore_index=True)
    frame["text"] = [masked_text(t) for t in frame["text"]]
    return frame.reset_index(drop=True)


def _fit_head(vectors: np.ndarray, targets: np.ndarray):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(CLASSIFIER_HIDDEN, alpha=CLASSIFIER_ALPHA, max_iter=300, random_state=0).fit(vectors, targets)


def train_classifier(leave_out: list[Path] = (), out: Path | None = None) -> Path:
    """Fit the head, choose its threshold out of fold by file, write the .npz; prints what it did."""
    from sklearn.model_selection import GroupKFold

    from personalization_assets.embedded.classifier import HEAD_PATH, SAFE_ENGLISH_BUDGET, SentenceEmbedding

    frame = classifier_frame(leave_out)
    vectors = SentenceEmbedding().embed(frame["text"].tolist())
    targets = frame["target"].to_numpy()
    unsafe_oof = np.zeros(len(frame))
    for train, test in GroupKFold(CLASSIFIER_FOLDS).split(vectors, targets, groups=frame["source"]):
        head = _fit_head(vectors[train], targets[train])
        unsafe_oof[test] = 1 - head.predict_proba(vectors[test])[:, list(head.classes_).index(SAFE)]
    safe_english = frame["label"].eq(SAFE).to_numpy() & frame["language"].eq("en").to_numpy()
    threshold = float(np.quantile(unsafe_oof[safe_english], 1 - SAFE_ENGLISH_BUDGET))
    unsafe = frame["label"].eq("unsafe").to_numpy()
    head = _fit_head(vectors, targets)
    path = out or HEAD_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        classes=np.array(head.classes_, dtype=str),
        hidden_weights=head.coefs_[0].astype(np.float32),
        hidden_bias=head.intercepts_[0].astype(np.float32),
        output_weights=head.coefs_[1].astype(np.float32),
        output_bias=head.intercepts_[1].astype(np.float32),
        threshold=np.float32(threshold),
    )
    print(
        f"classifier head: {len(frame)} texts from {frame['source'].nunique()} files "
        f"(left out: {', '.join(p.name if p.parent.name == 'data' else p.parent.name for p in leave_out) or 'none'}); "
        f"threshold {threshold:.5f} = {SAFE_ENGLISH_BUDGET:.0%} of safe English flagged out of fold "
        f"(unsafe flagged out of fold: {(unsafe_oof[unsafe] >= threshold).mean():.3f}); wrote {path}"
    )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", action="store_true", help="print 5-fold cross-validated rates first")
    parser.add_argument("--compose", action="store_true", help=f"(re)write {COMPOSED.name} from the grid first")
    parser.add_argument(
        "--calibrate", action="store_true", help="score the whole screen on the calibration split first"
    )
    parser.add_argument("--show-errors", action="store_true", help="with --calibrate: list the split's errors")
    parser.add_argument("--c", type=float, default=None, help="override the regularization C (experiments)")
    parser.add_argument("--no-save", action="store_true", help="do not write the model (experiments)")
    parser.add_argument("--classifier", action="store_true", help="train only the round-5 embedding classifier head")
    parser.add_argument("--classifier-leave-out", type=Path, nargs="*", default=[], help="labelled files left out")
    parser.add_argument("--classifier-out", type=Path, default=None, help="write the head here (experiments)")
    args = parser.parse_args(argv)
    if args.classifier:
        train_classifier(args.classifier_leave_out, args.classifier_out)
        return 0
    if args.c is not None:
        global REGULARIZATION
        REGULARIZATION = args.c
    if args.compose:
        composed = compose_grid()
        composed.to_json(COMPOSED, orient="records", lines=True, force_ascii=False)
        print(f"wrote {len(composed)} composed texts to {COMPOSED.relative_to(ROOT)}")
    frame = training_frame()
    texts = [model_text(masked_text(t)) for t in frame["text"]]
    if args.cv:
        cross_validate(frame, texts)
    if args.calibrate:
        calibrate(frame, texts, args.show_errors)
    if args.no_save:
        return 0
    char, word, model = fit(texts, frame["target"].tolist())
    save(char, word, model, MODEL_PATH)
    print(
        f"trained on {len(frame)} texts ({frame['target'].value_counts().to_dict()}); "
        f"{len(char.vocabulary_) + len(word.vocabulary_)} features; wrote {MODEL_PATH.relative_to(ROOT)} "
        f"({MODEL_PATH.stat().st_size / 1024:.0f} KiB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
