"""Round 5 of issue 18: the embedded screen's classifier on packaged sentence vectors (embedded/classifier.py).

Texts written for these tests, not taken from tests/heldout/."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import personalization_assets.embedded.classifier as classifier
from personalization_assets.embedded.screen import masked_text, screen_text
from personalization_assets.lib.safety import CONCERNS, MAX_SEVERITY
from tests.conftest import fresh_python_output

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shipped() -> classifier.EmbeddingClassifier:
    loaded = classifier.embedding_classifier()
    assert loaded is not None, "embedded/data/classifier_head.npz is missing"
    return loaded


def _rules_only(text: str):
    previous = classifier.HEAD_PATH
    classifier.HEAD_PATH = ROOT / "no-such-head.npz"
    classifier.embedding_classifier.cache_clear()
    try:
        return screen_text(text)
    finally:
        classifier.HEAD_PATH = previous
        classifier.embedding_classifier.cache_clear()


def test_sentence_vectors_are_wordllamas_own():
    """The module reads the wheel's files itself; its vectors are what wordllama's inference class computes."""
    from safetensors import safe_open
    from tokenizers import Tokenizer
    from wordllama.inference import WordLlamaInference

    weights, tokenizer = classifier.package_files()
    with safe_open(str(weights), framework="np") as handle:
        reference = WordLlamaInference(handle.get_tensor("embedding.weight"), Tokenizer.from_file(str(tokenizer)))
    texts = [
        "Fresh sourdough every morning at our bakery.",
        "Pay the balance by Friday or we will visit your shop.",
        "Ihre Bestellung ist unterwegs.",
        "ok",
    ]
    ours = classifier.SentenceEmbedding().embed(texts)
    theirs = reference.embed(texts, norm=True)
    assert ours.shape == (4, 256)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_the_files_come_from_the_installed_wheel_not_a_download():
    weights, tokenizer = classifier.package_files()
    package_root = Path(importlib.util.find_spec("wordllama").submodule_search_locations[0])
    assert weights.is_relative_to(package_root)
    assert tokenizer.is_relative_to(package_root)
    assert weights.stat().st_size > 10_000_000  # the 16 MiB embedding table is in the wheel


def test_judging_works_with_the_network_cut_off():
    """Loading and judging open no socket: a fresh process whose socket module refuses every connection."""
    probe = (
        "import socket, json\n"
        "def refuse(*a, **k): raise OSError('network used')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse; socket.getaddrinfo = refuse\n"
        "from personalization_assets.embedded.classifier import embedding_classifier\n"
        "c = embedding_classifier()\n"
        "print(json.dumps(c.unsafe_probability('Our summer sale starts on Monday, see you there.')))\n"
    )
    out = fresh_python_output(probe)
    assert 0.0 <= json.loads(out) < 0.5


def test_importing_the_screen_loads_no_tokenizer_until_it_screens():
    probe = (
        "import sys, json, time\n"
        "import personalization_assets.embedded.screen as s\n"
        "before = 'tokenizers' in sys.modules\n"
        "s.screen_text('Our summer sale starts on Monday, see you there.')\n"
        "print(json.dumps([before, 'tokenizers' in sys.modules, 'wordllama' in sys.modules]))\n"
    )
    out = fresh_python_output(probe)
    before, after, wordllama_imported = json.loads(out)
    assert before is False
    assert after is True
    assert wordllama_imported is False  # its loader (which would download) is never imported


def test_it_catches_a_text_the_rules_miss(shipped):
    """A development text (tests/data/safety_probe_round4_minors.jsonl) that round 4's rules left through: a minor's
    age with pictures only, no sexual word the lists know."""
    text = "Just turned sixteen? Celebrate with our adults-only webcam club, we love fresh faces."
    assert max(_rules_only(text).severities.values()) < 4
    result = screen_text(text)
    assert result.severities["sexual"] == MAX_SEVERITY  # the minors net: a minor's age + a sexual signal
    assert any(label.startswith(classifier.LABEL) for label in result.matched["sexual"])


@pytest.mark.parametrize(
    "text",
    [
        "Killer deals this weekend: prices to die for, and our new blender will blow you away. Shop now!",
        "Our stylists will slay your look, and the hot stone massage is a total knockout for tired muscles.",
        "Beat the rush: this crazy-good flash sale ends at midnight, so grab your favourites before they vanish.",
    ],
)
def test_idiom_dense_marketing_copy_is_left_alone(shipped, text):
    assert shipped.judge(masked_text(text)) is None
    assert max(screen_text(text).severities.values()) < 4


def test_it_only_raises_never_lowers():
    texts = [
        "Pay what you owe by Friday or we will break your legs.",
        "Send us your card number and PIN to keep your account open.",
        "Just turned sixteen? Celebrate with our adults-only webcam club, we love fresh faces.",
        "Free English classes every Tuesday at the library.",
    ]
    for text in texts:
        before, after = _rules_only(text).severities, screen_text(text).severities
        assert all(after[c] >= before[c] for c in CONCERNS), text


def test_signal_has_the_models_severities_and_is_english_only(shipped):
    text = masked_text("Just turned sixteen? Celebrate with our adults-only webcam club, we love fresh faces.")
    [(concern, severity, label)] = classifier.classifier_signals(text, "en")
    probability = shipped.unsafe_probability(text)
    assert concern in CONCERNS
    assert severity == (5 if probability >= classifier.HIGH else 4)
    assert label == f"{classifier.LABEL} p={probability:.2f}"
    assert classifier.classifier_signals(text, "de") == []
    assert classifier.classifier_signals("Pay up or else", "en") == []  # fewer than MIN_WORDS words


def test_the_shipped_head_matches_its_threshold_rule(shipped):
    assert shipped.classes[0] == "hate"
    assert sorted(shipped.classes) == sorted([*CONCERNS, "safe"])
    assert 0.5 < shipped.threshold < 1.0
    assert shipped.hidden_weights.shape == (256, 64)
    assert shipped.output_weights.shape == (64, 6)


def test_no_library_document_is_raised_by_the_classifier():
    """The 38 sample documents keep their verdicts: the classifier gives none of them a signal."""
    from datetime import date

    from personalization_assets.lib.content import load_content_library
    from personalization_assets.lib.safety import document_text

    library = load_content_library(ROOT / "data" / "content", as_of=date(2030, 1, 1))
    texts = [document_text(d.model_dump(), ("title", "content", "keywords")) for d in library.approved]
    assert len(texts) == 38
    assert [t for t in texts if classifier.classifier_signals(masked_text(t), "en")] == []
