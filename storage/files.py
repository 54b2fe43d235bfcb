"""Files and folders kindbot creates: readable by their owner only, whatever the umask.

`Path.mkdir(parents=True, mode=...)` gives the mode to the leaf alone, and `os.open`'s mode
is masked by the umask; these helpers set the mode they promise explicitly, so what kindbot
says about a file's mode is true.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create `path` and every missing parent as 0700; existing folders are left as they are.

    A part of the path that is a file raises NotADirectoryError naming it; a folder kindbot
    may not write in raises PermissionError: both carry the path, for a one-line message.
    """
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    if current.exists() and not current.is_dir():
        raise NotADirectoryError(20, "Not a directory", str(current))
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            if folder.is_dir():  # made by someone else meanwhile: theirs, left alone
                continue
            raise
        os.chmod(folder, FOLDER_MODE)


def private_file(path: Path) -> bool:
    """Create an empty `path` as 0600 (its folder as `private_dir`); False if it existed."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True


def write_private(path: Path, data: bytes, *, exclusive: bool = False) -> int:
    """Write `data` to `path`, made 0600 before a byte is written; returns the mode it has.

    An existing file is made 0600 first and only then emptied: if its mode cannot be
    changed (someone else's file), nothing in it is lost and nothing is written.
    `exclusive`: refuse (FileExistsError) if `path` exists. The data is on disk on return.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else 0)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        return stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def too_open(path: Path) -> bool:
    """Whether anyone but the owner may read, write or enter `path`."""
    return bool(mode_of(path) & 0o077)
