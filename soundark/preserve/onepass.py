"""One read of a bag for every check: SHA-256 per file (RFC 8493 manifests), SHA-1 per v1 piece
(BEP 3) and the BEP 52 merkle root per file (hybrid torrents).

The files, in torrent order (BEP 47 pad files included), are cut into groups of whole files of
roughly equal bytes; a thread per core takes groups from one queue shared by every bag of the
pass (:func:`hash_passes`), so small bags and the last group of a bag do not leave a core idle.
A group hashes its own files and the v1 pieces that *start* inside it; for the last such piece
it reads on into the next files (at most one piece more), so every piece is checked exactly once
and each byte is hashed once per digest (SHA-256 and SHA-1 over the same 1 MiB buffer, read with
``readinto`` into a buffer reused by the thread). hashlib releases the GIL for large updates,
so the threads keep every core busy.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from soundark.config import cpu_count
from soundark.fixity.digest import PieceHasher
from soundark.fixity.regular import open_regular
from soundark.fixity.stream import ByteStream
from soundark.fixity.torrent import BLOCK_V2, merkle_root
from soundark.model import NO_PROGRESS, Progress

CHUNK = 1 << 20  # a multiple of 16 KiB, so v2 leaves never straddle reads
GROUP_MIN = 16 << 20
GROUP_MAX = 256 << 20  # bounds the idle tail at the end of a pass (a core's last group)
_ZEROS = bytes(CHUNK)


@dataclass(frozen=True)
class Entry:
    """One file of the stream. ``size`` None: unknown (no torrent), so no piece check."""

    rel: str | None            # relative to the bag; None for a pad file
    size: int | None
    sha256: bool = True        # compute its SHA-256
    pieces_root: bytes | None = None


@dataclass
class FileResult:
    actual_size: int | None = None   # None: missing, a symlink or not a regular file
    sha256: str | None = None
    root_ok: bool | None = None


@dataclass
class PassResult:
    files: dict[int, FileResult] = field(default_factory=dict)
    bad_pieces: list[int] = field(default_factory=list)
    bytes_read: int = 0        # every byte read, the few re-read for pieces that span groups included
    complete: bool = True      # False when cancelled before every group was hashed


@dataclass(frozen=True)
class PieceSpec:
    hashes: Sequence[bytes]
    length: int


@dataclass(frozen=True)
class PassJob:
    """One bag's part of a pass: its folder, its files in stream order, its v1 pieces if any."""

    root: Path
    entries: Sequence[Entry]
    pieces: PieceSpec | None = None


_local = threading.local()


def _buffer() -> tuple[bytearray, memoryview]:
    """This thread's read buffer (one allocation per thread, not per file)."""
    got = getattr(_local, "buf", None)
    if got is None:
        buf = bytearray(CHUNK)
        got = _local.buf = (buf, memoryview(buf))
    return got


class _Pieces:
    """Checks the v1 pieces whose first byte lies in [start, end) of the stream."""

    def __init__(self, spec: PieceSpec, total: int, start: int, end: int) -> None:
        self.spec = spec
        self.stop = math.ceil(end / spec.length)  # exclusive
        self.limit = min(self.stop * spec.length, total)  # where the last of these pieces ends
        self.hasher = PieceHasher(spec.length, start, self.stop)

    @property
    def pos(self) -> int:
        return self.hasher.pos

    def feed(self, view: memoryview) -> None:
        self.hasher.update(view)

    def bad(self) -> list[int]:
        """The pieces whose SHA-1 differs from the torrent's (call once everything is fed)."""
        first, want = self.hasher.first, self.spec.hashes
        return [first + k for k, got in enumerate(self.hasher.finish()) if got != want[first + k]]

    def feed_zeros(self, n: int) -> None:
        while n > 0:
            k = min(n, CHUNK)
            self.feed(memoryview(_ZEROS)[:k])
            n -= k


