"""Choosing the pages' language from Accept-Language, and the two sets of words."""

from __future__ import annotations

import re
import string

import pytest

from sidecar.config.settings import LANGUAGES, Address, Language
from sidecar.web.i18n import DU, TEXTS, Translator, choose_language


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de", "de"),
        ("en", "en"),
        ("DE", "de"),
        ("de-AT", "de"),
        ("de-CH, en;q=0.5", "de"),
        ("en-GB,en;q=0.9,de;q=0.8", "en"),
        ("en-US", "en"),
        ("fr, de;q=0.1", "de"),
        ("fr, en;q=0.1", "en"),
        ("en;q=0.5, de;q=0.9", "de"),
        ("de;q=0.5, en;q=0.9", "en"),
        ("de;q=0.2, en;q=0.3, fr", "en"),
        ("en;Q=0.1, de;q=0.05", "en"),
        ("de;level=1;q=0.4, en;q=0.3", "de"),
        (" de ; q = 0.7 , en ; q = 0.6 ", "de"),
        ("de;q=1.0, en;q=1", "de"),
        ("de;q=0.001, fr", "de"),
    ],
)
def test_the_most_wanted_supported_language_wins(header: str, expected: Language) -> None:
    assert choose_language(header, "en" if expected == "de" else "de") == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("en, de", "en"),
        ("de, en", "de"),
        ("en;q=0.8, de;q=0.8", "en"),
        ("de;q=0.8, en;q=0.8", "de"),
        ("fr, en-GB, de-DE", "en"),
        ("fr, de-DE, en-GB", "de"),
    ],
)
def test_on_equal_weights_the_earlier_language_wins(header: str, expected: Language) -> None:
    for default in LANGUAGES:
        assert choose_language(header, default) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "fr",
        "fr-FR, es;q=0.9, *;q=0.1",
        "*",
        "deu",
        "english",
        "de;q=0, en;q=0",
        "de;q=abc",
        "de;q=",
        "de;q=-1",
        "de;q=2",
        "de;q=nan",
        "de;q=inf",
        ";;;",
        ",,,",
        ";q=1",
        "=;=;=",
        "\x00de",
        "ü, ä;q=0.5",
    ],
)
def test_nothing_usable_gives_the_default(header: str | None) -> None:
    for default in LANGUAGES:
        assert choose_language(header, default) == default


def test_a_refused_language_is_not_chosen() -> None:
    assert choose_language("de;q=0, en;q=0.1", "de") == "en"
    assert choose_language("en;q=0, fr, de;q=0.1", "en") == "de"


def test_an_unreadable_weight_does_not_spoil_the_rest() -> None:
    assert choose_language("de;q=abc, en;q=0.1", "de") == "en"
    assert choose_language("fr;q=x, ;;;, de-AT;q=0.3", "en") == "de"


def test_a_very_long_header_is_cut_not_choked_on() -> None:
    assert choose_language("de, " + "fr;q=0.5, " * 100_000, "en") == "de"
    assert choose_language("x" * 1_000_000, "en") == "en"
    assert choose_language(";" * 1_000_000, "de") == "de"
    # What comes after the first kilobyte is not read, nor what comes after 32 entries.
    assert choose_language("fr;q=0.1" + " " * 1000 + ", de", "en") == "en"
    assert choose_language("fr, " * 32 + "de", "en") == "en"
    assert choose_language("fr, " * 31 + "de", "en") == "de"


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def test_both_languages_have_the_same_keys() -> None:
    assert set(TEXTS) == set(LANGUAGES)
    assert set(TEXTS["de"]) == set(TEXTS["en"])


@pytest.mark.parametrize("key", sorted(TEXTS["en"]))
def test_both_languages_have_the_same_placeholders(key: str) -> None:
    assert _placeholders(TEXTS["de"][key]) == _placeholders(TEXTS["en"][key])
    assert TEXTS["de"][key].strip()
    assert TEXTS["en"][key].strip()


def test_the_translator_fills_in_values() -> None:
    assert Translator("en")("banned.text", minutes=5) == "Please try again in 5 minutes."
    assert Translator("de")("banned.text", minutes=5) == "Bitte in 5 Minuten noch einmal versuchen."
    assert Translator("de")("logged_in_as", name="Anna") == "Angemeldet als Anna"
    assert Translator("de").language == "de"


def test_every_text_can_be_filled_in_both_languages() -> None:
    for language in LANGUAGES:
        translate = Translator(language)
        for key, text in TEXTS[language].items():
            values = {name: "X" for name in _placeholders(text)}
            assert "{" not in translate(key, **values)


def test_a_refused_default_gives_the_other_language() -> None:
    assert choose_language("de;q=0", "de") == "en"
    assert choose_language("en;q=0", "en") == "de"
    assert choose_language("de;q=0, en;q=0", "de") == "de"


@pytest.mark.parametrize("key", sorted(DU))
def test_every_du_form_replaces_a_german_text_with_the_same_placeholders(key: str) -> None:
    assert key in TEXTS["de"]
    assert _placeholders(DU[key]) == _placeholders(TEXTS["de"][key])
    assert DU[key] != TEXTS["de"][key]


def test_the_school_chooses_how_the_german_pages_address_people() -> None:
    assert "deinem Konto" in Translator("de", "du")("login.intro")
    assert "deinem" not in Translator("de", "Sie")("login.intro")
    assert "Lassen Sie" in Translator("de", "Sie")("waiting.checks")
    assert "Lass sie" in Translator("de", "du")("waiting.checks")
    # Neither in English, nor in the texts that need no address.
    assert Translator("en", "du")("login.intro") == Translator("en", "Sie")("login.intro")
    assert Translator("de", "du")("waiting.text") == Translator("de", "Sie")("waiting.text")


def test_a_german_page_says_du_or_sie_never_both() -> None:
    informal = re.compile(r"\b(du|dich|dir|dein\w*)\b", re.IGNORECASE)
    formal = re.compile(r"\b(Sie|Ihnen|Ihr\w*)\b")
    cases: tuple[tuple[Address, re.Pattern[str]], ...] = (("Sie", informal), ("du", formal))
    for address, wrong in cases:
        translate = Translator("de", address)
        for key, text in TEXTS["de"].items():
            filled = translate(key, **{name: "X" for name in _placeholders(text)})
            # "sie" lower case is "she" or "they": only a capital one at a sentence start counts.
            assert not wrong.search(filled.replace(". Sie ", ". sie ")), (address, key, filled)


@pytest.mark.parametrize(
    ("count", "english", "german"),
    [(1, "1 lesson", "1 Raum"), (2, "2 lessons", "2 Räume"), (0, "0 lessons", "0 Räume")],
)
def test_counts_have_their_plural_forms(count: int, english: str, german: str) -> None:
    assert Translator("en").count("start.rooms", count) == english
    assert Translator("de").count("start.rooms", count) == german


def _words(text: str) -> set[str]:
    without_placeholders = re.sub(r"\{[^}]*\}", "", text)
    return {word.lower() for word in re.findall(r"[A-Za-zÄÖÜäöüß]{3,}", without_placeholders)}


def test_no_english_word_on_a_german_page() -> None:
    """Only the words both languages use: product names, and a few German has taken in."""
    shared = {"android", "app", "browser", "ipad", "iphone", "link", "links", "minute", "name"}
    english = set().union(*(_words(text) for text in TEXTS["en"].values()))
    for key, text in [*TEXTS["de"].items(), *DU.items()]:
        assert not (_words(text) & english) - shared, (key, text)
