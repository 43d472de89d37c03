"""The weekly digest: its figures on a known week, the chart, and its schedule across restarts.

The clock starts on Monday 2026-05-18 at 09:00 in Shanghai. The digest is due on
Mondays at 08:00 local (the defaults), so the first one covers
[2026-05-18 08:00, 2026-05-25 08:00) local, i.e. from START below for 7 days.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers.accounts import rules as accounts
from handlers.digest import rules as digest
from handlers.digest import views as digest_views
from handlers.messages import Lines, Text, Verbatim
from storage import schema as t
from storage.repositories import Repos
from tests.harness import POLICE_GROUP, Harness

START = datetime(2026, 5, 18, 0, 0, tzinfo=UTC)
DUE = START + timedelta(days=7)


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("police", accounts.POLICE, building=None)
    for name in ("wang", "li", "zhao"):
        await harness.person(name, accounts.VOLUNTEER, building="3")
    await harness.person("chen", building="8")
    yield harness
    await harness.close()


async def add_report(
    bot: Harness,
    number: int,
    grid: str | None,
    state: str,
    created: timedelta,
    closed: timedelta | None = None,
    *,
    rating: int | None = None,
    urgency: str = "normal",
) -> None:
    """A report filed at START + created (and closed at START + closed), as if it had been handled."""
    reporter = await bot.user_id("chen")

    async def insert(repos: Repos) -> None:
        await repos.reports.create(
            ticket=f"2026-{number:04d}",
            reporter_id=reporter,
            category="fire",
            urgency=urgency,
            description="楼道堆放杂物",
            grid_key=grid,
            anonymous=False,
            state=state,
            rating=rating,
            created_at=START + created,
            updated_at=START + (closed or created),
            closed_at=START + closed if closed is not None else None,
        )

    await bot.repos_do(insert)


async def add_shift(bot: Harness, starts: timedelta, places: int, state: str = "scheduled") -> int:
    police = await bot.user_id("police")

    async def insert(repos: Repos) -> int:
        shift = await repos.patrols.add_shift(
            START,
            area="南门至 3 号楼",
            starts_at=START + starts,
            ends_at=START + starts + timedelta(hours=2),
            meeting_lat=31.2304,
            meeting_lon=121.4737,
            min_volunteers=1,
            max_volunteers=places,
            state=state,
            created_by=police,
        )
        assert shift is not None
        return shift.id

    return await bot.repos_do(insert)


async def add_signup(bot: Harness, shift_id: int, who: str, state: str, minutes: int | None) -> None:
    user_id = await bot.user_id(who)

    async def insert(repos: Repos) -> None:
        await repos.connection.execute(
            t.patrol_signups.insert().values(
                shift_id=shift_id,
                user_id=user_id,
                state=state,
                created_at=START,
                updated_at=START,
                minutes_worked=minutes,
            )
        )

    await bot.repos_do(insert)


async def credit(bot: Harness, who: str, points: int, at: timedelta, key: str) -> int:
    user_id = await bot.user_id(who)
    entry = await bot.repos_do(
        lambda r: r.ledger.credit_user(
            user_id, points, key, "points.reason.award", {"reason": "x"}, None, START + at
        )
    )
    assert entry is not None
    return int(entry)


async def known_week(bot: Harness) -> None:
    hour, day = timedelta(hours=1), timedelta(days=1)
    await add_report(bot, 1, "g1", "resolved", hour, 5 * hour, rating=5)  # closed in 4 h
    await add_report(bot, 2, "g1", "rejected", 2 * hour, 4 * hour)  # 2 h
    await add_report(bot, 3, "g1", "submitted", 3 * hour, urgency="urgent")  # overdue
    await add_report(bot, 4, "g2", "resolved", day, day + 10 * hour, rating=3)  # 10 h
    await add_report(bot, 5, "g2", "in_progress", 2 * day)
    await add_report(bot, 6, None, "duplicate", 3 * day, 3 * day + hour)  # 1 h
    # Filed before the week, closed in it: counts as closed (73 h), not as opened.
    await add_report(bot, 7, "g1", "resolved", -3 * day, hour, rating=4)
    await add_report(bot, 8, "g2", "submitted", -2 * day)  # open and overdue
    await add_report(bot, 9, "g2", "resolved", -5 * day, -day, rating=1)  # closed before the week

    shift = await add_shift(bot, day + 11 * hour, places=4)
    await add_signup(bot, shift, "wang", "confirmed", 120)
    await add_signup(bot, shift, "li", "confirmed", 90)
    await add_signup(bot, shift, "zhao", "cancelled", None)
    cancelled = await add_shift(bot, 2 * day, places=2, state="cancelled")
    await add_signup(bot, cancelled, "wang", "confirmed", 60)
    quiet = await add_shift(bot, 3 * day, places=2)
    await add_signup(bot, quiet, "zhao", "confirmed", 0)

    await credit(bot, "wang", 10, hour, "test:1")
    await credit(bot, "wang", 5, 3 * hour, "test:2")
    wrong = await credit(bot, "li", 30, 2 * hour, "test:3")
    await bot.repos_do(
        lambda r: r.ledger.reverse(wrong, "points.reason.award_revoked", {}, None, START + 4 * hour)
    )
    await credit(bot, "li", 20, 5 * hour, "test:4")
    await credit(bot, "chen", 50, -hour, "test:5")  # before the week
    zhao = await bot.user_id("zhao")
    await bot.repos_do(lambda r: r.users.update(zhao, leaderboard_opt_out=True))
    await credit(bot, "zhao", 100, day, "test:6")


async def test_the_figures_of_a_known_week(bot: Harness) -> None:
    await known_week(bot)
    community = bot.rt.community
    now = DUE + timedelta(seconds=15)
    figures = await bot.repos_do(lambda r: digest.collect(r, community, START, DUE, now))

    assert [(g.grid_key, g.opened, g.closed) for g in figures.grids] == [
        ("g1", 3, 3),
        ("g2", 2, 1),
        (None, 1, 1),
    ]
    assert figures.grids[0].states == {"resolved": 1, "rejected": 1, "submitted": 1}
    assert (figures.opened, figures.opened_and_closed, figures.closed) == (6, 4, 5)
    assert figures.closure_rate == pytest.approx(4 / 6)
    assert figures.median_to_close == timedelta(hours=4)  # of 1, 2, 4, 10 and 73 hours
    assert (figures.open_now, figures.overdue_now) == (3, 2)
    assert (figures.rating_average, figures.ratings) == (pytest.approx(4.0), 3)
    assert (figures.patrol_minutes, figures.patrol_confirmed, figures.patrol_places) == (210, 3, 6)
    assert figures.fill_rate == pytest.approx(0.5)
    assert [(e.display_name, e.points) for e in figures.top] == [("li", 20), ("wang", 15)]

    shown = digest_views.digest_text(community, figures).params
    assert shown["closure"] == Text("digest.closure_rate", {"rate": "67%", "closed": 4, "opened": 6})
    assert shown["median"] == Text("digest.hours", {"hours": "4"})
    assert shown["satisfaction"] == Text("digest.rating", {"average": "4", "count": 3})
    assert shown["patrols"].params == {"hours": "3.5", "fill": "50%", "confirmed": 3, "places": 6}
    assert isinstance(shown["top"], Lines) and len(shown["top"].items) == 2

    chart = digest_views.chart_of(community, figures)
    assert chart.categories == (Verbatim("第一网格"), Verbatim("第二网格"), Text("digest.no_grid"))
    assert chart.category_keys == ("g1", "g2", "-")
    assert chart.title == Lines((Text("digest.chart_title"), Verbatim("2026-05-18 08:00 – 2026-05-25 08:00")))
    assert [(s.label.key, s.values) for s in chart.series] == [
        ("state.submitted", (1, 0, 0)),
        ("state.in_progress", (0, 1, 0)),
        ("state.resolved", (1, 1, 0)),
        ("state.rejected", (1, 0, 0)),
        ("state.duplicate", (0, 0, 1)),
    ]


async def test_an_empty_week_says_so(bot: Harness) -> None:
    community = bot.rt.community
    figures = await bot.repos_do(lambda r: digest.collect(r, community, START, DUE, DUE))
    # Every grid is listed, quiet ones too.
    assert [(g.grid_key, g.opened, g.closed) for g in figures.grids] == [("g1", 0, 0), ("g2", 0, 0)]
    assert figures.closure_rate is None and figures.fill_rate is None and figures.median_to_close is None
    shown = digest_views.digest_text(community, figures).params
    assert shown["closure"] == Text("digest.not_applicable")
    assert shown["satisfaction"] == Text("digest.no_ratings")
    assert shown["patrols"] == Text("digest.no_patrols")
    assert shown["top"] == Text("digest.nobody")
    assert digest_views.chart_of(community, figures).series == ()


async def test_the_digest_goes_to_the_police_group_once_with_its_chart(bot: Harness) -> None:
    await known_week(bot)
    schedule = await bot.repos_do(lambda r: r.schedules.get(digest.DIGEST, "2026-W22"))
    assert schedule is not None and schedule.due_at == DUE and schedule.state == "pending"
    before = len(bot.channel.to(POLICE_GROUP))

    await bot.wait(DUE - bot.clock.now() - timedelta(minutes=1))
    assert len(bot.channel.to(POLICE_GROUP)) == before
    await bot.wait(timedelta(minutes=2))
    [posted] = bot.channel.to(POLICE_GROUP)[before:]
    # The chart is drawn when the message goes out, as its photo.
    assert (posted.text, posted.photos) == ("digest.text", 1)
    shown = await last_police_payload(bot)
    assert shown["opened"] == 6 and shown["closed"] == 5 and shown["overdue_now"] == 2

    # Next week's is armed; a restart neither re-sends this one nor arms another.
    following = await bot.repos_do(lambda r: r.schedules.get(digest.DIGEST, "2026-W23"))
    assert following is not None and following.due_at == DUE + timedelta(days=7)
    await bot.restart()
    await bot.wait(timedelta(hours=1))
    assert len(digests(bot)) == 1


async def test_chats_are_answered_while_the_digest_reads_its_figures(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digest scans history in a read-only unit of work of its own: chats do not wait for it."""
    await known_week(bot)
    reading, release = asyncio.Event(), asyncio.Event()
    collect = digest.collect

    async def held_open(*args: Any) -> digest.Figures:
        reading.set()
        await release.wait()  # the digest's read-only transaction stays open meanwhile
        return await collect(*args)

    monkeypatch.setattr(digest, "collect", held_open)
    bot.clock.advance(DUE - bot.clock.now() + timedelta(minutes=1))
    firing = asyncio.create_task(bot.rt.engine.fire_due())
    await asyncio.wait_for(reading.wait(), 10)

    # A resident asks for help, and is answered, while the digest is still reading.
    assert await asyncio.wait_for(bot.say("chen", "/help"), 10) == ["help.text"]
    assert not firing.done()

    release.set()
    await firing
    await bot.deliver()
    assert len(digests(bot)) == 1


