"""A WeChat Work API outage of ten minutes, over the wire: nothing lost, nothing sent twice,
delivery resumes within a minute of WeChat Work's return.

Real signed and encrypted callbacks in, the real channel, outbox and SQLite, against the fake
WeChat Work API answering every call (the token's too) with HTTP 502, then errcode -1 (系统繁忙),
then not at all. Time is the test's clock, which the outbox's retries follow.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from handlers.accounts import rules as accounts
from handlers.broadcasts import rules as broadcasts
from storage.repositories import Repos
from tests.bot.wecom_live import POLICE, REPORTER, ROBOT_KEY, WORKER, WeComBot, police_robot_community
from tests.fakes import wecom_crypto as wc
from tests.fakes.wecom_api import FakeWeComApi

SENDS = ("/cgi-bin/message/send", "/cgi-bin/webhook/send", "/cgi-bin/appchat/send")
# The bot gives up on an API call after this long; the fake's time-outs hang longer.
TIMEOUT_SECONDS = 0.3
ALERT = "今晚有台风，请勿外出"


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeComApi]:
    async with FakeWeComApi(robot_keys={ROBOT_KEY}) as api:
        yield api


@pytest.fixture
async def bot(fake: FakeWeComApi, tmp_path: Path) -> AsyncIterator[WeComBot]:
    live = await WeComBot(fake, tmp_path, police_robot_community(), api_timeout=TIMEOUT_SECONDS).start()
    await live.grant(WORKER, accounts.GRID_WORKER, ("g1",), "李网格员")
    await live.grant(POLICE, accounts.POLICE, name="张警官")
    for user, building in ((REPORTER, "1"), (WORKER, None), (POLICE, None)):
        await live.onboard(user, building)
    try:
        yield live
    finally:
        await live.close()


async def click(bot: WeComBot, user: str, action: str) -> None:
    """A button of a card the person has open: the callback is stored and handled, whatever the API does."""
    bot.clock.advance(timedelta(seconds=1))
    event = wc.template_card_event(
        bot.fake.corp_id, user, action, "task-1", create_time=int(bot.clock.now().timestamp())
    )
    await bot.deliver(event)
    await bot.settle(allow_pending=True)


async def say(bot: WeComBot, user: str, text: str) -> None:
    await bot.deliver(bot.text(user, text))
    await bot.settle(allow_pending=True)


async def alert(bot: WeComBot) -> None:
    async def publish(repos: Repos) -> int:
        officer = (await repos.users.by_identity("wecom", POLICE))[0]
        return await broadcasts.publish(
            repos,
            bot.rt.community,
            officer,
            kind="police",
            priority=broadcasts.URGENT,
            text=ALERT,
            audience={"type": "community"},
            now=bot.clock.now(),
        )

    await bot.rt.engine.run(publish)


def delivered(fake: FakeWeComApi, since: int) -> list[tuple[str, str]]:
    """(recipient, body) of every send WeChat Work accepted from call `since` on."""
    out = []
    for call in fake.calls[since:]:
        if call.path in SENDS and call.http_status == 200 and call.errcode == 0 and call.json is not None:
            body = dict(call.json)
            to = str(body.pop("touser", "") or body.pop("chatid", "") or call.query.get("key", ""))
            out.extend((user, json.dumps(body, sort_keys=True)) for user in to.split("|"))
    return out


async def test_ten_minutes_of_502s_system_busy_and_time_outs_lose_nothing_and_resume_within_a_minute(
    bot: WeComBot, fake: FakeWeComApi
) -> None:
    before = {row.id for row in await bot.outbox()}
    fake.start_outage("502")
    # During the outage a resident reports a hazard with the card buttons (every answer waits in
    # the outbox), the report's card waits for the police robot, the officer sends an alert.
    await say(bot, REPORTER, "/report")
    for action in ("v1:rpt:cat:fire", "v1:rpt:urg:normal"):
        await click(bot, REPORTER, action)
    await say(bot, REPORTER, "楼道里堆满了杂物，堵住了消防通道")
    for action in ("v1:rpt:ph:done", "v1:rpt:loc:home", "v1:rpt:anon:no", "v1:rpt:ok:1"):
        await click(bot, REPORTER, action)
    report = await bot.report("#2026-0001")
    assert report.state == "submitted"
    await alert(bot)
    await bot.settle(allow_pending=True)
    queued = [row for row in await bot.outbox() if row.id not in before]
    assert {row.kind for row in queued} >= {"message", "card", "broadcast", "summary"}
    assert {row.chat_id for row in queued} >= {REPORTER, WORKER, POLICE, f"robot:{ROBOT_KEY}"}
    calls_before = len(fake.calls)

    # Ten minutes: gateway errors, then WeChat Work's "system busy", then calls that hang.
    for minute in range(10):
        if minute == 4:
            fake.start_outage("busy")
        if minute == 7:
            fake.start_outage("timeout", hang=TIMEOUT_SECONDS + 0.2)
        for _ in range(2):
            bot.clock.advance(timedelta(seconds=30))
            await bot.settle(allow_pending=True)
        states = Counter(row.state for row in await bot.outbox())
        assert states["failed"] == states["expired"] == 0, states
    assert delivered(fake, 0)[-1:] != [] and delivered(fake, calls_before) == []
    refused = fake.calls[calls_before:]
    assert {c.http_status for c in refused} >= {502, 504} and any(c.errcode == -1 for c in refused)
    pending = [row for row in await bot.outbox() if row.state == "pending"]
    assert {row.id for row in pending} == {row.id for row in queued}
    assert all(row.next_attempt_at <= bot.clock.now() + timedelta(minutes=1) for row in pending)

    fake.end_outage()
    recovered = bot.clock.now()
    calls_after = len(fake.calls)
    bot.clock.advance(timedelta(minutes=1))
    await bot.settle()

    rows = {row.id: row for row in await bot.outbox()}
    assert {rows[row.id].state for row in queued} == {"sent"}
    assert all(rows[row.id].sent_at <= recovered + timedelta(minutes=1) for row in queued)  # type: ignore[operator]
    # Once each: no recipient got the same thing twice, and everyone got the alert.
    sent = delivered(fake, calls_after)
    assert [pair for pair, times in Counter(sent).items() if times > 1] == []
    for user in (REPORTER, WORKER):
        assert len([t for t in fake.texts_to(user) if ALERT in t]) == 1
    assert (
        len([m for m in fake.robot_messages(ROBOT_KEY) if "#2026-0001" in json.dumps(m, ensure_ascii=False)])
        == 1
    )
    assert any("#2026-0001" in t for t in fake.texts_to(REPORTER))
