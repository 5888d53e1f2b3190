"""Erasure-coded repair data for one BagIt bag ("soundark-parity/1", see docs/parity.md).

The bag's files (tag files and payload, sorted by path) are read end to end as one stream of
``stream_bytes`` bytes, zero-padded to ``k * columns * block_size`` and cut into ``k`` **rows**
of ``row_bytes = columns * block_size`` bytes: row ``j`` is stream bytes
``[j*row_bytes, (j+1)*row_bytes)``. A systematic Reed-Solomon code over GF(2^8) (zfec, the
Rizzo/Vandermonde construction; Tahoe-LAFS uses the same library) turns the ``k`` data rows into
``m`` parity rows, byte position by byte position. Each row is cut into ``columns`` blocks of
``block_size`` bytes; every data and parity block has its SHA-256 in ``blocks.sha256``, which is
how damaged blocks are found: a block whose hash fails is an *erasure*.

Reach: column ``c`` (block ``c`` of every row, ``k + m`` blocks) survives as long as at most ``m``
of its blocks are damaged. Because rows are consecutive slices of the stream, one contiguous run
of damage (a deleted or truncated file, several neighbouring files, a bad disk region) puts at
most ``ceil(n / columns)`` damaged blocks into any column when it covers ``n`` blocks; so any
single contiguous run of up to ``m * columns`` blocks (about ``overhead`` of the bag) is always
repairable, and scattered damage (flipped bits) is repairable while no column collects more than
``m`` bad blocks. Damaged parity blocks count against the same ``m``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zfec

from soundark import jsontext
from soundark.config import cpu_count
from soundark.durable import fsync_dir, fsync_file, replace_durably
from soundark.errors import BadInput, EnvironmentProblem, os_reason
from soundark.fixity.bagit import (
    BAG_INFO,
    BAGIT_TXT,
    MANIFEST,
    TAGMANIFEST,
    FileHash,
    hash_files,
    read_manifest,
    write_bag_tags,
)
from soundark.fixity.paths import check_relpath, check_size, check_unique
from soundark.fixity.regular import read_regular, regular_size
from soundark.fixity.stream import ByteStream

FORMAT = "soundark-parity/1"
INDEX = "data/parity.json"
BLOCK_HASHES = "data/blocks.sha256"
README = "data/README.txt"
MAX_SHARES = 256  # zfec: k + m <= 256
MIN_BLOCK = 4096
MAX_BLOCK = 65536
BATCH_BYTES = 32 << 20  # data read per encode batch (k chunks)
HASH_LEN = 32
MAX_INDEX_BYTES = 1 << 30  # parity.json lists every file of the bag (~150 bytes each)


@dataclass(frozen=True)
class Layout:
    """How a stream is cut into rows, columns and blocks."""

    k: int
    m: int
    block_size: int
    columns: int
    stream_bytes: int

    @property
    def row_bytes(self) -> int:
        return self.columns * self.block_size

    @property
    def reach_bytes(self) -> int:
        """The longest single contiguous run of damage always repairable (block-aligned)."""
        return self.m * self.row_bytes

    def block_of(self, offset: int) -> int:
        """Stream offset -> global block number g; its row is g // columns, column g % columns."""
        return offset // self.block_size


def plan_layout(stream_bytes: int, overhead: float) -> Layout:
    """Choose k, m, block size and columns for ``stream_bytes`` at ``overhead`` (0 < overhead <= 1)."""
    if not (isinstance(overhead, (int, float)) and 0 < overhead <= 1):
        raise BadInput("parity_overhead", f"{overhead!r} must be a share in (0, 1], e.g. 0.05")
    m_max = max(1, round(MAX_SHARES * overhead / (1 + overhead)))
    k_max = MAX_SHARES - m_max
    block = MAX_BLOCK
    # small bags get small blocks, so one flipped bit costs little of the parity's reach
    while block > MIN_BLOCK and stream_bytes < 16 * k_max * block:
        block //= 2
    nblocks = max(1, math.ceil(stream_bytes / block))
    k = min(k_max, nblocks)
    m = min(MAX_SHARES - k, max(1, math.ceil(k * overhead - 1e-9)))
    return Layout(k, m, block, math.ceil(nblocks / k), stream_bytes)


