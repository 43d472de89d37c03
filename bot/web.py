"""The bot's one web app: liveness, readiness, metrics and the channels' callback routes (WeChat Work's)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.metrics import CONTENT_TYPE_LATEST

# What /healthz says of the process (its channels); must not touch the database or the network.
Alive = Callable[[], dict[str, Any]]
# Each check (the database, every channel) and "ok" or what is wrong with it.
Readiness = Callable[[], Awaitable[dict[str, str]]]
# The metrics in Prometheus's text format, gathered for this scrape.
Scrape = Callable[[], Awaitable[bytes]]


def build_web_app(
    alive: Alive, ready: Readiness, scrape: Scrape, routes: Sequence[BaseRoute] = ()
) -> Starlette:
    async def healthz(request: Request) -> JSONResponse:
        """The process is up and serving HTTP: nothing else is asked, so a slow database or a
        platform outage never gets a healthy bot restarted."""
        return JSONResponse({"ok": True, **alive()})

    async def readyz(request: Request) -> JSONResponse:
        checks = await ready()
        failing = sorted(name for name, state in checks.items() if state != "ok")
        body: dict[str, Any] = {"ready": not failing, "checks": checks}
        if failing:
            body["not_ready"] = failing
        return JSONResponse(body, status_code=503 if failing else 200)

    async def metrics(request: Request) -> Response:
        return Response(await scrape(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            *routes,
        ]
    )
