"""How a shift, a person or a contact is named in messages.

Shared by the views and by the refusals the rules raise (a DomainError carries
its message parameters), so neither has to import the other.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from handlers.community import Community
from handlers.messages import Text, Verbatim, When
from handlers.patrols.local_time import DAILY, WEEKDAYS, hhmm, local_day
from storage.models import PatrolShift, User


def weekday_label(day: date) -> Text:
    return Text(f"patrol.weekday.{day.isoweekday()}")


def repeat_label(weekdays: str | None) -> Text:
    if weekdays is None:
        return Text("patrol.repeat.once")
    if weekdays == DAILY:
        return Text("patrol.repeat.daily")
    if weekdays == WEEKDAYS:
        return Text("patrol.repeat.weekdays")
    if len(weekdays) == 1:
        return Text("patrol.repeat.weekly", {"weekday": Text(f"patrol.weekday.{weekdays}")})
    # Only the four forms above are offered by /newpatrol; anything else was set up by hand.
    return Text("patrol.repeat.custom", {"days": ",".join(weekdays)})


def meeting_label(label: str | None, lat: float, lon: float) -> Text:
    if label:
        return Text("patrol.meeting_named", {"place": Verbatim(label)})
    return Text("patrol.meeting_pin", {"lat": f"{lat:.5f}", "lon": f"{lon:.5f}"})


def shift_params(community: Community, shift: PatrolShift) -> dict[str, Any]:
    """What every message about a shift says: when (local weekday, start, end), where, meeting point."""
    tz = community.tz
    return {
        "when": When(shift.starts_at),
        "end": hhmm(shift.ends_at.astimezone(tz).time()),
        "weekday": weekday_label(local_day(shift.starts_at, tz)),
        "area": Verbatim(shift.area),
        "meeting": meeting_label(shift.meeting_label, shift.meeting_lat, shift.meeting_lon),
    }


def name(user: User) -> Verbatim:
    return Verbatim(user.display_name)


def contact(leader: User | None) -> Text:
    """Whom to tell about a change of plan at short notice: the leader, or the community police."""
    if leader is None:
        return Text("patrol.contact_police")
    return Text("patrol.contact_leader", {"name": Verbatim(leader.display_name)})
