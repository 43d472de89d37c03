"""Check-in, check-out and hours worked on patrol shifts (being built)."""

from __future__ import annotations

from storage.models import PatrolShift
from storage.repositories import Repos

CLOSE = "patrol_close"


async def arm_close(repos: Repos, shift: PatrolShift) -> None:
    """Settle attendance when the shift ends: no-shows marked, forgotten check-outs closed and flagged."""
    await repos.schedules.arm(CLOSE, str(shift.id), shift.ends_at)


async def disarm_close(repos: Repos, shift_id: int) -> None:
    await repos.schedules.cancel(CLOSE, str(shift_id))
