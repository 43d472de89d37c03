"""Conversations: the draft of a flow a person is in the middle of, one per person and channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam

from storage import schema as t
from storage.models import Conversation
from storage.rows import Insert, Repo, all_models, to_model


class ConversationRepo(Repo):
    """Drafts. Saving and deleting run for most updates (bench/throughput.py): prebuilt."""

    async def get(self, user_id: int, channel: str) -> Conversation | None:
        c = t.conversations.c
        row = (
            await self.c.execute(sa.select(t.conversations).where(c.user_id == user_id, c.channel == channel))
        ).first()
        return to_model(Conversation, row)

    async def save(
        self, user_id: int, channel: str, flow: str, step: str, data: dict[str, Any], now: datetime
    ) -> None:
        def upsert(insert: Insert) -> Any:
            stmt = insert(t.conversations)
            return stmt.on_conflict_do_update(
                index_elements=["user_id", "channel"],
                set_={name: stmt.excluded[name] for name in ("flow", "step", "data", "updated_at")},
            )

        values = {"user_id": user_id, "channel": channel, "flow": flow, "step": step, "data": data}
        await self.c.execute(self.prebuilt(upsert), {**values, "updated_at": now})

    async def delete(self, user_id: int, channel: str) -> None:
        delete = self.prebuilt(
            lambda: t.conversations.delete().where(
                t.conversations.c.user_id == bindparam("user_id"),
                t.conversations.c.channel == bindparam("channel"),
            )
        )
        await self.c.execute(delete, {"user_id": user_id, "channel": channel})

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
