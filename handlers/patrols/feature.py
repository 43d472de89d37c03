"""What patrols plug into the engine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers.accounts import rules as accounts
from handlers.context import Ctx
from handlers.errors import StaleAction
from handlers.patrols import jobs, plan, rules, signup, views, volunteer
from handlers.registry import DELETE, KEEP, Feature, PersonalData

# `pat:<verb>:<id>` buttons: on a list, a shift card, or a police group message.
_VERBS: dict[str, Callable[[Ctx, int], Awaitable[None]]] = {
    "join": signup.join,
    "wait": signup.wait,
    "leave": signup.leave,
    "ics": signup.send_calendar,
    "mng": plan.manage,
    "etime": plan.edit_time,
    "esize": plan.edit_size,
    "csh": plan.ask_cancel_shift,
    "cshok": plan.cancel_shift,
    "stop": plan.ask_stop_series,
    "stopok": plan.stop_series,
    "unban": volunteer.lift_ban,
    "vok": volunteer.approve,
    "vno": volunteer.reject,
}


async def on_action(ctx: Ctx, parts: tuple[str, ...]) -> None:
    if len(parts) != 3 or not parts[2].isdigit() or parts[1] not in _VERBS:
        raise StaleAction()
    await _VERBS[parts[1]](ctx, int(parts[2]))


_FOR_EVERYONE = ("patrols", "myshifts")

FEATURE = Feature(
    name="patrols",
    commands={
        "newpatrol": plan.new_patrol,
        "patrols": signup.list_patrols,
        "myshifts": signup.list_mine,
        "volunteer": volunteer.become_volunteer,
        "volunteers": volunteer.volunteer_desk,
    },
    actions={views.KIND: on_action},
    flows=(plan.NEW_FLOW, plan.EDIT_FLOW),
    schedules={
        rules.GENERATE: jobs.fire_generate,
        rules.REMIND: jobs.fire_reminder,
        rules.UNDERSTAFFED: jobs.fire_understaffed,
    },
    help={
        accounts.RESIDENT: (*_FOR_EVERYONE, "volunteer"),
        accounts.VOLUNTEER: (*_FOR_EVERYONE, "volunteer"),
        accounts.GRID_WORKER: _FOR_EVERYONE,
        accounts.POLICE: ("newpatrol", *_FOR_EVERYONE, "volunteers"),
        accounts.ADMIN: ("newpatrol", *_FOR_EVERYONE, "volunteers"),
    },
    on_start=rules.on_start,
    community_section="patrols",
    personal_data=(
        PersonalData("patrol_signups", "user_id", "sign-ups to patrol shifts and the waiting list", KEEP),
        PersonalData("patrol_shifts", "leader_id", "patrol shifts led", KEEP),
        PersonalData("patrol_shifts", "created_by", "patrol shifts planned", KEEP),
        PersonalData("patrol_series", "leader_id", "recurring patrols led", KEEP),
        PersonalData("patrol_series", "created_by", "recurring patrols planned", KEEP),
        PersonalData("volunteer_requests", "user_id", "requests to become a volunteer", DELETE),
        PersonalData("volunteer_requests", "decided_by", "volunteer requests decided", KEEP),
    ),
)
