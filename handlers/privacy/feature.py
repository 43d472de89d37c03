"""What data rights plug into the engine."""

from __future__ import annotations

from handlers.privacy import rights, rules, views
from handlers.registry import KEEP, Feature, PersonalData
from storage.roles import COMMANDERS

FEATURE = Feature(
    name="privacy",
    commands={"erase": rights.erase_person},
    # A person who has not finished onboarding (or declined the privacy notice) may see and erase
    # what is held about them too.
    open_commands={"mydata": rights.my_data, "deleteme": rights.delete_me},
    actions={views.ACTION: rights.on_action},
    schedules={rules.RETENTION: rules.fire_sweep},
    help={role: ("erase",) for role in COMMANDERS},
    help_last=("mydata", "deleteme"),
    on_start=rules.on_start,
    # retention_days.
    community_section="privacy",
    # The audit log names people by id only and is append-only: kept, and shown to them.
    personal_data=(
        PersonalData("audit_log", "subject_id", "privileged actions taken on this person", KEEP),
        PersonalData("audit_log", "actor_id", "privileged actions this person took", KEEP),
    ),
)
