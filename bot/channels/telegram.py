"""Telegram adapter: PTB updates in, neutral inputs to the engine, rendered replies out."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import warnings
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    MessageEntity,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import CallbackQueryLimit, ChatType, MessageLimit
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder, BaseUpdateProcessor, ContextTypes, TypeHandler
from telegram.warnings import PTBUserWarning

from bot.channels.base import DeliveryError, RetryLater, Undeliverable
from bot.channels.telegram_request import AiohttpRequest
from bot.i18n import RenderedMessage
from handlers import notify
from handlers.messages import Incoming, Location, Reply, Response, Text, reply_to_json
from storage.repositories import Repos

if TYPE_CHECKING:
    from bot.app import Runtime

log = logging.getLogger(__name__)

NAME = "telegram"
# Updates of different people handled at once; one person's always in order.
CONCURRENT_UPDATES = 64
# Engine calls at once on a database with concurrent writers (PostgreSQL).
ENGINE_CALLS = 8
# Outbox rows the delivery worker may have on their way at once: enough to keep the flood
# limits busy across Bot API round trips of a few hundred milliseconds.
MAX_IN_FLIGHT = 32
# A chat whose turn is further off than this is not waited for: the outbox retries the row then.
MAX_FLOOD_WAIT_SECONDS = 3.0
# Photos already on Telegram's servers are sent again by file_id instead of being uploaded again.
FILE_ID_CACHE = 256
CAPTION_PREFIX = "c"
# Texts are sent with Bot.do_api_request, which PTB asks to use only for methods it lacks.
warnings.filterwarnings("ignore", r"Please use 'Bot\.sendMessage'", PTBUserWarning)
UNSUPPORTED_KINDS = (
    "sticker",
    "voice",
    "video",
    "video_note",
    "audio",
    "document",
    "animation",
    "contact",
    "poll",
    "dice",
)


class PerUserUpdateProcessor(BaseUpdateProcessor):
    """One person's updates in arrival order, different people's side by side.

    PTB's default handles one update at a time, so every Bot API round trip of
    one person (answer the button, send the next question) holds up everyone
    else; PTB's own concurrent mode loses the order within a dialogue instead
    (a button press could overtake the text typed before it). Conversation
    state is kept per person, so per person is the order that matters.
    """

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._last: dict[int | None, asyncio.Future[None]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = _person(update)
        previous = self._last.get(key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._last[key] = done
        try:
            if previous is not None:
                await asyncio.shield(previous)
            await coroutine
        finally:
            done.set_result(None)
            if self._last.get(key) is done:
                del self._last[key]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release: PTB waits for the updates in progress before shutting down."""


def _person(update: object) -> int | None:
    if isinstance(update, Update):
        if update.effective_user is not None:
            return update.effective_user.id
        if update.effective_chat is not None:
            return update.effective_chat.id
    return None  # Everything else is handled in order among itself.


# --- flood control ----------------------------------------------------------------