def bag_files(bag: Path) -> list[str]:
    """The files parity protects: the manifest's payload and the tag files, sorted by path."""
    names = set(read_manifest(bag))
    names.update(n for n in (BAGIT_TXT, BAG_INFO, MANIFEST, TAGMANIFEST) if (bag / n).is_file())
    return sorted(names)


# ---------------------------------------------------------------- encoding


class _Encoder:
    def __init__(self, stream: ByteStream, layout: Layout, parity_fds: list[int]) -> None:
        self.stream, self.layout, self.fds = stream, layout, parity_fds
        L = layout
        self.data_hashes = bytearray(L.k * L.columns * HASH_LEN)
        self.parity_hashes = bytearray(L.m * L.columns * HASH_LEN)
        self.codec = zfec.Encoder(L.k, L.k + L.m)

    def batch(self, c0: int, c1: int) -> None:
        L = self.layout
        width = (c1 - c0) * L.block_size
        rows = [self.stream.read(j * L.row_bytes + c0 * L.block_size, width) for j in range(L.k)]
        for j, row in enumerate(rows):
            _hash_blocks(row, L.block_size, self.data_hashes, (j * L.columns + c0) * HASH_LEN)
        parity = self.codec.encode(rows, list(range(L.k, L.k + L.m)))
        for i, chunk in enumerate(parity):
            os.pwrite(self.fds[i], chunk, c0 * L.block_size)
            _hash_blocks(chunk, L.block_size, self.parity_hashes, (i * L.columns + c0) * HASH_LEN)


def _hash_blocks(buf: bytes | bytearray, block: int, out: bytearray, at: int) -> None:
    view = memoryview(buf)
    for b in range(0, len(buf), block):
        out[at:at + HASH_LEN] = hashlib.sha256(view[b:b + block]).digest()
        at += HASH_LEN


