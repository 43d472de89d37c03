"""What the channel adapters (bot.channels.base.Host and Inbox) and the web app ask of the rest of the bot.

The adapters open no transaction and know no database: every piece of database work
they need is one method here, each one unit of work of the engine (`Engine.run`). The
composition root hands each adapter this object, not the whole runtime.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bot.channels.base import Busy, MenuPick
from bot.metrics import Backlog, Metrics
from handlers import notify
from handlers.clock import Clock
from handlers.media import MediaStore
from handlers.messages import Incoming, Reply, Response, Text, reply_to_json
from handlers.router import Engine
from storage import db
from storage.repositories import Repos

# A numbered choice nobody picked is closed after this long: the card may be long out of date.
MENU_TTL = timedelta(days=2)

# What the engine answers when handling an input failed (handlers/router.py).
FAILED = Text("error.internal")

T = TypeVar("T")


class ChannelServices:
    def __init__(
        self,
        engine: Engine,
        media: MediaStore,
        clock: Clock,
        default_language: str,
        metrics: Metrics | None = None,
    ) -> None:
        self._engine = engine
        self._media = media
        self._clock = clock
        self._default_language = default_language
        self._metrics = metrics

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
        started = time.perf_counter()
        response = await self._engine.handle(incoming)
        if self._metrics is not None:
            # The engine turns a failure into its apology instead of raising: that is how it shows.
            ok = response.notice != FAILED
            self._metrics.handled(incoming.channel, ok, time.perf_counter() - started)
        return response

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

    async def menu_pick(self, channel: str, chat_id: str, number: int) -> MenuPick | None:
        """What a number the person replied stands for; None if it is just a number to them.

        An open choice is taken (its menu is answered). A number whose menu is gone is
        answered as such, unless a dialogue runs: there a number is an answer of its own
        (a building, a day of the month) once the menu that showed it was answered.
        """
        now = self._clock.now()

        async def pick(repos: Repos) -> MenuPick | None:
            choice = await repos.menus.choice(channel, chat_id, number, now, MENU_TTL)
            if choice is None:
                return None
            if choice.is_open:
                if choice.action is None:
                    return None  # a link's number: the link is in the text to open
                await repos.menus.spend_menu_of(channel, chat_id, number, None)
                return MenuPick(choice.action, self._default_language)
            # Menus are shown in private chats only, where the chat is the person.
            found = await repos.users.by_identity_with_draft(channel, chat_id)
            if found is not None and found[2] is not None:
                return None
            language = (found[0].language if found else None) or self._default_language
            return MenuPick(None, language)

        return await self._run(pick)

    async def menus_answered(self, channel: str, chat_id: str, action: str | None) -> None:
        """The person pressed a card's button (`action`: that card's menu is answered) or wrote
        something else (every menu shown before is answered or passed over)."""
        if action is None:
            await self._run(lambda repos: repos.menus.spend_all(channel, chat_id))
        else:
            await self._run(lambda repos: repos.menus.spend_menu_of(channel, chat_id, None, action))

    async def menu_numbers(self, channel: str, chat_ids: list[str]) -> dict[str, int]:
        return await self._run(lambda repos: repos.menus.first_free(channel, chat_ids))

    async def remember_menu(
        self, channel: str, chat_ids: list[str], first: int, actions: list[str | None], menu: str
    ) -> None:
        if not chat_ids or not actions:
            return
        now = self._clock.now()
        await self._run(lambda repos: repos.menus.remember(channel, chat_ids, first, actions, menu, now))

    # --- the web app's /metrics ------------------------------------------------------------

    async def outbox_backlog(self) -> list[Backlog]:
        """The rows not delivered yet, counted in a read-only transaction that holds up no chat."""
        now = self._clock.now()
        rows = await self._engine.run(lambda repos: repos.outbox.backlog(now), read_only=True)
        return [Backlog(*row) for row in rows]
