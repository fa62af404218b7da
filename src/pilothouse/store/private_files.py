"""Owner-only files: the data directory is created 0700; the SQLite database, its `-wal`/`-shm` files and the
saved admin key are 0600, whatever the process umask. Traces hold prompt content and the key is a secret.

SQLite creates a database's `-wal`, `-shm` and `-journal` files with the database file's own mode, so making
the database 0600 before SQLite first opens it is enough for them; side files an older version left behind
are tightened as well.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("pilothouse.store")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """Create `path` (and missing parents) with the directory itself 0700. A directory that already exists is
    the operator's and is left as it is, with a warning when other users may enter it."""
    if path.is_dir():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning(
                "the data directory %s is mode %o: other users may read what is in it; run `chmod 700 %s`",
                path,
                mode,
                path,
            )
        return
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)  # mkdir's mode is filtered by the umask


def _tighten(path: Path) -> None:
    try:
        os.chmod(path, PRIVATE_FILE)
    except PermissionError:  # another user's file: say so, the database may still be usable
        log.warning("cannot make %s private (mode 0600): it belongs to another user", path)


def private_sqlite_file(path: Path) -> None:
    """Create the SQLite database file 0600 if it is missing (an empty file is an empty database), and make it
    and any side files 0600."""
    if not path.parent.exists():
        private_dir(path.parent)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, PRIVATE_FILE)  # read-only: an existing file may be another user's
    os.close(fd)
    _tighten(path)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            _tighten(side)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only, in a private directory created if missing."""
    if not path.parent.exists():
        private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)  # before writing: an existing file keeps its old mode through O_CREAT
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def append_private(path: Path, data: bytes) -> None:
    """Append `data` to `path` (a spill file), created readable by its owner only in a private directory."""
    if not path.parent.exists():
        private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        os.write(fd, data)
    finally:
        os.close(fd)
