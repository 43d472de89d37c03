"""`shouwang person export` and `shouwang person erase`: a data officer's requests, audited."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest

from bot.cli import main
from storage.audit import AuditEntry
from storage.db import Database
from storage.repositories import Repos


def audit(url: str) -> list[AuditEntry]:
    async def read() -> list[AuditEntry]:
        database = Database(url)
        try:
            async with database.transaction() as connection:
                return await Repos(connection).audit.entries()
        finally:
            await database.close()

    return asyncio.run(read())


def test_export_then_erase_on_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/db.sqlite"
    monkeypatch.setenv("SHOUWANG_DATABASE_URL", url)
    monkeypatch.setenv("SHOUWANG_MEDIA_DIR", str(tmp_path / "media"))
    grant = ["role", "grant", "--channel", "wecom", "--user", "WangFang", "--role", "volunteer"]
    assert main([*grant, "--name", "王芳"]) == 0
    who = ["--channel", "wecom", "--user", "WangFang"]
    out = tmp_path / "wangfang.json"
    assert main(["person", "export", *who, "--out", str(out), "--language", "en"]) == 0
    assert "wangfang.json" in capsys.readouterr().out
    data = json.loads(out.read_text(encoding="utf-8"))
    (user,) = next(s["rows"] for s in data["data"] if s["table"] == "users")
    assert (user["display_name"], user["role"]) == ("王芳", "volunteer")
    readable = out.with_suffix(".txt").read_text(encoding="utf-8")
    assert "Profile: name, role" in readable and "王芳" in readable
    # Personal data on disk: for the operator's account only.
    for path in (out, out.with_suffix(".txt")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    assert main(["person", "erase", *who]) == 0
    assert "1 chat account(s) removed" in capsys.readouterr().out
    # Gone: neither export nor erasure finds the account any more.
    assert main(["person", "erase", *who]) == 2
    assert "erase.unknown_person" in capsys.readouterr().err
    assert main(["person", "export", *who, "--out", str(tmp_path / "again.json")]) == 2
    assert not (tmp_path / "again.json").exists()

    # (Other actions, such as the grant above, may be audited too.)
    entries = [e for e in audit(url) if e.action in ("data.export", "person.erase")]
    assert [(e.action, e.via, e.actor_id) for e in reversed(entries)] == [
        ("data.export", "cli", None),
        ("person.erase", "cli", None),
    ]
    assert entries[0].subject_id == entries[1].subject_id == data["person_id"]
