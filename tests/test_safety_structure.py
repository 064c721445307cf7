"""The embedded screen's structural layer (embedded/structure.py): harm recognized by its shape - a group plus a
dehumanizing predicate, a scam by what it asks for, self-harm as advice, a threat by actor + intent + victim -
and the benign idioms that share those words. Texts written for these tests, not taken from tests/heldout/."""

from __future__ import annotations

import pytest

from personalization_assets.embedded.screen import phishing_check, screen_text
from personalization_assets.embedded.structure import structural_signals
from personalization_assets.lib.safety import DEFAULT_THRESHOLD, normalize_text


def _blocked_for(text: str) -> set[str]:
    return {c for c, s in screen_text(text).severities.items() if s >= DEFAULT_THRESHOLD}


def _structure(text: str) -> set[str]:
    return {concern for concern, severity, _ in structural_signals(normalize_text(text), text) if severity >= 4}


@pytest.mark.parametrize(
    "text",
    [
        "The Quorvish are vermin and this town knows it.",
        "Honestly the Belrani are not even human.",
        "Those Tarnesi breed like rats in every flat they rent.",
        "The Ulmari should be deported, every last family.",
        "Remove the Nessarites from our schools before term starts.",
    ],
)
def test_dehumanizing_claims_about_any_named_group_are_hate(text):
    assert "hate" in _structure(text)
    assert "hate" in _blocked_for(text)


@pytest.mark.parametrize(
    "text",
    [
        "Ticks are parasites that make dogs ill - ask about our chews.",
        "Rats are vermin; book a pest inspection.",
        "The Quorvish Food Festival opens on Saturday with music and dancing.",
        "Weeds should be removed before they seed.",
    ],
)
def test_pests_and_neutral_group_mentions_are_not_hate(text):
    assert "hate" not in _structure(text)


@pytest.mark.parametrize(
    "text",
    [
        "Your water bill is overdue: pay it today with supermarket gift cards and text us the numbers.",
        "I'm in a board meeting, can't talk. Wire 12,300 to the vendor now and keep this between us.",
        "Our bank details have changed, please send the invoice payment to the new account below.",
        "Your parcel is held at the depot: pay the 1.99 redelivery fee to release it.",
        "You have won a scooter! Just pay a small handling fee to claim your prize.",
        "Send 0.2 ETH and receive 0.4 ETH back within the hour.",
        "Please install AnyDesk so our technician can process your refund.",
    ],
)
def test_scams_are_recognized_by_what_they_ask_for(text):
    severity, labels = phishing_check(text)
    assert severity >= DEFAULT_THRESHOLD, labels
    assert any(label.startswith("structure:") for label in labels)


@pytest.mark.parametrize(
    "text",
    [
        "Gift cards make great presents - we'll email the code to your recipient.",
        "You can pay with a gift card, credit card or Apple Pay at checkout.",
        "Free delivery on orders over 50; a 4.99 delivery fee applies otherwise.",
        "Your parcel is out for delivery today between 9 and 12.",
        "Scam alert: we never ask you to pay a fee to release a parcel.",
        "Double points on every coffee this week.",
    ],
)
def test_ordinary_payment_copy_is_not_a_scam(text):
    assert "phishing" not in _structure(text)


@pytest.mark.parametrize(
    "text",
    [
        "Skipping your insulin is the quickest way to drop a dress size.",
        "Stop taking your meds, you're better off without them.",
        "Take the whole bottle of sleeping pills tonight.",
        "Nobody would miss you if you were gone.",
        "Just stop eating for a week before the shoot.",
    ],
)
def test_self_harm_advice_in_everyday_words(text):
    assert "self_harm" in _structure(text)


@pytest.mark.parametrize(
    "text",
    [
        "Never stop taking your medication without talking to your doctor.",
        "Skipping insulin is dangerous - our diabetes nurses can help.",
        "Stop eating out every night with our meal kits.",
        "Nobody will miss out this year: tickets for everyone.",
        "Cut yourself a slice of lemon cake.",
    ],
)
def test_prevention_and_everyday_copy_is_not_self_harm(text):
    assert "self_harm" not in _blocked_for(text)


@pytest.mark.parametrize(
    "text",
    [
        "Pay by Friday or our lads will pay your family a visit.",
        "Lovely shop. It would be a shame if something happened to those windows.",
        "There's a baseball bat with your name on it if the money isn't here.",
        "Your kneecaps will end up broken if you miss another payment.",
        "Settle the loan or we're coming to your house.",
    ],
)
def test_threats_by_structure(text):
    assert "violence" in _structure(text)
    assert "violence" in _blocked_for(text)


@pytest.mark.parametrize(
    "text",
    [
        "We bleed blue and white every Saturday - season tickets on sale.",
        "You've been warned: these deals vanish at midnight.",
        "There's a coffee with your name on it at the counter.",
        "Accidents happen - our pet insurance covers the vet bill.",
        "We'll come to your home for a free solar survey.",
        "Our team will break down the rules for you at the workshop.",
        "Our mosquito spray kills them before they bite.",
    ],
)
def test_idioms_and_service_copy_are_not_threats(text):
    assert "violence" not in _blocked_for(text)
