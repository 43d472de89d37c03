"""Recurring notices, satisfaction surveys and the figures of the weekly digest."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection


class NoticeRepo:
    def __init__(self, connection: AsyncConnection) -> None:
        self.c = connection