def _batches(layout: Layout) -> list[tuple[int, int]]:
    width = max(1, BATCH_BYTES // (layout.k * layout.block_size))
    return [(c, min(c + width, layout.columns)) for c in range(0, layout.columns, width)]


def write_parity(bag: Path, out_dir: Path, overhead: float = 0.05) -> dict[str, Any]:
    """Write the parity sidecar for ``bag`` into ``out_dir`` (itself a BagIt bag); return a summary.

    ``out_dir`` is replaced if it exists (parity is derived data: same bag, same bytes).
    """
    bag, out_dir = Path(bag).absolute(), Path(out_dir).absolute()
    names = bag_files(bag)
    hashes = hash_files([bag / n for n in names])
    for name, h in zip(names, hashes):
        if h.sha256 is None:
            raise BadInput(bag / name, f"cannot read for parity: {h.error}")
    stream = ByteStream(bag, [(n, h.size) for n, h in zip(names, hashes)])
    layout = plan_layout(stream.total, overhead)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "data").mkdir(parents=True)
        parity_names = [f"data/parity-{i:03d}.bin" for i in range(layout.m)]
        fds = [os.open(tmp / n, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) for n in parity_names]
        try:
            enc = _Encoder(stream, layout, fds)
            with ThreadPoolExecutor(max_workers=cpu_count(), thread_name_prefix="parity") as pool:
                list(pool.map(lambda b: enc.batch(*b), _batches(layout)))
            for fd in fds:
                os.ftruncate(fd, layout.row_bytes)
                os.fsync(fd)
        finally:
            for fd in fds:
                os.close(fd)
        (tmp / BLOCK_HASHES).write_bytes(bytes(enc.data_hashes) + bytes(enc.parity_hashes))
        index = _index(bag.name, layout, names, hashes, parity_names)
        (tmp / INDEX).write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / README).write_text(_readme(bag.name, layout), encoding="utf-8")
        _seal(tmp, bag.name, layout)
        for written in (BLOCK_HASHES, INDEX, README):  # the parity files were fsynced above
            fsync_file(tmp / written)
        fsync_dir(tmp / Path(INDEX).parent)
        fsync_dir(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        replace_durably(tmp, out_dir)
    except OSError as e:
        raise EnvironmentProblem(out_dir, f"cannot write parity: {os_reason(e)}") from e
    return {"bag": str(bag), "parity": str(out_dir), "k": layout.k, "m": layout.m,
            "block_size": layout.block_size, "columns": layout.columns,
            "stream_bytes": layout.stream_bytes, "parity_bytes": layout.m * layout.row_bytes,
            "reach_bytes": layout.reach_bytes}


def _index(bag_name: str, layout: Layout, names: list[str], hashes: list[FileHash],
           parity_names: list[str]) -> dict[str, Any]:
    return {
        "format": FORMAT, "bag": bag_name,
        "code": "zfec systematic Reed-Solomon over GF(2^8), polynomial 0x11d",
        "k": layout.k, "m": layout.m, "block_size": layout.block_size, "columns": layout.columns,
        "row_bytes": layout.row_bytes, "stream_bytes": layout.stream_bytes,
        "block_hash": "sha256", "block_hashes": BLOCK_HASHES, "parity_files": parity_names,
        "files": [{"path": n, "size": h.size, "sha256": h.sha256} for n, h in zip(names, hashes)],
    }


def _seal(folder: Path, bag_name: str, layout: Layout) -> None:
    names = sorted(str(p.relative_to(folder)) for p in (folder / "data").rglob("*") if p.is_file())
    hashes = hash_files([folder / n for n in names])
    payload = []
    for n, h in zip(names, hashes):
        if h.sha256 is None:  # a file just written cannot be read back: never seal "None" into a manifest
            raise EnvironmentProblem(h.path, f"cannot read: {h.error}")
        payload.append((n, h.sha256, h.size))
    write_bag_tags(folder, payload, {
        "External-Description": f"soundark parity (erasure code) for the bag {bag_name}; see data/README.txt",
        "Parity-For": bag_name,
        "Parity-Format": FORMAT,
        "Parity-Reach-Bytes": str(layout.reach_bytes),
    })


def _readme(bag_name: str, L: Layout) -> str:
    return f"""Repair data for the BagIt bag "{bag_name}" (format {FORMAT}).

The bag's files listed in parity.json ("files", in that order; tag files included) are read end
to end as one stream of {L.stream_bytes} bytes, zero-padded to k*row_bytes, and cut into k={L.k}
rows of row_bytes={L.row_bytes} bytes. parity-NNN.bin (m={L.m} files of row_bytes each) are
the parity rows of a systematic Reed-Solomon code over GF(2^8) computed with zfec
(https://github.com/tahoe-lafs/zfec), byte position by byte position: share numbers 0..k-1 are
the data rows, k..k+m-1 the parity files in order.

Rows are cut into columns={L.columns} blocks of block_size={L.block_size} bytes. blocks.sha256
holds the SHA-256 (32 raw bytes each) of every data block, row by row, then of every parity
block, row by row. A block whose hash fails is lost; any k good blocks of a column give back
the column: zfec.Decoder(k, k+m).decode(blocks, share_numbers).

Reach: a column survives up to m={L.m} lost blocks, so one contiguous run of damage up to
{L.reach_bytes} bytes is always repairable. `soundark repair` does all of this.
"""


# ---------------------------------------------------------------- index reading


@dataclass(frozen=True)
class ParityIndex:
    layout: Layout
    files: list[tuple[str, int, str]]  # path, size, sha256
    parity_files: list[str]
    data_hashes: bytes
    parity_hashes: bytes

    def data_hash(self, row: int, col: int) -> bytes:
        at = (row * self.layout.columns + col) * HASH_LEN
        return self.data_hashes[at:at + HASH_LEN]

    def parity_hash(self, row: int, col: int) -> bytes:
        at = (row * self.layout.columns + col) * HASH_LEN
        return self.parity_hashes[at:at + HASH_LEN]


def _integer(raw: dict[str, Any], name: str, path: Path) -> int:
    value = raw.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadInput(path, "k, m, block_size, columns and stream_bytes must be integers")
    return value


def read_index(parity_dir: Path) -> ParityIndex:
    """Load and check ``parity.json`` and ``blocks.sha256``; anything inconsistent is BadInput.

    Everything a crafted index declares is checked against what is on disk before repair
    allocates a byte for it: the block size is one :func:`plan_layout` chooses, the layout is
    the one it chooses for ``stream_bytes``, ``blocks.sha256`` has exactly one hash per block
    (its size is checked before it is read), and each parity file is a regular file of exactly
    one row. So repair's memory (``k`` blocks per decoded column) stays under 16 MiB per
    thread, and its work is bounded by the parity files' real size.
    """
    parity_dir = Path(parity_dir)
    path = parity_dir / INDEX
    raw = _load_json(path, parity_dir)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise BadInput(path, f"not {FORMAT}")
    layout = _checked_layout(raw, path)
    k, m, cols = layout.k, layout.m, layout.columns
    files = []
    listed = raw.get("files") or []
    if not isinstance(listed, list):
        raise BadInput(path, "files must be a list")
    for n, f in enumerate(listed):
        subject = f"{path} files[{n}]"
        if not isinstance(f, dict) or not isinstance(f.get("sha256"), str) or len(f["sha256"]) != 64:
            raise BadInput(subject, "needs path, size and sha256")
        files.append((check_relpath(f.get("path"), subject), check_size(f.get("size"), subject), f["sha256"]))
    check_unique([p for p, _, _ in files], path)
    if sum(s for _, s, _ in files) != layout.stream_bytes:
        raise BadInput(path, "file sizes do not add up to stream_bytes")
    parity_files = raw.get("parity_files") or []
    if not isinstance(parity_files, list) or len(parity_files) != m:
        raise BadInput(parity_dir, "parity files or block hashes do not match k, m and columns")
    parity_files = [check_relpath(p, path) for p in parity_files]
    hashes = _read_hashes(parity_dir, (k + m) * cols * HASH_LEN)
    _check_parity_files(parity_dir, parity_files, layout.row_bytes)
    split = k * cols * HASH_LEN
    return ParityIndex(layout, files, parity_files, hashes[:split], hashes[split:])


def _load_json(path: Path, parity_dir: Path) -> Any:
    try:
        return jsontext.loads(read_regular(path, MAX_INDEX_BYTES).decode("utf-8"))
    except FileNotFoundError as e:
        raise BadInput(parity_dir, f"not a parity folder: {e.filename} is missing") from e
    except (OSError, ValueError) as e:  # ValueError: BadInput, UnicodeDecodeError
        raise BadInput(path, f"cannot read parity index: {e}") from e


def _checked_layout(raw: dict[str, Any], path: Path) -> Layout:
    k, m, block, cols, total = (_integer(raw, n, path) for n in ("k", "m", "block_size", "columns", "stream_bytes"))
    shown = f"k={k} m={m} block_size={block} columns={cols} stream_bytes={total}"
    if not (1 <= k and 1 <= m and k + m <= MAX_SHARES and cols >= 1 and 0 <= total <= 1 << 50):
        raise BadInput(path, f"impossible layout {shown}")
    if not (MIN_BLOCK <= block <= MAX_BLOCK and block & (block - 1) == 0):
        raise BadInput(path, f"block_size {block} is not a power of two in {MIN_BLOCK}..{MAX_BLOCK}; refused")
    nblocks = max(1, math.ceil(total / block))
    if k > nblocks or cols != math.ceil(nblocks / k):
        # the layout plan_layout gives for stream_bytes (any overhead): no columns beyond the data
        raise BadInput(path, f"impossible layout {shown}: not the layout of {total} bytes")
    return Layout(k, m, block, cols, total)


def _read_hashes(parity_dir: Path, want: int) -> bytes:
    path = parity_dir / BLOCK_HASHES
    try:
        data = read_regular(path, want)
    except FileNotFoundError as e:
        raise BadInput(parity_dir, f"not a parity folder: {e.filename} is missing") from e
    except OSError as e:  # more bytes than the layout has blocks, a FIFO, a symlink
        raise BadInput(path, f"cannot read block hashes: {e.strerror or e}") from e
    if len(data) != want:
        raise BadInput(parity_dir, "parity files or block hashes do not match k, m and columns")
    return data


def _check_parity_files(parity_dir: Path, names: list[str], row_bytes: int) -> None:
    """Each parity file is a regular file of exactly one row: what repair reads is on disk."""
    for name in names:
        size = regular_size(parity_dir / name)
        if size is not None and size != row_bytes:
            raise BadInput(parity_dir / name, f"{size} bytes; the index says each parity file "
                                              f"holds one row of {row_bytes} bytes")
