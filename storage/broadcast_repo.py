"""Broadcasts, their recipients and acknowledgements, and residents' subscriptions."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection


class BroadcastRepo:
    def __init__(self, connection: AsyncConnection) -> None:
        self.c = connection
