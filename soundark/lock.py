"""One writer per archive: an advisory ``flock(2)`` on ``ARCHIVE/.soundark.lock``.

Every command that writes the catalog, the store or the releases (init, scan, import,
plan, release, repair, archive, demo) holds this lock for its whole run. A second
writer waits up to ``lock_wait_seconds`` and then refuses with one line naming the
holder (its pid, command and start time, which the holder writes into the lock file).

``encode`` does not take it: two encoders on one archive share the work through the
job journal's leases (docs/encode.md), and encode never writes what the others do.
Readers (verify, search, stats, serve, release list) never take it either.

The kernel drops a ``flock`` when the last descriptor of its open file is closed,
which includes the death of the holder by any signal, SIGKILL too: a killed writer
never leaves a stale lock behind, and the file's leftover text is only a hint.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from pathlib import Path

from soundark.errors import Conflict, EnvironmentProblem

LOCK_FILE = ".soundark.lock"
_POLL_SECONDS = 0.1


class ArchiveLock:
    """Held from :meth:`acquire` until :meth:`release` (or the process ends)."""

    def __init__(self, root: Path, command: str = "soundark") -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_FILE
        self.command = command  # shown to a second writer, e.g. "soundark release audio"
        self.fd: int | None = None

    def acquire(self, wait_seconds: float = 0.0) -> ArchiveLock:
        """Take the lock, waiting up to *wait_seconds*; :class:`Conflict` if another holds it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise EnvironmentProblem(self.path, f"cannot open the archive's lock file: {e.strerror or e} "
                                                "(is the archive read-only?)") from e
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise EnvironmentProblem(self.path, f"cannot lock: {e.strerror or e}") from e
            if time.monotonic() >= deadline:
                holder = _read_holder(fd)
                os.close(fd)
                raise Conflict(self.root, f"another soundark process ({holder}) is writing this archive; "
                                          "wait for it or stop it")
            time.sleep(_POLL_SECONDS)
        self.fd = fd
        try:
            self._write_holder(fd)
        except OSError as e:  # a full (or failing) disk: a writer could not get far anyway
            self.release()
            reason = ("disk full: free space and re-run (nothing was written)"
                      if e.errno in (errno.ENOSPC, errno.EDQUOT) else f"cannot write the lock file: {e.strerror or e}")
            raise EnvironmentProblem(self.root, reason) from e
        return self

    def _write_holder(self, fd: int) -> None:
        text = json.dumps({"pid": os.getpid(), "command": self.command,
                           "since": time.strftime("%H:%M:%S"), "started": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, (text + "\n").encode(), 0)

    def release(self) -> None:
        if self.fd is None:
            return
        # Empty the file first: a reader that opens it after we unlock sees no stale holder.
        try:
            os.ftruncate(self.fd, 0)
        except OSError:
            pass
        os.close(self.fd)  # closing drops the flock
        self.fd = None

    def __enter__(self) -> ArchiveLock:
        if self.fd is None:
            self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    """``pid N, `soundark release audio`, since HH:MM:SS`` from the holder's note."""
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        return f"pid {int(data['pid'])}, `{data['command']}`, since {data['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        # The holder has locked but not yet written its note (a window of microseconds).
        return "pid unknown"

