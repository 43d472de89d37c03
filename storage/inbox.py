"""WeChat Work's inbound side: messages accepted before they are handled, and numbered text menus."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from storage import schema as t
from storage.rows import Repo

PENDING = "pending"
OPEN, CLOSED, SPENT = t.MENU_STATES


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


@dataclass(frozen=True)
class MenuChoice:
    """What a number replied in a chat stands for: an action while its menu is open."""

    action: str | None
    is_open: bool


class MenuRepo(Repo):
    """Numbered choices shown in chats that have no buttons ("回复 5 选择…"), one row per number.

    A chat's open numbers never repeat: a menu sent while others are open continues after
    them, so two cards cannot both offer "1". A menu is open until the person picks from
    it, writes something else, or a newer copy of the same card replaces it, or `ttl` passes.
    Replaced and expired numbers are not given out again until the person writes, so a late
    reply with one of them is recognised as such instead of acting on another menu.
    """

    async def first_free(self, channel: str, chat_ids: Sequence[str]) -> dict[str, int]:
        """The first number a new menu may use in each chat."""
        m = t.menu_entries.c
        rows = await self.c.execute(
            sa.select(m.chat_id, sa.func.max(m.number))
            .where(m.channel == channel, m.chat_id.in_(list(chat_ids)), m.state != SPENT)
            .group_by(m.chat_id)
        )
        highest = {row[0]: int(row[1]) for row in rows}
        return {chat: highest.get(chat, 0) + 1 for chat in chat_ids}

    async def remember(
        self,
        channel: str,
        chat_ids: Sequence[str],
        first: int,
        actions: Sequence[str | None],
        menu: str,
        now: datetime,
    ) -> None:
        """`actions` numbered from `first` in each chat; open menus offering any of them are replaced."""
        if not chat_ids or not actions:
            return
        m = t.menu_entries.c
        offered = [action for action in actions if action]
        if offered:
            same_card = t.menu_entries.alias("same_card")
            await self.c.execute(
                t.menu_entries.update()
                .where(
                    m.channel == channel,
                    m.chat_id.in_(list(chat_ids)),
                    m.state == OPEN,
                    sa.exists().where(
                        same_card.c.channel == m.channel,
                        same_card.c.chat_id == m.chat_id,
                        same_card.c.menu == m.menu,
                        same_card.c.state == OPEN,
                        same_card.c.action.in_(offered),
                    ),
                )
                .values(state=CLOSED)
            )
        statement = self._insert(t.menu_entries)
        statement = statement.on_conflict_do_update(
            index_elements=["channel", "chat_id", "number"],
            set_={
                "action": statement.excluded.action,
                "menu": statement.excluded.menu,
                "state": statement.excluded.state,
                "shown_at": statement.excluded.shown_at,
            },
        )
        await self.c.execute(
            statement,
            [
                {
                    "channel": channel,
                    "chat_id": chat,
                    "number": first + index,
                    "action": action,
                    "menu": menu,
                    "state": OPEN,
                    "shown_at": now,
                }
                for chat in chat_ids
                for index, action in enumerate(actions)
            ],
        )

    async def choice(
        self, channel: str, chat_id: str, number: int, now: datetime, ttl: timedelta
    ) -> MenuChoice | None:
        """What `number` stands for in the chat; None if no menu there ever showed it."""
        m = t.menu_entries.c
        row = (
            await self.c.execute(
                sa.select(m.action, m.state, m.shown_at).where(
                    m.channel == channel, m.chat_id == chat_id, m.number == number
                )
            )
        ).first()
        if row is None:
            return None
        return MenuChoice(row.action, row.state == OPEN and row.shown_at > now - ttl)

    async def spend_menu_of(self, channel: str, chat_id: str, number: int | None, action: str | None) -> None:
        """The person answered the menu showing `number` (or offering `action`, a card button)."""
        m = t.menu_entries.c
        answered = sa.select(m.menu).where(m.channel == channel, m.chat_id == chat_id, m.state == OPEN)
        answered = (
            answered.where(m.number == number) if number is not None else answered.where(m.action == action)
        )
        await self.c.execute(
            t.menu_entries.update()
            .where(m.channel == channel, m.chat_id == chat_id, m.menu.in_(answered.scalar_subquery()))
            .values(state=SPENT)
        )

    async def spend_all(self, channel: str, chat_id: str) -> None:
        """The person wrote something else: the menus before it are answered or passed over."""
        m = t.menu_entries.c
        await self.c.execute(
            t.menu_entries.update()
            .where(m.channel == channel, m.chat_id == chat_id, m.state != SPENT)
            .values(state=SPENT)
        )

    async def entries(self, channel: str, chat_id: str) -> dict[int, tuple[str | None, str]]:
        """number -> (action, state), for tests and support."""
        m = t.menu_entries.c
        rows = await self.c.execute(
            sa.select(m.number, m.action, m.state).where(m.channel == channel, m.chat_id == chat_id)
        )
        return {int(row.number): (row.action, row.state) for row in rows}

    async def forget_chat(self, channel: str, chat_id: str) -> None:
        """Nothing kept about this chat's menus (the person's data is erased)."""
        m = t.menu_entries.c
        await self.c.execute(t.menu_entries.delete().where(m.channel == channel, m.chat_id == chat_id))
