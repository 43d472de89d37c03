"""What the delivery worker and the runtime need from a channel adapter."""

from __future__ import annotations

from typing import Protocol

from bot.i18n import RenderedMessage


class DeliveryError(Exception):
    """Sending failed; subclasses say whether trying again makes sense."""


class RetryLater(DeliveryError):
    def __init__(self, seconds: float, reason: str = "rate limited") -> None:
        super().__init__(reason)
        self.seconds = seconds


class Undeliverable(DeliveryError):
    """Trying again will not help: the chat is gone or the person blocked the bot."""

    def __init__(self, reason: str, *, blocked: bool = False) -> None:
        super().__init__(reason)
        self.blocked = blocked


class Channel(Protocol):
    name: str

    def deep_link(self, payload: str) -> str: ...

    async def send(self, chat_id: str, message: RenderedMessage, photos: list[bytes]) -> str:
        """Send and return an opaque reference to the message, for later edits."""
        ...

    async def edit(self, chat_id: str, message_ref: str, message: RenderedMessage) -> None: ...
