"""/checkin and /checkout with a shared location, /roster for leaders and police, /patrolstats.

Checking in waits for a location (Telegram's live location counts too: its
updates are checked silently until the person is close enough). Anyone who
cannot share one asks the leader, or the police group, to confirm by hand.
"""

from __future__ import annotations

from handlers import conversation, report_hazard
from handlers.clock import Clock
from handlers.community import Community, GeoPoint
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import DomainError, StaleAction
from handlers.messages import Choice, Lines, Reply, Text, Verbatim, When
from handlers.registry import Feature
from handlers.services import accounts
from handlers.services import attendance as service
from handlers.services.attendance import IN, OUT
from storage.attendance import RosterLine
from storage.models import PatrolShift, Schedule
from storage.repositories import Repos


async def check_in(ctx: Ctx) -> None:
    found = await service.shift_to_check_in(ctx.repos, ctx.community, ctx.user, ctx.clock.now())
    await conversation.begin(ctx, FLOW, "arrive", {"signup": found.signup.id})


async def check_out(ctx: Ctx) -> None:
    found = await service.shift_to_check_out(ctx.repos, ctx.user)
    await conversation.begin(ctx, FLOW, "leave", {"signup": found.signup.id})


async def _shift(ctx: Ctx) -> PatrolShift:
    found = await ctx.repos.attendance.get(int(ctx.data["signup"]))
    if found is None:
        raise StaleAction()
    return found.shift


async def ask_arrival(ctx: Ctx) -> None:
    """Where are you? (within the radius of the meeting point)"""
    shift = await _shift(ctx)
    ctx.say(
        "attendance.ask_checkin_location",
        keyboard="location",
        area=Verbatim(shift.area),
        meeting=service.meeting_label(shift),
        radius=round(ctx.community.patrols.checkin_radius_m),
    )


async def ask_departure(ctx: Ctx) -> None:
    """Where are you? (back at the meeting point to check out)"""
    shift = await _shift(ctx)
    ctx.say(
        "attendance.ask_checkout_location",
        keyboard="location",
        area=Verbatim(shift.area),
        meeting=service.meeting_label(shift),
        radius=round(ctx.community.patrols.checkin_radius_m),
    )


def _not_a_location(ctx: Ctx, direction: str) -> None:
    if ctx.inp.action:
        ctx.say("error.stale_button")
        return
    ctx.say("attendance.location_needed", choices=service.ask_button(direction, int(ctx.data["signup"])))


def _too_far(ctx: Ctx, outcome: service.Outcome, direction: str) -> None:
    ctx.say(
        "attendance.too_far",
        choices=service.ask_button(direction, outcome.attendance.signup.id),
        distance=outcome.distance_m,
        radius=round(ctx.community.patrols.checkin_radius_m),
    )


async def _at_location(ctx: Ctx, direction: str) -> service.Outcome | str | None:
    """Try the shared location for checking in or out: the outcome once close enough, else the next step."""
    if ctx.inp.location is None:
        _not_a_location(ctx, direction)
        return None
    point = GeoPoint(lat=ctx.inp.location.lat, lon=ctx.inp.location.lon)
    attempt = service.check_in_at if direction == IN else service.check_out_at
    try:
        outcome = await attempt(
            ctx.repos, ctx.community, ctx.user, int(ctx.data["signup"]), point, ctx.clock.now()
        )
    except DomainError as refused:
        # The shift was cancelled, ended or confirmed by the leader meanwhile: nothing left to wait for.
        ctx.say(refused.key, keyboard="main", **refused.params)
        return END
    if not outcome.done:
        if not ctx.inp.live:
            _too_far(ctx, outcome, direction)
        # A live location moves every few seconds: stay quiet until it arrives.
        return "arrive" if direction == IN else "leave"
    return outcome


async def handle_arrival(ctx: Ctx) -> str | None:
    outcome = await _at_location(ctx, IN)
    if not isinstance(outcome, service.Outcome):
        return outcome
    shift = outcome.attendance.shift
    ctx.say(
        "attendance.checked_in",
        choices=service.report_button(shift.id),
        keyboard="main",
        area=Verbatim(shift.area),
        ends=When(shift.ends_at),
    )
    return END


async def handle_departure(ctx: Ctx) -> str | None:
    outcome = await _at_location(ctx, OUT)
    if not isinstance(outcome, service.Outcome):
        return outcome
    ctx.say(
        "attendance.checked_out",
        keyboard="main",
        area=Verbatim(outcome.attendance.shift.area),
        minutes=outcome.minutes,
        points=outcome.points,
    )
    return END


FLOW = conversation.register(
    Flow(
        service.FLOW_NAME,
        {"arrive": Step(ask_arrival, handle_arrival), "leave": Step(ask_departure, handle_departure)},
        expired_key="attendance.expired",
        accepts_live_location=True,
    )
)


# --- buttons -----------------------------------------------------------------------------------