def _hash_file(path: Path, entry: Entry, pieces: _Pieces | None) -> tuple[FileResult, int]:
    res = FileResult()
    try:
        fd: int | None = open_regular(path)  # no symlink followed, a FIFO never waited on
    except OSError:
        fd = None
    expected = entry.size if entry.size is not None else -1
    sha = hashlib.sha256() if entry.sha256 else None
    leaves: list[bytes] | None = [] if entry.pieces_root else None
    done = 0
    if fd is not None:
        buf, view = _buffer()
        try:
            with open(fd, "rb", buffering=0, closefd=True) as f:
                while (n := f.readinto(buf)):
                    chunk = view[:n]
                    if sha is not None:
                        sha.update(chunk)
                    if pieces is not None and done < expected:
                        pieces.feed(chunk[:expected - done])
                    if leaves is not None and done < expected:
                        part = chunk[:expected - done]
                        leaves.extend(hashlib.sha256(part[b:b + BLOCK_V2]).digest()
                                      for b in range(0, len(part), BLOCK_V2))
                    done += n
            res.actual_size = done
            res.sha256 = sha.hexdigest() if sha is not None else None
        except OSError:
            res.actual_size = None
    if pieces is not None and done < expected:  # the bytes not on disk fail their pieces, unhashed
        pieces.hasher.lose(expected - done)
    if leaves is not None:
        res.root_ok = res.actual_size == expected and merkle_root(leaves, 0) == entry.pieces_root
    return res, done


def _group(job: _Job, lo: int, hi: int) -> PassResult:
    root, entries = job.root, job.entries
    out = PassResult()
    pieces = None
    if job.pieces is not None:
        pieces = _Pieces(job.pieces, job.stream.total, job.stream.starts[lo],
                         job.stream.starts[hi - 1] + job.stream.sizes[hi - 1])
    for i in range(lo, hi):
        e = entries[i]
        if e.rel is None:
            if pieces is not None:
                pieces.feed_zeros(e.size or 0)
            continue
        out.files[i], n = _hash_file(root / e.rel, e, pieces)
        out.bytes_read += n
    if pieces is not None and pieces.pos < pieces.limit:
        tail = job.stream.read(pieces.pos, pieces.limit - pieces.pos)
        pieces.feed(memoryview(tail))
        out.bytes_read += len(tail)
    if pieces is not None:
        out.bad_pieces = pieces.bad()
    return out


@dataclass(frozen=True)
class _Job:
    root: Path
    entries: Sequence[Entry]
    stream: ByteStream
    pieces: PieceSpec | None


def _groups(entries: Sequence[Entry], piece_length: int, workers: int) -> list[tuple[int, int]]:
    total = sum(e.size or 0 for e in entries)
    floor = max(4 * piece_length, GROUP_MIN)
    target = max(min(total // (workers * 8), max(GROUP_MAX, 2 * floor)), floor)
    groups, lo, acc = [], 0, 0
    for i, e in enumerate(entries):
        acc += e.size or 0
        if acc >= target:
            groups.append((lo, i + 1))
            lo, acc = i + 1, 0
    if lo < len(entries):
        groups.append((lo, len(entries)))
    return groups


def hash_pass(root: Path, entries: Sequence[Entry], pieces: PieceSpec | None = None, *,
              workers: int = 0, progress: Progress = NO_PROGRESS) -> PassResult:
    """Hash every entry under ``root`` once; check v1 pieces if ``pieces`` (sizes then required)."""
    return hash_passes([PassJob(root, entries, pieces)], workers=workers, progress=progress)[0]


def hash_passes(jobs: Sequence[PassJob], *, workers: int = 0,
                progress: Progress = NO_PROGRESS) -> list[PassResult]:
    """:func:`hash_pass` for several bags at once, their groups sharing one pool of threads.

    Groups run in job order; on cancellation the jobs not fully hashed come back with
    ``complete`` False (and whatever their finished groups found).
    """
    workers = workers or cpu_count()
    prepared: list[_Job] = []
    for job in jobs:
        if job.pieces is not None and any(e.size is None for e in job.entries):
            raise ValueError("piece checks need every entry's expected size")
        stream = ByteStream(job.root, [(e.rel, e.size or 0) for e in job.entries])
        prepared.append(_Job(job.root, job.entries, stream, job.pieces))
    results = [PassResult() for _ in jobs]
    left = [0] * len(jobs)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
        futures = {}
        for k, job in enumerate(prepared):
            # without pieces, files are independent: one group per file balances best
            groups = (_groups(job.entries, job.pieces.length, workers) if job.pieces is not None
                      else [(i, i + 1) for i in range(len(job.entries))])
            left[k] = len(groups)
            for lo, hi in groups:
                futures[pool.submit(_group, job, lo, hi)] = (k, lo, hi)
        for fut in as_completed(futures):
            k, lo, hi = futures[fut]
            part, total = fut.result(), results[k]
            total.files.update(part.files)
            total.bad_pieces.extend(part.bad_pieces)
            total.bytes_read += part.bytes_read
            left[k] -= 1
            progress.advance(hi - lo, nbytes=part.bytes_read)
            if progress.cancelled():
                for f in futures:
                    f.cancel()
                break
    for total, n in zip(results, left):
        total.complete = n == 0
        total.bad_pieces.sort()
    return results
