"""The bot's one web app: health check and the WeChat Work callback."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from storage.repositories import Repos

if TYPE_CHECKING:
    from bot.app import Runtime
    from bot.channels.wecom import WeComChannel


def build_web_app(runtime: Runtime, wecom: WeComChannel | None = None) -> Starlette:
    async def healthz(request: Request) -> JSONResponse:
        try:
            async with runtime.database.transaction() as connection:
                await connection.execute(sa.text("SELECT 1"))
                outbox = await Repos(connection).outbox.counts()
        except Exception:
            return JSONResponse({"ok": False, "database": "unreachable"}, status_code=503)
        return JSONResponse({"ok": True, "channels": sorted(runtime.channels), "outbox": outbox})

    routes = [Route("/healthz", healthz)]
    if wecom is not None:
        routes += [
            Route("/wecom/callback", wecom.verify_url, methods=["GET"]),
            Route("/wecom/callback", wecom.callback, methods=["POST"]),
        ]
    return Starlette(routes=routes)
