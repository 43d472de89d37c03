"""Priority lanes end to end, through the real outbox worker and PTB Application against the fake
Bot API: an urgent alert reaches group chats first, what someone is waiting for passes a broadcast
under way, a chat's own order is kept, and paid broadcasts are used for urgent private copies only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import Runtime
from handlers import notify
from handlers.broadcasts import rules as broadcasts
from handlers.community import PoliceGroups
from handlers.messages import Reply, Text, Verbatim
from storage.repositories import Repos
from tests.bot.test_broadcast_delivery import (
    GROUPS,
    POLICE,
    Sender,
    add_residents,
    district,
    flood_refusals,
    outbox,
    publish_alert,
    resident_chats,
)
from tests.fakes.telegram_api import FakeBotApi

POLICE_GROUP = "-1009000000001"
SENDS = ("sendMessage", "sendPhoto")


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    # No one-a-second limit per chat: the fake applies it to groups too, where the adapter keeps
    # only the 20 a minute, and two alerts to one group would then be retried a second later.
    async with FakeBotApi(rate_limit_per_second=100, per_group_per_minute=20) as fake:
        yield fake


def sent_order(api: FakeBotApi) -> list[str]:
    """Chats in the order their messages were sent, leaving out the author's delivery report."""
    return [str(m.chat_id) for m in api.sent_messages() if str(m.chat_id) != POLICE]


async def tell(runtime: Runtime, text: str, *, police: bool = False, person: str | None = None) -> None:
    """Queue an interactive message as the engine does (a police notice, a reply to someone)."""
    now = runtime.clock.now()
    params = {"kind": Verbatim("通知"), "text": Verbatim(text), "community": Verbatim("幸福里社区")}
    reply = Reply(Text("broadcast.message_info", params))
    async with runtime.database.transaction() as connection:
        repos = Repos(connection)
        if police:
            await notify.to_police(repos, runtime.community, reply, now)
        if person is not None:
            user = await repos.users.by_identity("telegram", person)
            assert user is not None
            await notify.to_user(repos, runtime.community, user[0], reply, now)
    runtime.delivery.wake()


