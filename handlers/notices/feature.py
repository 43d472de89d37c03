"""What recurring notices plug into the engine (and, for now, the weekly digest's schedule)."""

from __future__ import annotations

from handlers.notices import rules, running, schedule, views
from handlers.registry import Feature, PersonalData
from handlers.services import accounts, digest

FEATURE = Feature(
    name="notices",
    commands={"notice": schedule.start, "notices": running.list_notices},
    actions={views.ACTION: running.on_action},
    flows=(schedule.FLOW,),
    # The weekly digest to the police groups rides here until it has a home of its own.
    schedules={rules.NOTICE: rules.fire, digest.DIGEST: digest.fire},
    help={role: ("notice", "notices") for role in accounts.COMMANDERS},
    on_start=digest.on_start,
    # notice_grace_minutes, and the digest's day and time.
    community_section="broadcasts",
    personal_data=(PersonalData("notices", "author_id", "recurring notices this person set up"),),
)
