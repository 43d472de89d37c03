"""Monthly honours: decided and posted once on the 1st, across restarts, from known patrols and points."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handlers.accounts import rules as accounts
from handlers.community import Community, PoliceGroups
from handlers.timebank import rules as bank
from tests import harness as driver
from tests.handlers.timebank.timebank_support import RESIDENT_GROUP, give_points, patrolled
from tests.harness import POLICE_GROUP, Harness

# 2026-06-01 09:00 in Shanghai: when May's honours are due (honours_time 09:00).
MAY_HONOURS_DUE = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)


def community_with_groups() -> Community:
    community = driver.test_community()
    return community.model_copy(update={"resident_groups": PoliceGroups(console=[RESIDENT_GROUP])})


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start(community_with_groups())
    await harness.person("police", accounts.POLICE, building=None)
    yield harness
    await harness.close()


def texts(bot: Harness, chat: str) -> list[str]:
    """What the chat received of the honours (other features post to the groups too)."""
    return [sent.text for sent in bot.channel.to(chat) if sent.text.startswith("honours.")]


async def test_honours_are_posted_once_on_the_first_across_restarts(bot: Harness) -> None:
    for who in ("zhao", "qian", "sun", "li", "zhou", "hidden"):
        await bot.person(who, accounts.VOLUNTEER)
    await bot.person("quiet")
    may_evening = datetime(2026, 5, 20, 11, 0, tzinfo=UTC)
    await patrolled(bot, may_evening, {"zhao": 120, "qian": 90, "hidden": 120})
    await patrolled(bot, may_evening + timedelta(days=2), {"qian": 60})
    # April's patrol and points count for April, not May.
    await patrolled(bot, datetime(2026, 4, 20, 11, 0, tzinfo=UTC), {"sun": 600})
    await give_points(bot, "sun", 500, "award:april", when=datetime(2026, 4, 20, tzinfo=UTC))
    for who, points in (("li", 40), ("zhou", 70), ("zhao", 20), ("qian", 40), ("hidden", 999)):
        await give_points(bot, who, points, f"award:{who}")
    hidden = await bot.user_id("hidden")
    await bot.repos_do(lambda r: r.users.update(hidden, leaderboard_opt_out=True))

    # Armed at start-up for this month, due on the 1st at 09:00 local time.
    schedule = await bot.repos_do(lambda r: r.schedules.get(bank.HONOURS, "2026-05"))
    assert (schedule.state, schedule.due_at) == ("pending", MAY_HONOURS_DUE)

    # Other features fire their own schedules meanwhile: what counts is what the groups receive.
    await bot.restart()
    await bot.wait(MAY_HONOURS_DUE - bot.clock.now() - timedelta(minutes=1))
    assert texts(bot, RESIDENT_GROUP) == []
    await bot.restart()
    await bot.wait(timedelta(minutes=2))

    assert texts(bot, RESIDENT_GROUP) == ["honours.post"]
    assert texts(bot, POLICE_GROUP) == ["honours.post"]
    honours = await bot.repos_do(lambda r: r.rewards.honours("2026-05"))
    ids = {await bot.user_id(who): who for who in ("zhao", "qian", "zhou", "li")}
    assert [(h.kind, h.rank, ids[h.user_id], h.score) for h in honours] == [
        ("guardian", 1, "qian", 150),
        ("outstanding_volunteer", 1, "zhou", 70),
        # A tie goes to who joined first, as on the leaderboard.
        ("outstanding_volunteer", 2, "qian", 40),
        ("outstanding_volunteer", 3, "li", 40),
    ]
    assert texts(bot, "qian") == ["honours.you_guardian", "honours.you_volunteer"]
    assert texts(bot, "zhou") == ["honours.you_volunteer"]
    assert texts(bot, "hidden") == texts(bot, "zhao") == texts(bot, "quiet") == []

    # Restarted after firing: not posted again, and next month's are armed.
    await bot.restart()
    await bot.wait(timedelta(days=3))
    assert texts(bot, RESIDENT_GROUP) == ["honours.post"]
    june = await bot.repos_do(lambda r: r.schedules.get(bank.HONOURS, "2026-06"))
    assert (june.state, june.due_at) == ("pending", datetime(2026, 7, 1, 1, 0, tzinfo=UTC))
    assert (await bot.repos_do(lambda r: r.schedules.get(bank.HONOURS, "2026-05"))).state == "done"


async def test_a_month_without_anyone_to_honour_tells_only_the_police(bot: Harness) -> None:
    await bot.wait(MAY_HONOURS_DUE - bot.clock.now())
    assert texts(bot, RESIDENT_GROUP) == []
    assert texts(bot, POLICE_GROUP) == ["honours.none"]
    assert await bot.repos_do(lambda r: r.rewards.honours("2026-05")) == []


async def test_honours_missed_while_the_bot_was_down_fire_once_on_start(bot: Harness) -> None:
    await bot.person("zhao", accounts.VOLUNTEER)
    await give_points(bot, "zhao", 10, "award:z")
    await bot.rt.close()
    bot.clock.set(datetime(2026, 6, 3, 2, 0, tzinfo=UTC))
    await bot.start(community_with_groups())
    await bot.wait(timedelta(seconds=15))
    await bot.restart()
    await bot.wait(timedelta(seconds=15))
    assert texts(bot, RESIDENT_GROUP) == ["honours.post"]
    assert texts(bot, "zhao") == ["honours.you_volunteer"]


def test_the_honours_calendar_follows_the_community_time_zone() -> None:
    community = community_with_groups()
    assert bank.honours_due(community, "2026-12") == datetime(2027, 1, 1, 1, 0, tzinfo=UTC)
    assert bank.next_period("2026-12") == "2027-01"
    assert bank.previous_period("2027-01") == "2026-12"
    start, end = bank.month_bounds("2026-05", community.tz)
    assert (start, end) == (
        datetime(2026, 4, 30, 16, 0, tzinfo=UTC),
        datetime(2026, 5, 31, 16, 0, tzinfo=UTC),
    )
