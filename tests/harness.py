"""Drive the real engine, outbox and scheduler through a recording channel.

The translator here has empty catalogues, so every rendered text is its
message key: tests assert on what was said, not on wording that translators
may change. Wording is pinned by tests/test_translations.py.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
import struct
import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from PIL import Image

from bot.app import Runtime, build_runtime
from bot.community_file import load_community
from bot.i18n import RenderedMessage, Translator
from bot.settings import EXAMPLE_COMMUNITY_FILE, Settings
from handlers.accounts import rules as accounts
from handlers.clock import FakeClock
from handlers.community import Community, PoliceGroups
from handlers.messages import Document, Incoming, Location, Response
from storage.repositories import Repos

CHANNEL = "console"
POLICE_GROUP = "police-group"


@dataclass
class Sent:
    chat_id: str
    text: str
    buttons: list[tuple[str, str | None]]
    photos: int
    ref: str
    edits: list[str] = field(default_factory=list)
    document: Document | None = None
    # The outbox row's priority (its lane) as delivery handed it over.
    priority: int = 0


class RecordingChannel:
    name = CHANNEL

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.fail_with: Exception | None = None
        self.fail_edits_with: Exception | None = None

    def deep_link(self, payload: str) -> str:
        return f"link:{payload}"

    async def send(
        self, chat_id: str, message: RenderedMessage, photos: list[bytes], *, priority: int = 0
    ) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        ref = str(len(self.sent) + 1)
        buttons = [(b.label, b.action) for row in message.buttons for b in row]
        self.sent.append(
            Sent(
                chat_id, message.text, buttons, len(photos), ref, document=message.document, priority=priority
            )
        )
        return ref

    async def edit(self, chat_id: str, message_ref: str, message: RenderedMessage) -> None:
        if self.fail_edits_with is not None:
            raise self.fail_edits_with
        original = next(s for s in self.sent if s.ref == message_ref)
        original.edits.append(message.text)
        original.buttons = [(b.label, b.action) for row in message.buttons for b in row]

    def to(self, chat_id: str) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]


def jpeg_with_gps() -> bytes:
    """A phone photo as phones send them: with the maker and the GPS position in its EXIF."""
    image = Image.new("RGB", (320, 240), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (31.0, 13.0, 49.0), 3: "E", 4: (121.0, 28.0, 25.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def huge_png(width: int = 8900, height: int = 8900) -> bytes:
    """A valid, tiny PNG (about 10 KB) of `width` × `height` black pixels at one bit each: a
    decompression bomb, written row by row so that making it never holds the decoded image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + (width + 7) // 8)  # the filter byte, then the row's bits
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_community() -> Community:
    community = load_community(EXAMPLE_COMMUNITY_FILE)
    return community.model_copy(update={"police_groups": PoliceGroups(console=[POLICE_GROUP])})


