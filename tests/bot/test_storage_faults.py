"""The bot's own storage in trouble, over the wire: SQLite held by another connection (a CLI
command, a backup), and a media folder that takes no more photos. Nobody's input is lost and
everybody gets a clear answer.

The lock is real: a second SQLite connection in a thread holds BEGIN IMMEDIATE for a real second
or two, with the bot's busy timeout set shorter or longer than that.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from handlers import media
from handlers.accounts import rules as accounts
from tests.bot.telegram_live import REPORTER, WORKER, Live, content
from tests.bot.wecom_live import POLICE, WeComBot, police_robot_community
from tests.bot.wecom_live import REPORTER as WECOM_REPORTER
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.wecom_api import FakeWeComApi
from tests.harness import jpeg_with_gps

BUSY_ZH = "系统正忙"
PHOTO_NOT_STORED_ZH = "照片暂时存不下"


class Lock:
    """SQLite's write lock, held by a connection of its own in a thread until released."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._taken = threading.Event()
        self._release = threading.Event()
        self.released_at = 0.0
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        other = sqlite3.connect(self.path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            self._taken.set()
            self._release.wait(timeout=60)
            self.released_at = time.monotonic()
            other.execute("ROLLBACK")
        finally:
            other.close()

    async def __aenter__(self) -> Lock:
        self._thread.start()
        assert await asyncio.to_thread(self._taken.wait, 10)
        return self

    async def release(self) -> None:
        self._release.set()
        await asyncio.to_thread(self._thread.join, 10)

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


def database_file(url: str) -> str:
    return sa.make_url(url.replace("sqlite:", "sqlite+pysqlite:")).database or ""


@asynccontextmanager
async def telegram(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[Live, FakeBotApi]]:
    async with FakeBotApi() as api:
        live = await Live(api, tmp_path, **settings).start()
        try:
            await live.onboard(REPORTER, "3")
            yield live, api
        finally:
            await live.stop()


def busy_notes(api: FakeBotApi, chat: int) -> list[str]:
    return [content(m) for m in api.sent_messages(chat) if BUSY_ZH in content(m)]


# --- SQLite held by another connection -------------------------------------------------------


async def test_input_waits_for_a_short_lock_and_is_answered_once_it_is_released(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("a whole-database write lock is SQLite's")
    async with telegram(tmp_path, database_busy_timeout_seconds=5) as (live, api):
        async with Lock(database_file(live.rt.database.url)) as lock:
            api.push_text(REPORTER, "/report")
            await asyncio.sleep(1.0)  # how long the other connection holds the database
            await lock.release()
        await live.settle()
    asked = [m for m in api.sent_messages(REPORTER) if "v1:rpt:cat:fire" in m.callback_data]
    assert len(asked) == 1 and busy_notes(api, REPORTER) == []
    [call] = [
        c for c in api.calls_of("sendMessage") if "v1:rpt:cat:fire" in str(c.params.get("reply_markup"))
    ]
    assert call.time >= lock.released_at


async def test_a_lock_longer_than_the_busy_timeout_gets_a_polite_note_and_the_input_is_handled_after(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("a whole-database write lock is SQLite's")
    async with telegram(tmp_path, database_busy_timeout_seconds=0.3) as (live, api):
        async with Lock(database_file(live.rt.database.url)) as lock:
            api.push_text(REPORTER, "/report")
            await api.wait_for(lambda: busy_notes(api, REPORTER), timeout=10)
            # Told, and nothing else yet: the input waits for the database.
            assert not [
                m for m in api.sent_messages(REPORTER) if m.callback_data and "v1:rpt" in m.callback_data[0]
            ]
            await asyncio.sleep(1.5)  # the other connection goes on holding it a while
            await lock.release()
        await api.wait_for(
            lambda: [m for m in api.sent_messages(REPORTER) if "v1:rpt:cat:fire" in m.callback_data],
            timeout=10,
        )
        await live.settle()
        draft = await live.repos(lambda r: r.users.by_identity("telegram", str(REPORTER)))
        conversation = await live.repos(lambda r: r.conversations.get(draft[0].id, "telegram"))
    asked = [m for m in api.sent_messages(REPORTER) if "v1:rpt:cat:fire" in m.callback_data]
    assert len(asked) == 1 and len(busy_notes(api, REPORTER)) == 1
    assert conversation is not None and conversation.flow == "report"
    assert not [m for m in api.sent_messages(REPORTER) if "出了点问题" in content(m)]  # no error.internal


async def test_wecom_callbacks_wait_for_the_lock_and_messages_met_by_it_are_handled_after(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("a whole-database write lock is SQLite's")
    async with FakeWeComApi() as fake:
        bot = await WeComBot(
            fake, tmp_path, police_robot_community(), database_busy_timeout_seconds=0.3
        ).start()
        try:
            await bot.grant(POLICE, accounts.POLICE, name="张警官")
            await bot.onboard(WECOM_REPORTER, "1")
            path = database_file(bot.rt.database.url)

            # A callback arriving meanwhile is answered 200 only once it is stored (never lost).
            async with Lock(path) as lock:
                posted = asyncio.create_task(bot.deliver(bot.text(WECOM_REPORTER, "/report")))
                await asyncio.sleep(1.0)
                await lock.release()
                await posted
            answered_at = time.monotonic()
            assert answered_at >= lock.released_at
            assert [row.state for row in await bot.inbox_rows()][-1] == "pending"

            # Handling it while the database is held: the sender is told once, the message kept.
            async with Lock(path) as lock:
                assert await bot.channel.process_inbox() == 0
                assert await bot.channel.process_inbox() == 0
                await lock.release()
            assert len([t for t in fake.texts_to(WECOM_REPORTER) if BUSY_ZH in t]) == 1
            await bot.settle()
            menus = [t for t in fake.texts_to(WECOM_REPORTER) if "消防隐患" in t]
            assert len(menus) == 1
            assert {row.state for row in await bot.inbox_rows()} == {"done"}
        finally:
            await bot.close()


# --- the media folder full ---------------------------------------------------------------------


@contextmanager
def disk_full() -> Iterator[None]:
    """Writing a photo fails as on a full disk (ENOSPC); reading, and SQLite, go on working."""
    write = media.write_private

    def refuse(target: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    media.write_private = refuse
    try:
        yield
    finally:
        media.write_private = write


async def test_a_full_media_folder_is_answered_politely_and_the_report_goes_on(tmp_path: Path) -> None:
    async with telegram(tmp_path) as (live, _):
        await live.grant(WORKER, accounts.GRID_WORKER, ("g1",), "李网格员")
        await live.say(REPORTER, "/report")
        await live.press(REPORTER, "v1:rpt:cat:fire")
        await live.press(REPORTER, "v1:rpt:urg:normal")
        await live.say(REPORTER, "楼道里堆满了杂物，堵住了消防通道")
        with disk_full():
            refused = await live.photo(REPORTER, jpeg_with_gps())
        assert [PHOTO_NOT_STORED_ZH in content(m) for m in refused] == [True]
        assert list((tmp_path / "media").rglob("*.tmp")) == []
        # Room again: the same dialogue takes the photo and goes on to the end.
        got = await live.photo(REPORTER, jpeg_with_gps())
        assert "1" in content(got[-1])
        await live.press(REPORTER, "v1:rpt:ph:done")
        await live.press(REPORTER, "v1:rpt:loc:home")
        await live.press(REPORTER, "v1:rpt:anon:no")
        _, submitted = await live.press(REPORTER, "v1:rpt:ok:1")
        report = await live.report("#2026-0001")
        photos = await live.repos(lambda r: r.reports.photos(report.id))
    assert "#2026-0001" in content(submitted[-1])
    assert report.description == "楼道里堆满了杂物，堵住了消防通道" and len(photos) == 1
