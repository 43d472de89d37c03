"""Check-in, check-out, hours worked and no-shows of patrol shifts: decisions and database work.

A volunteer checks in and out with a shared location within the configured
radius of the meeting point, or the shift's leader (or police) confirms it by
hand. Hours count from check-in to check-out, clipped to the shift, and earn
points through the ledger under one source key per sign-up, so no path (a
double click, the leader and the volunteer at once, the closing job) can
credit them twice. At the end of the shift the closing job settles the rest:
forgotten check-outs are closed and flagged for review, those who never came
are marked as no-shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from handlers.accounts.rules import COMMANDERS
from handlers.attendance import wording
from handlers.community import Community, GeoPoint, haversine_m
from handlers.errors import DomainError, PermissionDenied, StaleAction
from handlers.patrols import rules as patrols
from storage.attendance import Attendance, PatrolStats, RosterLine
from storage.ledger import InsufficientPoints
from storage.models import PatrolShift, User
from storage.repositories import Repos

# Armed by the patrols feature with the shift's other schedules; settled here.
CLOSE = patrols.CLOSE
# The conversation that waits for a location (checkin.py): ended when a leader confirms by hand.
FLOW_NAME = "attendance"

REASON_PATROL = "points.reason.patrol"
REASON_PATROL_VOIDED = "points.reason.patrol_voided"

IN = "in"
OUT = "out"
LOCATION = "location"
MANUAL = "manual"
AUTO = "auto"
SCHEDULED = "scheduled"
CONFIRMED = "confirmed"

# The longest police summary of a closed shift lists this many people per kind.
SUMMARY_NAMES = 20


@dataclass(frozen=True)
class Outcome:
    """What a shared location achieved: `done` if it was close enough to check in or out."""

    attendance: Attendance
    distance_m: int
    done: bool
    minutes: int = 0
    points: int = 0


# --- arithmetic ------------------------------------------------------------------------


def checkout_source(signup_id: int) -> str:
    """The ledger source key of a sign-up's hours: one credit per sign-up, ever."""
    return f"patrol:checkout:{signup_id}"


