"""Shouwang with its WeChat Work channel against the fake WeChat Work API: shared by the tests."""

from __future__ import annotations

import base64
import contextlib
import itertools
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bot.app import Runtime, build_runtime, web_app, wecom_channel
from bot.channels.wecom.api import WeComConfig
from bot.channels.wecom.channel import WeComChannel
from bot.community_file import load_community
from bot.settings import EXAMPLE_COMMUNITY_FILE, Settings
from handlers.accounts import rules as accounts
from handlers.clock import FakeClock
from handlers.community import Community, PoliceGroups
from storage import schema
from storage.models import OutboxMessage, Report
from storage.repositories import Repos
from tests.databases import migrated_sqlite
from tests.fakes import wecom_crypto as wc
from tests.fakes.wecom_api import FakeWeComApi

TOKEN = "ShouwangCallbackToken2026"
# 43 characters, as WeChat Work's console hands them out.
AES_KEY = base64.b64encode(bytes(range(100, 132))).decode().rstrip("=")
ROBOT_KEY = "6d1f2b1c-police-robot"
CALLBACK = "/wecom/callback"
REPORTER = "WangFang"
WORKER = "LiXiaoMing"
POLICE = "ZhangJingGuan"
INSIDE = (31.2292, 121.4721)
TICKET = "#2026-0001"
# What a person does takes a few seconds; it also keeps the bot's per-member window realistic.
THINKING = timedelta(seconds=10)


def police_robot_community() -> Community:
    community = load_community(EXAMPLE_COMMUNITY_FILE)
    return community.model_copy(update={"police_groups": PoliceGroups(wecom=[f"robot:{ROBOT_KEY}"])})


