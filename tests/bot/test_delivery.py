"""The outbox worker: who gets marked as having blocked the bot, and kinds that features render."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from bot.channels.base import Undeliverable
from handlers import features, notify
from handlers.community import Community
from handlers.messages import Reply, Text
from handlers.registry import OutboxKind, Rendered
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
