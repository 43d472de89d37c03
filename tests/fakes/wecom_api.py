"""A fake WeChat Work (企业微信) server API for end-to-end tests of the WeChat Work channel.

It serves, over HTTP on loopback, the endpoints a self-built app (自建应用) and a group
robot (群机器人) use, under the same paths as ``https://qyapi.weixin.qq.com``, so the
bot's real HTTP client only needs its base URL swapped::

    async with FakeWeComApi(known_users={"zhangsan"}) as api:
        client = WeComClient(base_url=api.base_url, corp_id=api.corp_id, secret=api.corp_secret, ...)
        ...
        await api.wait_for(lambda: api.messages_to("zhangsan"))
        assert api.messages_to("zhangsan")[-1]["text"]["content"] == "..."

Modelled like the real service where the bot depends on it: answers are HTTP 200 with
``errcode``/``errmsg`` (errors included); the access token is reused until it expires
and then rejected with 42001 (or 40014 once revoked/unknown); ``message/send`` takes up
to 1,000 ``|``-joined user ids and reports unknown ones in ``invaliduser``; text longer
than 2,048 bytes is truncated, as documented; uploaded media lives three days.

Deliberate differences, so behaviour is testable:

* Over ``per_user_per_minute`` the real service silently drops messages (30 a minute per
  member per app); here the whole call fails with 45009 and nothing is delivered.
* ``errmsg`` texts copy the real format but the bot must branch on ``errcode`` only, as
  Tencent tells clients to.
* Time (token lifetime, rate windows, media expiry) follows a clock that tests can move
  with :meth:`FakeWeComApi.advance_clock` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.loopback import LoopbackServer

JSONDict = dict[str, Any]

DEFAULT_CORP_ID = "ww0fake0corp0000001"
DEFAULT_CORP_SECRET = "fake-app-secret-0123456789abcdefghijklmnopq"
DEFAULT_AGENT_ID = 1000002
TOKEN_TTL = 7200
MEDIA_TTL = 3 * 24 * 3600
MAX_RECIPIENTS = 1000
MAX_TEXT_BYTES = 2048
MAX_MARKDOWN_BYTES = 2048

# errcode -> errmsg head as WeChat Work words it (the tail with hint/ip/link is added).
ERRMSG: dict[int, str] = {
    -1: "system busy",
    40001: "invalid credential",
    40004: "invalid media type",
    40005: "invalid type",
    40006: "invalid file size",
    40007: "invalid media_id",
    40008: "invalid message type",
    40009: "invalid image size",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40032: "invalid user size",
    40035: "invalid parameter",
    40056: "invalid agentid",
    41001: "access_token missing",
    41002: "corpid missing",
    41004: "corpsecret missing",
    41006: "media_id missing",
    41011: "agentid missing",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    44001: "empty media data",
    44004: "empty content",
    45009: "api freq out of limit",
    47001: "data format error",
    60011: "no privilege to access/modify contact/party/agent",
    60020: "not allow to access from your ip",
    60111: "userid not found",
    81013: "user & party & tag all invalid",
    86001: "chatid invalid",
    93000: "invalid webhook url",
}

_APP_MSGTYPES = frozenset(
    {"text", "image", "voice", "video", "file", "textcard", "news", "mpnews", "markdown", "template_card"}
)
_APPCHAT_MSGTYPES = frozenset(
    {"text", "image", "voice", "video", "file", "textcard", "news", "mpnews", "markdown"}
)
_ROBOT_MSGTYPES = frozenset(
    {"text", "markdown", "markdown_v2", "image", "news", "file", "voice", "template_card"}
)
_CARD_TYPES = frozenset(
    {"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"}
)
# Only these cards come back with a response_code (used to update the card later).
_INTERACTIVE_CARDS = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
_MEDIA_TYPES = {"image": 10 * 2**20, "voice": 2 * 2**20, "video": 10 * 2**20, "file": 20 * 2**20}
_CONTENT_TYPES = {
    "image": "image/jpeg",
    "voice": "audio/amr",
    "video": "video/mp4",
    "file": "application/octet-stream",
}


@dataclass
class ApiCall:
    """One request the bot made. ``errcode`` is None for answers that are not JSON
    (media bytes, injected HTTP failures)."""

    method: str
    path: str
    query: dict[str, str]
    json: JSONDict | None
    files: dict[str, bytes]
    time: float
    errcode: int | None = None
    http_status: int = 200
    file_names: dict[str, str] = field(default_factory=dict)
    file_types: dict[str, str] = field(default_factory=dict)


@dataclass
class Media:
    media_id: str
    data: bytes
    type: str
    filename: str
    content_type: str
    created_at: float  # on the fake clock
    uploaded: bool = False  # True for media the bot uploaded, False for add_media()


@dataclass
class SentMessage:
    """A delivered message, in delivery order across all channels."""

    channel: str  # "app" (message/send), "appchat" or "robot"
    target: str  # user id, chat id or robot key
    body: JSONDict
    time: float
    msgid: str = ""


@dataclass
class _Failure:
    remaining: int
    path: str | None
    errcode: int = 0
    http_status: int = 200


class _ApiError(Exception):
    def __init__(self, errcode: int, **extra: Any) -> None:
        super().__init__(ERRMSG.get(errcode, "error"))
        self.errcode = errcode
        self.extra = extra


def _utf8_truncate(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit].decode(errors="ignore")  # never split a character


class FakeWeComApi:
    """In-process fake of the WeChat Work server API, served over HTTP on 127.0.0.1."""

    def __init__(
        self,
        *,
        corp_id: str = DEFAULT_CORP_ID,
        corp_secret: str = DEFAULT_CORP_SECRET,
        agent_id: int = DEFAULT_AGENT_ID,
        known_users: Iterable[str] | None = None,
        known_chats: Iterable[str] | None = None,
        robot_keys: Iterable[str] | None = None,
        per_user_per_minute: int | None = None,
        robot_limit_per_minute: int | None = None,
    ) -> None:
        self.corp_id = corp_id
        self.corp_secret = corp_secret
        self.agent_id = agent_id
        # None means "anyone is valid"; sets make the fake check ids like the real one.
        # User ids are case-insensitive in WeChat Work, so they are kept lower-cased.
        self.known_users: set[str] | None = None if known_users is None else {u.lower() for u in known_users}
        self.known_chats: set[str] | None = None if known_chats is None else set(known_chats)
        self.robot_keys: set[str] | None = None if robot_keys is None else set(robot_keys)
        # Read at every check, so tests may change them mid-run.
        self.per_user_per_minute = per_user_per_minute
        self.robot_limit_per_minute = robot_limit_per_minute
        self.ip_blocked = False  # True: every token-authenticated call answers 60020
        # Members' names as the contacts hold them (user/get); a member not listed is named
        # by their UserID, as a member whose name was never changed from it would be.
        self.names: dict[str, str] = {}
        # True: user/get answers 60011 (the app may not read the contacts), as for an app
        # whose visible range does not include the member.
        self.contacts_hidden = False

        self.calls: list[ApiCall] = []
        self.sent: list[SentMessage] = []
        self.uploaded_media: list[Media] = []
        self._media: dict[str, Media] = {}
        self._by_user: dict[str, list[JSONDict]] = {}
        self._by_chat: dict[str, list[JSONDict]] = {}
        self._by_robot: dict[str, list[JSONDict]] = {}
        self._user_windows: dict[str, deque[float]] = {}
        self._robot_windows: dict[str, deque[float]] = {}
        self._failures: list[_Failure] = []
        # A simulated outage (start_outage): how calls are refused, and how long a "timeout" hangs.
        self._outage: tuple[str, float] | None = None

        self._tokens: dict[str, float] = {}  # token -> expiry on the fake clock
        self._current_token: str | None = None
        self._clock_offset = 0.0
        self._msgid_counter = itertools.count(1)
        self._changed = asyncio.Event()

        self._routes: dict[str, tuple[str, Callable[[Request, ApiCall], Any]]] = {
            "/cgi-bin/gettoken": ("GET", self._gettoken),
            "/cgi-bin/message/send": ("POST", self._message_send),
            "/cgi-bin/media/upload": ("POST", self._media_upload),
            "/cgi-bin/media/get": ("GET", self._media_get),
            "/cgi-bin/appchat/send": ("POST", self._appchat_send),
            "/cgi-bin/webhook/send": ("POST", self._webhook_send),
            "/cgi-bin/user/get": ("GET", self._user_get),
        }
        self.app = Starlette(routes=[Route("/cgi-bin/{rest:path}", self._endpoint, methods=["GET", "POST"])])
        self._loopback = LoopbackServer(self.app, "fake WeChat Work server")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self._loopback.start()

    async def stop(self) -> None:
        await self._loopback.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._loopback.port

    @property
    def base_url(self) -> str:
        """Stands in for ``https://qyapi.weixin.qq.com`` (paths start with /cgi-bin)."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ test controls

    def now(self) -> float:
        """The fake clock (monotonic seconds plus whatever advance_clock added)."""
        return time.monotonic() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the fake clock: expires tokens, empties rate windows, ages media."""
        self._clock_offset += seconds

    @property
    def access_token(self) -> str | None:
        """The token gettoken currently hands out (None before the first fetch)."""
        return self._current_token

    def expire_token(self) -> None:
        """Let the current token run out: using it answers 42001; gettoken issues a new one."""
        if self._current_token is not None:
            self._tokens[self._current_token] = self.now()

    def revoke_token(self) -> None:
        """Invalidate the current token early (WeChat Work may): using it answers 40014."""
        if self._current_token is not None:
            self._tokens.pop(self._current_token, None)
            self._current_token = None

    def fail_next(self, errcode: int, times: int = 1, *, path: str | None = None) -> None:
        """Answer the next ``times`` calls with ``errcode`` and change nothing.

        ``path`` (e.g. ``"/cgi-bin/message/send"``) limits it to one endpoint; by default
        it hits any endpoint except gettoken, so a refetched token still works.
        """
        self._failures.append(_Failure(times, path, errcode=errcode))

    def fail_next_http(self, status: int = 502, times: int = 1, *, path: str | None = None) -> None:
        """Answer the next ``times`` calls with a bare HTTP error (a gateway failure)."""
        self._failures.append(_Failure(times, path, http_status=status))

    def start_outage(self, mode: str = "502", hang: float = 1.0) -> None:
        """Until end_outage, every call (gettoken too) fails and changes nothing: "502" is a bare
        Bad Gateway from the gateway in front, "busy" WeChat Work's own errcode -1 (系统繁忙),
        "timeout" a call held `hang` seconds (longer than the client waits), then dropped."""
        assert mode in ("502", "busy", "timeout"), mode
        self._outage = (mode, hang)

    def end_outage(self) -> None:
        self._outage = None

    def add_media(
        self,
        media_id: str,
        data: bytes,
        *,
        type: str = "image",
        filename: str | None = None,
        content_type: str | None = None,
    ) -> Media:
        """Register media a member sent, so ``media/get`` serves it to the bot."""
        media = Media(
            media_id=media_id,
            data=data,
            type=type,
            filename=filename or f"{media_id}.{'jpg' if type == 'image' else 'bin'}",
            content_type=content_type or _CONTENT_TYPES.get(type, "application/octet-stream"),
            created_at=self.now(),
        )
        self._media[media_id] = media
        return media

    def clear_records(self) -> None:
        """Forget calls and delivered messages (tokens, media and windows stay)."""
        self.calls.clear()
        self.sent.clear()
        self._by_user.clear()
        self._by_chat.clear()
        self._by_robot.clear()

    # ------------------------------------------------------------------ inspection

    def messages_to(self, user_id: str) -> list[JSONDict]:
        """Request bodies delivered to a member via message/send, oldest first.

        Over-long text/markdown content appears truncated, as the member would see it.
        """
        return list(self._by_user.get(user_id.lower(), ()))

    def texts_to(self, user_id: str) -> list[str]:
        """The text/markdown contents delivered to a member."""
        return [
            m[m["msgtype"]]["content"]
            for m in self.messages_to(user_id)
            if m["msgtype"] in ("text", "markdown")
        ]

    def robot_messages(self, key: str) -> list[JSONDict]:
        return list(self._by_robot.get(key, ()))

    def appchat_messages(self, chatid: str) -> list[JSONDict]:
        return list(self._by_chat.get(chatid, ()))

    def media(self, media_id: str) -> Media | None:
        return self._media.get(media_id)

    @property
    def token_fetches(self) -> int:
        """How many times the bot called gettoken (successful or not)."""
        return sum(1 for c in self.calls if c.path == "/cgi-bin/gettoken")

    def calls_to(self, path: str) -> list[ApiCall]:
        """Calls to one endpoint; ``path`` with or without the /cgi-bin prefix."""
        full = path if path.startswith("/cgi-bin/") else "/cgi-bin/" + path.lstrip("/")
        return [c for c in self.calls if c.path == full]

    # A timeout argument reads better in tests than wrapping every call in asyncio.timeout.
    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Wait until ``predicate()`` is truthy (re-checked after every request); return it."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"condition not met within {timeout}s; last calls:\n{self._describe_calls()}"
                )
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def _describe_calls(self, last: int = 8) -> str:
        if not self.calls:
            return "  (no calls)"
        lines = []
        for c in self.calls[-last:]:
            outcome = f"HTTP {c.http_status}" if c.http_status != 200 else f"errcode={c.errcode}"
            lines.append(f"  {c.method} {c.path} {c.json if c.json is not None else ''} -> {outcome}"[:300])
        return "\n".join(lines)

    def _notify(self) -> None:
        # A fresh Event per change lets every waiter see each change exactly once
        # without anyone having to clear it.
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ HTTP plumbing

    async def _endpoint(self, request: Request) -> Response:
        path = request.url.path
        call = ApiCall(request.method, path, dict(request.query_params), None, {}, time.monotonic())
        self.calls.append(call)
        try:
            if self._outage is not None:
                return await self._refuse_in_outage(call, *self._outage)
            route = self._routes.get(path)
            if route is None:
                call.http_status = 404
                return PlainTextResponse("Not Found", 404)
            failure = self._take_failure(path)
            if failure is not None and failure.http_status != 200:
                call.http_status = failure.http_status
                return PlainTextResponse("Bad Gateway", failure.http_status)
            await self._read_body(request, call)
            expected_method, handler = route
            try:
                if request.method != expected_method:
                    raise _ApiError(43001 if expected_method == "GET" else 43002)
                if failure is not None:
                    raise _ApiError(failure.errcode)
                result = await handler(request, call)
            except _ApiError as err:
                call.errcode = err.errcode
                return self._error(err)
            if isinstance(result, Response):
                return result
            call.errcode = result.get("errcode", 0)
            return JSONResponse(result)
        finally:
            self._notify()

    async def _refuse_in_outage(self, call: ApiCall, mode: str, hang: float) -> Response:
        if mode == "busy":
            call.errcode = -1
            return self._error(_ApiError(-1))
        if mode == "timeout":
            await asyncio.sleep(hang)  # the client has given up by now: nobody reads the answer
            call.http_status = 504
            return PlainTextResponse("Gateway Timeout", 504)
        call.http_status = 502
        return PlainTextResponse("Bad Gateway", 502)

    async def _read_body(self, request: Request, call: ApiCall) -> None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            form = await request.form()
            try:
                for name, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        call.files[name] = await value.read()
                        call.file_names[name] = value.filename or ""
                        call.file_types[name] = value.content_type or ""
            finally:
                await form.close()
            return
        body = await request.body()
        if body:
            # WeChat Work parses the body as JSON whatever the Content-Type says.
            try:
                parsed = json.loads(body)
            except ValueError:
                call.json = {"__raw__": body.decode(errors="replace")}
                return
            call.json = parsed if isinstance(parsed, dict) else {"__raw__": parsed}

    def _take_failure(self, path: str) -> _Failure | None:
        for failure in self._failures:
            if failure.path == path or (failure.path is None and path != "/cgi-bin/gettoken"):
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    @staticmethod
    def _error(err: _ApiError) -> JSONResponse:
        hint = secrets.token_hex(12)
        errmsg = (
            f"{ERRMSG.get(err.errcode, 'error')}, hint: [{hint}], from ip: 127.0.0.1, "
            f"more info at https://open.work.weixin.qq.com/devtool/query?e={err.errcode}"
        )
        return JSONResponse({"errcode": err.errcode, "errmsg": errmsg, **err.extra})

    def _check_token(self, call: ApiCall) -> None:
        token = call.query.get("access_token")
        if not token:
            raise _ApiError(41001)
        expiry = self._tokens.get(token)
        if expiry is None:
            raise _ApiError(40014)
        if expiry <= self.now():
            raise _ApiError(42001)
        if self.ip_blocked:
            raise _ApiError(60020)

    @staticmethod
    def _body(call: ApiCall) -> JSONDict:
        if call.json is None or "__raw__" in call.json:
            raise _ApiError(47001)
        return call.json

    def _under_limit(self, windows: dict[str, deque[float]], key: str, limit: int | None) -> bool:
        if limit is None:
            return True
        stamps = windows.setdefault(key, deque())
        cutoff = self.now() - 60
        while stamps and stamps[0] <= cutoff:
            stamps.popleft()
        return len(stamps) < limit

    def _record_send(self, windows: dict[str, deque[float]], key: str) -> None:
        windows.setdefault(key, deque()).append(self.now())

    def _deliver(self, channel: str, target: str, body: JSONDict, store: dict[str, list[JSONDict]]) -> str:
        msgid = f"fake-msgid-{next(self._msgid_counter)}"
        store.setdefault(target, []).append(body)
        self.sent.append(SentMessage(channel, target, body, time.monotonic(), msgid))
        return msgid

    # ------------------------------------------------------------------ content checks

    def _checked_content(self, body: JSONDict, allowed: frozenset[str], *, app: bool) -> JSONDict:
        """Validate a message body by msgtype; return a copy as it would be delivered."""
        msgtype = body.get("msgtype")
        if not isinstance(msgtype, str) or msgtype not in allowed:
            raise _ApiError(40008)
        payload = body.get(msgtype)
        if not isinstance(payload, dict):
            raise _ApiError(40035 if msgtype == "template_card" else 44004)
        delivered = {**body, msgtype: dict(payload)}
        if msgtype in ("text", "markdown"):
            content = payload.get("content")
            if not isinstance(content, str) or not content:
                raise _ApiError(44004)
            # Documented: content over 2,048 bytes is cut, not rejected.
            limit = MAX_TEXT_BYTES if msgtype == "text" else MAX_MARKDOWN_BYTES
            delivered[msgtype]["content"] = _utf8_truncate(content, limit)
        elif msgtype in ("image", "voice", "video", "file") and app:
            media_id = payload.get("media_id")
            if not media_id:
                raise _ApiError(41006)
            if self._live_media(str(media_id)) is None:
                raise _ApiError(40007)
        elif msgtype == "news":
            articles = payload.get("articles")
            if not isinstance(articles, list) or not 1 <= len(articles) <= 8:
                raise _ApiError(40035)
            if any(not isinstance(a, dict) or not a.get("title") for a in articles):
                raise _ApiError(40035)
        elif msgtype == "template_card":
            card_type = payload.get("card_type")
            if card_type not in _CARD_TYPES:
                raise _ApiError(40035)
            # Clicks on interactive cards are reported by task_id, so it is mandatory.
            if card_type in _INTERACTIVE_CARDS and not payload.get("task_id"):
                raise _ApiError(40035)
        return delivered

    def _live_media(self, media_id: str) -> Media | None:
        media = self._media.get(media_id)
        if media is None or self.now() - media.created_at > MEDIA_TTL:
            return None
        return media

    # ------------------------------------------------------------------ endpoints

    async def _gettoken(self, request: Request, call: ApiCall) -> JSONDict:
        corpid = call.query.get("corpid")
        secret = call.query.get("corpsecret")
        if not corpid:
            raise _ApiError(41002)
        if corpid != self.corp_id:
            raise _ApiError(40013)
        if not secret:
            raise _ApiError(41004)
        if secret != self.corp_secret:
            raise _ApiError(40001)
        now = self.now()
        token = self._current_token
        # "有效期内重复获取返回相同结果，过期后获取会返回新的access_token".
        if token is None or self._tokens.get(token, 0) <= now:
            token = secrets.token_urlsafe(48)
            self._tokens[token] = now + TOKEN_TTL
            self._current_token = token
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": TOKEN_TTL}

    async def _message_send(self, request: Request, call: ApiCall) -> JSONDict:
        self._check_token(call)
        body = self._body(call)
        if "agentid" not in body or body["agentid"] in ("", None):
            raise _ApiError(41011)
        try:
            agentid = int(body["agentid"])
        except (TypeError, ValueError):
            raise _ApiError(40056) from None
        if agentid != self.agent_id:
            raise _ApiError(40056)
        delivered = self._checked_content(body, _APP_MSGTYPES, app=True)

        raw_users = [u for u in str(body.get("touser") or "").split("|") if u]
        if len(raw_users) > MAX_RECIPIENTS:
            raise _ApiError(40032)
        if raw_users == ["@all"] and self.known_users is not None:
            users = sorted(self.known_users)
        else:
            users = list(dict.fromkeys(u.lower() for u in raw_users))
        invalid = [u for u in users if self.known_users is not None and u not in self.known_users]
        valid = [u for u in users if u not in invalid]
        extra = {"invaliduser": "|".join(invalid)} if invalid else {}
        if not valid and not body.get("toparty") and not body.get("totag"):
            raise _ApiError(81013, **extra)

        # All-or-nothing, so a retry after 45009 cannot duplicate messages for others.
        if any(not self._under_limit(self._user_windows, u, self.per_user_per_minute) for u in valid):
            raise _ApiError(45009)
        msgid = ""
        for user in valid:
            self._record_send(self._user_windows, user)
            msgid = self._deliver("app", user, delivered, self._by_user)
        result: JSONDict = {"errcode": 0, "errmsg": "ok", **extra, "msgid": msgid or "fake-msgid-none"}
        card = body.get("template_card")
        if (
            body["msgtype"] == "template_card"
            and isinstance(card, dict)
            and card["card_type"] in _INTERACTIVE_CARDS
        ):
            result["response_code"] = secrets.token_urlsafe(24)
        return result

    async def _media_upload(self, request: Request, call: ApiCall) -> JSONDict:
        self._check_token(call)
        media_type = call.query.get("type", "")
        if media_type not in _MEDIA_TYPES:
            raise _ApiError(40005)
        data = call.files.get("media")
        if data is None:
            raise _ApiError(44001)
        if len(data) <= 5 or len(data) > _MEDIA_TYPES[media_type]:
            raise _ApiError(40009 if media_type == "image" else 40006)
        media_id = "3" + secrets.token_urlsafe(40)  # opaque, like the real 60-ish char ids
        media = Media(
            media_id=media_id,
            data=data,
            type=media_type,
            filename=call.file_names.get("media") or f"{media_id}.bin",
            content_type=call.file_types.get("media") or _CONTENT_TYPES[media_type],
            created_at=self.now(),
            uploaded=True,
        )
        self._media[media_id] = media
        self.uploaded_media.append(media)
        return {
            "errcode": 0,
            "errmsg": "",
            "type": media_type,
            "media_id": media_id,
            "created_at": str(int(time.time())),
        }

    async def _media_get(self, request: Request, call: ApiCall) -> Response:
        self._check_token(call)
        media_id = call.query.get("media_id")
        if not media_id:
            raise _ApiError(41006)
        media = self._live_media(media_id)
        if media is None:
            raise _ApiError(40007)
        call.errcode = 0
        return Response(
            media.data,
            media_type=media.content_type,
            headers={"Content-disposition": f'attachment; filename="{media.filename}"'},
        )

    async def _user_get(self, request: Request, call: ApiCall) -> JSONDict:
        self._check_token(call)
        userid = call.query.get("userid", "")
        if not userid:
            raise _ApiError(40035)
        if self.contacts_hidden:
            raise _ApiError(60011)
        if self.known_users is not None and userid.lower() not in self.known_users:
            raise _ApiError(60111)
        return {"errcode": 0, "errmsg": "ok", "userid": userid, "name": self.names.get(userid, userid)}

    async def _appchat_send(self, request: Request, call: ApiCall) -> JSONDict:
        self._check_token(call)
        body = self._body(call)
        chatid = body.get("chatid")
        if not isinstance(chatid, str) or not chatid:
            raise _ApiError(86001)
        if self.known_chats is not None and chatid not in self.known_chats:
            raise _ApiError(86001)
        delivered = self._checked_content(body, _APPCHAT_MSGTYPES, app=True)
        self._deliver("appchat", chatid, delivered, self._by_chat)
        return {"errcode": 0, "errmsg": "ok"}

    async def _webhook_send(self, request: Request, call: ApiCall) -> JSONDict:
        # The robot authenticates by its key alone: no access token, no IP allow-list.
        key = call.query.get("key", "")
        if not key or (self.robot_keys is not None and key not in self.robot_keys):
            raise _ApiError(93000)
        body = self._body(call)
        delivered = self._checked_content(body, _ROBOT_MSGTYPES, app=False)
        if not self._under_limit(self._robot_windows, key, self.robot_limit_per_minute):
            raise _ApiError(45009)
        self._record_send(self._robot_windows, key)
        self._deliver("robot", key, delivered, self._by_robot)
        return {"errcode": 0, "errmsg": "ok"}


__all__ = [
    "DEFAULT_AGENT_ID",
    "DEFAULT_CORP_ID",
    "DEFAULT_CORP_SECRET",
    "ERRMSG",
    "MAX_RECIPIENTS",
    "MAX_TEXT_BYTES",
    "MEDIA_TTL",
    "TOKEN_TTL",
    "ApiCall",
    "FakeWeComApi",
    "Media",
    "SentMessage",
]
