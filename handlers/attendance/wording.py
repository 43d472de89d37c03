"""How a shift's area, a person and a moment are named in attendance messages.

Shared by the views and by the refusals the rules raise (a DomainError carries
its message parameters), so neither has to import the other.
"""

from __future__ import annotations

from datetime import datetime

from handlers.messages import Verbatim, When
from storage.models import PatrolShift


def area(shift: PatrolShift) -> Verbatim:
    return Verbatim(shift.area)


def name(display_name: str) -> Verbatim:
    return Verbatim(display_name)


def at(moment: datetime) -> When:
    return When(moment)


def meeting(shift: PatrolShift) -> Verbatim:
    return Verbatim(shift.meeting_label or shift.area)
