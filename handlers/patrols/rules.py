"""Patrol shifts and series, volunteers, sign-up rules, the waiting list and the shift's schedules.

Decisions and database work only: what to tell whom is the views' and
announce.py's business, and the dialogues only turn buttons and typed answers
into these calls. Times are stored in UTC; what people type and what a series
repeats are wall-clock times in the community's time zone.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from handlers.accounts import rules as accounts
from handlers.community import Community, GeoPoint
from handlers.errors import DomainError, PermissionDenied, StaleAction
from handlers.patrols import wording
from handlers.patrols.local_time import DAILY, WEEKDAYS, at_local, hhmm, local_day, parse_hhmm
from storage.models import PatrolSeries, PatrolShift, PatrolSignup, User
from storage.patrols import CANCELLED, CONFIRMED, SCHEDULED, WAITING
from storage.repositories import Repos

GENERATE = "patrol_generate"
REMIND = "patrol_remind"
UNDERSTAFFED = "patrol_understaffed"
# Settling attendance at the shift's end (run by the attendance feature): armed here with the
# shift's other schedules, so whatever moves or cancels a shift moves or cancels it too.
CLOSE = "patrol_close"

AREA_MAX_CHARS = 64
MAX_VOLUNTEERS = 50
# How far ahead a shift may be planned; further is more likely a typo than a plan.
MAX_DAYS_AHEAD = 180
# Series are extended once a day, shortly after local midnight.
GENERATE_AT = time(0, 10)
# Who may sign up without asking: staff, and residents who became volunteers.
CAN_PATROL = frozenset({accounts.VOLUNTEER, *accounts.STAFF})

REPEATS = ("once", "daily", "weekly", "weekdays")

_RANGE_SEP = r"\s*(?:-|–|—|−|~|至|到)\s*"
_TIME_RANGE_RE = re.compile(rf"^(\d{{1,2}})(?:[:.]?(\d{{2}}))?{_RANGE_SEP}(\d{{1,2}})(?:[:.]?(\d{{2}}))?$")
_SIZE_RE = re.compile(rf"^(\d{{1,3}})(?:{_RANGE_SEP}(\d{{1,3}}))?\s*(?:人|名|people|persons)?$")
_DATE_RE = re.compile(
    r"^(?:(?P<year>\d{4})\s*[-/.年]\s*)?(?P<month>\d{1,2})\s*[-/.月]\s*(?P<day>\d{1,2})\s*[日号號]?$"
)
_RELATIVE_DAYS = {"今天": 0, "today": 0, "明天": 1, "tomorrow": 1, "后天": 2, "後天": 2}


# --- what people type --------------------------------------------------------------------


def _normalised(text: str) -> str:
    # NFKC folds what Chinese input methods type (２０：００, －, ～) to ASCII.
    return unicodedata.normalize("NFKC", text).strip().casefold()


def parse_date(text: str, today: date) -> date:
    """A date typed like 2026-11-28, 11-28, 11/28, 11月28日 or 明天; a year-less date means the next one."""
    value = _normalised(text)
    if value in _RELATIVE_DAYS:
        day = today + timedelta(days=_RELATIVE_DAYS[value])
    else:
        match = _DATE_RE.match(value)
        if match is None:
            raise DomainError("patrol.new.bad_date")
        month, day_of_month = int(match["month"]), int(match["day"])
        try:
            if match["year"]:
                day = date(int(match["year"]), month, day_of_month)
            else:
                day = date(today.year, month, day_of_month)
                if day < today:
                    day = date(today.year + 1, month, day_of_month)
        except ValueError:
            raise DomainError("patrol.new.bad_date") from None
    check_day(day, today)
    return day


def check_day(day: date, today: date) -> None:
    if day < today:
        raise DomainError("patrol.new.date_past")
    if day > today + timedelta(days=MAX_DAYS_AHEAD):
        raise DomainError("patrol.new.date_too_far", days=MAX_DAYS_AHEAD)


def parse_time_range(text: str) -> tuple[time, time]:
    """Start and end typed like 19:00-21:00, 19:00–21:00, 1900-2100 or 7-9, on the same day."""
    match = _TIME_RANGE_RE.match(_normalised(text))
    if match is None:
        raise DomainError("patrol.new.bad_time")
    start_h, start_m, end_h, end_m = (int(part or 0) for part in match.groups())
    if start_h > 23 or end_h > 23 or start_m > 59 or end_m > 59:
        raise DomainError("patrol.new.bad_time")
    start, end = time(start_h, start_m), time(end_h, end_m)
    if end <= start:
        raise DomainError("patrol.new.end_before_start")
    return start, end


def parse_places(text: str) -> tuple[int | None, int]:
    """Minimum and maximum volunteers typed like 2-6, or just a number (the minimum is then None)."""
    match = _SIZE_RE.match(_normalised(text))
    if match is None:
        raise DomainError("patrol.new.bad_size", max=MAX_VOLUNTEERS)
    if match[2] is None:
        return None, int(match[1])
    return int(match[1]), int(match[2])


def parse_size(text: str) -> tuple[int, int]:
    """Minimum and maximum volunteers of a new shift: 2-6, or 4 for exactly four."""
    low, high = parse_places(text)
    low = high if low is None else low
    check_size(low, high)
    return low, high


def check_size(low: int, high: int) -> None:
    if not (0 <= low <= high and 1 <= high <= MAX_VOLUNTEERS):
        raise DomainError("patrol.new.bad_size", max=MAX_VOLUNTEERS)


def weekdays_for(repeat: str, day: date) -> str | None:
    """The ISO weekdays a series repeats on, or None for a single shift."""
    if repeat == "daily":
        return DAILY
    if repeat == "weekdays":
        return WEEKDAYS
    if repeat == "weekly":
        return str(day.isoweekday())
    return None


# --- permissions ---------------------------------------------------------------------------


def can_manage(user: User) -> bool:
    return user.role in accounts.COMMANDERS


def require_manager(user: User) -> None:
    if not can_manage(user):
        raise PermissionDenied()


# --- creating shifts and series ------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What /newpatrol collected: one shift, or a series when `weekdays` is set."""

    area: str
    day: date
    start: time
    end: time
    meeting_lat: float
    meeting_lon: float
    meeting_label: str | None
    min_volunteers: int
    max_volunteers: int
    leader_id: int | None
    weekdays: str | None


