"""/metrics, /healthz and /readyz of the bot's one web app, with Shouwang running as deployed.

Telegram: the real PTB Application against the fake Bot API; WeChat Work: the real channel against
its fake API. The endpoints are asked over HTTP (httpx's ASGI transport) and the metrics read with
prometheus_client's own parser, as Prometheus would read them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import web_app
from bot.channels.base import DeliveryError
from handlers.reports import rules as reports
from handlers.router import Engine
from tests.bot.telegram_live import GROUP, NEIGHBOUR, REPORTER, Live
from tests.bot.wecom_live import REPORTER as REPORTER_WECOM
from tests.bot.wecom_live import WeComBot
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.wecom_api import FakeWeComApi


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the exposition, None if it is not there."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return None


def remove_database(path: Path) -> None:
    """The file and its WAL companions, as a lost volume or a careless `rm` would."""
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()


@pytest.fixture
async def web(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=web_app(live.rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://shouwang") as client:
        yield client


async def metrics_text(web: httpx.AsyncClient) -> str:
    answer = await web.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return answer.text


async def test_metrics_count_updates_their_latency_and_the_schedules_lateness(
    live: Live, web: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await metrics_text(web)
    assert sample(before, "shouwang_updates_total", channel="telegram", outcome="ok") is None
    assert sample(before, "shouwang_database_up") == 1.0
    # Bot API calls at start (getMe, the first polls) all answered.
    assert sample(before, "shouwang_platform_errors_total", channel="telegram", status="502") is None

    await live.onboard(REPORTER, "3")  # /start, a language button, accept, the building: 4 updates
    text = await metrics_text(web)
    assert sample(text, "shouwang_updates_total", channel="telegram", outcome="ok") == 4.0
    assert sample(text, "shouwang_update_seconds_count", channel="telegram") == 4.0
    total = sample(text, "shouwang_update_seconds_sum", channel="telegram")
    assert total is not None and total > 0
    assert sample(text, "shouwang_updates_total", channel="telegram", outcome="error") is None
    # The process's own figures come along.
    resident = sample(text, "process_resident_memory_bytes")
    assert resident is not None and resident > 0

    async def broken(engine: Engine, ctx: object) -> None:
        raise RuntimeError("a bug in a feature")

    with monkeypatch.context() as patch:
        patch.setattr(Engine, "_dispatch", broken)
        await live.say(REPORTER, "/points")
    text = await metrics_text(web)
    assert sample(text, "shouwang_updates_total", channel="telegram", outcome="error") == 1.0
    assert sample(text, "shouwang_updates_total", channel="telegram", outcome="ok") == 4.0

    await live.file_report(REPORTER)
    # The grid worker's reminder falls due two hours after filing; the scheduler finds it 5 minutes late.
    live.clock.advance(timedelta(hours=2, minutes=5))
    assert await live.rt.engine.fire_due() == 1
    text = await metrics_text(web)
    assert sample(text, "shouwang_schedule_lag_seconds_count", kind=reports.REMINDER) == 1.0
    assert sample(text, "shouwang_schedule_lag_seconds_sum", kind=reports.REMINDER) == 300.0
    assert sample(text, "shouwang_schedule_lag_seconds_bucket", kind=reports.REMINDER, le="120.0") == 0.0
    assert sample(text, "shouwang_schedule_lag_seconds_bucket", kind=reports.REMINDER, le="300.0") == 1.0


async def test_a_429_from_the_bot_api_is_counted_and_its_row_shows_in_the_backlog(
    live: Live, api: FakeBotApi, web: httpx.AsyncClient
) -> None:
    await live.onboard(REPORTER, "3")
    api.configure_rate_limits(per_group_per_minute=1)
    # The group's one message this minute; the report's police card then gets a 429.
    await live.say(NEIGHBOUR, "/help@shouwang_test_bot", chat_id=GROUP)
    assert sample(await metrics_text(web), "shouwang_platform_rate_limited_total", channel="telegram") is None
    await live.file_report(REPORTER)
    assert [c.status for c in api.calls if c.params.get("chat_id") == GROUP][-1] == 429

    text = await metrics_text(web)
    assert sample(text, "shouwang_platform_rate_limited_total", channel="telegram") == 1.0
    assert sample(text, "shouwang_outbox_backlog", channel="telegram", kind="card", state="retrying") == 1.0
    # A 429 is a rate limit, not an error; and the platform answered, so the bot stays ready.
    assert sample(text, "shouwang_platform_errors_total", channel="telegram", status="429") is None
    assert (await web.get("/readyz")).status_code == 200

    api.configure_rate_limits()
    live.clock.advance(timedelta(seconds=61))
    live.rt.delivery.wake()
    await live.settle()
    text = await metrics_text(web)
    assert sample(text, "shouwang_outbox_backlog", channel="telegram", kind="card", state="retrying") is None


async def test_readyz_is_503_when_the_database_is_gone_while_healthz_stays_alive(
    live: Live, web: httpx.AsyncClient, tmp_path: Path
) -> None:
    ready = await web.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"database": "ok", "telegram": "ok"}}

    remove_database(tmp_path / "db.sqlite")
    ready = await web.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["ready"] is False and body["not_ready"] == ["database"]
    assert body["checks"]["database"].startswith("unreachable") and body["checks"]["telegram"] == "ok"
    assert not (tmp_path / "db.sqlite").exists()  # the check did not leave an empty database behind

    alive = await web.get("/healthz")
    assert alive.status_code == 200 and alive.json() == {"ok": True, "channels": ["telegram"]}


async def test_readyz_is_503_when_the_bot_api_stops_answering(
    live: Live, api: FakeBotApi, web: httpx.AsyncClient
) -> None:
    assert (await web.get("/readyz")).status_code == 200
    await api.stop()
    deadline = asyncio.get_running_loop().time() + 10
    while (ready := await web.get("/readyz")).status_code == 200:
        assert asyncio.get_running_loop().time() < deadline, "the failed poll was not noticed"
        await asyncio.sleep(0.05)  # polled: the next long poll fails on its own schedule
    body = ready.json()
    assert body["not_ready"] == ["telegram"] and "network" in body["checks"]["telegram"]
    text = await metrics_text(web)
    failed = sample(text, "shouwang_platform_errors_total", channel="telegram", status="network")
    assert failed is not None and failed >= 1


async def test_wecom_readiness_and_errors_follow_what_its_api_answers(
    bot: WeComBot, fake: FakeWeComApi
) -> None:
    # Nothing asked of WeChat Work yet (the channel's worker fetches a token when it starts).
    ready = await bot.http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["wecom"] == "no contact yet"

    fake.fail_next_http(502, path="/cgi-bin/gettoken")
    with pytest.raises(DeliveryError):
        await bot.channel.api.token()
    ready = await bot.http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["not_ready"] == ["wecom"]
    assert ready.json()["checks"]["wecom"].startswith("HTTP 502 at the last contact")

    await bot.channel.api.token()
    assert (await bot.http.get("/readyz")).json() == {
        "ready": True,
        "checks": {"database": "ok", "wecom": "ok"},
    }
    # Callbacks handed to the engine are counted as updates like Telegram's.
    await bot.onboard(REPORTER_WECOM, "3")
    text = (await bot.http.get("/metrics")).text
    assert sample(text, "shouwang_updates_total", channel="wecom", outcome="ok") == 4.0

    fake.fail_next(45009, path="/cgi-bin/message/send")
    with pytest.raises(DeliveryError):
        await bot.channel.api.call("/cgi-bin/message/send", json={"touser": "x", "msgtype": "text"})
    text = (await bot.http.get("/metrics")).text
    assert sample(text, "shouwang_platform_errors_total", channel="wecom", status="502") == 1.0
    assert sample(text, "shouwang_platform_rate_limited_total", channel="wecom") == 1.0
    # Rate limited is still an answer: the app is served.
    assert (await bot.http.get("/readyz")).status_code == 200
