"""What police and residents see of broadcasts: the alert itself, previews, delivery reports, /settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from handlers import choices
from handlers.broadcasts import rules
from handlers.broadcasts.audience import FlowButtons, Rows, rows
from handlers.community import Community
from handlers.messages import Choice, Lines, Reply, Text, Verbatim, When
from storage.models import Broadcast, Subscription

# Button action kind of everything outside the /alert dialogue (see buttons.py).
ACTION = "bc"
# The fields of an /alert draft that can be changed from its preview, in the order asked.
FIELDS = ("kind", "text", "audience", "priority", "when")


def kind_label(kind: str) -> Text:
    return Text(f"broadcast.kind_{kind}")


def priority_label(priority: str) -> Text:
    return Text(f"broadcast.priority_{priority}")


def state_label(state: str) -> Text:
    return Text(f"broadcast.state_{state}")


def action(verb: str, value: str | int) -> str:
    """A button outside the /alert dialogue (acknowledge, details, cancel, /settings)."""
    return choices.encode(ACTION, verb, value)


def ack_action(broadcast_id: int) -> str:
    return action("ack", broadcast_id)


def ack_button(token: str) -> Rows:
    return ((Choice(Text("broadcast.button_ack"), action=token),),)


def message_text(community: Community, kind: str, priority: str, text: str) -> Text:
    """The alert as residents read it: a header with kind and priority, the text, who sends it."""
    return Text(
        f"broadcast.message_{priority}",
        {"kind": kind_label(kind), "text": Verbatim(text), "community": community.name},
    )


def alert_reply(
    community: Community,
    *,
    kind: str,
    priority: str,
    text: str,
    photo_id: int | None,
    group: bool,
    ack: str,
) -> Reply:
    """One recipient's copy; `ack` is the action of its 收到 button (the /alert preview has its own)."""
    # People acknowledge in their private chat; a group's copy is pinned instead.
    buttons = ack_button(ack) if priority == rules.URGENT and not group else ()
    return Reply(
        message_text(community, kind, priority, text),
        buttons,
        photos=(photo_id,) if photo_id is not None else (),
        pin=priority == rules.URGENT and group,
    )


def copy(community: Community, broadcast: Broadcast, *, group: bool) -> Reply:
    return alert_reply(
        community,
        kind=broadcast.kind,
        priority=broadcast.priority,
        text=broadcast.text,
        photo_id=broadcast.photo_id,
        group=group,
        ack=ack_action(broadcast.id),
    )


def reminder(community: Community, broadcast: Broadcast) -> Reply:
    """The one reminder to acknowledge an urgent alert."""
    text = Lines(
        (
            Text("broadcast.reminder", {"minutes": community.broadcasts.ack_reminder_minutes}),
            message_text(community, broadcast.kind, broadcast.priority, broadcast.text),
        )
    )
    return Reply(text, ack_button(ack_action(broadcast.id)))


def grid_name(community: Community, key: str | None) -> Text | Verbatim:
    grid = community.grid(key) if key else None
    return Verbatim(grid.name) if grid else Text("broadcast.no_grid")


def audience_label(community: Community, audience: dict[str, Any]) -> Text:
    if audience["type"] == "grids":
        names = "、".join(g.name for g in community.grids if g.key in audience["grids"])
        return Text("broadcast.audience_grids_named", {"grids": Verbatim(names)})
    return Text(f"broadcast.audience_{audience['type']}")


def _percent(part: int, whole: int) -> int:
    return round(100 * part / whole) if whole else 0