@dataclass(frozen=True)
class Created:
    shifts: list[PatrolShift]
    series: PatrolSeries | None = None


async def create(repos: Repos, community: Community, actor: User, plan: Plan, now: datetime) -> Created:
    """Create a single shift, or a series and its shifts for the days ahead."""
    require_manager(actor)
    area = plan.area.strip()[:AREA_MAX_CHARS]
    if not area:
        raise DomainError("patrol.new.need_area")
    tz = community.tz
    check_day(plan.day, local_day(now, tz))
    if plan.end <= plan.start:
        raise DomainError("patrol.new.end_before_start")
    if at_local(plan.day, plan.start, tz) <= now:
        raise DomainError("patrol.new.time_past")
    check_size(plan.min_volunteers, plan.max_volunteers)
    if not community.is_inside(GeoPoint(lat=plan.meeting_lat, lon=plan.meeting_lon)):
        raise DomainError("patrol.new.meeting_outside", community=community.name)
    common = {
        "area": area,
        "meeting_lat": plan.meeting_lat,
        "meeting_lon": plan.meeting_lon,
        "meeting_label": plan.meeting_label,
        "min_volunteers": plan.min_volunteers,
        "max_volunteers": plan.max_volunteers,
        "leader_id": plan.leader_id,
        "created_by": actor.id,
    }
    if plan.weekdays is None:
        shift = await _add_shift(
            repos,
            community,
            now,
            series_id=None,
            starts_at=at_local(plan.day, plan.start, tz),
            ends_at=at_local(plan.day, plan.end, tz),
            **common,
        )
        assert shift is not None  # only shifts of a series can already exist
        return Created([shift])
    series = await repos.patrols.create_series(
        now,
        weekdays=plan.weekdays,
        start_time=hhmm(plan.start),
        end_time=hhmm(plan.end),
        # Generation continues from the day after this, so the series starts on the chosen date.
        generated_until=(plan.day - timedelta(days=1)).isoformat(),
        **common,
    )
    return Created(await generate(repos, community, series, now), series)


