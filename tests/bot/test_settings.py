"""Settings come from SHOUWANG_* variables; a half-configured WeChat Work stops the start clearly."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.cli import main
from bot.settings import Settings

WECOM = {
    "SHOUWANG_WECOM_CORP_ID": "ww0123456789",
    "SHOUWANG_WECOM_AGENT_ID": "1000002",
    "SHOUWANG_WECOM_SECRET": "secret",
    "SHOUWANG_WECOM_TOKEN": "token",
    "SHOUWANG_WECOM_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
}


def test_complete_wecom_settings_enable_the_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in WECOM.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.wecom_enabled and settings.wecom_agent_id == 1000002
    assert settings.wecom_api_url == "https://qyapi.weixin.qq.com"


def test_half_configured_wecom_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOUWANG_WECOM_CORP_ID", "ww0123456789")
    monkeypatch.setenv("SHOUWANG_WECOM_SECRET", "secret")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "half configured" in err and "SHOUWANG_WECOM_TOKEN" in err and "Traceback" not in err


def test_a_wrong_length_aes_key_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in WECOM.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SHOUWANG_WECOM_AES_KEY", "short")
    assert main(["migrate"]) == 2
    assert "SHOUWANG_WECOM_AES_KEY" in capsys.readouterr().err


def test_a_bad_community_file_stops_the_bot(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "community.toml"  # type: ignore[operator]
    bad.write_text(
        'name = "x"\ntimezone = "Mars/Olympus"\n[[grids]]\nkey = "g1"\nname = "一"\nbuildings = ["1"]\n'
    )
    monkeypatch.setenv("SHOUWANG_COMMUNITY_FILE", str(bad))
    monkeypatch.setenv("SHOUWANG_DATABASE_URL", f"sqlite:///{tmp_path}/db.sqlite")
    assert main(["role", "grant", "--channel", "telegram", "--user", "1", "--role", "police"]) == 2
    err = capsys.readouterr().err
    assert "community.toml:2: timezone" in err


def test_role_grant_from_the_command_line(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOUWANG_DATABASE_URL", f"sqlite:///{tmp_path}/db.sqlite")
    assert (
        main(
            ["role", "grant", "--channel", "telegram", "--user", "42", "--role", "police", "--name", "张警官"]
        )
        == 0
    )
    assert "granted police" in capsys.readouterr().out
    assert main(["role", "grant", "--channel", "telegram", "--user", "43", "--role", "grid_worker"]) == 2
    assert (
        main(
            [
                "role",
                "grant",
                "--channel",
                "telegram",
                "--user",
                "43",
                "--role",
                "grid_worker",
                "--grid",
                "g9",
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "role",
                "grant",
                "--channel",
                "telegram",
                "--user",
                "43",
                "--role",
                "grid_worker",
                "--grid",
                "g1",
            ]
        )
        == 0
    )


def test_paid_broadcasts_are_off_unless_asked_for_and_capped_at_telegrams_thousand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    default = Settings()
    assert not default.telegram_paid_broadcast and default.telegram_paid_rate_per_second == 1000
    monkeypatch.setenv("SHOUWANG_TELEGRAM_PAID_BROADCAST", "true")
    monkeypatch.setenv("SHOUWANG_TELEGRAM_PAID_RATE_PER_SECOND", "250")
    chosen = Settings()
    assert chosen.telegram_paid_broadcast and chosen.telegram_paid_rate_per_second == 250
    monkeypatch.setenv("SHOUWANG_TELEGRAM_PAID_RATE_PER_SECOND", "1001")
    with pytest.raises(ValidationError, match="telegram_paid_rate_per_second"):
        Settings()


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        (
            {"SHOUWANG_TELEGRAM_WEBHOOK_URL": "https://bot.example.org/telegram/webhook"},
            "shouwang: SHOUWANG_TELEGRAM_WEBHOOK_SECRET must be set with SHOUWANG_TELEGRAM_WEBHOOK_URL "
            "(1-256 characters of A-Z a-z 0-9 _ -)\n",
        ),
        (
            {
                "SHOUWANG_TELEGRAM_WEBHOOK_URL": "http://bot.example.org/telegram/webhook",
                "SHOUWANG_TELEGRAM_WEBHOOK_SECRET": "s3cret",
            },
            "shouwang: SHOUWANG_TELEGRAM_WEBHOOK_URL: Telegram only posts to https:// URLs "
            "(e.g. https://bot.example.org/telegram/webhook)\n",
        ),
        (
            {
                "SHOUWANG_TELEGRAM_WEBHOOK_URL": "https://bot.example.org/telegram/webhook",
                "SHOUWANG_TELEGRAM_WEBHOOK_SECRET": "x" * 257,
            },
            "shouwang: SHOUWANG_TELEGRAM_WEBHOOK_SECRET: Telegram takes 1-256 characters "
            "of A-Z a-z 0-9 _ - only\n",
        ),
    ],
    ids=["no-secret", "plain-http", "secret-too-long"],
)
def test_a_bad_webhook_setting_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: dict[str, str],
    error: str,
) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    assert main(["migrate"]) == 2
    assert capsys.readouterr().err == error


@pytest.mark.parametrize(
    "url",
    [
        "https://bot.example.org:8443/telegram/webhook",
        "http://127.0.0.1:8080/telegram/webhook",
        "http://[::1]:80/x",
    ],
)
def test_webhook_urls_that_are_taken(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("SHOUWANG_TELEGRAM_WEBHOOK_URL", url)
    monkeypatch.setenv("SHOUWANG_TELEGRAM_WEBHOOK_SECRET", "A-z_0-9" * 36)  # 252 characters
    assert Settings().telegram_webhook_url == url