def report_lines(community: Community, report: rules.DeliveryReport) -> Lines:
    """The delivery report: figures, acknowledgements by grid (and building), and where it stands."""
    broadcast, figures = report.broadcast, report.figures
    lines: list[Text] = [
        Text(
            "broadcast.report_title",
            {
                "id": broadcast.id,
                "kind": kind_label(broadcast.kind),
                "priority": priority_label(broadcast.priority),
            },
        ),
        Text("broadcast.report_audience", {"audience": audience_label(community, broadcast.audience)}),
    ]
    if broadcast.state == "scheduled":
        lines.append(
            Text("broadcast.report_scheduled", {"at": When(broadcast.scheduled_at or broadcast.created_at)})
        )
    else:
        lines.append(
            Text(
                "broadcast.report_figures",
                {
                    "people": figures.people,
                    "groups": figures.groups,
                    "delivered": figures.delivered,
                    "pending": figures.pending,
                    "failed": figures.failed,
                    "blocked": figures.blocked,
                },
            )
        )
        if figures.expired:
            lines.append(Text("broadcast.report_expired", {"expired": figures.expired}))
    if broadcast.priority == rules.URGENT and broadcast.state != "scheduled":
        lines.append(
            Text(
                "broadcast.report_acks",
                {
                    "acked": figures.acked,
                    "delivered": figures.people_delivered,
                    "rate": _percent(figures.acked, figures.people_delivered),
                },
            )
        )
        for share in report.grids:
            lines.append(
                Text(
                    "broadcast.report_ack_grid",
                    {
                        "grid": grid_name(community, share.key),
                        "acked": share.acked,
                        "delivered": share.delivered,
                        "rate": _percent(share.acked, share.delivered),
                    },
                )
            )
        for share in report.buildings:
            lines.append(
                Text(
                    "broadcast.report_ack_building",
                    {
                        "building": Verbatim(share.key) if share.key else Text("broadcast.no_building"),
                        "acked": share.acked,
                        "delivered": share.delivered,
                        "rate": _percent(share.acked, share.delivered),
                    },
                )
            )
    if broadcast.state == "sent":
        lines.append(
            Text("broadcast.report_finished", {"at": When(broadcast.finished_at or broadcast.created_at)})
        )
    elif broadcast.state == "cancelled":
        lines.append(Text("broadcast.report_cancelled"))
    elif broadcast.state == "sending":
        lines.append(Text("broadcast.report_sending"))
    return Lines(tuple(lines))


def report_buttons(broadcast: Broadcast) -> Rows:
    row = [Choice(Text("broadcast.button_details"), action=action("info", broadcast.id))]
    if broadcast.state in ("scheduled", "sending"):
        row.append(Choice(Text("broadcast.button_cancel"), action=action("stop", broadcast.id)))
    return (tuple(row),)


def summary(community: Community, report: rules.DeliveryReport) -> Reply:
    """The author's delivery report, as it changes while copies go out."""
    return Reply(report_lines(community, report), report_buttons(report.broadcast))


def details(community: Community, report: rules.DeliveryReport) -> Reply:
    """One broadcast in /alerts: the message as sent, then its delivery report."""
    broadcast = report.broadcast
    message = message_text(community, broadcast.kind, broadcast.priority, broadcast.text)
    return Reply(Lines((message, *report_lines(community, report).items)), report_buttons(broadcast))


# --- the /alert dialogue -----------------------------------------------------------------------


def kind_buttons(buttons: FlowButtons) -> Rows:
    return rows([buttons.button(kind_label(kind), "kind", kind) for kind in rules.KINDS])


def priority_buttons(buttons: FlowButtons, priorities: tuple[str, ...]) -> Rows:
    return (tuple(buttons.button(priority_label(p), "prio", p) for p in priorities),)


def now_button(buttons: FlowButtons) -> Rows:
    return ((buttons.button(Text("broadcast.button_now"), "when", "now"),),)


def example_time(moment: datetime, *, with_year: bool) -> Verbatim:
    """How to type a date and time, shown with `moment` (tomorrow morning) as the example."""
    return Verbatim(moment.strftime("%Y-%m-%d %H:%M" if with_year else "%m-%d %H:%M"))


def preview(
    community: Community,
    buttons: FlowButtons,
    data: dict[str, Any],
    reach: rules.Reach,
    at: datetime | None,
) -> Reply:
    """What the draft will do: kind, priority, audience, when, how many it reaches and skips."""
    lines = [
        Text(
            "broadcast.preview",
            {
                "kind": kind_label(data["kind"]),
                "priority": priority_label(data["priority"]),
                "audience": audience_label(community, data["audience"]),
                "when": Text("broadcast.when_scheduled", {"at": When(at)})
                if at
                else Text("broadcast.when_now"),
                "people": reach.people,
                "groups": reach.groups,
            },
        )
    ]
    if reach.muted:
        urgent = data["priority"] == rules.URGENT
        key = "broadcast.preview_muted_urgent" if urgent else "broadcast.preview_muted"
        lines.append(Text(key, {"muted": reach.muted}))
    if reach.held and at is None:
        lines.append(Text("broadcast.preview_held", {"held": reach.held}))
    row = (
        buttons.button(Text("broadcast.button_confirm"), "ok", 1),
        buttons.button(Text("broadcast.button_edit"), "edit", 1),
        buttons.button(Text("broadcast.button_discard"), "drop", 1),
    )
    return Reply(Lines(tuple(lines)), (row,))


