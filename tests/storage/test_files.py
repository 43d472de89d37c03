"""The database and the photos are the bot's account's alone, whatever umask the process runs with."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.db import Database
from storage.files import private_dir, private_file, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """Every file world-readable and writable unless the code says otherwise."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("lax_umask")
def test_files_and_folders_are_private(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir(mode=0o755)
    target = work / "a" / "b" / "photo.jpg"
    write_private(target, b"jpeg")
    assert target.read_bytes() == b"jpeg" and mode(target) == 0o600
    assert mode(work / "a") == mode(work / "a" / "b") == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["photo.jpg"]  # no temporary left behind
    assert mode(work) == 0o755  # a folder that was there (the working directory) is left alone


@pytest.mark.usefixtures("lax_umask")
def test_what_an_earlier_version_made_is_tightened(tmp_path: Path) -> None:
    old = tmp_path / "shouwang.db"
    old.write_bytes(b"")
    old.chmod(0o644)
    media = tmp_path / "media"
    media.mkdir(mode=0o755)
    assert mode(private_file(old)) == 0o600
    assert mode(private_dir(media)) == 0o755  # only when it is said to be the bot's own
    assert mode(private_dir(media, tighten=True)) == 0o700


@pytest.mark.usefixtures("lax_umask")
async def test_sqlite_and_its_wal_and_shm_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "shouwang.db"
    database = Database(f"sqlite:///{path}")
    try:
        await database.migrate()
        async with database.transaction() as connection:
            await connection.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            await connection.execute(sa.text("INSERT INTO t VALUES (1)"))
        # WAL mode, the connections still open: both side files are there (else mode() raises).
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        assert [mode(p) for p in (path, wal, shm)] == [0o600] * 3
        assert mode(path.parent) == 0o700
    finally:
        await database.close()
