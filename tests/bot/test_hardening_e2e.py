"""Hostile or broken input over the wire, on Telegram (the real PTB Application against the fake Bot
API) and WeChat Work (real signed and encrypted callbacks): decompression bombs, names and texts with
bidi controls, coordinates off the globe; and what the logs hold at DEBUG."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot import logging_setup
from handlers.text import BIDI_CONTROLS, ZERO_WIDTH
from tests.bot.telegram_live import GROUP, NEIGHBOUR, REPORTER, Live, content
from tests.bot.test_wecom_channel import texts
from tests.bot.wecom_live import INSIDE, WeComBot
from tests.bot.wecom_live import REPORTER as MEMBER
from tests.fakes.telegram_api import FakeBotApi
from tests.harness import huge_png, jpeg_with_gps

# Shaped like a real token (the bot's id, a colon, 35 characters), so that nothing short of the
# redaction hides it.
REAL_LOOKING_TOKEN = "7123456789:AAH3kq9ZfakeTokenForTestsOnly_x-12345"
PHONE = "13912345678"


async def _at_photos(live: Live, who: int = REPORTER) -> None:
    await live.say(who, "/report")
    await live.press(who, "v1:rpt:cat:fire")
    await live.press(who, "v1:rpt:urg:normal")
    asked = await live.say(who, "3号楼消防通道被电动车堵住了")
    assert asked[-1].callback_data == ["v1:rpt:ph:done"]


async def test_a_decompression_bomb_sent_on_telegram_is_refused_politely(
    onboarded: Live, api: FakeBotApi
) -> None:
    live = onboarded
    await _at_photos(live)
    refused = await live.photo(REPORTER, huge_png())
    assert api.calls_of("getFile")  # fetched from the Bot API like any photo, then refused unopened
    assert [content(m) for m in refused] == [
        "这张照片的尺寸太大了（超过 20 百万像素），请换一张普通照片或截图后重新发送。已填写的内容都还在。"
    ]
    assert not list(live.rt.media.root.rglob("*.jpg"))
    # The draft is where it was: the next photo is taken as the first one.
    got = await live.photo(REPORTER, jpeg_with_gps())
    assert "1" in content(got[-1]) and got[-1].callback_data == ["v1:rpt:ph:done"]
    user, _ = await live.repos(lambda r: r.users.by_identity("telegram", str(REPORTER)))
    draft = await live.repos(lambda r: r.conversations.get(user.id, "telegram"))
    assert draft.step == "photos" and len(draft.data["photos"]) == 1


async def test_a_spoofed_name_and_description_reach_the_police_card_clean(
    onboarded: Live, api: FakeBotApi
) -> None:
    live = onboarded
    api.push_text(NEIGHBOUR, "/start", first_name="\u202eecilA\u200b")
    await live.settle()
    await live.onboard(NEIGHBOUR, "3")
    await live.say(NEIGHBOUR, "/report")
    await live.press(NEIGHBOUR, "v1:rpt:cat:fire")
    await live.press(NEIGHBOUR, "v1:rpt:urg:normal")
    await live.say(NEIGHBOUR, "\u202e道通防消\u202c堵住了\u2066，\u200d快来看看\u2069")
    await live.press(NEIGHBOUR, "v1:rpt:ph:done")
    await live.press(NEIGHBOUR, "v1:rpt:loc:home")
    await live.press(NEIGHBOUR, "v1:rpt:anon:no")
    await live.press(NEIGHBOUR, "v1:rpt:ok:1")
    card = content(api.sent_messages(GROUP)[-1])
    assert "上报人：ecilA\n" in card and "描述：道通防消堵住了，快来看看\n" in card
    assert not set(card) & (BIDI_CONTROLS | ZERO_WIDTH | {"\u200d"})


async def test_a_location_off_the_globe_on_telegram_is_asked_again(onboarded: Live, api: FakeBotApi) -> None:
    live = onboarded
    await _at_photos(live)
    await live.press(REPORTER, "v1:rpt:ph:done")
    answered = await live.location(REPORTER, (91.0, 200.0))
    assert "经纬度超出了范围" in content(answered[0])
    assert "v1:rpt:loc:home" in answered[1].callback_data
    assert answered[-1].reply_markup is not None
    assert answered[-1].reply_markup["keyboard"][0][0]["request_location"] is True
    noted = await live.location(REPORTER, (31.2292, 121.4721))
    assert "31.22920" in content(noted[0])


async def test_a_location_off_the_globe_on_wecom_is_asked_again(bot: WeComBot) -> None:
    await bot.onboard(MEMBER, "1")
    await bot.say(MEMBER, "/report")
    await bot.choose(MEMBER, "消防隐患")
    await bot.choose(MEMBER, "一般")
    await bot.say(MEMBER, "1号楼消防通道被电动车堵住了")
    await bot.choose(MEMBER, "完成")
    answered = await bot.location(MEMBER, (-95.0, 10.0))
    said = texts(answered)
    assert "经纬度超出了范围" in said[0] and "隐患在哪里" in said[-1]
    noted = await bot.location(MEMBER, INSIDE)
    assert "31.22920" in texts(noted)[0]


async def test_after_a_start_and_a_photo_report_no_file_is_readable_by_others(
    api: FakeBotApi, tmp_path: Path
) -> None:
    previous = os.umask(0)  # a service manager's lax umask: only explicit modes protect the files
    try:
        live = await Live(api, tmp_path).start()
        try:
            await live.onboard(REPORTER, "3")
            await _at_photos(live)
            await live.photo(REPORTER, jpeg_with_gps())
            await live.press(REPORTER, "v1:rpt:ph:done")
            await live.press(REPORTER, "v1:rpt:loc:home")
            await live.press(REPORTER, "v1:rpt:anon:no")
            await live.press(REPORTER, "v1:rpt:ok:1")
            database = tmp_path / "db.sqlite"
            made = [database, Path(f"{database}-wal"), Path(f"{database}-shm"), live.rt.media.root]
            made += [p for p in live.rt.media.root.rglob("*")]
            assert any(p.suffix == ".jpg" for p in made)
            assert {str(p): stat.S_IMODE(p.stat().st_mode) & 0o077 for p in made} == {str(p): 0 for p in made}
        finally:
            await live.stop()
    finally:
        os.umask(previous)


# --- the logs at DEBUG ------------------------------------------------------------------------------


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """`shouwang run`'s logging at SHOUWANG_LOG_LEVEL=DEBUG, written here; put back afterwards."""
    root = logging.getLogger()
    saved = (
        root.handlers[:],
        root.level,
        {name: logging.getLogger(name).level for name in logging_setup.LIBRARY_FLOORS},
    )
    stream = io.StringIO()
    logging_setup.configure("DEBUG", secrets=[REAL_LOOKING_TOKEN], stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], root.level, levels = saved
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
async def debug_live(debug_log: io.StringIO, api: FakeBotApi, tmp_path: Path) -> AsyncIterator[Live]:
    live = await Live(api, tmp_path, token=REAL_LOOKING_TOKEN).start()
    try:
        yield live
    finally:
        await live.stop()


