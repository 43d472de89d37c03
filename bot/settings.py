"""Process settings from the environment (SHOUWANG_*), read once by the composition root."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

EXAMPLE_COMMUNITY_FILE = Path(__file__).resolve().parent.parent / "config" / "community.example.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOUWANG_", extra="ignore")

    database_url: str = "sqlite:///data/shouwang.db"
    community_file: Path | None = None
    media_dir: Path = Path("data/media")
    telegram_token: str | None = None
    telegram_api_url: str | None = None
    telegram_file_url: str | None = None
    log_level: str = "INFO"
    # How often APScheduler looks for due reminders, escalations and expired drafts.
    scheduler_tick_seconds: float = 15.0

    @property
    def community_path(self) -> Path:
        return self.community_file or EXAMPLE_COMMUNITY_FILE
