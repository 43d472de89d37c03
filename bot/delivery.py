"""The outbox drain: renders queued replies and hands them to the channel adapters.

"What happened" is committed before anyone is told; this worker is the only
place that tells. A row is marked sent only after the platform accepted it, so
nothing is ever lost; a crash can repeat only what was on its way.

An alert to a whole district is ten thousand rows, so a drain is a pipeline:

- It takes the *head* of every chat: the chat's oldest row not settled yet. A
  row waiting to be retried holds back the later rows of its chat; a row merely
  scheduled for later (a notice held over someone's quiet hours) holds back
  nothing. A chat has one row on its way at a time, so its messages arrive in
  order, and its next row is rendered only once the previous one is recorded
  (an edit needs the reference of the message it edits).
- Rows are rendered in batches, one transaction per batch, shortly before they go.
- Lanes: rows carry a priority (their kind's lane, handlers/registry.py `Lane`). Chats are
  fetched, rendered and sent most urgent first, and when rows are queued while a broadcast is
  in hand, the rows that should overtake it are fetched at once: an answer or a report card
  never waits behind bulk, and an urgent alert reaches the group chats before private chats.
  The adapters get the priority too, to let urgent sends pass those waiting for the rate limit.
- Up to `max_in_flight` rows per channel are on their way at once; the adapters
  keep the platforms' flood limits. A channel with `send_many` (WeChat Work:
  1,000 members per call) gets the rows that say the same thing in one call.
- Outcomes are recorded by group commit: whatever the platforms accepted while
  one commit ran goes into the next, so a row is marked within milliseconds of
  being accepted. A feature's `settled` hook runs per row in that transaction.

A platform outage loses nothing: transient failures (5xx, time-outs, refused connections, 429)
are tried again with a back-off that doubles up to `Retries.max_backoff` (a minute), so delivery
resumes within about that long of the platform's return, until the outbox kind's horizon
(`OutboxKind.gives_up_after`, counted from the row's first failure) has passed; a row given up
then is recorded "expired". Only errors nobody can say are transient count attempts
(`MAX_ATTEMPTS`) before a row is "failed"; permanent refusals settle a row at once.

`stop()` (SIGTERM) takes no new rows; those on their way finish and are
recorded before the drain returns. A hard kill (SIGKILL) cannot be made
exactly-once, as neither platform takes an idempotency key: rows the platform
accepted but whose commit had not happened are sent again after the restart.
That is at most the rows in flight (per channel `max_in_flight`, a WeChat Work
batch counting its recipients) plus the commit under way; nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from bot.channels.base import Channel, DeliveryError, RetryLater, Transient, Undeliverable
from bot.charts import chart_photos
from bot.i18n import RenderedMessage, Translator
from handlers import features
from handlers.clock import Clock
from handlers.community import Community
from handlers.media import MediaStore
from handlers.messages import Reply, reply_from_json
from handlers.registry import MESSAGE
from storage.db import Database
from storage.models import OutboxMessage
from storage.repositories import Repos

log = logging.getLogger(__name__)

# Attempts at a row whose errors are not known to be transient (an unknown API error code, a
# bug) before it is recorded "failed"; transient errors are tried until the kind's horizon.
MAX_ATTEMPTS = 8
# The longest wait between two attempts: how soon after an outage delivery resumes.
MAX_BACKOFF = timedelta(minutes=1)
IDLE_POLL_SECONDS = 5.0
# Rows on their way at once per channel, unless the channel says otherwise (`max_in_flight`).
DEFAULT_IN_FLIGHT = 16
# Heads fetched at once; fetched again when fewer than half of that are left in hand.
FETCH_PAGE = 1000
# Rows rendered per transaction (for channels that send many at once: all rows in hand).
RENDER_BATCH = 64
# Outcomes recorded per transaction at most: a whole WeChat Work batch.
COMMIT_BATCH = 1000
# Sent rows waiting to be recorded, beyond which no new send starts until they are: what a hard
# kill can repeat is these and the rows in flight, however slow the database is at that moment.
MAX_UNRECORDED = 32
# Batched calls on their way per channel. One: a call may carry a thousand recipients, and a
# hard kill can repeat whatever was on its way.
BATCHES_IN_FLIGHT = 1

Chat = tuple[str, str]


@dataclass(frozen=True)
class Retries:
    """How long and how often failed sends are tried again (settings, see bot/app.py)."""

    max_backoff: timedelta = MAX_BACKOFF
    # Per outbox kind, in place of what the kind declares (`OutboxKind.gives_up_after`);
    # None: never given up.
    gives_up_after: Mapping[str, timedelta | None] = field(default_factory=dict)

    def horizon(self, kind: str) -> timedelta | None:
        if kind in self.gives_up_after:
            return self.gives_up_after[kind]
        return features.REGISTRY.gives_up_after(kind)


class SendsMany(Protocol):
    """A channel that can send one message to many chats in one call."""

    max_batch: int

    async def send_many(
        self, chat_ids: list[str], message: RenderedMessage, photos: list[bytes]
    ) -> dict[str, str | DeliveryError]:
        """Per chat: the sent message's reference, or why it was not sent."""
        ...


