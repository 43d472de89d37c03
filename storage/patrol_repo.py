"""Patrol shifts, series, sign-ups and the waiting list."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection


class PatrolRepo:
    def __init__(self, connection: AsyncConnection) -> None:
        self.c = connection
