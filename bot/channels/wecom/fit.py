"""Texts cut to WeChat Work's lengths (card titles, button labels, 2,048-byte messages) where a
reader would cut them: after a whole word or number, never inside one, with an ellipsis.

Cutting at a fixed length showed "🏠 就在我住的楼（3" on a button and "定位点（31.23000, 121." on
a card: a building number or a coordinate cut short reads as another one.
"""

from __future__ import annotations

import unicodedata

ELLIPSIS = "…"
# Characters that hold a number or a Latin word together ("121.47", "3-2", "Unit").
_JOINING = frozenset(".,:'’-_/%")
_CLOSING = {"（": "）", "(": ")", "「": "」", "『": "』", "“": "”", "《": "》", "【": "】", "[": "]"}
_TRAILING = " \t\n,，、:：;；-—·"


def fit(text: str, limit: int) -> str:
    """`text` in at most `limit` characters."""
    if len(text) <= limit:
        return text
    return _cut(text, limit - len(ELLIPSIS)) + ELLIPSIS


def fit_bytes(text: str, limit: int) -> str:
    """`text` in at most `limit` bytes of UTF-8, cut at a line break when one is near the end."""
    data = text.encode()
    if len(data) <= limit:
        return text
    room = len(data[: limit - len(ELLIPSIS.encode())].decode(errors="ignore"))
    head = text[:room]
    line_end = head.rfind("\n")
    if line_end >= room * 2 // 3:
        return head[:line_end].rstrip() + "\n" + ELLIPSIS
    return _cut(text, room) + ELLIPSIS


def _cut(text: str, size: int) -> str:
    """The start of `text`, at most `size` characters, ending where a word or number ends."""
    head = text[:size]
    rest = text[size:]
    # A mark that belongs to the last character kept (an emoji's variation selector, a joiner).
    while head and rest and _attached(rest[0]):
        rest = head[-1] + rest
        head = head[:-1]
    if head and rest and _in_word(head[-1]) and (_in_word(rest[0]) or rest[0] in _JOINING):
        whole = head
        while whole and (_in_word(whole[-1]) or whole[-1] in _JOINING):
            whole = whole[:-1]
        if whole.strip(_TRAILING):
            head = whole
    head = _without_open_bracket(head)
    trimmed = head.rstrip(_TRAILING)
    return trimmed or text[:size]


def _without_open_bracket(head: str) -> str:
    """Drop a bracket whose closing part was cut off, with what it held, when enough is left."""
    for index in range(len(head) - 1, -1, -1):
        char = head[index]
        if char in _CLOSING.values():
            return head
        if char in _CLOSING:
            before = head[:index].rstrip(_TRAILING)
            return before if len(before) * 2 >= len(head) else head
    return head


def _in_word(char: str) -> bool:
    """Part of a number or a word written with spaces between words (Latin, digits)."""
    return char.isascii() and char.isalnum()


def _attached(char: str) -> bool:
    return char in ("\ufe0f", "\u200d") or unicodedata.combining(char) > 0
