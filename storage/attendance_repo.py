"""Check-in, check-out, hours worked and no-shows of patrol sign-ups."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection


class AttendanceRepo:
    def __init__(self, connection: AsyncConnection) -> None:
        self.c = connection
