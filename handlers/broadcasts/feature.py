"""What broadcasts plug into the engine."""

from __future__ import annotations

from datetime import timedelta

from handlers.accounts import rules as accounts
from handlers.broadcasts import alerts, buttons, compose, copies, quiet, report, rules, settings, views
from handlers.registry import CLEAR, DELETE, KEEP, Erasure, Feature, Lane, OutboxKind, PersonalData
from storage.personal import PersonalDataRepo


async def _forget_recipient_chats(erasure: Erasure) -> None:
    await erasure.repos.of(PersonalDataRepo).forget_recipient_chats(erasure.user_id)


_EVERYONE = ("settings",)
_COMMANDERS = ("alert", "alerts", "settings")

FEATURE = Feature(
    name="broadcasts",
    commands={"alert": compose.start_alert, "alerts": alerts.list_alerts, "settings": settings.show_settings},
    actions={views.ACTION: buttons.on_action},
    flows=(compose.ALERT_FLOW, quiet.QUIET_FLOW),
    schedules={
        rules.SCHEDULE_SEND: rules.fire_send,
        rules.SCHEDULE_ACK: rules.fire_ack_reminder,
        rules.SCHEDULE_REPORT: rules.fire_report,
    },
    help={
        accounts.RESIDENT: _EVERYONE,
        accounts.VOLUNTEER: _EVERYONE,
        accounts.GRID_WORKER: _EVERYONE,
        accounts.POLICE: _COMMANDERS,
        accounts.ADMIN: _COMMANDERS,
    },
    outbox={
        # An alert a day late helps nobody: through a longer outage its copies expire, counted
        # in the author's delivery report.
        # Bulk unless urgent: each copy is queued with its broadcast's lane (rules.copy_priority).
        rules.COPY: OutboxKind(copies.render_copy, gives_up_after=timedelta(hours=24), lane=Lane.BULK),
        # A report is posted once, then edited in place: the settle hook remembers where it is.
        rules.SUMMARY: OutboxKind(
            report.render_summary,
            rules.summary_settled,
            gives_up_after=timedelta(days=3),
            lane=Lane.INTERACTIVE,
        ),
        rules.SUMMARY_EDIT: OutboxKind(
            report.render_summary,
            rules.summary_settled,
            gives_up_after=timedelta(days=3),
            lane=Lane.INTERACTIVE,
        ),
    },
    # ack_reminder_minutes; grids, resident groups and police groups name the audiences.
    community_section="broadcasts",
    personal_data=(
        PersonalData("broadcasts", "author_id", "alerts this person wrote and sent", KEEP),
        PersonalData(
            "broadcast_recipients",
            "user_id",
            "alerts received, when acknowledged (收到) and reminded, grid and building at the time",
            CLEAR,
            # The grid stays for the acknowledgement rates by grid; the building says where they live.
            clear=("building",),
            eraser=_forget_recipient_chats,
        ),
        PersonalData("subscriptions", "user_id", "kinds of alert turned off, and quiet hours", DELETE),
    ),
)