async def last_police_payload(bot: Harness) -> dict[str, Any]:
    rows = await bot.repos_do(lambda r: r.outbox.all())
    row = next(
        row
        for row in reversed(rows)
        if row.chat_id == POLICE_GROUP and row.payload.get("text", {}).get("$t") == "digest.text"
    )
    return dict(row.payload["text"]["p"])


def digests(bot: Harness) -> list[Any]:
    return [sent for sent in bot.channel.to(POLICE_GROUP) if sent.text == "digest.text"]


async def test_a_digest_due_while_the_bot_was_down(bot: Harness) -> None:
    # Down over Monday morning: the digest goes out at start-up, for the week it was due.
    bot.clock.set(DUE + timedelta(hours=5))
    await bot.restart()
    await bot.rt.engine.fire_due()
    await bot.deliver()
    [late] = digests(bot)
    assert late.photos == 1
    assert (await last_police_payload(bot))["start"] == {"$when": START.isoformat()}
    # Down for more than a week: one digest at start-up, of the latest week, not of a stale one.
    bot.clock.set(DUE + timedelta(days=14, hours=1))
    await bot.restart()
    await bot.rt.engine.fire_due()
    await bot.deliver()
    assert len(digests(bot)) == 2
    assert (await last_police_payload(bot))["start"] == {"$when": (START + timedelta(days=14)).isoformat()}
    upcoming = await bot.repos_do(lambda r: r.schedules.get(digest.DIGEST, "2026-W25"))
    assert upcoming is not None and upcoming.state == "pending"
    assert upcoming.due_at == DUE + timedelta(days=21)
    await bot.restart()
    await bot.wait(timedelta(hours=1))
    assert len(digests(bot)) == 2