async def _add_shift(repos: Repos, community: Community, now: datetime, **values: Any) -> PatrolShift | None:
    shift = await repos.patrols.add_shift(now, **values)
    if shift is not None:
        await arm_reminders(repos, community, shift, now)
        await arm_close(repos, shift)
    return shift


async def generate(
    repos: Repos, community: Community, series: PatrolSeries, now: datetime
) -> list[PatrolShift]:
    """The series' missing shifts up to `generate_days_ahead` days from today; safe to run again and again."""
    if not series.active:
        return []
    tz = community.tz
    today = local_day(now, tz)
    first = today
    if series.generated_until is not None:
        first = max(today, date.fromisoformat(series.generated_until) + timedelta(days=1))
    last = today + timedelta(days=community.patrols.generate_days_ahead - 1)
    start, end = parse_hhmm(series.start_time), parse_hhmm(series.end_time)
    created: list[PatrolShift] = []
    day = first
    while day <= last:
        starts_at = at_local(day, start, tz)
        if str(day.isoweekday()) in series.weekdays and starts_at > now:
            shift = await _add_shift(
                repos,
                community,
                now,
                series_id=series.id,
                area=series.area,
                starts_at=starts_at,
                ends_at=at_local(day, end, tz),
                meeting_lat=series.meeting_lat,
                meeting_lon=series.meeting_lon,
                meeting_label=series.meeting_label,
                min_volunteers=series.min_volunteers,
                max_volunteers=series.max_volunteers,
                leader_id=series.leader_id,
                created_by=series.created_by,
            )
            if shift is not None:
                created.append(shift)
        day += timedelta(days=1)
    if first <= last:
        await repos.patrols.mark_generated(series.id, last.isoformat())
    return created


async def generate_all(repos: Repos, community: Community, now: datetime) -> int:
    total = 0
    for series in await repos.patrols.active_series():
        total += len(await generate(repos, community, series, now))
    return total


async def arm_next_generation(repos: Repos, community: Community, now: datetime) -> None:
    tomorrow = local_day(now, community.tz) + timedelta(days=1)
    ref = tomorrow.isoformat()
    # Arming an existing row would make one that fired fire again; leave it alone.
    if await repos.schedules.get(GENERATE, ref) is None:
        await repos.schedules.arm(GENERATE, ref, at_local(tomorrow, GENERATE_AT, community.tz))


async def on_start(repos: Repos, community: Community, now: datetime) -> None:
    """Catch up on generation (the bot may have been down) and arm tomorrow's run."""
    await generate_all(repos, community, now)
    await arm_next_generation(repos, community, now)


# --- a shift's schedules -------------------------------------------------------------------


def _reminder_ref(shift_id: int, hours: float) -> str:
    return f"{shift_id}:{hours:g}"


async def arm_reminders(repos: Repos, community: Community, shift: PatrolShift, now: datetime) -> None:
    """(Re-)arm the reminders of a shift for its current start; ones already past are dropped."""
    rules = community.patrols
    for hours in rules.reminder_hours:
        ref = _reminder_ref(shift.id, hours)
        due = shift.starts_at - timedelta(hours=hours)
        if due > now:
            await repos.schedules.arm(REMIND, ref, due)
        else:
            await repos.schedules.cancel(REMIND, ref)
    warn_at = shift.starts_at - timedelta(hours=rules.understaffed_warning_hours)
    if warn_at > now:
        await repos.schedules.arm(UNDERSTAFFED, str(shift.id), warn_at)
    else:
        await repos.schedules.cancel(UNDERSTAFFED, str(shift.id))


