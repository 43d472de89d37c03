"""A fake Telegram Bot API server for end-to-end tests and benchmarks.

The real python-telegram-bot ``Application`` talks to it over HTTP on loopback, so
the whole stack (request encoding, de-json, handlers, error mapping) is exercised.
Only the behaviour our bot depends on is modelled, but where it is modelled it
follows real Telegram, including its error texts, so that mistakes which would
fail in production fail here too.

Typical use::

    async with FakeBotApi() as api:
        app = (
            ApplicationBuilder()
            .token("123:abc")
            .base_url(api.base_url)
            .base_file_url(api.base_file_url)
            .build()
        )
        ...
        api.push_text(42, "/start")
        await api.until_idle()
        assert api.sent_messages(42)[-1].text == "..."
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import math
import mimetypes
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.loopback import LoopbackServer

JSONDict = dict[str, Any]

BOT_ID = 100000
DEFAULT_BOT_USERNAME = "shouwang_test_bot"

# PTB form-encodes everything, so these arrive as strings and need decoding to be
# comparable in tests and usable by the handlers below.
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "allowed_updates",
        "commands",
        "scope",
        "link_preview_options",
        "reply_parameters",
        "media",
        "results",
    }
)
_INT_FIELDS = frozenset(
    {
        "chat_id",
        "message_id",
        "from_chat_id",
        "offset",
        "limit",
        "user_id",
        "message_thread_id",
        "reply_to_message_id",
        "cache_time",
        "live_period",
        "duration",
        "max_connections",
    }
)
_FLOAT_FIELDS = frozenset({"timeout", "latitude", "longitude", "horizontal_accuracy"})
# Telegram's ceiling for messages sent with allow_paid_broadcast.
PAID_BROADCAST_PER_SECOND = 1000
_BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "disable_web_page_preview",
        "has_spoiler",
        "allow_sending_without_reply",
        "disable_content_type_detection",
        "show_caption_above_media",
        "allow_paid_broadcast",
    }
)

# Telegram leaves these out unless allowed_updates names them explicitly.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_MAX_TEXT = 4096
_MAX_CAPTION = 1024
_MAX_CALLBACK_DATA = 64
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_TAG_RE = re.compile(r"<[^>]+>")
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


@dataclass
class ApiCall:
    """One request the bot made. ``rejected`` is set when the API answered with an error."""

    method: str
    params: JSONDict
    files: dict[str, bytes]
    time: float
    file_names: dict[str, str] = field(default_factory=dict)
    rejected: bool = False
    status: int = 200
    error: str | None = None


@dataclass
class SentMessage:
    """A message the bot sent, in its current state (edits applied).

    ``text``/``caption`` are stored exactly as the bot sent them (markup included);
    ``reply_markup`` is whatever markup the message currently carries.
    """

    chat_id: int
    message_id: int
    method: str
    time: float
    text: str | None = None
    caption: str | None = None
    parse_mode: str | None = None
    photo: bytes | None = None
    photo_file_id: str | None = None
    document: bytes | None = None
    document_file_id: str | None = None
    document_name: str | None = None
    location: tuple[float, float] | None = None
    reply_markup: JSONDict | None = None
    edits: list[JSONDict] = field(default_factory=list)
    deleted: bool = False
    pinned: bool = False

    @property
    def buttons(self) -> list[JSONDict]:
        """Inline keyboard buttons, row by row, flattened."""
        if not self.reply_markup:
            return []
        return [button for row in self.reply_markup.get("inline_keyboard", []) for button in row]

    @property
    def callback_data(self) -> list[str]:
        return [b["callback_data"] for b in self.buttons if "callback_data" in b]


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_name: str | None = None
    mime_type: str | None = None


class _ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


class _Window:
    """Sliding-window limiter: at most ``limit`` events per ``period`` seconds.

    A sliding window (rather than a token bucket) matches how Telegram's
    "20 messages a minute per group" behaves for bursts.
    """

    __slots__ = ("limit", "period", "stamps")

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self.stamps: deque[float] = deque()

    def wait_needed(self, now: float) -> float:
        stamps = self.stamps
        while stamps and stamps[0] <= now - self.period:
            stamps.popleft()
        if len(stamps) < self.limit:
            return 0.0
        return stamps[0] + self.period - now

    def add(self, now: float) -> None:
        self.stamps.append(now)


def _per_second_window(rate: float) -> _Window:
    # Fractional rates (e.g. 0.5/s) become "1 per 2 s" instead of rounding to 0.
    limit = max(1, int(rate))
    return _Window(limit, limit / rate)


def _utf16_len(text: str) -> int:
    # Telegram counts lengths and entity offsets in UTF-16 code units.
    return len(text.encode("utf-16-le")) // 2


def _plain_text(text: str, parse_mode: str | None) -> str:
    # Real Telegram returns the text without markup; only HTML is undone here because
    # it is what our bot uses, and a crude strip is enough for length checks.
    if parse_mode and parse_mode.upper() == "HTML":
        return html.unescape(_TAG_RE.sub("", text))
    return text


class FakeBotApi:
    """In-process fake of the Telegram Bot API, served over HTTP on 127.0.0.1."""

    def __init__(
        self,
        rate_limit_per_second: float | None = None,
        per_chat_per_second: float | None = None,
        per_group_per_minute: int | None = None,
        *,
        username: str = DEFAULT_BOT_USERNAME,
        long_poll_max: float = 0.5,
        latency: float = 0.0,
        token: str | None = None,
    ) -> None:
        self.username = username
        # The only token accepted, when given; any other gets Telegram's 401 Unauthorized.
        self.token = token
        self.long_poll_max = long_poll_max
        # Seconds every call but getUpdates takes before it is handled: a network round trip.
        self.latency = latency
        self.calls: list[ApiCall] = []
        self.blocked_users: set[int] = set()
        # Groups where the bot is not allowed to pin messages (not an admin, or pinning is off).
        self.cannot_pin: set[int] = set()
        self.answered_callbacks: dict[str, JSONDict] = {}
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        # Every update posted to the webhook: (update_id, the bot's HTTP status, 0 if unreachable).
        self.webhook_posts: list[tuple[int, int]] = []
        # How long Telegram waits before posting an update the bot did not take (2xx) again.
        self.webhook_retry_delay = 0.05
        self._webhook_task: asyncio.Task[None] | None = None
        self.commands: dict[tuple[str, str], list[JSONDict]] = {}
        self.files: dict[str, StoredFile] = {}

        self._bot_user: JSONDict = {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Shouwang",
            "username": username,
        }
        self._users: dict[int, JSONDict] = {}
        self._chats: dict[int, JSONDict] = {}
        self._next_message_id: dict[int, int] = {}
        self._known_messages: set[tuple[int, int]] = set()
        self._deleted: set[tuple[int, int]] = set()
        self._bot_messages: dict[tuple[int, int], JSONDict] = {}
        self._sent: list[SentMessage] = []
        self._sent_index: dict[tuple[int, int], SentMessage] = {}
        # Per-chat lists keep wait_for_sent cheap when it is re-checked after every request.
        self._sent_by_chat: dict[int, list[SentMessage]] = {}
        self._open_callbacks: set[str] = set()
        self._files_by_path: dict[str, StoredFile] = {}
        self._file_counter = itertools.count(1)
        self._callback_counter = itertools.count(1)

        self._pending: deque[JSONDict] = deque()
        self._pushed: dict[int, JSONDict] = {}
        self._next_update_id = 1
        self._confirmed_offset = 0
        self._allowed_updates: frozenset[str] | None = None
        self._update_pushed = asyncio.Event()
        self._changed = asyncio.Event()
        self._inflight = 0
        self._last_activity = time.monotonic()

        self.configure_rate_limits(rate_limit_per_second, per_chat_per_second, per_group_per_minute)
        # A simulated outage (start_outage): how calls are refused, and how long a "timeout" hangs.
        self._outage: tuple[str, float] | None = None

        self._closing = False

        self._handlers: dict[str, Callable[[ApiCall], Any]] = {
            "getme": self._get_me,
            "deletewebhook": self._delete_webhook,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "sendlocation": self._send_location,
            "sendchataction": self._send_chat_action,
            "editmessagetext": self._edit_message_text,
            "editmessagecaption": self._edit_message_caption,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "getfile": self._get_file,
            "deletemessage": self._delete_message,
            "pinchatmessage": self._pin_chat_message,
            "getchat": self._get_chat,
        }
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
                Route("/file/bot{token}/{file_path:path}", self._file_endpoint, methods=["GET"]),
            ]
        )
        self._loopback = LoopbackServer(self.app, "fake Telegram server")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._closing = False
        await self._loopback.start()

    async def stop(self) -> None:
        if not self._loopback.running:
            return
        # Release parked long polls so uvicorn does not wait for them.
        self._closing = True
        self._wake_pollers()
        await self._stop_posting()
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
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    def configure_rate_limits(
        self,
        rate_limit_per_second: float | None = None,
        per_chat_per_second: float | None = None,
        per_group_per_minute: int | None = None,
    ) -> None:
        """(Re)set the flood limits; ``None`` disables a limit. Clears the windows."""
        self.rate_limit_per_second = rate_limit_per_second
        self.per_chat_per_second = per_chat_per_second
        self.per_group_per_minute = per_group_per_minute
        self._global_window = _per_second_window(rate_limit_per_second) if rate_limit_per_second else None
        # Paid broadcasts (allow_paid_broadcast) are not counted against the free limit but
        # against Telegram's own ceiling for them, 1,000 a second.
        self._paid_window = _per_second_window(PAID_BROADCAST_PER_SECOND) if rate_limit_per_second else None
        self._chat_windows: dict[int, _Window] = {}
        self._group_windows: dict[int, _Window] = {}

    # ------------------------------------------------------------------ inspection

    def start_outage(self, mode: str = "502", hang: float = 1.0) -> None:
        """Until end_outage, every call but getUpdates fails and does nothing: "502" answers
        Bad Gateway with the HTML page a proxy in front of the Bot API sends; "timeout" holds the
        call `hang` seconds (longer than the client waits) and then drops it unanswered."""
        assert mode in ("502", "timeout"), mode
        self._outage = (mode, hang)

    def end_outage(self) -> None:
        self._outage = None

    def sent_messages(self, chat_id: int | None = None) -> list[SentMessage]:
        """Messages the bot sent successfully, oldest first, in their current state."""
        if chat_id is None:
            return list(self._sent)
        return list(self._sent_by_chat.get(chat_id, ()))

    def message(self, chat_id: int, message_id: int) -> SentMessage:
        """Current state of a bot message; KeyError if the bot never sent it."""
        try:
            return self._sent_index[(chat_id, message_id)]
        except KeyError:
            raise KeyError(f"bot sent no message {message_id} in chat {chat_id}") from None

    def calls_of(self, method: str) -> list[ApiCall]:
        lowered = method.lower()
        return [c for c in self.calls if c.method.lower() == lowered]

    def pushed_update(self, update_id: int) -> JSONDict:
        """The update dict as injected (useful to learn a user message's message_id)."""
        return self._pushed[update_id]

    def clear_records(self) -> None:
        """Forget recorded calls and sent messages (e.g. between benchmark phases)."""
        self.calls.clear()
        self._sent.clear()
        self._sent_by_chat.clear()

    # A timeout argument reads better in tests than wrapping every call in asyncio.timeout.
    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Wait until ``predicate()`` is truthy (re-checked after every API call); return it."""
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

    async def wait_for_sent(
        self,
        count: int = 1,
        chat_id: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[SentMessage]:
        """Wait until at least ``count`` messages were sent (to ``chat_id``); return them."""

        def enough() -> list[SentMessage] | None:
            sent = self._sent if chat_id is None else self._sent_by_chat.get(chat_id, [])
            return list(sent) if len(sent) >= count else None

        result: list[SentMessage] = await self.wait_for(enough, timeout)
        return result

    async def until_idle(self, timeout: float = 5.0, quiet: float = 0.05) -> None:  # noqa: ASYNC109
        """Wait until every pushed update is confirmed and no request arrived for ``quiet`` s.

        Long polls do not count as activity; any other request in flight does.
        """
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            remaining = deadline - now
            if self._pending or self._inflight:
                wait = remaining
            else:
                wait = quiet - (now - self._last_activity)
                if wait <= 0:
                    return
            if remaining <= 0:
                raise AssertionError(
                    f"not idle after {timeout}s (unconfirmed updates: {len(self._pending)}, "
                    f"requests in flight: {self._inflight}); last calls:\n{self._describe_calls()}"
                )
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(wait, remaining))

    def _describe_calls(self, last: int = 8) -> str:
        interesting = [c for c in self.calls if c.method.lower() != "getupdates"][-last:]
        if not interesting:
            return "  (no calls besides getUpdates)"
        lines = []
        for c in interesting:
            params = {k: v for k, v in c.params.items() if k != "reply_markup"}
            status = f" -> {c.status} {c.error}" if c.rejected else ""
            lines.append(f"  {c.method} {params}{status}"[:300])
        return "\n".join(lines)

    def _notify(self) -> None:
        # A fresh Event per change lets every waiter see each change exactly once
        # without anyone having to clear it.
        self._changed.set()
        self._changed = asyncio.Event()

    def _wake_pollers(self) -> None:
        self._update_pushed.set()
        self._update_pushed = asyncio.Event()

    # ------------------------------------------------------------------ injecting updates

    def _user(
        self,
        user_id: int,
        first_name: str | None = None,
        language_code: str | None = None,
        username: str | None = None,
    ) -> JSONDict:
        user = self._users.get(user_id)
        if user is None:
            user = {"id": user_id, "is_bot": False, "first_name": first_name or f"User{user_id}"}
            self._users[user_id] = user
        elif first_name:
            user["first_name"] = first_name
        if language_code:
            user["language_code"] = language_code
        if username:
            user["username"] = username
        return user

    def register_chat(self, chat_id: int, chat_type: str | None = None, title: str | None = None) -> JSONDict:
        """Make a chat known (pushes do this implicitly); returns its Bot API Chat dict."""
        chat = self._chats.get(chat_id)
        if chat is not None:
            return chat
        if chat_type is None:
            if chat_id > 0:
                chat_type = "private"
            else:
                chat_type = "supergroup" if str(chat_id).startswith("-100") else "group"
        if chat_type == "private":
            user = self._user(chat_id)
            chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
        else:
            chat = {"id": chat_id, "type": chat_type, "title": title or f"Test group {chat_id}"}
        self._chats[chat_id] = chat
        return chat

    def _user_message(
        self,
        user_id: int,
        chat_id: int | None,
        chat_type: str | None,
        first_name: str | None = None,
        language_code: str | None = None,
    ) -> JSONDict:
        user = self._user(user_id, first_name, language_code)
        if chat_id is None:
            chat_id = user_id
        if chat_type == "private" and chat_id != user_id:
            raise ValueError("a private chat's id is the user's id")
        if chat_type in ("group", "supergroup") and chat_id == user_id:
            raise ValueError("pass the (negative) chat_id of the group")
        chat = self.register_chat(chat_id, chat_type)
        message_id = self._alloc_message_id(chat_id)
        return {"message_id": message_id, "from": user, "chat": chat, "date": int(time.time())}

    def _push(self, payload: JSONDict) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        update = {"update_id": update_id, **payload}
        self._pushed[update_id] = update
        if not self._is_allowed(update):
            # Telegram never creates updates the bot did not subscribe to.
            self._notify()
            return update_id
        self._pending.append(update)
        self._wake_pollers()
        self._notify()
        return update_id

    def push_text(
        self,
        user_id: int,
        text: str,
        chat_id: int | None = None,
        chat_type: str | None = None,
        first_name: str | None = None,
        language_code: str | None = None,
    ) -> int:
        """A user sends ``text``; returns the update_id. A leading ``/word`` becomes a bot_command."""
        message = self._user_message(user_id, chat_id, chat_type, first_name, language_code)
        message["text"] = text
        if text.startswith("/") and len(text) > 1:
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
        return self._push({"message": message})

    def push_photo(
        self,
        user_id: int,
        image_bytes: bytes,
        caption: str | None = None,
        chat_id: int | None = None,
        chat_type: str | None = None,
    ) -> int:
        """A user sends a photo; the bytes become downloadable via getFile."""
        message = self._user_message(user_id, chat_id, chat_type)
        message["photo"] = self._photo_sizes(self._store_file(image_bytes, "photo"))
        if caption is not None:
            message["caption"] = caption
        return self._push({"message": message})

    def push_location(
        self,
        user_id: int,
        lat: float,
        lon: float,
        live_period: int | None = None,
        chat_id: int | None = None,
        chat_type: str | None = None,
    ) -> int:
        message = self._user_message(user_id, chat_id, chat_type)
        location: JSONDict = {"latitude": lat, "longitude": lon}
        if live_period is not None:
            location["live_period"] = live_period
        message["location"] = location
        return self._push({"message": message})

    def push_location_update(
        self, user_id: int, message_id: int, lat: float, lon: float, chat_id: int | None = None
    ) -> int:
        """A live location moves: Telegram sends it as an edited_message."""
        chat_id = user_id if chat_id is None else chat_id
        original = next(
            (
                u["message"]
                for u in reversed(self._pushed.values())
                if "message" in u
                and u["message"]["chat"]["id"] == chat_id
                and u["message"]["message_id"] == message_id
            ),
            None,
        )
        if original is None or "location" not in original:
            raise ValueError(f"no pushed location message {message_id} in chat {chat_id}")
        now = int(time.time())
        location = {**original["location"], "latitude": lat, "longitude": lon}
        message = {**original, "location": location, "edit_date": now}
        return self._push({"edited_message": message})

    def push_sticker(self, user_id: int, chat_id: int | None = None, chat_type: str | None = None) -> int:
        message = self._user_message(user_id, chat_id, chat_type)
        stored = self._store_file(b"RIFF\x00\x00\x00\x00WEBPVP8 fake", "sticker")
        message["sticker"] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
            "file_size": len(stored.data),
        }
        return self._push({"message": message})

    def push_voice(
        self, user_id: int, duration: int = 2, chat_id: int | None = None, chat_type: str | None = None
    ) -> int:
        message = self._user_message(user_id, chat_id, chat_type)
        stored = self._store_file(b"OggS\x00fake-voice", "voice", mime_type="audio/ogg")
        message["voice"] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(stored.data),
        }
        return self._push({"message": message})

    def push_callback(
        self,
        user_id: int,
        message_chat_id: int,
        message_id: int,
        data: str,
        chat_type: str | None = None,
    ) -> str:
        """A user presses an inline button under a bot message; returns the callback_query_id."""
        key = (message_chat_id, message_id)
        message = self._bot_messages.get(key)
        if message is None or key in self._deleted:
            raise ValueError(f"bot sent no (undeleted) message {message_id} in chat {message_chat_id}")
        if chat_type is not None and message["chat"]["type"] != chat_type:
            raise ValueError(f"chat {message_chat_id} is a {message['chat']['type']}, not {chat_type}")
        query_id = f"cbq{next(self._callback_counter)}"
        self._open_callbacks.add(query_id)
        self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self._user(user_id),
                    # A snapshot: later edits must not change an update already queued.
                    "message": dict(message),
                    "chat_instance": f"ci{message_chat_id}",
                    "data": data,
                }
            }
        )
        return query_id

    def push_raw(self, update: JSONDict) -> int:
        """Inject any update dict; ``update_id`` is assigned unless given (then it must not go back)."""
        payload = dict(update)
        given = payload.pop("update_id", None)
        if given is not None:
            if given < self._next_update_id:
                raise ValueError(f"update_id {given} is not after {self._next_update_id - 1}")
            self._next_update_id = given
        return self._push(payload)

    # ------------------------------------------------------------------ HTTP layer

    async def _parse(self, request: Request) -> tuple[JSONDict, dict[str, bytes], dict[str, str]]:
        raw: JSONDict = dict(request.query_params)
        files: dict[str, bytes] = {}
        names: dict[str, str] = {}
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            form = await request.form()
            try:
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        files[key] = await value.read()
                        names[key] = value.filename or key
                    else:
                        raw[key] = value
            finally:
                await form.close()
        else:
            body = await request.body()
            if body:
                if content_type.startswith("application/json"):
                    try:
                        raw.update(json.loads(body))
                    except ValueError:
                        raise _ApiError(400, "Bad Request: can't parse JSON") from None
                else:
                    # Parsing urlencoded bodies directly is much cheaper than request.form().
                    raw.update(parse_qsl(body.decode(), keep_blank_values=True))
        return self._normalize(raw), files, names

    @staticmethod
    def _normalize(raw: JSONDict) -> JSONDict:
        params: JSONDict = {}
        for key, value in raw.items():
            if isinstance(value, str):
                try:
                    if key in _JSON_FIELDS:
                        value = json.loads(value)
                    elif key in _INT_FIELDS:
                        value = int(value)
                    elif key in _FLOAT_FIELDS:
                        value = float(value)
                    elif key in _BOOL_FIELDS:
                        value = value.lower() in ("true", "1")
                except ValueError:
                    pass  # left as a string; the method handler reports it like Telegram would
            params[key] = value
        return params

    @staticmethod
    def _json_response(body: JSONDict, status: int = 200) -> Response:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return Response(content, status_code=status, media_type="application/json")

    async def _endpoint(self, request: Request) -> Response:
        method: str = request.path_params["method"]
        if self.token is not None and request.path_params["token"] != self.token:
            return self._json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
        lowered = method.lower()
        polling = lowered == "getupdates"
        if not polling:
            self._inflight += 1
            self._last_activity = time.monotonic()
        call: ApiCall | None = None
        try:
            if self.latency and not polling:
                await asyncio.sleep(self.latency)  # the network's round trip, as configured
            params, files, names = await self._parse(request)
            call = ApiCall(method, params, files, time.monotonic(), file_names=names)
            self.calls.append(call)
            if self._outage is not None and not polling:
                return await self._refuse_in_outage(call, *self._outage)
            if polling:
                result = await self._get_updates(call)
            else:
                handler = self._handlers.get(lowered)
                if handler is None:
                    raise _ApiError(404, "Not Found: method not found")
                result = handler(call)
            return self._json_response({"ok": True, "result": result})
        except _ApiError as err:
            if call is not None:
                call.rejected = True
                call.status = err.status
                call.error = err.description
            body: JSONDict = {"ok": False, "error_code": err.status, "description": err.description}
            if err.parameters:
                body["parameters"] = err.parameters
            return self._json_response(body, err.status)
        finally:
            if not polling:
                self._inflight -= 1
                self._last_activity = time.monotonic()
            self._notify()

    @staticmethod
    async def _refuse_in_outage(call: ApiCall, mode: str, hang: float) -> Response:
        call.rejected = True
        if mode == "timeout":
            await asyncio.sleep(hang)  # the client has given up by now: nobody reads the answer
            call.status, call.error = 504, "Gateway Timeout"
            return Response("<html><body><h1>504 Gateway Time-out</h1></body></html>", status_code=504)
        call.status, call.error = 502, "Bad Gateway"
        return Response(
            "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
            "</center><hr><center>nginx</center></body></html>",
            status_code=502,
            media_type="text/html",
        )

    async def _file_endpoint(self, request: Request) -> Response:
        stored = self._files_by_path.get(request.path_params["file_path"])
        if stored is None:
            return self._json_response({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
        return Response(stored.data, media_type=stored.mime_type or "application/octet-stream")

    # ------------------------------------------------------------------ helpers

    def _alloc_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        self._known_messages.add((chat_id, message_id))
        return message_id

    def _store_file(
        self,
        data: bytes,
        kind: str,
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> StoredFile:
        number = next(self._file_counter)
        if file_name and "." in file_name:
            extension = file_name.rsplit(".", 1)[1]
        else:
            extension = {"photo": "jpg", "voice": "oga", "sticker": "webp"}.get(kind, "bin")
        stored = StoredFile(
            file_id=f"Fake{kind.capitalize()}{number:08d}",
            file_unique_id=f"U{kind[:3]}{number}",
            file_path=f"{kind}s/file_{number}.{extension}",
            data=data,
            file_name=file_name,
            mime_type=mime_type or mimetypes.guess_type(f"x.{extension}")[0],
        )
        self.files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _photo_sizes(self, stored: StoredFile) -> list[JSONDict]:
        # Telegram lists several sizes, smallest first; handlers usually take photo[-1].
        # The thumbnail here is the same bytes under its own id, so either id works.
        thumb = self._store_file(stored.data, "photo")
        return [
            {
                "file_id": thumb.file_id,
                "file_unique_id": thumb.file_unique_id,
                "width": 90,
                "height": 67,
                "file_size": len(thumb.data),
            },
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "width": 1280,
                "height": 960,
                "file_size": len(stored.data),
            },
        ]

    def _resolve_file(self, call: ApiCall, name: str, kind: str) -> StoredFile:
        value = call.params.get(name)
        upload_key = name
        if isinstance(value, str) and value.startswith("attach://"):
            upload_key = value.removeprefix("attach://")
        if upload_key in call.files:
            return self._store_file(call.files[upload_key], kind, file_name=call.file_names.get(upload_key))
        if not isinstance(value, str) or not value:
            raise _ApiError(400, f"Bad Request: there is no {name} in the request")
        if value in self.files:
            return self.files[value]
        if value.startswith(("http://", "https://")):
            # Telegram would fetch the URL; tests only care that something was sent.
            return self._store_file(b"", kind, file_name=value.rsplit("/", 1)[-1])
        raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    @staticmethod
    def _int_param(call: ApiCall, name: str, missing: str) -> int:
        value = call.params.get(name)
        if value is None or value == "":
            raise _ApiError(400, f"Bad Request: {missing}")
        if not isinstance(value, int):
            raise _ApiError(400, f"Bad Request: invalid {name} specified")
        return value

    def _chat_id(self, call: ApiCall) -> int:
        value = call.params.get("chat_id")
        if value is None or value == "":
            raise _ApiError(400, "Bad Request: chat_id is empty")
        if not isinstance(value, int):
            raise _ApiError(400, "Bad Request: chat not found")
        return value

    def _check_text(self, text: Any, parse_mode: str | None, *, caption: bool) -> str:
        if text is None:
            return ""
        if not isinstance(text, str):
            text = str(text)
        plain = _plain_text(text, parse_mode)
        if caption:
            if _utf16_len(plain) > _MAX_CAPTION:
                raise _ApiError(400, "Bad Request: message caption is too long")
        else:
            if not plain.strip():
                raise _ApiError(400, "Bad Request: message text is empty")
            if _utf16_len(plain) > _MAX_TEXT:
                raise _ApiError(400, "Bad Request: message is too long")
        return plain

    @staticmethod
    def _inline_markup(markup: Any) -> JSONDict | None:
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            return None
        for row in markup["inline_keyboard"]:
            for button in row:
                data = button.get("callback_data")
                if data is not None and len(data.encode()) > _MAX_CALLBACK_DATA:
                    raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _admit_send(self, call: ApiCall) -> JSONDict:
        """Blocked-user and flood checks shared by all send* methods; returns the chat."""
        chat_id = self._chat_id(call)
        chat = self.register_chat(chat_id)
        if chat["type"] == "private" and chat_id in self.blocked_users:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        windows: list[_Window] = []
        paid = call.params.get("allow_paid_broadcast") is True
        overall = self._paid_window if paid else self._global_window
        if overall is not None:
            windows.append(overall)
        if self.per_chat_per_second:
            window = self._chat_windows.get(chat_id)
            if window is None:
                window = self._chat_windows[chat_id] = _per_second_window(self.per_chat_per_second)
            windows.append(window)
        if self.per_group_per_minute and chat["type"] in ("group", "supergroup"):
            window = self._group_windows.get(chat_id)
            if window is None:
                window = self._group_windows[chat_id] = _Window(self.per_group_per_minute, 60.0)
            windows.append(window)
        if windows:
            now = time.monotonic()
            wait = max(w.wait_needed(now) for w in windows)
            if wait > 0:
                retry_after = max(1, math.ceil(wait))
                raise _ApiError(
                    429,
                    f"Too Many Requests: retry after {retry_after}",
                    {"retry_after": retry_after},
                )
            for window in windows:
                window.add(now)
        return chat

    def _record_bot_message(
        self, call: ApiCall, chat: JSONDict, content: JSONDict
    ) -> tuple[JSONDict, SentMessage]:
        chat_id: int = chat["id"]
        markup = call.params.get("reply_markup")
        inline = self._inline_markup(markup)
        message_id = self._alloc_message_id(chat_id)
        message: JSONDict = {
            "message_id": message_id,
            "from": self._bot_user,
            "chat": chat,
            "date": int(time.time()),
            **content,
        }
        if inline is not None:
            message["reply_markup"] = inline
        self._bot_messages[(chat_id, message_id)] = message
        sent = SentMessage(
            chat_id=chat_id,
            message_id=message_id,
            method=call.method,
            time=call.time,
            parse_mode=call.params.get("parse_mode"),
            reply_markup=markup if isinstance(markup, dict) else None,
        )
        self._sent.append(sent)
        self._sent_by_chat.setdefault(chat_id, []).append(sent)
        self._sent_index[(chat_id, message_id)] = sent
        return message, sent

    def _editable(self, call: ApiCall, missing: str) -> tuple[JSONDict, SentMessage]:
        if "inline_message_id" in call.params:
            raise _ApiError(400, "Bad Request: inline messages are not supported by the fake")
        chat_id = self._chat_id(call)
        message_id = self._int_param(call, "message_id", "message identifier is not specified")
        key = (chat_id, message_id)
        message = self._bot_messages.get(key)
        if message is None or key in self._deleted:
            raise _ApiError(400, f"Bad Request: {missing}")
        return message, self._sent_index[key]

    # ------------------------------------------------------------------ methods

    async def _get_updates(self, call: ApiCall) -> list[JSONDict]:
        if self.webhook_url:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        params = call.params
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed)
        offset = params.get("offset")
        if isinstance(offset, int) and offset != 0:
            self._confirm(offset)
        limit = params.get("limit")
        limit = min(max(limit, 1), 100) if isinstance(limit, int) else 100
        raw_timeout = params.get("timeout") or 0.0
        timeout = min(float(raw_timeout), self.long_poll_max) if isinstance(raw_timeout, float | int) else 0.0
        deadline = time.monotonic() + timeout
        while not self._pending and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            pushed = self._update_pushed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pushed.wait(), remaining)
        return list(itertools.islice(self._pending, limit))

    def _is_allowed(self, update: JSONDict) -> bool:
        kind = next((key for key in update if key != "update_id"), "")
        allowed = self._allowed_updates
        if not allowed:
            return kind not in _OPT_IN_UPDATES
        return kind in allowed

    def _confirm(self, offset: int) -> None:
        pending = self._pending
        if offset < 0:
            # Telegram: a negative offset keeps only the last -offset updates.
            while len(pending) > -offset:
                pending.popleft()
            if pending:
                self._confirmed_offset = max(self._confirmed_offset, pending[0]["update_id"])
            else:
                self._confirmed_offset = max(self._confirmed_offset, self._next_update_id)
            return
        while pending and pending[0]["update_id"] < offset:
            pending.popleft()
        if offset > self._confirmed_offset:
            self._confirmed_offset = offset
            # Confirmation means the bot is about to react; count it as activity.
            self._last_activity = time.monotonic()

    def _get_me(self, call: ApiCall) -> JSONDict:
        return {
            **self._bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _delete_webhook(self, call: ApiCall) -> bool:
        self.webhook_url = ""
        self.webhook_secret = None
        # The post in flight, if any, finishes; nothing more is posted.
        self._wake_pollers()
        if call.params.get("drop_pending_updates"):
            self._pending.clear()
            self._confirmed_offset = max(self._confirmed_offset, self._next_update_id)
        return True

    def _set_webhook(self, call: ApiCall) -> bool:
        url = call.params.get("url")
        if not isinstance(url, str) or not url:
            raise _ApiError(400, "Bad Request: bad webhook: URL is empty")
        if not url.startswith("https://") and not url.startswith("http://127.0.0.1:"):
            # Real Telegram posts to https only; plain http is let through for the bot on loopback.
            raise _ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = call.params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise _ApiError(400, "Bad Request: secret token contains unallowed characters")
        allowed = call.params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed)
        self.webhook_url = url
        self.webhook_secret = None if secret is None else str(secret)
        if call.params.get("drop_pending_updates"):
            self._pending.clear()
            self._confirmed_offset = max(self._confirmed_offset, self._next_update_id)
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._post_updates())
        return True

    async def _post_updates(self) -> None:
        """Telegram's side of a webhook: each pending update POSTed, in order, until the bot
        answers 2xx (then it is confirmed); anything else and it is posted again a little later."""
        async with httpx.AsyncClient(timeout=10) as client:
            while self.webhook_url and not self._closing:
                if not self._pending:
                    pushed = self._update_pushed
                    await pushed.wait()
                    continue
                update = self._pending[0]
                status = await self.post_webhook(update, self.webhook_secret, client=client)
                self.webhook_posts.append((update["update_id"], status))
                if 200 <= status < 300:
                    if self._pending and self._pending[0] is update:
                        self._pending.popleft()
                        self._confirmed_offset = max(self._confirmed_offset, update["update_id"] + 1)
                    self._last_activity = time.monotonic()
                    self._notify()
                else:
                    self._notify()
                    await asyncio.sleep(self.webhook_retry_delay)

    async def post_webhook(
        self, body: JSONDict | bytes, secret: str | None, *, client: httpx.AsyncClient | None = None
    ) -> int:
        """POST `body` to the webhook as Telegram would, with `secret` in its header (none if
        None); the bot's status code, 0 when it could not be reached."""
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        self._inflight += 1
        try:
            async with contextlib.AsyncExitStack() as stack:
                if client is None:
                    client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
                response = await client.post(self.webhook_url, content=content, headers=headers)
                return response.status_code
        except httpx.HTTPError:
            return 0
        finally:
            self._inflight -= 1
            self._last_activity = time.monotonic()

    async def _stop_posting(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _get_webhook_info(self, call: ApiCall) -> JSONDict:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    @staticmethod
    def _commands_key(call: ApiCall) -> tuple[str, str]:
        scope = call.params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(call.params.get("language_code") or "")

    def _set_my_commands(self, call: ApiCall) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            if not _COMMAND_RE.match(str(command.get("command", ""))):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(call)] = commands
        return True

    def _get_my_commands(self, call: ApiCall) -> list[JSONDict]:
        return self.commands.get(self._commands_key(call), [])

    def _delete_my_commands(self, call: ApiCall) -> bool:
        self.commands.pop(self._commands_key(call), None)
        return True

    def _send_message(self, call: ApiCall) -> JSONDict:
        chat = self._admit_send(call)
        text = call.params.get("text")
        plain = self._check_text(text, call.params.get("parse_mode"), caption=False)
        message, sent = self._record_bot_message(call, chat, {"text": plain})
        sent.text = text
        return message

    def _send_photo(self, call: ApiCall) -> JSONDict:
        chat = self._admit_send(call)
        caption = call.params.get("caption")
        plain = self._check_text(caption, call.params.get("parse_mode"), caption=True)
        stored = self._resolve_file(call, "photo", "photo")
        sizes = self._photo_sizes(stored)
        content: JSONDict = {"photo": sizes}
        if plain:
            content["caption"] = plain
        message, sent = self._record_bot_message(call, chat, content)
        sent.caption = caption
        sent.photo = stored.data
        sent.photo_file_id = sizes[-1]["file_id"]
        return message

    def _send_document(self, call: ApiCall) -> JSONDict:
        chat = self._admit_send(call)
        caption = call.params.get("caption")
        plain = self._check_text(caption, call.params.get("parse_mode"), caption=True)
        stored = self._resolve_file(call, "document", "document")
        document: JSONDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
        }
        if stored.file_name:
            document["file_name"] = stored.file_name
        if stored.mime_type:
            document["mime_type"] = stored.mime_type
        content: JSONDict = {"document": document}
        if plain:
            content["caption"] = plain
        message, sent = self._record_bot_message(call, chat, content)
        sent.caption = caption
        sent.document = stored.data
        sent.document_file_id = stored.file_id
        sent.document_name = stored.file_name
        return message

    def _send_location(self, call: ApiCall) -> JSONDict:
        chat = self._admit_send(call)
        lat = call.params.get("latitude")
        lon = call.params.get("longitude")
        if not isinstance(lat, float) or not isinstance(lon, float):
            raise _ApiError(400, "Bad Request: wrong latitude or longitude specified")
        location: JSONDict = {"latitude": lat, "longitude": lon}
        if isinstance(call.params.get("live_period"), int):
            location["live_period"] = call.params["live_period"]
        message, sent = self._record_bot_message(call, chat, {"location": location})
        sent.location = (lat, lon)
        return message

    def _send_chat_action(self, call: ApiCall) -> bool:
        chat_id = self._chat_id(call)
        chat = self.register_chat(chat_id)
        if chat["type"] == "private" and chat_id in self.blocked_users:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        return True

    def _edit_message_text(self, call: ApiCall) -> JSONDict:
        message, sent = self._editable(call, "message to edit not found")
        if "text" not in message:
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        text = call.params.get("text")
        plain = self._check_text(text, call.params.get("parse_mode"), caption=False)
        markup = call.params.get("reply_markup")
        inline = self._inline_markup(markup)
        if plain == message["text"] and inline == message.get("reply_markup"):
            raise _ApiError(400, _NOT_MODIFIED)
        message["text"] = plain
        self._apply_edit(call, message, sent, inline)
        sent.text = text
        sent.parse_mode = call.params.get("parse_mode")
        return message

    def _edit_message_caption(self, call: ApiCall) -> JSONDict:
        message, sent = self._editable(call, "message to edit not found")
        if "text" in message or "location" in message:
            raise _ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption = call.params.get("caption")
        plain = self._check_text(caption, call.params.get("parse_mode"), caption=True)
        markup = call.params.get("reply_markup")
        inline = self._inline_markup(markup)
        if plain == message.get("caption", "") and inline == message.get("reply_markup"):
            raise _ApiError(400, _NOT_MODIFIED)
        if plain:
            message["caption"] = plain
        else:
            message.pop("caption", None)
        self._apply_edit(call, message, sent, inline)
        sent.caption = caption
        sent.parse_mode = call.params.get("parse_mode")
        return message

    def _edit_message_reply_markup(self, call: ApiCall) -> JSONDict:
        message, sent = self._editable(call, "message to edit not found")
        inline = self._inline_markup(call.params.get("reply_markup"))
        if inline == message.get("reply_markup"):
            raise _ApiError(400, _NOT_MODIFIED)
        self._apply_edit(call, message, sent, inline)
        return message

    @staticmethod
    def _apply_edit(call: ApiCall, message: JSONDict, sent: SentMessage, inline: JSONDict | None) -> None:
        # Like Telegram, an edit without reply_markup drops the inline keyboard.
        if inline is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = inline
        message["edit_date"] = int(time.time())
        sent.reply_markup = inline
        sent.edits.append({"method": call.method, **call.params})

    def _answer_callback_query(self, call: ApiCall) -> bool:
        query_id = call.params.get("callback_query_id")
        if not isinstance(query_id, str) or query_id not in self._open_callbacks:
            raise _ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self._open_callbacks.discard(query_id)
        self.answered_callbacks[query_id] = call.params
        return True

    def _get_file(self, call: ApiCall) -> JSONDict:
        stored = self.files.get(str(call.params.get("file_id", "")))
        if stored is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    def _delete_message(self, call: ApiCall) -> bool:
        chat_id = self._chat_id(call)
        message_id = self._int_param(call, "message_id", "message identifier is not specified")
        key = (chat_id, message_id)
        if key not in self._known_messages or key in self._deleted:
            raise _ApiError(400, "Bad Request: message to delete not found")
        self._deleted.add(key)
        sent = self._sent_index.get(key)
        if sent is not None:
            sent.deleted = True
        return True

    def _pin_chat_message(self, call: ApiCall) -> bool:
        chat_id = self._chat_id(call)
        message_id = self._int_param(call, "message_id", "message identifier is not specified")
        key = (chat_id, message_id)
        if key not in self._known_messages or key in self._deleted:
            raise _ApiError(400, "Bad Request: message to pin not found")
        if chat_id in self.cannot_pin:
            raise _ApiError(400, "Bad Request: not enough rights to manage pinned messages in the chat")
        sent = self._sent_index.get(key)
        if sent is not None:
            sent.pinned = True
        return True

    def _get_chat(self, call: ApiCall) -> JSONDict:
        chat = self.register_chat(self._chat_id(call))
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }
