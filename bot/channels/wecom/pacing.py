"""Pacing of what goes to WeChat Work: its per-minute limits, and the parts of a message already sent."""

from __future__ import annotations

import hashlib
from collections import OrderedDict, defaultdict, deque
from collections.abc import Awaitable, Callable

from bot.channels.base import RetryLater
from bot.i18n import RenderedMessage


class Window:
    """Sliding one-minute windows per key, to stay under WeChat Work's per-member and per-robot limits."""

    def __init__(self, per_minute: int, now: Callable[[], float]) -> None:
        self.per_minute = per_minute
        self.now = now
        self.sent: dict[str, deque[float]] = defaultdict(deque)

    def take(self, key: str, count: int = 1) -> None:
        """Reserve `count` sends at once, so a message made of several parts is never cut in half."""
        now = self.now()
        window = self.sent[key]
        while window and now - window[0] >= 60:
            window.popleft()
        if len(window) + count > self.per_minute:
            oldest = window[0] if window else now
            raise RetryLater(max(0.1, 60 - (now - oldest) + 0.1), "per-minute limit")
        window.extend([now] * count)


class Progress:
    """Parts of multi-part messages that went out before a later part failed.

    A message to WeChat Work may take several calls (photo, text, card). When
    a later call is refused (45009, a network error) the outbox retries the
    whole row; this remembers what got through so the retry sends only the
    rest and the member never sees the first parts twice. In memory only: a
    restart in between costs at most one repeat, as everywhere in delivery.
    """

    # Enough for the members of a few interrupted batches.
    LIMIT = 5000

    def __init__(self) -> None:
        self._done: OrderedDict[str, int] = OrderedDict()

    def done(self, key: str) -> int:
        return self._done.get(key, 0)

    def stopped_at(self, key: str, index: int) -> None:
        """Parts before `index` went out; the next try starts there."""
        if index:
            self._done[key] = index
            self._done.move_to_end(key)
            while len(self._done) > self.LIMIT:
                self._done.popitem(last=False)

    def finished(self, key: str) -> None:
        self._done.pop(key, None)

    async def run(self, key: str, parts: list[Callable[[], Awaitable[None]]]) -> None:
        done = self.done(key)
        for index, part in enumerate(parts):
            if index < done:
                continue
            try:
                await part()
            except BaseException:
                self.stopped_at(key, index)
                raise
        self.finished(key)

    def remaining(self, key: str, total: int) -> int:
        return total - self._done.get(key, 0)


def fingerprint(chat_id: str, message: RenderedMessage, photos: list[bytes]) -> str:
    return progress_key(chat_id, content_digest(message, photos))


def progress_key(chat_id: str, content: str) -> str:
    return f"{chat_id}\0{content}"


def content_digest(message: RenderedMessage, photos: list[bytes]) -> str:
    digest = hashlib.sha256(message.text.encode())
    for row in message.buttons:
        for button in row:
            digest.update(b"\0" + (button.action or button.url or "").encode())
    for photo in photos:
        digest.update(hashlib.sha256(photo).digest())
    if message.document is not None:
        digest.update(hashlib.sha256(message.document.data).digest())
    return digest.hexdigest()
