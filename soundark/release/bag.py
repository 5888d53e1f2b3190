"""Build one release folder as a BagIt bag (RFC 8493), hashing it once for bag and torrent.

The payload goes under ``data/``: store files are hard-linked (same inode, no copied audio;
copied only when the store is on another file system), generated files (README.txt,
tracks.jsonl) are written. The tag files come from :mod:`soundark.fixity.bagit`.

One read: in canonical torrent order the tag files ``bag-info.txt`` and ``bagit.txt`` come
before ``data/`` and do not depend on any digest (only on sizes), so their bytes are known
up front; the payload is then read once for SHA-256 (manifest) and SHA-1 (v1 pieces), and
the manifests that follow ``data/`` are hashed last. If the tag files ever came out
different from the prediction, the piece hashes are dropped and libtorrent re-reads.
Every store file's SHA-256 is checked against its content address while it is read: a
damaged store file is refused (:class:`DamagedFile`), never published.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from soundark.errors import BadInput, EnvironmentProblem, os_reason
from soundark.fixity.bagit import (
    BAG_INFO,
    BAGIT_DECLARATION,
    BAGIT_TXT,
    MANIFEST,
    TAGMANIFEST,
    bag_info_text,
    hash_files,
    read_manifest,
    write_bag_tags,
)
from soundark.model import NO_PROGRESS, Progress
from soundark.release.hashing import StreamHasher
from soundark.release.torrent import canonical_key, piece_length_for

TAG_NAMES = (BAGIT_TXT, BAG_INFO, MANIFEST, TAGMANIFEST)
_COPY_ERRNOS = {errno.EXDEV, errno.EMLINK, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP}


class DamagedFile(BadInput):
    """A store file is missing or its bytes no longer match its SHA-256 address."""

    def __init__(self, subject: object, reason: str, key: object = None) -> None:
        super().__init__(subject, reason)
        self.key = key  # what the caller uses to hold the item back (e.g. a recording id)


@dataclass(frozen=True)
class BagEntry:
    """One payload file: linked from ``source`` (with its expected SHA-256) or written from ``content``."""

    rel: str  # relative to the bag, starts with data/
    size: int
    source: Path | None = None
    sha256: str | None = None
    content: bytes | None = None
    key: object = None  # handed back in DamagedFile


@dataclass
class BuiltBag:
    folder: Path
    payload: list[tuple[str, str, int]]  # (rel, sha256, size) in canonical order
    files: list[tuple[str, int]]  # every file of the bag, canonical order (the torrent's list)
    piece_length: int = 0
    pieces: list[bytes] | None = None  # v1 piece hashes, when computed in the same pass
    linked: int = 0
    copied: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.files)


def place_file(source: Path, target: Path) -> bool:
    """Hard-link ``source`` at ``target``; copy if linking cannot work here. True if linked."""
    try:
        os.link(source, target)
        return True
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno not in _COPY_ERRNOS:
            raise
    shutil.copyfile(source, target)
    return False


def _place_payload(folder: Path, entries: list[BagEntry], built: BuiltBag) -> None:
    for entry in entries:
        target = folder / entry.rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.content is not None:
                target.write_bytes(entry.content)
                continue
        except OSError as e:  # a full disk meets the bag's own small files first
            raise EnvironmentProblem(target, f"cannot write: {os_reason(e)}") from e
        try:
            if place_file(entry.source, target):
                built.linked += 1
            else:
                built.copied += 1
        except FileNotFoundError as e:
            raise DamagedFile(entry.source, "missing from the store", entry.key) from e
        except OSError as e:
            raise EnvironmentProblem(target, f"cannot link or copy: {os_reason(e)}") from e


def _all_files(entries: list[BagEntry], info: dict[str, str]) -> tuple[list[str], dict[str, bytes]]:
    """Every path of the bag in canonical order, and the predicted bytes of the head tag files."""
    oxum = f"{sum(e.size for e in entries)}.{len(entries)}"
    head = {BAGIT_TXT: BAGIT_DECLARATION.encode("utf-8"),
            BAG_INFO: bag_info_text(info, oxum).encode("utf-8")}
    paths = sorted([e.rel for e in entries] + list(TAG_NAMES), key=canonical_key)
    return paths, head


def build_bag(folder: Path, entries: list[BagEntry], info: dict[str, str], *,
              one_pass: bool = True, progress: Progress = NO_PROGRESS) -> BuiltBag:
    """Create the bag in ``folder`` (which must not exist) and hash it.

    With ``one_pass`` the v1 piece hashes of the whole folder are computed in the same read
    (piece length from the payload size, :func:`piece_length_for`); without it (hybrid
    torrents, which libtorrent hashes itself) only the payload is hashed, on every core.
    """
    for entry in entries:
        if not entry.rel.startswith("data/"):
            raise BadInput(entry.rel, "payload paths must start with data/")
    try:
        folder.mkdir(parents=True)
    except OSError as e:
        raise EnvironmentProblem(folder, f"cannot create: {os_reason(e)}") from e
    piece_length = piece_length_for(sum(e.size for e in entries))
    built = BuiltBag(folder, [], [], piece_length=piece_length)
    _place_payload(folder, entries, built)
    by_rel = {e.rel: e for e in entries}
    paths, head = _all_files(entries, info)
    progress.start(len(entries), f"hashing {folder.name}", unit="files")
    if not one_pass:
        digests = _hash_parallel(folder, [by_rel[p] for p in paths if p in by_rel], progress)
        built.payload = [(p, digests[p], by_rel[p].size) for p in paths if p in by_rel]
        write_bag_tags(folder, built.payload, info)
    else:
        built.pieces = _hash_one_pass(folder, paths, by_rel, head, piece_length, info, built, progress)
    found = sorted(_walk(folder), key=canonical_key)
    if found != paths:  # the tag writer added or left a file we did not plan for
        built.pieces = None
        built.notes.append("the bag holds other files than planned; pieces re-hashed")
    built.files = [(p, (folder / p).stat().st_size) for p in found]
    return built


def _walk(folder: Path) -> list[str]:
    out = []
    for root, _, names in os.walk(folder):
        rel_root = Path(root).relative_to(folder)
        out += [(rel_root / n).as_posix() for n in names]
    return out


def _check(entry: BagEntry, digest: str, size: int) -> None:
    if entry.sha256 is not None and (digest != entry.sha256 or size != entry.size):
        raise DamagedFile(entry.source or entry.rel, f"bytes changed: SHA-256 {digest} ({size} bytes) "
                          f"where {entry.sha256} ({entry.size} bytes) was stored", entry.key)
    if entry.sha256 is None and size != entry.size:
        raise EnvironmentProblem(entry.rel, f"wrote {entry.size} bytes but read back {size}")


def _hash_one_pass(folder: Path, paths: list[str], by_rel: dict[str, BagEntry], head: dict[str, bytes],
                   piece_length: int, info: dict[str, str], built: BuiltBag,
                   progress: Progress) -> list[bytes] | None:
    """Feed head tags, payload and tail tags in torrent order; write the tags; the v1 pieces."""
    tail_start = max(i for i, p in enumerate(paths) if p in by_rel or p in head) + 1
    digests: dict[str, str] = {}
    with StreamHasher(piece_length) as hasher:
        for rel in paths[:tail_start]:
            if rel in head:
                hasher.add_bytes(head[rel])
                continue
            entry = by_rel[rel]
            try:
                digest, size = hasher.add_file(folder / rel)
            except OSError as e:
                raise EnvironmentProblem(folder / rel, f"cannot read: {e.strerror or e}") from e
            _check(entry, digest, size)
            digests[rel] = digest
            progress.advance(1, rel, size)
        built.payload = [(p, digests[p], by_rel[p].size) for p in paths if p in by_rel]
        write_bag_tags(folder, built.payload, info)
        for rel in paths[tail_start:]:
            hasher.add_file(folder / rel)
        pieces = hasher.finish()
    for name, predicted in head.items():
        if (folder / name).read_bytes() != predicted:
            # a tag file that precedes data/ came out other than predicted: let libtorrent re-read
            built.notes.append(f"{name} differs from the predicted bytes; pieces re-hashed")
            return None
    return pieces


def _hash_parallel(folder: Path, entries: list[BagEntry], progress: Progress) -> dict[str, str]:
    results = hash_files([folder / e.rel for e in entries], progress=progress)
    digests = {}
    for entry, result in zip(entries, results):
        if result.sha256 is None:
            raise EnvironmentProblem(folder / entry.rel, f"cannot read: {result.error}")
        _check(entry, result.sha256, result.size)
        digests[entry.rel] = result.sha256
    return digests


def adopt_bag(folder: Path) -> BuiltBag:
    """A bag another module wrote (e.g. parity): its manifest and files, hashed by libtorrent later."""
    manifest = read_manifest(folder)
    payload = [(rel, manifest[rel], (folder / rel).stat().st_size) for rel in sorted(manifest, key=canonical_key)]
    files = sorted(_walk(folder), key=canonical_key)
    piece = piece_length_for(sum(size for _, _, size in payload))
    return BuiltBag(folder, payload, [(p, (folder / p).stat().st_size) for p in files], piece_length=piece)