async def arm_close(repos: Repos, shift: PatrolShift) -> None:
    """Settle attendance when the shift ends: no-shows marked, forgotten check-outs closed and flagged."""
    await repos.schedules.arm(CLOSE, str(shift.id), shift.ends_at)


async def _disarm(repos: Repos, community: Community, shift_id: int) -> None:
    for hours in community.patrols.reminder_hours:
        await repos.schedules.cancel(REMIND, _reminder_ref(shift_id, hours))
    await repos.schedules.cancel(UNDERSTAFFED, str(shift_id))
    await repos.schedules.cancel(CLOSE, str(shift_id))


@dataclass(frozen=True)
class Reminder:
    """A reminder that is still due: whom to remind, and whom they should call instead of cancelling."""

    shift: PatrolShift
    people: list[User]
    # Too late to cancel by button: the reminder says whom to tell instead.
    late: bool
    leader: User | None


async def due_reminder(repos: Repos, community: Community, shift_id: int, now: datetime) -> Reminder | None:
    shift = await repos.patrols.shift(shift_id)
    if shift is None or shift.state != SCHEDULED or shift.starts_at <= now:
        return None
    late = shift.starts_at - now <= timedelta(hours=community.patrols.cancel_hours_before)
    signups = await repos.patrols.signups(shift.id, (CONFIRMED,))
    people = await repos.users.many([s.user_id for s in signups])
    confirmed = [people[s.user_id] for s in signups if s.user_id in people]
    return Reminder(shift, confirmed, late, await leader_of(repos, shift))


async def understaffed(repos: Repos, shift_id: int, now: datetime) -> tuple[PatrolShift, int] | None:
    """The shift and its places taken, if it is still ahead with fewer people than its minimum."""
    shift = await repos.patrols.shift(shift_id)
    if shift is None or shift.state != SCHEDULED or shift.starts_at <= now:
        return None
    taken = (await repos.patrols.taken([shift.id])).get(shift.id, 0)
    if taken >= shift.min_volunteers:
        return None
    return shift, taken


# --- signing up ----------------------------------------------------------------------------


class ShiftFull(DomainError):
    """Every place is taken; the waiting list is open."""

    def __init__(self) -> None:
        super().__init__("patrol.full")


@dataclass(frozen=True)
class Joined:
    shift: PatrolShift
    signup: PatrolSignup
    # 0 with a place, else the place on the waiting list.
    position: int


async def _open_shift(repos: Repos, shift_id: int, now: datetime) -> PatrolShift:
    """The shift, locked for counting places, if it has not been cancelled or started."""
    shift = await repos.patrols.shift(shift_id, lock=True)
    if shift is None:
        raise StaleAction()
    if shift.state != SCHEDULED:
        raise DomainError("patrol.shift_cancelled")
    if shift.starts_at <= now:
        raise DomainError("patrol.shift_started")
    return shift


async def leader_of(repos: Repos, shift: PatrolShift) -> User | None:
    return await repos.users.get(shift.leader_id) if shift.leader_id else None


async def no_show_count(repos: Repos, user: User) -> int:
    return await repos.patrols.no_shows(user.id, user.no_shows_forgiven_at)


async def ban_check(repos: Repos, community: Community, user_id: int, now: datetime) -> bool:
    """True if this person may not sign up: too many no-shows since police last forgave them."""
    user = await repos.users.get(user_id)
    if user is None:
        return False
    return await no_show_count(repos, user) >= community.patrols.no_show_ban_after


