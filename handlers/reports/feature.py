"""What hazard reports plug into the engine."""

from __future__ import annotations

from handlers.accounts import rules as accounts
from handlers.registry import CLEAR, KEEP, Feature, PersonalData
from handlers.reports import cards, deadlines, filing, mine, personal, review, rules, tasks

_FOR_EVERYONE = ("report", "myreports")

FEATURE = Feature(
    name="reports",
    commands={"report": filing.start_or_resume, "myreports": mine.list_mine, "tasks": tasks.list_tasks},
    group_commands={"report": filing.in_group},
    deep_links={filing.DEEP_LINK: filing.start},
    words={word: filing.start for word in filing.WORDS},
    actions={"rep": review.on_action, "rate": mine.on_rate},
    flows=(filing.FLOW, review.RESOLVE, review.REJECT, review.DUPLICATE, mine.COMMENT),
    schedules={rules.REMINDER: deadlines.remind, rules.ESCALATION: deadlines.escalate},
    help={role: _FOR_EVERYONE for role in accounts.ROLES},
    help_first={role: ("tasks",) for role in accounts.STAFF},
    outbox=cards.KINDS,
    # Deadlines to acknowledge and escalate; the categories and limits are read too.
    community_section="escalation",
    personal_data=(
        PersonalData(
            "reports",
            "reporter_id",
            "hazard reports filed, with their place, photos and rating",
            CLEAR,
            clear=("rating_comment",),
            export=personal.export_filed,
            eraser=personal.erase_filed,
        ),
        PersonalData(
            "reports",
            "assignee_id",
            "reports this grid worker was assigned",
            KEEP,
            columns=("ticket", "category", "state", "created_at", "closed_at"),
        ),
        PersonalData(
            "report_events", "actor_id", "every change this person made to a report, with notes", KEEP
        ),
    ),
)
