"""Repair a bag from its soundark-parity/1 sidecar (docs/parity.md), with no network.

1. Find bad blocks: hash the data blocks that overlap suspect files (or all) against
   ``blocks.sha256``; a file of the wrong size, missing or replaced by a symlink is suspect.
2. Decode: for each column with bad blocks, take ``k`` good blocks of that column (good data
   rows first, then parity rows; every block read is hash-checked, a failing one becomes one
   more erasure) and let zfec give back the lost rows. Neighbouring columns with the same
   erasures are decoded in one call, since the code works byte position by byte position.
3. Rebuild each damaged file in a temporary file beside it (the good bytes it still has plus
   the decoded blocks), check its SHA-256 against the index, then rename it into place.
   Files whose blocks are beyond the parity's reach are left as they are and named.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import zfec

from soundark.config import cpu_count
from soundark.durable import replace_durably
from soundark.errors import BadInput
from soundark.fixity.digest import sha256_file
from soundark.fixity.parity import BATCH_BYTES, HASH_LEN, ParityIndex, read_index
from soundark.fixity.paths import check_relpath, resolve_inside
from soundark.fixity.regular import open_regular
from soundark.fixity.stream import ByteStream
from soundark.model import NO_PROGRESS, Progress

TEMP_SUFFIX = ".soundark-repair"


@dataclass
class RepairResult:
    """What a repair found and did. ``ok`` when nothing is left unrepaired."""

    bag: str
    repaired: list[str] = field(default_factory=list)
    unrecoverable: dict[str, str] = field(default_factory=dict)
    damaged_blocks: int = 0
    recovered_blocks: int = 0

    @property
    def ok(self) -> bool:
        return not self.unrecoverable

    def as_dict(self) -> dict[str, Any]:
        return {"bag": self.bag, "ok": self.ok, "repaired": self.repaired,
                "unrecoverable": [{"path": p, "reason": r} for p, r in self.unrecoverable.items()],
                "damaged_blocks": self.damaged_blocks, "recovered_blocks": self.recovered_blocks}


class _Repair:
    def __init__(self, bag: Path, parity_dir: Path, idx: ParityIndex, progress: Progress) -> None:
        self.bag, self.parity_dir, self.idx, self.progress = bag, parity_dir, idx, progress
        self.L = idx.layout
        self.stream = ByteStream(bag, [(p, s) for p, s, _ in idx.files])
        self.bad_data: dict[int, set[int]] = {}    # column -> damaged data rows
        self.bad_parity: dict[int, set[int]] = {}  # column -> damaged parity rows
        self.lost: dict[int, str] = {}             # column -> why it cannot be decoded
        self.temps: dict[int, int] = {}            # file index -> fd of its rebuild
        self.decoder = zfec.Decoder(self.L.k, self.L.k + self.L.m)

    # -- step 1
    def find_bad_blocks(self, files: list[int]) -> None:
        B, S = self.L.block_size, self.L.columns
        blocks: set[int] = set()
        for i in files:
            start, end = self.stream.file_range(i)
            if end > start:
                blocks.update(range(start // B, (end - 1) // B + 1))
        runs = _runs(sorted(blocks), max(1, (8 << 20) // B))
        self.progress.start(len(blocks), "checking blocks", "blocks")
        with ThreadPoolExecutor(max_workers=cpu_count(), thread_name_prefix="repair") as pool:
            for (g0, g1), bad in zip(runs, pool.map(self._check_run, runs)):
                for g in bad:
                    self.bad_data.setdefault(g % S, set()).add(g // S)
                self.progress.advance(g1 - g0, nbytes=(g1 - g0) * B)

    def _check_run(self, run: tuple[int, int]) -> list[int]:
        g0, g1 = run
        B, S = self.L.block_size, self.L.columns
        buf = memoryview(self.stream.read(g0 * B, (g1 - g0) * B))
        return [g for n, g in enumerate(range(g0, g1))
                if hashlib.sha256(buf[n * B:(n + 1) * B]).digest() != self.idx.data_hash(g // S, g % S)]

    # -- step 2
    def decode_all(self) -> None:
        queue = sorted(self.bad_data)
        self.progress.start(len(queue), "decoding parity", "columns")
        width = max(1, BATCH_BYTES // (self.L.k * self.L.block_size))
        while queue:
            c0 = queue[0]
            key = self._erasures(c0)
            n = 1
            while n < len(queue) and n < width and queue[n] == c0 + n and self._erasures(c0 + n) == key:
                n += 1
            retry = self._decode_group(c0, c0 + n)
            if retry:
                continue  # erasures grew: regroup from c0
            queue = queue[n:]
            self.progress.advance(n)

    def _erasures(self, col: int) -> tuple[frozenset[int], frozenset[int]]:
        return frozenset(self.bad_data.get(col, ())), frozenset(self.bad_parity.get(col, ()))

    def _decode_group(self, c0: int, c1: int) -> bool:
        """Decode columns [c0, c1); True when a block read turned out bad (caller regroups)."""
        L = self.L
        erased = sorted(self.bad_data.get(c0, ()))
        good_par = [i for i in range(L.m) if i not in self.bad_parity.get(c0, ())]
        if len(erased) > len(good_par):
            for c in range(c0, c1):
                self.lost[c] = (f"{len(erased)} damaged data blocks and "
                                f"{L.m - len(good_par)} damaged parity blocks in one column; "
                                f"the parity repairs at most {L.m}")
            return False
        rows = [j for j in range(L.k) if j not in erased]
        width = (c1 - c0) * L.block_size
        shares = [self.stream.read(j * L.row_bytes + c0 * L.block_size, width) for j in rows]
        par_rows = good_par[:len(erased)]
        shares += [self._read_parity(i, c0, width) for i in par_rows]
        if self._check_shares(shares, rows, par_rows, c0):
            return True
        decoded = self.decoder.decode(shares, rows + [L.k + i for i in par_rows])
        for j in erased:
            self._write_back(j, c0, decoded[j])
        return False

    def _read_parity(self, i: int, c0: int, width: int) -> bytearray:
        buf = bytearray(width)
        try:
            path = resolve_inside(self.parity_dir, self.idx.parity_files[i])
            with open(open_regular(path), "rb") as f:
                f.seek(c0 * self.L.block_size)
                f.readinto(buf)
        except (OSError, BadInput):
            pass  # stays zero; its hash check fails and it becomes an erasure
        return buf

    def _check_shares(self, shares: list[bytearray], rows: list[int], par_rows: list[int], c0: int) -> bool:
        B, grew = self.L.block_size, False
        for n, share in enumerate(shares):
            view = memoryview(share)
            for b in range(len(share) // B):
                digest = hashlib.sha256(view[b * B:(b + 1) * B]).digest()
                if n < len(rows):
                    if digest != self.idx.data_hash(rows[n], c0 + b):
                        self.bad_data.setdefault(c0 + b, set()).add(rows[n])
                        grew = True
                elif digest != self.idx.parity_hash(par_rows[n - len(rows)], c0 + b):
                    self.bad_parity.setdefault(c0 + b, set()).add(par_rows[n - len(rows)])
                    grew = True
        return grew

    def _write_back(self, row: int, c0: int, chunk: bytes) -> None:
        L = self.L
        offset = row * L.row_bytes + c0 * L.block_size
        view = memoryview(chunk)
        for seg in self.stream.segments(offset, len(chunk)):
            fd = self.temps.get(seg.index)
            if fd is not None:
                os.pwrite(fd, view[seg.buf_offset:seg.buf_offset + seg.length], seg.file_offset)

    # -- step 3
    def prepare(self, i: int) -> str | None:
        """Start the rebuild of file i from what is left of it; a reason when that is impossible."""
        rel, size, _ = self.idx.files[i]
        try:
            dest = _file_inside(self.bag, rel)
            _make_parents(self.bag, rel)
            temp = dest.with_name(f".{dest.name}{TEMP_SUFFIX}")
            fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        except (OSError, BadInput) as e:
            return f"cannot rebuild: {getattr(e, 'strerror', None) or e}"
        try:
            src = open_regular(dest)
            try:
                with os.fdopen(os.dup(src), "rb") as fin, os.fdopen(os.dup(fd), "wb") as fout:
                    _copy_prefix(fin, fout, size)
            finally:
                os.close(src)
        except OSError:
            pass  # missing, a symlink, a FIFO or a device: rebuilt from nothing
        os.ftruncate(fd, size)
        self.temps[i] = fd
        return None

    def finish(self, i: int, lost_blocks: int) -> str | None:
        rel, size, digest = self.idx.files[i]
        fd = self.temps.pop(i)
        dest = self.bag / rel
        temp = dest.with_name(f".{dest.name}{TEMP_SUFFIX}")
        placed = False
        try:
            os.fsync(fd)
            os.close(fd)
            if lost_blocks:
                return (f"{lost_blocks} damaged block(s) of {self.L.block_size} bytes are beyond the "
                        f"parity's reach (at most {self.L.m} lost blocks per column)")
            if sha256_file(temp)[0] != digest:
                return "rebuilt file does not match its SHA-256 (parity index and bag disagree)"
            if os.path.isdir(dest) and not os.path.islink(dest):
                return "a folder stands where the file should be; move it away and repair again"
            replace_durably(temp, dest)
            placed = True
            return None
        except OSError as e:
            return f"cannot rebuild: {e.strerror or e}"
        finally:
            if not placed:
                temp.unlink(missing_ok=True)


def _runs(blocks: list[int], cap: int) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for g in blocks:
        if runs and runs[-1][1] == g and g - runs[-1][0] < cap:
            runs[-1] = (runs[-1][0], g + 1)
        else:
            runs.append((g, g + 1))
    return runs


def _file_inside(root: Path, rel: str) -> Path:
    """``root/rel`` with no symlinked folder on the way. The file itself may be a symlink (to
    /dev/zero, say): it is never opened through, and the rebuilt file's rename replaces the
    link itself, not what it points to."""
    folder, _, name = rel.rpartition("/")
    check_relpath(rel, root)
    return (resolve_inside(root, folder) if folder else Path(root)) / name


def _make_parents(root: Path, rel: str) -> None:
    current = root
    for part in rel.split("/")[:-1]:
        current = current / part
        if not current.is_dir() or current.is_symlink():
            current.mkdir()  # raises if a file or symlink is in the way


def _copy_prefix(fin: BinaryIO, fout: BinaryIO, size: int) -> None:
    left = size
    while left > 0:
        data = fin.read(min(left, 1 << 20))
        if not data:
            break
        fout.write(data)
        left -= len(data)


def repair_bag(bag: Path, parity_dir: Path, suspects: Iterable[str] | None = None,
               progress: Progress = NO_PROGRESS) -> RepairResult:
    """Restore damaged, truncated or missing files of ``bag`` from ``parity_dir``, byte-exact.

    ``suspects`` (paths relative to the bag) limits the block check to those files (plus any
    file whose size is wrong); ``None`` checks every block.
    """
    bag, parity_dir = Path(bag), Path(parity_dir)
    idx = read_index(parity_dir)
    job = _Repair(bag, parity_dir, idx, progress)
    result = RepairResult(bag=str(bag))
    names = [p for p, _, _ in idx.files]
    wrong_size = {i for i, (_, size, _) in enumerate(idx.files) if job.stream.actual_size(i) != size}
    wanted = set(suspects) if suspects is not None else set(names)
    check = sorted({i for i, p in enumerate(names) if p in wanted} | wrong_size)
    job.find_bad_blocks(check)
    fix = _files_to_fix(job, wrong_size)
    result.damaged_blocks = sum(len(r) for r in job.bad_data.values())
    if not fix:
        return result
    for i in fix:
        reason = job.prepare(i)
        if reason:
            result.unrecoverable[names[i]] = reason
    try:
        job.decode_all()
    finally:
        lost = _lost_blocks_per_file(job)
        for i in sorted(job.temps):
            reason = job.finish(i, lost.get(i, 0))
            if reason:
                result.unrecoverable[names[i]] = reason
            else:
                result.repaired.append(names[i])
    result.damaged_blocks = sum(len(r) for r in job.bad_data.values())
    result.recovered_blocks = sum(len(r) for c, r in job.bad_data.items() if c not in job.lost)
    return result


def _files_to_fix(job: _Repair, wrong_size: set[int]) -> list[int]:
    """Files touched by a bad block whose own bytes are wrong, plus files of the wrong size."""
    B, S = job.L.block_size, job.L.columns
    touched: set[int] = set()
    for col, rows in job.bad_data.items():
        for row in rows:
            g = row * S + col
            touched.update(seg.index for seg in job.stream.segments(g * B, B))
    fix = set(wrong_size)
    for i in touched - wrong_size:
        path = job.stream.path_of(i)
        try:
            intact = path is not None and sha256_file(path, regular_only=True)[0] == job.idx.files[i][2]
        except (OSError, BadInput):
            intact = False
        if not intact:
            fix.add(i)
    return sorted(fix)


def _lost_blocks_per_file(job: _Repair) -> dict[int, int]:
    B, S = job.L.block_size, job.L.columns
    lost: dict[int, int] = {}
    for col in job.lost:
        for row in job.bad_data.get(col, ()):
            for seg in job.stream.segments((row * S + col) * B, B):
                if seg.index in job.temps:
                    lost[seg.index] = lost.get(seg.index, 0) + 1
    return lost


__all__ = ["RepairResult", "repair_bag", "HASH_LEN"]
