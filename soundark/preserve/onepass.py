"""One read of a bag for every check: SHA-256 per file (RFC 8493 manifests), SHA-1 per v1 piece
(BEP 3) and the BEP 52 merkle root per file (hybrid torrents).

The files, in torrent order (BEP 47 pad files included), are cut into groups of whole files of
roughly equal bytes; a thread per core takes groups from a queue. A group hashes its own files
and the v1 pieces that *start* inside it; for the last such piece it reads on into the next
files (at most one piece more), so every piece is checked exactly once and each byte is read
about once. hashlib releases the GIL, so threads use both cores.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from soundark.config import cpu_count
from soundark.fixity.stream import ByteStream
from soundark.fixity.torrent import BLOCK_V2, merkle_root
from soundark.model import NO_PROGRESS, Progress

CHUNK = 1 << 20  # a multiple of 16 KiB, so v2 leaves never straddle reads
_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
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
    bytes_read: int = 0


@dataclass(frozen=True)
class PieceSpec:
    hashes: Sequence[bytes]
    length: int


class _Pieces:
    """Checks the v1 pieces whose first byte lies in [start, end) of the stream."""

    def __init__(self, spec: PieceSpec, total: int, start: int, end: int) -> None:
        self.spec, self.total = spec, total
        self.first = math.ceil(start / spec.length)
        self.stop = math.ceil(end / spec.length)  # exclusive
        self.pos = start
        self.h = hashlib.sha1()
        self.bad: list[int] = []

    @property
    def limit(self) -> int:
        return min(self.stop * self.spec.length, self.total)

    def feed(self, view: memoryview) -> None:
        plen, n = self.spec.length, len(view)
        off = max(0, min(n, self.first * plen - self.pos))
        while off < n:
            p = (self.pos + off) // plen
            if p >= self.stop:
                break
            end = min(n, (p + 1) * plen - self.pos)
            self.h.update(view[off:end])
            off = end
            if self.pos + off == min((p + 1) * plen, self.total):
                if self.h.digest() != self.spec.hashes[p]:
                    self.bad.append(p)
                self.h = hashlib.sha1()
        self.pos += n

    def feed_zeros(self, n: int) -> None:
        while n > 0:
            k = min(n, CHUNK)
            self.feed(memoryview(_ZEROS)[:k])
            n -= k


def _hash_file(path: Path, entry: Entry, pieces: _Pieces | None) -> tuple[FileResult, int]:
    res = FileResult()
    try:
        fd = os.open(path, _FLAGS)
    except OSError:
        fd = None
    if fd is not None and not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        fd = None
    expected = entry.size if entry.size is not None else -1
    sha = hashlib.sha256() if entry.sha256 else None
    leaves: list[bytes] | None = [] if entry.pieces_root else None
    done = 0
    if fd is not None:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
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
    if pieces is not None and done < expected:
        pieces.feed_zeros(expected - done)
    if leaves is not None:
        res.root_ok = res.actual_size == expected and merkle_root(leaves, 0) == entry.pieces_root
    return res, done


def _group(root: Path, entries: Sequence[Entry], lo: int, hi: int, ctx: "_Context") -> PassResult:
    out = PassResult()
    pieces = None
    if ctx.pieces is not None:
        pieces = _Pieces(ctx.pieces, ctx.stream.total, ctx.stream.starts[lo],
                         ctx.stream.starts[hi - 1] + ctx.stream.sizes[hi - 1])
    for i in range(lo, hi):
        e = entries[i]
        if e.rel is None:
            if pieces is not None:
                pieces.feed_zeros(e.size or 0)
            continue
        out.files[i], n = _hash_file(root / e.rel, e, pieces)
        out.bytes_read += n
    if pieces is not None and pieces.pos < pieces.limit:
        tail = ctx.stream.read(pieces.pos, pieces.limit - pieces.pos)
        pieces.feed(memoryview(tail))
        out.bytes_read += len(tail)
    if pieces is not None:
        out.bad_pieces = pieces.bad
    return out


@dataclass(frozen=True)
class _Context:
    stream: ByteStream
    pieces: PieceSpec | None


def _groups(entries: Sequence[Entry], piece_length: int, workers: int) -> list[tuple[int, int]]:
    total = sum(e.size or 0 for e in entries)
    target = max(total // (workers * 8) if workers else total, 4 * piece_length, 16 << 20)
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
    workers = workers or cpu_count()
    if pieces is not None and any(e.size is None for e in entries):
        raise ValueError("piece checks need every entry's expected size")
    stream = ByteStream(root, [(e.rel, e.size or 0) for e in entries])
    ctx = _Context(stream, pieces)
    # without pieces, files are independent: one group per file balances best
    groups = (_groups(entries, pieces.length, workers) if pieces is not None
              else [(i, i + 1) for i in range(len(entries))])
    total = PassResult()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
        futures = {pool.submit(_group, root, entries, lo, hi, ctx): (lo, hi) for lo, hi in groups}
        for fut in as_completed(futures):
            part = fut.result()
            lo, hi = futures[fut]
            total.files.update(part.files)
            total.bad_pieces.extend(part.bad_pieces)
            total.bytes_read += part.bytes_read
            progress.advance(hi - lo, nbytes=part.bytes_read)
            if progress.cancelled():
                for f in futures:
                    f.cancel()
                break
    total.bad_pieces.sort()
    return total
