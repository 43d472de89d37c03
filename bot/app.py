"""The composition root: the only place that reads settings and wires the parts together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field

from bot.channels.base import Channel
from bot.community_file import load_community
from bot.delivery import Delivery
from bot.i18n import Translator
from bot.scheduler import Scheduler
from bot.settings import Settings
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
    return Runtime(settings, community, database, translator, media, clock, engine, delivery, channels)


async def run_telegram(settings: Settings) -> None:
    """`shouwang run` with a Telegram token: long polling until SIGINT/SIGTERM."""
    from bot.channels.telegram import TelegramChannel

    runtime = await build_runtime(settings)
    assert settings.telegram_token
    telegram = TelegramChannel.build(
        runtime, settings.telegram_token, settings.telegram_api_url, settings.telegram_file_url
    )
    runtime.add_channel(telegram)
    scheduler = Scheduler(runtime.engine, settings.scheduler_tick_seconds)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with telegram.application:
        await telegram.start()
        delivery_task = asyncio.create_task(runtime.delivery.run())
        scheduler.start(runtime.clock.now())
        log.info("shouwang running", extra={"channels": sorted(runtime.channels)})
        await stop.wait()
        log.info("shouwang stopping")
        scheduler.shutdown()
        runtime.delivery.stop()
        await delivery_task
        await telegram.stop()
    await runtime.close()
