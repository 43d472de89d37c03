"""The bot's one web app: health check and the channels' callback routes (WeChat Work's)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

# The bot's state for /healthz (its channels, the outbox's counts); raises when the database is unreachable.
Health = Callable[[], Awaitable[dict[str, Any]]]


def build_web_app(health: Health, routes: Sequence[BaseRoute] = ()) -> Starlette:
    async def healthz(request: Request) -> JSONResponse:
        try:
            state = await health()
        except Exception:
            return JSONResponse({"ok": False, "database": "unreachable"}, status_code=503)
        return JSONResponse({"ok": True, **state})

    return Starlette(routes=[Route("/healthz", healthz), *routes])
