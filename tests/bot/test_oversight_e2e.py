"""Linking, roles and the audit log over the wire: Telegram through the real PTB Application and the
fake Bot API, WeChat Work through signed and encrypted callbacks."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from bot.app import telegram_channel
from bot.channels.telegram import TelegramChannel
from handlers.accounts import rules as accounts
from tests.bot.telegram_live import NEIGHBOUR, POLICE, REPORTER, Live, content
from tests.bot.wecom_live import POLICE as WECOM_POLICE
from tests.bot.wecom_live import REPORTER as WECOM_REPORTER
from tests.bot.wecom_live import ROBOT_KEY, WeComBot, police_robot_community
from tests.bot.wecom_live import WORKER as WECOM_WORKER
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.wecom_api import FakeWeComApi

CODE_RE = re.compile(r"/link ([A-Z2-9]{8})")


async def test_telegram_an_officer_typing_a_residents_code_gives_it_nothing(
    onboarded: Live, api: FakeBotApi
) -> None:
    live = onboarded
    [made] = await live.say(REPORTER, "/link")
    found = CODE_RE.search(content(made))
    assert found is not None
    code = found.group(1)

    [refused] = await live.say(POLICE, f"/link {code}")
    assert "不同平台" in content(refused) and refused.callback_data == []
    # Nothing was merged and the resident's account has no police tools.
    assert not [m for m in api.sent_messages(REPORTER) if "关联" in content(m) and m.callback_data]
    [alerts] = await live.say(REPORTER, "/alerts")
    assert "身份" in content(alerts)
    [audit] = await live.say(REPORTER, "/audit")
    assert "身份" in content(audit)
    reporter = await live.repos(lambda r: r.users.by_identity("telegram", str(REPORTER)))
    assert reporter[0].role == accounts.RESIDENT
    assert await live.repos(lambda r: r.audit.entries(action="link.create")) == []

    # An admin reads the log in the chat: who did what, by name.
    await live.say(POLICE, "/invite volunteer")
    await live.grant(NEIGHBOUR, accounts.ADMIN, name="周管理员")
    await live.onboard(NEIGHBOUR, None)
    [log] = await live.say(NEIGHBOUR, "/audit")
    assert "invite.create" in content(log) and "张警官" in content(log)


async def test_wecom_an_admin_revokes_a_role_by_menu_number(bot: WeComBot, fake: FakeWeComApi) -> None:
    await bot.grant(WECOM_POLICE, accounts.ADMIN, name="周管理员")
    await bot.grant(WECOM_WORKER, accounts.GRID_WORKER, ("g1",), "李网格员")
    await bot.onboard(WECOM_POLICE, None)
    await bot.onboard(WECOM_WORKER, None)
    await bot.onboard(WECOM_REPORTER, "3")

    refused = await bot.say(WECOM_REPORTER, "/roles")
    assert "身份" in refused[0]["text"]["content"]
    listed = fake.texts_to(WECOM_POLICE)
    await bot.say(WECOM_POLICE, "/roles")
    listing = fake.texts_to(WECOM_POLICE)[len(listed) :]
    assert any("李网格员" in text and "网格员" in text for text in listing)

    # The worker is second (admins first); the revocation needs a confirmation.
    await bot.choose(WECOM_POLICE, "撤销 2")
    assert "确定要撤销 李网格员" in fake.texts_to(WECOM_POLICE)[-1]
    await bot.choose(WECOM_POLICE, "确认撤销身份")
    assert "已撤销 李网格员" in fake.texts_to(WECOM_POLICE)[-1]

    assert "身份已被收回" in fake.texts_to(WECOM_WORKER)[-1]
    robot = [m["text"]["content"] for m in fake.robot_messages(ROBOT_KEY) if m["msgtype"] == "text"]
    assert any("李网格员" in text and "已撤销" in text for text in robot)
    worker = await bot.repos(lambda r: r.users.by_identity("wecom", WECOM_WORKER))
    assert worker[0].role == accounts.RESIDENT
    [entry] = await bot.repos(lambda r: r.audit.entries(action="role.revoke"))
    assert entry.via == "wecom" and entry.subject_id == worker[0].id
    # The former worker's tools are gone.
    assert "身份" in (await bot.say(WECOM_WORKER, "/tasks"))[0]["text"]["content"]


TG_USER = 5001


async def _telegram_settle(api: FakeBotApi, channel: TelegramChannel, bot: WeComBot) -> None:
    app = channel.application
    for _ in range(500):
        await api.until_idle(timeout=5, quiet=0.02)
        busy = not app.update_queue.empty() or app.update_processor.current_concurrent_updates > 0
        if not busy:
            await bot.settle()
            return
        await asyncio.sleep(0.01)  # polled: PTB's update queue and processor have no idle event
    raise AssertionError("telegram did not settle")


async def test_linking_wecom_and_telegram_needs_both_sides(fake: FakeWeComApi, tmp_path: Path) -> None:
    async with FakeBotApi() as api:
        bot = await WeComBot(fake, tmp_path, police_robot_community()).start()
        telegram = telegram_channel(bot.rt, "123:abc", api_url=api.base_url, file_url=api.base_file_url)
        bot.rt.add_channel(telegram)
        try:
            async with telegram.application:
                await telegram.start(poll_timeout=1)
                try:
                    await bot.onboard(WECOM_REPORTER, "3")
                    made = await bot.say(WECOM_REPORTER, "/link")
                    found = CODE_RE.search(made[0]["text"]["content"])
                    assert found is not None
                    code = found.group(1)

                    # A Telegram account that never registered types it: it sees whose account it joins.
                    api.push_text(TG_USER, f"/link {code}")
                    await _telegram_settle(api, telegram, bot)
                    asked = api.sent_messages(TG_USER)[-1]
                    assert WECOM_REPORTER in content(asked) and "企业微信" in content(asked)
                    claim = f"v1:lnk:claim:{code}"
                    assert claim in asked.callback_data
                    api.push_callback(TG_USER, TG_USER, asked.message_id, claim)
                    await _telegram_settle(api, telegram, bot)
                    assert "也确认一次" in content(api.sent_messages(TG_USER)[-1])
                    # Not merged until the WeChat Work side confirms in its own chat.
                    assert (
                        await bot.repos(lambda r: r.users.by_identity("telegram", str(TG_USER))) is not None
                    )
                    owner = await bot.repos(lambda r: r.users.by_identity("wecom", WECOM_REPORTER))
                    assert len(await bot.repos(lambda r: r.users.identities(owner[0].id))) == 1
                    assert "想和您的账号" in fake.texts_to(WECOM_REPORTER)[-1]

                    await bot.choose(WECOM_REPORTER, "确认关联")
                    await _telegram_settle(api, telegram, bot)
                    assert "账号已关联" in fake.texts_to(WECOM_REPORTER)[-1]
                    assert "账号已关联" in content(api.sent_messages(TG_USER)[-1])
                    merged = await bot.repos(lambda r: r.users.by_identity("telegram", str(TG_USER)))
                    assert merged[0].id == owner[0].id and merged[0].role == accounts.RESIDENT
                    [entry] = await bot.repos(lambda r: r.audit.entries(action="link.create"))
                    assert entry.via == "wecom" and sorted(entry.detail["channels"]) == ["telegram", "wecom"]
                finally:
                    await telegram.stop()
        finally:
            await bot.close()
