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
from sqlalchemy import exc as sa_exc
from starlette.applications import Starlette
from telegram.error import BadRequest, InvalidToken, NetworkError

from bot.channel_services import ChannelServices
from bot.channels.base import Channel, DeliveryError
from bot.channels.telegram import TelegramChannel, Webhook
from bot.channels.telegram_flood import FloodControl
from bot.channels.wecom.api import WeComConfig, WeComError
from bot.channels.wecom.channel import WeComChannel
from bot.community_file import load_community
from bot.delivery import Delivery, Retries
from bot.i18n import Translator
from bot.metrics import Backlog, Metrics
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

# /readyz: how long the database may take to answer before the bot is reported not ready.
READY_TIMEOUT = 2.0
# /metrics: how long counting the outbox backlog may take; the scrape goes on without it then.
SCRAPE_TIMEOUT = 5.0


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
    metrics: Metrics = field(default_factory=Metrics)

    def add_channel(self, channel: Channel) -> None:
        self.channels[channel.name] = channel

    async def close(self) -> None:
        await self.database.close()

    def channel_services(self) -> ChannelServices:
        return ChannelServices(
            self.engine, self.media, self.clock, self.community.default_language, self.metrics
        )


# --- the adapters, each handed what it needs rather than the runtime -------------------------


def telegram_channel(
    runtime: Runtime, token: str, api_url: str | None = None, file_url: str | None = None
) -> TelegramChannel:
    settings = runtime.settings
    flood = FloodControl(
        settings.telegram_rate_per_second,
        settings.telegram_group_per_minute,
        settings.telegram_chat_per_second,
        paid_per_second=settings.telegram_paid_rate_per_second if settings.telegram_paid_broadcast else None,
    )
    return TelegramChannel.build(
        runtime.channel_services(),
        runtime.translator,
        flood,
        token,
        api_url=api_url,
        file_url=file_url,
        monitor=runtime.metrics.platform(TelegramChannel.name),
        timeout=settings.telegram_timeout_seconds,
        webhook=webhook(settings),
    )


def webhook(settings: Settings) -> Webhook | None:
    """Webhook mode when its URL is set (the settings make sure the secret is then set too)."""
    if not settings.telegram_webhook_url:
        return None
    assert settings.telegram_webhook_secret
    return Webhook(settings.telegram_webhook_url, settings.telegram_webhook_secret)


def wecom_channel(runtime: Runtime, config: WeComConfig, client: httpx.AsyncClient) -> WeComChannel:
    services = runtime.channel_services()
    monitor = runtime.metrics.platform(WeComChannel.name)
    return WeComChannel(config, client, services, services, runtime.translator, monitor)


def web_app(
    runtime: Runtime, wecom: WeComChannel | None = None, telegram: TelegramChannel | None = None
) -> Starlette:
    services = runtime.channel_services()
    metrics = runtime.metrics

    def alive() -> dict[str, object]:
        return {"channels": sorted(runtime.channels)}

    async def ready() -> dict[str, str]:
        checks = {"database": await _database_state(runtime.database)}
        for name in sorted(runtime.channels):
            monitor = metrics.monitor_of(name)
            # A channel that calls no platform (the console) is ready when the process is.
            checks[name] = "ok" if monitor is None else monitor.state()
        return checks

    async def scrape() -> bytes:
        backlog: list[Backlog] | None = None
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT):
                backlog = await services.outbox_backlog()
        except Exception as error:
            log.warning("outbox backlog not counted for /metrics", extra={"error": repr(error)[:200]})
        # No await from here on: this scrape's figures are set and read in one go.
        metrics.set_backlog(backlog)
        return metrics.exposition()

    routes = [
        *(wecom.endpoint.routes() if wecom is not None else ()),
        *(telegram.routes() if telegram is not None else ()),
    ]
    return build_web_app(alive, ready, scrape, routes)


async def _database_state(database: Database) -> str:
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await database.ping()
    except TimeoutError:
        return f"no answer within {READY_TIMEOUT:g} s"
    except Exception as error:
        return f"unreachable: {error}"[:200]
    return "ok"


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
    try:
        await database.migrate()
    except BaseException:
        await database.close()
        raise
    translator = translator or Translator.load(community.default_language, community.tz)
    media = media_store(settings)
    channels: dict[str, Channel] = {}
    metrics = Metrics()
    delivery = Delivery(database, community, translator, media, clock, channels, retries(settings))
    engine = Engine(
        database, community, clock, media, on_outbox=delivery.wake, on_fired=metrics.schedule_fired
    )
    await engine.prepare()
    return Runtime(
        settings, community, database, translator, media, clock, engine, delivery, channels, metrics
    )


def media_store(settings: Settings) -> MediaStore:
    return MediaStore(
        settings.media_dir, max_bytes=settings.max_photo_bytes, max_pixels=settings.max_photo_pixels
    )


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


