"""Open the catalog (SQLite, WAL mode), apply numbered migrations, run transactions.

Migrations are the files ``migrations/NNNN_name.sql``, applied in order, each in
its own transaction, and recorded in ``schema_migration`` (version, name,
applied_at): a catalog opened by a newer soundark is brought up to date, one
from an older soundark is left alone. SQLite errors are converted here into
:mod:`soundark.errors` with a message that says what to check.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import ModuleType

from soundark.catalog import deferred, engine
from soundark.catalog.connection import CatalogConnection, connect, describe_sqlite_error
from soundark.config import ArchivePaths
from soundark.errors import BadInput, Conflict, EnvironmentProblem, NotFound, SoundarkError

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    found = []
    for entry in resources.files("soundark.catalog").joinpath("migrations").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise EnvironmentProblem("soundark/catalog/migrations", "two migrations share a number")
    return found


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Catalog:
    """A connection to one catalog file. Use :func:`open_catalog`."""

    def __init__(self, conn: CatalogConnection, path: Path, readonly: bool) -> None:
        self.conn = conn
        self.path = path
        self.readonly = readonly

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; rolled back on any exception.

        The connection converts every SQLite error into a SoundarkError (connection.py),
        inside the block too.
        """
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            # SQLite may have rolled back already (a full disk does): the error in flight,
            # not a failed ROLLBACK, is what the user must read
            if self.conn.in_transaction:
                with contextlib.suppress(SoundarkError):
                    self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except BaseException:  # a signal (KeyboardInterrupt) may land just before the COMMIT too
            if self.conn.in_transaction:
                with contextlib.suppress(SoundarkError):
                    self.conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def foreign_keys_unchecked(self) -> Iterator[None]:
        """Foreign keys not checked row by row while the block runs, then checked again.

        For a bulk write whose every reference was read in the same transaction (the plan's
        recording and source ids): SQLite's per-row parent lookup made such inserts 2.6x slower
        at 10M rows. Open it outside a transaction: inside one, SQLite ignores the pragma.
        """
        self.conn.execute("PRAGMA foreign_keys = OFF")
        try:
            yield
        finally:
            self.conn.execute("PRAGMA foreign_keys = ON")

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def scalar(self, sql: str, params: tuple | dict = ()) -> object:
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def schema_version(self) -> int:
        return int(self.scalar("SELECT coalesce(max(version), 0) FROM schema_migration") or 0)


def _apply_migrations(conn: CatalogConnection, path: Path) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migration ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migration")}
    for m in migrations():
        if m.version in done:
            continue
        try:
            conn.execute("BEGIN IMMEDIATE")
            # executescript would COMMIT first; run statement by statement to stay in one transaction
            for statement in _split_sql(m.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migration(version, name, applied_at) VALUES (?, ?, ?)",
                (m.version, m.name, utc_now()),
            )
            conn.execute("COMMIT")
        except BaseException:  # an error, or a signal: the migration is all or nothing
            if conn.in_transaction:
                with contextlib.suppress(SoundarkError):
                    conn.execute("ROLLBACK")
            raise


def _split_sql(script: str) -> list[str]:
    """Split a migration script into complete statements (triggers contain ';')."""
    statements, buf = [], ""
    for line in script.splitlines(keepends=True):
        if not buf and line.strip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements


BUSY_SECONDS_ENV = "SOUNDARK_BUSY_SECONDS"


