"""Telegram adapter: PTB updates in, neutral inputs to the engine, rendered replies out."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
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

from bot.channels.base import (
    BUSY_RETRY_SECONDS,
    Busy,
    DeliveryError,
    Host,
    RetryLater,
    Transient,
    Undeliverable,
)
from bot.channels.telegram_flood import FloodControl, Turn
from bot.channels.telegram_request import AiohttpRequest
from bot.i18n import RenderedMessage, Translator
from bot.metrics import PlatformMonitor
from handlers.messages import Incoming, Location, Reply, Response, Text
from handlers.registry import Lane

log = logging.getLogger(__name__)

NAME = "telegram"
# Updates of different people handled at once; one person's always in order.
CONCURRENT_UPDATES = 64
# Outbox rows the delivery worker may have on their way at once: enough to keep the flood
# limits busy across Bot API round trips of a few hundred milliseconds.
MAX_IN_FLIGHT = 32
# Photos already on Telegram's servers are sent again by file_id instead of being uploaded again.
FILE_ID_CACHE = 256
CAPTION_PREFIX = "c"
# Texts are sent with Bot.do_api_request, which PTB asks to use only for methods it lacks.
warnings.filterwarnings("ignore", r"Please use 'Bot\.sendMessage'", PTBUserWarning)
# The update kinds _on_update reads; asked for in polling and webhook mode alike, so that
# switching modes never leaves Telegram sending (or holding back) others.
ALLOWED_UPDATES = (Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY)
# Where the web app takes Telegram's webhook posts.
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# The longest a webhook post waits for its update to be handled before it is answered.
WEBHOOK_ANSWER_WITHIN = 5.0
# Update ids of recent webhook posts remembered, so that one posted again is not handled twice.
RECENT_UPDATES = 1024
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


@dataclass(frozen=True)
class Webhook:
    """Where Telegram posts updates (the public https URL) and the secret it sends along."""

    url: str
    secret: str


class TelegramChannel:
    name = NAME
    max_in_flight = MAX_IN_FLIGHT

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        host: Host,
        translator: Translator,
        flood: FloodControl,
        requests: Sequence[AiohttpRequest] = (),
        webhook: Webhook | None = None,
    ) -> None:
        self.application = application
        self._requests = tuple(requests)
        self.webhook = webhook
        # Updates posted to the webhook being handled (kept referenced until they are).
        self._posted: set[asyncio.Task[None]] = set()
        self._recent: OrderedDict[int, None] = OrderedDict()
        self.host = host
        self.translator = translator
        self.flood = flood
        application.add_handler(TypeHandler(Update, self._on_update))
        application.add_error_handler(self._on_error)
        self._file_ids: OrderedDict[bytes, str] = OrderedDict()
        # Photos being uploaded right now, and the file_id they will have (None if the upload failed).
        self._uploading: dict[bytes, asyncio.Future[str | None]] = {}

    @classmethod
    def build(
        cls,
        host: Host,
        translator: Translator,
        flood: FloodControl,
        token: str,
        api_url: str | None = None,
        file_url: str | None = None,
        concurrency: int = CONCURRENT_UPDATES,
        monitor: PlatformMonitor | None = None,
        timeout: float = 5.0,
        webhook: Webhook | None = None,
    ) -> TelegramChannel:
        requests = (
            AiohttpRequest(read_timeout=timeout, connect_timeout=timeout, monitor=monitor),
            AiohttpRequest(connection_pool_size=1, monitor=monitor),
        )
        builder = (
            ApplicationBuilder()
            .token(token)
            .job_queue(None)
            # Not PTB's HTTPXRequest: see bot/channels/telegram_request.py for the measurements.
            .request(requests[0])
            .get_updates_request(requests[1])
        )
        if concurrency > 1:
            builder = builder.concurrent_updates(PerUserUpdateProcessor(concurrency))
        if api_url:
            builder = builder.base_url(api_url)
            builder = builder.base_file_url(file_url or api_url.replace("/bot", "/file/bot"))
        return cls(builder.build(), host, translator, flood, requests, webhook)

    async def initialize(self) -> None:
        """PTB's Application.initialize (getMe: the token checked, the Bot API reached), leaving no
        HTTP session open when it fails: PTB's shutdown only closes what initialized completely."""
        try:
            await self.application.initialize()
        except BaseException:
            for request in self._requests:
                await request.shutdown()
            raise

    async def start(self, poll_timeout: int = 10) -> None:
        """Take updates: from the webhook route when a webhook is configured, else by polling."""
        bot = self.application.bot
        webhook = self.webhook
        if webhook is not None:
            # Every process behind the webhook URL says the same: setting it again is harmless.
            await bot.set_webhook(
                webhook.url,
                secret_token=webhook.secret,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
            )
            await self.application.start()
            return
        await self.application.start()
        assert self.application.updater is not None
        # Telegram refuses getUpdates while a webhook is set; start_polling's bootstrap calls
        # deleteWebhook first (documented under bootstrap_retries), so switching back to polling
        # works, and drop_pending_updates=False keeps what waited at Telegram meanwhile.
        await self.application.updater.start_polling(
            timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False
        )

    async def stop(self) -> None:
        assert self.application.updater is not None
        if self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()
        # Posted updates still being handled: after the stop, so that a wait for a busy
        # database gives up (it waits only while the application runs).
        await asyncio.gather(*self._posted, return_exceptions=True)

    def routes(self) -> list[Route]:
        """The webhook route for the bot's web app (none when polling)."""
        if self.webhook is None:
            return []
        return [Route(WEBHOOK_PATH, self._on_webhook, methods=["POST"])]

    async def _on_webhook(self, request: Request) -> PlainTextResponse:
        """An update Telegram posts: checked, then handled through the update processor, as
        polled updates are (behind the same person's earlier ones), and answered when handled."""
        assert self.webhook is not None
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.webhook.secret.encode()):
            return PlainTextResponse("forbidden", status_code=403)
        if not self.application.running:
            # Starting or stopping: Telegram tries again later, perhaps at another process.
            return PlainTextResponse("not running", status_code=503)
        try:
            data = json.loads(await request.body())
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an update")
            update = Update.de_json(data, self.application.bot)
        except Exception:  # whatever PTB makes of a malformed body: it is not an update
            return PlainTextResponse("not an update", status_code=400)
        if update.update_id in self._recent:
            # Posted again because our answer did not reach Telegram: taken already.
            return PlainTextResponse("ok")
        self._recent[update.update_id] = None
        if len(self._recent) > RECENT_UPDATES:
            self._recent.popitem(last=False)
        application = self.application
        handling = asyncio.create_task(
            application.update_processor.process_update(update, application.process_update(update))
        )
        self._posted.add(handling)
        handling.add_done_callback(self._handled)
        # Telegram posts a chat's next update once this one is answered: answering when it is
        # handled keeps a person's order even across processes behind one URL. A slow one (a
        # photo, a busy database) is answered after WEBHOOK_ANSWER_WITHIN all the same and goes
        # on; a late answer would count as failed, and Telegram would post the update again.
        await asyncio.wait({handling}, timeout=WEBHOOK_ANSWER_WITHIN)
        return PlainTextResponse("ok")

    def _handled(self, handling: asyncio.Task[None]) -> None:
        self._posted.discard(handling)
        if not handling.cancelled() and handling.exception() is not None:
            log.error("telegram update failed", exc_info=handling.exception())

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
                language = self.host.default_language
                failed = Response([Reply(Text("error.internal"))], Text("error.internal"), language=language)
                incoming = Incoming(NAME, "", str(chat.id), "", is_group=chat.type != ChatType.PRIVATE)
                await self._answer(update, incoming, failed)
            return
        if incoming is None:
            return
        response = await self.host.handle(incoming)
        if response.busy:
            response = await self._when_free(update, incoming, response)
            if response.busy:
                return  # the bot is stopping
        await self._answer(update, incoming, response)

    async def _when_free(self, update: Update, incoming: Incoming, busy: Response) -> Response:
        """The database is held by another process: say so once, then hand the same input to the
        engine again until it goes through. Telegram has handed the update over already, so it is
        kept here; this person's later updates wait behind it, in their order."""
        await self._say_busy(update, incoming, busy)
        response = busy
        while response.busy and self.application.running:
            await asyncio.sleep(BUSY_RETRY_SECONDS)
            response = await self.host.handle(incoming)
        return response

    async def _say_busy(self, update: Update, incoming: Incoming, busy: Response) -> None:
        """Straight to Telegram: the outbox, where a failed reply would go, is in the locked database."""
        translator = self.translator
        query = update.callback_query
        if query is not None and busy.notice is not None:
            await self._answer_query(query, translator.text(busy.language, busy.notice, self.deep_link))
            return
        try:
            for reply in busy.replies:
                rendered = translator.render(busy.language, reply, self.deep_link)
                await self.send(incoming.chat_id, rendered, [], group=incoming.is_group, reply=True)
        except (DeliveryError, OSError, TimeoutError):
            log.info("could not say the database is busy", extra={"chat": incoming.chat_id})

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
            menu = self.translator.menu_command(message.text)
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
        translator = self.translator
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
        translator = self.translator
        for index, reply in enumerate(replies):
            rendered = translator.render(language, reply, self.deep_link)
            try:
                photos = await self.host.photos(reply.photos)
                await self.send(incoming.chat_id, rendered, photos, group=incoming.is_group, reply=True)
            except Undeliverable:
                log.info("direct reply undeliverable", extra={"chat": incoming.chat_id})
                return
            except (DeliveryError, OSError, TimeoutError):
                # Flood limits or a network hiccup: the rest goes through the outbox, in
                # order, instead of being lost with the request that failed.
                log.warning("direct reply deferred to the outbox", extra={"chat": incoming.chat_id})
                while True:
                    try:
                        await self.host.defer(NAME, incoming.chat_id, language, replies[index:])
                        return
                    except Busy:
                        # The input is handled already: its answer must not be dropped.
                        if not self.application.running:
                            raise
                        await asyncio.sleep(BUSY_RETRY_SECONDS)

    async def _answer_query(self, query: CallbackQuery, notice: str | None) -> None:
        try:
            # answerCallbackQuery takes at most 200 characters of text.
            await query.answer(
                _fit(notice, CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH) if notice else None
            )
        except TelegramError:
            log.info("callback answer failed", extra={"query": query.id})

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
        priority: int = 0,
    ) -> str:
        """Send `message` (in as many calls as it takes) within the flood limits; returns its ref.

        `reply` says it answers what the person just did (see FloodControl); `priority` is the
        outbox row's lane. With paid broadcasts on, an urgent alert's copy to a private chat
        goes with allow_paid_broadcast, paced by the paid rate.
        """
        is_group = chat_id.startswith("-") if group is None else group
        paid = self.flood.paid is not None and not is_group and not reply and priority == Lane.URGENT
        calls, main, prefix = self._calls(chat_id, message, photos, is_group, paid)
        turn = Turn(chat_id, is_group, reply, len(calls), priority=priority, paid=paid)
        try:
            sent: Message | dict[str, Any] | None = None
            for index, call in enumerate(calls):
                windows = await self.flood.enter(turn)
                try:
                    answer = await call()
                except RetryAfter:
                    self.flood.slow_down(windows)
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
        self, chat_id: str, message: RenderedMessage, photos: list[bytes], is_group: bool, paid: bool
    ) -> tuple[list[Callable[[], Awaitable[Message | dict[str, Any]]]], int, str]:
        """The Bot API calls that make up `message`, which of them is the message itself
        (with the buttons; its id is the ref) and the ref's prefix. `paid`: every call of it
        goes with allow_paid_broadcast (each counts against the limits)."""
        bot = self.application.bot
        markup = self._markup(message, is_group)
        calls: list[Callable[[], Awaitable[Message | dict[str, Any]]]] = []
        broadcast: dict[str, Any] = {"allow_paid_broadcast": True} if paid else {}

        def photo(data: bytes, **extra: Any) -> Callable[[], Awaitable[Message]]:
            return lambda: self._send_photo(chat_id, data, **broadcast, **extra)

        def text(chunk: str, **extra: Any) -> Callable[[], Awaitable[dict[str, Any]]]:
            # Of sendMessage's answer only the message_id is used: taking the JSON as it is
            # skips building a Message with its chat, sender and keyboard, a fifth of a send.
            arguments = {"chat_id": chat_id, "text": chunk, **broadcast, **extra}
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
                    chat_id,
                    document.data,
                    filename=document.filename,
                    caption=caption,
                    reply_markup=markup,
                    **broadcast,
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
        # Time-outs, refused connections and the Bot API's 5xx answers (PTB raises NetworkError
        # for those): an outage, which the outbox waits out.
        return Transient(error.message)
    return DeliveryError(str(error))
