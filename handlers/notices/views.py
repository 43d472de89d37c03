"""What police see of recurring notices: the dialogue's buttons, the preview, the running notices."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from handlers import choices
from handlers.broadcasts import rules as broadcast_rules
from handlers.broadcasts import views as broadcast_views
from handlers.broadcasts.audience import FlowButtons, Rows, rows
from handlers.community import Community
from handlers.messages import Choice, Lines, Reply, Text, Verbatim, When
from handlers.notices import rules

# Stop buttons of /notices: they work any time, not only in the dialogue.
ACTION = "ntc"
FREQUENCY_KEYS = {
    rules.DAILY: "notice.button_daily",
    rules.WEEKLY: "notice.button_weekly",
    rules.MONTHLY: "notice.button_monthly",
}
# 社区通知 first: most recurring notices are community announcements.
KINDS = ("community", *(kind for kind in broadcast_rules.KINDS if kind != "community"))
WEEKDAY_KEYS = (
    "notice.weekday_1",
    "notice.weekday_2",
    "notice.weekday_3",
    "notice.weekday_4",
    "notice.weekday_5",
    "notice.weekday_6",
    "notice.weekday_7",
)


def weekday_label(iso_weekday: int) -> Text:
    return Text(WEEKDAY_KEYS[iso_weekday - 1])


def rule_label(rule: rules.Rule) -> Text:
    """The schedule in words: 每天 19:00, 每周一 19:00, 每月 1 日 09:00."""
    at = f"{rule.at.hour:02d}:{rule.at.minute:02d}"
    if rule.frequency == rules.WEEKLY:
        assert rule.day is not None
        return Text("notice.rule_weekly", {"weekday": weekday_label(rule.day), "time": at})
    if rule.frequency == rules.MONTHLY:
        return Text("notice.rule_monthly", {"day": rule.day, "time": at})
    return Text("notice.rule_daily", {"time": at})


# --- the /notice dialogue ------------------------------------------------------------------------


def kind_buttons(buttons: FlowButtons) -> Rows:
    return rows([buttons.button(broadcast_views.kind_label(kind), "kind", kind) for kind in KINDS])


def frequency_buttons(buttons: FlowButtons) -> Rows:
    return (tuple(buttons.button(Text(FREQUENCY_KEYS[f]), "freq", f) for f in rules.FREQUENCIES),)


def weekday_buttons(buttons: FlowButtons) -> Rows:
    return rows([buttons.button(weekday_label(day), "wd", day) for day in range(1, 8)], per_row=4)


def monthday_buttons(buttons: FlowButtons) -> Rows:
    offered = [buttons.button(Text("notice.day_button", {"day": day}), "md", day) for day in rules.MONTH_DAYS]
    return rows(offered, per_row=7)


def preview(
    community: Community,
    buttons: FlowButtons,
    data: dict[str, Any],
    reach: tuple[int, int],
    rule: rules.Rule,
    upcoming: list[datetime],
) -> Reply:
    """The notice as residents will read it, to whom, how often, and its next few times."""
    people, groups = reach
    row = (
        buttons.button(Text("notice.button_confirm"), "ok", 1),
        buttons.button(Text("notice.button_cancel"), "no", 1),
    )
    text = Text(
        "notice.preview",
        {
            "message": broadcast_views.message_text(community, data["kind"], data["priority"], data["text"]),
            "audience": broadcast_views.audience_label(community, data["audience"]),
            "people": people,
            "groups": groups,
            "rule": rule_label(rule),
            "upcoming": Lines(tuple(Text("notice.upcoming_line", {"when": When(at)}) for at in upcoming)),
        },
    )
    return Reply(text, (row,))


# --- /notices ------------------------------------------------------------------------------------


def running(community: Community, item: rules.Active) -> Reply:
    """One running notice with its next time and a Stop button."""
    notice = item.notice
    stop = Choice(Text("notice.button_stop"), action=choices.encode(ACTION, "stop", notice.id))
    text = Text(
        "notice.line",
        {
            "id": notice.id,
            "kind": broadcast_views.kind_label(notice.kind),
            "rule": rule_label(item.rule),
            "next": When(item.next_at),
            "audience": broadcast_views.audience_label(community, notice.audience),
            "text": Verbatim(notice.text),
        },
    )
    return Reply(text, ((stop,),))
