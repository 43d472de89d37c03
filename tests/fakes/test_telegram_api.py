"""End-to-end checks of the fake Bot API against the real python-telegram-bot stack."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, EndPointNotFound, Forbidden, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes.telegram_api import BOT_ID, FakeBotApi

TOKEN = "123:abc"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None and update.effective_message.text is not None
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("OK", callback_data="ack")]])
    await update.effective_message.reply_text(update.effective_message.text, reply_markup=keyboard)


async def _ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text("pong")


async def _on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer("thanks")
    await query.edit_message_text(f"acknowledged: {query.data}")


async def _describe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    if message.location is not None:
        kind = f"location {message.location.latitude},{message.location.longitude}"
    else:
        kind = "sticker" if message.sticker else "voice" if message.voice else "?"
    await message.reply_text(kind)


async def _on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    data = await (await message.photo[-1].get_file()).download_as_bytearray()
    await message.reply_text(f"{len(data)} bytes, caption={message.caption}")


def _build(api: FakeBotApi) -> Application:  # type: ignore[type-arg]
    app = ApplicationBuilder().token(TOKEN).base_url(api.base_url).base_file_url(api.base_file_url).build()
    app.add_handler(CommandHandler("ping", _ping))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, _echo))
    app.add_handler(MessageHandler(filters.PHOTO, _on_photo))
    app.add_handler(MessageHandler(filters.LOCATION | filters.Sticker.ALL | filters.VOICE, _describe))
    app.add_handler(CallbackQueryHandler(_on_button))
    return app


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as fake:
        yield fake


async def test_real_application_round_trip(api: FakeBotApi) -> None:
    app = _build(api)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            assert app.bot.id == BOT_ID
            assert app.bot.username == "shouwang_test_bot"

            api.push_text(7, "hello 守望")
            await api.until_idle()
            [echo] = api.sent_messages(7)
            assert echo.text == "hello 守望"
            assert echo.callback_data == ["ack"]

            api.push_callback(7, 7, echo.message_id, "ack")
            await api.until_idle()
            edited = api.message(7, echo.message_id)
            assert edited.text == "acknowledged: ack"
            assert edited.reply_markup is None  # an edit without markup drops the keyboard
            assert len(edited.edits) == 1
            [answer] = api.answered_callbacks.values()
            assert answer["text"] == "thanks"

            api.push_photo(7, PNG_BYTES, caption="look")
            await api.until_idle()
            assert api.sent_messages(7)[-1].text == f"{len(PNG_BYTES)} bytes, caption=look"

            api.push_text(7, "/ping")
            api.push_text(9, "/ping@shouwang_test_bot", chat_id=-1001234)
            await api.until_idle()
            assert api.sent_messages(7)[-1].text == "pong"
            [group_reply] = api.sent_messages(-1001234)
            assert group_reply.text == "pong"

            api.push_location(7, 31.5, 121.25, live_period=600)
            api.push_sticker(7)
            api.push_voice(7)
            await api.until_idle()
            assert [m.text for m in api.sent_messages(7)[-3:]] == ["location 31.5,121.25", "sticker", "voice"]

            # Message ids count per chat and include the users' own messages.
            assert [m.message_id for m in api.sent_messages(7)][:3] == [2, 4, 6]
            assert api.calls_of("sendMessage")[0].params["chat_id"] == 7
        finally:
            await app.updater.stop()
            await app.stop()
    assert not api.calls_of("getUpdates")[-1].rejected


async def test_errors_match_telegram(api: FakeBotApi) -> None:
    app = _build(api)
    async with app:
        bot = app.bot

        with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
            await bot.edit_message_text("x", chat_id=5, message_id=99)
        sent = await bot.send_message(5, "same")
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot.edit_message_text("same", chat_id=5, message_id=sent.message_id)

        api.blocked_users.add(6)
        with pytest.raises(Forbidden, match=r"(?i)blocked by the user"):
            await bot.send_message(6, "hi")
        assert api.calls[-1].rejected and api.calls[-1].status == 403
        assert api.sent_messages(6) == []

        with pytest.raises(EndPointNotFound):
            await bot.do_api_request("noSuchMethod")

        api.configure_rate_limits(per_chat_per_second=1)
        with pytest.raises(RetryAfter) as caught:
            for i in range(5):
                await bot.send_message(8, f"flood {i}")
        assert caught.value.retry_after == 1
        assert [m.text for m in api.sent_messages(8)] == ["flood 0"]
        assert api.calls[-1].rejected and api.calls[-1].status == 429

        api.configure_rate_limits(per_group_per_minute=2)
        await bot.send_message(-42, "a")
        await bot.send_message(-42, "b")
        with pytest.raises(RetryAfter):
            await bot.send_message(-42, "c")


async def test_photo_upload_reuse_and_download(api: FakeBotApi) -> None:
    app = _build(api)
    async with app:
        first = await app.bot.send_photo(3, PNG_BYTES, caption="map")
        assert len(first.photo) >= 2
        upload = api.calls_of("sendPhoto")[0]
        assert upload.files["photo"] == PNG_BYTES

        again = await app.bot.send_photo(3, first.photo[-1].file_id)
        assert again.photo[-1].file_id == first.photo[-1].file_id
        sent = api.sent_messages(3)
        assert [m.photo for m in sent] == [PNG_BYTES, PNG_BYTES]
        assert sent[0].caption == "map"

        await app.bot.edit_message_caption(3, first.message_id, caption="new map")
        assert api.message(3, first.message_id).caption == "new map"

        file = await app.bot.get_file(first.photo[0].file_id)
        assert bytes(await file.download_as_bytearray()) == PNG_BYTES

        with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
            await app.bot.send_photo(3, "no-such-file-id")

        async with httpx.AsyncClient() as client:
            missing = await client.get(f"{api.base_file_url}{TOKEN}/photos/nothing.jpg")
        assert missing.status_code == 404


async def test_wait_helpers(api: FakeBotApi) -> None:
    await api.until_idle(timeout=1)  # nothing pushed, nothing in flight
    with pytest.raises(AssertionError, match="condition not met"):
        await api.wait_for(lambda: api.sent_messages(), timeout=0.05)
    api.push_location(11, 31.23, 121.47, live_period=600)
    with pytest.raises(AssertionError, match="unconfirmed updates: 1"):
        await api.until_idle(timeout=0.05)
    with pytest.raises(ValueError, match="bot sent no"):
        api.push_callback(11, 11, 1, "x")


async def test_polling_is_refused_while_a_webhook_is_set(api: FakeBotApi) -> None:
    """As on Telegram: getUpdates answers 409 Conflict until deleteWebhook."""
    async with httpx.AsyncClient(base_url=f"{api.base_url}{TOKEN}") as client:
        hook = {"url": "https://bot.example.org/telegram/webhook", "secret_token": "s3cret"}
        assert (await client.post("/setWebhook", data=hook)).json() == {"ok": True, "result": True}
        refused = await client.post("/getUpdates", data={"timeout": "0"})
        assert refused.status_code == 409 and "webhook is active" in refused.json()["description"]
        bad = await client.post("/setWebhook", data={"url": "http://bot.example.org/telegram/webhook"})
        assert bad.status_code == 400
        await client.post("/deleteWebhook")
        polled = await client.post("/getUpdates", data={"timeout": "0"})
    assert polled.json() == {"ok": True, "result": []}
    assert api.calls_of("setWebhook")[0].params == hook
