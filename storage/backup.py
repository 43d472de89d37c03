"""A consistent copy of a SQLite database while the bot keeps running (`shouwang backup`).

SQLite's online backup API copies the database from one read transaction: in WAL mode a reader
takes no lock that writers wait for, so the bot (in its own process) goes on answering while the
copy is made, and the copy is the database as it was at one instant. Copying all pages in one
step matters: a backup made in several steps starts over whenever another connection writes in
between, which on a busy bot might never finish.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

# How long to wait if another connection holds a lock the copy needs (a checkpoint, a migration).
BUSY_TIMEOUT_SECONDS = 30


class BackupError(Exception):
    """The copy could not be made or did not check out; nothing was left at the target."""


def backup_sqlite(source: Path, target: Path) -> int:
    """Copy `source` to `target` (created 0600, replaced only once the copy is complete and checked);
    returns the copy's size in bytes. Blocking: for the command line, or a thread."""
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    if not target.parent.is_dir():
        raise BackupError(f"no such directory: {target.parent}")
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    # Created with its final mode before a byte is written: the copy holds residents' data.
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        # mode=rw: a mistyped path must not create an empty database to copy.
        uri = source.resolve().as_uri() + "?mode=rw"
        with (
            contextlib.closing(sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS)) as origin,
            contextlib.closing(sqlite3.connect(partial)) as copy,
        ):
            origin.backup(copy)
            # One self-contained file: no -wal beside it needed to restore.
            copy.execute("PRAGMA journal_mode=DELETE")
            verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise BackupError(f"the copy failed its check: {verdict}")
        os.replace(partial, target)
    except sqlite3.Error as error:
        partial.unlink(missing_ok=True)
        raise BackupError(str(error)) from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target.stat().st_size