def _sends_many(channel: Channel) -> SendsMany | None:
    return cast(SendsMany, channel) if hasattr(channel, "send_many") else None


@dataclass
class _Job:
    """Rows to send as one: a single row, or rows of identical content for `send_many`."""

    channel: Channel
    rows: list[OutboxMessage]
    message: RenderedMessage | None = None
    photos: list[bytes] = field(default_factory=list)
    edit_ref: str | None = None
    # Rendering failed: nothing is sent, the rows are settled (or retried) with this.
    failure: DeliveryError | None = None
    # For `send_many`: what rows saying the same thing share (they may join this job).
    batch_key: tuple[Any, ...] | None = None
    # A reply with a chart still to draw (once the rendering transaction is over).
    chart: Reply | None = None


@dataclass(frozen=True)
class _Outcome:
    row: OutboxMessage
    state: str  # "sent", "failed", "blocked", "expired", or "retry"
    ref: str | None = None
    error: str = ""
    retry_at: datetime | None = None

    @property
    def chat(self) -> Chat:
        return (self.row.channel, self.row.chat_id)


class Delivery:
    def __init__(
        self,
        database: Database,
        community: Community,
        translator: Translator,
        media: MediaStore,
        clock: Clock,
        channels: dict[str, Channel],
        retries: Retries | None = None,
    ) -> None:
        self.database = database
        self.community = community
        self.translator = translator
        self.media = media
        self.clock = clock
        self.channels = channels
        self.retries = retries or Retries()
        self._wake = asyncio.Event()
        self._stopping = False
        self._draining = asyncio.Lock()
        # The worker's own transactions one at a time: SQLite has a single writer, and
        # waiting here is far cheaper than in its busy handler.
        self._db = asyncio.Lock()
        # Outcomes that could not be recorded (the database failed): recorded first next time,
        # and their chats are left alone until then, so nothing is sent twice meanwhile.
        self._unrecorded: list[_Outcome] = []
        # Counts wake() calls: a drain that found nothing looks again when new rows were queued.
        self._nudges = 0
        self._current: _Drain | None = None

    def wake(self) -> None:
        self._nudges += 1
        self._wake.set()
        if self._current is not None:
            self._current.progress.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            until = self.clock.now() + timedelta(seconds=IDLE_POLL_SECONDS)
            try:
                await self.drain()
                until = await self._next_look()
            except Exception:
                log.exception("outbox drain failed")
            await self._sleep_until(until)

    async def _sleep_until(self, moment: datetime) -> None:
        """Until woken, or until the clock shows `moment`: with a test's clock, moving it is what
        lets a retry fall due, so an outage of hours takes no real time to test."""
        woken = asyncio.ensure_future(self._wake.wait())
        slept = asyncio.ensure_future(self.clock.sleep_until(moment))
        try:
            await asyncio.wait((woken, slept), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in (woken, slept):
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting

    def stop(self) -> None:
        """Take no new rows; the drain under way returns once the rows on their way are recorded."""
        self._stopping = True
        self._wake.set()
        if self._current is not None:
            self._current.progress.set()

    async def drain(self) -> int:
        """Send everything due (also what falls due meanwhile); returns how many rows were settled
        (sent or given up)."""
        async with self._draining:
            self._current = _Drain(self)
            try:
                return await self._current.run()
            finally:
                self._current = None

    async def _next_look(self) -> datetime:
        """When to look again: when the next row falls due, or after the idle poll (rows written
        by another process wake nobody)."""
        now = self.clock.now()
        async with self._db, self.database.transaction() as connection:
            due = await Repos(connection).outbox.next_due(now, self.channels)
        poll = now + timedelta(seconds=IDLE_POLL_SECONDS)
        return poll if due is None else min(poll, due)

    # --- fetching and rendering ----------------------------------------------------------

    async def _heads(self, limit: int, below: int | None = None) -> list[OutboxMessage]:
        async with self._db, self.database.transaction() as connection:
            return await Repos(connection).outbox.heads(self.clock.now(), self.channels, limit, below)

    async def _render_rows(self, rows: list[OutboxMessage]) -> list[_Job]:
        """One job per row, rendered in one transaction; one row at a time if that fails."""
        try:
            async with self._db, self.database.transaction() as connection:
                repos = Repos(connection)
                photos: dict[int, bytes | None] = {}
                jobs = [await self._job(repos, row, photos) for row in rows]
            # Charts are drawn after the transaction: drawing takes a while, and SQLite one writer.
            for job in jobs:
                if job.chart is not None:
                    job.photos += await chart_photos(self.translator, job.rows[0].language, job.chart)
            return jobs
        except Exception as error:
            if len(rows) == 1:
                log.exception("could not render outbox row", extra={"outbox_id": rows[0].id})
                failure = DeliveryError(f"could not render: {error!r}")
                return [_Job(self.channels[rows[0].channel], rows, failure=failure)]
        # One bad row (a feature's render failing in the database) costs only itself.
        return [job for row in rows for job in await self._render_rows([row])]

    async def _job(self, repos: Repos, row: OutboxMessage, photos: dict[int, bytes | None]) -> _Job:
        channel = self.channels[row.channel]
        try:
            reply, message, data, edit_ref = await self._render(repos, channel, row, photos)
        except Undeliverable as gone:
            return _Job(channel, [row], failure=gone)
        # An edit changes words and buttons only; the photos (and a chart) stay as sent.
        chart = reply if reply.chart is not None and edit_ref is None else None
        return _Job(channel, [row], message, data, edit_ref, chart=chart)

    async def _render(
        self, repos: Repos, channel: Channel, row: OutboxMessage, photos: dict[int, bytes | None]
    ) -> tuple[Reply, RenderedMessage, list[bytes], str | None]:
        edit_ref: str | None = None
        if row.kind == MESSAGE:
            reply = reply_from_json(row.payload)
        elif row.kind in features.REGISTRY.outbox:
            try:
                rendered = await features.REGISTRY.outbox[row.kind].render(repos, self.community, row)
            except LookupError as gone:
                raise Undeliverable(f"nothing left to send: {gone}") from gone
            reply, edit_ref = rendered.reply, rendered.edit_ref
        else:
            raise Undeliverable(f"no feature declares the outbox kind {row.kind!r}")
        message = self.translator.render(row.language, reply, channel.deep_link, row.channel)
        data: list[bytes] = []
        # An edit changes words and buttons only; the photo stays as sent.
        if edit_ref is None:
            for media_id in reply.photos:
                if media_id not in photos:  # an alert's photo is read once per batch, not per person
                    photos[media_id] = await self.media.read(repos, media_id)
                if (photo := photos[media_id]) is not None:
                    data.append(photo)
        return reply, message, data, edit_ref

    # --- sending -----------------------------------------------------------------------------

    async def _deliver(self, job: _Job) -> list[_Outcome]:
        if job.failure is not None:
            return [self._after(row, job.failure) for row in job.rows]
        assert job.message is not None
        if len(job.rows) > 1:
            many = _sends_many(job.channel)
            assert many is not None
            try:
                results = await many.send_many([row.chat_id for row in job.rows], job.message, job.photos)
            except Exception as error:
                return [self._after(row, error) for row in job.rows]
            outcomes = []
            for row in job.rows:
                result = results.get(row.chat_id, DeliveryError("the channel said nothing about this chat"))
                outcomes.append(
                    _Outcome(row, "sent", result) if isinstance(result, str) else self._after(row, result)
                )
            return outcomes
        row = job.rows[0]
        try:
            ref = await self._send_one(job.channel, row, job.message, job.photos, job.edit_ref)
        except Exception as error:
            return [self._after(row, error)]
        log.debug(
            "outbox message sent", extra={"outbox_id": row.id, "channel": row.channel, "kind": row.kind}
        )
        return [_Outcome(row, "sent", ref)]

    async def _send_one(
        self,
        channel: Channel,
        row: OutboxMessage,
        message: RenderedMessage,
        photos: list[bytes],
        edit_ref: str | None,
    ) -> str:
        if edit_ref is not None:
            try:
                await channel.edit(row.chat_id, edit_ref, message)
                return edit_ref
            except Undeliverable as gone:
                if gone.blocked:
                    raise
                # The message was deleted (or is too old to edit): post it afresh.
        return await channel.send(row.chat_id, message, photos, priority=row.priority)

    def _after(self, row: OutboxMessage, error: BaseException) -> _Outcome:
        """What becomes of a row that was not sent."""
        now = self.clock.now()
        reason = str(error) or type(error).__name__
        if isinstance(error, Undeliverable):
            log.info("outbox message undeliverable", extra={"outbox_id": row.id, "channel": row.channel})
            return _Outcome(row, "blocked" if error.blocked else "failed", error=reason)
        if isinstance(error, RetryLater | Transient | OSError | TimeoutError):
            horizon = self.retries.horizon(row.kind)
            if horizon is not None and now - (row.failing_since or now) >= horizon:
                log.warning(
                    "outbox message expired",
                    extra={"outbox_id": row.id, "kind": row.kind, "attempts": row.attempts + 1},
                )
                return _Outcome(row, "expired", error=reason)
            if isinstance(error, RetryLater):
                wait = timedelta(seconds=error.seconds)
            else:
                wait = self._backoff(row.attempts)
            return _Outcome(row, "retry", error=reason, retry_at=now + wait)
        if not isinstance(error, DeliveryError):
            log.error("sending failed unexpectedly", exc_info=error, extra={"outbox_id": row.id})
        if row.attempts + 1 >= MAX_ATTEMPTS:
            return _Outcome(row, "failed", error=reason)
        return _Outcome(row, "retry", error=reason, retry_at=now + self._backoff(row.attempts))

    def _backoff(self, attempts: int) -> timedelta:
        # Doubling from 2 s; the exponent is capped so a row tried for days cannot overflow it.
        return min(self.retries.max_backoff, timedelta(seconds=2 ** min(attempts + 1, 20)))

    # --- recording -----------------------------------------------------------------------------

    async def _record(self, outcomes: list[_Outcome]) -> list[_Outcome]:
        """Record outcomes in one transaction; returns those that could not be recorded."""
        try:
            await self._record_in_one(outcomes, hooks=True)
            return []
        except Exception:
            log.exception("recording outbox rows failed", extra={"rows": len(outcomes)})
        lost = []
        # One at a time, so a feature's failing `settled` hook costs only its own row; and
        # without the hook if that is what fails, as a row that went out must be marked.
        for outcome in outcomes:
            for hooks in (True, False):
                try:
                    await self._record_in_one([outcome], hooks=hooks)
                    break
                except Exception:
                    log.exception("recording an outbox row failed", extra={"outbox_id": outcome.row.id})
            else:
                lost.append(outcome)
        return lost

    async def _record_in_one(self, outcomes: list[_Outcome], *, hooks: bool) -> None:
        now = self.clock.now()
        async with self._db, self.database.transaction() as connection:
            repos = Repos(connection)
            # An alert's copies are nearly all "sent": one statement for all of them.
            await Repos(connection).outbox.mark_sent([o.row.id for o in outcomes if o.state == "sent"], now)
            for outcome in outcomes:
                row = outcome.row
                if outcome.state == "retry":
                    assert outcome.retry_at is not None
                    await repos.outbox.mark_retry(row.id, outcome.error, outcome.retry_at, now)
                    continue
                if outcome.state != "sent":
                    await repos.outbox.mark_final(row.id, outcome.state, outcome.error)
                    if outcome.state == "blocked":
                        await repos.users.mark_blocked(row.channel, row.chat_id, now)
                if hooks:
                    kind = features.REGISTRY.outbox.get(row.kind)
                    if kind is not None and kind.settled is not None:
                        await kind.settled(repos, self.community, row, outcome.state, outcome.ref, now)
        log.debug("outbox rows recorded", extra={"rows": len(outcomes)})


class _Recorder:
    """Group commit: outcomes that arrive while one commit runs go into the next one."""

    def __init__(
        self, delivery: Delivery, on_commit: Callable[[list[_Outcome], list[_Outcome]], None]
    ) -> None:
        self.delivery = delivery
        self.on_commit = on_commit
        self.queue: list[_Outcome] = []
        self.unrecorded: list[_Outcome] = []
        self.settled = 0
        self.commits = 0
        self.states: Counter[str] = Counter()
        # Outcomes taken from the queue by the commit under way.
        self.committing = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        return not self.queue and (self._task is None or self._task.done())

    @property
    def backlog(self) -> int:
        return len(self.queue) + self.committing

    def add(self, outcomes: Iterable[_Outcome]) -> None:
        self.queue.extend(outcomes)
        if self.queue and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._commit())

    async def _commit(self) -> None:
        while self.queue:
            batch = self.queue[:COMMIT_BATCH]
            del self.queue[: len(batch)]
            self.committing = len(batch)
            try:
                lost = await self.delivery._record(batch)
            finally:
                self.committing = 0
            lost_ids = {outcome.row.id for outcome in lost}
            recorded = [outcome for outcome in batch if outcome.row.id not in lost_ids]
            self.unrecorded.extend(lost)
            self.settled += sum(1 for outcome in recorded if outcome.state != "retry")
            self.states.update(outcome.state for outcome in recorded)
            self.commits += 1
            self.on_commit(recorded, lost)

    async def flush(self) -> None:
        while not self.idle:
            assert self._task is not None
            await self._task


