"""Opening files in folders soundark does not control: regular files only, no link followed.

A bag, a download, a store or a releases folder may hold a FIFO (``open(2)`` blocks until a
writer comes, so verify and repair hung), a symlink to ``/dev/zero`` (reads without end) or to
``/etc/passwd`` (the web served it). Every read of such a folder opens with ``O_NOFOLLOW``
(a symlink as the last component fails with ``ELOOP``) and ``O_NONBLOCK`` (a FIFO opens at
once instead of waiting for a writer; the flag does nothing to a regular file), then checks
with ``fstat`` that the descriptor is a regular file before a byte is read (POSIX.1-2017
``open``; Linux ``open(2)``). The check is on the descriptor, not the name, so nothing can be
swapped in between. Folders on the way are checked by :func:`soundark.fixity.paths.resolve_inside`.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FLAGS = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_CHUNK = 1 << 20


class NotRegular(OSError):
    """The path is a symlink, FIFO, device, socket or folder: refused before any read."""


def open_regular(path: Path | str, flags: int = os.O_RDONLY, *, follow: bool = False) -> int:
    """A descriptor on ``path`` (``flags``, e.g. ``os.O_RDONLY`` or ``os.O_RDWR``) if it is a
    regular file reached without following a symlink as its last component; else NotRegular
    (or the OSError of the open itself, e.g. FileNotFoundError).

    ``follow``: a path the user named on the command line may be a symlink they made; it is
    followed, but what it leads to must still be a regular file (no FIFO, no device).
    """
    try:
        fd = os.open(path, flags | _FLAGS | (0 if follow else _NOFOLLOW))
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotRegular(errno.ELOOP, "a symlink, not a regular file", str(path)) from e
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegular(errno.EINVAL, f"{_kind(mode)}, not a regular file", str(path))
        if flags & os.O_ACCMODE == os.O_RDONLY:
            # back to blocking reads (only matters on odd file systems; regular files ignore it)
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path | str, limit: int, *, follow: bool = False) -> bytes:
    """The bytes of a regular file, refused (NotRegular, or OSError EFBIG) past ``limit`` bytes."""
    fd = open_regular(path, follow=follow)
    with open(fd, "rb", closefd=True) as f:
        if os.fstat(f.fileno()).st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
        # not f.read(limit + 1): read(n) allocates n bytes up front; the file may also grow
        parts, total = [], 0
        while chunk := f.read(min(_CHUNK, limit + 1 - total)):
            parts.append(chunk)
            total += len(chunk)
            if total > limit:
                raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
    return b"".join(parts)


def regular_size(path: Path | str) -> int | None:
    """The size of a regular file at ``path`` (a symlink is not followed), else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symlink")):
        if test(mode):
            return name
    return "not a file"
