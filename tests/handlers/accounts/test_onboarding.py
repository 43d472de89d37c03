"""Onboarding, invites and the language, through the real engine, outbox and database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from handlers.accounts import rules as accounts
from tests.harness import Harness


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("worker", accounts.GRID_WORKER, grids=("g1",), building=None)
    await harness.person("wang", building="3")
    await harness.person("chen", building="8")
    yield harness
    await harness.close()


async def test_onboarding_language_privacy_and_building(bot: Harness) -> None:
    assert await bot.say("newbie", "/start") == ["onboarding.ask_language"]
    assert await bot.say("newbie", "你好") == ["onboarding.pick_language", "onboarding.ask_language"]
    assert await bot.press("newbie", "v1:lang:en") == ["onboarding.privacy"]
    assert await bot.press("newbie", "v1:onb:accept") == ["onboarding.ask_building"]
    assert await bot.say("newbie", "99") == ["onboarding.unknown_building", "onboarding.ask_building"]
    assert await bot.say("newbie", "8号楼 2单元") == ["onboarding.done"]
    user = await bot.repos_do(lambda r: r.users.get(5))
    assert (user.language, user.grid_key, user.building, user.unit) == ("en", "g2", "8号楼", "2单元")
    assert user.privacy_accepted_at is not None
    assert bot.last.language == "en"


async def test_declining_privacy_stores_no_home(bot: Harness) -> None:
    await bot.say("newbie", "/start")
    await bot.press("newbie", "v1:lang:zh_CN")
    assert await bot.press("newbie", "v1:onb:decline") == ["onboarding.declined"]
    user = await bot.repos_do(lambda r: r.users.get(5))
    assert user.privacy_accepted_at is None and user.onboarded_at is None


async def test_language_can_be_changed_later(bot: Harness) -> None:
    assert await bot.say("wang", "/language") == ["language.ask"]
    assert await bot.press("wang", "v1:lang:zh_TW") == ["language.changed"]
    assert bot.last.language == "zh_TW"


async def test_invites_grant_roles_once_and_expire(bot: Harness) -> None:
    assert await bot.say("wang", "/invite police") == ["error.not_allowed"]
    assert await bot.say("police", "/invite admin") == ["error.not_allowed"]
    assert await bot.say("police", "/invite grid_worker") == ["invite.grid_needed"]
    assert await bot.say("police", "/invite grid_worker g2") == ["invite.created"]
    link = bot.render(bot.last.replies[0].text.params["link"])
    payload = link.removeprefix("link:")
    assert await bot.say("newbie", f"/start {payload}") == ["invite.welcome", "onboarding.ask_language"]
    newbie = await bot.repos_do(lambda r: r.users.by_identity("console", "newbie"))
    assert newbie[0].role == "grid_worker"
    assert await bot.repos_do(lambda r: r.users.grids_of(newbie[0].id)) == ["g2"]
    assert await bot.say("other", f"/start {payload}") == ["invite.used"]
    await bot.say("police", "/invite volunteer")
    late = bot.render(bot.last.replies[0].text.params["link"]).removeprefix("link:")
    bot.clock.advance(timedelta(hours=73))
    assert await bot.say("late", f"/start {late}") == ["invite.expired"]
    late_user = await bot.repos_do(lambda r: r.users.by_identity("console", "late"))
    assert late_user[0].role == "resident"