class _Drain:
    """One drain: everything due, and whatever falls due or is queued while it runs."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery
        # Set whenever something happened that may let the drain go on.
        self.progress = asyncio.Event()
        # Fetched rows not rendered yet; those for channels with `send_many` apart (all rendered at once).
        self.unrendered: deque[OutboxMessage] = deque()
        self.unrendered_batchable: list[OutboxMessage] = []
        self.ready: dict[str, deque[_Job]] = {}
        self.sending: set[asyncio.Task[None]] = set()
        # Jobs for `send_many` not started yet, by content: rows rendered later join them.
        self.open_batches: dict[tuple[str, Any], _Job] = {}
        self.in_flight: Counter[str] = Counter()
        self.batches_in_flight: Counter[str] = Counter()
        # Chats with a row in hand (fetched, on its way, or not recorded yet): not fetched again.
        self.busy: set[Chat] = set()
        self.recorder = _Recorder(delivery, self._recorded)
        # Set when recording failed: stop taking rows, the database is in trouble.
        self.broken = False
        # (commits, wake-ups) when a fetch last found nothing new; equal again means "nothing to do".
        self._dry: tuple[int, int] | None = None
        # Batches not full yet may wait for the next fetch to top them up (see _growing).
        self._let_batches_grow = True
        # Wake-ups already looked at for rows that should overtake those in hand (_overtaking).
        self._nudges_seen = delivery._nudges

    async def run(self) -> int:
        delivery = self.delivery
        if delivery._unrecorded:
            carried, delivery._unrecorded = delivery._unrecorded, []
            self.busy.update(outcome.chat for outcome in carried)
            self.recorder.add(carried)
        try:
            while True:
                self.progress.clear()
                taking = not (delivery._stopping or self.broken)
                worked = await self._fill() if taking else False
                if taking:
                    self._start_sends()
                if not self.sending and self.recorder.idle:
                    if not taking:
                        break
                    if not self._holding() and self._dry == self._state():
                        break
                    if not worked:
                        # Nothing on its way, nothing fetched or rendered: batches waiting to
                        # grow are all there is, so let them go as they are.
                        self._let_batches_grow = False
                        continue
                if not worked:
                    await self.progress.wait()
        finally:
            # A send that began is never abandoned: it finishes and is recorded.
            if self.sending:
                await asyncio.wait(self.sending)
            await self.recorder.flush()
            delivery._unrecorded = self.recorder.unrecorded
            if self.recorder.states or self.recorder.unrecorded:
                figures = {**self.recorder.states, "unrecorded": len(self.recorder.unrecorded)}
                log.info("outbox drained", extra=figures)
        return self.recorder.settled

    def _state(self) -> tuple[int, int]:
        return (self.recorder.commits, self.delivery._nudges)

    def _holding(self) -> bool:
        return bool(self.unrendered or self.unrendered_batchable or any(self.ready.values()))

    async def _fill(self) -> bool:
        """Fetch and render what is needed next; True if something was."""
        fetched = False
        if self._wants_fetch():
            fetched = await self._fetch()
        elif (below := self._overtaking()) is not None:
            fetched = await self._fetch(below)
        ready = [job for jobs in self.ready.values() for job in jobs]
        overtakes = bool(self.unrendered and ready) and self.unrendered[0].priority < max(
            _rank(job) for job in ready
        )
        if self.unrendered_batchable or (self.unrendered and (len(ready) < RENDER_BATCH or overtakes)):
            touched = set()
            for job in self._grouped(await self.delivery._render_rows(self._next_batch())):
                self.ready.setdefault(job.channel.name, deque()).append(job)
                touched.add(job.channel.name)
            for name in touched:
                # Stable: within a priority, the order fetched (by id).
                self.ready[name] = deque(sorted(self.ready[name], key=_rank))
            return True
        return fetched

    def _overtaking(self) -> int | None:
        """After rows were queued (a wake-up) while less urgent rows are in hand: the priority
        that rows must beat to be fetched ahead of them now, rather than once the hand is empty."""
        if self._nudges_seen == self.delivery._nudges:
            return None
        self._nudges_seen = self.delivery._nudges
        in_hand = [row.priority for row in (*self.unrendered, *self.unrendered_batchable)]
        in_hand += [_rank(job) for jobs in self.ready.values() for job in jobs]
        worst = max(in_hand, default=None)
        return worst if worst is not None and worst > 0 else None

    async def _fetch(self, below: int | None = None) -> bool:
        """Fetch chats' heads (only those more urgent than `below`, if given) into the hand."""
        state = self._state()
        # Chats in hand now, also those recorded while the query runs: the query may have seen
        # their row before it was recorded, and it must not be taken again.
        in_hand = set(self.busy)
        heads = await self.delivery._heads(FETCH_PAGE + len(in_hand), below)
        in_hand |= self.busy
        fresh = [row for row in heads if (row.channel, row.chat_id) not in in_hand]
        if not fresh:
            if below is None:
                self._dry = state
            return False
        if below is None:
            self._dry = None
        self.busy.update((row.channel, row.chat_id) for row in fresh)
        for row in fresh:
            if _sends_many(self.delivery.channels[row.channel]) is None:
                self.unrendered.append(row)
            else:
                self.unrendered_batchable.append(row)
        if below is not None:
            self.unrendered = deque(sorted(self.unrendered, key=lambda row: row.priority))
            self.unrendered_batchable.sort(key=lambda row: row.priority)
        return True

    def _wants_fetch(self) -> bool:
        """Fetch when what was fetched is rendered, something may have changed since the last
        fetch found nothing, and little is left in hand (or a batch waits to be topped up)."""
        if self.unrendered or self.unrendered_batchable or self._dry == self._state():
            return False
        return len(self.busy) < FETCH_PAGE // 2 or (self._partial_batch() and self._may_grow())

    def _partial_batch(self) -> bool:
        return any(1 < len(job.rows) < _max_batch(job) for job in self.open_batches.values())

    def _growing(self, job: _Job) -> bool:
        """A batch not full yet that rows of the next fetch may join (one call then serves them
        all): held back while the last fetch found something and not too much is held already.
        A single row is not held: it is most likely a message of its own."""
        if job.batch_key is None or not 1 < len(job.rows) < _max_batch(job):
            return False
        return self.open_batches.get(job.batch_key) is job and self._may_grow()

    def _may_grow(self) -> bool:
        return self._let_batches_grow and self._dry != self._state() and len(self.busy) < 3 * FETCH_PAGE

    def _next_batch(self) -> list[OutboxMessage]:
        """The next rows to render: every row for channels that send many at once (grouped by
        content after rendering), and up to RENDER_BATCH others."""
        batch = self.unrendered_batchable
        self.unrendered_batchable = []
        for _ in range(min(RENDER_BATCH, len(self.unrendered))):
            batch.append(self.unrendered.popleft())
        return batch

    def _grouped(self, jobs: list[_Job]) -> list[_Job]:
        """New jobs to queue: rows saying exactly the same thing through a channel with `send_many`
        join one job (also one queued earlier and not started yet), up to the channel's maximum."""
        out: list[_Job] = []
        for job in jobs:
            many = _sends_many(job.channel)
            if many is None or job.failure is not None or job.edit_ref is not None or job.message is None:
                out.append(job)
                continue
            job.batch_key = (job.channel.name, _content_key(job.message, job.photos))
            batch = self.open_batches.get(job.batch_key)
            if batch is None or len(batch.rows) >= many.max_batch:
                self.open_batches[job.batch_key] = job
                out.append(job)
            else:
                batch.rows.extend(job.rows)
        return out

    def _start_sends(self) -> None:
        if self.recorder.backlog >= MAX_UNRECORDED:
            return  # the next commit sets progress
        for name, jobs in self.ready.items():
            channel = self.delivery.channels[name]
            limit = getattr(channel, "max_in_flight", DEFAULT_IN_FLIGHT)
            postponed: deque[_Job] = deque()
            while jobs and self.in_flight[name] < limit:
                job = jobs.popleft()
                batch = len(job.rows) > 1
                if batch and self.batches_in_flight[name] >= BATCHES_IN_FLIGHT:
                    postponed.append(job)
                    continue
                if self._growing(job):
                    postponed.append(job)
                    continue
                self.in_flight[name] += 1
                self.batches_in_flight[name] += int(batch)
                if job.batch_key is not None and self.open_batches.get(job.batch_key) is job:
                    del self.open_batches[job.batch_key]
                task = asyncio.create_task(self._send(job, batch))
                self.sending.add(task)
            jobs.extendleft(reversed(postponed))

    async def _send(self, job: _Job, batch: bool) -> None:
        name = job.channel.name
        try:
            outcomes = await self.delivery._deliver(job)
        except Exception as error:
            outcomes = [self.delivery._after(row, error) for row in job.rows]
        try:
            self.recorder.add(outcomes)
        finally:
            self.in_flight[name] -= 1
            self.batches_in_flight[name] -= int(batch)
            task = asyncio.current_task()
            assert task is not None
            self.sending.discard(task)
            self.progress.set()

    def _recorded(self, recorded: list[_Outcome], lost: list[_Outcome]) -> None:
        for outcome in recorded:
            self.busy.discard(outcome.chat)
        if lost:
            self.broken = True
        self.progress.set()


def _rank(job: _Job) -> int:
    """A job's place among those ready: its rows' priority (rows of one batch share a lane)."""
    return job.rows[0].priority


def _max_batch(job: _Job) -> int:
    many = _sends_many(job.channel)
    return many.max_batch if many is not None else 1


def _content_key(message: RenderedMessage, photos: list[bytes]) -> tuple[Any, ...]:
    """Equal for messages that look the same to every recipient."""
    attachments = hashlib.sha256()
    for photo in photos:
        attachments.update(hashlib.sha256(photo).digest())
    if message.document is not None:
        attachments.update(message.document.filename.encode() + b"\0" + message.document.mime.encode())
        attachments.update(hashlib.sha256(message.document.data).digest())
    buttons = tuple(tuple((b.label, b.action, b.url) for b in row) for row in message.buttons)
    return (
        message.text,
        buttons,
        message.keyboard,
        tuple(message.keyboard_labels),
        message.pin,
        attachments.digest(),
    )
