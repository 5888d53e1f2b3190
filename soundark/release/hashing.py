"""Read every byte of a release once: SHA-256 per file and SHA-1 per BitTorrent v1 piece.

A bag's manifest needs the SHA-256 of each payload file (RFC 8493 §2.1.3) and its v1
torrent needs the SHA-1 of every fixed-size piece of the concatenated files (BEP 3). Both
come from one read: the calling thread reads a file in 1 MiB blocks and updates its
SHA-256; each block is also queued to a helper thread that cuts the stream into pieces and
updates their SHA-1 (soundark.fixity.digest.PieceHasher, the one v1 piece hasher). hashlib
releases the GIL on large updates, so the two digests run on two cores at once. The piece
hashes are then handed to libtorrent (``set_hash``), which would otherwise read everything again on one thread.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from pathlib import Path

from soundark.fixity.digest import CHUNK, PieceHasher

_QUEUE_DEPTH = 16  # read buffers: at most 16 MiB in flight between the two threads
_STOP = None


class StreamHasher:
    """One pass over a sequence of files and byte strings (see the module docstring).

    Use as a context manager; feed everything in torrent order with :meth:`add_bytes` and
    :meth:`add_file`, then :meth:`finish` for the piece hashes. Read buffers are recycled
    between the two threads: a fresh 1 MiB buffer per read would cost a page-faulting
    allocation each time.
    """

    def __init__(self, piece_length: int, chunk: int = CHUNK) -> None:
        self._pieces = PieceHasher(piece_length)
        self._queue: queue.Queue[tuple[bytearray | bytes, int, bool] | None] = queue.Queue()
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(_QUEUE_DEPTH):
            self._free.put(bytearray(chunk))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sha1-pieces", daemon=True)
        self._thread.start()
        self._done = False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            buf, n, recycle = item
            if self._error is None:
                try:
                    self._pieces.update(memoryview(buf)[:n])
                except BaseException as e:  # handed to the caller in finish()
                    self._error = e
            if recycle:
                self._free.put(buf)  # type: ignore[arg-type]

    def __enter__(self) -> StreamHasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        if not self._done:
            self._done = True
            self._queue.put(_STOP)
            self._thread.join()

    def add_bytes(self, data: bytes) -> str:
        """Feed bytes that are part of the torrent; returns their SHA-256 hex."""
        if data:
            self._queue.put((bytes(data), len(data), False))
        return hashlib.sha256(data).hexdigest()

    def add_file(self, path: Path) -> tuple[str, int]:
        """Feed a whole file; returns (SHA-256 hex, bytes read). OSError propagates."""
        h = hashlib.sha256()
        size = 0
        with open(path, "rb", buffering=0) as f:
            while True:
                buf = self._free.get()
                try:
                    n = f.readinto(buf)
                except BaseException:
                    self._free.put(buf)
                    raise
                if not n:
                    self._free.put(buf)
                    break
                # the helper only reads buf and returns it to the pool when done; we read it too
                self._queue.put((buf, n, True))
                h.update(memoryview(buf)[:n])
                size += n
        return h.hexdigest(), size

    def finish(self) -> list[bytes]:
        """Wait for the helper thread; the SHA-1 of every piece, in order."""
        self._stop()
        if self._error is not None:
            raise self._error
        return self._pieces.finish()
