"""WeChat Work (企业微信) adapter: a self-built app's callback in, its message API out.

Inbound: the callback is verified and decrypted (CallbackCrypto, Tencent's
scheme checked strictly), stored in the inbox table (which also recognises
WeChat Work's retries; rows are group-committed) and answered with an empty
200 once the row is committed; a worker then feeds the stored messages to the
engine. Outbound: every reply goes through the outbox, so rate limits and
token expiry are retried rather than lost. Police groups are reached through
group robots (群机器人, ``robot:<key>``) or app group chats (``appchat:<chatid>``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from wechatpy.crypto import WeChatCipher

from bot.channels.base import DeliveryError, RetryLater, Undeliverable
from bot.i18n import RenderedMessage
from handlers import notify
from handlers.messages import Document, Incoming, Location, Reply, Text, reply_to_json
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
# Nobody to deliver to: retrying cannot help (81013: user & party & tag all invalid).
NO_RECIPIENT = {81013}
# A member hears from one app at most 30 times a minute; beyond that WeChat Work drops silently.
PER_MEMBER_PER_MINUTE = 30
# message/send takes up to 1,000 member ids joined by "|".
MAX_RECIPIENTS = 1000
# Outbox rows on their way at once (a batch of up to 1,000 members counts as one).
MAX_IN_FLIGHT = 4
PER_ROBOT_PER_MINUTE = 20
CARD_MAX_BUTTONS = 6
# Callbacks arriving within this long of each other are committed together (see _InboxWriter).
GROUP_COMMIT_WINDOW_SECONDS = 0.002
GROUP_COMMIT_MAX_ROWS = 256


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


# --- callback crypto ------------------------------------------------------------


class Forbidden(Exception):
    """Not from WeChat Work for this app: a wrong signature or another receive id (→ 403)."""


class Malformed(Exception):
    """Signed correctly but not a well-formed callback (→ 400)."""


class CallbackCrypto:
    """Tencent's callback scheme ("加解密方案说明"), checked strictly.

    The AES step is wechatpy's (`WeChatCipher`, key and IV as WeChat Work sets
    them). Its message-level decryptor, though, trusts the pad byte and the length
    field, so a corrupt ciphertext yields garbage that fails as "wrong corp id";
    here padding and length are validated, so only a well-formed message for
    another receive id counts as forbidden. The signature is compared in constant time.
    """

    def __init__(self, token: str, aes_key: str, receive_id: str) -> None:
        self.token = token
        self.key = base64.b64decode(aes_key + "=")
        if len(self.key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes")
        self.receive_id = receive_id.encode()
        self.cipher = WeChatCipher(self.key)

    def open(self, signature: str, timestamp: str, nonce: str, encrypted: str) -> bytes:
        expected = hashlib.sha1("".join(sorted((self.token, timestamp, nonce, encrypted))).encode())
        if not hmac.compare_digest(expected.hexdigest().encode(), signature.lower().encode()):
            raise Forbidden("bad signature")
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError) as error:
            raise Malformed("ciphertext is not base64") from error
        if not raw or len(raw) % 16:
            raise Malformed("ciphertext is not whole AES blocks")
        plain = self.cipher.decrypt(raw)
        pad = plain[-1]
        if not 1 <= pad <= 32 or plain[-pad:] != bytes([pad]) * pad:
            raise Malformed("bad padding")
        content = plain[16:-pad]
        if len(content) < 4:
            raise Malformed("too short")
        length = int.from_bytes(content[:4], "big")
        if 4 + length > len(content):
            raise Malformed("length beyond the payload")
        if content[4 + length :] != self.receive_id:
            raise Forbidden("encrypted for another receive id")
        return content[4 : 4 + length]


def _parse_xml(data: bytes) -> dict[str, Any]:
    """The children of the root <xml> element as a dict, the shape xmltodict gives.

    ElementTree parses in C, four times faster than xmltodict; with expat 2.4 or
    newer it refuses entity-expansion bombs and it never fetches external entities.
    """
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        raise Malformed("not XML") from error
    if root.tag != "xml":
        raise Malformed("root element is not <xml>")
    return _children(root)


def _children(element: ElementTree.Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in element:
        value = _children(child) if len(child) else child.text
        if child.tag not in out:
            out[child.tag] = value
        elif isinstance(out[child.tag], list):
            out[child.tag].append(value)
        else:
            out[child.tag] = [out[child.tag], value]
    return out


def _outer_encrypt(body: bytes) -> str:
    """The Encrypt element of the POSTed envelope."""
    encrypted = _parse_xml(body).get("Encrypt")
    if not isinstance(encrypted, str) or not encrypted.strip():
        raise Malformed("no Encrypt element")
    return encrypted.strip()


def _inner_message(xml: bytes) -> dict[str, Any]:
    message = _parse_xml(xml)
    if not isinstance(message.get("MsgType"), str) or not isinstance(message.get("FromUserName"), str):
        raise Malformed("not a WeChat Work message")
    return message


# --- the HTTP API ---------------------------------------------------------------


class WeComApi:
    """A thin async client: wechatpy's own client is synchronous and would block the event loop."""

    def __init__(self, config: WeComConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self.client = client
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()

    async def token(self, *, stale: str | None = None) -> str:
        """The cached token; `stale` is one the API refused, fetched anew unless someone already did."""
        async with self._token_lock:
            if self._token is None or self._token == stale or time.monotonic() >= self._token_expires:
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
        stale: str | None = None
        for attempt in range(2):
            token = await self.token(stale=stale)
            try:
                response = await self.client.post(
                    self.config.api_url + path,
                    params={"access_token": token, **(params or {})},
                    json=json,
                    files=files,
                )
                return _checked(response)
            except WeComError as error:
                if error.errcode in TOKEN_EXPIRED and attempt == 0:
                    stale = token
                    continue
                raise
            except httpx.HTTPError as error:
                raise DeliveryError(f"wecom unreachable: {error}") from error
        raise AssertionError("unreachable")

    async def media(self, media_id: str) -> bytes:
        stale: str | None = None
        for attempt in range(2):
            token = await self.token(stale=stale)
            try:
                response = await self.client.get(
                    self.config.api_url + "/cgi-bin/media/get",
                    params={"access_token": token, "media_id": media_id},
                )
            except httpx.HTTPError as error:
                raise DeliveryError(f"wecom unreachable: {error}") from error
            # Media comes as bytes; errors come as JSON (some gateways label it text/plain).
            if response.status_code >= 400 or response.headers.get("content-type", "").startswith(
                ("application/json", "text/plain")
            ):
                try:
                    _checked(response)
                except WeComError as error:
                    if error.errcode in TOKEN_EXPIRED and attempt == 0:
                        stale = token
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
    if response.status_code >= 400:
        raise DeliveryError(f"wecom http {response.status_code}")
    try:
        data: dict[str, Any] = response.json()
    except ValueError as error:
        raise DeliveryError("wecom answered something that is not JSON") from error
    errcode = int(data.get("errcode", 0))
    if errcode in RATE_LIMITED:
        raise RetryLater(60, f"wecom rate limited ({errcode})")
    if errcode in NO_RECIPIENT:
        raise Undeliverable(f"wecom: no such recipient ({errcode})", blocked=True)
    if errcode:
        raise WeComError(errcode, str(data.get("errmsg", "")))
    return data


class _Window:
    """Sliding one-minute windows per key, to stay under WeChat Work's per-member and per-robot limits."""

    def __init__(self, per_minute: int, now: Callable[[], float]) -> None:
        self.per_minute = per_minute
        self.now = now
        self.sent: dict[str, deque[float]] = defaultdict(deque)

    def take(self, key: str, count: int = 1) -> None:
        """Reserve `count` sends at once, so a message made of several parts is never cut in half."""
        now = self.now()
        window = self.sent[key]
        while window and now - window[0] >= 60:
            window.popleft()
        if len(window) + count > self.per_minute:
            oldest = window[0] if window else now
            raise RetryLater(max(0.1, 60 - (now - oldest) + 0.1), "per-minute limit")
        window.extend([now] * count)


class _Progress:
    """Parts of multi-part messages that went out before a later part failed.

    A message to WeChat Work may take several calls (photo, text, card). When
    a later call is refused (45009, a network error) the outbox retries the
    whole row; this remembers what got through so the retry sends only the
    rest and the member never sees the first parts twice. In memory only: a
    restart in between costs at most one repeat, as everywhere in delivery.
    """

    # Enough for the members of a few interrupted batches.
    LIMIT = 5000

    def __init__(self) -> None:
        self._done: OrderedDict[str, int] = OrderedDict()

    def done(self, key: str) -> int:
        return self._done.get(key, 0)

    def stopped_at(self, key: str, index: int) -> None:
        """Parts before `index` went out; the next try starts there."""
        if index:
            self._done[key] = index
            self._done.move_to_end(key)
            while len(self._done) > self.LIMIT:
                self._done.popitem(last=False)

    def finished(self, key: str) -> None:
        self._done.pop(key, None)

    async def run(self, key: str, parts: list[Callable[[], Awaitable[None]]]) -> None:
        done = self.done(key)
        for index, part in enumerate(parts):
            if index < done:
                continue
            try:
                await part()
            except BaseException:
                self.stopped_at(key, index)
                raise
        self.finished(key)

    def remaining(self, key: str, total: int) -> int:
        return total - self._done.get(key, 0)


def _fingerprint(chat_id: str, message: RenderedMessage, photos: list[bytes]) -> str:
    return _progress_key(chat_id, _content_digest(message, photos))


def _progress_key(chat_id: str, content: str) -> str:
    return f"{chat_id}\0{content}"


def _content_digest(message: RenderedMessage, photos: list[bytes]) -> str:
    digest = hashlib.sha256(message.text.encode())
    for row in message.buttons:
        for button in row:
            digest.update(b"\0" + (button.action or button.url or "").encode())
    for photo in photos:
        digest.update(hashlib.sha256(photo).digest())
    if message.document is not None:
        digest.update(hashlib.sha256(message.document.data).digest())
    return digest.hexdigest()


class _InboxWriter:
    """Group commit of inbox rows: one INSERT, one transaction for the callbacks of a few milliseconds.

    A transaction per request made SQLite's single write lock the queue every
    request waited in (10 pooled connections taking turns through the busy
    handler's sleeps: ~100 callbacks/s). Requests hand their row to this writer
    and are answered once the batch holding it committed, so the 200 still
    means "stored". A batch is what arrived while the previous one committed,
    plus a short window: a transaction costs ~1 ms of CPU whatever it holds, so
    at 500/s waiting 2 ms for company cuts the CPU per callback by a third.
    """

    def __init__(self, runtime: Runtime, on_new: Callable[[], None], window: float) -> None:
        self.runtime = runtime
        self.on_new = on_new
        self.window = window
        self._queue: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def accept(self, key: str, message: dict[str, Any]) -> None:
        """Store one callback (a repeated key, WeChat Work's retry, is ignored); return once committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(({"dedupe_key": key, "payload": message}, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write())
        await future

    async def _write(self) -> None:
        while self._queue:
            if len(self._queue) < GROUP_COMMIT_MAX_ROWS:
                await asyncio.sleep(self.window)
            batch = self._queue[:GROUP_COMMIT_MAX_ROWS]
            del self._queue[: len(batch)]
            try:
                async with self.runtime.database.transaction() as connection:
                    await Repos(connection).inbox.accept_many(
                        NAME, [row for row, _ in batch], self.runtime.clock.now()
                    )
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            self.on_new()


# One part of a message to members: sends it to the given members, returns the API's answer.
_MemberPart = Callable[[list[str]], Awaitable[dict[str, Any]]]


class WeComChannel:
    name = NAME
    max_in_flight = MAX_IN_FLIGHT
    max_batch = MAX_RECIPIENTS

    def __init__(self, runtime: Runtime, config: WeComConfig, client: httpx.AsyncClient) -> None:
        self.runtime = runtime
        self.config = config
        self.api = WeComApi(config, client)
        self.crypto = CallbackCrypto(config.token, config.aes_key, config.corp_id)
        self._wake = asyncio.Event()
        self._stopping = False
        self._processing = asyncio.Lock()
        # The runtime's clock, so tests that move time move these windows too.
        self._members = _Window(PER_MEMBER_PER_MINUTE, self._seconds)
        self._robots = _Window(PER_ROBOT_PER_MINUTE, self._seconds)
        self._progress = _Progress()
        self._inbox = _InboxWriter(runtime, self._wake.set, GROUP_COMMIT_WINDOW_SECONDS)

    def _seconds(self) -> float:
        return self.runtime.clock.now().timestamp()

    def deep_link(self, payload: str) -> str:
        # No deep links in WeChat Work: the person sends the command to the app instead.
        return f"/start {payload}"

    # --- the callback endpoint ------------------------------------------------

    async def verify_url(self, request: Request) -> Response:
        """WeChat Work's check of the callback URL: answer the decrypted echostr, nothing else."""
        query = request.query_params
        try:
            signature, timestamp, nonce = query["msg_signature"], query["timestamp"], query["nonce"]
            # base64 has no spaces: a "+" that arrived unescaped was decoded to one.
            echostr = query["echostr"].replace(" ", "+")
        except KeyError:
            return PlainTextResponse("missing parameters", status_code=400)
        try:
            echo = self.crypto.open(signature, timestamp, nonce, echostr).decode()
        except Forbidden:
            return PlainTextResponse("forbidden", status_code=403)
        except (Malformed, UnicodeDecodeError):
            return PlainTextResponse("bad request", status_code=400)
        return PlainTextResponse(echo)

    async def callback(self, request: Request) -> Response:
        query = request.query_params
        try:
            signature, timestamp, nonce = query["msg_signature"], query["timestamp"], query["nonce"]
        except KeyError:
            return PlainTextResponse("missing parameters", status_code=400)
        body = await _read_capped(request, MAX_CALLBACK_BYTES)
        if body is None:
            return PlainTextResponse("too large", status_code=413)
        try:
            message = _inner_message(self.crypto.open(signature, timestamp, nonce, _outer_encrypt(body)))
        except Forbidden:
            return PlainTextResponse("forbidden", status_code=403)
        except Malformed:
            return PlainTextResponse("bad request", status_code=400)
        # Answered only after the row is committed: a 200 tells WeChat Work not to send it again.
        await self._inbox.accept(dedupe_key(message), message)
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
        """Hand every stored callback to the engine, oldest first; returns how many were taken."""
        # One at a time: the worker loop and a direct call must not take the same rows.
        async with self._processing:
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
            # isdecimal, not isdigit: "²" is a digit that int() refuses.
            if text.isdecimal() and len(text) <= 3:
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
            try:
                point = Location(float(message["Location_X"]), float(message["Location_Y"]))
            except (KeyError, TypeError, ValueError):
                return Incoming(**base, unsupported="location")
            return Incoming(**base, location=point)
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

    async def send_many(
        self, chat_ids: list[str], message: RenderedMessage, photos: list[bytes]
    ) -> dict[str, str | DeliveryError]:
        """One message to many chats: members in calls of up to 1,000, robots and app chats one by one.

        Per chat, the message's reference or why it was not sent: a member the API reports
        in `invaliduser` is Undeliverable (blocked), the others are sent.
        """
        results: dict[str, str | DeliveryError] = {}
        members: list[str] = []
        for chat_id in chat_ids:
            if chat_id.startswith((ROBOT_PREFIX, APPCHAT_PREFIX)):
                try:
                    results[chat_id] = await self.send(chat_id, message, photos)
                except DeliveryError as error:
                    results[chat_id] = error
            else:
                members.append(chat_id)
        for start in range(0, len(members), MAX_RECIPIENTS):
            results.update(await self._send_members(members[start : start + MAX_RECIPIENTS], message, photos))
        return results

    async def _send_member(self, user: str, message: RenderedMessage, photos: list[bytes]) -> str:
        result = (await self._send_members([user], message, photos))[user]
        if isinstance(result, DeliveryError):
            raise result
        return result

    async def _send_members(
        self, users: list[str], message: RenderedMessage, photos: list[bytes]
    ) -> dict[str, str | DeliveryError]:
        """A message (photos, text with its numbered menu, button card, file) to up to 1,000 members.

        Members who already got the first parts of it (a later part was refused last time)
        get only the rest; a member over the per-minute limit is told to wait (RetryLater).
        """
        parts = self._member_parts(message, photos)
        content = _content_digest(message, photos)
        results: dict[str, str | DeliveryError] = {}
        by_progress: dict[int, list[str]] = defaultdict(list)
        for user in users:
            done = self._progress.done(_progress_key(user, content))
            try:
                self._members.take(user, len(parts) - done)
            except RetryLater as wait:
                results[user] = wait
                continue
            by_progress[done].append(user)
        for done, group in by_progress.items():
            results.update(await self._run_member_parts(group, parts, done, content))
        return results

    async def _run_member_parts(
        self, users: list[str], parts: list[tuple[_MemberPart, bool]], done: int, content: str
    ) -> dict[str, str | DeliveryError]:
        results: dict[str, str | DeliveryError] = {}
        reached = users
        msgid = ""
        for index in range(done, len(parts)):
            part, main = parts[index]
            try:
                answer = await part(reached)
            except DeliveryError as error:
                for user in reached:
                    self._progress.stopped_at(_progress_key(user, content), index)
                    results[user] = error
                return results
            # WeChat Work lower-cases the ids it reports.
            invalid = {user.lower() for user in str(answer.get("invaliduser") or "").split("|") if user}
            if invalid:
                for user in reached:
                    if user.lower() in invalid:
                        results[user] = Undeliverable("not a member of this app", blocked=True)
                reached = [user for user in reached if user.lower() not in invalid]
            if main:
                msgid = str(answer.get("msgid", ""))
            if not reached:
                break
        for user in reached:
            self._progress.finished(_progress_key(user, content))
            results[user] = msgid
        return results

    def _member_parts(self, message: RenderedMessage, photos: list[bytes]) -> list[tuple[_MemberPart, bool]]:
        """The calls that make up a message to members, each marked whether it is the message itself."""
        actions = [b.action for row in message.buttons for b in row]
        with_card = bool(actions) and len(actions) <= CARD_MAX_BUTTONS and all(actions)
        agent = self.config.agent_id

        async def send(users: list[str], body: dict[str, Any]) -> dict[str, Any]:
            return await self.api.call(
                "/cgi-bin/message/send", json={"touser": "|".join(users), "agentid": agent, **body}
            )

        async def photo_part(photo: bytes, users: list[str]) -> dict[str, Any]:
            # Uploaded once per call, however many members the call reaches.
            uploaded = await self.api.call(
                "/cgi-bin/media/upload",
                params={"type": "image"},
                files={"media": ("photo.jpg", photo, "image/jpeg")},
            )
            return await send(users, {"msgtype": "image", "image": {"media_id": uploaded["media_id"]}})

        async def text_part(users: list[str]) -> dict[str, Any]:
            content = _clip(with_numbered_menu(message), TEXT_LIMIT_BYTES)
            answer = await send(users, {"msgtype": "text", "text": {"content": content}})
            # The numbers in this text are what a reply of "1" means from now on; a message
            # without a menu clears the old one, so a typed building number stays a number.
            invalid = {user for user in str(answer.get("invaliduser") or "").split("|") if user}
            reached = [user for user in users if user.lower() not in invalid]
            now = self.runtime.clock.now()
            async with self.runtime.database.transaction() as connection:
                if reached:
                    await Repos(connection).menus.remember_many(NAME, reached, actions, now)
            return answer

        async def card_part(users: list[str]) -> dict[str, Any]:
            try:
                return await self.api.call(
                    "/cgi-bin/message/send", json=button_card("|".join(users), agent, message)
                )
            except WeComError as error:
                # The numbered menu above already offers the same choices.
                log.warning("wecom button card refused", extra={"errcode": error.errcode})
                return {}

        async def document_part(document: Document, users: list[str]) -> dict[str, Any]:
            uploaded = await self.api.call(
                "/cgi-bin/media/upload",
                params={"type": "file"},
                files={"media": (document.filename, document.data, document.mime)},
            )
            return await send(users, {"msgtype": "file", "file": {"media_id": uploaded["media_id"]}})

        parts: list[tuple[_MemberPart, bool]] = [(partial(photo_part, photo), False) for photo in photos]
        parts.append((text_part, True))
        if with_card:
            parts.append((card_part, False))
        if message.document is not None:
            # A file message has no caption: it follows the text that explains it.
            parts.append((partial(document_part, message.document), False))
        return parts

    async def _send_robot(self, key: str, message: RenderedMessage, photos: list[bytes]) -> str:
        text = message.text
        if message.buttons:
            labels = " / ".join(b.label for row in message.buttons for b in row)
            hint = Text("wecom.act_in_app", {"actions": labels})
            text += "\n\n" + self.runtime.translator.text(
                self.runtime.community.default_language, hint, self.deep_link
            )
        parts: list[Callable[[], Awaitable[None]]] = []
        for photo in photos[:1]:
            image = {"base64": base64.b64encode(photo).decode(), "md5": hashlib.md5(photo).hexdigest()}
            parts.append(partial(self.api.robot, key, {"msgtype": "image", "image": image}))
        content = {"content": _clip(text, TEXT_LIMIT_BYTES)}
        parts.append(partial(self.api.robot, key, {"msgtype": "text", "text": content}))
        progress_key = _fingerprint(ROBOT_PREFIX + key, message, photos[:1])
        self._robots.take(key, self._progress.remaining(progress_key, len(parts)))
        await self._progress.run(progress_key, parts)
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


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is over `limit` (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def dedupe_key(message: dict[str, Any]) -> str:
    """WeChat Work retries carry the same MsgId; events have none, so sender+time (+event) identify them."""
    if message.get("MsgId"):
        return f"msg:{message['MsgId']}"
    fields = ("FromUserName", "CreateTime", "Event", "EventKey", "TaskId")
    return "evt:" + ":".join(str(message.get(field) or "") for field in fields)


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
