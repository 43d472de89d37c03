"""Button action tokens shared by every channel.

A token is short, versioned and fits Telegram's 64-byte callback limit, e.g.
``v1:rep:ack:42``. Unknown versions or malformed tokens decode to None, so a
button from an old message is answered politely instead of failing.
"""

from __future__ import annotations

VERSION = "v1"
MAX_BYTES = 64


def encode(*parts: str | int) -> str:
    text_parts = [str(part) for part in parts]
    if any(":" in part for part in text_parts):
        raise ValueError("action parts may not contain ':'")
    token = ":".join([VERSION, *text_parts])
    if len(token.encode()) > MAX_BYTES:
        raise ValueError(f"action token longer than {MAX_BYTES} bytes: {token!r}")
    return token


def decode(token: str | None) -> tuple[str, ...] | None:
    if not token:
        return None
    parts = token.split(":")
    if len(parts) < 2 or parts[0] != VERSION or any(not part for part in parts):
        return None
    return tuple(parts[1:])
