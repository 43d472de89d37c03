"""An alert through a platform outage longer than its copies' horizon: they expire, and the author's
delivery report says how many, instead of counting them as pending for ever or as failed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.channels.base import Transient
from handlers.accounts import rules as accounts
from handlers.broadcasts import rules as service
from handlers.broadcasts.feature import FEATURE
from storage.repositories import Repos
from tests.harness import Harness


@pytest.fixture
async def h(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("wang", building="3")
    await harness.person("chen", building="8")
    yield harness
    await harness.close()


def copies_horizon() -> timedelta:
    horizon = FEATURE.outbox[service.COPY].gives_up_after
    assert horizon is not None
    return horizon


async def test_copies_expire_after_a_day_of_outage_and_the_report_counts_them(h: Harness) -> None:
    author = await h.user_id("police")

    async def publish(repos: Repos) -> int:
        user = await repos.users.get(author)
        assert user is not None
        return await service.publish(
            repos,
            h.rt.community,
            user,
            kind="police",
            priority=service.URGENT,
            text="今晚有台风，请勿外出",
            audience={"type": "community"},
            now=h.clock.now(),
        )

    h.channel.fail_with = Transient("Bad Gateway (502)")
    broadcast_id = int(await h.repos_do(publish))
    await h.deliver()
    started = h.clock.now()
    while h.clock.now() - started <= copies_horizon():
        await h.wait(timedelta(minutes=30))
    counted = await h.repos_do(lambda r: r.broadcasts.figures(broadcast_id))
    assert (counted.expired, counted.pending, counted.failed, counted.delivered) == (2, 0, 0, 0)

    # The platform is back: the author's report (a kind that waits longer) arrives and says so.
    h.channel.fail_with = None
    await h.wait(timedelta(minutes=1))
    assert h.channel.to("wang") == [] and h.channel.to("chen") == []
    [report] = h.channel.to("police")
    assert "broadcast.report_expired" in report.text.split("\n")
    said = await h.press("police", f"v1:bc:info:{broadcast_id}")
    assert "broadcast.report_expired" in said[0].split("\n")
