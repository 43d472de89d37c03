"""The fake WeChat Work server API, exercised over real HTTP with httpx."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.wecom_api import DEFAULT_AGENT_ID, MEDIA_TTL, TOKEN_TTL, FakeWeComApi

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
USERS = {"zhangsan", "lisi", "wangwu"}


@pytest.fixture
async def api() -> AsyncIterator[FakeWeComApi]:
    async with FakeWeComApi(known_users=USERS, known_chats={"chat-1"}, robot_keys={"robot-key"}) as fake:
        yield fake


@pytest.fixture
async def client(api: FakeWeComApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.base_url) as http:
        yield http


async def _token(api: FakeWeComApi, client: httpx.AsyncClient) -> str:
    response = await client.get(
        "/cgi-bin/gettoken", params={"corpid": api.corp_id, "corpsecret": api.corp_secret}
    )
    data = response.json()
    assert data["errcode"] == 0, data
    token: str = data["access_token"]
    return token


async def _send(client: httpx.AsyncClient, token: str, touser: str, content: str = "hi") -> dict[str, object]:
    body = {"touser": touser, "msgtype": "text", "agentid": DEFAULT_AGENT_ID, "text": {"content": content}}
    response = await client.post("/cgi-bin/message/send", params={"access_token": token}, json=body)
    assert response.status_code == 200  # WeChat Work reports errors in the body, not the status
    result: dict[str, object] = response.json()
    return result


async def test_token_fetch(api: FakeWeComApi, client: httpx.AsyncClient) -> None:
    wrong = await client.get("/cgi-bin/gettoken", params={"corpid": api.corp_id, "corpsecret": "nope"})
    assert wrong.json()["errcode"] == 40001
    assert "more info at" in wrong.json()["errmsg"]
    other_corp = await client.get(
        "/cgi-bin/gettoken", params={"corpid": "ww-x", "corpsecret": api.corp_secret}
    )
    assert other_corp.json()["errcode"] == 40013

    response = await client.get(
        "/cgi-bin/gettoken", params={"corpid": api.corp_id, "corpsecret": api.corp_secret}
    )
    data = response.json()
    assert data["errcode"] == 0 and data["errmsg"] == "ok"
    assert data["expires_in"] == TOKEN_TTL
    assert data["access_token"] == api.access_token
    # Within its lifetime a refetch returns the same token.
    assert await _token(api, client) == data["access_token"]
    assert api.token_fetches == 4
    # Lifetime is enforced on the fake clock.
    api.advance_clock(TOKEN_TTL + 1)
    assert (await _send(client, data["access_token"], "zhangsan"))["errcode"] == 42001
    assert await _token(api, client) != data["access_token"]


async def test_send_text(api: FakeWeComApi, client: httpx.AsyncClient) -> None:
    token = await _token(api, client)
    result = await _send(client, token, "zhangsan|Ghost|lisi", "楼道有积水")
    assert result["errcode"] == 0 and result["errmsg"] == "ok"
    assert result["invaliduser"] == "ghost"  # reported lower-cased, like the real API
    assert result["msgid"]
    assert api.texts_to("zhangsan") == ["楼道有积水"]
    assert api.messages_to("LiSi")[0]["text"]["content"] == "楼道有积水"
    assert api.messages_to("wangwu") == []
    assert [m.target for m in api.sent] == ["zhangsan", "lisi"]

    # Nobody valid: the call fails as a whole.
    failed = await _send(client, token, "ghost")
    assert failed["errcode"] == 81013 and failed["invaliduser"] == "ghost"

    # Over 2,048 bytes the text is cut (on a character boundary), not rejected.
    long = "险" * 1000  # 3,000 bytes
    assert (await _send(client, token, "wangwu", long))["errcode"] == 0
    delivered = api.texts_to("wangwu")[0]
    assert long.startswith(delivered) and len(delivered.encode()) <= 2048

    too_many = "|".join(f"u{i}" for i in range(1001))
    assert (await _send(client, token, too_many))["errcode"] == 40032


async def test_expired_token_then_refetch(api: FakeWeComApi, client: httpx.AsyncClient) -> None:
    token = await _token(api, client)
    api.expire_token()
    assert (await _send(client, token, "zhangsan"))["errcode"] == 42001
    fresh = await _token(api, client)
    assert fresh != token
    assert (await _send(client, fresh, "zhangsan"))["errcode"] == 0
    assert (await _send(client, token, "zhangsan"))["errcode"] == 42001

    api.revoke_token()
    assert (await _send(client, fresh, "zhangsan"))["errcode"] == 40014
    assert (await _send(client, "made-up", "zhangsan"))["errcode"] == 40014
    missing = await client.post("/cgi-bin/message/send", json={})
    assert missing.json()["errcode"] == 41001
    assert len(api.messages_to("zhangsan")) == 1


async def test_rate_limit_45009(api: FakeWeComApi, client: httpx.AsyncClient) -> None:
    api.per_user_per_minute = 3
    token = await _token(api, client)
    for _ in range(3):
        assert (await _send(client, token, "zhangsan"))["errcode"] == 0
    limited = await _send(client, token, "zhangsan|lisi")
    assert limited["errcode"] == 45009
    assert "api freq out of limit" in str(limited["errmsg"])
    # All or nothing: lisi got nothing from the rejected call.
    assert api.messages_to("lisi") == []
    assert (await _send(client, token, "lisi"))["errcode"] == 0
    api.advance_clock(61)
    assert (await _send(client, token, "zhangsan"))["errcode"] == 0
    assert len(api.messages_to("zhangsan")) == 4


async def test_upload_and_get_media(api: FakeWeComApi, client: httpx.AsyncClient) -> None:
    token = await _token(api, client)
    upload = await client.post(
        "/cgi-bin/media/upload",
        params={"access_token": token, "type": "image"},
        files={"media": ("alert.png", PNG, "image/png")},
    )
    data = upload.json()
    assert data["errcode"] == 0 and data["type"] == "image"
    media_id = data["media_id"]
    assert isinstance(data["created_at"], str)  # the real API sends it as a string
    assert api.uploaded_media[-1].data == PNG and api.uploaded_media[-1].filename == "alert.png"

    # The uploaded image can be sent; an unknown media_id cannot.
    body = {
        "touser": "zhangsan",
        "msgtype": "image",
        "agentid": DEFAULT_AGENT_ID,
        "image": {"media_id": media_id},
    }
    sent = await client.post("/cgi-bin/message/send", params={"access_token": token}, json=body)
    assert sent.json()["errcode"] == 0
    body["image"] = {"media_id": "nope"}
    sent = await client.post("/cgi-bin/message/send", params={"access_token": token}, json=body)
    assert sent.json()["errcode"] == 40007

    # A photo a member sent, registered by the test, downloads as bytes.
    api.add_media("MEMBER_PHOTO", PNG)
    got = await client.get("/cgi-bin/media/get", params={"access_token": token, "media_id": "MEMBER_PHOTO"})
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"].startswith("image/jpeg")
    assert 'filename="MEMBER_PHOTO.jpg"' in got.headers["content-disposition"]

    unknown = await client.get("/cgi-bin/media/get", params={"access_token": token, "media_id": "nope"})
    assert unknown.headers["content-type"].startswith("application/json")
    assert unknown.json()["errcode"] == 40007

    # Temporary media lives three days.
    api.advance_clock(MEDIA_TTL + 1)
    token = await _token(api, client)
    expired = await client.get(
        "/cgi-bin/media/get", params={"access_token": token, "media_id": "MEMBER_PHOTO"}
    )
    assert expired.json()["errcode"] == 40007

    bad_type = await client.post(
        "/cgi-bin/media/upload",
        params={"access_token": token, "type": "gif"},
        files={"media": ("a.gif", PNG, "image/gif")},
    )
    assert bad_type.json()["errcode"] == 40005


async def test_robot_webhook_limit(client: httpx.AsyncClient, api: FakeWeComApi) -> None:
    api.robot_limit_per_minute = 20
    message = {"msgtype": "text", "text": {"content": "暴雨预警"}}
    for _ in range(20):
        response = await client.post("/cgi-bin/webhook/send", params={"key": "robot-key"}, json=message)
        assert response.json() == {"errcode": 0, "errmsg": "ok"}
    limited = await client.post("/cgi-bin/webhook/send", params={"key": "robot-key"}, json=message)
    assert limited.json()["errcode"] == 45009
    assert len(api.robot_messages("robot-key")) == 20
    api.advance_clock(60)
    again = await client.post("/cgi-bin/webhook/send", params={"key": "robot-key"}, json=message)
    assert again.json()["errcode"] == 0

    unknown = await client.post("/cgi-bin/webhook/send", params={"key": "other"}, json=message)
    assert unknown.json()["errcode"] == 93000
    bad_type = await client.post(
        "/cgi-bin/webhook/send", params={"key": "robot-key"}, json={"msgtype": "sticker", "sticker": {}}
    )
    assert bad_type.json()["errcode"] == 40008


async def test_appchat_cards_and_checks(api: FakeWeComApi, client: httpx.AsyncClient) -> None:
    token = await _token(api, client)
    params = {"access_token": token}
    chat = await client.post(
        "/cgi-bin/appchat/send",
        params=params,
        json={"chatid": "chat-1", "msgtype": "markdown", "markdown": {"content": "**停水通知**"}},
    )
    assert chat.json()["errcode"] == 0
    assert api.appchat_messages("chat-1")[0]["markdown"]["content"] == "**停水通知**"
    unknown_chat = await client.post(
        "/cgi-bin/appchat/send",
        params=params,
        json={"chatid": "x", "msgtype": "text", "text": {"content": "a"}},
    )
    assert unknown_chat.json()["errcode"] == 86001

    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "确认收到?"},
        "task_id": "task-1",
        "button_list": [{"text": "收到", "key": "ack"}],
    }
    body = {
        "touser": "zhangsan",
        "msgtype": "template_card",
        "agentid": DEFAULT_AGENT_ID,
        "template_card": card,
    }
    sent = (await client.post("/cgi-bin/message/send", params=params, json=body)).json()
    assert sent["errcode"] == 0 and sent["response_code"]
    card.pop("task_id")
    assert (await client.post("/cgi-bin/message/send", params=params, json=body)).json()["errcode"] == 40035

    wrong_agent = {"touser": "zhangsan", "msgtype": "text", "agentid": 1, "text": {"content": "x"}}
    response = await client.post("/cgi-bin/message/send", params=params, json=wrong_agent)
    assert response.json()["errcode"] == 40056
    not_json = await client.post("/cgi-bin/message/send", params=params, content=b"{not json")
    assert not_json.json()["errcode"] == 47001
    wrong_method = await client.get("/cgi-bin/message/send", params=params)
    assert wrong_method.json()["errcode"] == 43002
    api.ip_blocked = True
    assert (await _send(client, token, "zhangsan"))["errcode"] == 60020


async def test_injected_failures(api: FakeWeComApi, client: httpx.AsyncClient) -> None:
    api.fail_next(-1, times=2)
    token = await _token(api, client)  # gettoken is exempt unless named
    assert (await _send(client, token, "zhangsan"))["errcode"] == -1
    assert (await _send(client, token, "zhangsan"))["errcode"] == -1
    assert (await _send(client, token, "zhangsan"))["errcode"] == 0
    assert len(api.messages_to("zhangsan")) == 1

    api.fail_next(45009, path="/cgi-bin/webhook/send")
    assert (await _send(client, token, "zhangsan"))["errcode"] == 0
    message = {"msgtype": "text", "text": {"content": "x"}}
    limited = await client.post("/cgi-bin/webhook/send", params={"key": "robot-key"}, json=message)
    assert limited.json()["errcode"] == 45009

    api.fail_next_http(502, path="/cgi-bin/gettoken")
    response = await client.get(
        "/cgi-bin/gettoken", params={"corpid": api.corp_id, "corpsecret": api.corp_secret}
    )
    assert response.status_code == 502
    assert await _token(api, client) == token
    assert [c.errcode for c in api.calls_to("message/send")] == [-1, -1, 0, 0]


async def test_wait_for_and_speed(api: FakeWeComApi, client: httpx.AsyncClient) -> None:
    token = await _token(api, client)
    with pytest.raises(AssertionError, match="condition not met"):
        await api.wait_for(lambda: api.messages_to("lisi"), timeout=0.05)
    started = time.monotonic()
    for _ in range(100):
        await _send(client, token, "lisi")
    elapsed = time.monotonic() - started
    # Without TCP_NODELAY each request would stall ~40 ms (4 s here).
    assert elapsed < 2.5, elapsed
    assert len(await api.wait_for(lambda: api.messages_to("lisi"))) == 100
