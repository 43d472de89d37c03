"""What attendance plugs into the engine."""

from __future__ import annotations

from handlers.accounts import rules as accounts
from handlers.attendance import checkin, closing, roster, rules, views
from handlers.attendance.rules import IN, OUT
from handlers.context import Ctx
from handlers.errors import StaleAction
from handlers.registry import KEEP, Feature, PersonalData


async def on_action(ctx: Ctx, parts: tuple[str, ...]) -> None:
    match parts[1:]:
        case ("ask", direction, signup) if direction in (IN, OUT) and signup.isdigit():
            await checkin.ask_by_hand(ctx, direction, int(signup))
        case (("cin" | "cout") as verb, signup) if signup.isdigit():
            await checkin.confirm_by_hand(ctx, IN if verb == "cin" else OUT, int(signup))
        case ("rpt", shift) if shift.isdigit():
            await checkin.report_from_patrol(ctx)
        case (("keep" | "void") as verb, signup) if signup.isdigit():
            await closing.review(ctx, int(signup), void=verb == "void")
        case _:
            raise StaleAction()


_VOLUNTEERING = ("checkin", "checkout")

FEATURE = Feature(
    name="attendance",
    commands={
        "checkin": checkin.check_in,
        "checkout": checkin.check_out,
        "roster": roster.show_roster,
        "patrolstats": roster.show_stats,
    },
    actions={views.ACTION: on_action},
    flows=(checkin.FLOW,),
    schedules={rules.CLOSE: closing.fire_close},
    help={
        accounts.RESIDENT: _VOLUNTEERING,
        # Volunteers lead shifts too.
        accounts.VOLUNTEER: (*_VOLUNTEERING, "roster"),
        accounts.GRID_WORKER: (*_VOLUNTEERING, "roster"),
        accounts.POLICE: (*_VOLUNTEERING, "roster", "patrolstats"),
        accounts.ADMIN: (*_VOLUNTEERING, "roster", "patrolstats"),
    },
    # [patrols] holds the check-in radius and window; the points per hour come from [timebank].
    community_section="patrols",
    personal_data=(
        PersonalData("patrol_signups", "user_id", "check-ins, check-outs, hours worked and no-shows", KEEP),
        PersonalData(
            "patrol_signups", "checkin_confirmed_by", "check-ins confirmed for others by hand", KEEP
        ),
    ),
)
