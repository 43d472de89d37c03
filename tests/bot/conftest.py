"""Fixtures of the channel tests: Shouwang on Telegram and on WeChat Work, over the wire."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handlers.accounts import rules as accounts
from tests.bot.telegram_live import POLICE, REPORTER, WORKER, Live
from tests.bot.wecom_live import ROBOT_KEY, WeComBot, police_robot_community
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.wecom_api import FakeWeComApi


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as fake:
        yield fake


@pytest.fixture
async def live(api: FakeBotApi, tmp_path: Path) -> AsyncIterator[Live]:
    bot = await Live(api, tmp_path).start()
    await bot.grant(WORKER, accounts.GRID_WORKER, ("g1",), "李网格员")
    await bot.grant(POLICE, accounts.POLICE, name="张警官")
    try:
        yield bot
    finally:
        await bot.stop()


@pytest.fixture
async def onboarded(live: Live) -> Live:
    """The reporter, the worker and the officer have each pressed Start in a private chat."""
    await live.onboard(REPORTER, "3")
    await live.onboard(WORKER, None)
    await live.onboard(POLICE, None)
    return live


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeComApi]:
    async with FakeWeComApi(robot_keys={ROBOT_KEY}) as api:
        yield api


@pytest.fixture
async def bot(fake: FakeWeComApi, tmp_path: Path) -> AsyncIterator[WeComBot]:
    live = await WeComBot(fake, tmp_path, police_robot_community()).start()
    try:
        yield live
    finally:
        await live.close()