def numbered(text: str) -> dict[str, str]:
    """The numbered menu under a text: label -> the number to reply."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^(\d+)\. (.+)$", text, re.MULTILINE)}


def card_keys(body: dict[str, Any]) -> list[str]:
    return [button["key"] for button in body["template_card"]["button_list"]]


class WeComBot:
    """Shouwang with its WeChat Work channel, as `shouwang run` wires it, minus the background tasks."""

    def __init__(
        self,
        fake: FakeWeComApi,
        tmp_path: Path,
        community: Community,
        *,
        token: str = TOKEN,
        aes_key: str = AES_KEY,
        corp_id: str | None = None,
        api_timeout: float = 10.0,
        **settings: Any,
    ) -> None:
        self.fake = fake
        # How long the bot waits for the WeChat Work API (`shouwang run`: 10 s).
        self.api_timeout = api_timeout
        # Further SHOUWANG_* settings, by field name.
        self.settings = settings
        self.tmp_path = tmp_path
        self.community = community
        self.clock = FakeClock()
        self.config = WeComConfig(
            corp_id=corp_id or fake.corp_id,
            agent_id=fake.agent_id,
            secret=fake.corp_secret,
            token=token,
            aes_key=aes_key,
            api_url=fake.base_url,
        )
        self._msg_ids = itertools.count(7_000_000_000_000_000_001)
        self._stack = contextlib.AsyncExitStack()
        self._runtime: Runtime | None = None
        self._channel: WeComChannel | None = None
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> WeComBot:
        path = self.tmp_path / "db.sqlite"
        # A restart keeps the database; a first start gets a copy of the session's migrated one.
        url = f"sqlite:///{path}" if path.exists() else migrated_sqlite(path)
        settings = Settings(database_url=url, media_dir=self.tmp_path / "media", **self.settings)
        self._runtime = await build_runtime(settings, community=self.community, clock=self.clock)
        self._stack.push_async_callback(self._runtime.close)
        api_client = await self._stack.enter_async_context(httpx.AsyncClient(timeout=self.api_timeout))
        self._channel = wecom_channel(self._runtime, self.config, api_client)
        self._runtime.add_channel(self._channel)
        transport = httpx.ASGITransport(app=web_app(self._runtime, self._channel))
        self._http = await self._stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://shouwang")
        )
        return self

    async def close(self) -> None:
        await self._stack.aclose()

    @property
    def rt(self) -> Runtime:
        assert self._runtime is not None
        return self._runtime

    @property
    def channel(self) -> WeComChannel:
        assert self._channel is not None
        return self._channel

    @property
    def http(self) -> httpx.AsyncClient:
        assert self._http is not None
        return self._http

    async def repos(self, fn: Any) -> Any:
        async with self.rt.database.transaction() as connection:
            return await fn(Repos(connection))

    async def grant(self, user: str, role: str, grids: tuple[str, ...] = (), name: str = "") -> None:
        await self.repos(
            lambda r: accounts.grant_role(r, "wecom", user, role, list(grids), self.clock.now(), name or None)
        )

    # --- the wire -------------------------------------------------------------------

    def sign(self, plaintext: str) -> tuple[dict[str, str], str]:
        return wc.build_callback(self.config.token, self.config.aes_key, self.config.corp_id, plaintext)

    async def post(self, query: dict[str, str], body: str | bytes) -> httpx.Response:
        return await self.http.post(CALLBACK, params=query, content=body)

    async def deliver(self, plaintext: str) -> None:
        """WeChat Work posts one callback and gets its empty 200."""
        answer = await self.post(*self.sign(plaintext))
        assert (answer.status_code, answer.content) == (200, b""), answer.text

    async def settle(self, *, allow_pending: bool = False) -> None:
        """Process every stored callback and send everything due, until nothing moves."""
        while True:
            taken = await self.channel.process_inbox()
            sent = 0
            while settled := await self.rt.delivery.drain():
                sent += settled
            if not taken and not sent:
                break
        if not allow_pending:
            waiting = [row for row in await self.outbox() if row.state == "pending"]
            assert not waiting, f"outbox rows still waiting: {[(r.chat_id, r.last_error) for r in waiting]}"

    async def act(self, user: str, plaintext: str) -> list[dict[str, Any]]:
        """One thing a member does; returns the message/send bodies the member got for it."""
        self.clock.advance(THINKING)
        before = len(self.fake.messages_to(user))
        await self.deliver(plaintext)
        await self.settle()
        return self.fake.messages_to(user)[before:]

    def text(self, user: str, content: str) -> str:
        return wc.text_message(self.fake.corp_id, user, content, next(self._msg_ids))

    async def say(self, user: str, content: str) -> list[dict[str, Any]]:
        return await self.act(user, self.text(user, content))

    async def choose(self, user: str, label_part: str) -> list[dict[str, Any]]:
        """Reply with the number the last numbered menu shows next to `label_part`."""
        menu = numbered(self.fake.texts_to(user)[-1])
        matches = [number for label, number in menu.items() if label_part in label]
        assert len(matches) == 1, f"{label_part!r} not (uniquely) in the menu {menu}"
        return await self.say(user, matches[0])

    async def click(self, user: str, key: str) -> list[dict[str, Any]]:
        """Press the button `key` on the newest template card the member got that offers it."""
        card = next(
            m
            for m in reversed(self.fake.messages_to(user))
            if m["msgtype"] == "template_card" and key in card_keys(m)
        )
        event = wc.template_card_event(
            self.fake.corp_id,
            user,
            key,
            card["template_card"]["task_id"],
            create_time=int(self.clock.now().timestamp()),
        )
        return await self.act(user, event)

    async def photo(self, user: str, data: bytes) -> list[dict[str, Any]]:
        media_id = f"1{next(self._msg_ids)}"
        self.fake.add_media(media_id, data)
        image = wc.image_message(
            self.fake.corp_id, user, f"https://wework.qpic.cn/{media_id}", media_id, next(self._msg_ids)
        )
        return await self.act(user, image)

    async def location(self, user: str, point: tuple[float, float]) -> list[dict[str, Any]]:
        shared = wc.location_message(self.fake.corp_id, user, *point, 15, "幸福里", next(self._msg_ids))
        return await self.act(user, shared)

    async def onboard(self, user: str, building: str | None) -> list[dict[str, Any]]:
        """/start → language → privacy → (building), answering every menu by its number."""
        asked = await self.say(user, "/start")
        assert "简体中文" in numbered(asked[0]["text"]["content"])
        await self.choose(user, "简体中文")
        got = await self.choose(user, "同意")
        if building is not None:
            got = await self.say(user, building)
        return got

    # --- the database ---------------------------------------------------------------

    async def inbox_rows(self) -> list[Any]:
        async with self.rt.database.transaction() as connection:
            return list((await connection.execute(sa.select(schema.inbox).order_by(schema.inbox.c.id))).all())

    async def outbox(self) -> list[OutboxMessage]:
        rows: list[OutboxMessage] = await self.repos(lambda r: r.outbox.all())
        return rows

    async def report(self, ticket: str) -> Report:
        report = await self.repos(lambda r: r.reports.by_ticket(ticket.removeprefix("#")))
        assert report is not None
        return report
