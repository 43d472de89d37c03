"""Files only the bot's own account may read: the database, photos, exports and backups.

Residents' names, reports and photos are personal data; a file another account on the server can
read is a leak. Modes are set explicitly (0600 files, 0700 directories), not left to the process's
umask, so the same holds when the bot runs under a service manager with a lax umask, or is used as
a library. `shouwang` also sets its umask to 0077 at start (bot/cli.py) for whatever else it creates.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path, *, tighten: bool = False) -> Path:
    """Create `path` and missing parents as 0700. An existing directory is left as it is (it may be
    the operator's working directory) unless `tighten` says it is the bot's own (the media folder)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    # mkdir's mode passes through the umask, and parents get the default mode: set them exactly.
    for created in missing:
        _tighten(created, DIR_MODE)
    if tighten:
        _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty as 0600 if it does not exist, else tighten it to 0600 (e.g. a database
    file created by an earlier version, before SQLite opens it: its -wal and -shm files take the
    database file's mode)."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    _tighten(path, FILE_MODE)
    return path


def write_private(target: Path, data: bytes) -> None:
    """Write `target` atomically as 0600 (a reader never sees half a file)."""
    private_dir(target.parent)
    # mkstemp creates the file 0600 whatever the umask, under a name no concurrent writer shares.
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _tighten(path: Path, mode: int) -> None:
    # Only what this account owns can be changed (a root-owned file is left to its owner).
    with contextlib.suppress(PermissionError):
        status = path.stat()
        if status.st_uid == os.getuid() and status.st_mode & 0o777 != mode:
            path.chmod(mode)