def edit_buttons(buttons: FlowButtons) -> Rows:
    offered = [buttons.button(Text(f"broadcast.field_{name}"), "field", name) for name in FIELDS]
    offered.append(buttons.button(Text("broadcast.button_back"), "field", "back"))
    return rows(offered, 3)


# --- /alerts -------------------------------------------------------------------------------------


def _excerpt(text: str, length: int = 24) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= length else flat[: length - 1] + "…"


def recent(found: rules.Recent) -> Reply:
    """This week's broadcasts with Details and Cancel buttons, and the opt-outs per kind."""
    opt_out_line = Text(
        "broadcast.opt_outs",
        {
            "counts": Lines(
                tuple(
                    Text(
                        "broadcast.opt_out_count",
                        {"kind": kind_label(kind), "count": found.opt_outs.get(kind, 0)},
                    )
                    for kind in rules.KINDS
                )
            )
        },
    )
    if not found.broadcasts:
        return Reply(Lines((Text("broadcast.list_empty"), opt_out_line)))
    lines: list[Text] = [Text("broadcast.list_title", {"days": rules.RECENT.days})]
    buttons: list[tuple[Choice, ...]] = []
    for item in found.broadcasts:
        broadcast, figures = item.broadcast, item.figures
        lines.append(
            Text(
                "broadcast.list_line",
                {
                    "id": broadcast.id,
                    "kind": kind_label(broadcast.kind),
                    "priority": priority_label(broadcast.priority),
                    "state": state_label(broadcast.state),
                    "when": When(broadcast.scheduled_at or broadcast.expanded_at or broadcast.created_at),
                    "excerpt": Verbatim(_excerpt(broadcast.text)),
                    "delivered": figures.delivered,
                    "total": figures.people + figures.groups,
                    "acked": figures.acked,
                },
            )
        )
        row = [
            Choice(
                Text("broadcast.button_details_id", {"id": broadcast.id}), action=action("info", broadcast.id)
            )
        ]
        if broadcast.state in ("scheduled", "sending"):
            row.append(
                Choice(
                    Text("broadcast.button_cancel_id", {"id": broadcast.id}),
                    action=action("stop", broadcast.id),
                )
            )
        buttons.append(tuple(row))
    lines.append(opt_out_line)
    return Reply(Lines(tuple(lines)), tuple(buttons))


# --- /settings -----------------------------------------------------------------------------------


def settings(current: Subscription | None) -> Reply:
    """The kinds a person receives, their quiet hours, and buttons to change both."""
    muted = set(current.muted_kinds) if current else set()
    kinds = Lines(
        tuple(
            Text(
                "broadcast.settings_kind_off" if kind in muted else "broadcast.settings_kind_on",
                {"kind": kind_label(kind)},
            )
            for kind in rules.KINDS
        )
    )
    quiet = (
        Text("broadcast.quiet_range", {"start": current.quiet_from, "end": current.quiet_until})
        if current and current.quiet_from and current.quiet_until
        else Text("broadcast.quiet_none")
    )
    toggles = [
        Choice(
            Text(
                "broadcast.button_kind_off" if kind in muted else "broadcast.button_kind_on",
                {"kind": kind_label(kind)},
            ),
            action=action("unmute" if kind in muted else "mute", kind),
        )
        for kind in rules.KINDS
    ]
    quiet_row = (
        Choice(Text("broadcast.button_quiet_off"), action=action("quiet", "off")),
        *(
            Choice(
                Text("broadcast.button_quiet_preset", {"start": start, "end": end}),
                action=action("quiet", key),
            )
            for key, (start, end) in rules.QUIET_PRESETS.items()
        ),
        Choice(Text("broadcast.button_quiet_other"), action=action("quiet", "ask")),
    )
    return Reply(Text("broadcast.settings", {"kinds": kinds, "quiet": quiet}), (*rows(toggles), quiet_row))


def typed(text: str) -> Verbatim:
    """What was typed, shortened, quoted back in "I could not read …"."""
    return Verbatim(text.strip()[:40])
