"""Patrols and the time bank over the wire: Telegram (fake Bot API) and WeChat Work (signed callbacks).

Everything real below the HTTP boundary: PTB or the WeChat Work endpoint, the
engine, the outbox, SQLite, the catalogues. Assertions stick to facts that
translators will not change: callback data, who got a message, stored rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.accounts import rules as accounts
from handlers.patrols import rules as patrols
from storage.models import PatrolShift, PatrolSignup
from tests.bot.telegram_live import GROUP, INSIDE, NEIGHBOUR, POLICE, REPORTER, Live, content
from tests.bot.wecom_live import WeComBot
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.wecom_api import FakeWeComApi

# The live clock starts at 2026-05-18 09:00 in Shanghai; the shift is the next morning 10:00-12:00.
TOMORROW_TEN = datetime(2026, 5, 19, 2, 0, tzinfo=UTC)
METRES_PER_DEGREE = 111_195.0


def north_of(point: tuple[float, float], metres: float) -> tuple[float, float]:
    return point[0] + metres / METRES_PER_DEGREE, point[1]


async def plan_shift_on_telegram(live: Live, places: str) -> PatrolShift:
    """The officer goes through /newpatrol: a one-off shift tomorrow 10:00-12:00, meeting at INSIDE."""
    await live.say(POLICE, "/newpatrol")
    await live.say(POLICE, "南门至3号楼")
    await live.press(POLICE, "v1:pnew:day:2026-05-19")
    await live.say(POLICE, "10:00-12:00")
    await live.location(POLICE, INSIDE)
    await live.say(POLICE, places)
    await live.press(POLICE, "v1:pnew:lead:none")
    await live.press(POLICE, "v1:pnew:rep:once")
    await live.press(POLICE, "v1:pnew:ok:1")
    shifts = await live.repos(
        lambda r: r.patrols.upcoming(TOMORROW_TEN - timedelta(hours=1), TOMORROW_TEN + timedelta(hours=1))
    )
    assert [(s.starts_at, s.max_volunteers) for s in shifts] == [(TOMORROW_TEN, int(places))]
    return shifts[0]


async def signup_of(live: Live, shift_id: int, telegram_id: int) -> PatrolSignup | None:
    found = await live.repos(lambda r: r.users.by_identity("telegram", str(telegram_id)))
    return await live.repos(lambda r: r.patrols.signup(shift_id, found[0].id))


async def test_a_patrol_on_telegram_from_planning_to_points(onboarded: Live, api: FakeBotApi) -> None:
    live = onboarded
    await live.onboard(NEIGHBOUR, "5")
    for volunteer in (REPORTER, NEIGHBOUR):
        await live.say(volunteer, "/volunteer")
    shift = await plan_shift_on_telegram(live, "1")

    # One place: the first to press gets it, the second is offered the waiting list.
    listing = await live.say(REPORTER, "/patrols")
    assert f"v1:pat:join:{shift.id}" in listing[-1].callback_data
    await live.press(REPORTER, f"v1:pat:join:{shift.id}", listing[-1])
    listing = await live.say(NEIGHBOUR, "/patrols")
    assert f"v1:pat:join:{shift.id}" not in listing[-1].callback_data
    await live.press(NEIGHBOUR, f"v1:pat:wait:{shift.id}", listing[-1])
    assert (await signup_of(live, shift.id, NEIGHBOUR)).state == "waiting"

    # The first cancels in good time: the place goes to the first on the waiting list, who is told.
    before = len(api.sent_messages(NEIGHBOUR))
    mine = await live.say(REPORTER, "/myshifts")
    await live.press(REPORTER, f"v1:pat:leave:{shift.id}", mine[-1])
    assert (await signup_of(live, shift.id, REPORTER)).state == "cancelled"
    assert (await signup_of(live, shift.id, NEIGHBOUR)).state == "confirmed"
    told = api.sent_messages(NEIGHBOUR)[before:]
    assert told and "南门至3号楼" in content(told[-1])

    # Check-in opens 15 minutes before the start: a location 800 m away is not close enough.
    live.clock.set(TOMORROW_TEN - timedelta(minutes=10))
    await live.say(NEIGHBOUR, "/checkin")
    update_ids: list[int] = []
    far = await live._after(
        NEIGHBOUR,
        lambda: update_ids.append(api.push_location(NEIGHBOUR, *north_of(INSIDE, 800), live_period=3600)),
    )
    assert "800" in content(far[0]) and "300" in content(far[0])
    assert (await signup_of(live, shift.id, NEIGHBOUR)).checked_in_at is None
    # Walking over with a live location: updates on the way are not answered, arriving is.
    shared = api.pushed_update(update_ids[0])["message"]["message_id"]
    on_the_way = await live._after(
        NEIGHBOUR, lambda: api.push_location_update(NEIGHBOUR, shared, *north_of(INSIDE, 500))
    )
    assert on_the_way == []
    arrived = await live._after(
        NEIGHBOUR, lambda: api.push_location_update(NEIGHBOUR, shared, *north_of(INSIDE, 100))
    )
    assert len(arrived) >= 1
    checked_in = await signup_of(live, shift.id, NEIGHBOUR)
    assert checked_in.checked_in_at == live.clock.now() and checked_in.checkin_method == "location"

    # Check-out at 11:30, inside the radius: 90 minutes (counted from the start), 15 points.
    live.clock.set(TOMORROW_TEN + timedelta(minutes=90))
    await live.say(NEIGHBOUR, "/checkout")
    await live.location(NEIGHBOUR, INSIDE)
    done = await signup_of(live, shift.id, NEIGHBOUR)
    assert (done.minutes_worked, done.checkout_method) == (90, "location")
    user = await live.repos(lambda r: r.users.by_identity("telegram", str(NEIGHBOUR)))
    assert await live.repos(lambda r: r.ledger.balance(user[0].id)) == 15
    points = await live.say(NEIGHBOUR, "/points")
    assert "15" in content(points[-1])

    # The officer adds a manual award (typing part of the name), enough for the rice (100 points).
    await live.say(POLICE, "/award")
    await live.say(POLICE, f"User{NEIGHBOUR}")
    await live.press(POLICE, f"v1:awf:who:{user[0].id}")
    await live.say(POLICE, "90")
    await live.say(POLICE, "巡逻中发现并劝离可疑人员")
    await live.press(POLICE, "v1:awf:ok:1")
    assert await live.repos(lambda r: r.ledger.balance(user[0].id)) == 105

    # Redeeming holds the points until the police group approves; approval hands out a pickup code.
    catalogue = await live.say(NEIGHBOUR, "/rewards")
    await live.press(NEIGHBOUR, "v1:rwd:ask:rice", catalogue[-1])
    await live.press(NEIGHBOUR, "v1:rwd:ok:rice")
    statement = await live.repos(lambda r: r.ledger.statement(user[0].id))
    assert (statement.balance, statement.reserved) == (5, 100)
    card = next(
        m for m in reversed(api.sent_messages(GROUP)) if any("v1:rdm:ok:" in d for d in m.callback_data)
    )
    approve = next(d for d in card.callback_data if d.startswith("v1:rdm:ok:"))
    await live.press(POLICE, approve, card)
    await live.press(POLICE, approve, card)  # a second click changes nothing
    redemption = await live.repos(lambda r: r.rewards.get(int(approve.rsplit(":", 1)[1])))
    assert redemption.state == "approved" and redemption.pickup_code
    assert redemption.pickup_code in content(api.sent_messages(NEIGHBOUR)[-1])
    statement = await live.repos(lambda r: r.ledger.statement(user[0].id))
    assert (statement.balance, statement.reserved) == (5, 0)
    assert await live.repos(lambda r: r.ledger.verify())


async def press_in_menu(bot: WeComBot, user: str, action: str) -> list[dict[str, Any]]:
    """Reply with the number the member's open menus give `action` (what a person would type)."""
    entries = await bot.repos(lambda r: r.menus.entries("wecom", user))
    numbers = [n for n, (offered, state) in entries.items() if offered == action and state == "open"]
    assert len(numbers) == 1, f"{action} is not (once) in {user}'s open menus {entries}"
    return await bot.say(user, str(numbers[0]))