def busy_wait_seconds() -> float:
    """How long a statement waits for another process's write lock (SQLITE_BUSY) before failing.

    30 s by default: long enough for any one transaction of another soundark process (they
    are kept short), short enough that a stuck holder is reported. ``$SOUNDARK_BUSY_SECONDS``
    changes it for a run (docs/reliability.md, "Faults").
    """
    text = os.environ.get(BUSY_SECONDS_ENV, "").strip()
    try:
        value = float(text) if text else 30.0
    except ValueError:
        raise BadInput(BUSY_SECONDS_ENV, f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 86400:
        raise BadInput(BUSY_SECONDS_ENV, f"must be between 0 and 86400 seconds, not {text}")
    return value


def folder_is_writable(folder: Path) -> bool:
    """False on a read-only mount (EROFS): root too is refused there, unlike with chmod."""
    return os.access(folder, os.W_OK)


def readonly_uri(path: Path, immutable: bool = False) -> str:
    """The URI that opens *path* read-only: ``mode=ro``, with ``immutable=1`` if asked."""
    return f"{path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if immutable else "")


def connect_readonly(path: Path, busy_seconds: float = 30.0, engine: ModuleType = sqlite3) -> CatalogConnection:
    """A read-only connection to *path*, on read-only media too; the schema is read once.

    A WAL catalog opened ``mode=ro`` needs its ``-wal`` and ``-shm`` together: with both or
    neither SQLite reads it, but on a read-only mount where only one is left (a stale ``-shm``
    of the writer that made a copy) it cannot make the other, and the open fails ("unable to
    open database file"). Then, and only when nobody can write the folder, the catalog is
    opened ``immutable=1``: no locks, no ``-shm``, pages in a leftover ``-wal`` not seen (a
    catalog closed cleanly has none; one copied while it was written does, and is read with
    ``mode=ro`` then, since its ``-wal`` and ``-shm`` come together).
    """
    conn = connect(path, readonly_uri(path), engine, uri=True, isolation_level=None,
                   check_same_thread=False, timeout=busy_seconds)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except EnvironmentProblem:
        conn.close()
        if folder_is_writable(path.parent):
            raise
    conn = connect(path, readonly_uri(path, immutable=True), engine, uri=True, isolation_level=None,
                   check_same_thread=False)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


def open_catalog(path: Path | str, *, readonly: bool = False, create: bool = True,
                 mapped: bool = False) -> Catalog:
    """Open (and by default create and migrate) the catalog at *path*.

    ``readonly=True`` opens with ``mode=ro`` (:func:`connect_readonly`): nothing can be
    written, no migration runs; on read-only media too. ``mapped=True`` (read-only only) opens it
    with the SQLite build that can map a whole large catalog, when installed, and maps as much of
    the file as that build allows (soundark.catalog.engine).
    """
    path = Path(path)
    busy_seconds = busy_wait_seconds()
    if readonly or not create:
        if not path.exists():
            raise NotFound(path, "no catalog here: run `soundark init` first")
        if path.is_file() and path.stat().st_size == 0:
            # SQLite would take an empty file for a new database and migrate it: a fresh,
            # empty catalog over an archive that had one. Only a creating open may do that.
            raise BadInput(path, "the catalog is empty (0 bytes); " + restore_hint(path.parent))
    elif not path.parent.exists():
        raise NotFound(path.parent, "folder does not exist")
    if mapped and not readonly:
        raise ValueError("only a read-only catalog is opened with the mapping SQLite")
    lib = (engine.mapped() or sqlite3) if mapped else sqlite3
    if readonly:
        conn = connect_readonly(path, busy_seconds, lib)
    else:
        conn = connect(path, path, isolation_level=None, timeout=busy_seconds)
    try:
        conn.row_factory = lib.Row
        conn.execute(f"PRAGMA busy_timeout = {int(busy_seconds * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise EnvironmentProblem(path, f"cannot switch the catalog to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA temp_store = MEMORY")
        if mapped:  # SQLite lowers it to its build's cap: 2 GiB without sqlean.py
            conn.execute(f"PRAGMA mmap_size = {engine.MAPPED_CAP}")
        if not readonly:
            _apply_migrations(conn, path)
            deferred.finish(conn)  # index work a killed bulk import left (catalog/deferred.py)
    except BaseException:
        conn.close()
        raise
    return Catalog(conn, path, readonly)


_SQLITE_HEADER = b"SQLite format 3\x00"


def check_catalog(paths: ArchivePaths) -> None:
    """Refuse an archive whose catalog is missing, empty or not SQLite (docs/reliability.md).

    Only `soundark init` makes a catalog. A folder with no catalog, no settings and no
    data is simply not an archive yet; one whose store/ or releases/ hold data has lost
    its catalog, and re-creating it would publish and list as if that data did not exist.
    """
    path = paths.catalog
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        if not paths.settings.exists() and not archive_holds_data(paths):
            raise NotFound(paths.root, "not a soundark archive (no catalog.sqlite3): "
                                       "run `soundark init` first") from None
        raise NotFound(path, "the catalog is missing; " + restore_hint(paths.root)) from None
    except OSError as e:
        raise describe_sqlite_error(path, sqlite3.OperationalError(f"unable to open: {e}")) from e
    if not head:
        raise BadInput(path, "the catalog is empty (0 bytes); " + restore_hint(paths.root))
    if head != _SQLITE_HEADER:
        raise BadInput(path, "not an SQLite database (damaged or replaced); " + restore_hint(paths.root))


def check_new_catalog(paths: ArchivePaths) -> None:
    """Before `init` makes a catalog: refuse when store/ or releases/ already hold data.

    A catalog that exists is kept (init is idempotent); a missing or 0-byte one next to
    an archive's data was lost, and a fresh one would not know that data.
    """
    path = paths.catalog
    if path.exists() and path.stat().st_size > 0:
        check_catalog(paths)  # kept, so it must be one
        return
    if archive_holds_data(paths):
        state = "is empty (0 bytes)" if path.exists() else "is missing"
        raise Conflict(path, f"the catalog {state} but {paths.root} holds releases or stored audio; "
                             + restore_hint(paths.root))


def archive_holds_data(paths: ArchivePaths) -> bool:
    """True when store/ or releases/ hold any file: an archive's work, not an empty folder."""
    for folder in (paths.store, paths.releases):
        if folder.is_dir():
            for _dirpath, _dirs, files in os.walk(folder):
                if files:
                    return True
    return False


def restore_hint(root: Path) -> str:
    """What to do: restore the newest metadata release's snapshot, or init a new archive."""
    found = sorted(Path(root, "releases").glob("*-metadata-*/data/catalog.sqlite3*"))
    source = (str(found[-1]) if found
              else "releases/<prefix>-metadata-NNNN/data/catalog.sqlite3.zst (newest)")
    return (f"restore it from the last metadata release ({source}: `zstd -d` it if .zst, copy it to "
            f"{Path(root, 'catalog.sqlite3')}, then re-run `soundark scan` on your sources), "
            "or run `soundark init` in an empty folder for a new archive")
