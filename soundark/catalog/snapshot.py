"""Open a catalog snapshot where it is published, read-only and checked (``catalog diff``, ``stats``).

A snapshot may be given as:

* a catalog file (``catalog.sqlite3``, SQLite 3 file format);
* its zstd-compressed form (``catalog.sqlite3.zst``, RFC 8878), unpacked as a stream into a
  temporary file that is removed on close (at most ``MAX_RATIO`` times the packed size, so a
  crafted frame cannot fill the disk);
* a metadata release: its BagIt bag (RFC 8493) holding ``data/catalog.sqlite3[.zst]``;
* an archive folder (its ``catalog.sqlite3``).

A file inside a bag is checked against the bag's ``manifest-sha256.txt`` before SQLite reads
it: a damaged snapshot is named as such, not misread.

A snapshot comes from anyone, so it is opened read-only (``mode=ro``, ``PRAGMA query_only``,
``trusted_schema = OFF``) and its schema is checked before any query: every view, trigger and
virtual table must be one that some catalog migration made (same name, same SQL), and no
table may have generated columns. A crafted file whose ``recording`` is a view over a
recursive query would otherwise make ``catalog diff`` run without end.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import zstandard

from soundark.catalog.connection import connect
from soundark.catalog.store import Catalog, _split_sql, migrations
from soundark.errors import BadInput, NotFound
from soundark.fixity.bagit import MANIFEST, read_manifest
from soundark.fixity.digest import sha256_file

NAMES = ("catalog.sqlite3", "catalog.sqlite3.zst")
MAX_RATIO = 100  # a catalog packs 3-6x; far past that is a decompression bomb
_CHUNK = 1 << 20


def locate(path: Path) -> tuple[Path, Path | None]:
    """(the catalog file, the bag that lists it or None) for any accepted form of ``path``."""
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        for folder in (path / "data", path):
            for name in NAMES:
                if (folder / name).is_file():
                    return folder / name, (path if folder.name == "data" and _is_bag(path) else None)
        raise NotFound(path, "no catalog here: expected catalog.sqlite3, a metadata release "
                             "(data/catalog.sqlite3.zst) or an archive folder")
    if not path.is_file():
        raise NotFound(path, "no such catalog file")
    bag = path.parent.parent
    return path, (bag if path.parent.name == "data" and _is_bag(bag) else None)


def _is_bag(folder: Path) -> bool:
    return (folder / MANIFEST).is_file()


def _check_against_manifest(file: Path, bag: Path) -> None:
    rel = file.relative_to(bag).as_posix()
    want = read_manifest(bag).get(rel)
    if want is None:
        raise BadInput(file, f"not listed in {bag.name}/{MANIFEST}: not this release's snapshot")
    try:
        got = sha256_file(file)[0]
    except OSError as e:
        raise BadInput(file, f"cannot read: {e.strerror or e}") from e
    if got != want:
        raise BadInput(file, f"SHA-256 differs from {bag.name}/{MANIFEST}: the copy is damaged "
                             f"(`soundark verify {bag}` names it; `soundark repair` or a fresh download fixes it)")


def _unpack(packed: Path, target: Path) -> None:
    """Stream-decompress ``packed`` into ``target`` (never more than MAX_RATIO x its size)."""
    limit = MAX_RATIO * packed.stat().st_size + _CHUNK
    written = 0
    try:
        with open(packed, "rb") as src, open(target, "wb") as dst:
            reader = zstandard.ZstdDecompressor().stream_reader(src, read_across_frames=True)
            while chunk := reader.read(_CHUNK):
                written += len(chunk)
                if written > limit:
                    raise BadInput(packed, f"unpacks to more than {MAX_RATIO}x its size; refused")
                dst.write(chunk)
    except zstandard.ZstdError as e:
        raise BadInput(packed, f"not a valid zstd stream: {e}") from e
    except OSError as e:
        raise BadInput(packed, f"cannot unpack: {e.strerror or e}") from e


@functools.lru_cache(maxsize=1)
def known_schema() -> frozenset[tuple[str, str, str]]:
    """(type, name, sql) of every view, trigger and virtual table any migration ever made."""
    seen: set[tuple[str, str, str]] = set()
    conn = sqlite3.connect(":memory:")
    try:
        for m in migrations():
            for statement in _split_sql(m.sql):
                conn.execute(statement)
            seen.update(_special(conn))
    finally:
        conn.close()
    return frozenset(seen)


def _special(conn: sqlite3.Connection) -> set[tuple[str, str, str]]:
    rows = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE type IN ('view', 'trigger') "
                        "OR (type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%')").fetchall()
    return {(t, n, s or "") for t, n, s in rows}


def check_schema(conn: sqlite3.Connection, subject: Path) -> None:
    """Refuse any view, trigger or virtual table no migration made, and generated columns."""
    unknown = sorted(_special(conn) - known_schema())
    if unknown:
        kind, name, _ = unknown[0]
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise BadInput(subject, f"{kind} {name!r} is not one a soundark catalog makes{more}; "
                                "refused (a crafted query could run without end)")
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'")]
    for table in tables:
        # table_xinfo's `hidden`: 2 and 3 are generated columns (virtual, stored)
        if any(row[6] in (2, 3) for row in conn.execute(f'PRAGMA table_xinfo("{table}")')):
            raise BadInput(subject, f"table {table!r} has generated columns, which no soundark "
                                    "catalog has; refused")


def _open_checked(file: Path, shown: Path) -> Catalog:
    conn = connect(shown, f"{file.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                   check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA trusted_schema = OFF")
        check_schema(conn, shown)  # the connection turns SQLite errors into SoundarkErrors naming it
    except BaseException:
        conn.close()
        raise
    return Catalog(conn, shown, readonly=True)


@contextlib.contextmanager
def open_snapshot(path: Path) -> Iterator[Catalog]:
    """A read-only, schema-checked catalog from any form :func:`locate` accepts.

    ``catalog.path`` is the path as given (the bag or the packed file), never the temporary file.
    """
    shown = Path(path)
    file, bag = locate(path)
    if file.stat().st_size == 0:
        raise BadInput(file, "empty file (0 bytes): not a catalog")
    if bag is not None:
        _check_against_manifest(file, bag)
    work = None
    try:
        if file.name.endswith(".zst"):
            work = Path(tempfile.mkdtemp(prefix="soundark-snapshot-"))
            _unpack(file, work / "catalog.sqlite3")
            file = work / "catalog.sqlite3"
        catalog = _open_checked(file, shown)
        try:
            yield catalog
        finally:
            catalog.close()
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


__all__ = ["open_snapshot", "locate", "check_schema", "known_schema"]