class Harness:
    """People talking to the bot; `say` returns the keys of the direct answers."""

    def __init__(self, database_url: str, tmp: Path, clock: FakeClock | None = None) -> None:
        self.settings = Settings(database_url=database_url, media_dir=tmp / "media")
        self.clock = clock or FakeClock()
        self.channel = RecordingChannel()
        self.runtime: Runtime | None = None
        self.last: Response | None = None

    async def start(self, community: Community | None = None) -> Harness:
        community = community or test_community()
        translator = Translator({"zh_CN": {"format.datetime": "yyyy-MM-dd HH:mm"}}, "zh_CN", community.tz)
        self.runtime = await build_runtime(
            self.settings, community=community, clock=self.clock, translator=translator
        )
        self.runtime.add_channel(self.channel)
        return self

    async def restart(self) -> None:
        assert self.runtime is not None
        community = self.runtime.community
        await self.runtime.close()
        await self.start(community)

    async def close(self) -> None:
        if self.runtime is not None:
            await self.runtime.close()

    @property
    def rt(self) -> Runtime:
        assert self.runtime is not None
        return self.runtime

    async def person(
        self,
        key: str,
        role: str = accounts.RESIDENT,
        *,
        grids: tuple[str, ...] = (),
        building: str | None = "3",
        onboarded: bool = True,
    ) -> int:
        async with self.rt.database.transaction() as connection:
            repos = Repos(connection)
            now = self.clock.now()
            user = await accounts.grant_role(repos, CHANNEL, key, role, list(grids), now, key)
            await repos.users.touch_identity(CHANNEL, key, key, now)
            if onboarded:
                grid = self.rt.community.grid_for_building(building) if building else None
                await repos.users.update(
                    user.id,
                    language="zh_CN",
                    privacy_accepted_at=now,
                    onboarded_at=now,
                    building=building,
                    grid_key=grid.key if grid else None,
                )
            return user.id

    async def send(
        self, who: str, *, group: bool = False, channel: str = CHANNEL, **fields: Any
    ) -> list[str]:
        incoming = Incoming(
            channel=channel,
            user_external_id=who,
            chat_id=POLICE_GROUP if group else who,
            display_name=who,
            is_group=group,
            **fields,
        )
        self.last = await self.rt.engine.handle(incoming)
        await self.deliver()
        return [self.render(reply.text) for reply in self.last.replies]

    async def say(self, who: str, text: str) -> list[str]:
        if text.startswith("/"):
            word, _, rest = text[1:].partition(" ")
            return await self.send(who, command=word, args=rest)
        return await self.send(who, text=text)

    async def press(self, who: str, action: str, *, group: bool = False) -> list[str]:
        return await self.send(who, action=action, group=group)

    async def photo(self, who: str, data: bytes, caption: str | None = None) -> list[str]:
        return await self.send(who, photo=data, text=caption)

    async def location(self, who: str, lat: float, lon: float) -> list[str]:
        return await self.send(who, location=Location(lat, lon))

    def render(self, value: Any) -> str:
        return self.rt.translator.text("zh_CN", value, lambda payload: f"link:{payload}")

    def actions(self) -> list[str]:
        """Every button action offered in the last direct answer."""
        assert self.last is not None
        return [c.action for r in self.last.replies for row in r.choices for c in row if c.action]

    def notice(self) -> str | None:
        assert self.last is not None
        return self.render(self.last.notice) if self.last.notice else None

    async def deliver(self) -> int:
        total = 0
        while settled := await self.rt.delivery.drain():
            total += settled
        return total

    async def wait(self, delta: timedelta) -> int:
        self.clock.advance(delta)
        fired = await self.rt.engine.fire_due()
        await self.deliver()
        return fired

    async def file_report(self, who: str, *, urgency: str = "normal", category: str = "fire") -> str:
        """Go through the whole report dialogue; returns the ticket."""
        await self.say(who, "/report")
        await self.press(who, f"v1:rpt:cat:{category}")
        await self.press(who, f"v1:rpt:urg:{urgency}")
        await self.say(who, "楼道里堆满了杂物，堵住了消防通道")
        await self.press(who, "v1:rpt:ph:done")
        await self.press(who, "v1:rpt:loc:home")
        await self.press(who, "v1:rpt:anon:no")
        await self.press(who, "v1:rpt:ok:1")
        user_id = await self.user_id(who)
        async with self.rt.database.transaction() as connection:
            mine = await Repos(connection).reports.by_reporter(user_id, limit=1)
        return mine[0].ticket

    async def user_id(self, who: str) -> int:
        async with self.rt.database.transaction() as connection:
            found = await Repos(connection).users.by_identity(CHANNEL, who)
        assert found is not None
        return found[0].id

    async def repos_do(self, fn: Any) -> Any:
        async with self.rt.database.transaction() as connection:
            return await fn(Repos(connection))

    async def held_up(self, trying: asyncio.Event, task: asyncio.Task[Any]) -> None:
        """Return once `task`, which sets `trying` when it asks for its transaction, waits for a lock
        that a transaction open here holds: shown by the database, not by waiting to see that
        nothing happens."""
        async with asyncio.timeout(10):
            await trying.wait()
            url = self.settings.database_url
            if url.startswith("sqlite"):
                # One writer at a time: a writer that does not wait is refused while ours holds the lock.
                other = sqlite3.connect(sa.make_url(url).database or "", timeout=0, isolation_level=None)
                try:
                    other.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as error:
                    assert "locked" in str(error), error
                else:
                    other.rollback()
                    raise AssertionError("no transaction holds SQLite's write lock")
                finally:
                    other.close()
                return
            waiting = sa.text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            async with self.rt.database.engine.connect() as connection:
                # Polled: PostgreSQL has no notice for it. A lock wait shows up within milliseconds.
                while True:
                    found = (await connection.execute(waiting)).scalar()
                    # A transaction sees one snapshot of pg_stat_activity: each look in one of its own.
                    await connection.rollback()
                    if task.done() or found:
                        return
                    await asyncio.sleep(0.005)
