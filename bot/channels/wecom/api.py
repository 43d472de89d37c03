"""WeChat Work's HTTP API, asynchronously: the access token (cached, renewed once when refused),
calls with JSON or uploads, media downloads and group robots. wechatpy's own client is
synchronous (requests) and would block the event loop."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bot.channels.base import DeliveryError, RetryLater, Transient, Undeliverable
from bot.metrics import PlatformMonitor

TOKEN_EXPIRED = {40014, 42001}
# "系统繁忙": WeChat Work itself is struggling; like a 5xx, worth trying again.
SYSTEM_BUSY = {-1}
RATE_LIMITED = {45009}
# Nobody to deliver to: retrying cannot help (81013: user & party & tag all invalid).
NO_RECIPIENT = {81013}
# message/send takes up to 1,000 member ids joined by "|".
MAX_RECIPIENTS = 1000


@dataclass(frozen=True)
class WeComConfig:
    corp_id: str
    agent_id: int
    secret: str
    token: str
    aes_key: str
    api_url: str = "https://qyapi.weixin.qq.com"


class WeComError(DeliveryError):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"wecom error {errcode}: {errmsg}")
        self.errcode = errcode


class WeComApi:
    """A thin async client: wechatpy's own client is synchronous and would block the event loop."""

    def __init__(
        self, config: WeComConfig, client: httpx.AsyncClient, monitor: PlatformMonitor | None = None
    ) -> None:
        self.config = config
        self.client = client
        self.monitor = monitor
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()

    async def token(self, *, stale: str | None = None) -> str:
        """The cached token; `stale` is one the API refused, fetched anew unless someone already did."""
        async with self._token_lock:
            if self._token is None or self._token == stale or time.monotonic() >= self._token_expires:
                data = await self._get_json(
                    "/cgi-bin/gettoken", {"corpid": self.config.corp_id, "corpsecret": self.config.secret}
                )
                self._token = str(data["access_token"])
                # Renew a little early rather than race the expiry.
                self._token_expires = time.monotonic() + int(data.get("expires_in", 7200)) - 300
            return self._token

    async def _get_json(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self.client.get(self.config.api_url + path, params=params)
        except httpx.HTTPError as error:
            raise self._unreachable(error) from error
        return self._checked(response, token=True)

    async def call(
        self,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        stale: str | None = None
        for attempt in range(2):
            token = await self.token(stale=stale)
            try:
                response = await self.client.post(
                    self.config.api_url + path,
                    params={"access_token": token, **(params or {})},
                    json=json,
                    files=files,
                )
                return self._checked(response)
            except WeComError as error:
                if error.errcode in TOKEN_EXPIRED and attempt == 0:
                    stale = token
                    continue
                raise
            except httpx.HTTPError as error:
                raise self._unreachable(error) from error
        raise AssertionError("unreachable")

    async def user_name(self, user_id: str) -> str | None:
        """The member's name from the contacts (`user/get`); None if the app may not read it."""
        stale: str | None = None
        for attempt in range(2):
            token = await self.token(stale=stale)
            try:
                data = await self._get_json("/cgi-bin/user/get", {"access_token": token, "userid": user_id})
            except WeComError as error:
                if error.errcode in TOKEN_EXPIRED and attempt == 0:
                    stale = token
                    continue
                return None
            name = str(data.get("name") or "").strip()
            return name or None
        return None

    async def media(self, media_id: str) -> bytes:
        stale: str | None = None
        for attempt in range(2):
            token = await self.token(stale=stale)
            try:
                response = await self.client.get(
                    self.config.api_url + "/cgi-bin/media/get",
                    params={"access_token": token, "media_id": media_id},
                )
            except httpx.HTTPError as error:
                raise self._unreachable(error) from error
            # Media comes as bytes; errors come as JSON (some gateways label it text/plain).
            if response.status_code >= 400 or response.headers.get("content-type", "").startswith(
                ("application/json", "text/plain")
            ):
                try:
                    self._checked(response)
                except WeComError as error:
                    if error.errcode in TOKEN_EXPIRED and attempt == 0:
                        stale = token
                        continue
                    raise
            elif self.monitor is not None:
                self.monitor.answered(response.status_code)
            return response.content
        raise AssertionError("unreachable")

    async def robot(self, key: str, payload: dict[str, Any]) -> None:
        try:
            response = await self.client.post(
                self.config.api_url + "/cgi-bin/webhook/send", params={"key": key}, json=payload
            )
        except httpx.HTTPError as error:
            raise self._unreachable(error) from error
        self._checked(response)

    # --- what the platform answered, for /metrics and /readyz ---------------------------

    def _checked(self, response: httpx.Response, *, token: bool = False) -> dict[str, Any]:
        try:
            data = checked(response)
        except DeliveryError as error:
            self._observe_failure(response, error, token)
            raise
        if self.monitor is not None:
            self.monitor.answered(response.status_code)
        return data

    def _observe_failure(self, response: httpx.Response, error: DeliveryError, token: bool) -> None:
        monitor = self.monitor
        if monitor is None:
            return
        if response.status_code >= 400:
            monitor.answered(response.status_code)
        elif isinstance(error, WeComError):
            # A refused token (wrong secret, server IP not trusted) leaves the bot unable to send.
            monitor.refused(error.errcode, usable=not token)
        elif isinstance(error, RetryLater):
            monitor.refused(min(RATE_LIMITED), rate_limited=True)
        elif isinstance(error, Undeliverable):
            monitor.answered(response.status_code)  # the platform is fine; the recipient is not
        else:
            monitor.unreachable("invalid answer")

    def _unreachable(self, error: httpx.HTTPError) -> Transient:
        if self.monitor is not None:
            self.monitor.unreachable("timeout" if isinstance(error, httpx.TimeoutException) else "network")
        return Transient(f"wecom unreachable: {error}")


def checked(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 500:
        raise Transient(f"wecom http {response.status_code}")
    if response.status_code >= 400:
        raise DeliveryError(f"wecom http {response.status_code}")
    try:
        data: dict[str, Any] = response.json()
    except ValueError as error:
        # A gateway's error page in front of WeChat Work, most likely.
        raise Transient("wecom answered something that is not JSON") from error
    errcode = int(data.get("errcode", 0))
    if errcode in SYSTEM_BUSY:
        raise Transient(f"wecom system busy ({errcode}): {data.get('errmsg', '')}")
    if errcode in RATE_LIMITED:
        raise RetryLater(60, f"wecom rate limited ({errcode})")
    if errcode in NO_RECIPIENT:
        raise Undeliverable(f"wecom: no such recipient ({errcode})", blocked=True)
    if errcode:
        raise WeComError(errcode, str(data.get("errmsg", "")))
    return data
