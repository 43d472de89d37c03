"""An aiohttp transport for python-telegram-bot: the one place the bot does not use httpx.

PTB's own HTTPXRequest was tried in its place (issue 11) and measured with
bench/throughput.py on the same 2-core machine: 9.6 updates/s (rounds 9.6, 9.6,
12.3) against 39.6 with this class (37.2, 53.4, 39.6); paired 30-user runs gave
19-22 against 37. The echo bot, one update at a time on httpx, was unchanged
(66 and 54 updates/s). The cause is in httpcore's connection pool: every request
checks every pooled connection for expiry (`has_expired`, a getpeername and a
poll per connection, a quarter of the CPU in a profile), and the adapter runs up
to 64 updates at once, so the pool holds dozens of connections; a pool of 8 or 32
was no better (27 and 24 updates/s). aiohttp's C-accelerated client keeps the cost
per call flat. PTB supports swapping the transport through its `BaseRequest` interface.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.metrics import PlatformMonitor

USER_AGENT = "shouwang (python-telegram-bot, aiohttp)"
JSON_HEADERS = {"Content-Type": "application/json"}


class AiohttpRequest(BaseRequest):
    def __init__(
        self,
        connection_pool_size: int = 32,
        read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        media_write_timeout: float | None = 20.0,
        monitor: PlatformMonitor | None = None,
    ) -> None:
        # Every Bot API call passes here, the long polls included: the one place to see them all.
        self._monitor = monitor
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None:
            await self.initialize()
        assert self._session is not None
        data: Any = None
        headers: dict[str, str] | None = None
        has_files = bool(request_data and request_data.contains_files)
        if request_data is not None:
            if has_files:
                form = aiohttp.FormData(quote_fields=False)
                for name, value in request_data.json_parameters.items():
                    form.add_field(name, value)
                for name, part in request_data.multipart_data.items():
                    filename, content, mime = part
                    form.add_field(name, content, filename=filename, content_type=mime)
                data = form
            else:
                # A JSON body (the Bot API takes one, files aside) costs a fraction of urlencoding
                # the same parameters, which is most of a call's CPU when an alert goes to thousands.
                data = request_data.json_payload
                headers = JSON_HEADERS
        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = self._connect_timeout if isinstance(connect_timeout, DefaultValue) else connect_timeout
        write = write_timeout if not isinstance(write_timeout, DefaultValue) else None
        if has_files and write is None:
            write = self._media_write_timeout
        total = None if read is None else read + (write or 0) + (connect or 0)
        timeout = aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)
        try:
            request = self._session.request(method, url, data=data, headers=headers, timeout=timeout)
            async with request as response:
                answer = response.status, await response.read()
        except TimeoutError as error:
            self._unreachable("timeout")
            raise TimedOut() from error
        except aiohttp.ClientError as error:
            self._unreachable("network")
            raise NetworkError(f"aiohttp: {error}") from error
        if self._monitor is not None:
            self._monitor.answered(answer[0])
        return answer

    def _unreachable(self, status: str) -> None:
        if self._monitor is not None:
            self._monitor.unreachable(status)
