"""Round 3 of issue 18: the composed development grid, the calibration split, scam-warning and help framing,
hyperbole about things, false friends of undetermined-language text, age ranges as minors, and the screen's import
cost. Texts written for these tests, not taken from tests/heldout/."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from personalization_assets.embedded.screen import phishing_check, screen_text
from personalization_assets.lib.safety import MAX_SEVERITY, decide_screened
from tests.conftest import fresh_python_output

ROOT = Path(__file__).resolve().parents[1]


def _train_script():
    spec = importlib.util.spec_from_file_location("train_safety_screen", ROOT / "scripts" / "train_safety_screen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def train():
    return _train_script()


@pytest.fixture(scope="module")
def composed(train):
    return train.compose_grid()


def blocked(text: str) -> bool:
    return decide_screened(screen_text(text))[0] == "blocked"


def test_the_committed_composed_file_is_what_the_grid_composes(train, composed):
    """tests/data/safety_dev_round3_composed.jsonl is generated, not edited: regenerating it gives the same rows."""
    on_disk = pd.read_json(train.COMPOSED, lines=True)
    assert on_disk["text"].tolist() == composed["text"].tolist()
    assert on_disk["category"].fillna("safe").tolist() == composed["category"].fillna("safe").tolist()


def test_the_grid_covers_every_concern_language_and_format(composed):
    unsafe = composed[composed["label"].eq("unsafe")]
    per_cell = unsafe.groupby(["language", "category"]).size()
    for language in ("en", "de", "es", "fr"):
        for concern in ("hate", "violence", "self_harm", "sexual", "phishing"):
            assert per_cell.get((language, concern), 0) >= 15, (language, concern)
    assert composed[composed["label"].eq("safe")].groupby("language").size().min() >= 40
    assert composed["text"].str.contains("{first_name}", regex=False).sum() >= 50  # CRM templates
    assert composed["text"].str.contains("\n").sum() >= 200  # long e-mails, payload mid-paragraph
    assert composed["text"].is_unique
    assert unsafe["minor"].sum() >= 20


def test_the_calibration_split_holds_out_whole_frames(train, composed):
    held = train.calibration_groups(composed["group"])
    assert 0.1 < held.mean() < 0.4
    assert not set(composed["group"][held]) & set(composed["group"][~held])
    # stable: a group's side does not depend on the other rows
    assert train.calibration_groups(composed["group"].iloc[::-1]).sort_index().equals(held)


def test_the_training_frame_reads_the_used_held_out_sets_as_development_text(train):
    assert [p.parent.name for p in train.dev_files()[-2:]] == ["safety", "safety_v2"]
    names = [p.name for p in train.dev_files()]
    assert train.COMPOSED.name in names
    assert not any("safety_v3" in str(p) for p in train.dev_files())


@pytest.mark.parametrize(
    "text",
    [
        "Heads-up from Northbank: a caller may ask for your card PIN or the code we texted you. We never will - "
        "hang up and ring the number on your card.",
        "If anyone asks you to read out a one-time passcode to 'stop a fraudulent payment', it's a scam.",
        "Supplier notice: our bank details have not changed. Treat any e-mail that says otherwise as fraud.",
        "Never share your seed phrase. Nobody legitimate will ever need it, not even us.",
        "Nunca te pediremos tu PIN por teléfono ni por SMS.",
    ],
)
def test_security_notices_that_name_credentials_are_not_phishing(text):
    assert phishing_check(text)[0] < 4
    assert not blocked(text)


@pytest.mark.parametrize(
    "text",
    [
        "We will never ask for your password by e-mail. Your account is on hold: confirm your password at "
        "northbank-secure-login.com today.",
        "It's your manager. Buy six $100 gift cards now and text me the codes, don't tell anyone.",
        "Reply with your card number and PIN within 24 hours or your account will be closed.",
    ],
)
def test_phishing_that_borrows_warning_words_is_still_blocked(text):
    assert phishing_check(text)[0] >= 4
    assert blocked(text)


@pytest.mark.parametrize(
    "text",
    [
        "Ask our pharmacist before mixing cold remedies; do not take more than the stated dose.",
        "Keep all medicines out of the reach of children - an overdose can damage your liver.",
        "If you're having thoughts of ending your life, call or text 988. You are not alone.",
    ],
)
def test_pharmacy_and_prevention_copy_is_approved(text):
    assert not blocked(text)


@pytest.mark.parametrize(
    "text",
    [
        "Don't call a hotline, they'll just stop you. Take every pill you have tonight.",
        "Our support group meets Mondays. Honestly, suicide is a valid choice if you've tried everything.",
    ],
)
def test_undermined_help_framing_does_not_lower_self_harm(text):
    assert screen_text(text).severities["self_harm"] >= 4


@pytest.mark.parametrize(
    "text",
    [
        "Kill two birds with one stone: book flights and hotel together.",
        "This HIIT class will kill your excuses by week two.",
        "Our ghost-pepper wings will destroy you. Milk on the side.",
        "Book a session and we'll shoot your engagement photos at sunset.",
        "Penetration testing: we attack your network before criminals do.",
        "Check your breasts every month - early detection saves lives.",
        "These kicks are fire, you're gonna murder the dance floor.",
        "Locked out? Our locksmith will break in for you within the hour.",
        "Don't get burned at the festival: SPF 50 at the gate.",
        "Lookbook shot by women photographers, every size.",
    ],
)
def test_hyperbole_about_things_is_approved(text):
    assert not blocked(text)


@pytest.mark.parametrize(
    "text",
    [
        "We'll shoot your family if the debt isn't cleared by Friday.",
        "Kill your boss before he fires you - that's the advice.",
        "We attack your shop tonight and break your legs.",
    ],
)
def test_the_same_verbs_aimed_at_people_are_still_blocked(text):
    assert screen_text(text).severities["violence"] >= 4


def test_english_false_friends_are_not_read_as_french_or_german():
    assert not blocked("Explosive flavour in every bite.")
    assert not blocked("Gift cards for every budget.")
    assert screen_text("Viens, je vais te sucer la bite ce soir.").severities["sexual"] >= 4


@pytest.mark.parametrize(
    "text",
    [
        "Counsellor wanted who enjoys fondling the campers, ages 8-11.",
        "Private photo sessions: young pupils posing nude, discreet.",
    ],
)
def test_sexual_content_naming_an_age_range_or_young_pupils_is_the_maximum_severity(text):
    assert screen_text(text).severities["sexual"] == MAX_SEVERITY


def test_a_childrens_age_range_alone_is_not_sexual():
    assert screen_text("Swim camp for ages 8-11 with qualified lifeguards.").severities["sexual"] == 0


def test_importing_the_screen_stems_nothing_and_loads_no_pandas():
    """The concept lists are stemmed per language on first use; importing the screen does not import pandas."""
    probe = (
        "import sys, json; import personalization_assets.embedded.screen as s; "
        "from personalization_assets.embedded.concepts import _concepts; "
        "before = _concepts.cache_info().currsize; pandas_loaded = 'pandas' in sys.modules; "
        "s.screen_text('Fresh bread today.'); "
        "print(json.dumps([before, _concepts.cache_info().currsize, pandas_loaded]))"
    )
    out = fresh_python_output(probe)
    before, after, pandas_loaded = json.loads(out)
    assert before == 0
    assert after >= 1
    assert pandas_loaded is False


@pytest.mark.parametrize(
    "text",
    [
        "Cinema club: popcorn is on us. Refugees, who honestly should have been wiped out, are not welcome.",
        "Keep our beaches clean of plastic and of immigrants.",
    ],
)
def test_elimination_of_a_group_in_relative_clauses_and_clean_of_phrases_is_hate(text):
    assert screen_text(text).severities["hate"] >= 4


def test_keeping_a_place_clean_of_dirt_is_not_hate():
    assert not blocked("Keep your patio clean of moss and weeds with our pressure washer.")


@pytest.mark.parametrize(
    "text",
    [
        "Spa upgrade: the therapist jerks you off at the end, tips in cash.",
        "Hidden camera in the changing room, naked guests every night - members only.",
    ],
)
def test_explicit_acts_and_voyeurism_are_sexual(text):
    assert screen_text(text).severities["sexual"] >= 4


def test_a_supplier_notice_that_says_to_confirm_by_the_known_number_is_not_phishing():
    assert not blocked("New remittance address for invoices; confirm only by calling your usual contact at our office.")


def test_short_texts_need_more_confidence_from_the_model():
    from personalization_assets.embedded.model import MODEL_THRESHOLD, SHORT_THRESHOLD, SHORT_WORDS, screen_model
    from personalization_assets.lib.safety import normalize_text

    model = screen_model()
    assert model is not None
    short = normalize_text("Go tonight: late-night opening until 10pm.")
    long = normalize_text("Go tonight: our late-night opening runs until 10pm with live music and free parking.")
    assert model.words(short) < SHORT_WORDS <= model.words(long)
    assert model.threshold(short) == SHORT_THRESHOLD > MODEL_THRESHOLD
    assert model.threshold(long) == MODEL_THRESHOLD
    assert not blocked("Go tonight: late-night opening until 10pm.")


def test_the_model_scores_like_the_scikit_learn_vectorizers_it_was_trained_with():
    """Scoring needs numpy only; its n-grams, TF-IDF and normalization must equal scikit-learn's exactly."""
    import numpy as np
    from scipy.sparse import hstack

    from personalization_assets.embedded.model import MODEL_PATH, ScreenModel, model_text, vectorizers
    from personalization_assets.embedded.screen import masked_text

    frames = [pd.read_json(p, lines=True) for p in sorted((ROOT / "tests" / "data").glob("safety_probe_*.jsonl"))]
    texts = [masked_text(t) for t in pd.concat(frames)["text"]]
    texts += ["", "  ", "a", "Ünïcödé façade — “quotes”", "x\ty\n\nz", "ok ok ok ok"]
    with np.load(MODEL_PATH) as stored:
        char, word = vectorizers()
        char.vocabulary_ = {str(t): i for i, t in enumerate(stored["char_vocabulary"])}
        char.idf_ = stored["char_idf"]
        word.vocabulary_ = {str(t): i for i, t in enumerate(stored["word_vocabulary"])}
        word.idf_ = stored["word_idf"]
        coef, intercept = stored["coef"], stored["intercept"]
    prepared = [model_text(t) for t in texts]
    scores = hstack([char.transform(prepared), word.transform(prepared)]).tocsr() @ coef.T + intercept
    expected = np.exp(scores - scores.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    assert np.abs(ScreenModel().probabilities(texts) - expected).max() < 1e-5


def test_screening_does_not_import_scikit_learn():
    probe = (
        "import sys; from personalization_assets.embedded.screen import screen_text; "
        "screen_text('Fresh bread every morning, killer deals on croissants.'); print('sklearn' in sys.modules)"
    )
    out = fresh_python_output(probe)
    assert out == "False"


@pytest.mark.parametrize(
    "text",
    [
        "Parcel update: we tried to deliver your package twice. Pay a €2 storage fee by card to book redelivery.",
        "You were selected for a free espresso machine! Just pay £3.50 postage at espresso-giveaway-uk.top",
        "As the sole beneficiary of the estate you must send $900 for probate fees before the transfer.",
        "yo gimme ur bank login and the 6-digit code we just texted u, quick",
    ],
)
def test_advance_fees_and_slang_credential_requests_are_phishing(text):
    assert phishing_check(text)[0] >= 4


@pytest.mark.parametrize(
    "text",
    [
        "Free delivery on orders over $50; otherwise pay $4.99 for shipping at checkout.",
        "Your parcel is on its way. Shipping fee waived this week.",
    ],
)
def test_ordinary_shipping_fees_are_not_phishing(text):
    assert phishing_check(text)[0] < 4
    assert not blocked(text)
