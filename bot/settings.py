"""Process settings from the environment (SHOUWANG_*), read once by the composition root."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.channels.telegram_flood import MAX_PAID_PER_SECOND
from handlers.media import MAX_INPUT_BYTES, MAX_INPUT_PIXELS
from storage.db import normalise_url

EXAMPLE_COMMUNITY_FILE = Path(__file__).resolve().parent.parent / "config" / "community.example.toml"
# What setWebhook accepts as secret_token.
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOUWANG_", extra="ignore")

    database_url: str = "sqlite:///data/shouwang.db"
    # SQLite: how long a write waits for another process (a CLI command, a backup) holding the
    # database before the person is told it is busy (their message is kept and handled after).
    database_busy_timeout_seconds: float = Field(default=10.0, gt=0)
    community_file: Path | None = None
    media_dir: Path = Path("data/media")
    telegram_token: str | None = None
    telegram_api_url: str | None = None
    telegram_file_url: str | None = None
    # Webhook mode: Telegram POSTs updates to this public https URL (ending in /telegram/webhook,
    # the web app's route) instead of the bot polling; every process behind it takes updates.
    telegram_webhook_url: str | None = None
    # Sent back by Telegram in X-Telegram-Bot-Api-Secret-Token: requests without it are refused.
    telegram_webhook_secret: str | None = None
    wecom_corp_id: str | None = None
    wecom_agent_id: int | None = None
    wecom_secret: str | None = None
    wecom_token: str | None = None
    wecom_aes_key: str | None = None
    wecom_api_url: str = "https://qyapi.weixin.qq.com"
    # The web app: /healthz and the WeChat Work callback.
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_level: str = "INFO"
    # How often APScheduler looks for due reminders, escalations and expired drafts.
    scheduler_tick_seconds: float = 15.0
    # Telegram's flood limits, kept by the adapter so that Telegram rarely has to answer 429:
    # about 30 messages a second in all, 20 a minute into one group, one a second into one chat.
    telegram_rate_per_second: float = Field(default=30.0, gt=0)
    telegram_group_per_minute: int = Field(default=20, gt=0)
    telegram_chat_per_second: float = Field(default=1.0, gt=0)
    # Paid broadcasts (off by default): urgent alerts' copies to private chats go with
    # allow_paid_broadcast, at this rate (Telegram allows up to 1,000 a second) instead of within
    # the free 30 a second; Telegram charges the bot's Stars balance for each (see the README).
    telegram_paid_broadcast: bool = False
    telegram_paid_rate_per_second: float = Field(default=MAX_PAID_PER_SECOND, gt=0, le=MAX_PAID_PER_SECOND)
    # Photos larger than these are refused before they are decoded (a 10 KB file can claim
    # 80 megapixels and take hundreds of MB to decode). 20 MB is also what the Bot API lets a bot
    # download; 20 megapixels is more than a phone camera's default.
    max_photo_bytes: int = Field(default=MAX_INPUT_BYTES, gt=0)
    max_photo_pixels: int = Field(default=MAX_INPUT_PIXELS, gt=0)

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, url: str) -> str:
        normalise_url(url)  # raises UnsupportedDatabase, a ValueError, with what to use instead
        return url

    # How long a Bot API call may take before it counts as timed out (and is tried again later).
    telegram_timeout_seconds: float = Field(default=5.0, gt=0)
    # Through a platform outage: the longest wait between two attempts at a message (how soon
    # delivery resumes once the platform is back), and per outbox kind how many hours a message
    # is tried before it expires, in place of the kind's own horizon (JSON: {"broadcast": 6};
    # null: never given up).
    outbox_max_backoff_seconds: float = Field(default=60.0, gt=0)
    outbox_give_up_hours: dict[str, float | None] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _wecom_complete(self) -> Settings:
        wecom = {
            "SHOUWANG_WECOM_CORP_ID": self.wecom_corp_id,
            "SHOUWANG_WECOM_AGENT_ID": self.wecom_agent_id,
            "SHOUWANG_WECOM_SECRET": self.wecom_secret,
            "SHOUWANG_WECOM_TOKEN": self.wecom_token,
            "SHOUWANG_WECOM_AES_KEY": self.wecom_aes_key,
        }
        given = [name for name, value in wecom.items() if value]
        if given and len(given) < len(wecom):
            missing = ", ".join(name for name, value in wecom.items() if not value)
            raise ValueError(f"WeChat Work is half configured: also set {missing}")
        if self.wecom_aes_key and len(self.wecom_aes_key) != 43:
            raise ValueError("SHOUWANG_WECOM_AES_KEY (EncodingAESKey) must be exactly 43 characters")
        return self

    @field_validator("telegram_webhook_url")
    @classmethod
    def _https_webhook(cls, url: str | None) -> str | None:
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname:
            return url
        if parts.scheme == "http" and _loopback(parts.hostname):
            return url  # a local fake Bot API (the tests) posts over plain http
        raise ValueError(
            "Telegram only posts to https:// URLs (e.g. https://bot.example.org/telegram/webhook)"
        )

    @model_validator(mode="after")
    def _webhook_secret(self) -> Settings:
        secret = self.telegram_webhook_secret
        if self.telegram_webhook_url and not secret:
            raise ValueError(
                "SHOUWANG_TELEGRAM_WEBHOOK_SECRET must be set with SHOUWANG_TELEGRAM_WEBHOOK_URL "
                "(1-256 characters of A-Z a-z 0-9 _ -)"
            )
        if secret is not None and not WEBHOOK_SECRET.fullmatch(secret):
            raise ValueError(
                "SHOUWANG_TELEGRAM_WEBHOOK_SECRET: Telegram takes 1-256 characters of A-Z a-z 0-9 _ - only"
            )
        return self

    @model_validator(mode="after")
    def _horizons_positive(self) -> Settings:
        bad = sorted(
            kind for kind, hours in self.outbox_give_up_hours.items() if hours is not None and hours <= 0
        )
        if bad:
            raise ValueError(
                f"SHOUWANG_OUTBOX_GIVE_UP_HOURS: hours must be above 0 (or null for never): {bad}"
            )
        return self

    @property
    def wecom_enabled(self) -> bool:
        return bool(self.wecom_corp_id)

    @property
    def community_path(self) -> Path:
        return self.community_file or EXAMPLE_COMMUNITY_FILE