async def join(
    repos: Repos, community: Community, user: User, shift_id: int, now: datetime, *, waiting_ok: bool
) -> Joined:
    """Take a place, or (with `waiting_ok`) join the waiting list when every place is taken."""
    if user.role not in CAN_PATROL:
        raise DomainError("patrol.volunteer_first")
    shift = await _open_shift(repos, shift_id, now)
    closes_at = shift.starts_at - timedelta(minutes=community.patrols.signup_closes_minutes)
    if now > closes_at:
        raise DomainError("patrol.signup_closed", minutes=community.patrols.signup_closes_minutes)
    existing = await repos.patrols.signup(shift.id, user.id)
    if existing is not None and existing.state == CONFIRMED:
        raise DomainError("patrol.already_signed_up")
    if existing is not None and existing.state == WAITING:
        position = await repos.patrols.waiting_position(existing)
        raise DomainError("patrol.already_waiting", position=position)
    strikes = await no_show_count(repos, user)
    if strikes >= community.patrols.no_show_ban_after:
        raise DomainError("patrol.banned", count=strikes)
    clash = await repos.patrols.overlapping(user.id, shift.starts_at, shift.ends_at, shift.id)
    if clash is not None:
        raise DomainError("patrol.overlap", **wording.shift_params(community, clash))
    # The shift row is locked, so nobody else counts (or takes) a place until we commit.
    taken = (await repos.patrols.taken([shift.id])).get(shift.id, 0)
    if taken < shift.max_volunteers:
        signup = await repos.patrols.put_signup(shift.id, user.id, CONFIRMED, now)
        return Joined(shift, signup, 0)
    if not waiting_ok:
        raise ShiftFull()
    signup = await repos.patrols.put_signup(shift.id, user.id, WAITING, now)
    return Joined(shift, signup, await repos.patrols.waiting_position(signup))


@dataclass(frozen=True)
class Left:
    shift: PatrolShift
    # What the sign-up was: confirmed or waiting.
    was: str
    # Who got the freed place from the waiting list (to be told).
    promoted: list[User]


async def leave(repos: Repos, community: Community, user: User, shift_id: int, now: datetime) -> Left:
    """Withdraw a sign-up; a freed place goes to the first suitable person on the waiting list."""
    shift = await _open_shift(repos, shift_id, now)
    signup = await repos.patrols.signup(shift.id, user.id)
    if signup is None or signup.state == CANCELLED:
        raise DomainError("patrol.not_signed_up")
    if signup.state == WAITING:
        # Leaving the waiting list frees nobody's plans: allowed until the start.
        await repos.patrols.move_signup(signup.id, WAITING, CANCELLED, now)
        return Left(shift, WAITING, [])
    hours = community.patrols.cancel_hours_before
    if shift.starts_at - now < timedelta(hours=hours):
        raise DomainError(
            "patrol.cancel_too_late", hours=hours, contact=wording.contact(await leader_of(repos, shift))
        )
    await repos.patrols.move_signup(signup.id, CONFIRMED, CANCELLED, now)
    return Left(shift, CONFIRMED, await promote(repos, community, shift, now))


async def promote(repos: Repos, community: Community, shift: PatrolShift, now: datetime) -> list[User]:
    """Fill free places from the waiting list, first come first served; who was promoted (to be told).

    Someone who meanwhile holds an overlapping shift, or is banned, keeps waiting.
    """
    free = shift.max_volunteers - (await repos.patrols.taken([shift.id])).get(shift.id, 0)
    promoted: list[int] = []
    if free <= 0:
        return []
    for signup in await repos.patrols.signups(shift.id, (WAITING,)):
        if len(promoted) >= free:
            break
        if await repos.patrols.overlapping(signup.user_id, shift.starts_at, shift.ends_at, shift.id):
            continue
        if await ban_check(repos, community, signup.user_id, now):
            continue
        if await repos.patrols.move_signup(signup.id, WAITING, CONFIRMED, now):
            promoted.append(signup.user_id)
    people = await repos.users.many(promoted) if promoted else {}
    return [people[user_id] for user_id in promoted if user_id in people]


# --- what people see ----------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    shift: PatrolShift
    taken: int
    # The viewer's sign-up state (confirmed/waiting) and waiting-list place, if any.
    mine: str | None
    position: int