class _Window:
    """At most `limit` sends in any `period` seconds, counted the way the server counts them.

    A send holds its place from the moment it is let through until `period` after its
    answer came back. The server stamps the request somewhere in between, so whatever
    the network does to the requests' timing, this never lets through one the server
    would refuse. Senders wait in turn (those answering a person first).
    """

    def __init__(self, limit: int, period: float) -> None:
        self.ceiling = limit
        self.limit = limit
        self.period = period
        self.answered: deque[float] = deque()
        self.open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._changed = asyncio.Event()
        self._granter: asyncio.Task[None] | None = None
        self._slowed_at = 0.0

    def _used(self, now: float) -> int:
        horizon = now - self.period
        while self.answered and self.answered[0] <= horizon:
            self.answered.popleft()
        if self.limit < self.ceiling:
            # Back up by a twentieth of the configured rate per period without a 429.
            periods = int((now - self._slowed_at) / self.period)
            if periods:
                self.limit = min(self.ceiling, self.limit + periods * max(1, self.ceiling // 20))
                self._slowed_at += periods * self.period
        return len(self.answered) + self.open

    def wait_needed(self, now: float, count: int = 1) -> float:
        """About how long `count` sends asked for now would wait for their turn."""
        waiting = sum(1 for turn in self._waiters if not turn.done())
        need = self._used(now) + waiting + count - self.limit
        if need <= 0:
            return 0.0
        if need <= len(self.answered):
            return self.answered[need - 1] + self.period - now
        return self.period  # behind sends still waiting for their answer

    def idle(self, now: float) -> bool:
        return self._used(now) == 0 and not self._waiters

    def take(self) -> None:
        """Count a send that does not wait for its turn."""
        self.open += 1

    async def acquire(self, *, first: bool = False) -> None:
        if not self._waiters and self._used(time.monotonic()) < self.limit:
            self.open += 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if first:
            self._waiters.appendleft(turn)
        else:
            self._waiters.append(turn)
        if self._granter is None or self._granter.done():
            self._granter = asyncio.create_task(self._grant())
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.give_back()  # granted just as its sender gave up
            raise

    def release(self) -> None:
        """The send was answered (or failed): its place frees `period` from now."""
        self.open -= 1
        self.answered.append(time.monotonic())
        self._changed.set()

    def give_back(self) -> None:
        """The place was not used after all."""
        self.open -= 1
        self._changed.set()

    def slow_down(self) -> None:
        """Telegram said 429 all the same (a lower limit than configured, another process on the
        same token): take a fifth off the rate, and win it back while no 429 follows."""
        self.limit = max(1, int(self.limit * 0.8))
        self._slowed_at = time.monotonic()

    async def _grant(self) -> None:
        while self._waiters:
            turn = self._waiters[0]
            if turn.done():  # its sender gave up waiting
                self._waiters.popleft()
                continue
            now = time.monotonic()
            if self._used(now) < self.limit:
                self._waiters.popleft()
                self.open += 1
                turn.set_result(None)
                continue
            self._changed.clear()
            timeout = self.answered[0] + self.period - now if self.answered else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)


def _per_second(rate: float) -> _Window:
    # 0.5 a second is "one every two seconds", not zero.
    limit = max(1, int(rate))
    return _Window(limit, limit / rate)


@dataclass
class _Turn:
    """One outgoing message, which may take several Bot API calls (photos, long text)."""

    chat_id: str
    group: bool
    # A reply to what the person just did, rather than something from the outbox.
    reply: bool
    calls_left: int
    begun: bool = False


class FloodControl:
    """Telegram's flood limits, kept here so that Telegram rarely has to enforce them with a 429.

    Every send waits for the bot's turn (about 30 a second) and its chat's (20 a minute into
    a group, one a second into a private chat). A direct reply in a private chat does not
    wait for the chat's turn, as its pace is the person's own, but is counted; it goes
    before outbox rows waiting for the bot's turn. A chat whose turn is more than
    `max_wait` away refuses the message before it begins (RetryLater), so the outbox keeps
    the row and the sender is free for other chats; once a message has begun, its later
    calls wait for their turn, so that it is never left half sent.
    """

    def __init__(
        self,
        per_second: float,
        group_per_minute: int,
        chat_per_second: float,
        max_wait: float = MAX_FLOOD_WAIT_SECONDS,
    ) -> None:
        self.bot = _per_second(per_second)
        self.group_per_minute = group_per_minute
        self.chat_per_second = chat_per_second
        self.max_wait = max_wait
        self._chats: dict[str, _Window] = {}
        self._sweep_at = 4096

    def _chat(self, turn: _Turn) -> _Window:
        window = self._chats.get(turn.chat_id)
        if window is None:
            if len(self._chats) >= self._sweep_at:
                self._forget_idle()
            group = turn.group
            window = _Window(self.group_per_minute, 60.0) if group else _per_second(self.chat_per_second)
            self._chats[turn.chat_id] = window
        return window

    def _forget_idle(self) -> None:
        now = time.monotonic()
        self._chats = {chat: w for chat, w in self._chats.items() if not w.idle(now)}
        self._sweep_at = max(4096, 2 * len(self._chats))

    async def enter(self, turn: _Turn) -> tuple[_Window, ...]:
        """Wait until the next call of `turn` may go; returns the windows to leave afterwards."""
        chat = self._chat(turn)
        if turn.reply and not turn.group:
            chat.take()
        else:
            if not turn.begun:
                wait = chat.wait_needed(time.monotonic(), turn.calls_left)
                if wait > self.max_wait:
                    raise RetryLater(wait, "flood control: the chat's turn is too far off")
            await chat.acquire()
        try:
            await self.bot.acquire(first=turn.reply)
        except BaseException:
            chat.give_back()
            raise
        turn.begun = True
        turn.calls_left -= 1
        return chat, self.bot

    @staticmethod
    def leave(windows: tuple[_Window, ...]) -> None:
        for window in windows:
            window.release()


class TelegramChannel:
    name = NAME
    max_in_flight = MAX_IN_FLIGHT

    def __init__(self, runtime: Runtime, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        self.runtime = runtime
        self.application = application
        application.add_handler(TypeHandler(Update, self._on_update))
        application.add_error_handler(self._on_error)
        # SQLite has one writer and every engine call writes: queueing here is far cheaper
        # than SQLite's busy handler, which sleeps up to 100 ms between tries.
        self._engine_slots = asyncio.Semaphore(1 if runtime.database.dialect == "sqlite" else ENGINE_CALLS)
        settings = runtime.settings
        self.flood = FloodControl(
            settings.telegram_rate_per_second,
            settings.telegram_group_per_minute,
            settings.telegram_chat_per_second,
        )
        self._file_ids: OrderedDict[bytes, str] = OrderedDict()
        # Photos being uploaded right now, and the file_id they will have (None if the upload failed).
        self._uploading: dict[bytes, asyncio.Future[str | None]] = {}

    @classmethod
    def build(
        cls,
        runtime: Runtime,
        token: str,
        api_url: str | None = None,
        file_url: str | None = None,
        concurrency: int = CONCURRENT_UPDATES,
    ) -> TelegramChannel:
        builder = (
            ApplicationBuilder()
            .token(token)
            .job_queue(None)
            .request(AiohttpRequest())
            .get_updates_request(AiohttpRequest(connection_pool_size=1))
        )
        if concurrency > 1:
            builder = builder.concurrent_updates(PerUserUpdateProcessor(concurrency))
        if api_url:
            builder = builder.base_url(api_url)
            builder = builder.base_file_url(file_url or api_url.replace("/bot", "/file/bot"))
        return cls(runtime, builder.build())

    async def start(self, poll_timeout: int = 10) -> None:
        await self.application.start()
        assert self.application.updater is not None
        await self.application.updater.start_polling(timeout=poll_timeout, drop_pending_updates=False)

    async def stop(self) -> None:
        assert self.application.updater is not None
        if self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()

    def deep_link(self, payload: str) -> str:
        return f"https://t.me/{self.application.bot.username}?start={payload}"

    # --- inbound -------------------------------------------------------------

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is not None and update.effective_chat is None:
            # A button under an inline-mode message: nothing of ours, but stop the spinner.
            await self._answer_query(query, None)
            return
        try:
            incoming = await self._to_incoming(update)
        except TelegramError:
            # Typically the photo could not be fetched: say so rather than stay silent.
            log.warning("could not read telegram update", exc_info=True)
            chat = update.effective_chat
            if chat is not None:
                language = self.runtime.community.default_language
                failed = Response([Reply(Text("error.internal"))], Text("error.internal"), language=language)
                incoming = Incoming(NAME, "", str(chat.id), "", is_group=chat.type != ChatType.PRIVATE)
                await self._answer(update, incoming, failed)
            return
        if incoming is None:
            return
        async with self._engine_slots:
            response = await self.runtime.engine.handle(incoming)
        await self._answer(update, incoming, response)

    async def _to_incoming(self, update: Update) -> Incoming | None:
        user = update.effective_user
        chat = update.effective_chat
        if user is None or chat is None or user.is_bot:
            return None
        base: dict[str, Any] = {
            "channel": NAME,
            "user_external_id": str(user.id),
            "chat_id": str(chat.id),
            "display_name": user.full_name,
            "is_group": chat.type != ChatType.PRIVATE,
            "language_hint": user.language_code,
        }
        if update.callback_query is not None:
            return Incoming(**base, action=update.callback_query.data or "")
        edited = update.edited_message
        if edited is not None and edited.location is not None and not base["is_group"]:
            # A location shared live moves by editing its message every few seconds.
            where = edited.location
            return Incoming(**base, location=Location(where.latitude, where.longitude), live=True)
        message = update.message
        if message is None:
            return None  # Other edits, channel posts, etc.
        text = message.text or message.caption
        if message.text:
            command = self._command(message)
            if command is not None:
                name, args = command
                if not name:
                    return None  # A command for another bot in the group.
                return Incoming(**base, command=name, args=args)
            menu = self.runtime.translator.menu_command(message.text)
            if menu is not None and not base["is_group"]:
                return Incoming(**base, command=menu)
        if message.photo:
            file = await message.photo[-1].get_file()
            data = bytes(await file.download_as_bytearray())
            return Incoming(**base, photo=data, text=message.caption)
        if message.location is not None:
            return Incoming(**base, location=Location(message.location.latitude, message.location.longitude))
        for kind in UNSUPPORTED_KINDS:
            if getattr(message, kind, None):
                return Incoming(**base, unsupported=kind)
        if text is None:
            return Incoming(**base, unsupported="other")
        return Incoming(**base, text=text)

    def _command(self, message: Message) -> tuple[str, str] | None:
        """("name", "args") for a /command, ("", "") for one addressed to another bot.

        Telegram marks a real command with a bot_command entity at offset 0; text
        that merely starts with "/" (a path, "/ ok") is ordinary text.
        """
        text = message.text or ""
        entity = next(
            (e for e in message.entities if e.type == MessageEntity.BOT_COMMAND and e.offset == 0), None
        )
        if entity is None:
            return None
        head = message.parse_entity(entity)
        name, _, target = head[1:].partition("@")
        if not name:
            return None
        if target and target.lower() != (self.application.bot.username or "").lower():
            return "", ""
        # Arguments may follow on the next line as well as after a space.
        return name.lower(), text[len(head) :].strip()

    async def _answer(self, update: Update, incoming: Incoming, response: Response) -> None:
        translator = self.runtime.translator
        language = response.language
        query = update.callback_query
        if query is None:
            await self._reply(incoming, language, response.replies)
            return
        notice = translator.text(language, response.notice, self.deep_link) if response.notice else None
        # The toast and the next message are independent: one round trip instead of two.
        await asyncio.gather(
            self._answer_query(query, notice), self._reply(incoming, language, response.replies)
        )

    async def _reply(self, incoming: Incoming, language: str, replies: Sequence[Reply]) -> None:
        translator = self.runtime.translator
        for index, reply in enumerate(replies):
            rendered = translator.render(language, reply, self.deep_link)
            try:
                photos = await self._photos(reply.photos)
                await self.send(incoming.chat_id, rendered, photos, group=incoming.is_group, reply=True)
            except Undeliverable:
                log.info("direct reply undeliverable", extra={"chat": incoming.chat_id})
                return
            except (DeliveryError, OSError, TimeoutError):
                # Flood limits or a network hiccup: the rest goes through the outbox, in
                # order, instead of being lost with the request that failed.
                log.warning("direct reply deferred to the outbox", extra={"chat": incoming.chat_id})
                await self._defer(incoming.chat_id, language, replies[index:])
                return

    async def _answer_query(self, query: CallbackQuery, notice: str | None) -> None:
        try:
            # answerCallbackQuery takes at most 200 characters of text.
            await query.answer(
                _fit(notice, CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH) if notice else None
            )
        except TelegramError:
            log.info("callback answer failed", extra={"query": query.id})

    async def _defer(self, chat_id: str, language: str, replies: Sequence[Reply]) -> None:
        now = self.runtime.clock.now()
        async with self.runtime.database.transaction() as connection:
            outbox = Repos(connection).outbox
            for reply in replies:
                await outbox.enqueue(NAME, chat_id, language, notify.MESSAGE, reply_to_json(reply), now)
        self.runtime.delivery.wake()

    async def _photos(self, media_ids: tuple[int, ...]) -> list[bytes]:
        if not media_ids:
            return []
        photos = []
        async with self.runtime.database.transaction() as connection:
            repos = Repos(connection)
            for media_id in media_ids:
                data = await self.runtime.media.read(repos, media_id)
                if data is not None:
                    photos.append(data)
        return photos

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram update failed", exc_info=context.error)

    # --- outbound ------------------------------------------------------------

    def _markup(self, message: RenderedMessage, group: bool) -> Any:
        if message.buttons:
            return InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(b.label, url=b.url)
                        if b.url
                        else InlineKeyboardButton(b.label, callback_data=b.action)
                        for b in row
                    ]
                    for row in message.buttons
                ]
            )
        return self._reply_keyboard(message, group)

    @staticmethod
    def _reply_keyboard(message: RenderedMessage, group: bool) -> Any:
        if group:
            return None  # Reply keyboards would pop up for everyone in the group.
        if message.keyboard == "main":
            return ReplyKeyboardMarkup([message.keyboard_labels], resize_keyboard=True, is_persistent=True)
        if message.keyboard == "location":
            return ReplyKeyboardMarkup(
                [[KeyboardButton(message.keyboard_labels[0], request_location=True)]],
                resize_keyboard=True,
                one_time_keyboard=True,
            )
        if message.keyboard == "remove":
            return ReplyKeyboardRemove()
        return None

    async def send(
        self,
        chat_id: str,
        message: RenderedMessage,
        photos: list[bytes],
        group: bool | None = None,
        *,
        reply: bool = False,
    ) -> str:
        """Send `message` (in as many calls as it takes) within the flood limits; returns its ref.

        `reply` says it answers what the person just did (see FloodControl).
        """
        is_group = chat_id.startswith("-") if group is None else group
        calls, main, prefix = self._calls(chat_id, message, photos, is_group)
        turn = _Turn(chat_id, is_group, reply, len(calls))
        try:
            sent: Message | dict[str, Any] | None = None
            for index, call in enumerate(calls):
                windows = await self.flood.enter(turn)
                try:
                    answer = await call()
                except RetryAfter:
                    self.flood.bot.slow_down()
                    raise
                finally:
                    self.flood.leave(windows)
                if index == main:
                    sent = answer
        except TelegramError as error:
            raise _translate(error) from error
        assert sent is not None
        message_id = int(sent["message_id"]) if isinstance(sent, dict) else sent.message_id
        ref = prefix + str(message_id)
        if message.pin and is_group:
            await self._pin(chat_id, message_id)
        return ref

    def _calls(
        self, chat_id: str, message: RenderedMessage, photos: list[bytes], is_group: bool
    ) -> tuple[list[Callable[[], Awaitable[Message | dict[str, Any]]]], int, str]:
        """The Bot API calls that make up `message`, which of them is the message itself
        (with the buttons; its id is the ref) and the ref's prefix."""
        bot = self.application.bot
        markup = self._markup(message, is_group)
        calls: list[Callable[[], Awaitable[Message | dict[str, Any]]]] = []

        def photo(data: bytes, **extra: Any) -> Callable[[], Awaitable[Message]]:
            return lambda: self._send_photo(chat_id, data, **extra)

        def text(chunk: str, **extra: Any) -> Callable[[], Awaitable[dict[str, Any]]]:
            # Of sendMessage's answer only the message_id is used: taking the JSON as it is
            # skips building a Message with its chat, sender and keyboard, a fifth of a send.
            arguments = {"chat_id": chat_id, "text": chunk, **extra}
            return lambda: bot.do_api_request("sendMessage", api_kwargs=arguments)

        document = message.document
        if document is not None:
            calls.extend(photo(extra) for extra in photos)
            caption: str | None = message.text
            if _utf16_len(message.text) > MessageLimit.CAPTION_LENGTH:
                calls.extend(text(chunk) for chunk in _split(message.text, MessageLimit.MAX_TEXT_LENGTH))
                caption = None
            calls.append(
                lambda: bot.send_document(
                    chat_id, document.data, filename=document.filename, caption=caption, reply_markup=markup
                )
            )
            return calls, len(calls) - 1, CAPTION_PREFIX
        if photos and _utf16_len(message.text) <= MessageLimit.CAPTION_LENGTH:
            calls.extend(photo(extra) for extra in photos[1:])
            calls.append(photo(photos[0], caption=message.text, reply_markup=markup))
            main, prefix = len(calls) - 1, CAPTION_PREFIX
        else:
            calls.extend(photo(extra) for extra in photos)
            chunks = _split(message.text, MessageLimit.MAX_TEXT_LENGTH)
            calls.extend(text(chunk) for chunk in chunks[:-1])
            calls.append(text(chunks[-1], reply_markup=markup))
            main, prefix = len(calls) - 1, ""
        if message.buttons and message.keyboard == "location" and not is_group:
            # A message carries one markup: inline buttons or a reply keyboard. The
            # location request only exists as a reply keyboard, so it follows on a
            # message of its own, labelled like its button.
            keyboard = self._reply_keyboard(message, is_group)
            calls.append(text(message.keyboard_labels[0], reply_markup=keyboard))
        return calls, main, prefix

    async def _send_photo(self, chat_id: str, data: bytes, **extra: Any) -> Message:
        """Upload a photo the first time; after that, send it by the file_id Telegram gave it.

        An alert with a photo to ten thousand people is then one upload, not ten thousand.
        """
        bot = self.application.bot
        key = hashlib.sha256(data).digest()
        file_id = self._file_ids.get(key)
        if file_id is None and key in self._uploading:
            # The copies sent alongside wait for the first upload rather than upload it again.
            file_id = await asyncio.shield(self._uploading[key])
        if file_id is not None:
            try:
                return await bot.send_photo(chat_id, file_id, **extra)
            except BadRequest as error:
                if "file" not in error.message.lower():
                    raise
                self._file_ids.pop(key, None)  # Telegram no longer knows it: upload again
        uploaded: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._uploading.setdefault(key, uploaded)
        file_id = None
        try:
            sent = await bot.send_photo(chat_id, data, **extra)
            if sent.photo:
                file_id = sent.photo[-1].file_id
                self._file_ids[key] = file_id
                self._file_ids.move_to_end(key)
                while len(self._file_ids) > FILE_ID_CACHE:
                    self._file_ids.popitem(last=False)
            return sent
        finally:
            if self._uploading.get(key) is uploaded:
                del self._uploading[key]
            uploaded.set_result(file_id)

    async def _pin(self, chat_id: str, message_id: int) -> None:
        try:
            # Pinned with a notification: only urgent alerts are pinned.
            await self.application.bot.pin_chat_message(chat_id, message_id, disable_notification=False)
        except TelegramError as error:
            # Not an admin, or members may not pin here: the alert itself went out, which is what counts.
            log.info("could not pin", extra={"chat": chat_id, "error": str(error)})

    async def edit(self, chat_id: str, message_ref: str, message: RenderedMessage) -> None:
        bot = self.application.bot
        markup = self._markup(message, True) or InlineKeyboardMarkup([])
        try:
            if message_ref.startswith(CAPTION_PREFIX):
                await bot.edit_message_caption(
                    chat_id,
                    int(message_ref[1:]),
                    caption=_fit(message.text, MessageLimit.CAPTION_LENGTH),
                    reply_markup=markup,
                )
            else:
                await bot.edit_message_text(
                    _fit(message.text, MessageLimit.MAX_TEXT_LENGTH),
                    chat_id,
                    int(message_ref),
                    reply_markup=markup,
                )
        except BadRequest as error:
            if "not modified" in error.message.lower():
                return  # The card already shows this state: a repeated edit is harmless.
            raise _translate(error) from error
        except TelegramError as error:
            raise _translate(error) from error


# Telegram measures texts in UTF-16 code units: an emoji such as 📋 counts twice.
def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fitting(text: str, limit: int) -> int:
    """How many characters of `text` fit into `limit` UTF-16 code units."""
    if len(text) * 2 <= limit:
        return len(text)
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _fit(text: str, limit: int) -> str:
    return text[: _fitting(text, limit)]


def _split(text: str, limit: int) -> list[str]:
    chunks, rest = [], text
    while (fits := _fitting(rest, limit)) < len(rest):
        cut = rest.rfind("\n", 0, fits)
        cut = cut if cut > 0 else fits
        chunks.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    return [*chunks, rest]


def _translate(error: TelegramError) -> DeliveryError:
    if isinstance(error, RetryAfter):
        return RetryLater(
            float(
                error.retry_after.total_seconds()
                if hasattr(error.retry_after, "total_seconds")
                else error.retry_after
            )
        )
    if isinstance(error, Forbidden):
        return Undeliverable(error.message, blocked=True)
    if isinstance(error, BadRequest):
        return Undeliverable(error.message)
    if isinstance(error, NetworkError):
        return DeliveryError(error.message)
    return DeliveryError(str(error))
