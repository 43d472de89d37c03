"""The WeChat Work adapter over the wire: real callbacks in, a fake of its HTTP API out.

Every callback is built by tests/fakes/wecom_crypto.py (an implementation of
Tencent's scheme that shares no code with the bot) and posted to the real
Starlette app; everything the bot says goes through the outbox to
FakeWeComApi over HTTP. Both halves are driven step by step
(`process_inbox`, `delivery.drain`) rather than by background workers, so the
order of events is the test's, not the scheduler's.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.app import telegram_channel, web_app
from bot.channels.telegram import TelegramChannel
from bot.community_file import load_community
from bot.settings import EXAMPLE_COMMUNITY_FILE
from handlers import notify
from handlers.accounts import rules as accounts
from handlers.community import PoliceGroups
from handlers.messages import Document, Reply, Text
from storage.repositories import Repos
from tests.bot.wecom_live import (
    AES_KEY,
    CALLBACK,
    INSIDE,
    POLICE,
    REPORTER,
    ROBOT_KEY,
    THINKING,
    TICKET,
    TOKEN,
    WORKER,
    WeComBot,
    card_keys,
    numbered,
    police_robot_community,
)
from tests.fakes import wecom_crypto as wc
from tests.fakes.telegram_api import FakeBotApi, SentMessage
from tests.fakes.wecom_api import FakeWeComApi
from tests.harness import jpeg_with_gps


def texts(bodies: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["content"] for b in bodies if b["msgtype"] == "text"]


# --- URL verification -----------------------------------------------------------------


VECTORS = {
    "doc-sample": (
        wc.SAMPLE_TOKEN,
        wc.SAMPLE_ENCODING_AES_KEY,
        wc.SAMPLE_CORP_ID,
        {
            "msg_signature": wc.SAMPLE_VERIFY_MSG_SIGNATURE,
            "timestamp": wc.SAMPLE_VERIFY_TIMESTAMP,
            "nonce": wc.SAMPLE_VERIFY_NONCE,
            "echostr": wc.SAMPLE_VERIFY_ECHOSTR,
        },
        wc.SAMPLE_VERIFY_ECHO_PLAIN,
    ),
    "sdk-sample": (
        wc.SDK_SAMPLE_TOKEN,
        wc.SDK_SAMPLE_ENCODING_AES_KEY,
        wc.SDK_SAMPLE_CORP_ID,
        {
            "msg_signature": wc.SDK_SAMPLE_VERIFY_MSG_SIGNATURE,
            "timestamp": wc.SDK_SAMPLE_VERIFY_TIMESTAMP,
            "nonce": wc.SDK_SAMPLE_VERIFY_NONCE,
            "echostr": wc.SDK_SAMPLE_VERIFY_ECHOSTR,
        },
        wc.SDK_SAMPLE_VERIFY_ECHO_PLAIN,
    ),
}


@pytest.mark.parametrize("vector", VECTORS.values(), ids=VECTORS.keys())
async def test_url_verification_answers_tencents_sample_echo(
    fake: FakeWeComApi, tmp_path: Path, vector: tuple[str, str, str, dict[str, str], str]
) -> None:
    token, aes_key, corp_id, query, echo = vector
    live = await WeComBot(
        fake, tmp_path, police_robot_community(), token=token, aes_key=aes_key, corp_id=corp_id
    ).start()
    try:
        answer = await live.http.get(CALLBACK, params=query)
        assert answer.status_code == 200
        # Exactly the plaintext: no quotes, no newline, nothing else.
        assert answer.content == echo.encode()
        assert answer.headers["content-type"].startswith("text/plain")
        # If some hop leaves the "+" of the echostr unescaped, it arrives as a space: still accepted.
        assert "+" in query["echostr"]
        raw = "&".join(f"{k}={v}" for k, v in query.items())
        unescaped = await live.http.get(f"{CALLBACK}?{raw}")
        assert (unescaped.status_code, unescaped.content) == (200, echo.encode())
    finally:
        await live.close()


async def test_tencents_sample_message_is_accepted(fake: FakeWeComApi, tmp_path: Path) -> None:
    live = await WeComBot(
        fake,
        tmp_path,
        police_robot_community(),
        token=wc.SAMPLE_TOKEN,
        aes_key=wc.SAMPLE_ENCODING_AES_KEY,
        corp_id=wc.SAMPLE_CORP_ID,
    ).start()
    try:
        query = {
            "msg_signature": wc.SAMPLE_MSG_SIGNATURE,
            "timestamp": wc.SAMPLE_MSG_TIMESTAMP,
            "nonce": wc.SAMPLE_MSG_NONCE,
        }
        answer = await live.post(query, wc.SAMPLE_MSG_BODY)
        assert (answer.status_code, answer.content) == (200, b"")
        [row] = await live.inbox_rows()
        assert row.dedupe_key == f"msg:{wc.SAMPLE_MSG_FIELDS['MsgId']}"
        assert {k: row.payload[k] for k in wc.SAMPLE_MSG_FIELDS} == dict(wc.SAMPLE_MSG_FIELDS)
    finally:
        await live.close()


async def test_url_verification_with_our_own_key(bot: WeComBot) -> None:
    query = wc.build_verify_query(TOKEN, AES_KEY, bot.config.corp_id, "8417205912361843700")
    answer = await bot.http.get(CALLBACK, params=query)
    assert (answer.status_code, answer.content) == (200, b"8417205912361843700")

    tampered = {**query, "msg_signature": query["msg_signature"][::-1]}
    assert (await bot.http.get(CALLBACK, params=tampered)).status_code == 403
    other = wc.build_verify_query(TOKEN, AES_KEY, "wwsomeoneelse000001", "8417205912361843700")
    assert (await bot.http.get(CALLBACK, params=other)).status_code == 403
    missing = {k: v for k, v in query.items() if k != "echostr"}
    assert (await bot.http.get(CALLBACK, params=missing)).status_code == 400


# --- what the callback refuses ----------------------------------------------------------


def _resigned(query: dict[str, str], encrypted: str, corp_id: str) -> tuple[dict[str, str], str]:
    """A validly signed envelope around `encrypted`: only the ciphertext itself is wrong."""
    signed = {**query, "msg_signature": wc.sign(TOKEN, query["timestamp"], query["nonce"], encrypted)}
    body = (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    )
    return signed, body


def _truncations(encrypted: str) -> Iterator[str]:
    raw = base64.b64decode(encrypted)
    yield encrypted[:-4]  # base64 that no longer decodes to whole AES blocks
    yield encrypted[:64]  # whole blocks, but the padding is now message bytes
    yield base64.b64encode(raw[:-32]).decode()  # the last 32-byte block missing
    yield base64.b64encode(raw[:16]).decode()  # the random prefix only


async def test_forged_and_broken_callbacks_are_refused_and_nothing_is_stored(bot: WeComBot) -> None:
    plaintext = bot.text(REPORTER, "你好")
    query, body = bot.sign(plaintext)

    signature = query["msg_signature"]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert (await bot.post({**query, "msg_signature": flipped}, body)).status_code == 403
    # Well-formed and signed with our token, but encrypted for another corp (receive id).
    other_corp = wc.build_callback(TOKEN, AES_KEY, "wwanothercorp000042", plaintext)
    assert (await bot.post(*other_corp)).status_code == 403
    other_token = wc.build_callback("not-our-token", AES_KEY, bot.config.corp_id, plaintext)
    assert (await bot.post(*other_token)).status_code == 403

    for truncated in _truncations(wc.extract_encrypt(body)):
        answer = await bot.post(*_resigned(query, truncated, bot.config.corp_id))
        assert answer.status_code == 400, truncated
    not_xml = {**query, "msg_signature": wc.sign(TOKEN, query["timestamp"], query["nonce"], "")}
    assert (await bot.post(not_xml, b"this is not xml")).status_code == 400
    assert (await bot.post(query, "<xml><ToUserName>x</ToUserName></xml>")).status_code == 400
    # A signed, decryptable payload that is not a WeChat Work message.
    assert (await bot.post(*bot.sign("<xml><Hello>world</Hello></xml>"))).status_code == 400
    assert (await bot.post(*bot.sign("not xml inside either"))).status_code == 400
    # An entity-expansion bomb, outside and inside the encryption.
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + n)} "{("&" + chr(97 + n) + ";") * 10}">' for n in range(8))
        + "]><xml><Encrypt>&i;</Encrypt></xml>"
    )
    assert (await bot.post(not_xml, bomb)).status_code == 400
    assert (await bot.post(*bot.sign(bomb.replace("Encrypt", "Content")))).status_code == 400

    for params in ({}, {"timestamp": query["timestamp"], "nonce": query["nonce"]}):
        assert (await bot.post(params, body)).status_code == 400

    assert await bot.inbox_rows() == []
    # The genuine one still goes through.
    assert (await bot.post(query, body)).status_code == 200
    assert len(await bot.inbox_rows()) == 1


async def test_oversized_bodies_are_refused_unread(bot: WeComBot) -> None:
    query, body = bot.sign(bot.text(REPORTER, "你好"))
    huge = body.encode() + b" " * (1024 * 1024)
    assert (await bot.post(query, huge)).status_code in (400, 413)

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit must hold while reading.
        for _ in range(64):
            yield b" " * 16384

    answer = await bot.http.post(CALLBACK, params=query, content=chunks())
    assert answer.status_code in (400, 413)
    assert await bot.inbox_rows() == []


async def test_a_replayed_message_is_answered_but_handled_once(bot: WeComBot, fake: FakeWeComApi) -> None:
    plaintext = bot.text(REPORTER, "/start")
    query, body = bot.sign(plaintext)
    for _ in range(2):
        answer = await bot.post(query, body)
        assert (answer.status_code, answer.content) == (200, b"")
    # WeChat Work's retry of the same MsgId, encrypted afresh.
    await bot.deliver(plaintext)
    assert len(await bot.inbox_rows()) == 1
    await bot.settle()
    assert len(texts(fake.messages_to(REPORTER))) == 1
    [row] = await bot.inbox_rows()
    assert row.state == "done"

    # Events have no MsgId: the same sender and time is the same event.
    event = wc.event_message(fake.corp_id, REPORTER, "subscribe", None, create_time=1779000000)
    await bot.deliver(event)
    await bot.deliver(event)
    assert len(await bot.inbox_rows()) == 2


async def test_concurrent_callbacks_are_each_stored_once(bot: WeComBot, fake: FakeWeComApi) -> None:
    messages = [bot.text(f"user{n % 7}", f"消息 {n}") for n in range(60)]
    # Every message twice, as WeChat Work retries a slow answer, all at once.
    requests = [bot.sign(m) for m in messages + messages]
    answers = await asyncio.gather(*(bot.post(query, body) for query, body in requests))
    assert {(a.status_code, a.content) for a in answers} == {(200, b"")}
    rows = await bot.inbox_rows()
    assert len(rows) == 60 and len({row.dedupe_key for row in rows}) == 60
    assert await bot.channel.process_inbox() == 60


async def test_no_200_before_the_callback_is_stored(
    bot: WeComBot, fake: FakeWeComApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage.inbox import InboxRepo

    async def disk_full(*args: Any) -> None:
        raise OSError("disk full")

    query, body = bot.sign(bot.text(REPORTER, "/start"))
    app = web_app(bot.rt, bot.channel)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shouwang") as http:
        with monkeypatch.context() as patch:
            patch.setattr(InboxRepo, "accept_many", disk_full)
            failed = await http.post(CALLBACK, params=query, content=body)
        assert failed.status_code == 500  # WeChat Work will send it again
        assert await bot.inbox_rows() == []
        again = await http.post(CALLBACK, params=query, content=body)
        assert again.status_code == 200
    assert len(await bot.inbox_rows()) == 1


async def test_odd_inputs_are_answered_and_never_fail(bot: WeComBot, fake: FakeWeComApi) -> None:
    await bot.onboard(REPORTER, "3")
    # An image whose media id WeChat Work no longer serves.
    gone = wc.image_message(fake.corp_id, REPORTER, "https://wework.qpic.cn/x", "1expired", 42)
    assert len(texts(await bot.act(REPORTER, gone))) == 1
    voice = (
        f"<xml><ToUserName><![CDATA[{fake.corp_id}]]></ToUserName>"
        f"<FromUserName><![CDATA[{REPORTER}]]></FromUserName><CreateTime>1779000000</CreateTime>"
        "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[1voice]]></MediaId>"
        "<Format><![CDATA[amr]]></Format><MsgId>43</MsgId><AgentID>1000002</AgentID></xml>"
    )
    assert len(texts(await bot.act(REPORTER, voice))) == 1
    # A superscript two is a digit to str.isdigit but not a number to int().
    assert len(texts(await bot.say(REPORTER, "²"))) == 1
    # Opening the app needs no answer.
    assert await bot.act(REPORTER, wc.enter_agent_event(fake.corp_id, REPORTER)) == []
    assert {row.state for row in await bot.inbox_rows()} == {"done"}


# --- the whole report lifecycle on WeChat Work -----------------------------------------


async def test_report_lifecycle_on_wecom(bot: WeComBot, fake: FakeWeComApi) -> None:
    await bot.grant(WORKER, accounts.GRID_WORKER, ("g1",), "李网格员")
    await bot.grant(POLICE, accounts.POLICE, name="张警官")

    # The resident follows the app (subscribe) and answers every menu with a number.
    asked = await bot.act(REPORTER, wc.event_message(fake.corp_id, REPORTER, "subscribe", None))
    assert [m["msgtype"] for m in asked] == ["text", "template_card"]
    assert card_keys(asked[1]) == ["v1:lang:zh_CN", "v1:lang:en", "v1:lang:zh_TW"]
    await bot.choose(REPORTER, "简体中文")
    asked = await bot.choose(REPORTER, "同意")
    assert "几号楼" in texts(asked)[0] and len(asked) == 1
    # "1" is building 1 here, not the first entry of the privacy menu before it.
    done = await bot.say(REPORTER, "1")
    assert "第一网格" in texts(done)[0]
    await bot.onboard(WORKER, None)
    await bot.onboard(POLICE, None)

    # Reporting: category and urgency by number, text, a photo, a location, confirm.
    asked = await bot.say(REPORTER, "/report")
    assert "消防隐患" in numbered(texts(asked)[-1])
    await bot.choose(REPORTER, "消防隐患")
    await bot.choose(REPORTER, "紧急")
    await bot.say(REPORTER, "1号楼消防通道被电动车堵住了")
    got = await bot.photo(REPORTER, jpeg_with_gps())
    assert "1" in texts(got)[0] and fake.calls_to("media/get")
    media = await bot.repos(lambda r: r.media.get(1))
    with Image.open(bot.rt.media.path_of(media.path)) as stored:
        assert dict(stored.getexif()) == {} and "exif" not in stored.info
    await bot.choose(REPORTER, "完成")
    noted = await bot.location(REPORTER, INSIDE)
    assert "31.22920" in texts(noted)[0]
    summary = await bot.choose(REPORTER, "实名")
    assert [m["msgtype"] for m in summary] == ["image", "text", "template_card"]
    submitted = await bot.choose(REPORTER, "提交")
    assert TICKET in texts(submitted)[-1]
    report = await bot.report(TICKET)
    assert (report.state, report.grid_key, report.urgency, report.category) == (
        "submitted",
        "g1",
        "urgent",
        "fire",
    )

    # The police robot gets the photo, then the card text with a pointer to the app.
    robot = fake.robot_messages(ROBOT_KEY)
    assert [m["msgtype"] for m in robot] == ["image", "text"]
    sent_photo = base64.b64decode(robot[0]["image"]["base64"])
    with Image.open(io.BytesIO(sent_photo)) as photo:
        assert dict(photo.getexif()) == {}
    assert TICKET in robot[1]["text"]["content"] and "/tasks" in robot[1]["text"]["content"]
    assert TICKET in texts(fake.messages_to(WORKER))[-1]

    # The officer lists tasks and acknowledges by clicking the card's button.
    tasks = await bot.say(POLICE, "/tasks")
    card = next(m for m in tasks if m["msgtype"] == "template_card")
    ack = f"v1:rep:ack:{report.id}"
    assert card_keys(card) == [
        ack,
        f"v1:rep:asg:{report.id}",
        f"v1:rep:rej:{report.id}",
        f"v1:rep:dup:{report.id}",
    ]
    said = await bot.click(POLICE, ack)
    assert TICKET in texts(said)[0]
    assert (await bot.report(TICKET)).state == "acknowledged"
    assert "已受理" in texts(fake.messages_to(REPORTER))[-1]
    assert "已受理" in fake.robot_messages(ROBOT_KEY)[-1]["text"]["content"]

    # ...then assigns by numbered replies.
    await bot.say(POLICE, "/tasks")
    picks = await bot.choose(POLICE, "派单")
    assert numbered(texts(picks)[-1]) == {"👷 李网格员": "1"}
    await bot.say(POLICE, "1")
    assigned = (await bot.report(TICKET)).assignee_id
    worker = await bot.repos(lambda r: r.users.by_identity("wecom", WORKER))
    assert assigned == worker[0].id
    task = [m for m in fake.messages_to(WORKER) if m["msgtype"] == "template_card"][-1]
    assert card_keys(task) == [f"v1:rep:start:{report.id}", f"v1:rep:res:{report.id}"]
    assert "已派给网格员" in texts(fake.messages_to(REPORTER))[-1]

    # The grid worker starts (card click), resolves with a note, no after photo (by number).
    await bot.click(WORKER, f"v1:rep:start:{report.id}")
    await bot.click(WORKER, f"v1:rep:res:{report.id}")
    await bot.say(WORKER, "已清理通道，电动车已移走")
    resolved = await bot.choose(WORKER, "不发照片")
    assert TICKET in texts(resolved)[0]

    # The reporter is asked for a rating and answers with a number, then a comment.
    told = fake.messages_to(REPORTER)[-2:]
    assert "已清理通道" in told[0]["text"]["content"]
    assert card_keys(told[1]) == [f"v1:rate:{report.id}:{n}" for n in range(1, 6)]
    await bot.say(REPORTER, "5")
    await bot.say(REPORTER, "处理很及时，谢谢！")
    done_report = await bot.report(TICKET)
    assert (done_report.state, done_report.rating, done_report.rating_comment) == (
        "resolved",
        5,
        "处理很及时，谢谢！",
    )
    assert done_report.resolution_note == "已清理通道，电动车已移走"
    events = await bot.repos(lambda r: r.reports.events(report.id))
    police = await bot.repos(lambda r: r.users.by_identity("wecom", POLICE))
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, "submitted"),
        ("submitted", "acknowledged"),
        ("acknowledged", "assigned"),
        ("assigned", "in_progress"),
        ("in_progress", "resolved"),
    ]
    assert [e.actor_id for e in events[1:3]] == [police[0].id] * 2
    assert [e.actor_id for e in events[3:]] == [worker[0].id] * 2

    # Every callback was handled once; nothing the bot sent was refused by the API.
    rows = await bot.inbox_rows()
    assert {row.state for row in rows} == {"done"}
    assert [(c.path, c.errcode) for c in fake.calls if c.errcode] == []
    assert {row.state for row in await bot.outbox()} == {"sent"}


# --- the API's token and rate limits ---------------------------------------------------


async def test_an_expired_token_is_fetched_again_once(bot: WeComBot, fake: FakeWeComApi) -> None:
    await bot.say(REPORTER, "/start")
    await bot.say(REPORTER, "/help")
    assert fake.token_fetches == 1  # cached, not fetched per call
    fake.expire_token()
    got = await bot.say(REPORTER, "/help")
    assert len(texts(got)) == 1
    assert fake.token_fetches == 2
    refused = [c for c in fake.calls_to("message/send") if c.errcode == 42001]
    assert len(refused) == 1
    await bot.say(REPORTER, "/help")
    assert fake.token_fetches == 2


async def test_rate_limited_parts_are_retried_later_without_repeating_the_rest(
    bot: WeComBot, fake: FakeWeComApi
) -> None:
    await bot.onboard(REPORTER, "3")
    fake.advance_clock(61)
    fake.per_user_per_minute = 1
    before = len(fake.messages_to(REPORTER))
    # The language question is a text (with its numbered menu) and a card: the card hits 45009.
    bot.clock.advance(THINKING)
    await bot.deliver(bot.text(REPORTER, "/language"))
    await bot.settle(allow_pending=True)
    [row] = [r for r in await bot.outbox() if r.state == "pending"]
    assert row.attempts == 1 and "45009" in (row.last_error or "")
    assert row.next_attempt_at > bot.clock.now()
    assert [m["msgtype"] for m in fake.messages_to(REPORTER)[before:]] == ["text"]
    assert await bot.rt.delivery.drain() == 0  # not due yet

    bot.clock.advance(timedelta(seconds=61))
    fake.advance_clock(61)
    await bot.settle()
    got = fake.messages_to(REPORTER)[before:]
    assert [m["msgtype"] for m in got] == ["text", "template_card"]
    assert card_keys(got[1]) == ["v1:lang:zh_CN", "v1:lang:en", "v1:lang:zh_TW"]
    everything = texts(fake.messages_to(REPORTER))
    assert len(everything) == len(set(everything))
    assert (await bot.outbox())[-1].state == "sent"

    # A plain text refused outright is sent once, later.
    fake.advance_clock(1)  # the card above is this minute's one message
    await bot.deliver(bot.text(REPORTER, "/help"))
    await bot.settle(allow_pending=True)
    assert len(texts(fake.messages_to(REPORTER)[before:])) == 1
    bot.clock.advance(timedelta(seconds=61))
    fake.advance_clock(61)
    await bot.settle()
    help_texts = [t for t in texts(fake.messages_to(REPORTER)) if "/report" in t]
    assert len(help_texts) == 1
    assert len([c for c in fake.calls_to("message/send") if c.errcode == 45009]) == 2


async def test_a_robot_message_cut_by_the_rate_limit_is_finished_later(
    bot: WeComBot, fake: FakeWeComApi
) -> None:
    fake.robot_limit_per_minute = 1

    async def notify_police(repos: Repos) -> None:
        photo = await bot.rt.media.save_photo(repos, jpeg_with_gps(), bot.clock.now())
        reply = Reply(Text("report.expired"), photos=(photo,))
        await notify.to_police(repos, bot.rt.community, reply, bot.clock.now())

    await bot.repos(notify_police)
    await bot.settle(allow_pending=True)
    assert [m["msgtype"] for m in fake.robot_messages(ROBOT_KEY)] == ["image"]
    bot.clock.advance(timedelta(seconds=61))
    fake.advance_clock(61)
    await bot.settle()
    # The photo is not posted twice: only the text was left to send.
    assert [m["msgtype"] for m in fake.robot_messages(ROBOT_KEY)] == ["image", "text"]


# --- a reporter on WeChat Work, the police group on Telegram ----------------------------

TG_GROUP = -100123
TG_POLICE = 3001
TG_TOKEN = "123:abc"


async def _telegram_settle(api: FakeBotApi, channel: TelegramChannel, bot: WeComBot) -> None:
    app = channel.application
    for _ in range(500):
        await api.until_idle(timeout=5, quiet=0.02)
        busy = not app.update_queue.empty() or app.update_processor.current_concurrent_updates > 0
        if not busy:
            await bot.settle()
            return
        await asyncio.sleep(0.01)  # polled: PTB's update queue and processor have no idle event
    raise AssertionError("telegram did not settle")


async def test_wecom_reporter_and_telegram_police_group(fake: FakeWeComApi, tmp_path: Path) -> None:
    community = load_community(EXAMPLE_COMMUNITY_FILE).model_copy(
        update={"police_groups": PoliceGroups(telegram=[str(TG_GROUP)])}
    )
    async with FakeBotApi() as api:
        bot = await WeComBot(fake, tmp_path, community).start()
        telegram = telegram_channel(bot.rt, TG_TOKEN, api_url=api.base_url, file_url=api.base_file_url)
        bot.rt.add_channel(telegram)
        try:
            async with telegram.application:
                await telegram.start(poll_timeout=1)
                try:
                    await bot.repos(
                        lambda r: accounts.grant_role(
                            r, "telegram", str(TG_POLICE), accounts.POLICE, [], bot.clock.now(), "张警官"
                        )
                    )
                    await bot.onboard(REPORTER, "3")
                    await bot.say(REPORTER, "上报")
                    await bot.choose(REPORTER, "消防隐患")
                    await bot.choose(REPORTER, "一般")
                    await bot.say(REPORTER, "3号楼楼道堆满杂物")
                    await bot.photo(REPORTER, jpeg_with_gps())
                    await bot.choose(REPORTER, "完成")
                    await bot.choose(REPORTER, "就在我住的楼")
                    await bot.choose(REPORTER, "实名")
                    await bot.choose(REPORTER, "提交")
                    report = await bot.report(TICKET)

                    card: SentMessage = api.sent_messages(TG_GROUP)[-1]
                    assert card.method == "sendPhoto" and TICKET in (card.caption or "")
                    ack = f"v1:rep:ack:{report.id}"
                    assert ack in card.callback_data
                    query = api.push_callback(TG_POLICE, TG_GROUP, card.message_id, ack)
                    await _telegram_settle(api, telegram, bot)

                    answer = api.answered_callbacks[query]
                    assert TICKET in (answer.get("text") or "")
                    assert "已受理" in (card.caption or "")
                    told = texts(fake.messages_to(REPORTER))[-1]
                    assert TICKET in told and "已受理" in told
                    events = await bot.repos(lambda r: r.reports.events(report.id))
                    assert [e.to_state for e in events] == ["submitted", "acknowledged"]
                finally:
                    await telegram.stop()
        finally:
            await bot.close()


async def test_a_file_follows_its_message_as_an_uploaded_file(bot: WeComBot, fake: FakeWeComApi) -> None:
    await bot.onboard(REPORTER, "3")
    export = Document("ledger-2026-11.csv", "text/csv", "\ufeff时间,积分\n2026-11-01,5\n".encode())
    user = await bot.repos(lambda r: r.users.by_identity("wecom", REPORTER))
    reply = Reply(Text("help.hint"), document=export)
    await bot.repos(lambda r: notify.to_user(r, bot.community, user[0], reply, bot.clock.now()))
    await bot.settle()
    text, file = fake.messages_to(REPORTER)[-2:]
    assert text["msgtype"] == "text" and "/help" in text["text"]["content"]
    assert file["msgtype"] == "file"
    uploaded = next(m for m in fake.uploaded_media if m.media_id == file["file"]["media_id"])
    assert (uploaded.type, uploaded.filename, uploaded.data) == ("file", "ledger-2026-11.csv", export.data)
