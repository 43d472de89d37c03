"""A Bot API outage of ten minutes, over the wire: nothing lost, nothing sent twice, delivery
resumes within a minute of Telegram's return.

The real PTB Application, adapter, outbox worker and SQLite against the fake Bot API, which answers
every send 502 Bad Gateway and then lets them time out. Time is the test's clock: the worker's
waits follow it, so ten minutes of outage take a few seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from handlers.accounts import rules as accounts
from handlers.broadcasts import rules as broadcasts
from storage.repositories import Repos
from tests.bot.telegram_live import GROUP, POLICE, REPORTER, WORKER, Live, content
from tests.fakes.telegram_api import FakeBotApi

SENDS = {"sendMessage", "sendPhoto", "sendDocument", "editMessageText", "editMessageCaption"}
# The bot gives up on a Bot API call after this long; the fake's time-outs hang longer.
TIMEOUT_SECONDS = 0.3


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as fake:
        yield fake


@pytest.fixture
async def live(api: FakeBotApi, tmp_path: Path) -> AsyncIterator[Live]:
    # Telegram's flood limits are kept in real time: the simulated minutes would wait for them.
    bot = await Live(
        api,
        tmp_path,
        telegram_timeout_seconds=TIMEOUT_SECONDS,
        telegram_chat_per_second=100,
        telegram_group_per_minute=1000,
    ).start()
    await bot.grant(WORKER, accounts.GRID_WORKER, ("g1",), "李网格员")
    await bot.grant(POLICE, accounts.POLICE, name="张警官")
    await bot.onboard(REPORTER, "3")
    await bot.onboard(WORKER, None)
    await bot.onboard(POLICE, None)
    try:
        yield bot
    finally:
        await bot.stop()


async def alert(live: Live, text: str) -> None:
    """An urgent alert to the whole community, as the officer's Confirm stores it."""

    async def publish(repos: Repos) -> int:
        officer = (await repos.users.by_identity("telegram", str(POLICE)))[0]
        return await broadcasts.publish(
            repos,
            live.rt.community,
            officer,
            kind="police",
            priority=broadcasts.URGENT,
            text=text,
            audience={"type": "community"},
            now=live.clock.now(),
        )

    await live.rt.engine.run(publish)


async def test_ten_minutes_of_502s_and_time_outs_lose_nothing_and_delivery_resumes_within_a_minute(
    live: Live, api: FakeBotApi
) -> None:
    ticket = await live.file_report(REPORTER)
    report = await live.report(ticket)
    [card] = [m for m in api.sent_messages(GROUP) if ticket in content(m)]
    before = {row.id for row in await live.repos(lambda r: r.outbox.all())}
    calls_before = len(api.calls)

    api.start_outage("502")
    # What people do meanwhile: the reporter asks for their reports (the answer cannot be given
    # at once, so it waits in the outbox), the officer acknowledges the report (the reporter is
    # told, the card is edited) and sends an urgent alert to everyone.
    api.push_text(REPORTER, "/myreports")
    api.push_callback(POLICE, GROUP, card.message_id, f"v1:rep:ack:{report.id}")
    await live.settle()
    await alert(live, "今晚有台风，请勿外出")
    await live.settle()
    queued = [row for row in await live.repos(lambda r: r.outbox.all()) if row.id not in before]
    assert {row.kind for row in queued} >= {"message", "card_edit", "broadcast", "summary"}
    assert {row.chat_id for row in queued} >= {str(REPORTER), str(WORKER), str(POLICE), str(GROUP)}

    # Ten minutes: five of 502s, five of calls that hang until the bot gives up on them.
    for minute in range(10):
        if minute == 5:
            api.start_outage("timeout", hang=TIMEOUT_SECONDS + 0.2)
        for _ in range(2):
            live.clock.advance(timedelta(seconds=30))
            await live.settle(timeout=15)
        states = Counter(row.state for row in await live.repos(lambda r: r.outbox.all()))
        assert states["failed"] == states["expired"] == 0, states
    refused = [c for c in api.calls[calls_before:] if c.method in SENDS]
    assert {c.status for c in refused} == {502, 504}
    # Tried all along, at most a minute apart: the cap on the back-off.
    assert len(refused) >= 10 * len({c.params.get("chat_id") for c in refused})
    pending = [row for row in await live.repos(lambda r: r.outbox.all()) if row.state == "pending"]
    assert {row.id for row in pending} == {row.id for row in queued}
    assert all(row.next_attempt_at <= live.clock.now() + timedelta(minutes=1) for row in pending)
    # What /metrics shows the operator: every row held up; those tried so far as retrying
    # (the rest wait behind their chat's first message).
    backlog = await live.repos(lambda r: r.outbox.backlog(live.clock.now()))
    assert sum(count for _, _, _, count in backlog) == len(queued)
    retrying = sum(count for _, _, state, count in backlog if state == "retrying")
    assert retrying == sum(1 for row in pending if row.attempts > 0) > 0

    api.end_outage()
    recovered = live.clock.now()
    calls_after = len(api.calls)
    live.clock.advance(timedelta(minutes=1))
    await live.settle(timeout=15)
    # Rows held behind their chat's first one go out as soon as it is through.
    for _ in range(5):
        live.rt.delivery.wake()
        await live.settle(timeout=15)

    rows = {row.id: row for row in await live.repos(lambda r: r.outbox.all())}
    assert {rows[row.id].state for row in queued} == {"sent"}
    assert all(rows[row.id].sent_at <= recovered + timedelta(minutes=1) for row in queued)  # type: ignore[operator]
    # Once each: one accepted call per queued row, into the row's chat.
    delivered = [c for c in api.calls[calls_after:] if c.method in SENDS and not c.rejected]
    assert Counter(str(c.params["chat_id"]) for c in delivered) == Counter(row.chat_id for row in queued)
    told = [m for m in api.sent_messages(REPORTER) if ticket in content(m)]
    assert len([m for m in api.sent_messages(REPORTER) if "今晚有台风" in content(m)]) == 1
    assert len(told) >= 2  # the list of their reports, and the acknowledgement
    edited = api.message(GROUP, card.message_id)
    assert "已受理" in content(edited)
