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
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from soundark.config import cpu_count
from soundark.durable import write_durably
from soundark.errors import BadInput, EnvironmentProblem, NotFound, os_reason
from soundark.fixity.digest import sha256_file
from soundark.fixity.paths import check_relpath, check_unique
from soundark.model import NO_PROGRESS, Progress

BAGIT_TXT = "bagit.txt"
BAG_INFO = "bag-info.txt"
MANIFEST = "manifest-sha256.txt"
TAGMANIFEST = "tagmanifest-sha256.txt"
TAG_FILES = (BAGIT_TXT, BAG_INFO, MANIFEST)
BAGIT_DECLARATION = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
MAX_MANIFEST_BYTES = 1 << 30  # 1 GiB of manifest is ~10M files: past that, refuse
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


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


def _read_text(path: Path) -> str:
    try:
        st = path.stat()
        if st.st_size > MAX_MANIFEST_BYTES:
            raise BadInput(path, f"{st.st_size} bytes is too large for a tag file")
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise NotFound(path, "missing: not a BagIt bag, or the tag file was deleted") from e
    except OSError as e:
        raise EnvironmentProblem(path, f"cannot read: {e.strerror or e}") from e
    if b"\0" in data:
        raise BadInput(path, "contains a NUL byte")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(path, f"not UTF-8 text: {e}") from e


def _lines(text: str) -> list[str]:
    # not str.splitlines(): it also splits on U+2028, U+0085 ..., which are legal in file names
    return re.split(r"\r\n|\n|\r", text)


def parse_manifest(text: str, subject: object, prefix: str | None = "data/") -> dict[str, str]:
    """Parse manifest lines into {path: lower-case hex}, refusing anything hostile."""
    out: dict[str, str] = {}
    for n, line in enumerate(_lines(text), start=1):
        if not line.strip():
            continue
        parts = line.split(None, 1) if not line[:1].isspace() else []
        if len(parts) != 2 or not _HEX64.match(parts[0]):
            raise BadInput(f"{subject}:{n}", "not a '<sha256>  <path>' line")
        digest, raw = parts
        # sha256sum's binary-mode marker: "<hex> *path"
        raw = raw[1:] if raw.startswith("*") else raw
        path = check_relpath(decode_path(raw), f"{subject}:{n}")
        if prefix and not path.startswith(prefix):
            raise BadInput(f"{subject}:{n}", f"path {path!r} is outside {prefix}")
        if path in out:
            raise BadInput(f"{subject}:{n}", f"path {path!r} is listed twice")
        out[path] = digest.lower()
    check_unique(out, subject)
    return out


def read_manifest(bag: Path) -> dict[str, str]:
    """``manifest-sha256.txt`` of ``bag`` as {relative path: sha256 hex}; hostile paths refused."""
    path = Path(bag) / MANIFEST
    return parse_manifest(_read_text(path), path)


def read_tagmanifest(bag: Path) -> dict[str, str]:
    path = Path(bag) / TAGMANIFEST
    return parse_manifest(_read_text(path), path, prefix=None)


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
        digest, size = sha256_file(path)
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
