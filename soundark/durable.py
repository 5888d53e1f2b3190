"""Durable renames: a file or folder moved into place survives a power cut (POSIX fsync).

``rename(2)`` changes a directory entry; the new name is on disk only once the folder that
holds it is fsynced (and the old one, when the move crosses folders). Every write that
puts something into place (settings, the release list, bags, torrents, stored audio and
art, parity, repairs, reports) goes through here, so none forgets the folder and none
ignores an fsync error: a failed fsync means the data may not be there after a crash, and
the user must hear it. Standard library only.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

from soundark.errors import EnvironmentProblem, os_reason

# A file system that cannot sync a folder at all says so with EINVAL (some FUSE and
# network file systems): there is nothing more to make durable there, so that alone passes.
_NOT_SUPPORTED = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}


def fsync_dir(folder: Path | str) -> None:
    """fsync *folder* itself (its entries: names created, renamed or removed in it)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as e:
        raise EnvironmentProblem(folder, f"cannot open the folder to sync it: {os_reason(e)}") from e
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in _NOT_SUPPORTED:
            raise EnvironmentProblem(folder, f"cannot sync the folder to disk: {os_reason(e)}") from e
    finally:
        os.close(fd)


def fsync_file(path: Path | str) -> None:
    """fsync the bytes of the file at *path* (opened read-only: fsync needs no write access)."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise EnvironmentProblem(path, f"cannot sync to disk: {os_reason(e)}") from e


def replace_durably(src: Path | str, dst: Path | str) -> None:
    """``os.replace(src, dst)`` (atomic, overwrites), then fsync the folder(s) it touched.

    *src*'s bytes must already be on disk (fsync the file before): this makes the name durable.
    """
    _move(os.replace, Path(src), Path(dst))


def rename_durably(src: Path | str, dst: Path | str) -> None:
    """``os.rename(src, dst)`` for a folder moved into place, then fsync the folder(s) it touched."""
    _move(os.rename, Path(src), Path(dst))


def write_durably(path: Path | str, data: bytes) -> None:
    """Write *data* to a temporary file beside *path*, fsync it, replace *path* durably."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise EnvironmentProblem(path, f"cannot write: {os_reason(e)}") from e
    replace_durably(tmp, path)


def _move(move: Callable[[Path, Path], None], src: Path, dst: Path) -> None:  # os.replace or os.rename
    try:
        move(src, dst)
    except OSError as e:
        raise EnvironmentProblem(dst, f"cannot move into place: {os_reason(e)}") from e
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)
