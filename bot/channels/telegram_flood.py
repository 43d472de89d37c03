"""Telegram's flood limits, kept by the adapter so that Telegram rarely has to enforce them with a 429.

Not aiolimiter: its leaky bucket lets a full burst through and then leaks continuously, so
after a quiet spell a group gets 20 messages at once and 19 more within the same minute, which
Telegram (and the fake Bot API of the tests, which counts as Telegram does) refuses. A send
here also holds its place until its answer came back, a reply goes before outbox rows, a chat
whose turn is far off is refused up front rather than waited for, and a 429 all the same
lowers the rate; aiolimiter offers none of these. (The 429's retry_after itself is honoured
by the outbox: the adapter turns RetryAfter into RetryLater.)
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from dataclasses import dataclass, field

from bot.channels.base import RetryLater

# A chat whose turn is further off than this is not waited for: the outbox retries the row then.
MAX_FLOOD_WAIT_SECONDS = 3.0
# A reply to what someone just did waits before everything from the outbox (whose priorities,
# the outbox lanes, are 0 and up).
REPLY_PRIORITY = -1
# Telegram's ceiling for paid broadcasts (allow_paid_broadcast), messages a second.
MAX_PAID_PER_SECOND = 1000.0


class Window:
    """At most `limit` sends in any `period` seconds, counted the way the server counts them.

    A send holds its place from the moment it is let through until `period` after its
    answer came back. The server stamps the request somewhere in between, so whatever
    the network does to the requests' timing, this never lets through one the server
    would refuse. Senders wait in turn by priority, lowest first (a reply, then the outbox's
    lanes), and in the order they came within one: an answer or a report card passes an
    alert's copies already waiting here.
    """

    def __init__(self, limit: int, period: float) -> None:
        self.ceiling = limit
        self.limit = limit
        self.period = period
        self.answered: deque[float] = deque()
        self.open = 0
        # (priority, arrival, turn): a heap, so the most urgent sender is granted next.
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._changed = asyncio.Event()
        self._granter: asyncio.Task[None] | None = None
        self._slowed_at = 0.0

    def _used(self, now: float) -> int:
        horizon = now - self.period
        while self.answered and self.answered[0] <= horizon:
            self.answered.popleft()
        if self.limit < self.ceiling:
            # Back up by a twentieth of the configured rate per period without a 429.
            periods = int((now - self._slowed_at) / self.period)
            if periods:
                self.limit = min(self.ceiling, self.limit + periods * max(1, self.ceiling // 20))
                self._slowed_at += periods * self.period
        return len(self.answered) + self.open

    def wait_needed(self, now: float, count: int = 1) -> float:
        """About how long `count` sends asked for now would wait for their turn."""
        waiting = sum(1 for _, _, turn in self._waiters if not turn.done())
        need = self._used(now) + waiting + count - self.limit
        if need <= 0:
            return 0.0
        if need <= len(self.answered):
            return self.answered[need - 1] + self.period - now
        return self.period  # behind sends still waiting for their answer

    def idle(self, now: float) -> bool:
        return self._used(now) == 0 and not self._waiters

    def take(self) -> None:
        """Count a send that does not wait for its turn."""
        self.open += 1

    async def acquire(self, priority: int = 0) -> None:
        if not self._waiters and self._used(time.monotonic()) < self.limit:
            self.open += 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._arrivals), turn))
        if self._granter is None or self._granter.done():
            self._granter = asyncio.create_task(self._grant())
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.give_back()  # granted just as its sender gave up
            raise

    def release(self) -> None:
        """The send was answered (or failed): its place frees `period` from now."""
        self.open -= 1
        self.answered.append(time.monotonic())
        self._changed.set()

    def give_back(self) -> None:
        """The place was not used after all."""
        self.open -= 1
        self._changed.set()

    def slow_down(self) -> None:
        """Telegram said 429 all the same (a lower limit than configured, another process on the
        same token): take a fifth off the rate, and win it back while no 429 follows."""
        self.limit = max(1, int(self.limit * 0.8))
        self._slowed_at = time.monotonic()

    async def _grant(self) -> None:
        while self._waiters:
            turn = self._waiters[0][2]
            if turn.done():  # its sender gave up waiting
                heapq.heappop(self._waiters)
                continue
            now = time.monotonic()
            if self._used(now) < self.limit:
                heapq.heappop(self._waiters)
                self.open += 1
                turn.set_result(None)
                continue
            self._changed.clear()
            timeout = self.answered[0] + self.period - now if self.answered else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)


def window_per_second(rate: float) -> Window:
    # 0.5 a second is "one every two seconds", not zero.
    limit = max(1, int(rate))
    return Window(limit, limit / rate)


@dataclass
class Turn:
    """One outgoing message, which may take several Bot API calls (photos, long text)."""

    chat_id: str
    group: bool
    # A reply to what the person just did, rather than something from the outbox.
    reply: bool
    calls_left: int
    begun: bool = False
    # The outbox row's priority (its lane); a reply goes before all of them.
    priority: int = 0
    # Sent with allow_paid_broadcast: paced by the paid rate instead of the bot's free one.
    paid: bool = False
    # What the turn waits for: REPLY_PRIORITY for a reply, else its priority.
    rank: int = field(init=False)

    def __post_init__(self) -> None:
        self.rank = REPLY_PRIORITY if self.reply else self.priority


class FloodControl:
    """Telegram's flood limits, kept here so that Telegram rarely has to enforce them with a 429.

    Every send waits for the bot's turn (about 30 a second) and its chat's (20 a minute into
    a group, one a second into a private chat). A direct reply in a private chat does not
    wait for the chat's turn, as its pace is the person's own, but is counted; it goes
    before outbox rows waiting for the bot's turn. A chat whose turn is more than
    `max_wait` away refuses the message before it begins (RetryLater), so the outbox keeps
    the row and the sender is free for other chats; once a message has begun, its later
    calls wait for their turn, so that it is never left half sent. Waiting for the bot's
    turn goes by priority (see Window).

    `paid_per_second`: with paid broadcasts on, the rate of messages sent with
    allow_paid_broadcast, which Telegram does not count against the free 30 a second (None: off).
    """

    def __init__(
        self,
        per_second: float,
        group_per_minute: int,
        chat_per_second: float,
        max_wait: float = MAX_FLOOD_WAIT_SECONDS,
        paid_per_second: float | None = None,
    ) -> None:
        self.bot = window_per_second(per_second)
        self.paid = None if paid_per_second is None else window_per_second(paid_per_second)
        self.group_per_minute = group_per_minute
        self.chat_per_second = chat_per_second
        self.max_wait = max_wait
        self._chats: dict[str, Window] = {}
        self._sweep_at = 4096

    def _chat(self, turn: Turn) -> Window:
        window = self._chats.get(turn.chat_id)
        if window is None:
            if len(self._chats) >= self._sweep_at:
                self._forget_idle()
            group = turn.group
            window = Window(self.group_per_minute, 60.0) if group else window_per_second(self.chat_per_second)
            self._chats[turn.chat_id] = window
        return window

    def _forget_idle(self) -> None:
        now = time.monotonic()
        self._chats = {chat: w for chat, w in self._chats.items() if not w.idle(now)}
        self._sweep_at = max(4096, 2 * len(self._chats))

    async def enter(self, turn: Turn) -> tuple[Window, ...]:
        """Wait until the next call of `turn` may go; returns the windows to leave afterwards."""
        chat = self._chat(turn)
        if turn.reply and not turn.group:
            chat.take()
        else:
            if not turn.begun:
                wait = chat.wait_needed(time.monotonic(), turn.calls_left)
                if wait > self.max_wait:
                    raise RetryLater(wait, "flood control: the chat's turn is too far off")
            await chat.acquire(turn.rank)
        bot = self.paid if turn.paid and self.paid is not None else self.bot
        try:
            await bot.acquire(turn.rank)
        except BaseException:
            chat.give_back()
            raise
        turn.begun = True
        turn.calls_left -= 1
        return chat, bot

    @staticmethod
    def leave(windows: tuple[Window, ...]) -> None:
        for window in windows:
            window.release()

    @staticmethod
    def slow_down(windows: tuple[Window, ...]) -> None:
        """Telegram said 429: slow down the rate the refused call was paced by (free or paid)."""
        windows[-1].slow_down()
