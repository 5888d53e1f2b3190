"""The archive's content-addressed folders (``store/`` and ``art/``): check and restore.

Every file there is named by the SHA-256 of its bytes (``store/ab/cd/<sha256>.opus``),
and release bags hard-link the same files. So bit rot in a bag file is bit rot in the
store too, while ``repair`` writes a fresh file into the bag: the store copy would stay
damaged. ``verify`` on an archive therefore also checks the store: a file hard-linked
into a bag shares that bag file's verdict (its bytes are not read twice); any other is
hashed. ``repair`` on an archive re-links a damaged store file to an intact bag copy
with the same SHA-256; ``repair`` of one release inside an archive re-links the store copies
of the files it restored (:func:`relink_copies`), so the store heals with the bag and the
two names are one file again; and a bag file whose store copy is intact (a separate file,
as after a lost bag file) is linked back to it before any parity is read
(:func:`link_from_store`).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths, cpu_count
from soundark.durable import replace_durably
from soundark.errors import SoundarkError, os_reason
from soundark.fixity.bagit import read_manifest
from soundark.fixity.digest import sha256_file
from soundark.fixity.paths import resolve_inside
from soundark.model import NO_PROGRESS, Progress

_NAME = re.compile(r"^([0-9a-f]{64})(\.[A-Za-z0-9]{1,8})?$")
FOLDERS = ("store", "art")


@dataclass(frozen=True)
class StoreFile:
    rel: str       # e.g. store/ab/cd/<sha256>.opus, relative to the archive
    path: Path
    sha256: str
    inode: tuple[int, int]
    size: int


def is_archive(path: Path) -> bool:
    """An archive folder: a store and its catalog, or its settings when the catalog was lost."""
    return (path / "store").is_dir() and ((path / "catalog.sqlite3").exists()
                                          or (path / "soundark.toml").is_file())


def archive_holding(bag: Path) -> Path | None:
    """The archive whose ``releases/`` folder holds ``bag`` (found by walking up), if any.

    A bag downloaded elsewhere under some archive's folder is not that archive's release:
    its files are not the store's to touch.
    """
    bag = Path(bag).absolute()
    for folder in bag.parents:
        if is_archive(folder):
            return folder if bag.is_relative_to(folder / "releases") else None
    return None


def _copies_of(root: Path, sha256: str) -> list[Path]:
    """The store and art files named by this SHA-256 (any extension)."""
    found = []
    for folder in FOLDERS:
        base = root / folder / sha256[:2] / sha256[2:4]
        for path in sorted(base.glob(f"{sha256}*")) if base.is_dir() else ():
            m = _NAME.match(path.name)
            if m is not None and m.group(1) == sha256 and not path.is_symlink() and path.is_file():
                found.append(path)
    return found


def relink_copies(root: Path, bag: Path, rels: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """Make the store copies of these (just restored) bag files hard links to them again.

    A repair rebuilds a bag file as a new file: its store copy, the other name of the old
    damaged inode, stays damaged (or, for a lost bag file, stays a lone copy). Each store
    file named by the bag file's SHA-256 that is not already the same inode is replaced by
    a link to the bag file, once the bag file is checked against its manifest.
    Returns (re-linked store paths relative to ``root``, {path: why not}).
    """
    try:
        manifest = read_manifest(bag)
    except SoundarkError:
        return [], {}
    relinked, failed = [], {}
    for rel in rels:
        digest = manifest.get(rel)
        source = bag / rel
        copies = _copies_of(root, digest) if digest else []
        try:
            stale = [c for c in copies if not os.path.samefile(c, source)]
        except OSError:
            continue
        if not stale or _sha256(source) != digest:
            continue
        for target in stale:
            name = target.relative_to(root).as_posix()
            try:
                _link_over(source, target)
            except OSError as e:  # EnvironmentProblem from the folder's fsync is one too
                failed[name] = f"cannot re-link to {bag.name}/{rel}: {e.strerror or e}"
                continue
            relinked.append(name)
    return relinked, failed


def link_from_store(root: Path, bag: Path, rels: Iterable[str]) -> list[str]:
    """Restore damaged or lost bag files by linking them to an intact store copy (no parity needed).

    Only a store copy that is a different file and hashes to the manifest's SHA-256 is used
    (when they are one inode, the store copy is the same damage). Returns the bag paths restored.
    """
    try:
        manifest = read_manifest(bag)
    except SoundarkError:
        return []
    restored = []
    for rel in rels:
        digest = manifest.get(rel)
        for copy in _copies_of(root, digest) if digest else []:
            try:
                dest = resolve_inside(bag, rel)
                if dest.exists() and os.path.samefile(copy, dest):
                    break
                if _sha256(copy) != digest:
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                _link_over(copy, dest)
            except (OSError, SoundarkError):
                continue  # parity (or the operator) takes it from here
            restored.append(rel)
            break
    return restored


def _link_over(source: Path, target: Path) -> None:
    """Replace ``target`` by a hard link to ``source``, atomically (a link beside it, then a rename)."""
    tmp = target.with_name(target.name + ".restore")
    tmp.unlink(missing_ok=True)
    os.link(source, tmp)
    replace_durably(tmp, target)


def store_files(root: Path) -> Iterator[StoreFile]:
    """Every content-addressed file under ``root/store`` and ``root/art`` (temporary files skipped)."""
    for folder in FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.glob("??/??/*")):
            m = _NAME.match(path.name)
            if m is None or path.is_symlink() or not path.is_file():
                continue
            st = path.stat()
            yield StoreFile(path.relative_to(root).as_posix(), path, m.group(1), (st.st_dev, st.st_ino), st.st_size)


def missing_files(root: Path) -> list[str]:
    """Store and art files the catalog says exist (``encoded``, ``art``) but that are not there."""
    paths = ArchivePaths(root)
    with open_catalog(paths.catalog, readonly=True) as catalog:
        wanted = [paths.store_path(sha, ext) for sha, ext in catalog.execute("SELECT sha256, ext FROM encoded")]
        wanted += [paths.art_path(sha, ext) for sha, ext in catalog.execute("SELECT sha256, ext FROM art")]
    return sorted({p.relative_to(root).as_posix() for p in wanted if not p.is_file()})


def _sha256(path: Path) -> str | None:
    try:
        return sha256_file(path, regular_only=True)[0]
    except OSError:
        return None


def bag_inodes(bags: Iterable[Path], damaged: set[Path]) -> dict[tuple[int, int], bool]:
    """(device, inode) of every payload file of these bags -> whether its bag found it intact."""
    out: dict[tuple[int, int], bool] = {}
    for bag in bags:
        data = bag / "data"
        if not data.is_dir():
            continue
        for path in data.rglob("*"):
            try:
                st = path.lstat()
            except OSError:
                continue
            if path.is_file() and not path.is_symlink():
                key = (st.st_dev, st.st_ino)
                out[key] = out.get(key, True) and path not in damaged
    return out


def check_store(root: Path, linked: dict[tuple[int, int], bool],
                progress: Progress = NO_PROGRESS) -> tuple[int, int, list[tuple[str, str]]]:
    """(files, bytes read, [(rel, why)]) for the store files that are not what their name says."""
    files = list(store_files(root))
    problems: list[tuple[str, str]] = []
    to_hash = []
    for f in files:
        verdict = linked.get(f.inode)
        if verdict is None:
            to_hash.append(f)
        elif not verdict:
            problems.append((f.rel, "hard-linked to a damaged release file"))
    progress.start(len(to_hash), "checking the store", "files")
    with cf.ThreadPoolExecutor(max_workers=cpu_count()) as pool:  # hashlib releases the GIL
        for f, got in zip(to_hash, pool.map(lambda f: _sha256(f.path), to_hash)):
            progress.advance(1, f.rel, f.size)
            if got is None:
                problems.append((f.rel, "cannot be read"))
            elif got != f.sha256:
                problems.append((f.rel, "SHA-256 differs from its name"))
    return len(files), sum(f.size for f in to_hash), sorted(problems)


def restore_store(root: Path, bags: Iterable[Path], damaged: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """Re-link each damaged store file to an intact bag copy with its SHA-256: (restored, unrecoverable)."""
    copies: dict[str, Path] = {}
    for bag in bags:
        try:
            manifest = read_manifest(bag)
        except SoundarkError:
            continue
        for rel, digest in manifest.items():
            copies.setdefault(digest, bag / rel)
    restored, lost = [], {}
    for rel in damaged:
        m = _NAME.match(Path(rel).name)
        source = copies.get(m.group(1)) if m else None
        if source is None or _sha256(source) != m.group(1):
            lost[rel] = "no intact copy in any release: delete it and run `soundark encode` to make it again"
            continue
        try:
            _link_over(source, root / rel)
        except OSError as e:  # EnvironmentProblem from the folder's fsync is one too
            lost[rel] = f"cannot restore: {os_reason(e)}"
            continue
        restored.append(rel)
    return restored, lost