def minutes_worked(shift: PatrolShift, checked_in_at: datetime, checked_out_at: datetime) -> int:
    """Check-in to check-out, clipped to the shift: arriving early does not count before the start."""
    start = max(checked_in_at, shift.starts_at)
    end = min(checked_out_at, shift.ends_at)
    return max(0, int((end - start).total_seconds() // 60))


def points_for(community: Community, minutes: int) -> int:
    return minutes * community.timebank.patrol_points_per_hour // 60


def checkin_opens(community: Community, shift: PatrolShift) -> datetime:
    return shift.starts_at - timedelta(minutes=community.patrols.checkin_opens_minutes)


def local_date(community: Community, moment: datetime) -> str:
    return moment.astimezone(community.tz).date().isoformat()


def local_day(community: Community, now: datetime) -> tuple[datetime, datetime]:
    """Midnight to midnight of today in the community's time zone, in UTC."""
    midnight = datetime.combine(now.astimezone(community.tz).date(), time(), tzinfo=community.tz)
    tomorrow = datetime.combine(midnight.date() + timedelta(days=1), time(), tzinfo=community.tz)
    return midnight.astimezone(UTC), tomorrow.astimezone(UTC)


def local_month(community: Community, now: datetime) -> tuple[str, datetime, datetime]:
    """This month of the community's calendar ("2026-05"), and when it starts and ends, in UTC."""
    today = now.astimezone(community.tz).date()
    first = today.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    start = datetime.combine(first, time(), tzinfo=community.tz).astimezone(UTC)
    end = datetime.combine(following, time(), tzinfo=community.tz).astimezone(UTC)
    return first.strftime("%Y-%m"), start, end


def distance_m(shift: PatrolShift, point: GeoPoint) -> int:
    return round(haversine_m(GeoPoint(lat=shift.meeting_lat, lon=shift.meeting_lon), point))


def is_leader_or_police(user: User, shift: PatrolShift) -> bool:
    return user.role in COMMANDERS or shift.leader_id == user.id


# --- the patrol log ----------------------------------------------------------------------


async def current_shift_id(repos: Repos, user_id: int, now: datetime) -> int | None:
    """The shift this person is on now (checked in, not out, not over): what they report belongs to it."""
    return await repos.attendance.current_shift_id(user_id, now)


# --- finding the sign-up to check in to or out of -----------------------------------------


async def shift_to_check_in(repos: Repos, community: Community, user: User, now: datetime) -> Attendance:
    """The confirmed sign-up whose check-in window is open (the soonest), or why there is none."""
    opens = timedelta(minutes=community.patrols.checkin_opens_minutes)
    in_window = [
        found
        for found in await repos.attendance.confirmed_overlapping(user.id, now, now + opens)
        if found.shift.closed_at is None
    ]
    for found in in_window:
        if found.signup.checked_in_at is None:
            return found
    if in_window:
        _refuse_check_in(community, in_window[0], now)
    midnight, tomorrow = local_day(community, now)
    upcoming = await repos.attendance.next_confirmed(user.id, now)
    if upcoming is not None and upcoming.shift.starts_at < tomorrow:
        _refuse_check_in(community, upcoming, now)
    ended = [
        found
        for found in await repos.attendance.confirmed_overlapping(user.id, midnight, now)
        if found.shift.ends_at <= now
    ]
    if ended:
        _refuse_check_in(community, ended[-1], now)
    if upcoming is not None:
        _refuse_check_in(community, upcoming, now)
    raise DomainError("attendance.no_shift")


async def shift_to_check_out(repos: Repos, user: User) -> Attendance:
    """The sign-up this person is checked in to (the soonest shift), or why there is none."""
    open_ones = await repos.attendance.open_checkins(user.id)
    if open_ones:
        return open_ones[0]
    last = await repos.attendance.last_checked_in(user.id)
    if last is not None:
        _refuse_check_out(last)
    raise DomainError("attendance.not_checked_in")


def _refuse_check_in(community: Community, found: Attendance, now: datetime) -> None:
    """Raise the reason this sign-up cannot be checked in to now, if there is one (said to its volunteer)."""
    shift, signup = found.shift, found.signup
    area = wording.area(shift)
    if signup.state != CONFIRMED:
        raise DomainError("attendance.not_signed_up", area=area)
    if shift.state != SCHEDULED:
        raise DomainError("attendance.shift_cancelled", area=area)
    if signup.checked_out_at is not None:
        raise DomainError("attendance.already_checked_out", area=area)
    if signup.checked_in_at is not None:
        raise DomainError("attendance.already_checked_in", area=area, at=wording.at(signup.checked_in_at))
    if shift.closed_at is not None or now >= shift.ends_at:
        raise DomainError("attendance.shift_ended", area=area, ended=wording.at(shift.ends_at))
    if now < checkin_opens(community, shift):
        raise DomainError(
            "attendance.too_early",
            area=area,
            starts=wording.at(shift.starts_at),
            opens=wording.at(checkin_opens(community, shift)),
        )


def _refuse_check_out(found: Attendance) -> None:
    """Raise the reason this sign-up cannot be checked out of now, if there is one (said to its volunteer)."""
    shift, signup = found.shift, found.signup
    area = wording.area(shift)
    if signup.state != CONFIRMED:
        raise DomainError("attendance.not_signed_up", area=area)
    if shift.state != SCHEDULED:
        raise DomainError("attendance.shift_cancelled", area=area)
    if signup.checked_in_at is None:
        raise DomainError("attendance.not_checked_in")
    if signup.checkout_method == AUTO or (shift.closed_at is not None and signup.checked_out_at is None):
        raise DomainError("attendance.checkout_closed", area=area)
    if signup.checked_out_at is not None:
        raise DomainError("attendance.already_checked_out", area=area)
    if shift.closed_at is not None:
        raise DomainError("attendance.checkout_closed", area=area)


def _refuse_by_hand(
    community: Community, found: Attendance, name: str, direction: str, now: datetime
) -> None:
    """The same checks, said to the leader or officer confirming by hand."""
    shift, signup = found.shift, found.signup
    who = wording.name(name)
    if signup.state != CONFIRMED or shift.state != SCHEDULED or shift.closed_at is not None:
        raise DomainError("attendance.hand_closed", name=who, area=wording.area(shift))
    if direction == IN:
        if signup.checked_in_at is not None:
            raise DomainError("attendance.hand_already_in", name=who)
        if now >= shift.ends_at:
            raise DomainError("attendance.hand_closed", name=who, area=wording.area(shift))
        if now < checkin_opens(community, shift):
            raise DomainError(
                "attendance.hand_too_early", name=who, opens=wording.at(checkin_opens(community, shift))
            )
        return
    if signup.checked_in_at is None:
        raise DomainError("attendance.hand_not_in", name=who)
    if signup.checked_out_at is not None:
        raise DomainError("attendance.hand_already_out", name=who)


async def _own(repos: Repos, user: User, signup_id: int) -> Attendance:
    found = await repos.attendance.get(signup_id)
    if found is None or found.signup.user_id != user.id:
        raise StaleAction()
    return found


async def _reload(repos: Repos, signup_id: int) -> Attendance:
    found = await repos.attendance.get(signup_id)
    if found is None:
        raise StaleAction()
    return found


# --- checking in and out ------------------------------------------------------------------


async def check_in_at(
    repos: Repos, community: Community, user: User, signup_id: int, point: GeoPoint, now: datetime
) -> Outcome:
    """Check in with a shared location, if it is within the radius of the meeting point."""
    found = await _own(repos, user, signup_id)
    _refuse_check_in(community, found, now)
    distance = distance_m(found.shift, point)
    if distance > community.patrols.checkin_radius_m:
        return Outcome(found, distance, done=False)
    if not await repos.attendance.check_in(signup_id, now, LOCATION, None):
        # Someone (the leader, a second message) was faster: say what happened instead.
        _refuse_check_in(community, await _reload(repos, signup_id), now)
        raise StaleAction()
    return Outcome(found, distance, done=True)


async def check_out_at(
    repos: Repos, community: Community, user: User, signup_id: int, point: GeoPoint, now: datetime
) -> Outcome:
    """Check out with a shared location, if it is within the radius of the meeting point."""
    found = await _own(repos, user, signup_id)
    _refuse_check_out(found)
    distance = distance_m(found.shift, point)
    if distance > community.patrols.checkin_radius_m:
        return Outcome(found, distance, done=False)
    minutes, points = await _check_out(repos, community, found, LOCATION, user.id, now)
    return Outcome(found, distance, done=True, minutes=minutes, points=points)


async def _check_out(
    repos: Repos, community: Community, found: Attendance, method: str, actor_id: int | None, now: datetime
) -> tuple[int, int]:
    """Record the check-out now and credit the hours; (minutes, points)."""
    signup = found.signup
    assert signup.checked_in_at is not None
    minutes = minutes_worked(found.shift, signup.checked_in_at, now)
    if not await repos.attendance.check_out(signup.id, now, method, minutes, False, now):
        _refuse_check_out(await _reload(repos, signup.id))
        raise StaleAction()
    return minutes, await _credit(repos, community, found, minutes, actor_id, now)


async def _credit(
    repos: Repos, community: Community, found: Attendance, minutes: int, actor_id: int | None, now: datetime
) -> int:
    """Points for the hours of this sign-up; 0 if there are none or they were credited before."""
    amount = points_for(community, minutes)
    if amount <= 0:
        return 0
    entry = await repos.ledger.credit_user(
        found.signup.user_id,
        amount,
        checkout_source(found.signup.id),
        REASON_PATROL,
        _reason_params(community, found.shift, minutes),
        actor_id,
        now,
    )
    return amount if entry is not None else 0


def _reason_params(community: Community, shift: PatrolShift, minutes: int | None = None) -> dict[str, Any]:
    # Stored with the ledger entry as JSON and shown by /points: plain values only.
    params: dict[str, Any] = {"area": shift.area, "date": local_date(community, shift.starts_at)}
    if minutes is not None:
        params["minutes"] = minutes
    return params


# --- the leader (or police) confirming by hand ----------------------------------------------


async def to_confirm(
    repos: Repos, community: Community, user: User, direction: str, signup_id: int, now: datetime
) -> tuple[Attendance, User | None]:
    """Someone asks to be checked in or out by hand: their sign-up, and the leader to ask first, if any."""
    found = await _own(repos, user, signup_id)
    if direction == IN:
        _refuse_check_in(community, found, now)
    else:
        _refuse_check_out(found)
    shift = found.shift
    leader = None
    if shift.leader_id is not None and shift.leader_id != user.id:
        leader = await repos.users.get(shift.leader_id)
    return found, leader


@dataclass(frozen=True)
class ByHand:
    """A check-in or check-out the leader or police confirmed: the volunteer is to be told."""

    attendance: Attendance
    volunteer: User
    minutes: int = 0
    points: int = 0


async def confirm_by_hand(
    repos: Repos, community: Community, actor: User, direction: str, signup_id: int, now: datetime
) -> ByHand:
    """The leader or police check someone in or out by hand."""
    found = await _reload(repos, signup_id)
    if not is_leader_or_police(actor, found.shift) or actor.id == found.signup.user_id:
        # Nobody confirms their own attendance: that is what the location is for.
        raise PermissionDenied()
    volunteer = await repos.users.get(found.signup.user_id)
    if volunteer is None:
        raise StaleAction()
    _refuse_by_hand(community, found, volunteer.display_name, direction, now)
    shift = found.shift
    if direction == IN:
        if not await repos.attendance.check_in(signup_id, now, MANUAL, actor.id):
            _refuse_by_hand(community, await _reload(repos, signup_id), volunteer.display_name, IN, now)
            raise StaleAction()
        await _end_waiting_flow(repos, volunteer.id)
        return ByHand(found, volunteer)
    minutes = minutes_worked(shift, found.signup.checked_in_at or now, now)
    if not await repos.attendance.check_out(signup_id, now, MANUAL, minutes, False, now):
        _refuse_by_hand(community, await _reload(repos, signup_id), volunteer.display_name, OUT, now)
        raise StaleAction()
    points = await _credit(repos, community, found, minutes, actor.id, now)
    await _end_waiting_flow(repos, volunteer.id)
    return ByHand(found, volunteer, minutes, points)


async def _end_waiting_flow(repos: Repos, user_id: int) -> None:
    """The volunteer no longer needs to send a location: stop waiting for one on every channel."""
    for identity in await repos.users.identities(user_id):
        draft = await repos.conversations.get(user_id, identity.channel)
        if draft is not None and draft.flow == FLOW_NAME:
            await repos.conversations.delete(user_id, identity.channel)


# --- closing a shift ------------------------------------------------------------------------


@dataclass(frozen=True)
class AutoCheckout:
    """A forgotten check-out closed at the shift's end: credited, flagged for review, the volunteer told."""

    line: RosterLine
    minutes: int
    points: int
    volunteer: User | None


@dataclass(frozen=True)
class Closed:
    shift: PatrolShift
    roster: list[RosterLine]
    no_shows: list[int]
    flagged: list[AutoCheckout]


async def close_shift(repos: Repos, community: Community, shift_id: int, now: datetime) -> Closed | None:
    """Settle attendance once the shift is over; None if there was nothing (more) to settle."""
    shift = await repos.patrols.shift(shift_id)
    if shift is None or shift.state != SCHEDULED or shift.closed_at is not None:
        return None
    if now < shift.ends_at:
        # Re-timed to end later since this was armed: settle at the new end.
        await patrols.arm_close(repos, shift)
        return None
    if not await repos.attendance.close(shift_id, now):
        return None
    roster = await repos.attendance.roster(shift_id)
    flagged: list[AutoCheckout] = []
    for line in roster:
        signup = line.signup
        if signup.checked_in_at is None or signup.checked_out_at is not None:
            continue
        minutes = minutes_worked(shift, signup.checked_in_at, shift.ends_at)
        if not await repos.attendance.auto_check_out(signup.id, shift.ends_at, minutes, now):
            continue
        points = await _credit(repos, community, Attendance(signup, shift), minutes, None, now)
        flagged.append(AutoCheckout(line, minutes, points, await repos.users.get(signup.user_id)))
    no_shows = await repos.attendance.mark_no_shows(shift_id, now)
    return Closed(shift, roster, no_shows, flagged)


# --- police reviewing forgotten check-outs ---------------------------------------------------


async def review_flagged(
    repos: Repos, community: Community, actor: User, signup_id: int, void: bool, now: datetime
) -> tuple[Attendance, User]:
    """Keep the hours of an automatically closed check-out, or void them (their points reversed)."""
    if actor.role not in COMMANDERS:
        raise PermissionDenied()
    found = await _reload(repos, signup_id)
    volunteer = await repos.users.get(found.signup.user_id)
    if volunteer is None:
        raise StaleAction()
    try:
        # One savepoint: the flag is cleared only together with the reversal it decides.
        async with repos.connection.begin_nested():
            if not await repos.attendance.review(signup_id, void, now):
                raise DomainError("attendance.review_done", name=wording.name(volunteer.display_name))
            entry = await repos.attendance.ledger_entry_id(checkout_source(signup_id)) if void else None
            if entry is not None:
                await repos.ledger.reverse(
                    entry, REASON_PATROL_VOIDED, _reason_params(community, found.shift), actor.id, now
                )
    except InsufficientPoints:
        raise DomainError("attendance.void_spent", name=wording.name(volunteer.display_name)) from None
    return found, volunteer


# --- what leaders and police see -------------------------------------------------------------


async def rosters(
    repos: Repos, community: Community, user: User, now: datetime
) -> list[tuple[PatrolShift, list[RosterLine]]]:
    """Police: today's shifts; a leader: the current or next shift they lead; each with its people."""
    if user.role in COMMANDERS:
        midnight, tomorrow = local_day(community, now)
        shifts = await repos.attendance.shifts_starting(midnight, tomorrow)
        if not shifts:
            raise DomainError("attendance.roster_none_today")
    else:
        shifts = await repos.attendance.shifts_led(user.id, now)
        if not shifts:
            raise DomainError("attendance.roster_not_leader")
    return [(shift, await repos.attendance.roster(shift.id)) for shift in shifts]


def may_confirm_now(community: Community, shift: PatrolShift, now: datetime) -> bool:
    """Whether hand confirmation buttons make sense on the roster now."""
    return shift.closed_at is None and checkin_opens(community, shift) <= now


async def month_stats(
    repos: Repos, community: Community, user: User, now: datetime
) -> tuple[str, PatrolStats]:
    """This month's patrols in the community's calendar (police and admins only)."""
    if user.role not in COMMANDERS:
        raise PermissionDenied()
    month, start, end = local_month(community, now)
    # Shifts held: those that have started, not the ones still ahead this month.
    return month, await repos.attendance.stats(start, min(end, now))
