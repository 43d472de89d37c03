"""The callback endpoint: verify, decrypt, store in the inbox, answer 200.

WeChat Work drops a callback not answered within 5 s and sends it again, and any
non-200 counts as a failure: the endpoint answers an empty 200 once the message is
stored (the inbox also recognises WeChat Work's retries) and the engine takes it
from there, later, through WeComChannel.process_inbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from xml.etree import ElementTree

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.channels.base import BUSY_RETRY_SECONDS, Busy
from bot.channels.wecom.crypto import CallbackCrypto, Forbidden, Malformed

MAX_CALLBACK_BYTES = 64 * 1024
# Callbacks arriving within this long of each other are committed together (see InboxWriter).
GROUP_COMMIT_WINDOW_SECONDS = 0.002
GROUP_COMMIT_MAX_ROWS = 256
PATH = "/wecom/callback"

# Stores inbox rows ({"dedupe_key", "payload"}) in one transaction.
StoreRows = Callable[[list[dict[str, Any]]], Awaitable[None]]


class CallbackEndpoint:
    """The Starlette routes WeChat Work calls: the URL check (GET) and the messages (POST)."""

    def __init__(self, crypto: CallbackCrypto, store: StoreRows, on_new: Callable[[], None]) -> None:
        self.crypto = crypto
        self._inbox = InboxWriter(store, on_new, GROUP_COMMIT_WINDOW_SECONDS)

    def routes(self) -> list[Route]:
        return [
            Route(PATH, self.verify_url, methods=["GET"]),
            Route(PATH, self.callback, methods=["POST"]),
        ]

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


class InboxWriter:
    """Group commit of inbox rows: one INSERT, one transaction for the callbacks of a few milliseconds.

    A transaction per request made SQLite's single write lock the queue every
    request waited in (10 pooled connections taking turns through the busy
    handler's sleeps: ~100 callbacks/s). Requests hand their row to this writer
    and are answered once the batch holding it committed, so the 200 still
    means "stored". A batch is what arrived while the previous one committed,
    plus a short window: a transaction costs ~1 ms of CPU whatever it holds, so
    at 500/s waiting 2 ms for company cuts the CPU per callback by a third.
    """

    def __init__(self, store: StoreRows, on_new: Callable[[], None], window: float) -> None:
        self.store = store
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
                await self.store([row for row, _ in batch])
            except Busy:
                # Another process holds the database: keep the rows (their requests wait, and
                # WeChat Work's retries of them are recognised), and try again shortly.
                self._queue[:0] = batch
                await asyncio.sleep(BUSY_RETRY_SECONDS)
                continue
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            self.on_new()


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
