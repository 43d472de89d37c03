"""The composition root: the only place that reads settings and wires the parts together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import uvicorn
from starlette.applications import Starlette

from bot.channel_services import ChannelServices
from bot.channels.base import Channel
from bot.channels.telegram import TelegramChannel
from bot.channels.telegram_flood import FloodControl
from bot.channels.wecom.api import WeComConfig
from bot.channels.wecom.channel import WeComChannel
from bot.community_file import load_community
from bot.delivery import Delivery, Retries
from bot.i18n import Translator
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.web import build_web_app
from handlers import features
from handlers.clock import Clock, SystemClock
from handlers.community import Community
from handlers.media import MediaStore
from handlers.router import Engine
from storage.db import Database

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    community: Community
    database: Database
    translator: Translator
    media: MediaStore
    clock: Clock
    engine: Engine
    delivery: Delivery
    channels: dict[str, Channel] = field(default_factory=dict)

    def add_channel(self, channel: Channel) -> None:
        self.channels[channel.name] = channel

    async def close(self) -> None:
        await self.database.close()

    def channel_services(self) -> ChannelServices:
        return ChannelServices(self.engine, self.media, self.clock, self.community.default_language)


# --- the adapters, each handed what it needs rather than the runtime -------------------------


def telegram_channel(
    runtime: Runtime, token: str, api_url: str | None = None, file_url: str | None = None
) -> TelegramChannel:
    settings = runtime.settings
    flood = FloodControl(
        settings.telegram_rate_per_second,
        settings.telegram_group_per_minute,
        settings.telegram_chat_per_second,
    )
    return TelegramChannel.build(
        runtime.channel_services(),
        runtime.translator,
        flood,
        token,
        api_url=api_url,
        file_url=file_url,
        timeout=settings.telegram_timeout_seconds,
    )


def wecom_channel(runtime: Runtime, config: WeComConfig, client: httpx.AsyncClient) -> WeComChannel:
    services = runtime.channel_services()
    return WeComChannel(config, client, services, services, runtime.translator)


def web_app(runtime: Runtime, wecom: WeComChannel | None = None) -> Starlette:
    services = runtime.channel_services()

    async def health() -> dict[str, object]:
        return {"channels": sorted(runtime.channels), "outbox": await services.outbox_counts()}

    return build_web_app(health, wecom.endpoint.routes() if wecom is not None else ())


async def build_runtime(
    settings: Settings,
    *,
    community: Community | None = None,
    clock: Clock | None = None,
    translator: Translator | None = None,
) -> Runtime:
    community = community or load_community(settings.community_path)
    clock = clock or SystemClock()
    database = Database(
        settings.database_url, busy_timeout_ms=round(settings.database_busy_timeout_seconds * 1000)
    )
    await database.migrate()
    translator = translator or Translator.load(community.default_language, community.tz)
    media = MediaStore(settings.media_dir)
    channels: dict[str, Channel] = {}
    delivery = Delivery(database, community, translator, media, clock, channels, retries(settings))
    engine = Engine(database, community, clock, media, on_outbox=delivery.wake)
    await engine.prepare()
    return Runtime(settings, community, database, translator, media, clock, engine, delivery, channels)


def retries(settings: Settings) -> Retries:
    """How delivery waits out platform outages, from the settings."""
    unknown = sorted(set(settings.outbox_give_up_hours) - features.REGISTRY.kinds.outbox)
    if unknown:
        known = ", ".join(sorted(features.REGISTRY.kinds.outbox))
        raise ValueError(
            f"SHOUWANG_OUTBOX_GIVE_UP_HOURS names unknown outbox kinds {unknown} (known: {known})"
        )
    return Retries(
        max_backoff=timedelta(seconds=settings.outbox_max_backoff_seconds),
        gives_up_after={
            kind: None if hours is None else timedelta(hours=hours)
            for kind, hours in settings.outbox_give_up_hours.items()
        },
    )


def wecom_config(settings: Settings) -> WeComConfig:
    assert (
        settings.wecom_corp_id and settings.wecom_secret and settings.wecom_token and settings.wecom_aes_key
    )
    assert settings.wecom_agent_id is not None
    return WeComConfig(
        corp_id=settings.wecom_corp_id,
        agent_id=settings.wecom_agent_id,
        secret=settings.wecom_secret,
        token=settings.wecom_token,
        aes_key=settings.wecom_aes_key,
        api_url=settings.wecom_api_url.rstrip("/"),
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: it would take SIGINT/SIGTERM from `run`, which
    stops every part in order, and raise the signal again once the web server is down."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run(settings: Settings) -> None:
    """`shouwang run`: every configured channel in one process, until SIGINT/SIGTERM."""
    runtime = await build_runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        tasks: list[asyncio.Task[None]] = []
        wecom: WeComChannel | None = None
        if settings.wecom_enabled:
            client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
            wecom = wecom_channel(runtime, wecom_config(settings), client)
            runtime.add_channel(wecom)
            tasks.append(asyncio.create_task(wecom.run()))
        telegram: TelegramChannel | None = None
        if settings.telegram_token:
            telegram = telegram_channel(
                runtime, settings.telegram_token, settings.telegram_api_url, settings.telegram_file_url
            )
            await stack.enter_async_context(telegram.application)
            await telegram.start()
            runtime.add_channel(telegram)
        server = _Server(
            uvicorn.Config(
                web_app(runtime, wecom),
                host=settings.http_host,
                port=settings.http_port,
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
        )
        tasks.append(asyncio.create_task(server.serve()))
        tasks.append(asyncio.create_task(runtime.delivery.run()))
        scheduler = Scheduler(runtime.engine, settings.scheduler_tick_seconds)
        scheduler.start(runtime.clock.now())
        log.info("shouwang running", extra={"channels": sorted(runtime.channels), "port": settings.http_port})
        await stop.wait()
        log.info("shouwang stopping")
        scheduler.shutdown()
        server.should_exit = True
        runtime.delivery.stop()
        if wecom is not None:
            wecom.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        if telegram is not None:
            await telegram.stop()
    await runtime.close()