async def test_patrols_on_wecom_check_in_by_location_and_a_no_show_ban(
    fake: FakeWeComApi, bot: WeComBot
) -> None:
    officer, volunteer = "ZhangJingGuan", "ZhaoLei"
    await bot.grant(officer, accounts.POLICE, name="张警官")
    await bot.onboard(officer, None)
    await bot.onboard(volunteer, "3")
    await bot.say(volunteer, "/volunteer")
    police = (await bot.repos(lambda r: r.users.by_identity("wecom", officer)))[0]
    user = (await bot.repos(lambda r: r.users.by_identity("wecom", volunteer)))[0]

    async def shift_on(day: int) -> int:
        starts = TOMORROW_TEN + timedelta(days=day)
        plan = patrols.Plan(
            area=f"滨河步道 {day}",
            day=starts.astimezone(bot.community.tz).date(),
            start=starts.astimezone(bot.community.tz).time(),
            end=(starts + timedelta(hours=2)).astimezone(bot.community.tz).time(),
            meeting_lat=INSIDE[0],
            meeting_lon=INSIDE[1],
            meeting_label=None,
            min_volunteers=1,
            max_volunteers=4,
            leader_id=None,
            weekdays=None,
        )
        created = await bot.repos(lambda r: patrols.create(r, bot.community, police, plan, bot.clock.now()))
        return created.shifts[0].id

    attended, missed, missed_again, refused = [await shift_on(day) for day in range(4)]
    for shift_id in (attended, missed, missed_again):
        await bot.say(volunteer, "/patrols")
        await press_in_menu(bot, volunteer, f"v1:pat:join:{shift_id}")
    signups = [
        await bot.repos(lambda r, s=s: r.patrols.signup(s, user.id)) for s in (attended, missed, missed_again)
    ]
    assert [s.state for s in signups] == ["confirmed"] * 3

    # Check-in with WeChat Work's location message: 700 m away is refused, at the meeting point accepted.
    bot.clock.set(TOMORROW_TEN - timedelta(minutes=5))
    await bot.say(volunteer, "/checkin")
    far = await bot.location(volunteer, north_of(INSIDE, 700))
    assert any("700" in text for text in texts(far))
    await bot.location(volunteer, INSIDE)
    assert (await bot.repos(lambda r: r.patrols.signup(attended, user.id))).checkin_method == "location"

    # The volunteer forgets to check out; then misses the next two shifts entirely.
    for day in range(3):
        bot.clock.set(TOMORROW_TEN + timedelta(days=day, hours=2, minutes=1))
        await bot.rt.engine.fire_due()
        await bot.settle()
    closed = await bot.repos(lambda r: r.patrols.signup(attended, user.id))
    assert (closed.minutes_worked, closed.flagged, closed.no_show) == (120, True, False)
    assert await bot.repos(lambda r: r.patrols.no_shows(user.id, None)) == 2
    assert await bot.repos(lambda r: r.ledger.balance(user.id)) == 20

    # Banned after two no-shows: signing up is refused with the reason, nothing stored.
    bot.clock.set(TOMORROW_TEN + timedelta(days=2, hours=3))
    await bot.say(volunteer, "/patrols")
    before = len(fake.texts_to(volunteer))
    await press_in_menu(bot, volunteer, f"v1:pat:join:{refused}")
    assert len(fake.texts_to(volunteer)) > before
    assert await bot.repos(lambda r: r.patrols.signup(refused, user.id)) is None
    assert await bot.repos(lambda r: patrols.ban_check(r, bot.community, user.id, bot.clock.now()))

    # The officer awards 40 points in the app, the volunteer asks for the haircut voucher (50)...
    await bot.say(officer, "/award")
    await bot.say(officer, volunteer)
    await press_in_menu(bot, officer, f"v1:awf:who:{user.id}")
    await bot.say(officer, "40")
    await bot.say(officer, "协助调解邻里纠纷")
    await press_in_menu(bot, officer, "v1:awf:ok:1")
    await bot.say(volunteer, "/rewards")
    await press_in_menu(bot, volunteer, "v1:rwd:ask:haircut")
    await press_in_menu(bot, volunteer, "v1:rwd:ok:haircut")
    assert await bot.repos(lambda r: r.ledger.reserved(user.id)) == 50
    # ...and the officer, whose police group is a robot without buttons, rejects it from /redemptions.
    await bot.say(officer, "/redemptions")
    pending = await bot.repos(lambda r: r.rewards.pending())
    await press_in_menu(bot, officer, f"v1:rdm:no:{pending[0].id}")
    await bot.say(officer, "本月理发券已暂停发放")
    statement = await bot.repos(lambda r: r.ledger.statement(user.id))
    assert (statement.balance, statement.reserved) == (60, 0)
    assert "本月理发券已暂停发放" in fake.texts_to(volunteer)[-1]
    assert await bot.repos(lambda r: r.ledger.verify())


def texts(bodies: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["content"] for b in bodies if b["msgtype"] == "text"]
