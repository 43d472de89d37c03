"""`shouwang backup PATH`: a consistent, private copy of the SQLite database while another process writes."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from tests.databases import migrated_sqlite

# Another process writing as the bot does (WAL, one short transaction after another): each
# transaction adds one row to each of two tables, so any consistent snapshot has as many of one
# as of the other. It stops when the stop file appears.
WRITER = """
import pathlib, sqlite3, sys
db, stop = sys.argv[1], pathlib.Path(sys.argv[2])
connection = sqlite3.connect(db, timeout=10, isolation_level=None)
connection.execute("PRAGMA journal_mode=WAL")
while not stop.exists():
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("INSERT INTO pair_a (payload) VALUES (randomblob(2000))")
    connection.execute("INSERT INTO pair_b (payload) VALUES (randomblob(2000))")
    connection.execute("COMMIT")
connection.close()
"""


def pairs(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path, timeout=10) as connection:
        a = connection.execute("SELECT count(*) FROM pair_a").fetchone()[0]
        b = connection.execute("SELECT count(*) FROM pair_b").fetchone()[0]
    connection.close()
    return int(a), int(b)


def wait_until(predicate: object, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + 30
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)  # polled: the writer is another process


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = migrated_sqlite(tmp_path / "live" / "shouwang.db")
    path = Path(url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE pair_a (id INTEGER PRIMARY KEY, payload BLOB)")
        connection.execute("CREATE TABLE pair_b (id INTEGER PRIMARY KEY, payload BLOB)")
    connection.close()
    monkeypatch.setenv("SHOUWANG_DATABASE_URL", url)
    return path


@pytest.fixture
def writer(database: Path, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    stop = tmp_path / "stop"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(database), str(stop)])
    try:
        yield process
    finally:
        stop.touch()
        process.wait(timeout=30)


def test_a_backup_taken_while_another_process_writes_is_consistent_and_private(
    database: Path,
    writer: subprocess.Popen[bytes],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wait_until(lambda: pairs(database)[0] >= 200, "the writer did not get going")
    target = tmp_path / "backups" / "shouwang-2026-12-08.db"
    target.parent.mkdir()

    assert main(["backup", str(target)]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"backed up {database} to {target}") and out.count("\n") == 1
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert list(target.parent.iterdir()) == [target]  # no partial file left beside it
    copied_a, copied_b = pairs(target)
    assert copied_a == copied_b >= 200
    # The writer was not held up: it goes on committing after the copy.
    wait_until(lambda: pairs(database)[0] > copied_a + 50, "the writer stalled")
    assert writer.poll() is None
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # A single file that opens on its own: not in WAL mode, no -wal needed.
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert copy.execute("SELECT version_num FROM alembic_version").fetchone() is not None
    copy.close()


def test_a_second_backup_replaces_the_first(
    database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "latest.db"
    assert main(["backup", str(target)]) == 0
    with sqlite3.connect(database) as connection:
        connection.execute("INSERT INTO pair_a (payload) VALUES (x'00')")
        connection.execute("INSERT INTO pair_b (payload) VALUES (x'00')")
    connection.close()
    assert main(["backup", str(target)]) == 0
    assert pairs(target) == (1, 1)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_failures_are_one_line_and_leave_nothing_behind(
    database: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backup", str(tmp_path / "missing" / "copy.db")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("shouwang: backup failed: no such directory") and err.count("\n") == 1

    monkeypatch.setenv("SHOUWANG_DATABASE_URL", f"sqlite:///{tmp_path / 'nowhere.db'}")
    assert main(["backup", str(tmp_path / "copy.db")]) == 1
    assert "no SQLite database at" in capsys.readouterr().err
    assert not (tmp_path / "nowhere.db").exists() and not (tmp_path / "copy.db").exists()

    monkeypatch.setenv("SHOUWANG_DATABASE_URL", "postgresql://shouwang@db.example/shouwang")
    assert main(["backup", str(tmp_path / "copy.db")]) == 2
    err = capsys.readouterr().err
    assert "pg_dump" in err and err.count("\n") == 1
    assert not (tmp_path / "copy.db").exists()
