"""The iCalendar file of someone's patrol shifts (/myshifts → calendar button)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from icalendar import Alarm, Calendar, Event

from handlers.community import Community
from storage.models import PatrolShift

FILENAME = "shouwang-patrols.ics"
MIME = "text/calendar"


def calendar(community: Community, shifts: Sequence[PatrolShift], now: datetime) -> bytes:
    """An iCalendar file of these shifts, each with a reminder an hour before.

    UIDs are stable per shift, so importing a newer file updates events instead of doubling them.
    """
    cal = Calendar()
    cal.add("prodid", "-//Shouwang//patrols//")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", community.name)
    for shift in shifts:
        summary = f"{community.name} · {shift.area}"
        event = Event()
        event.add("uid", f"patrol-{shift.id}@shouwang")
        event.add("dtstamp", now)
        event.add("dtstart", shift.starts_at)
        event.add("dtend", shift.ends_at)
        event.add("summary", summary)
        event.add("location", shift.meeting_label or f"{shift.meeting_lat:.5f}, {shift.meeting_lon:.5f}")
        event.add("geo", (shift.meeting_lat, shift.meeting_lon))
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", summary)
        alarm.add("trigger", timedelta(hours=-1))
        event.add_component(alarm)
        cal.add_component(event)
    return cal.to_ical()
