"""Webhook mode: Telegram posts updates to the bot's web app instead of the bot polling.

The real runtime and Starlette app served by uvicorn on loopback; the fake Bot API posts to it
the way Telegram does (in order, again until the bot answers 2xx, with the secret header)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.channels import telegram
from handlers.accounts import rules as accounts
from tests.bot.telegram_live import GROUP, POLICE, REPORTER, TOKEN, WEBHOOK_SECRET, Live, content
from tests.databases import migrated_sqlite
from tests.fakes.telegram_api import FakeBotApi

HANDLED = ["message", "edited_message", "callback_query"]


@pytest.fixture
async def hooked(api: FakeBotApi, tmp_path: Path) -> AsyncIterator[Live]:
    bot = await Live(api, tmp_path, webhook=True).start()
    await bot.grant(POLICE, accounts.POLICE, name="张警官")
    try:
        yield bot
    finally:
        await bot.stop()


def _update(user_id: int, text: str, update_id: int = 900_001) -> dict[str, object]:
    person = {"id": user_id, "is_bot": False, "first_name": "王芳"}
    chat = {"id": user_id, "type": "private", "first_name": "王芳"}
    message = {"message_id": 1, "from": person, "chat": chat, "date": 0, "text": text}
    message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return {"update_id": update_id, "message": message}


async def test_a_report_dialogue_arrives_by_webhook(hooked: Live, api: FakeBotApi) -> None:
    live = hooked
    (hook,) = api.calls_of("setWebhook")
    assert hook.params == {
        "url": api.webhook_url,
        "secret_token": WEBHOOK_SECRET,
        "allowed_updates": HANDLED,
        "drop_pending_updates": False,
    }
    assert api.webhook_url.endswith("/telegram/webhook")
    await live.onboard(REPORTER, "3")
    ticket = await live.file_report(REPORTER)
    await live.settle()
    # The police group got the card: the report went all the way through.
    assert any(ticket in content(m) for m in api.sent_messages(GROUP))
    # Every update came by webhook, each taken at the first post; none was polled.
    assert api.calls_of("getUpdates") == []
    assert len(api.webhook_posts) >= 12
    assert {status for _, status in api.webhook_posts} == {200}


async def test_a_wrong_or_missing_secret_is_refused(hooked: Live, api: FakeBotApi) -> None:
    live = hooked
    start = _update(REPORTER, "/start")
    assert await api.post_webhook(start, "Shouwang_webhook-Secret_2025") == 403
    assert await api.post_webhook(start, None) == 403
    assert await api.post_webhook(start, "") == 403
    await live.settle()
    assert api.sent_messages(REPORTER) == []
    # With the secret, the very same update is taken, and the post answered once it is handled:
    # Telegram posts the chat's next update only then, which keeps a person's order across
    # several processes behind one URL.
    assert await api.post_webhook(start, WEBHOOK_SECRET) == 200
    asked = api.sent_messages(REPORTER)
    assert asked and "v1:lang:zh_CN" in asked[-1].callback_data


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"message": {"text": "hi"}}',
        b'{"update_id": "7"}',
        b'{"update_id": 7, "message": 5}',
    ],
    ids=["text", "list", "no-id", "string-id", "bad-message"],
)
async def test_a_body_that_is_not_an_update_is_refused(hooked: Live, api: FakeBotApi, body: bytes) -> None:
    assert await api.post_webhook(body, WEBHOOK_SECRET) == 400
    await hooked.settle()
    assert api.sent_messages() == []


async def test_switching_back_to_polling_deletes_the_webhook(hooked: Live, api: FakeBotApi) -> None:
    live = hooked
    await live.onboard(REPORTER, "3")
    await live.stop()
    # Meanwhile the resident writes; Telegram keeps it for whoever takes updates next.
    api.push_text(REPORTER, "/points")
    # Telegram refuses getUpdates while the webhook is set.
    assert api.webhook_url
    live.webhook = False
    await live.start()
    (delete,) = api.calls_of("deleteWebhook")
    assert delete.params == {"drop_pending_updates": False} and api.webhook_url == ""
    await live.settle()
    polled = api.calls_of("getUpdates")
    assert polled and not any(call.rejected for call in polled)
    assert polled[0].params["allowed_updates"] == HANDLED
    # The update sent while the bot was down is answered, and polling goes on.
    points = api.sent_messages(REPORTER)[-1]
    assert "积分" in content(points), content(points)
    assert await live.say(REPORTER, "/help")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_shouwang_run_takes_updates_by_webhook(tmp_path: Path) -> None:
    """`shouwang run` as an operator starts it: the web app listens before the webhook is set, and
    a stop with SIGTERM is clean."""
    port = _free_port()
    async with FakeBotApi() as api:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOUWANG_")}
        env.update(
            SHOUWANG_DATABASE_URL=migrated_sqlite(tmp_path / "data" / "shouwang.db"),
            SHOUWANG_TELEGRAM_TOKEN=TOKEN,
            SHOUWANG_TELEGRAM_API_URL=api.base_url,
            SHOUWANG_TELEGRAM_FILE_URL=api.base_file_url,
            SHOUWANG_HTTP_PORT=str(port),
            SHOUWANG_TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook",
            SHOUWANG_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
            SHOUWANG_LOG_LEVEL="WARNING",
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
        )
        try:
            await api.wait_for(lambda: api.calls_of("setWebhook") or process.returncode is not None, 30)
            api.push_text(REPORTER, "/start")
            asked = await api.wait_for_sent(1, REPORTER, timeout=30)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            _, errors = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, errors.decode()[-2000:]
    assert "v1:lang:zh_CN" in asked[-1].callback_data
    # The first post was taken: the web app was listening when Telegram was told to post.
    assert api.webhook_posts[0][1] == 200
    assert api.calls_of("getUpdates") == [] and api.calls_of("deleteWebhook") == []


async def test_a_slow_update_is_answered_before_it_is_handled(
    hooked: Live, api: FakeBotApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Telegram would count a late answer as a failure and post the update again."""
    monkeypatch.setattr(telegram, "WEBHOOK_ANSWER_WITHIN", 0.05)
    api.latency = 0.5  # every Bot API call the answer takes: far beyond the wait
    assert await api.post_webhook(_update(REPORTER, "/start"), WEBHOOK_SECRET) == 200
    assert api.sent_messages(REPORTER) == []
    asked = await api.wait_for_sent(1, REPORTER)
    assert "v1:lang:zh_CN" in asked[-1].callback_data


async def test_an_update_posted_again_is_handled_once(hooked: Live, api: FakeBotApi) -> None:
    """Telegram posts an update again when the answer did not reach it."""
    start = _update(REPORTER, "/start")
    assert await api.post_webhook(start, WEBHOOK_SECRET) == 200
    assert await api.post_webhook(start, WEBHOOK_SECRET) == 200
    await hooked.settle()
    assert len(api.sent_messages(REPORTER)) == 1
    assert await api.post_webhook(_update(REPORTER, "/start", update_id=900_002), WEBHOOK_SECRET) == 200
    assert len(api.sent_messages(REPORTER)) == 2
