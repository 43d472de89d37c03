"""What recurring notices plug into the engine."""

from __future__ import annotations

from handlers.accounts import rules as accounts
from handlers.notices import rules, running, schedule, views
from handlers.registry import KEEP, Feature, PersonalData

FEATURE = Feature(
    name="notices",
    commands={"notice": schedule.start, "notices": running.list_notices},
    actions={views.ACTION: running.on_action},
    flows=(schedule.FLOW,),
    schedules={rules.NOTICE: rules.fire},
    help={role: ("notice", "notices") for role in accounts.COMMANDERS},
    # notice_grace_minutes.
    community_section="broadcasts",
    personal_data=(PersonalData("notices", "author_id", "recurring notices this person set up", KEEP),),
)
