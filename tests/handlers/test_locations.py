"""A point off the globe (|lat| > 90, |lon| > 180, NaN) gets a polite answer and the question again,
from whichever channel it came; no flow sees it."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handlers.messages import Location
from tests.harness import Harness

OFF_THE_GLOBE = [
    (91.0, 121.0),
    (-90.5, 0.0),
    (31.2, 180.01),
    (31.2, -181.0),
    (math.nan, 121.0),
    (31.2, math.inf),
]


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("wang", building="3")
    yield harness
    await harness.close()


def test_the_globe() -> None:
    assert Location(90, 180).valid and Location(-90, -180).valid and Location(0, 0).valid
    assert not any(Location(lat, lon).valid for lat, lon in OFF_THE_GLOBE)


@pytest.mark.parametrize(("lat", "lon"), OFF_THE_GLOBE)
async def test_a_report_asks_for_the_location_again(bot: Harness, lat: float, lon: float) -> None:
    await bot.say("wang", "/report")
    await bot.press("wang", "v1:rpt:cat:fire")
    await bot.press("wang", "v1:rpt:urg:normal")
    await bot.say("wang", "电瓶车在楼道里充电")
    assert await bot.press("wang", "v1:rpt:ph:done") == ["report.ask_location"]
    assert await bot.location("wang", lat, lon) == ["error.location_invalid", "report.ask_location"]
    assert "v1:rpt:loc:home" in bot.actions()
    draft = await bot.repos_do(lambda r: r.conversations.get(1, "console"))
    assert draft.step == "location" and draft.data["description"] == "电瓶车在楼道里充电"
    assert await bot.location("wang", 31.2292, 121.4721) == ["report.location_noted\nreport.ask_anonymous"]


async def test_outside_a_dialogue_it_is_only_explained(bot: Harness) -> None:
    assert await bot.location("wang", 95.0, 10.0) == ["error.location_invalid"]


async def test_a_live_location_off_the_globe_is_ignored(bot: Harness) -> None:
    assert await bot.send("wang", location=Location(math.nan, math.nan), live=True) == []
