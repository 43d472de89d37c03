"""Delivery at district scale: thousands of copies within the platforms' flood limits (Telegram's
flood control in the adapter, WeChat Work's 1,000 members per call), each exactly once, also when
the delivery is stopped, or the process terminated or killed, in the middle of it."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest

from bot.app import Runtime, build_runtime, telegram_channel
from bot.channels.base import RetryLater
from bot.channels.telegram import TelegramChannel
from bot.community_file import load_community
from bot.settings import EXAMPLE_COMMUNITY_FILE, Settings
from handlers import features, notify
from handlers.accounts import rules as accounts
from handlers.broadcasts import rules as broadcasts
from handlers.broadcasts import views as broadcast_views
from handlers.clock import Clock, FakeClock, SystemClock
from handlers.community import Community, PoliceGroups
from handlers.messages import Reply, Text, Verbatim, reply_to_json
from handlers.registry import OutboxKind, Rendered
from storage import schema
from storage.models import OutboxMessage
from storage.repositories import Repos
from tests.bot.wecom_live import WeComBot
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.wecom_api import FakeWeComApi
from tests.harness import CHANNEL, Harness, jpeg_with_gps

TOKEN = "123:abc"
POLICE = "3001"
FIRST_RESIDENT = 5_000_000
GROUPS = ("-1005000000001", "-1005000000002")
ALERT = "今晚20:00至22:00小区停水检修，请提前储水；如遇可疑人员冒充维修工上门，请拨打110。"


def district(resident_groups: tuple[str, ...] = ()) -> Community:
    community = load_community(EXAMPLE_COMMUNITY_FILE)
    return community.model_copy(
        update={
            "police_groups": PoliceGroups(),
            "resident_groups": PoliceGroups(telegram=list(resident_groups)),
        }
    )


def resident_chats(count: int) -> list[str]:
    return [str(FIRST_RESIDENT + n) for n in range(count)]


async def add_residents(runtime: Runtime, channel: str, chat_ids: list[str]) -> None:
    """People who pressed Start long ago, written in bulk."""
    now = runtime.clock.now()
    async with runtime.database.transaction() as connection:
        for start in range(0, len(chat_ids), 500):
            chunk = chat_ids[start : start + 500]
            people = [
                {
                    "display_name": f"居民{chat_id}",
                    "language": "zh_CN",
                    "grid_key": "g1",
                    "building": "3",
                    "privacy_accepted_at": now,
                    "onboarded_at": now,
                    "created_at": now,
                }
                for chat_id in chunk
            ]
            ids = schema.users.insert().returning(schema.users.c.id, sort_by_parameter_order=True)
            inserted = await connection.execute(ids, people)
            await connection.execute(
                schema.identities.insert(),
                [
                    {
                        "channel": channel,
                        "external_id": chat,
                        "user_id": user_id,
                        "chat_id": chat,
                        "last_seen_at": now,
                    }
                    for chat, user_id in zip(chunk, [row.id for row in inserted], strict=True)
                ],
            )


async def publish_alert(runtime: Runtime, channel: str, priority: str, *, photo: bool = False) -> int:
    now = runtime.clock.now()
    async with runtime.database.transaction() as connection:
        repos = Repos(connection)
        author = await accounts.grant_role(repos, channel, POLICE, accounts.POLICE, [], now, "张警官")
        await repos.users.touch_identity(channel, POLICE, POLICE, now)
        await repos.users.update(author.id, language="zh_CN", privacy_accepted_at=now, onboarded_at=now)
        photo_id = await runtime.media.save_photo(repos, jpeg_with_gps(), now) if photo else None
        return await broadcasts.publish(
            repos,
            runtime.community,
            author,
            kind="police",
            priority=priority,
            text=ALERT,
            audience={"type": "community"},
            now=now,
            photo_id=photo_id,
        )


async def queue_messages(runtime: Runtime, rows: list[tuple[str, str]], channel: str = "telegram") -> None:
    """Plain outbox messages (chat, text), as any notification is queued."""
    now = runtime.clock.now()
    async with runtime.database.transaction() as connection:
        outbox = Repos(connection).outbox
        for chat_id, text in rows:
            params = {"kind": Verbatim("通知"), "text": Verbatim(text), "community": Verbatim("幸福里社区")}
            reply = reply_to_json(Reply(Text("broadcast.message_info", params)))
            await outbox.enqueue(channel, chat_id, "zh_CN", notify.MESSAGE, reply, now)


async def outbox(runtime: Runtime) -> list[OutboxMessage]:
    async with runtime.database.transaction() as connection:
        rows: list[OutboxMessage] = await Repos(connection).outbox.all()
        return rows


class Sender:
    """Shouwang's outbox worker and Telegram adapter as `shouwang run` wires them (no polling needed)."""

    def __init__(
        self,
        api: FakeBotApi,
        database_url: str,
        tmp_path: Path,
        community: Community,
        clock: Clock | None = None,
        **limits: Any,
    ) -> None:
        self.api = api
        self.community = community
        self.clock = clock or FakeClock()
        self.settings = Settings(database_url=database_url, media_dir=tmp_path / "media", **limits)
        self._stack = contextlib.AsyncExitStack()
        self._runtime: Runtime | None = None
        self._channel: TelegramChannel | None = None

    async def __aenter__(self) -> Self:
        self._runtime = await build_runtime(self.settings, community=self.community, clock=self.clock)
        self._stack.push_async_callback(self._runtime.close)
        self._channel = telegram_channel(
            self._runtime, TOKEN, api_url=self.api.base_url, file_url=self.api.base_file_url
        )
        self._runtime.add_channel(self._channel)
        await self._stack.enter_async_context(self._channel.application)
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self._stack.aclose()

    @property
    def rt(self) -> Runtime:
        assert self._runtime is not None
        return self._runtime

    @property
    def channel(self) -> TelegramChannel:
        assert self._channel is not None
        return self._channel

    async def deliver(self) -> None:
        while await self.rt.delivery.drain():
            pass


