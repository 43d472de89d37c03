"""What the channel adapters (bot.channels.base.Host and Inbox) and the web app ask of the rest of the bot.

The adapters open no transaction and know no database: every piece of database work
they need is one method here, each one unit of work of the engine (`Engine.run`). The
composition root hands each adapter this object, not the whole runtime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from bot.channels.base import Busy
from handlers import notify
from handlers.clock import Clock
from handlers.media import MediaStore
from handlers.messages import Incoming, Reply, Response, reply_to_json
from handlers.router import Engine
from storage import db
from storage.repositories import Repos

T = TypeVar("T")


class ChannelServices:
    def __init__(self, engine: Engine, media: MediaStore, clock: Clock, default_language: str) -> None:
        self._engine = engine
        self._media = media
        self._clock = clock
        self._default_language = default_language

    @property
    def default_language(self) -> str:
        return self._default_language

    def now(self) -> datetime:
        return self._clock.now()

    async def _run(self, fn: Callable[[Repos], Awaitable[T]], *, read_only: bool = False) -> T:
        """The engine's unit of work, with a locked database said in the adapters' terms."""
        try:
            return await self._engine.run(fn, read_only=read_only)
        except db.Busy as busy:
            raise Busy(str(busy)) from busy

    async def handle(self, incoming: Incoming) -> Response:
        return await self._engine.handle(incoming)

    async def defer(self, channel: str, chat_id: str, language: str, replies: Sequence[Reply]) -> None:
        """Queue replies that could not be given at once (the unit of work wakes delivery)."""
        if not replies:
            return
        now = self._clock.now()

        async def enqueue(repos: Repos) -> None:
            for reply in replies:
                await repos.outbox.enqueue(
                    channel, chat_id, language, notify.MESSAGE, reply_to_json(reply), now
                )

        await self._run(enqueue)

    async def photos(self, media_ids: Sequence[int]) -> list[bytes]:
        if not media_ids:
            return []

        async def read(repos: Repos) -> list[bytes]:
            found = [await self._media.read(repos, media_id) for media_id in media_ids]
            return [data for data in found if data is not None]

        return await self._run(read, read_only=True)

    # --- the inbox and numbered menus (WeChat Work) --------------------------------------

    async def accept(self, channel: str, rows: list[dict[str, Any]]) -> None:
        await self._run(lambda repos: repos.inbox.accept_many(channel, rows, self._clock.now()))

    async def pending(self, channel: str) -> list[tuple[int, dict[str, Any]]]:
        # Read only: a lock held by another process shows up where the messages are handled.
        return await self._run(lambda repos: repos.inbox.pending(channel), read_only=True)

    async def finish(self, inbox_id: int, state: str) -> None:
        await self._run(lambda repos: repos.inbox.finish(inbox_id, state, self._clock.now()))

    async def menu_action(self, channel: str, chat_id: str, number: int) -> str | None:
        return await self._run(lambda repos: repos.menus.action(channel, chat_id, number))

    async def remember_menus(self, channel: str, chat_ids: list[str], actions: list[str | None]) -> None:
        if not chat_ids:
            return
        now = self._clock.now()
        await self._run(lambda repos: repos.menus.remember_many(channel, chat_ids, actions, now))

    # --- the web app's health check -----------------------------------------------------

    async def outbox_counts(self) -> dict[str, int]:
        """Answering at all shows the database answers."""
        return await self._engine.run(lambda repos: repos.outbox.counts(), read_only=True)
