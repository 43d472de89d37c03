"""Redemptions of the rewards catalogue, reward stock and monthly honours."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection


class RewardRepo:
    def __init__(self, connection: AsyncConnection) -> None:
        self.c = connection
