"""Untrusted text made safe to show to others: names and free texts lose the invisible characters
that change how the text around them reads.

Bidi controls (U+202A–U+202E, U+2066–U+2069, U+200E/U+200F, U+061C) let '\\u202eecilA' read as
another name on a police card, and can push a card's fields into a different order; zero-width
characters (U+200B, U+2060, U+FEFF) make two names that look the same differ, or hide words from
a search. None of them is needed to write a name or a description.

The joiners U+200C (ZWNJ) and U+200D (ZWJ) are different: they change rendering in emoji sequences
(👨‍👩‍👧, 🏳️‍🌈) and in the orthography of Arabic and Indic scripts, and they move no text. They are
kept where they join two such characters and dropped elsewhere (between Latin letters or Chinese
characters they are invisible and only make look-alikes).
"""

from __future__ import annotations

import unicodedata

BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
ZERO_WIDTH = frozenset("\u200b\u2060\ufeff")
JOINERS = frozenset("\u200c\u200d")
# Line breaks that are not "\n": shown as a space in a name, as a line break in a text.
LINE_BREAKS = frozenset("\u2028\u2029\x85\r\v\f")
_VARIATION_SELECTOR = "\ufe0f"
# Scripts whose spelling uses the joiners: Arabic (and its supplements), the Indic scripts, Sinhala.
_JOINING_SCRIPTS = ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0x0900, 0x0DFF))


def clean_name(value: str) -> str:
    """A display name on one line, without control or invisible characters, spaces collapsed."""
    return " ".join(_clean(value, keep_newlines=False).split())


def clean_text(value: str) -> str:
    """A free text (a description, a note) without control or invisible characters; lines kept."""
    return _clean(value, keep_newlines=True)


def _clean(value: str, *, keep_newlines: bool) -> str:
    if value.isprintable():
        return value  # every character above is unprintable: the common case costs one scan in C
    out: list[str] = []
    for index, char in enumerate(value):
        if char in BIDI_CONTROLS or char in ZERO_WIDTH:
            continue
        if char == "\r" and value[index + 1 : index + 2] == "\n":
            continue
        if char in JOINERS:
            if _joins(value, index):
                out.append(char)
            continue
        if char == "\n" or char in LINE_BREAKS:
            out.append("\n" if keep_newlines else " ")
            continue
        if char == "\t":
            out.append(" ")
            continue
        if unicodedata.category(char) == "Cc":
            continue  # NUL, ESC and the other C0/C1 controls
        out.append(char)
    return "".join(out)


def _joins(value: str, index: int) -> bool:
    """Whether the joiner at `index` sits between two characters it changes the rendering of."""
    if index == 0 or index + 1 >= len(value):
        return False
    before, after = value[index - 1], value[index + 1]
    if _emoji(before) or before == _VARIATION_SELECTOR or _skin_tone(before):
        return _emoji(after)
    return _joining_script(before) and _joining_script(after)


def _emoji(char: str) -> bool:
    return unicodedata.category(char) == "So"


def _skin_tone(char: str) -> bool:
    return 0x1F3FB <= ord(char) <= 0x1F3FF


def _joining_script(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _JOINING_SCRIPTS)