LIST_DAYS = 14
LIST_MAX = 10


async def upcoming(repos: Repos, user: User, now: datetime) -> list[Listed]:
    """Scheduled shifts of the next two weeks, soonest first, with places taken and the viewer's part."""
    shifts = await repos.patrols.upcoming(now, now + timedelta(days=LIST_DAYS), LIST_MAX)
    taken = await repos.patrols.taken([s.id for s in shifts]) if shifts else {}
    mine = {signup.shift_id: signup for signup, _shift in await repos.patrols.of_user(user.id, now, 50)}
    listed = []
    for shift in shifts:
        signup = mine.get(shift.id)
        position = await repos.patrols.waiting_position(signup) if signup and signup.state == WAITING else 0
        listed.append(Listed(shift, taken.get(shift.id, 0), signup.state if signup else None, position))
    return listed


async def my_shifts(repos: Repos, user: User, now: datetime) -> list[Listed]:
    """The person's shifts not over yet, confirmed and waiting, soonest first."""
    found = await repos.patrols.of_user(user.id, now)
    taken = await repos.patrols.taken([shift.id for _signup, shift in found]) if found else {}
    listed = []
    for signup, shift in found:
        position = await repos.patrols.waiting_position(signup) if signup.state == WAITING else 0
        listed.append(Listed(shift, taken.get(shift.id, 0), signup.state, position))
    return listed


async def roster(repos: Repos, shift: PatrolShift) -> tuple[list[User], list[User]]:
    """Who holds a place, and who waits (in order)."""
    signups = await repos.patrols.signups(shift.id)
    people = await repos.users.many([s.user_id for s in signups]) if signups else {}
    confirmed = [people[s.user_id] for s in signups if s.state == CONFIRMED and s.user_id in people]
    waiting = [people[s.user_id] for s in signups if s.state == WAITING and s.user_id in people]
    return confirmed, waiting


@dataclass(frozen=True)
class Managed:
    """A shift as police see it: who is on it and who waits, its series and its leader."""

    shift: PatrolShift
    confirmed: list[User]
    waiting: list[User]
    series: PatrolSeries | None
    leader: User | None


async def manage(repos: Repos, actor: User, shift_id: int, now: datetime) -> Managed:
    shift = await managed_shift(repos, actor, shift_id, now)
    confirmed, waiting = await roster(repos, shift)
    series = await repos.patrols.series(shift.series_id) if shift.series_id else None
    return Managed(shift, confirmed, waiting, series, await leader_of(repos, shift))


# --- police: editing, cancelling, stopping --------------------------------------------------


async def people_on(repos: Repos, shift: PatrolShift, *, skip: tuple[int, ...] = ()) -> list[User]:
    """Everyone signed up (in sign-up order) and the leader: who hears about a change."""
    recipients = [s.user_id for s in await repos.patrols.signups(shift.id)]
    if shift.leader_id is not None and shift.leader_id not in recipients:
        recipients.append(shift.leader_id)
    recipients = [uid for uid in recipients if uid not in skip]
    people = await repos.users.many(recipients) if recipients else {}
    return [people[uid] for uid in recipients if uid in people]


async def managed_shift(repos: Repos, actor: User, shift_id: int, now: datetime) -> PatrolShift:
    require_manager(actor)
    return await _open_shift(repos, shift_id, now)


@dataclass(frozen=True)
class Retimed:
    old: PatrolShift
    shift: PatrolShift
    # Everyone to tell (not the officer who made the change).
    people: list[User]


