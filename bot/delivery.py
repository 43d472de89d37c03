"""The outbox drain: renders queued replies and hands them to the channel adapters.

"What happened" is committed before anyone is told; this worker is the only
place that tells. A row is marked sent only after the platform accepted it, so
a crash costs at most one repeat of the message in flight, never a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from bot.channels.base import Channel, DeliveryError, RetryLater, Undeliverable
from bot.i18n import RenderedMessage, Translator
from handlers import features, notify
from handlers.clock import Clock
from handlers.community import Community
from handlers.media import MediaStore
from handlers.messages import reply_from_json
from handlers.report_views import card
from storage.db import Database
from storage.models import OutboxMessage
from storage.repositories import Repos

log = logging.getLogger(__name__)

# Rows that change an earlier message when there is one to change.
EDITS = frozenset({notify.CARD_EDIT, "summary_edit"})
MAX_ATTEMPTS = 8
MAX_BACKOFF = timedelta(hours=1)
IDLE_POLL_SECONDS = 5.0


class Delivery:
    def __init__(
        self,
        database: Database,
        community: Community,
        translator: Translator,
        media: MediaStore,
        clock: Clock,
        channels: dict[str, Channel],
    ) -> None:
        self.database = database
        self.community = community
        self.translator = translator
        self.media = media
        self.clock = clock
        self.channels = channels
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.drain()
            except Exception:
                log.exception("outbox drain failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=IDLE_POLL_SECONDS)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def drain(self, limit: int = 200) -> int:
        """Send everything due now; returns how many rows were settled (sent or given up)."""
        async with self.database.transaction() as connection:
            due = await Repos(connection).outbox.due(self.clock.now(), limit)
        settled = 0
        held_back: set[tuple[str, str]] = set()
        for row in due:
            chat = (row.channel, row.chat_id)
            channel = self.channels.get(row.channel)
            # Keep a chat's messages in order: once one waits, the later ones wait too.
            if channel is None or chat in held_back:
                continue
            if await self._deliver(channel, row):
                settled += 1
            else:
                held_back.add(chat)
        return settled

    async def _deliver(self, channel: Channel, row: OutboxMessage) -> bool:
        try:
            async with self.database.transaction() as connection:
                message, photos, card_ref = await self._render(Repos(connection), channel, row)
            if row.kind in EDITS and card_ref is not None:
                try:
                    await channel.edit(row.chat_id, card_ref, message)
                    ref = card_ref
                except Undeliverable as gone:
                    if gone.blocked:
                        raise
                    # The card was deleted in the group (or is too old to edit): post it afresh.
                    ref = await channel.send(row.chat_id, message, photos)
            else:
                ref = await channel.send(row.chat_id, message, photos)
        except RetryLater as wait:
            await self._retry(row, str(wait), timedelta(seconds=wait.seconds))
            return False
        except Undeliverable as gone:
            log.info("outbox message undeliverable", extra={"outbox_id": row.id, "channel": row.channel})
            await self._give_up(row, "blocked" if gone.blocked else "failed", str(gone))
            return True
        except (DeliveryError, OSError, TimeoutError) as error:
            if row.attempts + 1 >= MAX_ATTEMPTS:
                await self._give_up(row, "failed", str(error))
                return True
            await self._retry(row, str(error), min(MAX_BACKOFF, timedelta(seconds=2 ** (row.attempts + 1))))
            return False
        async with self.database.transaction() as connection:
            repos = Repos(connection)
            await repos.outbox.mark_sent(row.id, self.clock.now())
            if row.kind in (notify.CARD, notify.CARD_EDIT):
                await repos.reports.add_card(int(row.payload["report_id"]), row.channel, row.chat_id, ref)
            await self._settled(repos, row, "sent", ref)
        log.info("outbox message sent", extra={"outbox_id": row.id, "channel": row.channel, "kind": row.kind})
        return True

    async def _give_up(self, row: OutboxMessage, state: str, error: str) -> None:
        async with self.database.transaction() as connection:
            repos = Repos(connection)
            await repos.outbox.mark_final(row.id, state, error)
            if state == "blocked":
                await repos.users.mark_blocked(row.channel, row.chat_id, self.clock.now())
            await self._settled(repos, row, state, None)

    async def _settled(self, repos: Repos, row: OutboxMessage, state: str, ref: str | None) -> None:
        kind = features.OUTBOX_KINDS.get(row.kind)
        if kind is not None and kind.settled is not None:
            await kind.settled(repos, self.community, row, state, ref, self.clock.now())

    async def _retry(self, row: OutboxMessage, error: str, wait: timedelta) -> None:
        async with self.database.transaction() as connection:
            await Repos(connection).outbox.mark_retry(row.id, error, self.clock.now() + wait)

    async def _render(
        self, repos: Repos, channel: Channel, row: OutboxMessage
    ) -> tuple[RenderedMessage, list[bytes], str | None]:
        card_ref: str | None = None
        if row.kind in (notify.CARD, notify.CARD_EDIT):
            report = await repos.reports.get(int(row.payload["report_id"]))
            if report is None:
                raise Undeliverable("report no longer exists")
            reply = await card(repos, self.community, report, show_reporter=False)
            existing = await repos.reports.card(report.id, row.channel, row.chat_id)
            card_ref = existing.message_id if existing else None
        elif row.kind in features.OUTBOX_KINDS:
            try:
                rendered = await features.OUTBOX_KINDS[row.kind].render(repos, self.community, row)
            except LookupError as gone:
                raise Undeliverable(f"nothing left to send: {gone}") from gone
            reply, card_ref = rendered.reply, rendered.edit_ref
        else:
            reply = reply_from_json(row.payload)
        message = self.translator.render(row.language, reply, channel.deep_link)
        photos: list[bytes] = []
        # An edit changes words and buttons only; the photo stays as sent.
        if row.kind not in EDITS or card_ref is None:
            for media_id in reply.photos:
                data = await self.media.read(repos, media_id)
                if data is not None:
                    photos.append(data)
        return message, photos, card_ref
