"""Names people are shown under in a meeting: a guest's typed name, a directory's display name.

Both end up in a token's ``context.user.name`` and in every other participant's
list, so both follow one rule of what can be seen: no control, format or
direction characters (U+202E turns the rest of a name around), no characters
that take space but show nothing (Hangul fillers, the blank Braille pattern,
variation selectors, zero-width characters), no combining mark without a
letter to sit on, no tower of marks on one letter (Zalgo text), no long runs
of spaces, and a length a token in a redirect can carry.

A guest's name is *refused* when it breaks the rule (the guest types another);
a directory's name is *cleaned*, since nobody can be asked to retype it.
"""

from __future__ import annotations

import re
import unicodedata

# What a display name is cut to: the session cookie holds as much
# (sidecar.sessions), and a token carrying it stays far below nginx's header buffers.
MAX_DISPLAY_NAME = 200
# What a guest may type.
MAX_GUEST_NAME = 64
# Spaces of any kind in a row (no-break, ideographic, thin...): two allow a typo,
# more are padding that pushes the "(Gast)" after a name out of a cut-off display.
MAX_SPACES_IN_A_ROW = 2
# Marks on one letter, decomposed: Vietnamese, Hebrew pointing and Indic
# scripts need up to three; Zalgo text stacks dozens.
MAX_MARKS_PER_LETTER = 3

# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt: drawn as
# nothing by any font) that are not already format characters (Cf), and blanks
# that fonts draw as nothing although Unicode calls them letters or symbols.
_SHOWS_NOTHING = re.compile(
    "["
    "\u034f"  # combining grapheme joiner
    "\u115f\u1160"  # Hangul choseong and jungseong fillers
    "\u17b4\u17b5"  # Khmer inherent vowels
    "\u180b-\u180f"  # Mongolian free variation selectors, vowel separator
    "\u2800"  # Braille pattern blank
    "\u3164"  # Hangul filler
    "\ufe00-\ufe0f"  # variation selectors
    "\uffa0"  # halfwidth Hangul filler
    "\ufff0-\ufff8"  # unassigned specials
    "\U0001bca0-\U0001bca3"  # shorthand format controls
    "\U0001d173-\U0001d17a"  # musical symbol formatting
    "\U000e0000-\U000e0fff"  # tags, variation selectors supplement
    "]"
)
# Characters that break a line or a log viewer's idea of one: turned into spaces
# in a directory's name ("Anna\nMüller" is meant as two words).
_LINE_BREAKS = re.compile("[\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_MARK_CATEGORIES = frozenset({"Mn", "Mc", "Me"})


class NameRefused(ValueError):
    """A typed name that breaks the rule; ``reason`` says which part, for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _kind(character: str) -> str:
    """``"invisible"``, ``"mark"``, ``"space"`` or ``"shown"``."""
    category = unicodedata.category(character)
    if category in _INVISIBLE_CATEGORIES:
        return "invisible"
    if category in _MARK_CATEGORIES:
        return "mark"
    if category == "Zs":
        return "space"
    return "shown"


def _is_mark(character: str) -> bool:
    return unicodedata.category(character) in _MARK_CATEGORIES


def _has_letter_or_digit(name: str) -> bool:
    return any(unicodedata.category(character)[0] in "LN" for character in name)


def _cut(name: str, limit: int) -> str:
    """``name`` in at most ``limit`` characters, never cut between a letter and its marks."""
    if len(name) <= limit:
        return name
    end = limit
    while end > 0 and _is_mark(name[end]):
        end -= 1
    return name[:end].rstrip()


def guest_name(typed: str) -> str:
    """The name a guest typed, as shown (NFC, trimmed, every space a plain one), or
    :class:`NameRefused`: at least one letter or digit, at most
    :data:`MAX_GUEST_NAME` characters, nothing that shows nothing, no lone or
    stacked marks, at most :data:`MAX_SPACES_IN_A_ROW` spaces in a row."""
    name = unicodedata.normalize("NFC", typed).strip()
    if not name:
        raise NameRefused("empty")
    if len(name) > MAX_GUEST_NAME:
        raise NameRefused("too long")
    if _SHOWS_NOTHING.search(name):
        raise NameRefused("invisible characters")
    spaces = marks = 0
    previous = "space"
    # Marks counted apart from their letter (NFD): "ệ" is a letter and two marks.
    for character in unicodedata.normalize("NFD", name):
        kind = _kind(character)
        if kind == "invisible":
            raise NameRefused("invisible characters")
        if kind == "mark":
            marks += 1
            if previous == "space":
                raise NameRefused("a mark on no letter")
            if marks > MAX_MARKS_PER_LETTER:
                raise NameRefused("too many marks on one letter")
            continue
        marks = 0
        spaces = spaces + 1 if kind == "space" else 0
        if spaces > MAX_SPACES_IN_A_ROW:
            raise NameRefused("too many spaces in a row")
        previous = kind
    if not _has_letter_or_digit(name):
        raise NameRefused("no letter or digit")
    return "".join(" " if _kind(character) == "space" else character for character in name)


def with_suffix(name: str, suffix: str, *, limit: int = MAX_DISPLAY_NAME) -> str:
    """``name suffix`` in at most ``limit`` characters: the name is cut, never the suffix."""
    return f"{_cut(name, max(0, limit - len(suffix) - 1))} {suffix}".lstrip()


def display_name(value: str | None, fallback: str) -> str:
    """A directory's display name, cleaned: what cannot be seen removed (line breaks
    become spaces), spaces in a row made one, marks without a letter dropped and
    towers of marks cut to :data:`MAX_MARKS_PER_LETTER`, cut to
    :data:`MAX_DISPLAY_NAME`. ``fallback`` (the login name) when nothing is left."""
    cleaned = _cleaned(value or "")
    return cleaned if _has_letter_or_digit(cleaned) else _cleaned(fallback)


def _cleaned(value: str) -> str:
    # Cut early: a directory may hold a name of any length, and the work below
    # should not grow with it (a little margin for what is removed).
    text = unicodedata.normalize("NFD", value[: MAX_DISPLAY_NAME * 4])
    text = _SHOWS_NOTHING.sub("", _LINE_BREAKS.sub(" ", text))
    kept: list[str] = []
    marks = 0
    for character in text:
        kind = _kind(character)
        if kind == "mark":
            marks += 1
            if kept and kept[-1] != " " and marks <= MAX_MARKS_PER_LETTER:
                kept.append(character)
            continue
        if kind == "invisible":
            continue
        marks = 0
        if kind == "shown":
            kept.append(character)
        elif kept and kept[-1] != " ":
            kept.append(" ")
    return _cut(unicodedata.normalize("NFC", "".join(kept)).strip(), MAX_DISPLAY_NAME)