async def retime(
    repos: Repos, community: Community, actor: User, shift_id: int, start: time, end: time, now: datetime
) -> Retimed | None:
    """Move a shift to new hours on its day. None if nothing changed."""
    shift = await managed_shift(repos, actor, shift_id, now)
    tz = community.tz
    day = local_day(shift.starts_at, tz)
    if end <= start:
        raise DomainError("patrol.new.end_before_start")
    starts_at, ends_at = at_local(day, start, tz), at_local(day, end, tz)
    if starts_at <= now:
        raise DomainError("patrol.new.time_past")
    if (starts_at, ends_at) == (shift.starts_at, shift.ends_at):
        return None
    if shift.series_id is not None and starts_at != shift.starts_at:
        other = await repos.patrols.series_shift_at(shift.series_id, starts_at)
        if other is not None:
            raise DomainError("patrol.edit.clash")
    old = shift
    shift = await repos.patrols.update_shift(shift.id, now, starts_at=starts_at, ends_at=ends_at)
    await arm_reminders(repos, community, shift, now)
    await arm_close(repos, shift)
    return Retimed(old, shift, await people_on(repos, shift, skip=(actor.id,)))


@dataclass(frozen=True)
class Resized:
    shift: PatrolShift
    # Given a place from the waiting list (told so, and not told again about the change).
    promoted: list[User]
    # Everyone else to tell (not the officer who made the change).
    people: list[User]


async def resize(
    repos: Repos,
    community: Community,
    actor: User,
    shift_id: int,
    low: int | None,
    high: int,
    now: datetime,
) -> Resized:
    """Change the places (and, if given, the minimum); more places are filled from the waiting list."""
    shift = await managed_shift(repos, actor, shift_id, now)
    low = min(shift.min_volunteers, high) if low is None else low
    check_size(low, high)
    taken = (await repos.patrols.taken([shift.id])).get(shift.id, 0)
    if high < taken:
        raise DomainError("patrol.edit.below_taken", taken=taken)
    shift = await repos.patrols.update_shift(shift.id, now, min_volunteers=low, max_volunteers=high)
    promoted = await promote(repos, community, shift, now)
    skip = (actor.id, *(user.id for user in promoted))
    return Resized(shift, promoted, await people_on(repos, shift, skip=skip))


async def _cancel(repos: Repos, community: Community, shift: PatrolShift, now: datetime) -> list[int]:
    """Cancel one shift and its schedules; the people who were on it (not told here)."""
    if not await repos.patrols.cancel_shift(shift.id, now):
        return []
    await _disarm(repos, community, shift.id)
    people = [s.user_id for s in await repos.patrols.signups(shift.id)]
    if shift.leader_id is not None and shift.leader_id not in people:
        people.append(shift.leader_id)
    return people


async def cancel_shift(
    repos: Repos, community: Community, actor: User, shift_id: int, now: datetime
) -> tuple[PatrolShift, list[User]]:
    """Cancel a shift that has not started: it and everyone to tell (not the officer cancelling it)."""
    shift = await managed_shift(repos, actor, shift_id, now)
    people = await people_on(repos, shift, skip=(actor.id,))
    await _cancel(repos, community, shift, now)
    return shift, people


async def series_to_stop(repos: Repos, actor: User, series_id: int) -> PatrolSeries:
    """The series police are about to stop, if it still runs."""
    require_manager(actor)
    series = await repos.patrols.series(series_id)
    if series is None:
        raise StaleAction()
    if not series.active:
        raise DomainError("patrol.series_already_stopped")
    return series


@dataclass(frozen=True)
class Stopped:
    series: PatrolSeries
    cancelled: int
    # Each person to tell (not the officer), with every shift of theirs that was cancelled.
    affected: list[tuple[User, list[PatrolShift]]]


async def stop_series(
    repos: Repos, community: Community, actor: User, series_id: int, now: datetime
) -> Stopped:
    """Stop a series and cancel its shifts yet to start."""
    require_manager(actor)
    series = await repos.patrols.series(series_id)
    if series is None:
        raise StaleAction()
    if not await repos.patrols.stop_series(series_id):
        raise DomainError("patrol.series_already_stopped")
    affected: dict[int, list[PatrolShift]] = {}
    cancelled = 0
    for shift in await repos.patrols.future_of_series(series_id, now):
        locked = await repos.patrols.shift(shift.id, lock=True)
        assert locked is not None
        for user_id in await _cancel(repos, community, locked, now):
            affected.setdefault(user_id, []).append(locked)
        cancelled += 1
    people = await repos.users.many(list(affected)) if affected else {}
    told = [
        (people[user_id], shifts)
        for user_id, shifts in affected.items()
        if user_id != actor.id and user_id in people
    ]
    return Stopped(series, cancelled, told)


