"""WeChat Work (企业微信) adapter: a self-built app's callback in, its message API out.

Inbound: the callback is verified and decrypted (wechatpy), stored in the inbox
table (which also recognises WeChat Work's retries) and answered at once with
an empty 200; a worker then feeds the stored messages to the engine. Outbound:
every reply goes through the outbox, so rate limits and token expiry are
retried rather than lost. Police groups are reached through group robots
(群机器人, ``robot:<key>``) or app group chats (``appchat:<chatid>``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import xmltodict
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from bot.channels.base import DeliveryError, RetryLater, Undeliverable
from bot.i18n import RenderedMessage
from handlers import notify
from handlers.messages import Incoming, Location, Reply, Text, reply_to_json
from storage.repositories import Repos

if TYPE_CHECKING:
    from bot.app import Runtime

log = logging.getLogger(__name__)

NAME = "wecom"
ROBOT_PREFIX = "robot:"
APPCHAT_PREFIX = "appchat:"
MAX_CALLBACK_BYTES = 64 * 1024
TEXT_LIMIT_BYTES = 2048
TOKEN_EXPIRED = {40014, 42001}
RATE_LIMITED = {45009}
# A member hears from one app at most 30 times a minute; beyond that WeChat Work drops silently.
PER_MEMBER_PER_MINUTE = 30
PER_ROBOT_PER_MINUTE = 20
CARD_MAX_BUTTONS = 6


@dataclass(frozen=True)
class WeComConfig:
    corp_id: str
    agent_id: int
    secret: str
    token: str
    aes_key: str
    api_url: str = "https://qyapi.weixin.qq.com"


class WeComError(DeliveryError):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"wecom error {errcode}: {errmsg}")
        self.errcode = errcode


class WeComApi:
    """A thin async client: wechatpy's own client is synchronous and would block the event loop."""

    def __init__(self, config: WeComConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self.client = client
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()

    async def token(self, *, refresh: bool = False) -> str:
        async with self._token_lock:
            if refresh or self._token is None or time.monotonic() >= self._token_expires:
                data = await self._get_json(
                    "/cgi-bin/gettoken", {"corpid": self.config.corp_id, "corpsecret": self.config.secret}
                )
                self._token = str(data["access_token"])
                # Renew a little early rather than race the expiry.
                self._token_expires = time.monotonic() + int(data.get("expires_in", 7200)) - 300
            return self._token

    async def _get_json(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self.client.get(self.config.api_url + path, params=params)
        except httpx.HTTPError as error:
            raise DeliveryError(f"wecom unreachable: {error}") from error
        return _checked(response)

    async def call(
        self,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        for attempt in range(2):
            query = {"access_token": await self.token(refresh=attempt > 0), **(params or {})}
            try:
                response = await self.client.post(
                    self.config.api_url + path, params=query, json=json, files=files
                )
                return _checked(response)
            except WeComError as error:
                if error.errcode in TOKEN_EXPIRED and attempt == 0:
                    continue
                raise
            except httpx.HTTPError as error:
                raise DeliveryError(f"wecom unreachable: {error}") from error
        raise AssertionError("unreachable")

    async def media(self, media_id: str) -> bytes:
        for attempt in range(2):
            token = await self.token(refresh=attempt > 0)
            try:
                response = await self.client.get(
                    self.config.api_url + "/cgi-bin/media/get",
                    params={"access_token": token, "media_id": media_id},
                )
            except httpx.HTTPError as error:
                raise DeliveryError(f"wecom unreachable: {error}") from error
            if response.headers.get("content-type", "").startswith(("application/json", "text/plain")):
                try:
                    _checked(response)
                except WeComError as error:
                    if error.errcode in TOKEN_EXPIRED and attempt == 0:
                        continue
                    raise
            return response.content
        raise AssertionError("unreachable")

    async def robot(self, key: str, payload: dict[str, Any]) -> None:
        try:
            response = await self.client.post(
                self.config.api_url + "/cgi-bin/webhook/send", params={"key": key}, json=payload
            )
        except httpx.HTTPError as error:
            raise DeliveryError(f"wecom unreachable: {error}") from error
        _checked(response)


def _checked(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 500:
        raise DeliveryError(f"wecom http {response.status_code}")
    try:
        data: dict[str, Any] = response.json()
    except ValueError as error:
        raise DeliveryError("wecom answered something that is not JSON") from error
    errcode = int(data.get("errcode", 0))
    if errcode in RATE_LIMITED:
        raise RetryLater(60, f"wecom rate limited ({errcode})")
    if errcode:
        raise WeComError(errcode, str(data.get("errmsg", "")))
    return data


class _Window:
    """Sliding one-minute windows per key, to stay under WeChat Work's per-member and per-robot limits."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.sent: dict[str, deque[float]] = defaultdict(deque)

    def take(self, key: str, count: int = 1) -> None:
        """Reserve `count` sends at once, so a message made of several parts is never cut in half."""
        now = time.monotonic()
        window = self.sent[key]
        while window and now - window[0] >= 60:
            window.popleft()
        if len(window) + count > self.per_minute:
            oldest = window[0] if window else now
            raise RetryLater(max(0.1, 60 - (now - oldest) + 0.1), "per-minute limit")
        window.extend([now] * count)


class WeComChannel:
    name = NAME

    def __init__(self, runtime: Runtime, config: WeComConfig, client: httpx.AsyncClient) -> None:
        self.runtime = runtime
        self.config = config
        self.api = WeComApi(config, client)
        self.crypto = WeChatCrypto(config.token, config.aes_key, config.corp_id)
        self._wake = asyncio.Event()
        self._stopping = False
        self._members = _Window(PER_MEMBER_PER_MINUTE)
        self._robots = _Window(PER_ROBOT_PER_MINUTE)

    def deep_link(self, payload: str) -> str:
        # No deep links in WeChat Work: the person sends the command to the app instead.
        return f"/start {payload}"

    # --- the callback endpoint ------------------------------------------------

    async def verify_url(self, request: Request) -> Response:
        query = request.query_params
        try:
            echo = self.crypto.check_signature(
                query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"]
            )
        except KeyError:
            return PlainTextResponse("missing parameters", status_code=400)
        except (InvalidSignatureException, InvalidCorpIdException):
            return PlainTextResponse("forbidden", status_code=403)
        except Exception:
            return PlainTextResponse("bad request", status_code=400)
        return PlainTextResponse(echo if isinstance(echo, str) else echo.decode())

    async def callback(self, request: Request) -> Response:
        query = request.query_params
        if int(request.headers.get("content-length") or 0) > MAX_CALLBACK_BYTES:
            return PlainTextResponse("too large", status_code=413)
        body = await request.body()
        if len(body) > MAX_CALLBACK_BYTES:
            return PlainTextResponse("too large", status_code=413)
        try:
            xml = self.crypto.decrypt_message(
                body, query["msg_signature"], query["timestamp"], query["nonce"]
            )
            message = xmltodict.parse(xml)["xml"]
            if not isinstance(message, dict) or "MsgType" not in message or "FromUserName" not in message:
                raise ValueError("not a WeChat Work message")
        except KeyError:
            return PlainTextResponse("missing parameters", status_code=400)
        except (InvalidSignatureException, InvalidCorpIdException):
            return PlainTextResponse("forbidden", status_code=403)
        except Exception:
            return PlainTextResponse("bad request", status_code=400)
        now = self.runtime.clock.now()
        async with self.runtime.database.transaction() as connection:
            accepted = await Repos(connection).inbox.accept(NAME, dedupe_key(message), message, now)
        if accepted is not None:
            self._wake.set()
        return Response(status_code=200)

    # --- processing stored callbacks --------------------------------------------

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.process_inbox()
            except Exception:
                log.exception("wecom inbox processing failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=5)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def process_inbox(self) -> int:
        async with self.runtime.database.transaction() as connection:
            pending = await Repos(connection).inbox.pending(NAME)
        for inbox_id, message in pending:
            state = "done"
            try:
                await self._process(message)
            except Exception:
                log.exception("wecom message failed", extra={"inbox_id": inbox_id})
                state = "failed"
            async with self.runtime.database.transaction() as connection:
                await Repos(connection).inbox.finish(inbox_id, state, self.runtime.clock.now())
        return len(pending)

    async def _process(self, message: dict[str, Any]) -> None:
        incoming = await self._to_incoming(message)
        if incoming is None:
            return
        response = await self.runtime.engine.handle(incoming)
        replies = list(response.replies)
        if response.notice is not None and not replies:
            # No toasts in WeChat Work: a refusal after a card click is said as a message.
            replies.append(Reply(response.notice))
        if not replies:
            return
        now = self.runtime.clock.now()
        async with self.runtime.database.transaction() as connection:
            repos = Repos(connection)
            for reply in replies:
                await repos.outbox.enqueue(
                    NAME, incoming.chat_id, response.language, notify.MESSAGE, reply_to_json(reply), now
                )
        self.runtime.delivery.wake()

    async def _to_incoming(self, message: dict[str, Any]) -> Incoming | None:
        user = str(message["FromUserName"])
        base: dict[str, Any] = {
            "channel": NAME,
            "user_external_id": user,
            "chat_id": user,
            "display_name": user,
        }
        kind = str(message.get("MsgType", "")).lower()
        if kind == "text":
            text = str(message.get("Content") or "").strip()
            if text.isdigit():
                async with self.runtime.database.transaction() as connection:
                    action = await Repos(connection).menus.action(NAME, user, int(text))
                if action is not None:
                    return Incoming(**base, action=action)
            if text.startswith("/"):
                word, _, args = text.partition(" ")
                return Incoming(**base, command=word[1:].lower(), args=args.strip())
            menu = self.runtime.translator.menu_command(text)
            if menu is not None:
                return Incoming(**base, command=menu)
            return Incoming(**base, text=text)
        if kind == "image":
            try:
                data = await self.api.media(str(message["MediaId"]))
            except DeliveryError:
                log.warning("wecom image download failed")
                return Incoming(**base, unsupported="image_unavailable")
            return Incoming(**base, photo=data)
        if kind == "location":
            return Incoming(
                **base, location=Location(float(message["Location_X"]), float(message["Location_Y"]))
            )
        if kind == "event":
            event = str(message.get("Event", "")).lower()
            if event == "subscribe":
                return Incoming(**base, command="start")
            if event == "template_card_event":
                return Incoming(**base, action=str(message.get("EventKey") or ""))
            return None  # enter_agent, LOCATION reports and the like need no answer.
        return Incoming(**base, unsupported=kind or "other")

    # --- outbound -----------------------------------------------------------------

    async def send(self, chat_id: str, message: RenderedMessage, photos: list[bytes]) -> str:
        if chat_id.startswith(ROBOT_PREFIX):
            return await self._send_robot(chat_id.removeprefix(ROBOT_PREFIX), message, photos)
        if chat_id.startswith(APPCHAT_PREFIX):
            return await self._send_appchat(chat_id.removeprefix(APPCHAT_PREFIX), message)
        return await self._send_member(chat_id, message, photos)

    async def edit(self, chat_id: str, message_ref: str, message: RenderedMessage) -> None:
        # Robot and app messages cannot be edited: the changed card is posted again.
        await self.send(chat_id, message, [])

    async def _send_member(self, user: str, message: RenderedMessage, photos: list[bytes]) -> str:
        actions = [b.action for row in message.buttons for b in row]
        with_card = bool(actions) and len(actions) <= CARD_MAX_BUTTONS and all(actions)
        self._members.take(user, len(photos) + 1 + int(with_card))
        agent = self.config.agent_id
        for photo in photos:
            uploaded = await self.api.call(
                "/cgi-bin/media/upload",
                params={"type": "image"},
                files={"media": ("photo.jpg", photo, "image/jpeg")},
            )
            await self._member_call(
                {
                    "touser": user,
                    "msgtype": "image",
                    "agentid": agent,
                    "image": {"media_id": uploaded["media_id"]},
                }
            )
        text = with_numbered_menu(message)
        result = await self._member_call(
            {
                "touser": user,
                "msgtype": "text",
                "agentid": agent,
                "text": {"content": _clip(text, TEXT_LIMIT_BYTES)},
            }
        )
        if actions:
            async with self.runtime.database.transaction() as connection:
                await Repos(connection).menus.remember(NAME, user, actions, self.runtime.clock.now())
        if with_card:
            await self._member_call(button_card(user, agent, message))
        return str(result.get("msgid", ""))

    async def _member_call(self, payload: dict[str, Any]) -> dict[str, Any]:
        result = await self.api.call("/cgi-bin/message/send", json=payload)
        if result.get("invaliduser"):
            raise Undeliverable(f"not a member of this app: {result['invaliduser']}", blocked=True)
        return result

    async def _send_robot(self, key: str, message: RenderedMessage, photos: list[bytes]) -> str:
        self._robots.take(key, 1 + min(1, len(photos)))
        for photo in photos[:1]:
            await self.api.robot(
                key,
                {
                    "msgtype": "image",
                    "image": {
                        "base64": base64.b64encode(photo).decode(),
                        "md5": hashlib.md5(photo).hexdigest(),
                    },
                },
            )
        text = message.text
        if message.buttons:
            labels = " / ".join(b.label for row in message.buttons for b in row)
            hint = Text("wecom.act_in_app", {"actions": labels})
            text += "\n\n" + self.runtime.translator.text(
                self.runtime.community.default_language, hint, self.deep_link
            )
        await self.api.robot(key, {"msgtype": "text", "text": {"content": _clip(text, TEXT_LIMIT_BYTES)}})
        return f"robot-{time.time_ns()}"

    async def _send_appchat(self, chat: str, message: RenderedMessage) -> str:
        await self.api.call(
            "/cgi-bin/appchat/send",
            json={
                "chatid": chat,
                "msgtype": "text",
                "text": {"content": _clip(message.text, TEXT_LIMIT_BYTES)},
            },
        )
        return f"appchat-{time.time_ns()}"


def dedupe_key(message: dict[str, Any]) -> str:
    """WeChat Work retries carry the same MsgId; events have none, so sender+time (+event) identify them."""
    if message.get("MsgId"):
        return f"msg:{message['MsgId']}"
    parts = (message.get(field) for field in ("FromUserName", "CreateTime", "Event", "EventKey"))
    return "evt:" + ":".join(str(part) for part in parts)


def with_numbered_menu(message: RenderedMessage) -> str:
    lines = [message.text]
    number = 0
    for row in message.buttons:
        for button in row:
            number += 1
            lines.append(f"{number}. {button.label}" + (f" {button.url}" if button.url else ""))
    return "\n".join(lines)


def button_card(user: str, agent: int, message: RenderedMessage) -> dict[str, Any]:
    first_line = message.text.splitlines()[0] if message.text else ""
    buttons = [b for row in message.buttons for b in row]
    return {
        "touser": user,
        "msgtype": "template_card",
        "agentid": agent,
        "template_card": {
            "card_type": "button_interaction",
            "main_title": {"title": first_line[:26]},
            "task_id": f"sw-{time.time_ns()}",
            "button_list": [{"text": b.label[:10], "style": 1, "key": b.action} for b in buttons],
        },
    }


def _clip(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "…"
