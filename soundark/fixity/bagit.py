"""BagIt bags (RFC 8493): tag files, manifests and fast multi-threaded SHA-256.

A bag is ``bagit.txt``, ``bag-info.txt``, ``manifest-sha256.txt`` (one line ``<hex>  <path>``
per payload file, sorted by path, so coreutils ``sha256sum -c`` can check it from inside the
bag), ``tagmanifest-sha256.txt`` (the same over the three tag files) and the payload under
``data/``. Everything written here is byte-deterministic: the same payload and info give the
same bytes, so independent archivists can compare bags.

Paths in manifests percent-encode CR, LF and ``%`` (RFC 8493 §2.1.3). Manifests read from disk
are untrusted: hostile paths (``..``, absolute, NUL, duplicates, case collisions) are refused
(:mod:`soundark.fixity.paths`).

Hashing: hashlib's SHA-256 (SHA-NI on this CPU) releases the GIL on large updates, so a thread
pool reading 1 MiB blocks keeps every core busy without processes.
"""

from __future__ import annotations

import hashlib
import os
import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from soundark.config import cpu_count
from soundark.durable import write_durably
from soundark.errors import BadInput, EnvironmentProblem, NotFound, os_reason
from soundark.fixity.digest import sha256_file
from soundark.fixity.paths import (
    MAX_PATH_BYTES,
    check_relpath,
    check_unique,
    fold,
    is_safe_relpath,
    new_folders,
)
from soundark.fixity.regular import NotRegular, open_regular
from soundark.model import NO_PROGRESS, Progress

BAGIT_TXT = "bagit.txt"
BAG_INFO = "bag-info.txt"
MANIFEST = "manifest-sha256.txt"
TAGMANIFEST = "tagmanifest-sha256.txt"
TAG_FILES = (BAGIT_TXT, BAG_INFO, MANIFEST)
BAGIT_DECLARATION = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
MAX_MANIFEST_BYTES = 1 << 30  # 1 GiB of manifest is ~10M files: past that, refuse
MAX_BAG_INFO_BYTES = 16 << 20  # bag-info.txt is a few fields; megabytes of it are not metadata
# a manifest line: the digest, its separator and a path that may be percent-encoded whole (x3)
MAX_LINE_BYTES = 64 + 2 + 3 * MAX_PATH_BYTES + 2
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_ROW = re.compile(r"^([0-9a-fA-F]{64})  (?![\s*])(.+)$", re.MULTILINE)  # the lines soundark writes
_BLOCK = 128 << 10  # ~1,300 lines of a manifest; small enough that a bad line costs little


# ---------------------------------------------------------------- writing


def encode_path(path: str) -> str:
    """RFC 8493 §2.1.3: percent-encode %, CR and LF in a manifest path."""
    return path.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def decode_path(text: str) -> str:
    return re.sub(r"%(0[dD]|0[aA]|25)", lambda m: chr(int(m.group(1), 16)), text)


def manifest_text(entries: Iterable[tuple[str, str]]) -> str:
    """``<hex>  <path>`` lines sorted by path (the two-space form ``sha256sum -c`` reads)."""
    rows = sorted(entries, key=lambda e: e[0])
    return "".join(f"{digest.lower()}  {encode_path(path)}\n" for path, digest in rows)


def bag_info_text(info: dict[str, str], oxum: str) -> str:
    lines = []
    for key, value in info.items():
        if key.lower() == "payload-oxum":
            continue  # always computed, never trusted from the caller
        if not key or ":" in key or any(c in key for c in "\r\n") or key != key.strip():
            raise BadInput("bag-info.txt", f"bad field name {key!r}")
        # RFC 8493 §2.2.2: long values continue on lines that start with whitespace
        lines.append(f"{key}: " + "\n  ".join(str(value).splitlines() or [""]))
    lines.append(f"Payload-Oxum: {oxum}")
    return "\n".join(lines) + "\n"


