"""The digests every stage takes of archive files: SHA-256 of a file (RFC 8493 manifests, the
content-addressed store, scanned sources) and SHA-1 of BitTorrent v1 pieces (BEP 3).

Each lives here once; the one-read passes (release's bag writer, preserve's verify) feed their
buffers to :class:`PieceHasher` rather than cutting pieces themselves. Reads go through one
reused 1 MiB buffer with ``readinto``: hashlib releases the GIL on updates that large, so
threads calling these run on every core.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from soundark.fixity.regular import open_regular

CHUNK = 1 << 20


def sha256_file(path: Path, chunk: int = CHUNK, *, sync: bool = False,
                regular_only: bool = False) -> tuple[str, int]:
    """(SHA-256 hex, bytes read) of one file; OSError propagates.

    ``sync``: also fsync the file before returning, so the digest describes bytes that are on
    disk (a freshly written file about to be renamed into the store).
    ``regular_only``: a file in a folder someone else filled (a bag, a download): a symlink,
    FIFO or device is refused (:class:`~soundark.fixity.regular.NotRegular`) before any read.
    """
    h = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    size = 0
    with open(open_regular(path) if regular_only else path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            size += n
        if sync:
            os.fsync(f.fileno())
    return h.hexdigest(), size


LOST = b""  # the digest of a piece with bytes that are not there: equal to no SHA-1


class PieceHasher:
    """SHA-1 of consecutive v1 pieces (BEP 3) of a byte stream fed in order; the last may be short.

    ``start`` is the stream offset of the first byte fed: hashing begins at the first piece
    boundary at or after it (a verify thread owns the pieces that *start* in its range).
    ``stop`` (exclusive piece index) ends it; bytes past it are ignored. ``pieces`` holds the
    digests of pieces ``first``, ``first + 1``, ...; :meth:`finish` adds a short last piece.
    """

    def __init__(self, piece_length: int, start: int = 0, stop: int | None = None) -> None:
        if piece_length <= 0:
            raise ValueError("piece length must be positive")
        self.piece_length = piece_length
        self.first = -(-start // piece_length)
        self.pos = start  # stream offset of the next byte fed
        self.pieces: list[bytes] = []
        self._skip = self.first * piece_length - start
        self._left = None if stop is None else max(0, stop - self.first)
        self._h = hashlib.sha1()
        self._filled = 0
        self._tainted = False  # the piece being filled holds lost bytes: it fails whatever follows

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        self.pos += len(view)
        if self._skip:
            k = min(self._skip, len(view))
            view, self._skip = view[k:], self._skip - k
        while len(view) and self._left != 0:
            take = min(len(view), self.piece_length - self._filled)
            if not self._tainted:  # a piece that already failed needs no hashing
                self._h.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == self.piece_length:
                self._emit()

    def lose(self, n: int) -> None:
        """Advance over *n* bytes that are not there (a missing or short file): no hashing.

        Every piece they touch gets the digest :data:`LOST`, which matches no SHA-1, so it
        fails. The work is the number of pieces, not the bytes a torrent declares: a 20 KB
        torrent declaring a 1 TiB file no longer makes verify hash a terabyte of zeros.
        """
        self.pos += n
        if self._skip:
            k = min(self._skip, n)
            n, self._skip = n - k, self._skip - k
        if n <= 0 or self._left == 0:
            return
        whole, rest = divmod(self._filled + n, self.piece_length)
        if self._left is not None:
            whole = min(whole, self._left)
            self._left -= whole
        self.pieces.extend([LOST] * whole)
        self._h, self._filled, self._tainted = hashlib.sha1(), 0, False
        if rest and self._left != 0:
            self._filled, self._tainted = rest, True

    def _emit(self) -> None:
        self.pieces.append(LOST if self._tainted else self._h.digest())
        self._h, self._filled, self._tainted = hashlib.sha1(), 0, False
        if self._left is not None:
            self._left -= 1

    def finish(self) -> list[bytes]:
        """Every piece digest so far, the short last piece (the stream's end) included."""
        if self._filled and self._left != 0:
            self._emit()
        return self.pieces
