"""Files only their owner can read: the ledger, keys and token stores, whatever the umask.

`private_dir` creates each missing directory of a path with mode 0700 (directories that already
exist are left as they are: they may be shared on purpose, like ``/tmp``). `private_file` creates a
missing file with mode 0600 before anyone writes to it; SQLite then gives its ``-wal`` and ``-shm``
files the database file's own mode, so they are private too.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["private_dir", "private_file"]


def private_dir(path: str | os.PathLike[str]) -> Path:
    """`path` as a directory; every component created here is 0700."""
    target = Path(path)
    missing = []
    probe = target
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue  # another process made it first: not ours to change
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask; a strange umask could leave it unusable
    return target


def private_file(path: str | os.PathLike[str]) -> Path:
    """`path`, created empty with mode 0600 (in private directories) when it does not exist yet."""
    target = Path(path)
    private_dir(target.parent)
    try:
        fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return target
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return target
