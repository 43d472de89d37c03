"""What the weekly digest plugs into the engine."""

from __future__ import annotations

from handlers.digest import posting, rules
from handlers.registry import Feature

FEATURE = Feature(
    name="digest",
    schedules={rules.DIGEST: posting.WEEKLY},
    on_start=rules.on_start,
    # Its weekday and time are read from the [broadcasts] section, which the broadcasts feature owns.
)