async def test_a_new_digest_day_or_time_replaces_the_armed_digest_at_start_up(bot: Harness) -> None:
    community = bot.rt.community

    def moved(weekday: int, at: str) -> Any:
        settings = community.broadcasts.model_copy(update={"digest_weekday": weekday, "digest_time": at})
        return community.model_copy(update={"broadcasts": settings})

    # Next Monday half an hour later: the armed digest (same week) is re-timed.
    await bot.rt.close()
    await bot.start(moved(1, "08:30"))
    armed = await bot.repos_do(lambda r: r.schedules.pending_of(digest.DIGEST))
    assert [(s.ref, s.due_at) for s in armed] == [("2026-W22", DUE + timedelta(minutes=30))]
    # Saturday evening instead: Monday's is cancelled, this Saturday's armed.
    await bot.rt.close()
    await bot.start(moved(6, "18:30"))
    saturday = datetime(2026, 5, 23, 10, 30, tzinfo=UTC)
    armed = await bot.repos_do(lambda r: r.schedules.pending_of(digest.DIGEST))
    assert [(s.ref, s.due_at) for s in armed] == [("2026-W21", saturday)]
    monday = await bot.repos_do(lambda r: r.schedules.get(digest.DIGEST, "2026-W22"))
    assert monday is not None and monday.state == "cancelled"

    await bot.wait(DUE + timedelta(hours=3) - bot.clock.now())
    assert len(digests(bot)) == 1  # Saturday's, and none on the old Monday


def test_when_the_digest_is_due() -> None:
    from tests.harness import test_community

    community = test_community()
    monday_9am = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)
    assert digest.due_after(community, monday_9am) == DUE
    assert digest.due_after(community, DUE - timedelta(seconds=1)) == DUE
    assert digest.due_after(community, DUE) == DUE + timedelta(days=7)
    saturday = community.model_copy(
        update={
            "broadcasts": community.broadcasts.model_copy(
                update={"digest_weekday": 6, "digest_time": "18:30"}
            )
        }
    )
    assert digest.due_after(saturday, monday_9am) == datetime(2026, 5, 23, 10, 30, tzinfo=UTC)
    assert digest.week_ref(community, datetime(2026, 1, 1, tzinfo=UTC)) == "2026-W01"
    assert digest.week_ref(community, datetime(2027, 1, 3, tzinfo=UTC)) == "2026-W53"
