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
import signal
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
    kill_point("move")
    try:
        move(src, dst)
    except OSError as e:
        raise EnvironmentProblem(dst, f"cannot move into place: {os_reason(e)}") from e
    kill_point("moved")
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)


# Test hook for the kill-anywhere suite (tests/helpers/kill.py), off unless its variables are set.
# Every durable step (a move into place here, a catalog COMMIT in catalog/connection.py) counts
# two ticks, one just before and one just after. SOUNDARK_KILL_LOG=FILE appends one line per
# tick; SOUNDARK_KILL_AT=N sends SIGKILL to the whole process group at the N-th tick: the run
# dies there as in a power cut, its workers with it. Only the group leader counts (the command
# the harness started in a session of its own), so pool workers never shift the count.
# SOUNDARK_KILL_SIGNAL=TERM sends SIGTERM to the command alone at that tick instead, as a service
# manager would: the command's own handler then stops it (exit 143) at exactly that step.
_KILL_AT = int(os.environ.get("SOUNDARK_KILL_AT") or 0)
_KILL_LOG = os.environ.get("SOUNDARK_KILL_LOG") or ""
_KILL_TERM = (os.environ.get("SOUNDARK_KILL_SIGNAL") or "").upper() == "TERM"
_ticks = 0


def kill_point(what: str) -> None:
    """Count one durable step, or a reader's step such as a bag verified (test hook; does nothing
    unless SOUNDARK_KILL_AT/_LOG is set)."""
    global _ticks
    if not (_KILL_AT or _KILL_LOG) or os.getpid() != os.getpgid(0):
        return
    _ticks += 1
    if _KILL_LOG:
        with open(_KILL_LOG, "a", encoding="utf-8") as log:
            log.write(f"{_ticks} {what}\n")
    if _ticks == _KILL_AT:
        if _KILL_TERM:
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            os.killpg(0, signal.SIGKILL)