# --- no-shows and bans ----------------------------------------------------------------------


async def ban_reached(
    repos: Repos, community: Community, user_id: int, newly: int = 1
) -> tuple[User, int] | None:
    """After marking `newly` no-shows of this person: the person and their count, if that reached the ban.

    Only the marking that crosses the line gets an answer, so the ban is announced once.
    """
    user = await repos.users.get(user_id)
    if user is None:
        return None
    count = await no_show_count(repos, user)
    limit = community.patrols.no_show_ban_after
    if not count - newly < limit <= count:
        return None
    return user, count


async def lift_ban(repos: Repos, community: Community, actor: User, user_id: int, now: datetime) -> User:
    """Police forgive someone's no-shows so far; they may sign up again (to be told so)."""
    require_manager(actor)
    user = await repos.users.get(user_id)
    if user is None:
        raise StaleAction()
    if not await ban_check(repos, community, user_id, now):
        raise DomainError("patrol.not_banned", name=wording.name(user))
    await repos.users.update(user_id, no_shows_forgiven_at=now)
    return user


@dataclass(frozen=True)
class VolunteerDesk:
    """What waits for the police about volunteers: requests to decide and bans they may lift."""

    requests: list[tuple[User, datetime]]
    requests_total: int
    banned: list[tuple[User, int]]


async def volunteer_desk(repos: Repos, community: Community, actor: User, shown: int) -> VolunteerDesk:
    """The oldest `shown` undecided requests and the `shown` people with most no-shows who may not
    sign up: what police would otherwise only see as buttons in a police group chat."""
    require_manager(actor)
    requests, total = await repos.patrols.pending_volunteers(shown)
    banned = await repos.patrols.banned(community.patrols.no_show_ban_after, shown)
    people = await repos.users.many([r.user_id for r in requests] + [user_id for user_id, _ in banned])
    return VolunteerDesk(
        requests=[(people[r.user_id], r.requested_at) for r in requests if r.user_id in people],
        requests_total=total,
        banned=[(people[user_id], count) for user_id, count in banned if user_id in people],
    )


# --- becoming a volunteer -------------------------------------------------------------------

# What asking to volunteer came to.
ALREADY = "already"
STAFF = "staff"
WELCOME = "welcome"
PENDING = "pending"
# Asked now: police are to be asked to approve.
REQUESTED = "requested"


async def volunteer(repos: Repos, community: Community, user: User, now: datetime) -> str:
    """A resident becomes a volunteer, or asks police to approve it. Returns the outcome."""
    if user.role == accounts.VOLUNTEER:
        return ALREADY
    if user.role in accounts.STAFF:
        return STAFF
    if not community.patrols.volunteer_approval:
        await repos.users.update(user.id, role=accounts.VOLUNTEER)
        return WELCOME
    if not await repos.patrols.request_volunteer(user.id, now):
        return PENDING
    return REQUESTED


async def decide_volunteer(repos: Repos, actor: User, user_id: int, approved: bool, now: datetime) -> User:
    """Police approve or reject a request to volunteer; the person (to be told)."""
    require_manager(actor)
    user = await repos.users.get(user_id)
    if user is None or await repos.patrols.volunteer_request(user_id) is None:
        raise StaleAction()
    if not await repos.patrols.decide_volunteer(user_id, approved, actor.id, now):
        raise DomainError("patrol.volunteer.decided_already", name=wording.name(user))
    # Someone made staff meanwhile keeps the more trusted role.
    if approved and user.role == accounts.RESIDENT:
        await repos.users.update(user_id, role=accounts.VOLUNTEER)
    return user