async def test_an_urgent_alert_reaches_every_group_chat_before_any_private_chat(
    api: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    chats = resident_chats(150)
    async with Sender(api, database_url, tmp_path, district(GROUPS), telegram_rate_per_second=100) as bot:
        # One send at a time, so the fake sees them in the order the worker started them.
        bot.channel.max_in_flight = 1
        await add_residents(bot.rt, "telegram", chats)
        await publish_alert(bot.rt, "telegram", broadcasts.URGENT)
        await bot.deliver()
    order = sent_order(api)
    assert sorted(order) == sorted([*chats, *GROUPS])
    # The groups were listed after everyone (by id they went 151st and 152nd): now they go first.
    assert set(order[: len(GROUPS)]) == set(GROUPS)


async def test_an_urgent_alert_goes_ahead_of_a_notice_queued_before_it(
    api: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    chats = resident_chats(30)
    async with Sender(api, database_url, tmp_path, district(GROUPS), telegram_rate_per_second=100) as bot:
        bot.channel.max_in_flight = 1
        await add_residents(bot.rt, "telegram", chats)
        await publish_alert(bot.rt, "telegram", broadcasts.INFO)
        await publish_alert(bot.rt, "telegram", broadcasts.URGENT)
        await bot.deliver()
        rows = await outbox(bot.rt)
    assert {row.state for row in rows} == {"sent"}
    # The groups go first, at their urgent copy's priority (each still gets the notice queued
    # before it first: a chat's order is kept), and every chat gets both.
    assert set(sent_order(api)[: len(GROUPS)]) == set(GROUPS)
    assert all(len(api.sent_messages(int(chat))) == 2 for chat in (*chats, *GROUPS))
    [group_notice, group_alert] = api.sent_messages(int(GROUPS[0]))
    assert group_alert.pinned and not group_notice.pinned


async def test_a_police_notice_and_a_reply_queued_during_a_bulk_broadcast_pass_it(
    database_url: str, tmp_path: Path
) -> None:
    chats = resident_chats(600)
    community = district().model_copy(update={"police_groups": PoliceGroups(telegram=[POLICE_GROUP])})
    # Only the bot's 100 a second limits the pace here: the reply goes to a chat that just had
    # its copy, and one a second per chat would hold it for that second whatever its lane.
    limits = {"telegram_rate_per_second": 100, "telegram_chat_per_second": 1000}
    async with (
        FakeBotApi(rate_limit_per_second=100) as api,
        Sender(api, database_url, tmp_path, community, **limits) as bot,
    ):
        await add_residents(bot.rt, "telegram", chats)
        await publish_alert(bot.rt, "telegram", broadcasts.INFO)
        worker = asyncio.create_task(bot.rt.delivery.run())
        try:
            await api.wait_for(lambda: len(api.sent_messages()) >= 100, timeout=60)
            # The person is someone whose own copy went out already, so only lanes are measured.
            answered = sent_order(api)[0]
            queued_at = len(sent_order(api))
            await tell(bot.rt, "警情", police=True, person=answered)
            await api.wait_for(lambda: len(sent_order(api)) >= len(chats) + 2, timeout=60)
        finally:
            bot.rt.delivery.stop()
            await worker
    order = sent_order(api)
    police_at = order.index(POLICE_GROUP)
    reply_at = len(order) - 1 - order[::-1].index(answered)
    # Both went out with the copies already on their way (at most the worker's 32 in flight),
    # not behind the five hundred copies still waiting.
    assert police_at - queued_at <= 64 and reply_at - queued_at <= 64
    assert len(order) - max(police_at, reply_at) > 300
    assert flood_refusals(api) == []


async def test_a_chats_own_messages_keep_their_order_across_lanes(
    api: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    chats = resident_chats(100)
    async with Sender(api, database_url, tmp_path, district(), telegram_rate_per_second=100) as bot:
        await add_residents(bot.rt, "telegram", chats)
        await publish_alert(bot.rt, "telegram", broadcasts.INFO)
        # Queued after the notice to the same person: interactive, but their chat's order holds.
        await tell(bot.rt, "回复", person=chats[-1])
        await bot.deliver()
    last = api.sent_messages(int(chats[-1]))
    assert len(last) == 2 and "回复" not in (last[0].text or last[0].caption or "")
    assert "回复" in (last[1].text or "")
    # And that chat went first, at its reply's priority, rather than last by id.
    assert sent_order(api).index(chats[-1]) < 32


def paid_flags(api: FakeBotApi) -> dict[str, set[bool]]:
    flags: dict[str, set[bool]] = {}
    for method in SENDS:
        for call in api.calls_of(method):
            flags.setdefault(str(call.params["chat_id"]), set()).add(
                call.params.get("allow_paid_broadcast") is True
            )
    return flags


async def test_paid_broadcast_on_sends_only_urgent_private_copies_as_paid(
    api: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    chats = resident_chats(50)
    paid = {"telegram_paid_broadcast": True, "telegram_paid_rate_per_second": 500}
    async with Sender(api, database_url, tmp_path, district(GROUPS), **paid) as bot:
        await add_residents(bot.rt, "telegram", chats)
        await publish_alert(bot.rt, "telegram", broadcasts.URGENT)
        await bot.deliver()
        urgent = paid_flags(api)
        api.calls.clear()
        await publish_alert(bot.rt, "telegram", broadcasts.INFO)
        await bot.deliver()
        info = paid_flags(api)
    assert all(urgent[chat] == {True} for chat in chats)
    # Group copies and the author's delivery report are not paid broadcasts.
    assert all(urgent[chat] == {False} for chat in (*GROUPS, POLICE))
    assert set(info) >= {*chats, *GROUPS} and all(flags == {False} for flags in info.values())
    assert flood_refusals(api) == []


async def test_paid_broadcast_off_never_sends_paid(
    api: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    chats = resident_chats(20)
    async with Sender(api, database_url, tmp_path, district(GROUPS)) as bot:
        assert bot.channel.flood.paid is None
        await add_residents(bot.rt, "telegram", chats)
        await publish_alert(bot.rt, "telegram", broadcasts.URGENT)
        await bot.deliver()
    flags = paid_flags(api)
    assert set(flags) >= {*chats, *GROUPS} and all(value == {False} for value in flags.values())