async def on_action(ctx: Ctx, parts: tuple[str, ...]) -> None:
    now = ctx.clock.now()
    match parts[1:]:
        case ("ask", direction, signup) if direction in (IN, OUT) and signup.isdigit():
            asked = await service.request_confirmation(
                ctx.repos, ctx.community, ctx.user, direction, int(signup), now
            )
            key = "attendance.asked_leader" if asked == "leader" else "attendance.asked_police"
            ctx.say(key)
            ctx.notice(key)
        case (("cin" | "cout") as verb, signup) if signup.isdigit():
            direction = IN if verb == "cin" else OUT
            _found, volunteer, minutes, points = await service.confirm_by_hand(
                ctx.repos, ctx.community, ctx.user, direction, int(signup), now
            )
            name = Verbatim(volunteer.display_name)
            if direction == IN:
                ctx.say("attendance.hand_checked_in", name=name)
                ctx.notice("attendance.hand_checked_in", name=name)
            else:
                ctx.say("attendance.hand_checked_out", name=name, minutes=minutes, points=points)
                ctx.notice("attendance.hand_checked_out", name=name, minutes=minutes, points=points)
        case ("rpt", shift) if shift.isdigit():
            await report_hazard.start(ctx)
        case (("keep" | "void") as verb, signup) if signup.isdigit():
            _found, volunteer = await service.review_flagged(
                ctx.repos, ctx.community, ctx.user, int(signup), verb == "void", now
            )
            key = "attendance.review_voided" if verb == "void" else "attendance.review_kept"
            ctx.say(key, name=Verbatim(volunteer.display_name))
            ctx.notice(key, name=Verbatim(volunteer.display_name))
        case _:
            raise StaleAction()


# --- /roster -------------------------------------------------------------------------------------


def _roster_line(line: RosterLine) -> Text:
    signup, name = line.signup, Verbatim(line.display_name)
    if signup.checked_out_at is not None:
        return Text("attendance.roster_out", {"name": name, "minutes": signup.minutes_worked or 0})
    if signup.checked_in_at is not None:
        return Text("attendance.roster_in", {"name": name, "at": When(signup.checked_in_at)})
    if signup.no_show:
        return Text("attendance.roster_no_show", {"name": name})
    return Text("attendance.roster_waiting", {"name": name})


def _roster_buttons(line: RosterLine) -> tuple[Choice, ...]:
    signup = line.signup
    if signup.checked_in_at is None:
        return (service.confirm_choice(IN, signup.id, line.display_name),)
    if signup.checked_out_at is None:
        return (service.confirm_choice(OUT, signup.id, line.display_name),)
    return ()


async def show_roster(ctx: Ctx) -> None:
    now = ctx.clock.now()
    for shift, lines in await service.rosters(ctx.repos, ctx.community, ctx.user, now):
        buttons: tuple[tuple[Choice, ...], ...] = ()
        if service.may_confirm_now(ctx.community, shift, now):
            buttons = tuple(
                row
                for row in (_roster_buttons(line) for line in lines if line.signup.user_id != ctx.user.id)
                if row
            )
        text = Text(
            "attendance.roster" if lines else "attendance.roster_empty",
            {
                "area": Verbatim(shift.area),
                "starts": When(shift.starts_at),
                "ends": When(shift.ends_at),
                "count": len(lines),
                "max": shift.max_volunteers,
                "lines": Lines(tuple(_roster_line(line) for line in lines)),
            },
        )
        ctx.response.replies.append(Reply(text, buttons))


# --- /patrolstats --------------------------------------------------------------------------------


def _hours(minutes: int) -> str:
    return f"{minutes / 60:.1f}"


async def show_stats(ctx: Ctx) -> None:
    month, stats = await service.month_stats(ctx.repos, ctx.community, ctx.user, ctx.clock.now())
    if stats.shifts == 0:
        ctx.say("attendance.stats_empty", month=month)
        return
    top = Lines(
        tuple(
            Text(
                "attendance.stats_line",
                {"rank": rank, "name": Verbatim(person.display_name), "hours": _hours(person.minutes)},
            )
            for rank, person in enumerate(stats.top, start=1)
        )
    )
    ctx.say(
        "attendance.stats",
        month=month,
        shifts=stats.shifts,
        confirmed=stats.confirmed,
        places=stats.places,
        fill_rate=round(100 * stats.confirmed / stats.places) if stats.places else 0,
        no_shows=stats.no_shows,
        flagged=stats.flagged,
        hours=_hours(stats.minutes),
        reports=stats.reports,
        top=top if stats.top else Text("attendance.stats_nobody"),
    )


# --- the closing job -----------------------------------------------------------------------------


async def fire_close(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    await service.close_shift(repos, community, int(schedule.ref), clock.now())


_VOLUNTEERING = ("checkin", "checkout")

FEATURE = Feature(
    name="attendance",
    commands={"checkin": check_in, "checkout": check_out, "roster": show_roster, "patrolstats": show_stats},
    actions={service.ACTION: on_action},
    schedules={service.CLOSE: fire_close},
    help={
        accounts.RESIDENT: _VOLUNTEERING,
        # Volunteers lead shifts too.
        accounts.VOLUNTEER: (*_VOLUNTEERING, "roster"),
        accounts.GRID_WORKER: (*_VOLUNTEERING, "roster"),
        accounts.POLICE: (*_VOLUNTEERING, "roster", "patrolstats"),
        accounts.ADMIN: (*_VOLUNTEERING, "roster", "patrolstats"),
    },
)