class StartupError(Exception):
    """A part could not start: one line for the operator (naming the setting to look at), and
    the exit code: 2 for a setting that is wrong, 1 for something that may work later."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _first_line(error: BaseException, *secrets: str | None) -> str:
    line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    for secret in secrets:
        if secret:
            line = line.replace(secret, "<redacted>")
    return line


async def _open_database(settings: Settings) -> Runtime:
    try:
        return await build_runtime(settings)
    except (sa_exc.DBAPIError, OSError) as error:
        cause = error.orig if isinstance(error, sa_exc.DBAPIError) and error.orig is not None else error
        raise StartupError(
            f"SHOUWANG_DATABASE_URL: cannot open the database: {_first_line(cause)}"
        ) from error


async def _check_wecom(settings: Settings, wecom: WeComChannel) -> None:
    """Fetch an access token now: wrong credentials would otherwise surface only as failed sends."""
    try:
        await wecom.api.token()
    except WeComError as error:
        raise StartupError(
            "SHOUWANG_WECOM_CORP_ID / SHOUWANG_WECOM_SECRET: WeChat Work refused them "
            f"({_first_line(error, settings.wecom_secret)})",
            exit_code=2,
        ) from error
    except DeliveryError as error:
        raise StartupError(
            f"SHOUWANG_WECOM_API_URL: cannot reach WeChat Work at {settings.wecom_api_url} "
            f"({_first_line(error, settings.wecom_secret)})"
        ) from error


async def _start_telegram(settings: Settings, telegram: TelegramChannel) -> None:
    token = settings.telegram_token
    try:
        await telegram.initialize()
    except InvalidToken as error:
        # PTB's own message quotes the token.
        raise StartupError(
            "SHOUWANG_TELEGRAM_TOKEN: the Bot API refused the token (check it with @BotFather)",
            exit_code=2,
        ) from error
    except NetworkError as error:
        where = settings.telegram_api_url or "https://api.telegram.org"
        raise StartupError(
            f"SHOUWANG_TELEGRAM_API_URL: cannot reach the Bot API at {where} ({_first_line(error, token)})"
        ) from error


async def _take_updates(settings: Settings, telegram: TelegramChannel) -> None:
    """Set the webhook (or delete it, to poll) and start taking updates."""
    try:
        await telegram.start()
    except BadRequest as error:
        # Typically setWebhook refusing the URL (not https, a port Telegram does not post to).
        name = "SHOUWANG_TELEGRAM_WEBHOOK_URL" if settings.telegram_webhook_url else "SHOUWANG_TELEGRAM_TOKEN"
        raise StartupError(
            f"{name}: the Bot API refused it ({_first_line(error, settings.telegram_token)})", exit_code=2
        ) from error
    except NetworkError as error:  # after BadRequest, which PTB derives from it
        where = settings.telegram_api_url or "https://api.telegram.org"
        raise StartupError(
            f"SHOUWANG_TELEGRAM_API_URL: cannot reach the Bot API at {where} "
            f"({_first_line(error, settings.telegram_token)})"
        ) from error


async def _listening(server: uvicorn.Server, serving: asyncio.Task[None]) -> None:
    """Until the web app takes requests: Telegram posts to the webhook as soon as it is set."""
    # Polled: uvicorn sets a flag, it has no event to await.
    while not server.started and not serving.done():  # noqa: ASYNC110
        await asyncio.sleep(0.01)


async def run(settings: Settings) -> None:
    """`shouwang run`: every configured channel in one process, until SIGINT/SIGTERM.

    A part that cannot start raises StartupError, after what was started is closed again."""
    runtime = await _open_database(settings)
    try:
        await _run(settings, runtime)
    finally:
        await runtime.close()


async def _run(settings: Settings, runtime: Runtime) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        # Every platform is checked before anything runs: a refusal stops the start with nothing
        # left behind (no task, no open session).
        wecom: WeComChannel | None = None
        if settings.wecom_enabled:
            client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
            wecom = wecom_channel(runtime, wecom_config(settings), client)
            await _check_wecom(settings, wecom)
        telegram: TelegramChannel | None = None
        if settings.telegram_token:
            telegram = telegram_channel(
                runtime, settings.telegram_token, settings.telegram_api_url, settings.telegram_file_url
            )
            await _start_telegram(settings, telegram)
            stack.push_async_callback(telegram.application.shutdown)
            runtime.add_channel(telegram)
        tasks: list[asyncio.Task[None]] = []
        if wecom is not None:
            runtime.add_channel(wecom)
            tasks.append(asyncio.create_task(wecom.run()))
        server = _Server(
            uvicorn.Config(
                web_app(runtime, wecom, telegram),
                host=settings.http_host,
                port=settings.http_port,
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
        )
        serving = asyncio.create_task(server.serve())
        tasks.append(serving)
        if telegram is not None:
            await _listening(server, serving)
            try:
                await _take_updates(settings, telegram)
            except StartupError:
                server.should_exit = True
                if wecom is not None:
                    wecom.stop()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
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
