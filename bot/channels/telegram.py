"""Telegram adapter: PTB updates in, neutral inputs to the engine, rendered replies out."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ChatType, MessageLimit
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot.channels.base import DeliveryError, RetryLater, Undeliverable
from bot.i18n import RenderedMessage
from handlers.messages import Incoming, Location, Response

if TYPE_CHECKING:
    from bot.app import Runtime

log = logging.getLogger(__name__)

NAME = "telegram"
CAPTION_PREFIX = "c"
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


class TelegramChannel:
    name = NAME

    def __init__(self, runtime: Runtime, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        self.runtime = runtime
        self.application = application
        application.add_handler(TypeHandler(Update, self._on_update))
        application.add_error_handler(self._on_error)

    @classmethod
    def build(
        cls, runtime: Runtime, token: str, api_url: str | None = None, file_url: str | None = None
    ) -> TelegramChannel:
        builder = ApplicationBuilder().token(token).job_queue(None)
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
        incoming = await self._to_incoming(update)
        if incoming is None:
            return
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
        message = update.message
        if message is None:
            return None  # Edited messages, channel posts, etc.
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
        """("name", "args") for a /command, ("", "") for one addressed to another bot."""
        text = message.text or ""
        if not text.startswith("/"):
            return None
        head, _, args = text.partition(" ")
        name, _, target = head[1:].partition("@")
        if target and target.lower() != (self.application.bot.username or "").lower():
            return "", ""
        return name.lower(), args.strip()

    async def _answer(self, update: Update, incoming: Incoming, response: Response) -> None:
        translator = self.runtime.translator
        language = response.language
        query = update.callback_query
        if query is not None:
            notice = translator.text(language, response.notice, self.deep_link) if response.notice else None
            try:
                await query.answer(notice[:200] if notice else None)
            except TelegramError:
                log.info("callback answer failed", extra={"chat": incoming.chat_id})
        for reply in response.replies:
            rendered = translator.render(language, reply, self.deep_link)
            photos = await self._photos(reply.photos)
            try:
                await self.send(incoming.chat_id, rendered, photos, group=incoming.is_group)
            except DeliveryError:
                log.warning("direct reply failed", extra={"chat": incoming.chat_id})

    async def _photos(self, media_ids: tuple[int, ...]) -> list[bytes]:
        if not media_ids:
            return []
        photos = []
        async with self.runtime.database.transaction() as connection:
            from storage.repositories import Repos

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
        self, chat_id: str, message: RenderedMessage, photos: list[bytes], group: bool | None = None
    ) -> str:
        bot = self.application.bot
        is_group = chat_id.startswith("-") if group is None else group
        markup = self._markup(message, is_group)
        try:
            if photos and len(message.text) <= MessageLimit.CAPTION_LENGTH:
                for extra in photos[1:]:
                    await bot.send_photo(chat_id, extra)
                sent = await bot.send_photo(chat_id, photos[0], caption=message.text, reply_markup=markup)
                return CAPTION_PREFIX + str(sent.message_id)
            for extra in photos:
                await bot.send_photo(chat_id, extra)
            chunks = _split(message.text, MessageLimit.MAX_TEXT_LENGTH)
            for chunk in chunks[:-1]:
                await bot.send_message(chat_id, chunk)
            sent = await bot.send_message(chat_id, chunks[-1], reply_markup=markup)
            return str(sent.message_id)
        except TelegramError as error:
            raise _translate(error) from error

    async def edit(self, chat_id: str, message_ref: str, message: RenderedMessage) -> None:
        bot = self.application.bot
        markup = self._markup(message, True) or InlineKeyboardMarkup([])
        try:
            if message_ref.startswith(CAPTION_PREFIX):
                await bot.edit_message_caption(
                    chat_id,
                    int(message_ref[1:]),
                    caption=message.text[: MessageLimit.CAPTION_LENGTH],
                    reply_markup=markup,
                )
            else:
                await bot.edit_message_text(
                    message.text[: MessageLimit.MAX_TEXT_LENGTH],
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


def _split(text: str, limit: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    chunks, rest = [], text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        cut = cut if cut > 0 else limit
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