def write_bag_tags(bag: Path, payload: list[tuple[str, str, int]], info: dict[str, str]) -> None:
    """Write bagit.txt, bag-info.txt, manifest-sha256.txt and tagmanifest-sha256.txt into ``bag``.

    ``payload`` holds (path relative to the bag, e.g. ``data/x.opus``, sha256 hex, size) for
    every payload file; the files themselves are the caller's business. ``info`` fields are
    written in the given order, followed by ``Payload-Oxum: <bytes>.<count>``.
    """
    bag = Path(bag)
    paths = [p for p, _, _ in payload]
    for p, digest, size in payload:
        check_relpath(p, bag)
        if not p.startswith("data/"):
            raise BadInput(p, "payload paths must start with data/")
        if not _HEX64.match(digest):
            raise BadInput(p, f"{digest!r} is not a SHA-256 hex digest")
        if size < 0:
            raise BadInput(p, f"negative size {size}")
    check_unique(paths, bag)
    oxum = f"{sum(s for _, _, s in payload)}.{len(payload)}"
    texts = {
        BAGIT_TXT: BAGIT_DECLARATION,
        BAG_INFO: bag_info_text(info, oxum),
        MANIFEST: manifest_text((p, d) for p, d, _ in payload),
    }
    tag_digests = [(name, hashlib.sha256(text.encode("utf-8")).hexdigest()) for name, text in texts.items()]
    texts[TAGMANIFEST] = manifest_text(tag_digests)
    try:
        bag.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            _write_atomic(bag / name, text.encode("utf-8"))
    except OSError as e:
        raise EnvironmentProblem(bag, f"cannot write bag tag files: {os_reason(e)}") from e


def _write_atomic(path: Path, data: bytes) -> None:
    write_durably(path, data)


# ---------------------------------------------------------------- reading


def _open_tag_file(path: Path, limit: int) -> BinaryIO:
    """A tag file opened as a regular file (no FIFO, no symlink to /dev/zero), at most ``limit`` bytes."""
    try:
        f = open(open_regular(path), "rb", closefd=True)
    except FileNotFoundError as e:
        raise NotFound(path, "missing: not a BagIt bag, or the tag file was deleted") from e
    except NotRegular as e:
        raise BadInput(path, f"{e.strerror}; refused") from e
    except OSError as e:
        raise EnvironmentProblem(path, f"cannot read: {e.strerror or e}") from e
    size = os.fstat(f.fileno()).st_size
    if size > limit:
        f.close()
        raise BadInput(path, f"{size} bytes is too large for a tag file")
    return f


def _read_text(path: Path, limit: int = MAX_BAG_INFO_BYTES) -> str:
    with _open_tag_file(path, limit) as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise EnvironmentProblem(path, f"cannot read: {e.strerror or e}") from e
    if len(data) > limit:
        raise BadInput(path, f"more than {limit} bytes is too large for a tag file")
    return _decoded(data, path)


def _decoded(data: bytes, subject: object) -> str:
    if b"\0" in data:
        raise BadInput(subject, "contains a NUL byte")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(subject, f"not UTF-8 text: {e}") from e


def _lines(text: str) -> list[str]:
    # not str.splitlines(): it also splits on U+2028, U+0085 ..., which are legal in file names
    return re.split(r"\r\n|\n|\r", text)


def _blocks(path: Path) -> Iterator[bytes]:
    """The manifest's bytes about 128 KiB at a time, cut after a newline (the last block may
    lack one). Memory is a block: a 200 MB manifest is never held whole, and a line without
    end is handed on once past MAX_LINE_BYTES (so the reader refuses it), not read to its end."""
    tail = b""
    with _open_tag_file(path, MAX_MANIFEST_BYTES) as f:
        while True:
            try:
                chunk = f.read(_BLOCK)
            except OSError as e:
                raise EnvironmentProblem(path, f"cannot read: {e.strerror or e}") from e
            if not chunk:
                if tail:
                    yield tail
                return
            data = tail + chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) > MAX_LINE_BYTES:
                yield data[:MAX_LINE_BYTES + 1]
                return
            if cut:
                yield data[:cut]
            tail = data[cut:]


