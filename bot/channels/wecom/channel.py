"""The WeChat Work (企业微信) channel: stored callbacks to the engine, neutral replies rendered out.

Inbound: the callback endpoint (callback.py) stores each verified message in the
inbox; this channel's worker then feeds the stored messages to the engine. A
numbered text menu stands in for buttons, with a button card alongside; numbers are
unique among a chat's open menus (storage/inbox.py, MenuRepo), so a reply of "5"
cannot act on another card than the one that showed it. Outbound: every reply goes through the outbox, so rate
limits and token expiry are retried rather than lost. Police groups are reached
through group robots (群机器人, ``robot:<key>``) or app group chats (``appchat:<chatid>``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import httpx

from bot.channels.base import BUSY_RETRY_SECONDS, Busy, DeliveryError, Host, Inbox, RetryLater, Undeliverable
from bot.channels.wecom.api import MAX_RECIPIENTS, WeComApi, WeComConfig, WeComError
from bot.channels.wecom.callback import CallbackEndpoint
from bot.channels.wecom.crypto import CallbackCrypto
from bot.channels.wecom.fit import fit, fit_bytes
from bot.channels.wecom.pacing import Progress, Window, content_digest, fingerprint, progress_key
from bot.i18n import RenderedMessage, Translator
from bot.metrics import PlatformMonitor
from handlers.messages import Document, Incoming, Location, Reply, Text

log = logging.getLogger(__name__)

NAME = "wecom"
ROBOT_PREFIX = "robot:"
APPCHAT_PREFIX = "appchat:"
TEXT_LIMIT_BYTES = 2048
# A member hears from one app at most 30 times a minute; beyond that WeChat Work drops silently.
PER_MEMBER_PER_MINUTE = 30
# Outbox rows on their way at once (a batch of up to 1,000 members counts as one).
MAX_IN_FLIGHT = 4
PER_ROBOT_PER_MINUTE = 20
CARD_MAX_BUTTONS = 6
MENU_DIGITS = 4
# What a button card shows in full (WeChat Work's documented advice for its title and buttons).
CARD_TITLE_CHARS = 26
CARD_BUTTON_CHARS = 10
# Members whose names are kept in memory; the engine stores them on the person's row anyway.
NAME_CACHE_SIZE = 10_000


# One part of a message to members: sends it to the given members, returns the API's answer.
_MemberPart = Callable[[list[str]], Awaitable[dict[str, Any]]]


class WeComChannel:
    name = NAME
    max_in_flight = MAX_IN_FLIGHT
    max_batch = MAX_RECIPIENTS

    def __init__(
        self,
        config: WeComConfig,
        client: httpx.AsyncClient,
        host: Host,
        inbox: Inbox,
        translator: Translator,
        monitor: PlatformMonitor | None = None,
    ) -> None:
        self.config = config
        self.host = host
        self.inbox = inbox
        self.translator = translator
        self.api = WeComApi(config, client, monitor)
        self._wake = asyncio.Event()
        self._stopping = False
        self._processing = asyncio.Lock()
        # The last pass met a locked database: look again soon. Inbox ids whose sender was told.
        self._busy = False
        self._told_busy: set[int] = set()
        # The bot's clock, so tests that move time move these windows too.
        self._members = Window(PER_MEMBER_PER_MINUTE, self._seconds)
        self._robots = Window(PER_ROBOT_PER_MINUTE, self._seconds)
        self._progress = Progress()
        self._names: dict[str, str] = {}
        crypto = CallbackCrypto(config.token, config.aes_key, config.corp_id)
        self.endpoint = CallbackEndpoint(crypto, partial(inbox.accept, NAME), self._wake.set)

    def _seconds(self) -> float:
        return self.host.now().timestamp()

    def deep_link(self, payload: str) -> str:
        # No deep links in WeChat Work: the person sends the command to the app instead.
        return f"/start {payload}"

    # --- processing stored callbacks --------------------------------------------

    async def run(self) -> None:
        try:
            # A first contact, so /readyz can tell at once whether WeChat Work serves this app.
            await self.api.token()
        except DeliveryError as error:
            log.warning("wecom access token could not be fetched at start", extra={"error": str(error)})
        while not self._stopping:
            self._wake.clear()
            pause = 5.0
            try:
                await self.process_inbox()
            except Busy:
                log.warning("wecom inbox waits: the database is busy")
            except Exception:
                log.exception("wecom inbox processing failed")
            if self._busy:
                pause = BUSY_RETRY_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=pause)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def process_inbox(self) -> int:
        """Hand every stored callback to the engine, oldest first; returns how many were taken.

        While the database is held by another process, the first message that meets it stays in
        the inbox (with the rest behind it, in order), its sender is told once, and it is taken
        again on the next pass.
        """
        # One at a time: the worker loop and a direct call must not take the same rows.
        async with self._processing:
            self._busy = False
            pending = await self.inbox.pending(NAME)
            for taken, (inbox_id, message) in enumerate(pending):
                state = "done"
                try:
                    await self._process(message)
                except Busy as busy:
                    self._busy = True
                    if inbox_id not in self._told_busy:
                        self._told_busy.add(inbox_id)
                        await self._say_busy(message, busy)
                    return taken
                except Exception:
                    log.exception("wecom message failed", extra={"inbox_id": inbox_id})
                    state = "failed"
                await self._finish(inbox_id, state)
            return len(pending)

    async def _finish(self, inbox_id: int, state: str) -> None:
        await self._despite_busy(lambda: self.inbox.finish(inbox_id, state))
        self._told_busy.discard(inbox_id)

    async def _despite_busy(self, store: Callable[[], Awaitable[None]]) -> None:
        """Store what follows from a message the engine has handled, however long the database is
        held: given up, the message would stay pending and be handled a second time."""
        while True:
            try:
                await store()
                return
            except Busy:
                if self._stopping:
                    raise
                await asyncio.sleep(BUSY_RETRY_SECONDS)

    async def _say_busy(self, message: dict[str, Any], busy: Busy) -> None:
        """Straight to WeChat Work: the outbox, where replies wait, is in the locked database. A
        plain text, not `send`: the menu the person may be answering must stay as it is."""
        language = busy.language or self.host.default_language
        text = self.translator.text(language, Text("error.busy"), self.deep_link)
        body = {"touser": str(message["FromUserName"]), "agentid": self.config.agent_id}
        try:
            await self.api.call(
                "/cgi-bin/message/send", json={**body, "msgtype": "text", "text": {"content": text}}
            )
        except DeliveryError:
            log.info("could not say the database is busy")

    async def _process(self, message: dict[str, Any]) -> None:
        incoming = await self._to_incoming(message)
        if incoming is None:
            return
        response = await self.host.handle(incoming)
        if response.busy:
            raise Busy("the engine found the database busy", response.language)
        replies = list(response.replies)
        if response.notice is not None and not replies:
            # No toasts in WeChat Work: a refusal after a card click is said as a message.
            replies.append(Reply(response.notice))
        await self._despite_busy(lambda: self.host.defer(NAME, incoming.chat_id, response.language, replies))

    async def _to_incoming(self, message: dict[str, Any]) -> Incoming | None:
        user = str(message["FromUserName"])
        base: dict[str, Any] = {
            "channel": NAME,
            "user_external_id": user,
            "chat_id": user,
            "display_name": await self._name_of(user),
        }
        kind = str(message.get("MsgType", "")).lower()
        if kind == "text":
            text = str(message.get("Content") or "").strip()
            # isdecimal, not isdigit: "²" is a digit that int() refuses.
            # Four digits: an officer's numbers keep counting up while cards arrive unanswered.
            if text.isdecimal() and len(text) <= MENU_DIGITS:
                pick = await self.inbox.menu_pick(NAME, user, int(text))
                if pick is not None and pick.action is not None:
                    return Incoming(**base, action=pick.action)
                if pick is not None:
                    # Acting on whatever now has this number would be acting on something else.
                    await self.host.defer(NAME, user, pick.language, [Reply(Text("wecom.menu_gone"))])
                    return None
        incoming = await self._read(message, kind, base)
        if incoming is not None or kind != "event":
            # Anything else the person does answers (or passes over) the menus shown before;
            # a card's button answers that card only.
            clicked = incoming.action if incoming is not None and kind == "event" else None
            await self.inbox.menus_answered(NAME, user, clicked)
        return incoming

    async def _read(self, message: dict[str, Any], kind: str, base: dict[str, Any]) -> Incoming | None:
        if kind == "text":
            text = str(message.get("Content") or "").strip()
            if text.startswith("/"):
                word, _, args = text.partition(" ")
                return Incoming(**base, command=word[1:].lower(), args=args.strip())
            menu = self.translator.menu_command(text)
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

    async def _name_of(self, user: str) -> str:
        """The member's name as the contacts have it: callbacks carry only the UserID.

        Asked once per member and process; the engine keeps it on the person's row. When the
        contacts cannot be read (no permission, the API unreachable) the UserID stands in.
        """
        name = self._names.get(user)
        if name is None:
            try:
                name = await self.api.user_name(user) or user
            except DeliveryError:
                return user  # asked again next time
            if len(self._names) >= NAME_CACHE_SIZE:
                self._names.clear()
            self._names[user] = name
        return name

    # --- outbound -----------------------------------------------------------------

    async def send(
        self, chat_id: str, message: RenderedMessage, photos: list[bytes], *, priority: int = 0
    ) -> str:
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
        content = content_digest(message, photos)
        has_menu = any(message.buttons)
        # Each member's menu continues after the numbers still open in their chat, so members
        # whose chats differ get the text in separate calls (most have nothing open: one call).
        firsts = await self.inbox.menu_numbers(NAME, users) if has_menu else {}
        parts_from: dict[int, list[tuple[_MemberPart, bool]]] = {}
        results: dict[str, str | DeliveryError] = {}
        groups: dict[tuple[int, int], list[str]] = defaultdict(list)
        for user in users:
            first = firsts.get(user, 1)
            if first not in parts_from:
                parts_from[first] = self._member_parts(message, photos, first)
            parts = parts_from[first]
            done = self._progress.done(progress_key(user, content))
            try:
                self._members.take(user, len(parts) - done)
            except RetryLater as wait:
                results[user] = wait
                continue
            groups[(first, done)].append(user)
        for (first, done), group in groups.items():
            results.update(await self._run_member_parts(group, parts_from[first], done, content))
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
                    self._progress.stopped_at(progress_key(user, content), index)
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
            self._progress.finished(progress_key(user, content))
            results[user] = msgid
        return results

    def _member_parts(
        self, message: RenderedMessage, photos: list[bytes], first: int
    ) -> list[tuple[_MemberPart, bool]]:
        """The calls that make up a message to members, each marked whether it is the message itself.

        The numbered menu starts at `first`.
        """
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
            content = fit_bytes(with_numbered_menu(message, first), TEXT_LIMIT_BYTES)
            answer = await send(users, {"msgtype": "text", "text": {"content": content}})
            # Remembered once shown: the numbers in this text are what those replies mean now.
            invalid = {user for user in str(answer.get("invaliduser") or "").split("|") if user}
            reached = [user for user in users if user.lower() not in invalid]
            await self.inbox.remember_menu(NAME, reached, first, actions, secrets.token_hex(8))
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
        text = self._group_text(message)
        parts: list[Callable[[], Awaitable[None]]] = []
        for photo in photos[:1]:
            image = {"base64": base64.b64encode(photo).decode(), "md5": hashlib.md5(photo).hexdigest()}
            parts.append(partial(self.api.robot, key, {"msgtype": "image", "image": image}))
        parts.append(partial(self.api.robot, key, {"msgtype": "text", "text": {"content": text}}))
        progress_key = fingerprint(ROBOT_PREFIX + key, message, photos[:1])
        self._robots.take(key, self._progress.remaining(progress_key, len(parts)))
        await self._progress.run(progress_key, parts)
        return f"robot-{time.time_ns()}"

    async def _send_appchat(self, chat: str, message: RenderedMessage) -> str:
        await self.api.call(
            "/cgi-bin/appchat/send",
            json={
                "chatid": chat,
                "msgtype": "text",
                "text": {"content": self._group_text(message)},
            },
        )
        return f"appchat-{time.time_ns()}"

    def _group_text(self, message: RenderedMessage) -> str:
        """A message for a group (robot or app group chat): these carry no buttons and no numbered
        menu (a reply there does not reach the app), so the actions are named, to be taken in
        the app; the hint is kept whole, the text shortened if need be."""
        if not message.buttons:
            return fit_bytes(message.text, TEXT_LIMIT_BYTES)
        labels = " / ".join(b.label for row in message.buttons for b in row)
        hint = Text("wecom.act_in_app", {"actions": labels})
        tail = "\n\n" + self.translator.text(self.host.default_language, hint, self.deep_link, NAME)
        return fit_bytes(message.text, TEXT_LIMIT_BYTES - len(tail.encode())) + tail


def with_numbered_menu(message: RenderedMessage, first: int = 1, limit: int = TEXT_LIMIT_BYTES) -> str:
    """The text with its choices numbered from `first`, in `limit` bytes: a long text is
    shortened, never the menu under it (a reply needs the numbers)."""
    lines = []
    number = first
    for row in message.buttons:
        for button in row:
            lines.append(f"{number}. {button.label}" + (f" {button.url}" if button.url else ""))
            number += 1
    menu = "".join("\n" + line for line in lines)
    return fit_bytes(message.text, max(limit - len(menu.encode()), limit // 4)) + menu


def button_card(user: str, agent: int, message: RenderedMessage) -> dict[str, Any]:
    first_line = message.text.splitlines()[0] if message.text else ""
    buttons = [b for row in message.buttons for b in row]
    return {
        "touser": user,
        "msgtype": "template_card",
        "agentid": agent,
        "template_card": {
            "card_type": "button_interaction",
            "main_title": {"title": fit(first_line, CARD_TITLE_CHARS)},
            "task_id": f"sw-{time.time_ns()}",
            "button_list": [
                {"text": fit(b.label, CARD_BUTTON_CHARS), "style": 1, "key": b.action} for b in buttons
            ],
        },
    }