def copies(api: FakeBotApi) -> Counter[str]:
    return Counter(str(m.chat_id) for m in api.sent_messages())


def flood_refusals(api: FakeBotApi) -> list[Any]:
    return [c for c in api.calls if c.status == 429]


def sent_rows(rows: list[OutboxMessage]) -> Counter[str]:
    return Counter(row.chat_id for row in rows if row.state == "sent")


@pytest.fixture
async def limited_api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(rate_limit_per_second=400, per_chat_per_second=1, per_group_per_minute=20) as api:
        yield api


# --- thousands of copies, within the limits -------------------------------------------------------


async def test_an_alert_to_thousands_reaches_everyone_once_within_telegrams_limits(
    limited_api: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    api = limited_api
    chats = resident_chats(2000)
    async with Sender(api, database_url, tmp_path, district(GROUPS), telegram_rate_per_second=400) as bot:
        await add_residents(bot.rt, "telegram", chats)
        broadcast_id = await publish_alert(bot.rt, "telegram", broadcasts.URGENT, photo=True)
        await bot.deliver()
        rows = await outbox(bot.rt)

    # Everyone once, and nothing refused for flooding: the adapter kept the limits itself.
    got = copies(api)
    assert all(got[chat] == 1 for chat in chats) and all(got[group] == 1 for group in GROUPS)
    assert flood_refusals(api) == []
    assert Counter(row.state for row in rows) == {"sent": len(chats) + len(GROUPS) + 1}  # + the report
    # People can acknowledge; the groups' copies are pinned, with a notification.
    ack = broadcast_views.ack_action(broadcast_id)
    people = set(chats)
    assert all(ack in m.callback_data for m in api.sent_messages() if str(m.chat_id) in people)
    assert all(m.pinned for group in GROUPS for m in api.sent_messages(int(group)))
    pins = api.calls_of("pinChatMessage")
    assert len(pins) == 2 and all(call.params.get("disable_notification") is False for call in pins)
    # The photo went up once; every other copy refers to it by its file_id.
    photos = api.calls_of("sendPhoto")
    assert len(photos) == len(chats) + len(GROUPS) and sum(1 for c in photos if c.files) == 1


async def test_a_group_over_its_minute_is_retried_later_rather_than_flooded(
    database_url: str, tmp_path: Path
) -> None:
    group = GROUPS[0]
    async with (
        FakeBotApi(per_group_per_minute=3) as api,
        Sender(api, database_url, tmp_path, district(), telegram_group_per_minute=3) as bot,
    ):
        await queue_messages(bot.rt, [(group, f"第{n}条") for n in range(1, 6)])
        await bot.deliver()
        rows = await outbox(bot.rt)
    assert [f"第{n}条" in (m.text or "") for n, m in enumerate(api.sent_messages(), 1)] == [True] * 3
    assert flood_refusals(api) == []
    fourth, fifth = rows[3], rows[4]
    # The fourth waits for the group's minute; the fifth waits behind it, untried, to keep the order.
    assert fourth.state == "pending" and fourth.attempts == 1 and "flood control" in (fourth.last_error or "")
    assert fourth.next_attempt_at > bot.clock.now() + timedelta(seconds=30)
    assert (fifth.state, fifth.attempts) == ("pending", 0)


async def test_a_429_all_the_same_is_retried_and_slows_the_bot_down(
    database_url: str, tmp_path: Path
) -> None:
    # Telegram is stricter than configured: one message every five seconds per chat.
    async with (
        FakeBotApi(per_chat_per_second=0.2) as api,
        Sender(api, database_url, tmp_path, district(), telegram_rate_per_second=50) as bot,
    ):
        chat = resident_chats(1)[0]
        await queue_messages(bot.rt, [(chat, "一"), (chat, "二")])
        await bot.deliver()
        rows = await outbox(bot.rt)
        window = bot.channel.flood.bot
        assert window.limit < window.ceiling == 50
    assert len(api.sent_messages()) == 1 and len(flood_refusals(api)) == 1
    assert (rows[1].state, rows[1].attempts) == ("pending", 1) and rows[1].next_attempt_at > bot.clock.now()


async def test_a_group_where_the_bot_may_not_pin_still_gets_the_alert(
    limited_api: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    api = limited_api
    api.cannot_pin.add(int(GROUPS[0]))
    async with Sender(api, database_url, tmp_path, district(GROUPS)) as bot:
        await publish_alert(bot.rt, "telegram", broadcasts.URGENT)
        await bot.deliver()
        rows = await outbox(bot.rt)
    assert {row.state for row in rows} == {"sent"}
    [refused] = api.sent_messages(int(GROUPS[0]))
    [pinned] = api.sent_messages(int(GROUPS[1]))
    assert not refused.pinned and pinned.pinned


# --- stopped, terminated or killed in the middle ----------------------------------------------


async def test_a_delivery_cancelled_midway_resumes_and_each_chat_gets_its_messages_once_in_order(
    database_url: str, tmp_path: Path
) -> None:
    chats = resident_chats(1200)
    # A hundred chats have three messages each, which must arrive in their order.
    talkative = chats[:100]
    rows = [(chat, f"{chat}-第{n}条") for n in (1, 2, 3) for chat in talkative]
    rows += [(chat, f"{chat}-通知") for chat in chats]
    async with FakeBotApi(rate_limit_per_second=300, per_chat_per_second=1) as api:
        async with Sender(api, database_url, tmp_path, district(), telegram_rate_per_second=300) as first:
            await queue_messages(first.rt, rows)
            worker = asyncio.create_task(first.rt.delivery.run())
            await api.wait_for(lambda: len(api.sent_messages()) >= 300, timeout=60)
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            stopped = await outbox(first.rt)
        # Whatever was on its way when the worker was cancelled finished and was recorded.
        assert sent_rows(stopped) == copies(api)
        assert 300 <= sum(copies(api).values()) < len(rows)

        # A restart takes longer than Telegram's one-second windows: they start afresh.
        api.configure_rate_limits(rate_limit_per_second=300, per_chat_per_second=1)
        async with Sender(api, database_url, tmp_path, district(), telegram_rate_per_second=300) as second:
            await second.deliver()
            finished = await outbox(second.rt)
    assert {row.state for row in finished} == {"sent"} and flood_refusals(api) == []
    texts: dict[str, list[str]] = {}
    for message in api.sent_messages():
        texts.setdefault(str(message.chat_id), []).append(message.text or "")
    for chat in chats:
        expected = [f"{chat}-第{n}条" for n in (1, 2, 3)] if chat in talkative else []
        expected.append(f"{chat}-通知")
        assert [next(e for e in expected if e in t) for t in texts[chat]] == expected, chat


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _run_shouwang(api: FakeBotApi, database_url: str, tmp_path: Path) -> asyncio.subprocess.Process:
    """`shouwang run` in a process of its own, on the given database, against the fake Bot API."""
    env = {
        **os.environ,
        "SHOUWANG_DATABASE_URL": database_url,
        "SHOUWANG_MEDIA_DIR": str(tmp_path / "media"),
        "SHOUWANG_TELEGRAM_TOKEN": TOKEN,
        "SHOUWANG_TELEGRAM_API_URL": api.base_url,
        "SHOUWANG_TELEGRAM_FILE_URL": api.base_file_url,
        "SHOUWANG_TELEGRAM_RATE_PER_SECOND": "200",
        "SHOUWANG_HTTP_PORT": str(_free_port()),
        "SHOUWANG_LOG_LEVEL": "WARNING",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_process_stopped_midway_resumes_without_loss(
    database_url: str, tmp_path: Path, how: signal.Signals
) -> None:
    """SIGTERM: what was on its way is finished and recorded, so the restart repeats nothing.
    SIGKILL: the platform may have accepted copies that were not recorded; exactly those are sent
    again after the restart, and nothing is lost."""
    chats = resident_chats(1200)
    community = load_community(EXAMPLE_COMMUNITY_FILE)  # what `shouwang run` reads
    # The process queues rows on the real clock (the author's report, for one), so the same here.
    clock = SystemClock()
    async with FakeBotApi(rate_limit_per_second=200, per_chat_per_second=1) as api:
        async with Sender(api, database_url, tmp_path, community, clock) as setup:
            await add_residents(setup.rt, "telegram", chats)
            await publish_alert(setup.rt, "telegram", broadcasts.IMPORTANT)
        process = await _run_shouwang(api, database_url, tmp_path)
        try:
            await api.wait_for(lambda: len(api.sent_messages()) >= 200 or process.returncode is not None, 60)
        finally:
            if process.returncode is None:
                process.send_signal(how)
            _, errors = await asyncio.wait_for(process.communicate(), timeout=60)
        log = errors.decode()[-2000:]
        assert process.returncode == (0 if how == signal.SIGTERM else -signal.SIGKILL), log
        delivered = copies(api)
        assert 0 < sum(delivered[chat] for chat in chats) < len(chats), log  # stopped midway
        # A restart takes longer than Telegram's one-second windows: they start afresh.
        api.configure_rate_limits(rate_limit_per_second=1000, per_chat_per_second=1)
        fast = {"telegram_rate_per_second": 1000}
        async with Sender(api, database_url, tmp_path, community, clock, **fast) as second:
            recorded = sent_rows(await outbox(second.rt))
            # Nothing is marked sent that the platform did not accept...
            assert all(delivered[chat] == count for chat, count in recorded.items())
            # ...and after SIGTERM everything the platform accepted is marked.
            unrecorded = {chat for chat in delivered if chat not in recorded}
            if how == signal.SIGTERM:
                assert unrecorded == set()
            await second.deliver()
            finished = await outbox(second.rt)
    assert {row.state for row in finished} == {"sent"}
    final = copies(api)
    assert [chat for chat in chats if final[chat] == 0] == []
    assert {chat for chat in chats if final[chat] > 1} == unrecorded
    assert all(final[chat] == 2 for chat in unrecorded)


# --- order and bookkeeping -------------------------------------------------------------------------


@pytest.fixture
async def harness(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    bot = await Harness(database_url, tmp_path).start()
    try:
        yield bot
    finally:
        await bot.close()


async def _queue(bot: Harness, chat: str, key: str, kind: str = notify.MESSAGE, **payload: Any) -> int:
    body = payload or reply_to_json(Reply(Text(key)))
    now = bot.clock.now()
    row_id: int = await bot.repos_do(lambda r: r.outbox.enqueue(CHANNEL, chat, "zh_CN", kind, body, now))
    return row_id


async def test_a_row_waiting_for_a_retry_holds_back_its_chat_and_a_row_held_for_later_does_not(
    harness: Harness,
) -> None:
    bot = harness
    await _queue(bot, "a", "help.hint")
    bot.channel.fail_with = RetryLater(30)
    await bot.deliver()
    bot.channel.fail_with = None
    await _queue(bot, "a", "error.internal")
    await _queue(bot, "b", "help.hint")
    # An information notice held over someone's quiet hours: scheduled, not failed.
    held = await _queue(bot, "c", "help.hint")
    later = bot.clock.now() + timedelta(hours=1)
    await bot.repos_do(
        lambda r: r.outbox.c.execute(
            schema.outbox.update().where(schema.outbox.c.id == held).values(next_attempt_at=later)
        )
    )
    await _queue(bot, "c", "error.internal")

    await bot.deliver()
    assert [s.text for s in bot.channel.to("a")] == []  # the second waits for the first
    assert [s.text for s in bot.channel.to("b")] == ["help.hint"]
    assert [s.text for s in bot.channel.to("c")] == ["error.internal"]
    await bot.wait(timedelta(seconds=31))
    assert [s.text for s in bot.channel.to("a")] == ["help.hint", "error.internal"]
    await bot.wait(timedelta(hours=1))
    assert [s.text for s in bot.channel.to("c")] == ["error.internal", "help.hint"]


async def test_a_features_failing_settled_hook_costs_only_its_own_row(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = harness

    async def render(repos: Repos, community: Community, row: OutboxMessage) -> Rendered:
        return Rendered(Reply(Text("help.hint")))

    async def settled(
        repos: Repos, community: Community, row: OutboxMessage, state: str, ref: str | None, now: datetime
    ) -> None:
        if row.payload["n"] == 2:
            raise RuntimeError("a bug in the feature")
        await repos.schedules.arm("test_settled", str(row.payload["n"]), now)

    monkeypatch.setitem(features.REGISTRY.outbox, "summary", OutboxKind(render, settled))
    for n, chat in enumerate("abc", 1):
        await _queue(bot, chat, "", "summary", n=n)
    assert await bot.deliver() == 3
    assert await bot.repos_do(lambda r: r.outbox.counts()) == {"sent": 3}
    armed = [await bot.repos_do(lambda r, n=n: r.schedules.get("test_settled", str(n))) for n in (1, 2, 3)]
    assert [schedule is not None for schedule in armed] == [True, False, True]
    # Marked sent all the same: nothing goes out twice.
    await bot.deliver()
    assert len(bot.channel.sent) == 3


# --- WeChat Work: a thousand members per call --------------------------------------------------


async def test_wecom_members_get_an_alert_in_calls_of_up_to_a_thousand(tmp_path: Path) -> None:
    members = [f"member{n:04d}" for n in range(2500)]
    gone = ["left0001", "left0002"]  # no longer in the app's visible range
    busy = members[0]
    async with FakeWeComApi(known_users=[*members, POLICE], per_user_per_minute=30) as fake:
        bot = await WeComBot(fake, tmp_path, district()).start()
        try:
            await add_residents(bot.rt, "wecom", [*members, *gone])
            # One member has heard from the app thirty times this minute already.
            await queue_messages(bot.rt, [(busy, f"第{n}条") for n in range(30)], channel="wecom")
            await bot.settle()
            fake.clear_records()
            await publish_alert(bot.rt, "wecom", broadcasts.URGENT)
            await bot.settle(allow_pending=True)

            texts = [c.json for c in fake.calls_to("message/send") if c.json and c.json["msgtype"] == "text"]
            batches = [len(body["touser"].split("|")) for body in texts if POLICE not in body["touser"]]
            assert sum(batches) == len(members) - 1 + len(gone) and max(batches) == 1000
            assert len(batches) <= math.ceil(sum(batches) / 1000) + 1
            assert [c for c in fake.calls if c.errcode == 45009] == []
            rows = {row.chat_id: row for row in await bot.outbox() if row.kind == broadcasts.COPY}
            assert {chat: rows[chat].state for chat in gone} == {chat: "blocked" for chat in gone}
            assert rows[busy].state == "pending" and "per-minute" in (rows[busy].last_error or "")
            assert all(len(fake.texts_to(member)) == 1 for member in members[1:])

            bot.clock.advance(timedelta(seconds=61))
            fake.advance_clock(61)
            await bot.settle()
            assert ALERT in fake.texts_to(busy)[-1]
            assert all(len(fake.texts_to(member)) == 1 for member in members[1:])
            found = await bot.repos(lambda r: r.users.by_identity("wecom", gone[0]))
            assert found is not None and found[1].blocked_at is not None  # skipped by the next broadcast
        finally:
            await bot.close()