def _split_block(block: bytes, path: Path, n: int) -> list[tuple[int, str]]:
    """(number, text) of each line of a block whose first line is number n + 1."""
    out = []
    raws = block.split(b"\n")
    ended = raws[-1] == b""
    if ended:
        raws.pop()
    for k, raw in enumerate(raws):
        if len(raw) + 1 > MAX_LINE_BYTES:
            raise BadInput(f"{path}:{n + 1}", f"line longer than {MAX_LINE_BYTES} bytes; refused")
        # the same line ends as _lines: \r\n, \n or a lone \r
        if raw.endswith(b"\r") and (ended or k < len(raws) - 1):
            raw = raw[:-1]
        for part in raw.split(b"\r"):
            n += 1
            out.append((n, _decoded(part, f"{path}:{n}")))
    return out


def _streamed_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(number, text) of each line of a manifest, read a block at a time, none longer than the cap."""
    n = 0
    for block in _blocks(path):
        rows = _split_block(block, path, n)
        n = rows[-1][0] if rows else n
        yield from rows


def _rows(path: Path, prefix: str | None) -> Iterator[tuple[int, str, str]]:
    """(line number, checked path, lower-case hex) of each entry of a manifest file."""
    for rows in _row_blocks(path, prefix):
        yield from rows


def _row_blocks(path: Path, prefix: str | None) -> Iterator[list[tuple[int, str, str]]]:
    """The rows of :func:`_rows`, a block of lines (about 128 KiB) at a time.

    A block of lines in the form soundark writes (``<hex>  <path>``, no CR, no blank line,
    safe paths) is taken with one regex search; any other block goes line by line through
    :func:`_entries`, which words each refusal. Verify of many small bags and of a manifest
    of millions of lines spent most of its time here a line at a time (issue 13).
    """
    n = 0
    for block in _blocks(path):
        rows = _fast_rows(block, n, prefix or "")
        if rows is None:
            lines = _split_block(block, path, n)
            rows = list(_entries(lines, path, prefix))
            n = lines[-1][0] if lines else n
        else:
            n += block.count(b"\n") + (not block.endswith(b"\n"))
        yield rows


def _fast_rows(block: bytes, n: int, prefix: str) -> list[tuple[int, str, str]] | None:
    if b"\r" in block or b"\0" in block:
        return None
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    found = _ROW.findall(text)
    if len(found) != text.count("\n") + (not text.endswith("\n")):
        return None  # a blank, odd or bad line: the slow reader says which
    out = []
    for digest, raw in found:
        n += 1
        rel = decode_path(raw) if "%" in raw else raw
        if not (is_safe_relpath(rel) and rel.startswith(prefix)):
            return None
        out.append((n, rel, digest.lower()))
    return out


def parse_manifest(text: str, subject: object, prefix: str | None = "data/") -> dict[str, str]:
    """Parse manifest lines into {path: lower-case hex}, refusing anything hostile."""
    return _collect(_entries(enumerate(_lines(text), start=1), subject, prefix), subject)


def _collect(rows: Iterable[tuple[int, str, str]], subject: object) -> dict[str, str]:
    out: dict[str, str] = {}
    for n, path, digest in rows:
        if path in out:
            raise BadInput(f"{subject}:{n}", f"path {path!r} is listed twice")
        out[path] = digest
    check_unique(out, subject)
    return out


def _entries(lines: Iterable[tuple[int, str]], subject: object,
             prefix: str | None) -> Iterator[tuple[int, str, str]]:
    """(line number, checked path, lower-case hex) of each manifest line; blank lines skipped."""
    for n, line in lines:
        if not line.strip():
            continue
        parts = line.split(None, 1) if not line[:1].isspace() else []
        if len(parts) != 2 or not _HEX64.match(parts[0]):
            raise BadInput(f"{subject}:{n}", "not a '<sha256>  <path>' line")
        digest, raw = parts
        # sha256sum's binary-mode marker: "<hex> *path"
        raw = raw[1:] if raw.startswith("*") else raw
        path = check_relpath(decode_path(raw) if "%" in raw else raw, f"{subject}:{n}")
        if prefix and not path.startswith(prefix):
            raise BadInput(f"{subject}:{n}", f"path {path!r} is outside {prefix}")
        yield n, path, digest.lower()


def read_manifest(bag: Path) -> dict[str, str]:
    """``manifest-sha256.txt`` of ``bag`` as {relative path: sha256 hex}; hostile paths refused."""
    path = Path(bag) / MANIFEST
    return _collect(_rows(path, "data/"), path)


# ---------------------------------------------------------------- manifests of millions of lines

MANIFEST_KEEP = 100_000  # a manifest of up to this many entries is kept whole (a few tens of MB)


@dataclass(frozen=True)
class ManifestScan:
    """A manifest checked whole in one streamed pass, then read again a window at a time.

    ``entries`` holds every entry when there are at most ``keep`` of them (one pass, as
    :func:`read_manifest`). Past that the scan keeps no entry: it keeps 8 bytes per line, the
    sorted ``hash()`` of each path (for ``in``), and :meth:`windows` reads the file again, so
    a 2-million-line manifest costs tens of MB, not gigabytes (issue 13).
    """

    path: Path
    prefix: str | None
    count: int
    entries: dict[str, str] | None
    keys: object = None  # numpy int64 array, sorted; None when ``entries`` is kept

    def __contains__(self, rel: object) -> bool:
        if self.entries is not None:
            return rel in self.entries
        import numpy as np

        keys = self.keys
        if not isinstance(keys, np.ndarray):  # entries is None only once keys were made
            raise TypeError("ManifestScan holds neither entries nor keys")
        at = int(np.searchsorted(keys, hash(rel)))
        # a hash, not the path: a false yes has odds of about count / 2**64
        return at < len(keys) and int(keys[at]) == hash(rel)

    def windows(self, size: int) -> Iterator[dict[str, str]]:
        """The entries as dicts of at most ``size`` (any size when kept whole), in file order.

        The file is read again and every line checked again: it may have changed since.
        """
        if self.entries is not None:
            yield self.entries
            return
        window: dict[str, str] = {}
        for _, rel, digest in _rows(self.path, self.prefix):
            window[rel] = digest
            if len(window) >= size:
                yield window
                window = {}
        if window:
            yield window


def scan_manifest(bag: Path, *, keep: int | None = None) -> ManifestScan:
    """``manifest-sha256.txt`` of ``bag`` checked as :func:`read_manifest` checks it (hostile
    paths, duplicates, case and file/folder clashes refused) in memory bounded by ``keep``
    (default MANIFEST_KEEP) entries plus 8 to 16 bytes a line."""
    keep = MANIFEST_KEEP if keep is None else keep
    path = Path(bag) / MANIFEST
    kept: dict[str, str] = {}
    hashes = _PathHashes()
    count = 0
    for rows in _row_blocks(path, "data/"):
        count += len(rows)
        if count <= keep:
            for n, rel, digest in rows:
                if rel in kept:
                    raise BadInput(f"{path}:{n}", f"path {rel!r} is listed twice")
                kept[rel] = digest
            continue
        if kept:
            hashes.add(list(kept))
            kept.clear()
        hashes.add([rel for _, rel, _ in rows])
    if count <= keep:
        check_unique(kept, path)
        return ManifestScan(path, "data/", count, kept)
    suspects = hashes.suspects()
    if suspects:
        _confirm_unique(path, suspects)
    return ManifestScan(path, "data/", count, None, hashes.sorted_names())


class _PathHashes:
    """hash() of each path, of its folded form and of each new folder, in 8-byte arrays.

    Two folded paths with one hash, or a folded path whose hash is also a folder's, are
    suspects: :func:`_confirm_unique` then compares the real strings of those few.
    """

    def __init__(self) -> None:
        self.names, self.files, self.folders = array("q"), array("q"), array("q")
        self.last = ""

    def add(self, rels: list[str]) -> None:
        keys = [fold(rel) for rel in rels]
        self.names.extend(map(hash, rels))
        self.files.extend(map(hash, keys))
        prev = self.last
        prev_parent = prev.rpartition("/")[0]
        for key in keys:
            parent = key.rpartition("/")[0]
            if parent != prev_parent:  # most paths share the folder of the one before
                self.folders.extend(map(hash, new_folders(key, prev)))
                prev_parent = parent
            prev = key
        self.last = prev

    def suspects(self) -> set[int]:
        import numpy as np

        files = np.sort(np.frombuffer(self.files, dtype=np.int64))
        self.files = array("q")
        twice = files[1:][files[1:] == files[:-1]]
        clash = np.intersect1d(files, np.frombuffer(self.folders, dtype=np.int64))
        self.folders = array("q")
        return set(twice.tolist()) | set(clash.tolist())

    def sorted_names(self) -> object:
        import numpy as np

        names = np.sort(np.frombuffer(self.names, dtype=np.int64))
        self.names = array("q")
        return names


def _confirm_unique(path: Path, suspects: set[int]) -> None:
    """Read the manifest again and compare, as strings, the paths whose hashes met."""
    seen: dict[str, int] = {}

    def suspected() -> Iterator[str]:
        for n, rel, _ in _rows(path, "data/"):
            key = fold(rel)
            folders = key.split("/")
            if hash(key) in suspects or any(hash("/".join(folders[:i])) in suspects
                                            for i in range(1, len(folders))):
                if rel in seen:
                    raise BadInput(f"{path}:{n}", f"path {rel!r} is listed twice")
                seen[rel] = n
                yield rel

    check_unique(suspected(), path)


def read_tagmanifest(bag: Path) -> dict[str, str]:
    path = Path(bag) / TAGMANIFEST
    return _collect(_rows(path, None), path)


def read_bag_info(bag: Path) -> dict[str, str]:
    """``bag-info.txt`` as {field: value}; continuation lines are joined with a newline."""
    path = Path(bag) / BAG_INFO
    out: dict[str, str] = {}
    last = None
    for n, line in enumerate(_lines(_read_text(path)), start=1):
        if not line.strip():
            continue
        if line[0] in " \t" and last is not None:
            out[last] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise BadInput(f"{path}:{n}", "not a 'Field: value' line")
        last = key.strip()
        out[last] = value.strip() if last not in out else out[last] + "\n" + value.strip()
    return out


def parse_oxum(text: str, subject: object) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d{1,18})\.(\d{1,12})\s*", text or "")
    if not m:
        raise BadInput(subject, f"Payload-Oxum {text!r} is not '<bytes>.<count>'")
    return int(m.group(1)), int(m.group(2))


# ---------------------------------------------------------------- hashing


@dataclass(frozen=True)
class FileHash:
    """One file's SHA-256 and size, or why it could not be read."""

    path: Path
    sha256: str | None
    size: int
    error: str | None = None


def _hash_one(path: Path) -> FileHash:
    try:
        digest, size = sha256_file(path, regular_only=True)
        return FileHash(path, digest, size)
    except OSError as e:
        return FileHash(path, None, 0, e.strerror or str(e))


def hash_files(files: Sequence[Path], *, workers: int = 0,
               progress: Progress = NO_PROGRESS) -> list[FileHash]:
    """SHA-256 of every file, in the given order, on ``workers`` threads (0 = one per core).

    A file that cannot be read gets ``sha256=None`` and its ``error``; the batch goes on.
    ``progress.advance(1, item, nbytes)`` is called once per file, from the calling thread.
    """
    workers = workers or cpu_count()
    results: list[FileHash] = []
    if workers <= 1 or len(files) <= 1:
        for path in files:
            results.append(_hash_one(Path(path)))
            progress.advance(1, str(path), results[-1].size)
        return results
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sha256") as pool:
        for result in pool.map(_hash_one, [Path(p) for p in files]):
            results.append(result)
            progress.advance(1, str(result.path), result.size)
    return results
