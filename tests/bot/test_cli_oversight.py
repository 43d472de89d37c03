"""`shouwang role revoke`, `shouwang audit` and `shouwang link undo` on a real SQLite file."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.cli import main
from handlers.messages import Text, reply_from_json
from storage.db import Database
from storage.models import OutboxMessage
from storage.repositories import Repos


def _rows(url: str, fn: Any) -> Any:
    async def read() -> Any:
        database = Database(url)
        try:
            async with database.transaction() as connection:
                return await fn(Repos(connection))
        finally:
            await database.close()

    return asyncio.run(read())


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/db.sqlite"
    monkeypatch.setenv("SHOUWANG_DATABASE_URL", url)
    return url


def test_grant_revoke_and_the_audit_log(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    grant = ["role", "grant", "--channel", "telegram", "--user"]
    assert main([*grant, "42", "--role", "police", "--name", "张警官"]) == 0
    assert main([*grant, "43", "--role", "grid_worker", "--grid", "g1", "--name", "李网格员"]) == 0
    capsys.readouterr()

    assert main(["role", "revoke", "--channel", "telegram", "--user", "43"]) == 0
    assert "revoked grid_worker" in capsys.readouterr().out
    assert main(["role", "revoke", "--channel", "telegram", "--user", "43"]) == 2
    assert "holds no role" in capsys.readouterr().err
    assert main(["role", "revoke", "--channel", "wecom", "--user", "nobody"]) == 2
    assert "nobody with that id" in capsys.readouterr().err

    # The police group of the community file hears of each change (the running bot sends it).
    outbox: list[OutboxMessage] = _rows(url, lambda r: r.outbox.all())
    said = [(m.chat_id, reply_from_json(m.payload).text) for m in outbox]
    assert [(chat, text.key) for chat, text in said if isinstance(text, Text)] == [
        ("-1001234567890", "roles.granted_police"),
        ("-1001234567890", "roles.granted_police"),
        ("-1001234567890", "roles.revoked_police"),
    ]

    assert main(["audit"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    newest = lines[0]
    assert " role.revoke " in newest and "by cli via cli" in newest
    assert "subject 李网格员 (#2)" in newest and '"previous": "grid_worker"' in newest
    # Times are the community's (Asia/Shanghai), to the second.
    stamp = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)  ", newest)
    assert stamp is not None
    local = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    assert abs((datetime.now(ZoneInfo("Asia/Shanghai")) - local).total_seconds()) < 600
    assert " role.grant " in lines[2] and "subject 张警官 (#1)" in lines[2]

    assert main(["audit", "--action", "role.revoke"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert main(["audit", "--since", "2999-01-01"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no entries" in captured.err


def test_link_undo_needs_a_linked_account(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["role", "grant", "--channel", "wecom", "--user", "zhang", "--role", "police"]) == 0
    capsys.readouterr()
    assert main(["link", "undo", "--channel", "wecom", "--user", "zhang"]) == 2
    assert "not joined to another by a link" in capsys.readouterr().err
