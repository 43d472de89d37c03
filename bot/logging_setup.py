"""Structured (JSON lines) logs that carry no secret and no message body, at any level.

Two things would leak without the measures below: python-telegram-bot logs its API URL, which
holds the bot token ("Set Bot API URL: …/bot<TOKEN>"), and at DEBUG the libraries log whole updates,
requests and SQL parameters: residents' texts, names and phone numbers. So each library is held at a
floor (LIBRARY_FLOORS) whatever SHOUWANG_LOG_LEVEL says, its records below the floor are dropped at
the handler too (should a logger be set lower later), and every record that reaches the handler has
the configured secrets, anything shaped like a bot token and phone numbers replaced, in its message,
its arguments, its extra fields and its exception text.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any, Protocol

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# The lowest level each library may log at, whatever SHOUWANG_LOG_LEVEL says. Below these they log
# payloads: PTB whole updates and API calls with their parameters (DEBUG), aiosqlite each statement
# with its parameters (DEBUG), SQLAlchemy statements and parameters (INFO, once its logger is
# enabled, as a DEBUG root enables it), httpx every URL (INFO: Telegram's hold the bot token,
# WeChat Work's the access token or, fetching one, the corp secret).
LIBRARY_FLOORS = {
    "telegram": logging.INFO,
    "httpcore": logging.INFO,
    "aiohttp": logging.INFO,
    "hpack": logging.INFO,
    "wechatpy": logging.INFO,
    "aiosqlite": logging.INFO,
    "asyncpg": logging.INFO,
    "httpx": logging.WARNING,
    "sqlalchemy": logging.WARNING,
    "apscheduler": logging.WARNING,
}
# A Telegram bot token: the bot's numeric id, a colon, 35 characters of key.
_BOT_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
# Mainland mobile numbers (11 digits starting 13–19, optionally +86) and other international
# numbers written with a leading "+". Chat and user ids are not of this shape.
_PHONE = re.compile(r"(?<![\d+])(?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)|\+\d[\d -]{8,}\d")
REDACTED = "<redacted>"
# Secrets shorter than this are not searched for: replacing "abc" everywhere would mangle logs.
_MIN_SECRET = 6


class _SecretSettings(Protocol):
    telegram_token: str | None
    wecom_secret: str | None
    wecom_token: str | None
    wecom_aes_key: str | None
    telegram_webhook_secret: str | None
    database_url: str


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_text:
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class Redact(logging.Filter):
    """Replaces secrets, bot tokens and phone numbers in every record the handler writes."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        text = _BOT_TOKEN.sub(REDACTED, text)
        return _PHONE.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < LIBRARY_FLOORS.get(record.name.split(".")[0], logging.NOTSET):
            return False
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: logging would report it, not raise
            message = f"{record.msg} {record.args}"
        # The message with its arguments in, so no argument is formatted again unredacted.
        record.msg, record.args = self.redact(message), None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def secrets_of(settings: _SecretSettings) -> list[str]:
    """What of the settings must never appear in a log: tokens, keys, the database password."""
    password = re.match(r"[^:]+://[^:/@]+:([^@]+)@", settings.database_url)
    return [
        s
        for s in (
            settings.telegram_token,
            settings.wecom_secret,
            settings.wecom_token,
            settings.wecom_aes_key,
            settings.telegram_webhook_secret,
            password.group(1) if password else None,
        )
        if s
    ]


def configure(level: str, *, secrets: Iterable[str | None] = (), stream: IO[str] | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(Redact(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for library, floor in LIBRARY_FLOORS.items():
        logging.getLogger(library).setLevel(max(root.level, floor))
