"""The outbox worker: who gets marked as having blocked the bot, kinds that features render, and
how long a platform outage is waited out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.app import retries
from bot.channels.base import DeliveryError, Transient, Undeliverable
from bot.delivery import MAX_ATTEMPTS
from bot.settings import Settings
from handlers import features, notify
from handlers.community import Community
from handlers.messages import Reply, Text, reply_to_json
from handlers.registry import MESSAGE, OutboxKind, Rendered
from storage.models import OutboxMessage
from storage.repositories import Repos
from tests.harness import CHANNEL, Harness


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("wang")
    try:
        yield harness
    finally:
        await harness.close()


async def test_a_person_who_blocked_the_bot_is_marked_until_they_write_again(bot: Harness) -> None:
    user_id = await bot.user_id("wang")

    async def identity_blocked_at() -> datetime | None:
        found = await bot.repos_do(lambda r: r.users.identities(user_id))
        return found[0].blocked_at

    async def tell_wang(repos: Repos) -> None:
        user = await repos.users.get(user_id)
        assert user is not None
        await notify.to_user(repos, bot.rt.community, user, Reply(Text("help.hint")), bot.clock.now())

    bot.channel.fail_with = Undeliverable("Forbidden: bot was blocked by the user", blocked=True)
    await bot.repos_do(tell_wang)
    await bot.deliver()
    assert await bot.repos_do(lambda r: r.outbox.counts()) == {"blocked": 1}
    assert await identity_blocked_at() == bot.clock.now()

    bot.channel.fail_with = None
    await bot.say("wang", "/help")
    assert await identity_blocked_at() is None


async def test_a_feature_renders_its_own_kind_and_hears_how_it_ended(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    settled: list[tuple[int, str, str | None]] = []
    rendered_from: list[dict[str, object]] = []

    async def render(repos: Repos, community: Community, row: OutboxMessage) -> Rendered:
        rendered_from.append(row.payload)
        if row.payload["n"] == 2:
            raise LookupError("deleted meanwhile")
        return Rendered(Reply(Text("help.hint")))

    async def on_settled(
        repos: Repos, community: Community, row: OutboxMessage, state: str, ref: str | None, now: datetime
    ) -> None:
        settled.append((int(row.payload["n"]), state, ref))

    monkeypatch.setitem(features.REGISTRY.outbox, "summary", OutboxKind(render, on_settled))
    for n in (1, 2):
        await bot.repos_do(
            lambda r, n=n: r.outbox.enqueue(CHANNEL, "wang", "zh_CN", "summary", {"n": n}, bot.clock.now())
        )
    await bot.deliver()
    assert rendered_from == [{"n": 1}, {"n": 2}]
    sent = bot.channel.to("wang")
    assert [s.text for s in sent] == ["help.hint"]
    assert settled == [(1, "sent", sent[0].ref), (2, "failed", None)]


async def test_a_row_of_a_kind_no_feature_declares_fails_with_a_clear_error(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A row left by a version whose feature declared the kind: nothing can render it now.
    await bot.repos_do(
        lambda r: r.outbox.enqueue(CHANNEL, "wang", "zh_CN", "summary", {"n": 1}, bot.clock.now())
    )
    monkeypatch.delitem(features.REGISTRY.outbox, "summary")
    await bot.deliver()
    assert bot.channel.to("wang") == []
    [row] = await bot.repos_do(lambda r: r.outbox.all())
    assert row.state == "failed"
    assert "no feature declares the outbox kind 'summary'" in (row.last_error or "")


# --- platform outages ----------------------------------------------------------------------


async def _queue(bot: Harness, kind: str, n: int = 1) -> None:
    payload = reply_to_json(Reply(Text("help.hint"))) if kind == MESSAGE else {"n": n}
    await bot.repos_do(lambda r: r.outbox.enqueue(CHANNEL, "wang", "zh_CN", kind, payload, bot.clock.now()))


async def test_an_outage_is_retried_a_minute_apart_until_the_kinds_horizon_then_the_row_expires(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    settled: list[str] = []

    async def render(repos: Repos, community: Community, row: OutboxMessage) -> Rendered:
        return Rendered(Reply(Text("help.hint")))

    async def on_settled(
        repos: Repos, community: Community, row: OutboxMessage, state: str, ref: str | None, now: datetime
    ) -> None:
        settled.append(state)

    kind = OutboxKind(render, on_settled, gives_up_after=timedelta(hours=1))
    monkeypatch.setitem(features.REGISTRY.outbox, "summary", kind)
    await _queue(bot, "summary")
    bot.channel.fail_with = Transient("Bad Gateway (502)")
    started = bot.clock.now()
    await bot.deliver()
    while bot.clock.now() < started + timedelta(minutes=59):
        bot.clock.advance(timedelta(minutes=1))
        await bot.deliver()
        [row] = await bot.repos_do(lambda r: r.outbox.all())
        assert row.state == "pending" and row.failing_since == started
        # The back-off is capped: the platform's return is noticed within a minute.
        assert row.next_attempt_at - bot.clock.now() <= timedelta(minutes=1)
    assert row.attempts >= 55 and settled == []

    bot.clock.advance(timedelta(minutes=1))
    await bot.deliver()
    [row] = await bot.repos_do(lambda r: r.outbox.all())
    assert (row.state, row.last_error) == ("expired", "Bad Gateway (502)")
    assert settled == ["expired"] and bot.channel.sent == []


async def test_a_message_outlives_a_day_long_outage_and_goes_out_once_the_platform_is_back(
    bot: Harness,
) -> None:
    await _queue(bot, MESSAGE)
    bot.channel.fail_with = TimeoutError()
    for _ in range(24 * 4):
        bot.clock.advance(timedelta(minutes=15))
        await bot.deliver()
    [row] = await bot.repos_do(lambda r: r.outbox.all())
    assert row.state == "pending" and row.last_error == "TimeoutError"
    bot.channel.fail_with = None
    bot.clock.advance(timedelta(minutes=1))
    await bot.deliver()
    assert [s.text for s in bot.channel.to("wang")] == ["help.hint"]
    assert [row.state for row in await bot.repos_do(lambda r: r.outbox.all())] == ["sent"]


async def test_operators_set_horizons_per_kind_and_errors_not_known_to_be_transient_still_fail(
    bot: Harness,
) -> None:
    bot.rt.delivery.retries = retries(
        Settings(outbox_give_up_hours={"message": 0.5, "card": None}, outbox_max_backoff_seconds=600)
    )
    assert bot.rt.delivery.retries.horizon("card") is None
    assert bot.rt.delivery.retries.horizon("broadcast") == timedelta(hours=24)  # as declared
    await _queue(bot, MESSAGE)
    bot.channel.fail_with = Transient("Service Unavailable (503)")
    await bot.deliver()
    for _ in range(3):
        bot.clock.advance(timedelta(minutes=10))
        await bot.deliver()
    [row] = await bot.repos_do(lambda r: r.outbox.all())
    assert row.state == "expired"

    # An error nobody knows to be passing (an unknown API error code) is tried MAX_ATTEMPTS times.
    await _queue(bot, MESSAGE)
    bot.channel.fail_with = DeliveryError("wecom error 40003: invalid userid")
    for _ in range(MAX_ATTEMPTS):
        await bot.deliver()
        bot.clock.advance(timedelta(minutes=10))
    rows = await bot.repos_do(lambda r: r.outbox.all())
    assert (rows[-1].state, rows[-1].attempts) == ("failed", MAX_ATTEMPTS)


def test_a_horizon_for_a_kind_nothing_declares_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="unknown outbox kinds \\['cards'\\]"):
        retries(Settings(outbox_give_up_hours={"cards": 12}))
    with pytest.raises(ValueError, match="above 0"):
        Settings(outbox_give_up_hours={"card": 0})
