"""Patrol check-in and check-out by location, hours and points, closing, the patrol log and /patrolstats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handlers.accounts import rules as accounts
from handlers.attendance import closing
from handlers.attendance import rules as service
from handlers.messages import Incoming, Location
from storage.attendance import Attendance
from storage.repositories import Repos
from tests.handlers.attendance.patrol_fixtures import (
    add_shift,
    cancel_shift,
    ledger_entries_for,
    link_report,
    north_of_meeting,
    sign_up,
)
from tests.harness import CHANNEL, POLICE_GROUP, Harness

# The harness clock starts at 2026-05-18 01:00 UTC (09:00 in Shanghai); the shift runs 10:00-12:00 local.
START = datetime(2026, 5, 18, 2, 0, tzinfo=UTC)
END = START + timedelta(minutes=120)


@dataclass
class Patrol:
    shift: int
    wang: int
    li: int
    leader: int
    police: int


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("leader", accounts.VOLUNTEER, building="1")
    await harness.person("wang", accounts.VOLUNTEER, building="3")
    await harness.person("li", accounts.VOLUNTEER, building="8")
    await harness.person("zhao", accounts.RESIDENT, building="5")
    await harness.person("worker", accounts.GRID_WORKER, grids=("g1",), building=None)
    yield harness
    await harness.close()


@pytest.fixture
async def patrol(bot: Harness) -> Patrol:
    police, leader = await bot.user_id("police"), await bot.user_id("leader")
    wang, li = await bot.user_id("wang"), await bot.user_id("li")
    shift = await add_shift(bot, START, created_by=police, leader_id=leader, max_volunteers=4)
    await sign_up(bot, shift, leader)
    await sign_up(bot, shift, wang)
    await sign_up(bot, shift, li)
    return Patrol(shift, wang, li, leader, police)


async def signup_of(bot: Harness, shift_id: int, user_id: int) -> Attendance:
    async def find(repos: Repos) -> Attendance:
        for line in await repos.attendance.roster(shift_id):
            if line.signup.user_id == user_id:
                found = await repos.attendance.get(line.signup.id)
                assert found is not None
                return found
        raise AssertionError(f"user {user_id} has no confirmed place on shift {shift_id}")

    return await bot.repos_do(find)


async def at_meeting(bot: Harness, who: str, metres: float = 50) -> list[str]:
    return await bot.location(who, *north_of_meeting(metres))


async def live(bot: Harness, who: str, metres: float) -> list[str]:
    lat, lon = north_of_meeting(metres)
    return await bot.send(who, location=Location(lat, lon), live=True)


async def checked_in(bot: Harness, who: str, minutes_before_start: int = 10) -> None:
    bot.clock.set(START - timedelta(minutes=minutes_before_start))
    assert await bot.say(who, "/checkin") == ["attendance.ask_checkin_location"]
    assert await at_meeting(bot, who) == ["attendance.checked_in"]


async def balance(bot: Harness, user_id: int) -> int:
    return await bot.repos_do(lambda r: r.ledger.balance(user_id))


# --- checking in -----------------------------------------------------------------------------


async def test_check_in_within_the_radius(bot: Harness, patrol: Patrol) -> None:
    bot.clock.set(START - timedelta(minutes=10))
    assert await bot.say("wang", "/checkin") == ["attendance.ask_checkin_location"]
    assert bot.last.replies[0].keyboard == "location"
    assert bot.last.replies[0].text.params["radius"] == 300
    assert await at_meeting(bot, "wang", 120) == ["attendance.checked_in"]
    # Straight from the patrol to a hazard report.
    assert bot.actions() == [f"v1:att:rpt:{patrol.shift}"]
    found = await signup_of(bot, patrol.shift, patrol.wang)
    assert found.signup.checked_in_at == bot.clock.now()
    assert (found.signup.checkin_method, found.signup.checkin_confirmed_by) == ("location", None)

    assert await bot.say("wang", "/checkin") == ["attendance.already_checked_in"]
    assert await bot.press("wang", f"v1:att:rpt:{patrol.shift}") == ["report.intro\nreport.ask_category"]


async def test_outside_the_radius_then_a_live_location_arrives(bot: Harness, patrol: Patrol) -> None:
    bot.clock.set(START)
    await bot.say("wang", "/checkin")
    assert await at_meeting(bot, "wang", 800) == ["attendance.too_far"]
    said = bot.last.replies[0].text.params
    assert 795 <= said["distance"] <= 805 and said["radius"] == 300
    signup = (await signup_of(bot, patrol.shift, patrol.wang)).signup
    assert bot.actions() == [f"v1:att:ask:in:{signup.id}"]

    # Typing instead of sharing a location: a polite explanation and the question again.
    assert await bot.say("wang", "我到了") == [
        "attendance.location_needed",
        "attendance.ask_checkin_location",
    ]
    # Walking towards the meeting point with a live location: quiet until close enough.
    assert await live(bot, "wang", 600) == []
    assert await live(bot, "wang", 350) == []
    assert (await signup_of(bot, patrol.shift, patrol.wang)).signup.checked_in_at is None
    assert await live(bot, "wang", 200) == ["attendance.checked_in"]
    assert (await signup_of(bot, patrol.shift, patrol.wang)).signup.checked_in_at == START
    # The flow is over: further updates of the live location are not answered.
    assert await live(bot, "wang", 10) == []


async def test_check_in_outside_the_window_or_without_a_sign_up(bot: Harness, patrol: Patrol) -> None:
    bot.clock.set(START - timedelta(minutes=16))
    assert await bot.say("wang", "/checkin") == ["attendance.too_early"]
    said = bot.last.replies[0].text.params
    assert (said["starts"].at, said["opens"].at) == (START, START - timedelta(minutes=15))
    bot.clock.set(START - timedelta(minutes=15))
    assert await bot.say("wang", "/checkin") == ["attendance.ask_checkin_location"]

    assert await bot.say("zhao", "/checkin") == ["attendance.no_shift"]
    assert await bot.say("li", "/checkout") == ["attendance.not_checked_in"]

    # Nobody waits for a location for ever: the idle draft is put aside, and Wang is told.
    await bot.wait(timedelta(minutes=31))
    assert bot.channel.to("wang")[-1].text == "attendance.expired"

    bot.clock.set(END - timedelta(minutes=5))
    assert await bot.say("wang", "/checkin") == ["attendance.ask_checkin_location"]
    bot.clock.set(END)
    # The check-in waiting for Wang cannot succeed any more: told once, and the wait is over.
    assert await at_meeting(bot, "wang") == ["attendance.shift_ended"]
    assert await at_meeting(bot, "wang") == ["help.hint"]
    await bot.wait(timedelta(minutes=1))
    assert await bot.say("li", "/checkin") == ["attendance.shift_ended"]
    assert bot.last.replies[0].text.params["ended"].at == END


async def test_a_cancelled_shift_is_neither_checked_in_to_nor_closed(bot: Harness, patrol: Patrol) -> None:
    bot.clock.set(START)
    await bot.say("wang", "/checkin")
    await cancel_shift(bot, patrol.shift)
    assert await at_meeting(bot, "wang") == ["attendance.shift_cancelled"]
    assert await bot.say("li", "/checkin") == ["attendance.no_shift"]
    await bot.wait(timedelta(hours=3))
    shift = await bot.repos_do(lambda r: r.patrols.shift(patrol.shift))
    assert shift.closed_at is None
    assert bot.channel.to(POLICE_GROUP) == []
    assert not (await signup_of(bot, patrol.shift, patrol.li)).signup.no_show


# --- confirming by hand ---------------------------------------------------------------------


async def test_the_leader_confirms_a_check_in_and_a_stranger_cannot(bot: Harness, patrol: Patrol) -> None:
    bot.clock.set(START + timedelta(minutes=5))
    await bot.say("wang", "/checkin")
    await at_meeting(bot, "wang", 900)
    signup = (await signup_of(bot, patrol.shift, patrol.wang)).signup
    assert await bot.press("wang", f"v1:att:ask:in:{signup.id}") == ["attendance.asked_leader"]
    [request] = bot.channel.to("leader")
    assert request.text == "attendance.confirm_request_in"
    assert [action for _, action in request.buttons] == [f"v1:att:cin:{signup.id}"]

    for stranger in ("zhao", "li", "worker", "wang"):
        assert await bot.press(stranger, f"v1:att:cin:{signup.id}") == ["error.not_allowed"], stranger
    assert (await signup_of(bot, patrol.shift, patrol.wang)).signup.checked_in_at is None

    assert await bot.press("leader", f"v1:att:cin:{signup.id}") == ["attendance.hand_checked_in"]
    assert bot.notice() == "attendance.hand_checked_in"
    found = (await signup_of(bot, patrol.shift, patrol.wang)).signup
    assert (found.checkin_method, found.checkin_confirmed_by) == ("manual", patrol.leader)
    assert bot.channel.to("wang")[-1].text == "attendance.checked_in_by_hand"
    # Wang no longer waits for a location, and a second confirmation changes nothing.
    assert await at_meeting(bot, "wang", 900) == ["help.hint"]
    assert await bot.press("leader", f"v1:att:cin:{signup.id}") == ["attendance.hand_already_in"]
    assert await bot.press("police", f"v1:att:cin:{signup.id}") == ["attendance.hand_already_in"]


async def test_without_a_leader_the_police_group_confirms(bot: Harness) -> None:
    police, li = await bot.user_id("police"), await bot.user_id("li")
    shift = await add_shift(bot, START, created_by=police)
    signup = await sign_up(bot, shift, li)
    bot.clock.set(START)
    await bot.say("li", "/checkin")
    assert await bot.press("li", f"v1:att:ask:in:{signup}") == ["attendance.asked_police"]
    assert bot.channel.to(POLICE_GROUP)[-1].text == "attendance.confirm_request_in"
    await bot.press("police", f"v1:att:cin:{signup}", group=True)
    assert bot.notice() == "attendance.hand_checked_in"
    assert (await signup_of(bot, shift, li)).signup.checkin_confirmed_by == police

    bot.clock.set(START + timedelta(minutes=45))
    assert await bot.say("li", "/checkout") == ["attendance.ask_checkout_location"]
    assert await bot.press("li", f"v1:att:ask:out:{signup}") == ["attendance.asked_police"]
    assert await bot.press("police", f"v1:att:cout:{signup}") == ["attendance.hand_checked_out"]
    assert bot.last.replies[0].text.params["minutes"] == 45
    assert await balance(bot, li) == 45 * 10 // 60
    assert bot.channel.to("li")[-1].text == "attendance.checked_out_by_hand"


# --- checking out, hours and points -------------------------------------------------------------


async def test_check_out_clips_hours_to_the_shift_and_credits_points(bot: Harness, patrol: Patrol) -> None:
    await checked_in(bot, "wang", minutes_before_start=12)
    bot.clock.set(START + timedelta(minutes=90))
    assert await bot.say("wang", "/checkout") == ["attendance.ask_checkout_location"]
    assert await at_meeting(bot, "wang", 1000) == ["attendance.too_far"]
    assert await at_meeting(bot, "wang", 100) == ["attendance.checked_out"]
    said = bot.last.replies[0].text.params
    # Arriving 12 minutes early does not count: 90 minutes from the start, 10 points an hour.
    assert (said["minutes"], said["points"]) == (90, 15)
    found = (await signup_of(bot, patrol.shift, patrol.wang)).signup
    assert (found.minutes_worked, found.checkout_method, found.flagged) == (90, "location", False)
    assert await balance(bot, patrol.wang) == 15
    assert await bot.say("wang", "/checkout") == ["attendance.already_checked_out"]

    assert await bot.say("wang", "/points") == ["points.summary"]
    [line] = bot.last.replies[0].text.params["lines"].items
    assert line.params["reason"].key == "points.reason.patrol"
    assert line.params["reason"].params == {"area": "北门巡逻", "date": "2026-05-18", "minutes": 90}

    # Staying past the end counts up to the end only.
    await checked_in(bot, "li")
    bot.clock.set(END + timedelta(minutes=30))  # the closing job has not run yet
    await bot.say("li", "/checkout")
    assert await at_meeting(bot, "li") == ["attendance.checked_out"]
    assert bot.last.replies[0].text.params["minutes"] == 120
    assert await balance(bot, patrol.li) == 20
    assert await bot.repos_do(lambda r: r.ledger.verify())


async def test_a_forgotten_check_out_is_closed_at_the_end_flagged_and_credited_once(
    bot: Harness, patrol: Patrol
) -> None:
    await checked_in(bot, "wang")
    await bot.restart()
    await bot.wait(END - bot.clock.now() + timedelta(seconds=15))

    found = (await signup_of(bot, patrol.shift, patrol.wang)).signup
    assert (found.checked_out_at, found.checkout_method, found.flagged) == (END, "auto", True)
    assert found.minutes_worked == 120
    assert await balance(bot, patrol.wang) == 20
    assert bot.channel.to("wang")[-1].text == "attendance.auto_checked_out"
    # Li and the leader never came.
    for user_id in (patrol.li, patrol.leader):
        assert (await signup_of(bot, patrol.shift, user_id)).signup.no_show
    assert not found.no_show

    [summary] = bot.channel.to(POLICE_GROUP)
    assert summary.text == "attendance.closed_summary"
    signup = found.id
    assert [action for _, action in summary.buttons] == [f"v1:att:keep:{signup}", f"v1:att:void:{signup}"]

    assert await bot.say("wang", "/checkout") == ["attendance.checkout_closed"]
    # Closing happens once, however often it is asked for.
    await bot.restart()
    await bot.wait(timedelta(hours=1))
    again = await bot.repos_do(
        lambda r: closing.close_shift(r, bot.rt.community, patrol.shift, bot.clock.now())
    )
    assert again is False
    assert len(bot.channel.to(POLICE_GROUP)) == 1
    assert await balance(bot, patrol.wang) == 20
    assert await ledger_entries_for(bot, service.checkout_source(signup)) == 1
    assert await bot.repos_do(lambda r: r.ledger.verify())


async def test_police_review_a_flagged_check_out(bot: Harness, patrol: Patrol) -> None:
    await checked_in(bot, "wang")
    await checked_in(bot, "li")
    await bot.wait(END - bot.clock.now() + timedelta(seconds=15))
    wang = (await signup_of(bot, patrol.shift, patrol.wang)).signup.id
    li = (await signup_of(bot, patrol.shift, patrol.li)).signup.id

    assert await bot.press("wang", f"v1:att:keep:{wang}") == ["error.not_allowed"]
    assert await bot.press("leader", f"v1:att:void:{wang}") == ["error.not_allowed"]
    assert await bot.press("police", f"v1:att:void:{wang}") == ["attendance.review_voided"]
    assert await bot.press("police", f"v1:att:keep:{wang}") == ["attendance.review_done"]
    assert await bot.press("police", f"v1:att:void:{wang}") == ["attendance.review_done"]
    found = (await signup_of(bot, patrol.shift, patrol.wang)).signup
    assert (found.flagged, found.minutes_worked) == (False, 0)
    assert await balance(bot, patrol.wang) == 0
    assert bot.channel.to("wang")[-1].text == "attendance.hours_voided"
    [voided] = await bot.repos_do(lambda r: r.audit.entries(action="points.revoke"))
    assert (voided.subject_id, voided.target) == (patrol.wang, f"signup:{wang}")

    assert await bot.press("police", f"v1:att:keep:{li}", group=True) == []
    assert bot.notice() == "attendance.review_kept"
    assert await balance(bot, patrol.li) == 20
    assert await bot.repos_do(lambda r: r.ledger.verify())


async def test_many_check_outs_at_once_credit_once(bot: Harness, patrol: Patrol) -> None:
    await checked_in(bot, "wang")
    assert await bot.say("wang", "/checkout") == ["attendance.ask_checkout_location"]
    # After the end, before the closing job ran: the volunteer, the leader and the job all at once.
    bot.clock.set(END + timedelta(minutes=1))
    signup = (await signup_of(bot, patrol.shift, patrol.wang)).signup.id
    lat, lon = north_of_meeting(30)

    def incoming(who: str, **fields: object) -> Incoming:
        return Incoming(channel=CHANNEL, user_external_id=who, chat_id=who, display_name=who, **fields)

    engine = bot.rt.engine
    answers = await asyncio.gather(
        *(engine.handle(incoming("wang", location=Location(lat, lon))) for _ in range(6)),
        *(engine.handle(incoming("leader", action=f"v1:att:cout:{signup}")) for _ in range(4)),
        *(engine.handle(incoming("police", action=f"v1:att:cout:{signup}")) for _ in range(2)),
    )
    await asyncio.gather(engine.fire_due(), engine.fire_due())
    await bot.deliver()
    said = [bot.render(reply.text) for answer in answers for reply in answer.replies]
    assert "error.internal" not in said
    assert said.count("attendance.checked_out") + said.count("attendance.hand_checked_out") <= 1

    assert await balance(bot, patrol.wang) == 20
    assert await ledger_entries_for(bot, service.checkout_source(signup)) == 1
    assert await bot.repos_do(lambda r: r.ledger.verify())
    found = (await signup_of(bot, patrol.shift, patrol.wang)).signup
    assert found.minutes_worked == 120 and found.checked_out_at is not None


async def test_no_shows_are_marked_and_the_second_one_bans(bot: Harness) -> None:
    police, li = await bot.user_id("police"), await bot.user_id("li")
    first = await add_shift(bot, START, created_by=police)
    second = await add_shift(bot, START + timedelta(hours=3), created_by=police)
    await sign_up(bot, first, li)
    await sign_up(bot, second, li)
    await bot.wait(END - bot.clock.now() + timedelta(seconds=15))
    assert (await signup_of(bot, first, li)).signup.no_show
    assert "patrol.notify.banned" not in [s.text for s in bot.channel.to("li")]
    await bot.wait(timedelta(hours=3))
    assert (await signup_of(bot, second, li)).signup.no_show
    assert [s.text for s in bot.channel.to("li")].count("patrol.notify.banned") == 1

    # Police see the ban in /volunteers as well as in their group, and lift it there.
    assert await bot.say("police", "/volunteers") == ["patrol.desk.banned\npatrol.desk.banned_person"]
    assert bot.last.replies[0].text.items[1].params["count"] == 2
    assert bot.actions() == [f"v1:pat:unban:{li}"]
    await bot.press("police", f"v1:pat:unban:{li}")
    assert bot.notice() == "patrol.ban_lifted"
    assert await bot.say("police", "/volunteers") == ["patrol.desk.empty"]


# --- the patrol log ---------------------------------------------------------------------------


async def test_reports_filed_while_checked_in_belong_to_the_shift(bot: Harness, patrol: Patrol) -> None:
    before = await bot.file_report("wang")
    await checked_in(bot, "wang")
    bot.clock.set(START + timedelta(minutes=20))
    on_patrol = await bot.file_report("wang")
    bot.clock.set(START + timedelta(minutes=60))
    await bot.say("wang", "/checkout")
    await at_meeting(bot, "wang")
    after = await bot.file_report("wang")

    async def shifts(repos: Repos) -> list[int | None]:
        found = [await repos.reports.by_ticket(ticket) for ticket in (before, on_patrol, after)]
        return [report.patrol_shift_id if report else -1 for report in found]

    assert await bot.repos_do(shifts) == [None, patrol.shift, None]


# --- /roster and /patrolstats -------------------------------------------------------------------


async def test_roster_for_the_leader_and_the_police(bot: Harness, patrol: Patrol) -> None:
    await checked_in(bot, "wang")
    assert await bot.say("leader", "/roster") == ["attendance.roster"]
    lines = bot.last.replies[0].text.params["lines"].items
    assert [line.key for line in lines] == [
        "attendance.roster_waiting",
        "attendance.roster_in",
        "attendance.roster_waiting",
    ]
    wang = (await signup_of(bot, patrol.shift, patrol.wang)).signup.id
    li = (await signup_of(bot, patrol.shift, patrol.li)).signup.id
    # The leader confirms others, not themself.
    assert bot.actions() == [f"v1:att:cout:{wang}", f"v1:att:cin:{li}"]
    assert await bot.press("leader", f"v1:att:cin:{li}") == ["attendance.hand_checked_in"]

    assert await bot.say("police", "/roster") == ["attendance.roster"]
    assert len(bot.actions()) == 3
    assert await bot.say("li", "/roster") == ["attendance.roster_not_leader"]
    bot.clock.set(datetime(2026, 5, 19, 2, 0, tzinfo=UTC))
    assert await bot.say("police", "/roster") == ["attendance.roster_none_today"]


async def test_patrol_stats_of_this_month(bot: Harness) -> None:
    police, wang, li, zhao = [await bot.user_id(who) for who in ("police", "wang", "li", "zhao")]
    local = service.local_month(bot.rt.community, bot.clock.now())
    assert local[0] == "2026-05"
    a = await add_shift(bot, datetime(2026, 5, 10, 11, 0, tzinfo=UTC), created_by=police, max_volunteers=4)
    b = await add_shift(bot, datetime(2026, 5, 12, 11, 0, tzinfo=UTC), created_by=police, max_volunteers=2)
    # 00:30 on 1 May in Shanghai is still 30 April in UTC: it belongs to May.
    await add_shift(bot, datetime(2026, 4, 30, 16, 30, tzinfo=UTC), created_by=police, max_volunteers=1)
    # Not counted: 23:30 on 30 April in Shanghai, a cancelled shift, one that has not started.
    old = await add_shift(bot, datetime(2026, 4, 30, 15, 30, tzinfo=UTC), created_by=police)
    cancelled = await add_shift(
        bot, datetime(2026, 5, 14, 11, 0, tzinfo=UTC), created_by=police, state="cancelled"
    )
    later = await add_shift(bot, datetime(2026, 5, 25, 11, 0, tzinfo=UTC), created_by=police)
    worked = {"checked_in_at": datetime(2026, 5, 10, 11, 0, tzinfo=UTC), "checkin_method": "location"}
    await sign_up(bot, a, wang, minutes_worked=120, **worked)
    await sign_up(bot, a, li, minutes_worked=60, **worked)
    await sign_up(bot, a, zhao, no_show=True)
    await sign_up(bot, a, police, state="cancelled")
    await sign_up(bot, b, wang, minutes_worked=90, flagged=True, **worked)
    await sign_up(bot, b, li, no_show=False)
    for elsewhere in (old, cancelled, later):
        await sign_up(bot, elsewhere, li, minutes_worked=600, no_show=True, **worked)
    ticket = await bot.file_report("wang")
    await link_report(bot, ticket, a)

    assert await bot.say("zhao", "/patrolstats") == ["error.not_allowed"]
    assert await bot.say("wang", "/patrolstats") == ["error.not_allowed"]
    assert await bot.say("worker", "/patrolstats") == ["error.not_allowed"]
    assert await bot.say("police", "/patrolstats") == ["attendance.stats"]
    said = bot.last.replies[0].text.params
    assert {key: value for key, value in said.items() if key != "top"} == {
        "month": "2026-05",
        "shifts": 3,
        "confirmed": 5,
        "places": 7,
        "fill_rate": 71,
        "no_shows": 1,
        "flagged": 1,
        "hours": "4.5",
        "reports": 1,
    }
    top = [
        (line.params["rank"], line.params["name"].value, line.params["hours"]) for line in said["top"].items
    ]
    assert top == [(1, "wang", "3.5"), (2, "li", "1.0")]


async def test_patrol_stats_of_a_month_without_patrols(bot: Harness) -> None:
    assert await bot.say("police", "/patrolstats") == ["attendance.stats_empty"]


async def test_help_lists_the_commands_each_role_may_use(bot: Harness) -> None:
    await bot.say("zhao", "/help")
    resident = [line.key for line in bot.last.replies[0].text.params["lines"].items]
    assert "help.command.checkin" in resident and "help.command.patrolstats" not in resident
    await bot.say("police", "/help")
    police = [line.key for line in bot.last.replies[0].text.params["lines"].items]
    assert {"help.command.roster", "help.command.patrolstats"} <= set(police)
