"""Round 5 of issue 18: a packaged sentence representation with a small head of the project's own, next to the embedded
screen's rules and its n-gram model (embedded/model.py).

**What ships where.** The representation is WordLlama's `l2_supercat` static token embeddings (256 dimensions,
32,000 LLaMA-2 tokens, float16, 16 MiB) with its tokenizer, both *inside the wheel* of the PyPI package `wordllama`
(0.4.0.post1, MIT licence, Lee Miller; the embeddings are LLaMA-2's token embeddings distilled with contrastive
training on general sentence-similarity data - not on this project's text and not on harm labels). A text is
tokenized with the `tokenizers` package, its token vectors are averaged and l2-normalized - what
`WordLlamaInference.embed(norm=True)` computes; this module reads the two files itself, so wordllama's own loader
(which looks for the tokenizer in a folder the wheel does not have and then downloads from a model hub) is never
called and nothing is downloaded at run time. Only the head is the project's: a small neural network (256 -> 64 ReLU
-> softmax over {safe, hate, violence, self_harm, sexual, phishing}), trained by `scripts/train_safety_screen.py
--classifier` on every labelled file the team has used (development sets, probes, v1-v4 held-out sets) and the
library's sentences, shipped as `embedded/data/classifier_head.npz` (weights, classes, threshold; scored with
numpy).

**Why.** The n-gram model learns its authors' phrasing; a pretrained representation puts "we know which school your
daughter attends" near threatening sentences it never saw. With a head trained without the v3 and v4 held-out sets
(text by other authors), the screen caught 11 more of their 491 unsafe texts for 3 more of 408 safe English ones
blocked; the toxicity classifiers that ship in PyPI wheels (alt-profanity-check, hatesonar, valx,
toxic-comment-classifier) were no better than chance on that text (AUC 0.48-0.59): they are trained on profane
comments and tweets, not on harm slipped into marketing copy (docs/safety_screen.md, "Round 5: packaged
classifier").

**How the screen uses it.** Only to raise a concern, like embedded/model.py: an unsafe probability (1 - P(safe)) of
at least the stored threshold gives the most probable concern severity 4 (5 from `HIGH`). The threshold is chosen by
the training script's rule, never by hand: the lowest probability at which at most `SAFE_ENGLISH_BUDGET` of the
development set's safe English copy is flagged, scored out of fold (each source file scored by a head trained
without it). The network is confident (out of fold it gives 7-10% of a new file's safe English copy p > 0.9), so the
rule lands at p >= 0.9998: only texts it is all but certain of raise a concern. The label starts with "model:", so
the screen's scam-warning, help and inclusive-copy rules lower it exactly as they lower the n-gram model. Texts of
fewer than `MIN_WORDS` words are not judged. English only (and text whose language is undetermined): the head's
German, Spanish and French training text is a few hundred items."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from personalization_assets.embedded.loading import load_once

PACKAGE = "wordllama"  # the PyPI distribution whose wheel carries the embeddings and the tokenizer
WEIGHTS = ("weights", "l2_supercat_256.safetensors")
TOKENIZER = ("tokenizers", "l2_supercat_tokenizer_config.json")
HEAD_PATH = Path(__file__).parent / "data" / "classifier_head.npz"
SAFE = "safe"
HIGH = 0.9  # as embedded/model.py's MODEL_HIGH: severity 5 from here
MIN_WORDS = 4  # fewer words (a subject line's "Last call", a tier name) carry too little for a sentence vector
SAFE_ENGLISH_BUDGET = 0.01  # the threshold rule (scripts/train_safety_screen.py --classifier)
LABEL = "model: embedding classifier"


class ClassifierUnavailable(RuntimeError):
    """The package that ships the embeddings is not installed (a dependency of the project)."""


def package_files() -> tuple[Path, Path]:
    """(weights, tokenizer) inside the installed wordllama package, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ClassifierUnavailable(
            f"the embedded screen's classifier needs the '{PACKAGE}' package (pyproject.toml dependencies); "
            f"install it with: pip install 'wordllama==0.4.0.post1'"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    weights, tokenizer = root.joinpath(*WEIGHTS), root.joinpath(*TOKENIZER)
    for path in (weights, tokenizer):
        if not path.is_file():
            raise ClassifierUnavailable(f"the '{PACKAGE}' package has no {path.relative_to(root)}: reinstall it")
    return weights, tokenizer


def read_safetensor(path: Path, key: str = "embedding.weight") -> np.ndarray:
    """One tensor of a .safetensors file (8-byte little-endian header length, JSON header, raw data), memory-mapped:
    the format is simple enough that the `safetensors` package is not needed."""
    with path.open("rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(size))
    entry = header[key]
    dtype = {"F16": np.float16, "F32": np.float32}[entry["dtype"]]
    start, end = entry["data_offsets"]
    count = (end - start) // np.dtype(dtype).itemsize
    data = np.memmap(path, dtype=dtype, mode="r", offset=8 + size + start, shape=(count,))
    return data.reshape(entry["shape"])


class SentenceEmbedding:
    """WordLlama's average-pooled, l2-normalized token embeddings."""

    def __init__(self) -> None:
        from tokenizers import Tokenizer  # imported on first use: the screen's import stays cheap

        weights, tokenizer = package_files()
        self.embedding = read_safetensor(weights)
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit vector per text (a zero vector for a text without tokens)."""
        vectors = np.zeros((len(texts), self.embedding.shape[1]), dtype=np.float32)
        for row, encoding in enumerate(self.tokenizer.encode_batch(texts, add_special_tokens=False)):
            ids = np.clip(np.asarray(encoding.ids, dtype=np.int64), 0, self.embedding.shape[0] - 1)
            if len(ids):
                mean = self.embedding[ids].astype(np.float32).mean(axis=0)
                norm = float(np.linalg.norm(mean))
                vectors[row] = mean / norm if norm else mean
        return vectors


class EmbeddingClassifier:
    """The shipped head on top of `SentenceEmbedding`."""

    def __init__(self, path: Path = HEAD_PATH, embedding: SentenceEmbedding | None = None):
        with np.load(path, allow_pickle=False) as stored:
            self.classes = [str(c) for c in stored["classes"]]
            self.hidden_weights = stored["hidden_weights"].astype(np.float32)
            self.hidden_bias = stored["hidden_bias"].astype(np.float32)
            self.output_weights = stored["output_weights"].astype(np.float32)
            self.output_bias = stored["output_bias"].astype(np.float32)
            self.threshold = float(stored["threshold"])
        self._safe = self.classes.index(SAFE)
        self.embedding = embedding or SentenceEmbedding()

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Class probabilities (rows: texts, columns: `classes`)."""
        hidden = np.maximum(self.embedding.embed(texts) @ self.hidden_weights + self.hidden_bias, 0.0)
        scores = hidden @ self.output_weights + self.output_bias
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def unsafe_probability(self, text: str) -> float:
        return 1.0 - float(self.probabilities([text])[0][self._safe])

    def judge(self, text: str) -> tuple[str, float] | None:
        """(most probable unsafe concern, unsafe probability) when the head finds the text unsafe, else None (also
        for a text of fewer than `MIN_WORDS` words)."""
        if len(text.split()) < MIN_WORDS:
            return None
        probabilities = self.probabilities([text])[0]
        unsafe = 1.0 - float(probabilities[self._safe])
        if unsafe < self.threshold:
            return None
        ranked = [i for i in np.argsort(probabilities)[::-1] if i != self._safe]
        return self.classes[ranked[0]], unsafe


@load_once()
def embedding_classifier() -> EmbeddingClassifier | None:
    """The shipped classifier, loaded on first use (None if the head file is missing: the screen then judges
    without it). A missing wordllama package raises `ClassifierUnavailable` rather than screening more weakly."""
    return EmbeddingClassifier(HEAD_PATH) if HEAD_PATH.is_file() else None


def classifier_signals(text: str, language: str) -> list[tuple[str, int, str]]:
    """The screen's hook: [(concern, severity, label)] - at most one signal, only for English or undetermined text.
    `text` is what the screen's n-gram model reads (normalized, benign idioms masked)."""
    if language not in ("en", "und"):
        return []
    classifier = embedding_classifier()
    judged = classifier.judge(text) if classifier is not None else None
    if judged is None:
        return []
    concern, probability = judged
    return [(concern, 5 if probability >= HIGH else 4, f"{LABEL} p={probability:.2f}")]
