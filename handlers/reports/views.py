"""How a report is shown: to the police group, grid workers, and the reporter."""

from __future__ import annotations

from handlers import choices
from handlers.community import Community
from handlers.messages import Choice, Localized, Reply, Text, Verbatim, When
from handlers.reports.rules import ticket_label
from storage import report_states as rs
from storage.models import Report
from storage.repositories import Repos

CARD_DESCRIPTION_CHARS = 300


def category_label(community: Community, key: str) -> Text | Localized:
    category = community.category(key)
    if category is not None and category.names:
        return Localized(dict(category.names))
    return Text(f"category.{key}")


def state_label(state: str) -> Text:
    return Text(f"state.{state}")


def urgency_label(urgency: str) -> Text:
    return Text(f"urgency.{urgency}")


def grid_label(community: Community, grid_key: str | None) -> Text | Verbatim:
    grid = community.grid(grid_key) if grid_key else None
    return Verbatim(grid.name) if grid else Text("report.no_grid")


def location_label(report_like: dict[str, object] | Report) -> Text:
    get = report_like.get if isinstance(report_like, dict) else lambda k: getattr(report_like, k)
    building, unit = get("building"), get("unit")
    lat, lon = get("latitude"), get("longitude")
    if building:
        if unit:
            return Text(
                "report.location_building_unit", {"building": str(building), "unit": Verbatim(str(unit))}
            )
        return Text("report.location_building", {"building": str(building)})
    if lat is not None and lon is not None:
        return Text("report.location_point", {"lat": f"{lat:.5f}", "lon": f"{lon:.5f}"})
    return Text("report.location_unknown")


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def card_buttons(report: Report) -> tuple[tuple[Choice, ...], ...]:
    def button(key: str, verb: str) -> Choice:
        return Choice(Text(key), action=choices.encode("rep", verb, report.id))

    state = report.state
    if state == rs.SUBMITTED:
        return (
            (button("button.acknowledge", "ack"), button("button.assign", "asg")),
            (button("button.reject", "rej"), button("button.duplicate", "dup")),
        )
    if state in (rs.ACKNOWLEDGED, rs.ASSIGNED):
        return (
            (button("button.assign", "asg"), button("button.resolve", "res")),
            (button("button.reject", "rej"), button("button.duplicate", "dup")),
        )
    if state == rs.IN_PROGRESS:
        return ((button("button.resolve", "res"),),)
    return ()


async def card(repos: Repos, community: Community, report: Report, *, show_reporter: bool) -> Reply:
    """The report card: photo, category, urgency, grid, location, state and the actions left."""
    reporter: Text | Verbatim
    people = await repos.users.many([i for i in (report.reporter_id, report.assignee_id) if i])
    if report.anonymous and not show_reporter:
        reporter = Text("report.anonymous_reporter")
    else:
        who = people.get(report.reporter_id)
        reporter = Verbatim(who.display_name if who else "?")
        if report.anonymous:
            reporter = Text("report.anonymous_seen_by_police", {"name": reporter})
    assignee = people.get(report.assignee_id) if report.assignee_id else None
    photos = await repos.reports.photos(report.id)
    text = Text(
        "report.card",
        {
            "ticket": ticket_label(report),
            "category": category_label(community, report.category),
            "urgency": urgency_label(report.urgency),
            "state": state_label(report.state),
            "grid": grid_label(community, report.grid_key),
            "location": location_label(report),
            "description": Verbatim(_short(report.description, CARD_DESCRIPTION_CHARS)),
            "reporter": reporter,
            "created": When(report.created_at),
            "assignee": Verbatim(assignee.display_name) if assignee else Text("report.nobody"),
        },
    )
    return Reply(text, card_buttons(report), photos=tuple(photos[:1]))


def summary_line(report: Report, community: Community, *, overdue: bool = False) -> Text:
    return Text(
        "report.line_overdue" if overdue else "report.line",
        {
            "ticket": ticket_label(report),
            "category": category_label(community, report.category),
            "state": state_label(report.state),
            "created": When(report.created_at),
            "urgency": urgency_label(report.urgency),
        },
    )


def with_card(key: str, report: Report, shown: Reply) -> Reply:
    """A notice about the report (`key`) with its card inside, the card's buttons and photo."""
    intro = Text(key, {"ticket": ticket_label(report), "card": shown.text})
    return Reply(intro, shown.choices, shown.photos)


def assigned_to_you(report: Report, shown: Reply) -> Reply:
    start = Choice(Text("button.start_work"), action=choices.encode("rep", "start", report.id))
    resolve = Choice(Text("button.resolve"), action=choices.encode("rep", "res", report.id))
    intro = Text("notify.assigned_to_you", {"ticket": ticket_label(report), "card": shown.text})
    return Reply(intro, ((start, resolve),), shown.photos)


def escalation(report: Report, minutes: int, shown: Reply) -> Reply:
    text = Text("notify.escalation", {"ticket": ticket_label(report), "minutes": minutes, "card": shown.text})
    return Reply(text, shown.choices)


def reporter_told(community: Community, report: Report, note: str | None, original: Report | None) -> Reply:
    """What the reporter hears when their report moves; a resolved one asks for a rating."""
    params: dict[str, object] = {
        "ticket": ticket_label(report),
        "state": state_label(report.state),
        "category": category_label(community, report.category),
    }
    key = f"notify.reporter.{report.state}"
    if note:
        params["note"] = Verbatim(note)
    if report.state == rs.DUPLICATE and report.duplicate_of:
        params["original"] = ticket_label(original) if original else "?"
    reply_choices: tuple[tuple[Choice, ...], ...] = ()
    if report.state == rs.RESOLVED:
        reply_choices = (
            tuple(
                Choice(Text("button.stars", {"n": n}), action=choices.encode("rate", report.id, n))
                for n in range(1, 6)
            ),
        )
    return Reply(Text(key, params), reply_choices)
