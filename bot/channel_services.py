"""What the channel adapters (bot.channels.base.Host and Inbox) and the web app ask of the rest of the bot.

The adapters open no transaction and know no database: every piece of database work
they need is one method here, one transaction each. The composition root hands each
adapter this object, not the whole runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from handlers import notify
from handlers.clock import Clock
from handlers.media import MediaStore
from handlers.messages import Incoming, Reply, Response, reply_to_json
from handlers.router import Engine
from storage.db import Database
from storage.repositories import Repos


class ChannelServices:
    def __init__(
        self,
        database: Database,
        engine: Engine,
        media: MediaStore,
        clock: Clock,
        default_language: str,
        wake_delivery: Callable[[], None],
    ) -> None:
        self._database = database
        self._engine = engine
        self._media = media
        self._clock = clock
        self._default_language = default_language
        self._wake_delivery = wake_delivery

    @property
    def default_language(self) -> str:
        return self._default_language

    def now(self) -> datetime:
        return self._clock.now()

    async def handle(self, incoming: Incoming) -> Response:
        return await self._engine.handle(incoming)

    async def defer(self, channel: str, chat_id: str, language: str, replies: Sequence[Reply]) -> None:
        if not replies:
            return
        now = self._clock.now()
        async with self._database.transaction() as connection:
            outbox = Repos(connection).outbox
            for reply in replies:
                await outbox.enqueue(channel, chat_id, language, notify.MESSAGE, reply_to_json(reply), now)
        self._wake_delivery()

    async def photos(self, media_ids: Sequence[int]) -> list[bytes]:
        if not media_ids:
            return []
        photos = []
        async with self._database.transaction() as connection:
            repos = Repos(connection)
            for media_id in media_ids:
                data = await self._media.read(repos, media_id)
                if data is not None:
                    photos.append(data)
        return photos

    # --- the inbox and numbered menus (WeChat Work) --------------------------------------

    async def accept(self, channel: str, rows: list[dict[str, Any]]) -> None:
        async with self._database.transaction() as connection:
            await Repos(connection).inbox.accept_many(channel, rows, self._clock.now())

    async def pending(self, channel: str) -> list[tuple[int, dict[str, Any]]]:
        async with self._database.transaction() as connection:
            return await Repos(connection).inbox.pending(channel)

    async def finish(self, inbox_id: int, state: str) -> None:
        async with self._database.transaction() as connection:
            await Repos(connection).inbox.finish(inbox_id, state, self._clock.now())

    async def menu_action(self, channel: str, chat_id: str, number: int) -> str | None:
        async with self._database.transaction() as connection:
            return await Repos(connection).menus.action(channel, chat_id, number)

    async def remember_menus(self, channel: str, chat_ids: list[str], actions: list[str | None]) -> None:
        if not chat_ids:
            return
        now = self._clock.now()
        async with self._database.transaction() as connection:
            await Repos(connection).menus.remember_many(channel, chat_ids, actions, now)

    # --- the web app's health check -----------------------------------------------------

    async def outbox_counts(self) -> dict[str, int]:
        async with self._database.transaction() as connection:
            await connection.execute(sa.text("SELECT 1"))
            return await Repos(connection).outbox.counts()
