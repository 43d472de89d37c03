"""/leaderboard: this month or all time, community or grid, one's own rank, and opting out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from handlers.messages import Lines, Text
from tests.handlers.timebank.timebank_support import give_points
from tests.harness import Harness

APRIL = datetime(2026, 4, 10, 4, 0, tzinfo=UTC)


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    yield harness
    await harness.close()


def board(bot: Harness) -> Lines:
    text = bot.last.replies[0].text
    assert isinstance(text, Lines)
    return text


def names(bot: Harness) -> list[tuple[str, int]]:
    return [
        (bot.render(line.params["name"]), line.params["points"])
        for line in board(bot).items
        if line.key in ("leaderboard.line", "leaderboard.line_me")
    ]


def last_line(bot: Harness) -> Text:
    return board(bot).items[-1]


async def test_top_ten_and_ones_own_rank_below_them(bot: Harness) -> None:
    for n in range(12):
        await bot.person(f"p{n:02d}", building="3" if n % 2 else "8")
        await give_points(bot, f"p{n:02d}", 100 - n, f"award:{n}")
    await bot.person("wang", building="3")
    await give_points(bot, "wang", 5, "award:wang")
    await bot.person("newcomer", building="3")

    assert await bot.say("wang", "/leaderboard") == [
        "leaderboard.header\n" + "\n".join(["leaderboard.line"] * 10) + "\nleaderboard.your_rank"
    ]
    assert names(bot)[:3] == [("p00", 100), ("p01", 99), ("p02", 98)]
    assert len(names(bot)) == 10
    assert last_line(bot).params == {"rank": 13, "points": 5}
    header = board(bot).items[0]
    assert header.params["period"].key == "leaderboard.this_month"
    assert bot.render(header.params["scope"]) == bot.rt.community.name
    assert bot.actions() == [
        "v1:lb:show:m:c",
        "v1:lb:show:a:c",
        "v1:lb:show:m:c",
        "v1:lb:show:m:g",
        "v1:lb:opt:out:m:c",
    ]

    # The grid's board: only its residents (buildings 1-6 are grid g1).
    await bot.press("wang", "v1:lb:show:m:g")
    assert [name for name, _ in names(bot)] == ["p01", "p03", "p05", "p07", "p09", "p11", "wang"]
    assert board(bot).items[-1].key == "leaderboard.line_me"
    assert bot.render(board(bot).items[0].params["scope"]) == "第一网格"

    # Someone who earned nothing is simply not ranked.
    await bot.say("newcomer", "/leaderboard")
    assert last_line(bot).key == "leaderboard.line"


async def test_this_month_and_all_time_differ(bot: Harness) -> None:
    await bot.person("wang", building="3")
    await bot.person("chen", building="8")
    await give_points(bot, "wang", 50, "award:april", when=APRIL)
    await give_points(bot, "chen", 10, "award:may")

    await bot.say("wang", "/leaderboard")
    assert names(bot) == [("chen", 10)]
    await bot.press("wang", "v1:lb:show:a:c")
    assert names(bot) == [("wang", 50), ("chen", 10)]
    assert board(bot).items[0].params["period"].key == "leaderboard.all_time"

    # Nobody yet on a board: said so.
    await bot.person("li", building="3")
    await bot.say("li", "/leaderboard")
    await bot.press("li", "v1:lb:show:m:g")
    assert last_line(bot).key == "leaderboard.empty"


async def test_opting_out_hides_a_person_from_every_board(bot: Harness) -> None:
    await bot.person("wang", building="3")
    await bot.person("chen", building="3")
    await give_points(bot, "wang", 30, "award:w")
    await give_points(bot, "chen", 20, "award:c")

    await bot.press("wang", "v1:lb:opt:out:m:g")
    assert bot.notice() == "leaderboard.opted_out"
    assert names(bot) == [("chen", 20)]
    assert last_line(bot).key == "leaderboard.you_are_hidden"
    assert bot.actions()[-1] == "v1:lb:opt:in:m:g"
    wang = await bot.user_id("wang")
    assert (await bot.repos_do(lambda r: r.users.get(wang))).leaderboard_opt_out

    for scope in ("v1:lb:show:m:c", "v1:lb:show:a:c", "v1:lb:show:a:g"):
        await bot.press("chen", scope)
        assert names(bot) == [("chen", 20)]

    # Hidden, not robbed: the points are still there to redeem.
    assert await bot.repos_do(lambda r: r.ledger.balance(wang)) == 30

    await bot.press("wang", "v1:lb:opt:in:m:c")
    assert bot.notice() == "leaderboard.opted_in"
    assert names(bot) == [("wang", 30), ("chen", 20)]
    assert await bot.press("wang", "v1:lb:show:x:c") == ["error.stale_button"]
