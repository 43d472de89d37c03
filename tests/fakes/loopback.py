"""An ASGI app served by uvicorn on 127.0.0.1 inside the running event loop: the body of every fake server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp


class _QuietServer(uvicorn.Server):
    # uvicorn would otherwise take over SIGINT/SIGTERM of the test process.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class LoopbackServer:
    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name
        self._server: _QuietServer | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._port: int | None = None

    @property
    def running(self) -> bool:
        return self._serve_task is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self.name} not started")
        return self._port

    async def start(self) -> None:
        if self._serve_task is not None:
            raise RuntimeError(f"{self.name} already started")
        # proto must be IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted
        # sockets whose proto says TCP, and without it every response stalls ~40 ms
        # (Nagle + delayed ACK).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = _QuietServer(config)
        self._serve_task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._serve_task.done():
                # Surfaces the startup exception instead of spinning forever.
                await self._serve_task
                raise RuntimeError(f"{self.name} exited during startup")
            await asyncio.sleep(0.005)  # polled: uvicorn's Server sets a flag, it has no event to await

    async def stop(self) -> None:
        if self._server is None or self._serve_task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._serve_task), timeout=5)
        except TimeoutError:
            self._server.force_exit = True
            await self._serve_task
        self._server = None
        self._serve_task = None
