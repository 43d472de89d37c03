"""Shouwang as deployed on Telegram, against the fake Bot API: shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from bot.app import Runtime, build_runtime, telegram_channel, web_app
from bot.channels.telegram import NAME, WEBHOOK_PATH, TelegramChannel
from bot.community_file import load_community
from bot.settings import EXAMPLE_COMMUNITY_FILE, Settings
from handlers.accounts import rules as accounts
from handlers.clock import FakeClock
from handlers.community import PoliceGroups
from storage.models import OutboxMessage, Report
from storage.repositories import Repos
from tests.databases import migrated_sqlite
from tests.fakes.loopback import LoopbackServer
from tests.fakes.telegram_api import FakeBotApi, SentMessage

TOKEN = "123:abc"
WEBHOOK_SECRET = "Shouwang_webhook-Secret_2026"
GROUP = -1001234567890
REPORTER = 1001
NEIGHBOUR = 1002
STRANGER = 1003
WORKER = 2001
POLICE = 3001
INSIDE = (31.2292, 121.4721)
BEIJING = (39.9042, 116.4074)
TICKET = "#2026-0001"
TICKET_RE = re.compile(r"#\d{4}-\d{4}")


def content(message: SentMessage) -> str:
    return message.text or message.caption or ""


class _Later:
    """An ASGI app given after the server is listening: the webhook URL names the server's port,
    and the bot's web app is built from settings that hold that URL."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the web app is not built yet"
        await self.app(scope, receive, send)


