"""Every bad setting stops `shouwang` with one line on stderr naming the setting, and a non-zero exit:
no traceback, no "Unclosed client session". Run as an operator would: a process of its own."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import sys
from pathlib import Path

import pytest

from bot.cli import main
from tests.databases import migrated_sqlite
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.wecom_api import DEFAULT_AGENT_ID, DEFAULT_CORP_ID, DEFAULT_CORP_SECRET, FakeWeComApi

TOKEN = "7123456789:AAH3kq9ZfakeTokenForTestsOnly_x-12345"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # free again, and nothing listens on it


async def shouwang(tmp_path: Path, *args: str, **settings: str) -> tuple[int, str]:
    """`shouwang ARGS` with these SHOUWANG_* settings (and no others from the environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOUWANG_")}
    env.update({f"SHOUWANG_{name.upper()}": value for name, value in settings.items()})
    if "SHOUWANG_DATABASE_URL" not in env:
        # Migrated already: the start gets to the platforms at once.
        env["SHOUWANG_DATABASE_URL"] = migrated_sqlite(tmp_path / "data" / "shouwang.db")
    env.setdefault("SHOUWANG_HTTP_PORT", str(_closed_port()))
    # What goes to stderr besides the error: the logs, at the level operators run with.
    env.setdefault("SHOUWANG_LOG_LEVEL", "WARNING")
    env["PYTHONWARNINGS"] = "always"  # an unclosed session or socket would show on stderr
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, errors = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, errors.decode()


async def test_an_unknown_database_scheme(tmp_path: Path) -> None:
    code, err = await shouwang(tmp_path, "run", database_url="mysql://x", telegram_token=TOKEN)
    assert (code, err) == (
        2,
        "shouwang: SHOUWANG_DATABASE_URL: unsupported database 'mysql' (use sqlite:///PATH or postgresql://…)\n",
    )


async def test_a_database_that_does_not_answer(tmp_path: Path) -> None:
    url = f"postgresql://shouwang:pa55word@127.0.0.1:{_closed_port()}/shouwang"
    code, err = await shouwang(tmp_path, "run", database_url=url, telegram_token=TOKEN)
    assert code == 1 and err.count("\n") == 1, err
    assert (
        err.startswith("shouwang: SHOUWANG_DATABASE_URL: cannot open the database: ")
        and "pa55word" not in err
    )


async def test_a_token_the_bot_api_refuses(tmp_path: Path) -> None:
    async with FakeBotApi(token="1:the-right-one") as api:
        code, err = await shouwang(
            tmp_path,
            "run",
            telegram_token=TOKEN,
            telegram_api_url=api.base_url,
            telegram_file_url=api.base_file_url,
        )
    assert (code, err) == (
        2,
        "shouwang: SHOUWANG_TELEGRAM_TOKEN: the Bot API refused the token (check it with @BotFather)\n",
    )


async def test_a_bot_api_that_cannot_be_reached(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/bot"
    code, err = await shouwang(tmp_path, "run", telegram_token=TOKEN, telegram_api_url=url)
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith(f"shouwang: SHOUWANG_TELEGRAM_API_URL: cannot reach the Bot API at {url} (")
    assert TOKEN not in err


def _wecom(api_url: str, secret: str = DEFAULT_CORP_SECRET) -> dict[str, str]:
    return {
        "wecom_corp_id": DEFAULT_CORP_ID,
        "wecom_agent_id": str(DEFAULT_AGENT_ID),
        "wecom_secret": secret,
        "wecom_token": "ShouwangCallbackToken2026",
        "wecom_aes_key": AES_KEY,
        "wecom_api_url": api_url,
    }


async def test_wecom_credentials_wechat_work_refuses(tmp_path: Path) -> None:
    async with FakeWeComApi() as api:
        code, err = await shouwang(tmp_path, "run", **_wecom(api.base_url, secret="not-the-secret-at-all"))
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(
        "shouwang: SHOUWANG_WECOM_CORP_ID / SHOUWANG_WECOM_SECRET: WeChat Work refused them ("
    )
    assert "not-the-secret-at-all" not in err


async def test_a_wecom_api_that_cannot_be_reached(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    code, err = await shouwang(tmp_path, "run", **_wecom(url))
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith(f"shouwang: SHOUWANG_WECOM_API_URL: cannot reach WeChat Work at {url} (")


def test_a_bad_number_names_its_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOUWANG_MAX_PHOTO_PIXELS", "0")
    assert main(["migrate"]) == 2
    assert capsys.readouterr().err == "shouwang: SHOUWANG_MAX_PHOTO_PIXELS: Input should be greater than 0\n"


async def test_the_command_line_creates_private_files_under_any_umask(tmp_path: Path) -> None:
    previous = os.umask(0)  # inherited by the child
    url = f"sqlite:///{tmp_path / 'data' / 'shouwang.db'}"
    try:
        code, err = await shouwang(tmp_path, "migrate", database_url=url)
    finally:
        os.umask(previous)
    assert (code, err) == (0, "")
    data = tmp_path / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir()} == {"shouwang.db": 0o600}


async def test_a_webhook_secret_telegram_would_refuse(tmp_path: Path) -> None:
    code, err = await shouwang(
        tmp_path,
        "run",
        telegram_token=TOKEN,
        telegram_webhook_url="https://bot.example.org/telegram/webhook",
        telegram_webhook_secret="not allowed: spaces!",
    )
    assert (code, err) == (
        2,
        "shouwang: SHOUWANG_TELEGRAM_WEBHOOK_SECRET: "
        "Telegram takes 1-256 characters of A-Z a-z 0-9 _ - only\n",
    )


async def test_a_webhook_url_the_bot_api_refuses(tmp_path: Path) -> None:
    """The settings let http through on loopback (for tests); real Telegram refuses it, and so
    does the fake for any host but 127.0.0.1."""
    async with FakeBotApi() as api:
        code, err = await shouwang(
            tmp_path,
            "run",
            telegram_token=TOKEN,
            telegram_api_url=api.base_url,
            telegram_file_url=api.base_file_url,
            telegram_webhook_url="http://localhost:8443/telegram/webhook",
            telegram_webhook_secret="s3cret",
        )
    assert (code, err) == (
        2,
        "shouwang: SHOUWANG_TELEGRAM_WEBHOOK_URL: the Bot API refused it "
        "(Bad webhook: an https url must be provided for webhook)\n",
    )
