"""Broadcasts and the outbox lanes, through the harness: a report filed while a broadcast waits to
go out has its police card sent first, and an urgent alert's copies are queued in the urgent lane
with group chats first, an information notice's in bulk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handlers.accounts import rules as accounts
from handlers.broadcasts import rules as service
from handlers.community import PoliceGroups
from handlers.registry import Lane, priority
from storage.models import OutboxMessage
from storage.repositories import Repos
from tests import harness as harness_module
from tests.harness import POLICE_GROUP, Harness

RESIDENTS_GROUP = "residents-group"
RESIDENTS = tuple(f"resident{n}" for n in range(30))


@pytest.fixture
async def h(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    community = harness_module.test_community().model_copy(
        update={"resident_groups": PoliceGroups(console=[RESIDENTS_GROUP])}
    )
    harness = await Harness(database_url, tmp_path).start(community)
    await harness.person("police", accounts.POLICE, building=None)
    for name in RESIDENTS:
        await harness.person(name, building="3")
    yield harness
    await harness.close()


async def publish(h: Harness, level: str) -> int:
    async def run(repos: Repos) -> int:
        found = await repos.users.by_identity(harness_module.CHANNEL, "police")
        assert found is not None
        author = found[0]
        return await service.publish(
            repos,
            h.rt.community,
            author,
            kind="police",
            priority=level,
            text="今晚小区停水检修，请提前储水。",
            audience={"type": "community"},
            now=h.clock.now(),
        )

    broadcast_id: int = await h.repos_do(run)
    return broadcast_id


async def copies(h: Harness, broadcast_id: int) -> list[OutboxMessage]:
    rows: list[OutboxMessage] = await h.repos_do(lambda repos: repos.outbox.all())
    return [row for row in rows if row.kind == service.COPY and row.payload["broadcast_id"] == broadcast_id]


async def test_a_report_filed_while_a_broadcast_waits_has_its_police_card_sent_first(h: Harness) -> None:
    # The dialogue up to its last step, then a broadcast to everyone queued, then the confirmation.
    reporter = RESIDENTS[0]
    await h.say(reporter, "/report")
    await h.press(reporter, "v1:rpt:cat:fire")
    await h.press(reporter, "v1:rpt:urg:normal")
    await h.say(reporter, "楼道里堆满了杂物，堵住了消防通道")
    await h.press(reporter, "v1:rpt:ph:done")
    await h.press(reporter, "v1:rpt:loc:home")
    await h.press(reporter, "v1:rpt:anon:no")
    before = len(h.channel.sent)
    broadcast_id = await publish(h, service.INFO)
    await h.press(reporter, "v1:rpt:ok:1")

    sent = h.channel.sent[before:]
    card_at = next(i for i, s in enumerate(sent) if s.chat_id == POLICE_GROUP)
    broadcast = {row.chat_id for row in await copies(h, broadcast_id)}
    first_copy_at = next(
        i for i, s in enumerate(sent) if s.chat_id in broadcast and s.chat_id != POLICE_GROUP
    )
    # Queued after all the copies, the card went out before any of them.
    assert len(broadcast) == len(RESIDENTS) + 1
    assert card_at < first_copy_at and sent[card_at].priority == Lane.INTERACTIVE


async def test_an_urgent_alerts_copies_are_urgent_groups_first_and_a_notices_bulk(h: Harness) -> None:
    urgent = await publish(h, service.URGENT)
    info = await publish(h, service.INFO)
    lanes = {
        broadcast_id: {
            (row.chat_id == RESIDENTS_GROUP, row.priority) for row in await copies(h, broadcast_id)
        }
        for broadcast_id in (urgent, info)
    }
    assert lanes[urgent] == {(True, priority(Lane.URGENT, group=True)), (False, int(Lane.URGENT))}
    assert lanes[info] == {(True, priority(Lane.BULK, group=True)), (False, int(Lane.BULK))}
    assert priority(Lane.URGENT, group=True) < Lane.URGENT < priority(Lane.BULK, group=True) < Lane.BULK

    await h.deliver()
    order = [s.chat_id for s in h.channel.sent if s.chat_id in {RESIDENTS_GROUP, *RESIDENTS}]
    # Every chat had both; the group got the alert first, and every private chat had the urgent
    # alert before any information notice went out.
    assert order[0] == RESIDENTS_GROUP
    texts = [s for s in h.channel.sent if s.chat_id in RESIDENTS]
    assert len(texts) == 2 * len(RESIDENTS)
    assert all(s.priority == Lane.URGENT for s in texts[: len(RESIDENTS)])
    assert all(s.priority == Lane.BULK for s in texts[len(RESIDENTS) :])
