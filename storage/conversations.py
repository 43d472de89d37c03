"""Conversations: the draft of a flow a person is in the middle of, one per person and channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from storage import schema as t
from storage.models import Conversation
from storage.rows import Repo, all_models, to_model


class ConversationRepo(Repo):
    async def get(self, user_id: int, channel: str) -> Conversation | None:
        c = t.conversations.c
        row = (
            await self.c.execute(sa.select(t.conversations).where(c.user_id == user_id, c.channel == channel))
        ).first()
        return to_model(Conversation, row)

    async def save(
        self, user_id: int, channel: str, flow: str, step: str, data: dict[str, Any], now: datetime
    ) -> None:
        stmt = self._insert(t.conversations).values(
            user_id=user_id, channel=channel, flow=flow, step=step, data=data, updated_at=now
        )
        await self.c.execute(
            stmt.on_conflict_do_update(
                index_elements=["user_id", "channel"],
                set_={name: stmt.excluded[name] for name in ("flow", "step", "data", "updated_at")},
            )
        )

    async def delete(self, user_id: int, channel: str) -> None:
        c = t.conversations.c
        await self.c.execute(t.conversations.delete().where(c.user_id == user_id, c.channel == channel))

    async def idle_since(self, cutoff: datetime, limit: int = 100) -> list[Conversation]:
        rows = await self.c.execute(
            sa.select(t.conversations).where(t.conversations.c.updated_at <= cutoff).limit(limit)
        )
        return all_models(Conversation, rows)

    async def delete_if_unchanged(self, user_id: int, channel: str, updated_at: datetime) -> bool:
        """Drop a draft only if nobody touched it since it was seen idle."""
        c = t.conversations.c
        result = await self.c.execute(
            t.conversations.delete().where(
                c.user_id == user_id, c.channel == channel, c.updated_at == updated_at
            )
        )
        return result.rowcount == 1