async def test_at_debug_no_token_text_or_phone_number_is_logged(
    debug_live: Live, debug_log: io.StringIO, api: FakeBotApi
) -> None:
    live = debug_live
    await live.onboard(REPORTER, "3")
    await live.say(REPORTER, "/report")
    await live.press(REPORTER, "v1:rpt:cat:fire")
    await live.press(REPORTER, "v1:rpt:urg:normal")
    await live.say(REPORTER, f"楼道堵住了，请联系我 {PHONE}")
    chat = {"id": REPORTER, "type": "private", "first_name": "王"}
    contact = {"phone_number": f"+86{PHONE}", "first_name": "王", "user_id": REPORTER}
    api.push_raw(
        {
            "message": {
                "message_id": 999,
                "from": {**chat, "is_bot": False},
                "chat": chat,
                "date": int(time.time()),
                "contact": contact,
            }
        }
    )
    await live.settle()
    assert api.calls_of("sendMessage")  # the bot worked meanwhile
    await live.stop()
    logged = debug_log.getvalue()
    records = [json.loads(line) for line in logged.splitlines()]
    assert any(r["level"] == "DEBUG" for r in records)  # the level was in force
    assert any(r["logger"].startswith("telegram") for r in records)  # and PTB was heard at INFO
    for secret in (REAL_LOOKING_TOKEN, REAL_LOOKING_TOKEN.split(":")[1], PHONE, "楼道堵住了"):
        assert secret not in logged, secret


def test_every_record_is_redacted_wherever_the_secret_sits() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (
        root.handlers[:],
        root.level,
        {name: logging.getLogger(name).level for name in logging_setup.LIBRARY_FLOORS},
    )
    logging_setup.configure("DEBUG", secrets=["s3cr3t-corp-secret"], stream=stream)
    try:
        log = logging.getLogger("shouwang.test")
        log.info("Set Bot API URL: %s", f"https://api.telegram.org/bot{REAL_LOOKING_TOKEN}")
        log.warning(
            "gettoken?corpsecret=%s failed", "s3cr3t-corp-secret", extra={"chat": "+86 139 1234 5678"}
        )
        try:
            raise ValueError("call to 138-1234-5678 failed with s3cr3t-corp-secret")
        except ValueError:
            log.exception("sending failed")
        log.info("arguments that do not fit %d", PHONE)  # told, redacted, not raised at the caller
        logging.getLogger("telegram.ext.Application").debug("Processing update %s", {"text": PHONE})
        logging.getLogger("sqlalchemy.engine.Engine").info("INSERT INTO reports %s", ("description",))
    finally:
        root.handlers[:], root.level, levels = saved
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    logged = stream.getvalue()
    assert len(logged.splitlines()) == 4 and logged.count("<redacted>") == 8, logged
    for secret in (
        REAL_LOOKING_TOKEN,
        "s3cr3t",
        "139 1234",
        "138-1234",
        PHONE,
        "Processing update",
        "INSERT",
    ):
        assert secret not in logged
