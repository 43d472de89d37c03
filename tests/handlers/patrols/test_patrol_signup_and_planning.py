"""Patrols end to end: planning shifts and series, volunteers, sign-up rules, the waiting list,
/myshifts with its calendar file, and reminders, through the real engine, outbox and scheduler.

The clock starts on Monday 2026-05-18 at 09:00 in Shanghai (01:00 UTC).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from icalendar import Calendar

from bot.i18n import Translator
from handlers.accounts import rules as accounts
from handlers.community import LANGUAGES, Patrols, PoliceGroups
from handlers.errors import DomainError
from handlers.messages import Incoming, Reply, Text, reply_from_json
from handlers.patrols import announce, rules
from handlers.patrols.local_time import DAILY, at_local
from storage import schema as t
from storage.models import PatrolShift
from storage.repositories import Repos
from tests.harness import CHANNEL, POLICE_GROUP, Harness
from tests.harness import test_community as community_for_tests

SHANGHAI = ZoneInfo("Asia/Shanghai")
INSIDE = (31.2304, 121.4737)  # the community's centre
FAR_AWAY = (39.9042, 116.4074)  # Beijing
VOLUNTEERS = ("wang", "li", "zhao", "sun", "zhou")


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("police", accounts.POLICE, building=None)
    for name in VOLUNTEERS:
        await harness.person(name, accounts.VOLUNTEER)
    await harness.person("chen", building="8")
    yield harness
    await harness.close()


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI).astimezone(UTC)


async def plan(
    bot: Harness,
    starts_at: datetime,
    hours: float = 2,
    *,
    low: int = 1,
    high: int = 3,
    weekdays: str | None = None,
    area: str = "3号楼至南门",
    leader: bool = False,
) -> PatrolShift:
    """A shift planned by the police through the service (the dialogue has its own tests)."""
    police = await bot.user_id("police")
    start = starts_at.astimezone(SHANGHAI)
    end = (starts_at + timedelta(hours=hours)).astimezone(SHANGHAI)

    async def create(repos: Repos) -> PatrolShift:
        actor = await repos.users.get(police)
        assert actor is not None
        new = rules.Plan(
            area=area,
            day=start.date(),
            start=start.time(),
            end=end.time(),
            meeting_lat=INSIDE[0],
            meeting_lon=INSIDE[1],
            meeting_label="南门岗亭",
            min_volunteers=low,
            max_volunteers=high,
            leader_id=police if leader else None,
            weekdays=weekdays,
        )
        created = await rules.create(repos, bot.rt.community, actor, new, bot.clock.now())
        return created.shifts[0]

    return await bot.repos_do(create)


async def shifts(bot: Harness) -> list[PatrolShift]:
    return await bot.repos_do(
        lambda r: r.patrols.upcoming(bot.clock.now(), bot.clock.now() + timedelta(days=400), 100)
    )


async def state_of(bot: Harness, shift_id: int, who: str) -> str | None:
    user_id = await bot.user_id(who)
    signup = await bot.repos_do(lambda r: r.patrols.signup(shift_id, user_id))
    return signup.state if signup else None


def texts(bot: Harness, chat: str) -> list[str]:
    return [sent.text for sent in bot.channel.to(chat)]


# --- /newpatrol ---------------------------------------------------------------------------------


async def test_police_plan_a_single_shift_and_mistakes_are_answered_politely(bot: Harness) -> None:
    assert await bot.say("chen", "/newpatrol") == ["error.not_allowed"]
    assert await bot.say("wang", "/newpatrol") == ["error.not_allowed"]

    assert await bot.say("police", "/newpatrol") == ["patrol.new.ask_area"]
    assert await bot.location("police", *INSIDE) == ["patrol.new.use_text", "patrol.new.ask_area"]
    assert await bot.say("police", "3号楼至南门") == ["patrol.new.ask_date"]
    # Buttons for today and the six days after, with their weekdays.
    assert bot.actions() == [f"v1:pnew:day:2026-05-{day}" for day in range(18, 25)]
    assert await bot.say("police", "下下周吧") == ["patrol.new.bad_date", "patrol.new.ask_date"]
    assert await bot.say("police", "2026-05-01") == ["patrol.new.date_past", "patrol.new.ask_date"]
    assert await bot.say("police", "2026-02-30") == ["patrol.new.bad_date", "patrol.new.ask_date"]
    assert await bot.say("police", "2027-12-01") == ["patrol.new.date_too_far", "patrol.new.ask_date"]
    assert await bot.say("police", "5月20日") == ["patrol.new.ask_time"]
    assert bot.last.replies[0].text.params["weekday"].key == "patrol.weekday.3"

    assert await bot.say("police", "晚上七点") == ["patrol.new.bad_time", "patrol.new.ask_time"]
    assert await bot.say("police", "21:00-19:00") == ["patrol.new.end_before_start", "patrol.new.ask_time"]
    assert await bot.say("police", "19:00-25:00") == ["patrol.new.bad_time", "patrol.new.ask_time"]
    assert await bot.say("police", "１９：００–２１：００") == ["patrol.new.ask_meeting"]
    assert "v1:pnew:grid:g1" in bot.actions()

    assert await bot.location("police", *FAR_AWAY) == ["patrol.new.meeting_outside", "patrol.new.ask_meeting"]
    assert await bot.say("police", "南门") == ["patrol.new.use_location", "patrol.new.ask_meeting"]
    assert await bot.location("police", *INSIDE) == ["patrol.new.ask_size"]

    assert await bot.say("police", "6-2") == ["patrol.new.bad_size", "patrol.new.ask_size"]
    assert await bot.say("police", "100") == ["patrol.new.bad_size", "patrol.new.ask_size"]
    assert await bot.say("police", "2-6人") == ["patrol.new.ask_leader"]
    assert await bot.say("police", "我") == ["patrol.new.use_buttons", "patrol.new.ask_leader"]
    assert await bot.press("police", "v1:pnew:lead:me") == ["patrol.new.ask_repeat"]
    assert await bot.press("police", "v1:pnew:rep:once") == ["patrol.new.summary"]
    summary = bot.last.replies[0].text.params
    assert (summary["start"], summary["end"], summary["min"], summary["max"]) == ("19:00", "21:00", 2, 6)
    assert await bot.press("police", "v1:pnew:ok:1") == ["patrol.new.created"]

    [shift] = await shifts(bot)
    police = await bot.user_id("police")
    # 19:00-21:00 in Shanghai is 11:00-13:00 UTC.
    assert (shift.starts_at, shift.ends_at) == (
        datetime(2026, 5, 20, 11, 0, tzinfo=UTC),
        datetime(2026, 5, 20, 13, 0, tzinfo=UTC),
    )
    assert (shift.area, shift.min_volunteers, shift.max_volunteers, shift.leader_id) == (
        "3号楼至南门",
        2,
        6,
        police,
    )
    assert (shift.meeting_lat, shift.meeting_lon, shift.series_id) == (*INSIDE, None)

    armed = {
        kind_ref: await bot.repos_do(lambda r, k=kind_ref: r.schedules.get(*k))
        for kind_ref in (
            ("patrol_remind", f"{shift.id}:24"),
            ("patrol_remind", f"{shift.id}:1"),
            ("patrol_understaffed", str(shift.id)),
            ("patrol_close", str(shift.id)),
        )
    }
    assert {k[0] + ":" + k[1]: (s.due_at, s.state) for k, s in armed.items()} == {
        f"patrol_remind:{shift.id}:24": (datetime(2026, 5, 19, 11, 0, tzinfo=UTC), "pending"),
        f"patrol_remind:{shift.id}:1": (datetime(2026, 5, 20, 10, 0, tzinfo=UTC), "pending"),
        f"patrol_understaffed:{shift.id}": (datetime(2026, 5, 20, 9, 0, tzinfo=UTC), "pending"),
        f"patrol_close:{shift.id}": (datetime(2026, 5, 20, 13, 0, tzinfo=UTC), "pending"),
    }


async def test_a_time_already_past_today_is_refused(bot: Harness) -> None:
    await bot.say("police", "/newpatrol")
    await bot.say("police", "晨间巡逻")
    assert await bot.press("police", "v1:pnew:day:2026-05-18") == ["patrol.new.ask_time"]
    assert await bot.say("police", "06:30-07:30") == ["patrol.new.time_past", "patrol.new.ask_time"]
    assert await bot.say("police", "1900-2100") == ["patrol.new.ask_meeting"]


async def test_a_weekly_series_generates_its_shifts_once_across_restarts(bot: Harness) -> None:
    await bot.say("police", "/newpatrol")
    await bot.say("police", "沿河步道")
    await bot.press("police", "v1:pnew:day:2026-05-22")  # a Friday
    await bot.say("police", "19:00-21:00")
    assert await bot.press("police", "v1:pnew:grid:g1") == ["patrol.new.ask_size"]
    await bot.say("police", "4")
    await bot.press("police", "v1:pnew:lead:none")
    assert "v1:pnew:rep:weekly" in bot.actions()
    await bot.press("police", "v1:pnew:rep:weekly")
    assert await bot.press("police", "v1:pnew:ok:1") == ["patrol.new.series_created"]
    # 14 days ahead from Monday 18 May: Fridays 22 and 29 May.
    assert bot.last.replies[0].text.params["count"] == 2

    fridays = [datetime(2026, 5, day, 11, 0, tzinfo=UTC) for day in (22, 29)]
    found = await shifts(bot)
    assert [s.starts_at for s in found] == fridays
    assert {(s.min_volunteers, s.max_volunteers, s.meeting_label, s.leader_id) for s in found} == {
        (4, 4, "第一网格", None)
    }
    series = await bot.repos_do(lambda r: r.patrols.series(found[0].series_id))
    assert (series.weekdays, series.start_time, series.end_time, series.active) == (
        "5",
        "19:00",
        "21:00",
        True,
    )

    await bot.restart()
    assert [s.starts_at for s in await shifts(bot)] == fridays

    # Days pass: the daily run extends the series; a restart in between adds nothing twice.
    await bot.wait(timedelta(days=2))
    await bot.restart()
    await bot.wait(timedelta(days=3))
    await bot.restart()
    assert [s.starts_at for s in await shifts(bot)] == [
        datetime(2026, 5, 29, 11, 0, tzinfo=UTC),
        datetime(2026, 6, 5, 11, 0, tzinfo=UTC),
    ]
    since_ever = datetime(2026, 1, 1, tzinfo=UTC)
    every_one = await bot.repos_do(lambda r: r.patrols.future_of_series(series.id, since_ever))
    assert [s.starts_at.day for s in every_one] == [22, 29, 5]
    tomorrow = await bot.repos_do(lambda r: r.schedules.get("patrol_generate", "2026-05-24"))
    assert tomorrow is not None and tomorrow.state == "pending"


# --- volunteers ---------------------------------------------------------------------------------


async def test_a_resident_becomes_a_volunteer_at_once_by_default(bot: Harness) -> None:
    shift = await plan(bot, local(date(2026, 5, 20), 19))
    assert await bot.press("chen", f"v1:pat:join:{shift.id}") == ["patrol.volunteer_first"]
    assert await bot.say("chen", "/patrols") == ["patrol.list_resident"]
    assert await bot.say("chen", "/volunteer") == ["patrol.volunteer.welcome"]
    assert await bot.say("chen", "/volunteer") == ["patrol.volunteer.already"]
    assert await bot.say("police", "/volunteer") == ["patrol.volunteer.staff"]
    assert await bot.press("chen", f"v1:pat:join:{shift.id}") == ["patrol.signed_up"]
    # Staff may patrol too.
    assert await bot.press("police", f"v1:pat:join:{shift.id}") == ["patrol.signed_up"]


@pytest.fixture
async def approving(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    community = community_for_tests()
    community = community.model_copy(update={"patrols": Patrols(volunteer_approval=True)})
    harness = await Harness(database_url, tmp_path).start(community)
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("chen", building="8")
    await harness.person("zhou", building="3")
    yield harness
    await harness.close()


async def test_police_approve_or_reject_volunteers_and_each_is_told(approving: Harness) -> None:
    bot = approving
    chen, zhou = await bot.user_id("chen"), await bot.user_id("zhou")
    assert await bot.say("chen", "/volunteer") == ["patrol.volunteer.requested"]
    assert await bot.say("chen", "/volunteer") == ["patrol.volunteer.pending"]
    [card] = bot.channel.to(POLICE_GROUP)
    assert card.text == "patrol.police.volunteer_request"
    assert [action for _label, action in card.buttons] == [f"v1:pat:vok:{chen}", f"v1:pat:vno:{chen}"]
    assert (await bot.repos_do(lambda r: r.users.get(chen))).role == accounts.RESIDENT

    # Only police decide, whatever buttons someone gets hold of.
    assert await bot.press("zhou", f"v1:pat:vok:{chen}") == ["error.not_allowed"]
    await bot.press("police", f"v1:pat:vok:{chen}", group=True)
    assert bot.notice() == "patrol.volunteer.you_approved"
    assert texts(bot, "chen") == ["patrol.volunteer.approved"]
    assert (await bot.repos_do(lambda r: r.users.get(chen))).role == accounts.VOLUNTEER
    await bot.press("police", f"v1:pat:vno:{chen}", group=True)
    assert bot.notice() == "patrol.volunteer.decided_already"
    assert (await bot.repos_do(lambda r: r.users.get(chen))).role == accounts.VOLUNTEER

    assert await bot.say("zhou", "/volunteer") == ["patrol.volunteer.requested"]
    await bot.press("police", f"v1:pat:vno:{zhou}", group=True)
    assert bot.notice() == "patrol.volunteer.you_rejected"
    assert texts(bot, "zhou") == ["patrol.volunteer.rejected"]
    assert (await bot.repos_do(lambda r: r.users.get(zhou))).role == accounts.RESIDENT
    # A declined resident may ask again later.
    assert await bot.say("zhou", "/volunteer") == ["patrol.volunteer.requested"]
    assert len(bot.channel.to(POLICE_GROUP)) == 3


async def test_police_decide_requests_from_volunteers_in_a_private_chat(approving: Harness) -> None:
    bot = approving
    chen, zhou = await bot.user_id("chen"), await bot.user_id("zhou")
    assert await bot.say("police", "/volunteers") == ["patrol.desk.empty"]
    assert await bot.say("chen", "/volunteer") == ["patrol.volunteer.requested"]
    bot.clock.advance(timedelta(minutes=5))
    assert await bot.say("zhou", "/volunteer") == ["patrol.volunteer.requested"]
    assert await bot.say("zhou", "/volunteers") == ["error.not_allowed"]

    assert await bot.say("police", "/volunteers") == [
        "patrol.desk.requests\npatrol.desk.request\npatrol.desk.request"
    ]
    assert bot.last.replies[0].text.items[0].params == {"count": 2, "shown": 2}
    # The oldest first, each with its own buttons.
    assert bot.actions() == [
        f"v1:pat:vok:{chen}",
        f"v1:pat:vno:{chen}",
        f"v1:pat:vok:{zhou}",
        f"v1:pat:vno:{zhou}",
    ]
    await bot.press("police", f"v1:pat:vok:{chen}")
    assert bot.notice() == "patrol.volunteer.you_approved"
    assert texts(bot, "chen") == ["patrol.volunteer.approved"]
    assert await bot.say("police", "/volunteers") == ["patrol.desk.requests\npatrol.desk.request"]
    assert bot.actions() == [f"v1:pat:vok:{zhou}", f"v1:pat:vno:{zhou}"]


async def test_without_a_police_group_volunteer_requests_reach_the_police_privately(
    database_url: str, tmp_path: Path
) -> None:
    community = community_for_tests().model_copy(
        update={"patrols": Patrols(volunteer_approval=True), "police_groups": PoliceGroups()}
    )
    bot = await Harness(database_url, tmp_path).start(community)
    try:
        await bot.person("police", accounts.POLICE, building=None)
        await bot.person("admin", accounts.ADMIN, building=None)
        await bot.person("wang", accounts.VOLUNTEER)
        await bot.person("chen", building="8")
        chen = await bot.user_id("chen")
        assert await bot.say("chen", "/volunteer") == ["patrol.volunteer.requested"]
        await bot.deliver()
        for officer in ("police", "admin"):
            [card] = bot.channel.to(officer)
            assert card.text == "patrol.police.volunteer_request"
            assert [action for _label, action in card.buttons] == [f"v1:pat:vok:{chen}", f"v1:pat:vno:{chen}"]
        assert bot.channel.to("wang") == []
        await bot.press("admin", f"v1:pat:vok:{chen}")
        assert bot.notice() == "patrol.volunteer.you_approved"
    finally:
        await bot.close()


# --- signing up ---------------------------------------------------------------------------------


async def test_full_shift_offers_the_waiting_list_and_a_freed_place_goes_to_the_first(bot: Harness) -> None:
    shift = await plan(bot, local(date(2026, 5, 20), 19), high=2)
    assert await bot.say("wang", "/patrols") == ["patrol.list"]
    assert bot.actions() == [f"v1:pat:join:{shift.id}"]

    assert await bot.press("wang", f"v1:pat:join:{shift.id}") == ["patrol.signed_up"]
    assert bot.notice() == "patrol.signed_up_notice"
    assert await bot.press("wang", f"v1:pat:join:{shift.id}") == ["patrol.already_signed_up"]
    assert await bot.press("li", f"v1:pat:join:{shift.id}") == ["patrol.signed_up"]
    assert await bot.press("zhao", f"v1:pat:join:{shift.id}") == ["patrol.full"]
    assert bot.actions() == [f"v1:pat:wait:{shift.id}"]
    assert await bot.press("zhao", f"v1:pat:wait:{shift.id}") == ["patrol.waiting"]
    assert bot.last.replies[0].text.params["position"] == 1
    assert await bot.press("sun", f"v1:pat:wait:{shift.id}") == ["patrol.waiting"]
    assert bot.last.replies[0].text.params["position"] == 2
    assert await bot.press("sun", f"v1:pat:wait:{shift.id}") == ["patrol.already_waiting"]

    assert await bot.say("zhao", "/patrols") == ["patrol.list"]
    [line] = bot.last.replies[0].text.params["lines"].items
    assert (line.key, line.params["taken"], line.params["max"], line.params["position"]) == (
        "patrol.line_waiting",
        2,
        2,
        1,
    )
    assert await bot.say("zhou", "/patrols") == ["patrol.list"]
    assert bot.actions() == [f"v1:pat:wait:{shift.id}"]

    assert await bot.press("wang", f"v1:pat:leave:{shift.id}") == ["patrol.left"]
    assert texts(bot, "zhao") == ["patrol.notify.promoted"]
    assert texts(bot, "sun") == []
    assert [await state_of(bot, shift.id, who) for who in ("wang", "li", "zhao", "sun")] == [
        "cancelled",
        "confirmed",
        "confirmed",
        "waiting",
    ]
    # Leaving the waiting list is always possible and frees nobody's place.
    assert await bot.press("sun", f"v1:pat:leave:{shift.id}") == ["patrol.left_waiting"]
    # Coming back means the end of the queue, not the old place.
    assert await bot.press("wang", f"v1:pat:wait:{shift.id}") == ["patrol.waiting"]
    assert bot.last.replies[0].text.params["position"] == 1
    assert await bot.press("sun", f"v1:pat:wait:{shift.id}") == ["patrol.waiting"]
    assert bot.last.replies[0].text.params["position"] == 2


async def test_overlapping_shifts_are_refused(bot: Harness) -> None:
    evening = await plan(bot, local(date(2026, 5, 20), 19), hours=2)
    later = await plan(bot, local(date(2026, 5, 20), 20), hours=2, area="沿河步道")
    after = await plan(bot, local(date(2026, 5, 20), 21), hours=1, area="菜市场")
    assert await bot.press("wang", f"v1:pat:join:{evening.id}") == ["patrol.signed_up"]
    assert await bot.press("wang", f"v1:pat:join:{later.id}") == ["patrol.overlap"]
    assert bot.last.replies[0].text.params["end"] == "21:00"
    # Back to back is not an overlap.
    assert await bot.press("wang", f"v1:pat:join:{after.id}") == ["patrol.signed_up"]


async def test_sign_up_closes_before_the_start_and_started_or_cancelled_shifts_refuse(bot: Harness) -> None:
    soon = await plan(bot, bot.clock.now() + timedelta(minutes=40))
    bot.clock.advance(timedelta(minutes=11))
    assert await bot.press("wang", f"v1:pat:join:{soon.id}") == ["patrol.signup_closed"]
    bot.clock.advance(timedelta(minutes=30))
    assert await bot.press("wang", f"v1:pat:join:{soon.id}") == ["patrol.shift_started"]
    assert await bot.press("wang", "v1:pat:join:999") == ["error.stale_button"]


async def test_cancelling_shortly_before_the_start_is_refused(bot: Harness) -> None:
    shift = await plan(bot, bot.clock.now() + timedelta(hours=5), leader=True)
    assert await bot.press("wang", f"v1:pat:join:{shift.id}") == ["patrol.signed_up"]
    bot.clock.advance(timedelta(hours=2, minutes=30))
    assert await bot.press("wang", f"v1:pat:leave:{shift.id}") == ["patrol.cancel_too_late"]
    refused = bot.last.replies[0].text.params
    assert refused["hours"] == 3
    assert refused["contact"].key == "patrol.contact_leader"
    assert await state_of(bot, shift.id, "wang") == "confirmed"


async def test_two_people_pressing_for_the_last_places_at_once(bot: Harness) -> None:
    shift = await plan(bot, local(date(2026, 5, 20), 19), high=2)
    assert await bot.press("wang", f"v1:pat:join:{shift.id}") == ["patrol.signed_up"]

    def press(who: str) -> Incoming:
        return Incoming(CHANNEL, who, who, who, action=f"v1:pat:join:{shift.id}")

    racers = ("li", "zhao", "sun", "zhou")
    # Open a connection per racer first: otherwise connecting takes longer than the first press does.
    await asyncio.gather(
        *(bot.rt.engine.handle(Incoming(CHANNEL, w, w, w, command="myshifts")) for w in racers)
    )
    answers = await asyncio.gather(*(bot.rt.engine.handle(press(who)) for who in racers))
    keys = sorted(answer.replies[0].text.key for answer in answers)
    assert keys == ["patrol.full", "patrol.full", "patrol.full", "patrol.signed_up"]
    states = [await state_of(bot, shift.id, who) for who in racers]
    assert states.count("confirmed") == 1
    assert (await bot.repos_do(lambda r: r.patrols.taken([shift.id])))[shift.id] == 2


async def test_a_sign_up_waits_while_another_transaction_takes_the_last_place(bot: Harness) -> None:
    """The interleaving the row lock exists for, made certain: B counts places while A has not committed."""
    shift = await plan(bot, local(date(2026, 5, 20), 19), high=1)
    community, database = bot.rt.community, bot.rt.database
    li, zhao = await bot.user_id("li"), await bot.user_id("zhao")

    trying = asyncio.Event()

    async def join(user_id: int) -> str:
        trying.set()
        async with database.transaction() as connection:
            repos = Repos(connection, community.tz)
            user = await repos.users.get(user_id)
            assert user is not None
            try:
                await rules.join(repos, community, user, shift.id, bot.clock.now(), waiting_ok=False)
            except rules.ShiftFull:
                return "full"
            return "confirmed"

    async with database.transaction() as connection:
        repos = Repos(connection, community.tz)
        first = await repos.users.get(li)
        assert first is not None
        await rules.join(repos, community, first, shift.id, bot.clock.now(), waiting_ok=False)
        second = asyncio.create_task(join(zhao))
        # The second is under way and the database shows it waiting for this transaction's lock.
        await bot.held_up(trying, second)
        assert not second.done()
    assert await second == "full"
    assert (await bot.repos_do(lambda r: r.patrols.taken([shift.id])))[shift.id] == 1


# --- police: editing, cancelling, stopping --------------------------------------------------------


async def test_police_edit_and_cancel_a_shift_and_everyone_signed_up_is_told(bot: Harness) -> None:
    shift = await plan(bot, local(date(2026, 5, 20), 19), high=1)
    await bot.press("wang", f"v1:pat:join:{shift.id}")
    await bot.press("zhao", f"v1:pat:wait:{shift.id}")
    await bot.press("sun", f"v1:pat:wait:{shift.id}")

    assert await bot.say("police", "/patrols") == ["patrol.list"]
    assert f"v1:pat:mng:{shift.id}" in bot.actions()
    assert await bot.press("wang", f"v1:pat:mng:{shift.id}") == ["error.not_allowed"]
    assert await bot.press("police", f"v1:pat:mng:{shift.id}") == ["patrol.manage"]
    assert bot.actions() == [f"v1:pat:etime:{shift.id}", f"v1:pat:esize:{shift.id}", f"v1:pat:csh:{shift.id}"]

    # More places: the first on the waiting list moves up; the others hear about the change.
    assert await bot.press("police", f"v1:pat:esize:{shift.id}") == ["patrol.edit.ask_size"]
    assert await bot.say("police", "0") == ["patrol.new.bad_size", "patrol.edit.ask_size"]
    assert await bot.say("police", "2") == ["patrol.edit.resized"]
    assert bot.last.replies[0].text.params["promoted"] == 1
    assert texts(bot, "zhao") == ["patrol.notify.promoted"]
    assert texts(bot, "wang") == ["patrol.notify.resized"]
    assert texts(bot, "sun") == ["patrol.notify.resized"]
    await bot.press("police", f"v1:pat:esize:{shift.id}")
    assert await bot.say("police", "1") == ["patrol.edit.below_taken", "patrol.edit.ask_size"]
    assert await bot.say("police", "/cancel") == ["conversation.cancelled"]

    # New hours on the same day: reminders move with it.
    assert await bot.press("police", f"v1:pat:etime:{shift.id}") == ["patrol.edit.ask_time"]
    assert await bot.say("police", "下午") == ["patrol.new.bad_time", "patrol.edit.ask_time"]
    assert await bot.say("police", "20:00-22:00") == ["patrol.edit.retimed"]
    for who in ("wang", "zhao", "sun"):
        assert texts(bot, who)[-1] == "patrol.notify.retimed"
    moved = await bot.repos_do(lambda r: r.patrols.shift(shift.id))
    assert moved.starts_at == datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
    reminder = await bot.repos_do(lambda r: r.schedules.get("patrol_remind", f"{shift.id}:1"))
    assert reminder.due_at == datetime(2026, 5, 20, 11, 0, tzinfo=UTC)
    close = await bot.repos_do(lambda r: r.schedules.get("patrol_close", str(shift.id)))
    assert close.due_at == datetime(2026, 5, 20, 14, 0, tzinfo=UTC)

    assert await bot.press("police", f"v1:pat:csh:{shift.id}") == ["patrol.cancel_shift.confirm"]
    assert await bot.press("police", f"v1:pat:cshok:{shift.id}") == ["patrol.cancel_shift.done"]
    assert bot.last.replies[0].text.params["told"] == 3
    for who in ("wang", "zhao", "sun"):
        assert texts(bot, who)[-1] == "patrol.notify.cancelled"
    assert await bot.press("police", f"v1:pat:cshok:{shift.id}") == ["patrol.shift_cancelled"]
    assert await bot.press("li", f"v1:pat:join:{shift.id}") == ["patrol.shift_cancelled"]
    for kind, ref in (("patrol_remind", f"{shift.id}:24"), ("patrol_understaffed", str(shift.id))):
        assert (await bot.repos_do(lambda r, k=kind, f=ref: r.schedules.get(k, f))).state == "cancelled"
    assert (await bot.repos_do(lambda r: r.schedules.get("patrol_close", str(shift.id)))).state == "cancelled"
    assert await bot.say("wang", "/myshifts") == ["patrol.mine_empty"]

    # Nothing fires for it any more.
    before = len(bot.channel.sent)
    await bot.wait(timedelta(days=3))
    assert [s.text for s in bot.channel.sent[before:] if s.chat_id in VOLUNTEERS] == []


async def test_stopping_a_series_cancels_its_future_shifts_and_tells_each_person_once(bot: Harness) -> None:
    first = await plan(bot, local(date(2026, 5, 19), 6, 30), hours=1, weekdays=DAILY, area="晨练巡逻")
    found = [s for s in await shifts(bot) if s.series_id == first.series_id]
    assert len(found) == 13  # 19 May to 31 May
    for shift in found[:3]:
        assert await bot.press("wang", f"v1:pat:join:{shift.id}") == ["patrol.signed_up"]
    await bot.press("police", f"v1:pat:mng:{first.id}")
    assert f"v1:pat:stop:{first.series_id}" in bot.actions()
    assert await bot.press("police", f"v1:pat:stop:{first.series_id}") == ["patrol.stop_series.confirm"]
    assert await bot.press("police", f"v1:pat:stopok:{first.series_id}") == ["patrol.stop_series.done"]
    assert bot.last.replies[0].text.params["count"] == 13
    assert texts(bot, "wang") == ["patrol.notify.series_stopped"]
    lines = bot.channel.to("wang")[0].text
    assert lines == "patrol.notify.series_stopped"
    assert await bot.press("police", f"v1:pat:stopok:{first.series_id}") == ["patrol.series_already_stopped"]
    assert await shifts(bot) == []
    await bot.restart()
    await bot.wait(timedelta(days=2))
    assert await shifts(bot) == []


# --- no-shows -----------------------------------------------------------------------------------


async def mark_no_show(bot: Harness, shift_id: int, who: str) -> None:
    """What the attendance side does when a shift closes without this person checking in."""
    user_id = await bot.user_id(who)

    async def mark(repos: Repos) -> None:
        s = t.patrol_signups.c
        await repos.connection.execute(
            t.patrol_signups.update().where(s.shift_id == shift_id, s.user_id == user_id).values(no_show=True)
        )

    await bot.repos_do(mark)


async def test_two_no_shows_pause_sign_ups_until_police_lift_it(bot: Harness) -> None:
    wang = await bot.user_id("wang")
    community = bot.rt.community
    first = await plan(bot, local(date(2026, 5, 19), 19))
    second = await plan(bot, local(date(2026, 5, 20), 19))
    later = await plan(bot, local(date(2026, 5, 25), 19))
    for shift in (first, second):
        await bot.press("wang", f"v1:pat:join:{shift.id}")
    # Moving the clock without firing schedules: the attendance side's closing job is not ours to run.
    bot.clock.set(local(date(2026, 5, 21), 9))

    async def announce_ban(repos: Repos) -> bool:
        return await announce.ban_if_reached(repos, community, wang, bot.clock.now())

    async def banned(repos: Repos) -> bool:
        return await rules.ban_check(repos, community, wang, bot.clock.now())

    await mark_no_show(bot, first.id, "wang")
    assert await bot.repos_do(announce_ban) is False
    assert not await bot.repos_do(banned)
    await mark_no_show(bot, second.id, "wang")
    assert await bot.repos_do(banned)
    # The marking that reaches the limit announces it (the attendance side calls once per marking).
    assert await bot.repos_do(announce_ban) is True
    await bot.deliver()
    assert texts(bot, "wang") == ["patrol.notify.banned"]
    [card] = bot.channel.to(POLICE_GROUP)
    assert card.text == "patrol.police.banned"
    assert [action for _label, action in card.buttons] == [f"v1:pat:unban:{wang}"]

    assert await bot.press("wang", f"v1:pat:join:{later.id}") == ["patrol.banned"]
    assert bot.last.replies[0].text.params["count"] == 2
    assert await bot.press("li", f"v1:pat:unban:{wang}") == ["error.not_allowed"]
    await bot.press("police", f"v1:pat:unban:{wang}", group=True)
    assert bot.notice() == "patrol.ban_lifted"
    assert texts(bot, "wang") == ["patrol.notify.banned", "patrol.notify.unbanned"]
    assert not await bot.repos_do(banned)
    await bot.press("police", f"v1:pat:unban:{wang}", group=True)
    assert bot.notice() == "patrol.not_banned"
    assert await bot.press("wang", f"v1:pat:join:{later.id}") == ["patrol.signed_up"]


async def test_a_banned_person_on_the_waiting_list_is_passed_over(bot: Harness) -> None:
    missed = [await plan(bot, local(date(2026, 5, day), 19)) for day in (18, 19)]
    shift = await plan(bot, local(date(2026, 5, 25), 19), high=1)
    for past in missed:
        await bot.press("zhao", f"v1:pat:join:{past.id}")
    await bot.press("wang", f"v1:pat:join:{shift.id}")
    await bot.press("zhao", f"v1:pat:wait:{shift.id}")
    await bot.press("sun", f"v1:pat:wait:{shift.id}")
    bot.clock.set(local(date(2026, 5, 21), 9))
    for past in missed:
        await mark_no_show(bot, past.id, "zhao")
    assert await bot.press("wang", f"v1:pat:leave:{shift.id}") == ["patrol.left"]
    assert [await state_of(bot, shift.id, who) for who in ("zhao", "sun")] == ["waiting", "confirmed"]
    assert texts(bot, "sun") == ["patrol.notify.promoted"]
    assert texts(bot, "zhao") == []


# --- /myshifts and the calendar file ------------------------------------------------------------------


async def test_my_shifts_list_and_calendar_file(bot: Harness) -> None:
    assert await bot.say("wang", "/myshifts") == ["patrol.mine_empty"]
    one = await plan(bot, local(date(2026, 5, 20), 19))
    two = await plan(bot, local(date(2026, 5, 22), 6, 30), hours=1, area="晨练巡逻")
    full = await plan(bot, local(date(2026, 5, 23), 19), high=1, area="夜市")
    await bot.press("li", f"v1:pat:join:{full.id}")
    for shift in (two, one):
        await bot.press("wang", f"v1:pat:join:{shift.id}")
    await bot.press("wang", f"v1:pat:wait:{full.id}")

    assert await bot.say("wang", "/myshifts") == ["patrol.mine"]
    lines = bot.last.replies[0].text.params["lines"].items
    assert [line.key for line in lines] == [
        "patrol.mine_line",
        "patrol.mine_line",
        "patrol.mine_line_waiting",
    ]
    assert lines[2].params["position"] == 1
    assert bot.actions() == [
        f"v1:pat:leave:{one.id}",
        f"v1:pat:leave:{two.id}",
        f"v1:pat:leave:{full.id}",
        "v1:pat:ics:0",
    ]

    assert await bot.press("wang", "v1:pat:ics:0") == ["patrol.calendar"]
    document = bot.last.replies[0].document
    assert (document.filename, document.mime) == ("shouwang-patrols.ics", "text/calendar")
    calendar = Calendar.from_ical(document.data)
    events = calendar.walk("VEVENT")
    # Confirmed shifts only, soonest first.
    assert [str(e["uid"]) for e in events] == [f"patrol-{one.id}@shouwang", f"patrol-{two.id}@shouwang"]
    assert [e.decoded("dtstart") for e in events] == [one.starts_at, two.starts_at]
    assert [e.decoded("dtend") for e in events] == [one.ends_at, two.ends_at]
    assert "3号楼至南门" in str(events[0]["summary"])
    assert str(events[0]["location"]) == "南门岗亭"
    assert (events[0]["geo"].latitude, events[0]["geo"].longitude) == INSIDE
    [alarm] = events[0].walk("VALARM")
    assert alarm.decoded("trigger") == timedelta(hours=-1)

    # The file is delivered like any other message when it goes through the outbox.
    await bot.press("li", "v1:pat:ics:0")
    assert bot.last.replies[0].document is not None


# --- reminders ------------------------------------------------------------------------------------


async def test_reminders_fire_once_each_across_restarts(bot: Harness) -> None:
    shift = await plan(bot, local(date(2026, 5, 20), 19), low=3, high=5)
    for who in ("wang", "li", "zhao"):
        await bot.press(who, f"v1:pat:join:{shift.id}")
    await bot.press("zhao", f"v1:pat:leave:{shift.id}")

    # The day before (24 h: Tuesday 11:00 UTC).
    await bot.wait(timedelta(hours=33, minutes=59))
    assert texts(bot, "wang") == []
    await bot.wait(timedelta(minutes=2))
    assert texts(bot, "wang") == texts(bot, "li") == ["patrol.reminder.ahead"]
    await bot.restart()
    await bot.wait(timedelta(minutes=1))
    assert texts(bot, "wang") == ["patrol.reminder.ahead"]

    # Two hours before, short of the minimum: the police group is warned; one hour before, the reminder.
    await bot.wait(timedelta(hours=23))
    await bot.restart()
    await bot.wait(timedelta(minutes=1))
    await bot.restart()
    await bot.wait(timedelta(minutes=30))
    for who in ("wang", "li"):
        assert texts(bot, who) == ["patrol.reminder.ahead", "patrol.reminder.soon"]
    assert texts(bot, "zhao") == []
    assert texts(bot, POLICE_GROUP) == ["patrol.police.understaffed"]


async def test_no_understaffed_warning_when_enough_people_signed_up(bot: Harness) -> None:
    shift = await plan(bot, local(date(2026, 5, 18), 19), low=1)
    await bot.press("wang", f"v1:pat:join:{shift.id}")
    await bot.wait(timedelta(hours=10))
    assert texts(bot, POLICE_GROUP) == []
    # A shift created an hour before the start gets no reminders that would have been due already.
    late = await plan(bot, bot.clock.now() + timedelta(minutes=50))
    assert (await bot.repos_do(lambda r: r.schedules.get("patrol_remind", f"{late.id}:1"))) is None


# --- typed dates and times, and local time --------------------------------------------------------


def refusal(parse: Callable[..., object], *args: object) -> str:
    """The message key a parser answers a typing mistake with."""
    with pytest.raises(DomainError) as refused:
        parse(*args)
    return refused.value.key


def test_dates_are_read_as_people_type_them() -> None:
    today = date(2026, 11, 20)
    assert rules.parse_date("2026-11-28", today) == date(2026, 11, 28)
    assert rules.parse_date("11-28", today) == date(2026, 11, 28)
    assert rules.parse_date("11/28", today) == date(2026, 11, 28)
    assert rules.parse_date("11月28日", today) == date(2026, 11, 28)
    assert rules.parse_date("２０２６年１１月２８号", today) == date(2026, 11, 28)
    assert rules.parse_date("明天", today) == date(2026, 11, 21)
    # A month and day already past this year mean next year's.
    assert rules.parse_date("1-5", today) == date(2027, 1, 5)
    for wrong in ("11-31", "tomorrow evening", "28", ""):
        assert refusal(rules.parse_date, wrong, today) == "patrol.new.bad_date", wrong


def test_times_and_sizes_are_read_as_people_type_them() -> None:
    expected = (time(19, 0), time(21, 0))
    for typed in ("19:00-21:00", "19:00–21:00", "1900-2100", "19-21", "19：00～21：00", "19.00 至 21.00"):
        assert rules.parse_time_range(typed) == expected, typed
    assert rules.parse_time_range("6:30-7:30") == (time(6, 30), time(7, 30))
    assert refusal(rules.parse_time_range, "21:00-21:00") == "patrol.new.end_before_start"
    assert refusal(rules.parse_time_range, "19:70-21:00") == "patrol.new.bad_time"
    assert rules.parse_size("2-6") == (2, 6)
    assert rules.parse_size("4") == (4, 4)
    assert rules.parse_size("０-３人") == (0, 3)
    assert rules.parse_places("8") == (None, 8)
    for wrong in ("0", "7-3", "51", "two"):
        assert refusal(rules.parse_size, wrong) == "patrol.new.bad_size", wrong


def test_local_times_use_the_offset_of_that_date() -> None:
    new_york = ZoneInfo("America/New_York")
    # Winter (UTC-5) and summer (UTC-4) on either side of the spring change.
    assert at_local(date(2026, 3, 7), time(19), new_york) == datetime(2026, 3, 8, 0, 0, tzinfo=UTC)
    assert at_local(date(2026, 3, 9), time(19), new_york) == datetime(2026, 3, 9, 23, 0, tzinfo=UTC)
    assert at_local(date(2026, 5, 20), time(19), SHANGHAI) == datetime(2026, 5, 20, 11, 0, tzinfo=UTC)


# --- every message, rendered for real -------------------------------------------------------------


async def test_every_patrol_message_renders_completely_in_every_language(bot: Harness) -> None:
    """The real catalogues, filled with the parameters the code passes: no "{name}" or bare key is left.

    Many patrol messages get a shift's parameters spread into them, which the static
    check of tests/test_translations.py cannot follow; this follows them at run time.
    """
    said: list[Reply] = []
    notices: list[Text] = []

    async def do(call: Awaitable[list[str]]) -> None:
        await call
        said.extend(bot.last.replies)
        if bot.last.notice is not None:
            notices.append(bot.last.notice)

    await do(bot.say("police", "/newpatrol"))
    for typed in ("沿河步道", "下周", "明天", "七点", "21:00-19:00", "19:00-21:00"):
        await do(bot.say("police", typed))
    await do(bot.location("police", *FAR_AWAY))
    await do(bot.press("police", "v1:pnew:centre:0"))
    for typed in ("9-1", "1-2"):
        await do(bot.say("police", typed))
    for action in ("v1:pnew:lead:me", "v1:pnew:rep:weekly", "v1:pnew:ok:1"):
        await do(bot.press("police", action))
    series_shift = (await shifts(bot))[0]
    extra = await plan(bot, local(date(2026, 5, 18), 19))
    shift = await plan(bot, local(date(2026, 5, 19), 19), low=2, high=2, leader=True)
    overlapping = await plan(bot, local(date(2026, 5, 19), 20), low=2, high=3)
    await do(bot.press("li", f"v1:pat:join:{extra.id}"))
    for who, action in (("wang", "join"), ("wang", "join"), ("li", "join"), ("zhao", "join")):
        await do(bot.press(who, f"v1:pat:{action}:{shift.id}"))
    for _twice in range(2):
        await do(bot.press("zhao", f"v1:pat:wait:{shift.id}"))
    await do(bot.press("wang", f"v1:pat:join:{overlapping.id}"))
    await do(bot.press("sun", f"v1:pat:join:{overlapping.id}"))
    await do(bot.press("chen", f"v1:pat:join:{shift.id}"))
    for who in ("chen", "zhao", "police"):
        await do(bot.say(who, "/patrols"))
        await do(bot.say(who, "/myshifts"))
        await do(bot.say(who, "/volunteer"))
    await do(bot.press("wang", "v1:pat:ics:0"))
    await do(bot.press("police", f"v1:pat:mng:{shift.id}"))
    await do(bot.press("zhou", f"v1:pat:join:{series_shift.id}"))
    await do(bot.press("police", f"v1:pat:mng:{series_shift.id}"))
    await do(bot.press("police", f"v1:pat:esize:{shift.id}"))
    await do(bot.say("police", "60"))
    await do(bot.say("police", "3"))
    await do(bot.press("police", f"v1:pat:etime:{shift.id}"))
    await do(bot.say("police", "19:00-21:00"))
    await do(bot.press("police", f"v1:pat:etime:{shift.id}"))
    await do(bot.say("police", "19:30-21:30"))
    await do(bot.press("police", f"v1:pat:stop:{series_shift.series_id}"))
    await do(bot.press("police", f"v1:pat:stopok:{series_shift.series_id}"))
    await bot.wait(timedelta(hours=11, minutes=1))  # reminders the day before
    await bot.wait(timedelta(hours=22))  # the understaffed warning
    await do(bot.press("wang", f"v1:pat:leave:{shift.id}"))
    await bot.wait(timedelta(hours=1))  # reminders shortly before
    await do(bot.press("police", f"v1:pat:csh:{overlapping.id}"))
    await do(bot.press("police", f"v1:pat:cshok:{overlapping.id}"))
    for missed in (extra, shift):
        await mark_no_show(bot, missed.id, "li")
    wang, li, chen_id = await bot.user_id("wang"), await bot.user_id("li"), await bot.user_id("chen")
    community = bot.rt.community
    asking = community.model_copy(update={"patrols": Patrols(volunteer_approval=True)})

    async def side_effects(repos: Repos) -> None:
        await announce.ban_if_reached(repos, community, li, bot.clock.now(), newly=2)
        chen = await repos.users.get(chen_id)
        assert chen is not None
        await repos.users.update(chen.id, role=accounts.RESIDENT)
        assert await announce.volunteer(repos, asking, replace(chen, role=accounts.RESIDENT), bot.clock.now())

    await bot.repos_do(side_effects)
    await do(bot.press("police", f"v1:pat:unban:{li}"))
    await do(bot.press("police", f"v1:pat:unban:{wang}"))

    async def outbox(repos: Repos) -> list[Reply]:
        rows = await repos.connection.execute(
            sa.select(t.outbox.c.payload).where(t.outbox.c.kind == "message")
        )
        return [reply_from_json(payload) for payload in rows.scalars()]

    sent = await bot.repos_do(outbox)
    keys = {reply.text.key for reply in [*said, *sent] if isinstance(reply.text, Text)}
    assert {
        "patrol.new.summary",
        "patrol.new.series_created",
        "patrol.manage",
        "patrol.notify.retimed",
        "patrol.notify.series_stopped",
        "patrol.reminder.ahead",
        "patrol.reminder.soon",
        "patrol.police.understaffed",
        "patrol.notify.cancelled",
        "patrol.police.banned",
        "patrol.police.volunteer_request",
        "patrol.overlap",
    } <= keys

    translator = Translator.load("zh_CN", SHANGHAI)
    for language in LANGUAGES:
        for reply in [*said, *sent]:
            rendered = translator.render(language, reply, lambda payload: payload)
            for text in (rendered.text, *(button.label for row in rendered.buttons for button in row)):
                assert "{" not in text and "}" not in text, (language, text)
                assert not re.search(r"\bpatrol\.[a-z_.]+", text), (language, text)
        for notice in notices:
            assert "{" not in translator.text(language, notice, lambda payload: payload)
