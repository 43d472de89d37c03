"""The composition root: the only place that reads settings and wires the parts together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.channels.base import Channel
from bot.community_file import load_community
from bot.delivery import Delivery
from bot.i18n import Translator
from bot.scheduler import Scheduler
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.channels.wecom import WeComConfig
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


async def build_runtime(
    settings: Settings,
    *,
    community: Community | None = None,
    clock: Clock | None = None,
    translator: Translator | None = None,
) -> Runtime:
    community = community or load_community(settings.community_path)
    clock = clock or SystemClock()
    database = Database(settings.database_url)
    await database.migrate()
    translator = translator or Translator.load(community.default_language, community.tz)
    media = MediaStore(settings.media_dir)
    channels: dict[str, Channel] = {}
    delivery = Delivery(database, community, translator, media, clock, channels)
    engine = Engine(database, community, clock, media, on_outbox=delivery.wake)
    await engine.prepare()
    return Runtime(settings, community, database, translator, media, clock, engine, delivery, channels)


def wecom_config(settings: Settings) -> WeComConfig:
    from bot.channels.wecom import WeComConfig

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


async def run(settings: Settings) -> None:
    """`shouwang run`: every configured channel in one process, until SIGINT/SIGTERM."""
    import httpx
    import uvicorn

    from bot.channels.telegram import TelegramChannel
    from bot.channels.wecom import WeComChannel
    from bot.web import build_web_app

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
            wecom = WeComChannel(runtime, wecom_config(settings), client)
            runtime.add_channel(wecom)
            tasks.append(asyncio.create_task(wecom.run()))
        telegram: TelegramChannel | None = None
        if settings.telegram_token:
            telegram = TelegramChannel.build(
                runtime, settings.telegram_token, settings.telegram_api_url, settings.telegram_file_url
            )
            await stack.enter_async_context(telegram.application)
            await telegram.start()
            runtime.add_channel(telegram)
        server = uvicorn.Server(
            uvicorn.Config(
                build_web_app(runtime, wecom),
                host=settings.http_host,
                port=settings.http_port,
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
        )
        # uvicorn would install its own signal handlers and swallow ours.
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
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
