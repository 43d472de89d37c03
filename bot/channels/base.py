"""What the delivery worker and the runtime need from a channel adapter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.i18n import RenderedMessage
from handlers.messages import Incoming, Reply, Response


class DeliveryError(Exception):
    """Sending failed; subclasses say whether trying again makes sense."""


class Transient(DeliveryError):
    """The platform or the way to it is down for now (5xx, time-out, connection refused): the
    message is tried again, through an outage as long as its outbox kind's horizon."""


class Busy(Exception):
    """The database stayed locked by another process longer than its busy timeout: nothing of
    the call was stored, and the same call may be made again later."""

    def __init__(self, reason: str, language: str | None = None) -> None:
        super().__init__(reason)
        # The language to say it in, when known.
        self.language = language


# How long a channel waits before it hands an input refused as busy to the engine again.
BUSY_RETRY_SECONDS = 1.0


class RetryLater(DeliveryError):
    def __init__(self, seconds: float, reason: str = "rate limited") -> None:
        super().__init__(reason)
        self.seconds = seconds


class Undeliverable(DeliveryError):
    """Trying again will not help: the chat is gone or the person blocked the bot."""

    def __init__(self, reason: str, *, blocked: bool = False) -> None:
        super().__init__(reason)
        self.blocked = blocked


@dataclass(frozen=True)
class MenuPick:
    """A replied number: the action of an open choice, or (action None) a menu that is gone,
    to be said so in `language`."""

    action: str | None
    language: str


class Channel(Protocol):
    name: str

    def deep_link(self, payload: str) -> str: ...

    async def send(
        self, chat_id: str, message: RenderedMessage, photos: list[bytes], *, priority: int = 0
    ) -> str:
        """Send and return an opaque reference to the message, for later edits.

        `priority`: the outbox row's (handlers/registry.py Lane, lower first), for an adapter
        that queues sends for the platform's rate limits."""
        ...

    async def edit(self, chat_id: str, message_ref: str, message: RenderedMessage) -> None: ...


class Host(Protocol):
    """What an adapter asks of the rest of the bot: it opens no transaction of its own."""

    @property
    def default_language(self) -> str: ...

    def now(self) -> datetime: ...

    async def handle(self, incoming: Incoming) -> Response:
        """The engine's answer to one input (one transaction of its own)."""
        ...

    async def defer(self, channel: str, chat_id: str, language: str, replies: Sequence[Reply]) -> None:
        """Queue `replies` in the outbox, in order, and wake the delivery worker."""
        ...

    async def photos(self, media_ids: Sequence[int]) -> list[bytes]:
        """The stored photos of a reply (those still on disk), in order."""
        ...


class Inbox(Protocol):
    """Callbacks stored before they are answered, and the numbered menus a reply of "1" refers to.

    WeChat Work needs both (it cannot wait for the engine, and has no buttons in plain text).
    """

    async def accept(self, channel: str, rows: list[dict[str, Any]]) -> None:
        """Store callbacks ({"dedupe_key", "payload"}); a repeated key, a platform's retry, is ignored."""
        ...

    async def pending(self, channel: str) -> list[tuple[int, dict[str, Any]]]: ...

    async def finish(self, inbox_id: int, state: str) -> None: ...

    async def menu_pick(self, channel: str, chat_id: str, number: int) -> MenuPick | None:
        """What a replied number stands for (see MenuPick); None: it is just a number."""
        ...

    async def menus_answered(self, channel: str, chat_id: str, action: str | None) -> None:
        """A card button (`action`) was pressed, or (None) the person wrote something else."""
        ...

    async def menu_numbers(self, channel: str, chat_ids: list[str]) -> dict[str, int]:
        """The first number a new menu may use in each chat (open numbers never repeat)."""
        ...

    async def remember_menu(
        self, channel: str, chat_ids: list[str], first: int, actions: list[str | None], menu: str
    ) -> None: ...