class Live:
    """Shouwang as deployed: runtime, Telegram Application polling the fake (or, with
    `webhook`, its web app served on loopback taking the fake's posts), outbox worker."""

    def __init__(
        self, api: FakeBotApi, tmp_path: Path, token: str = TOKEN, *, webhook: bool = False, **settings: Any
    ) -> None:
        self.api = api
        self.token = token
        self.webhook = webhook
        self._web: LoopbackServer | None = None
        self.tmp_path = tmp_path
        # Further SHOUWANG_* settings, by field name.
        self.settings = settings
        self.clock = FakeClock()
        self.community = load_community(EXAMPLE_COMMUNITY_FILE).model_copy(
            update={"police_groups": PoliceGroups(telegram=[str(GROUP)])}
        )
        self._stack: contextlib.AsyncExitStack | None = None
        self._runtime: Runtime | None = None
        self._channel: TelegramChannel | None = None
        self._delivery: asyncio.Task[None] | None = None

    @property
    def rt(self) -> Runtime:
        assert self._runtime is not None
        return self._runtime

    @property
    def channel(self) -> TelegramChannel:
        assert self._channel is not None
        return self._channel

    async def start(self) -> Live:
        path = self.tmp_path / "db.sqlite"
        # A restart keeps the database; a first start gets a copy of the session's migrated one.
        url = f"sqlite:///{path}" if path.exists() else migrated_sqlite(path)
        self._stack = contextlib.AsyncExitStack()
        extra = dict(self.settings)
        later = _Later()
        if self.webhook:
            self._web = LoopbackServer(later, "shouwang web app")
            await self._web.start()
            self._stack.push_async_callback(self._web.stop)
            extra.update(
                telegram_webhook_url=f"http://127.0.0.1:{self._web.port}{WEBHOOK_PATH}",
                telegram_webhook_secret=WEBHOOK_SECRET,
            )
        settings = Settings(database_url=url, media_dir=self.tmp_path / "media", **extra)
        self._runtime = await build_runtime(settings, community=self.community, clock=self.clock)
        self._channel = telegram_channel(
            self._runtime, self.token, api_url=self.api.base_url, file_url=self.api.base_file_url
        )
        self._runtime.add_channel(self._channel)
        later.app = web_app(self._runtime, telegram=self._channel)
        await self._stack.enter_async_context(self._channel.application)
        await self._channel.start(poll_timeout=1)
        self._delivery = asyncio.create_task(self._runtime.delivery.run())
        return self

    async def stop(self) -> None:
        if self._stack is None:
            return
        assert self._delivery is not None
        self.rt.delivery.stop()
        await self._delivery
        await self.channel.stop()
        await self._stack.aclose()
        await self.rt.close()
        self._stack = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    # --- waiting ---------------------------------------------------------------

    async def settle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until every pushed update is handled and every outbox row the worker could take
        now is settled (rows held back behind their chat's retrying one wait with it)."""
        app = self.channel.application
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            await self.api.until_idle(timeout=timeout, quiet=0.02)
            busy = not app.update_queue.empty() or app.update_processor.current_concurrent_updates > 0
            if not busy and not await self.repos(lambda r: r.outbox.heads(self.clock.now(), [NAME], 1)):
                return
            assert asyncio.get_running_loop().time() < deadline, "bot did not settle"
            await asyncio.sleep(0.01)  # polled: PTB's update queue and processor have no idle event

    async def repos(self, fn: Any) -> Any:
        async with self.rt.database.transaction() as connection:
            return await fn(Repos(connection))

    # --- people ----------------------------------------------------------------

    async def grant(self, user_id: int, role: str, grids: tuple[str, ...] = (), name: str = "") -> None:
        async with self.rt.database.transaction() as connection:
            await accounts.grant_role(
                Repos(connection), "telegram", str(user_id), role, list(grids), self.clock.now(), name or None
            )

    async def _after(self, chat_id: int, push: Any) -> list[SentMessage]:
        before = len(self.api.sent_messages(chat_id))
        push()
        await self.settle()
        return self.api.sent_messages(chat_id)[before:]

    async def say(self, user_id: int, text: str, chat_id: int | None = None) -> list[SentMessage]:
        where = user_id if chat_id is None else chat_id
        return await self._after(where, lambda: self.api.push_text(user_id, text, chat_id=chat_id))

    async def press(
        self, user_id: int, data: str, message: SentMessage | None = None
    ) -> tuple[str | None, list[SentMessage]]:
        """Press the button carrying `data` (on `message`, else the newest message offering it).

        Returns the text of the callback answer and the messages that chat got meanwhile.
        """
        if message is None:
            chat = self.api.sent_messages(user_id)
            message = next(m for m in reversed(chat) if data in m.callback_data)
        query: list[str] = []

        def push() -> None:
            query.append(self.api.push_callback(user_id, message.chat_id, message.message_id, data))

        new = await self._after(message.chat_id, push)
        answer = self.api.answered_callbacks.get(query[0])
        assert answer is not None, "the callback query was not answered"
        return answer.get("text"), new

    async def photo(self, user_id: int, data: bytes, caption: str | None = None) -> list[SentMessage]:
        return await self._after(user_id, lambda: self.api.push_photo(user_id, data, caption))

    async def location(self, user_id: int, point: tuple[float, float]) -> list[SentMessage]:
        return await self._after(user_id, lambda: self.api.push_location(user_id, *point))

    async def onboard(self, user_id: int, building: str | None = "3") -> list[SentMessage]:
        """/start → language → privacy → (building): the way a new person joins."""
        asked = await self.say(user_id, "/start")
        assert "v1:lang:zh_CN" in asked[-1].callback_data
        _, privacy = await self.press(user_id, "v1:lang:zh_CN", asked[-1])
        assert privacy[-1].callback_data == ["v1:onb:accept", "v1:onb:decline"]
        _, after = await self.press(user_id, "v1:onb:accept", privacy[-1])
        if building is None:
            return after
        return await self.say(user_id, building)

    async def file_report(self, user_id: int, urgency: str = "normal") -> str:
        await self.say(user_id, "/report")
        await self.press(user_id, "v1:rpt:cat:fire")
        await self.press(user_id, f"v1:rpt:urg:{urgency}")
        await self.say(user_id, "楼道里堆满了杂物，堵住了消防通道")
        await self.press(user_id, "v1:rpt:ph:done")
        await self.press(user_id, "v1:rpt:loc:home")
        await self.press(user_id, "v1:rpt:anon:no")
        _, done = await self.press(user_id, "v1:rpt:ok:1")
        found = TICKET_RE.search(content(done[-1]))
        assert found is not None, content(done[-1])
        return found.group()

    async def report(self, ticket: str) -> Report:
        report = await self.repos(lambda r: r.reports.by_ticket(ticket.removeprefix("#")))
        assert report is not None
        return report

    async def outbox_to(self, chat_id: int) -> list[OutboxMessage]:
        rows: list[OutboxMessage] = await self.repos(lambda r: r.outbox.all())
        return [row for row in rows if row.chat_id == str(chat_id)]
