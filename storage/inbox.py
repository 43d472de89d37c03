"""WeChat Work's inbound side: messages accepted before they are handled, and numbered text menus."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from storage import schema as t
from storage.rows import Repo

PENDING = "pending"


class InboxRepo(Repo):
    async def accept_many(self, channel: str, rows: list[dict[str, Any]], now: datetime) -> None:
        """Store a batch of inbound messages in one statement; repeats of known ones are skipped.

        Each row carries `dedupe_key` and `payload`.
        """
        statement = self._insert(t.inbox).on_conflict_do_nothing(index_elements=["channel", "dedupe_key"])
        await self.c.execute(statement, [{"channel": channel, "received_at": now, **row} for row in rows])

    async def pending(self, channel: str, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        rows = await self.c.execute(
            sa.select(t.inbox.c.id, t.inbox.c.payload)
            .where(t.inbox.c.channel == channel, t.inbox.c.state == PENDING)
            .order_by(t.inbox.c.id)
            .limit(limit)
        )
        return [(int(row.id), row.payload) for row in rows]

    async def finish(self, inbox_id: int, state: str, now: datetime) -> None:
        # Once handled, only the key that recognises a retry is needed: what the person wrote (and
        # who they are on the platform) is not kept here, so erasure has nothing to find in it.
        await self.c.execute(
            t.inbox.update().where(t.inbox.c.id == inbox_id).values(state=state, processed_at=now, payload={})
        )


class MenuRepo(Repo):
    """The numbered choices last shown in a chat that has no buttons ("回复 1 选择…")."""

    async def remember(self, channel: str, chat_id: str, actions: list[str | None], now: datetime) -> None:
        await self.remember_many(channel, [chat_id], actions, now)

    async def remember_many(
        self, channel: str, chat_ids: Sequence[str], actions: list[str | None], now: datetime
    ) -> None:
        """The same menu for many chats (the members of one batched send): one statement."""
        statement = self._insert(t.menus)
        statement = statement.on_conflict_do_update(
            index_elements=["channel", "chat_id"],
            set_={"actions": statement.excluded.actions, "updated_at": statement.excluded.updated_at},
        )
        await self.c.execute(
            statement,
            [
                {"channel": channel, "chat_id": chat, "actions": actions, "updated_at": now}
                for chat in chat_ids
            ],
        )

    async def action(self, channel: str, chat_id: str, number: int) -> str | None:
        m = t.menus.c
        actions = (
            await self.c.execute(sa.select(m.actions).where(m.channel == channel, m.chat_id == chat_id))
        ).scalar()
        if not actions or not 1 <= number <= len(actions):
            return None
        action: str | None = actions[number - 1]
        return action
