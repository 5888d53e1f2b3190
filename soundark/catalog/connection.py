"""The catalog's SQLite connection: every ``sqlite3.Error`` leaves it as a SoundarkError.

Stages run their own SQL on the connection :meth:`Catalog.transaction` hands out, and
read through cursors, sometimes row by row after the call that made them returned. So
the conversion lives in the connection and its cursors themselves (a ``factory=`` of
``sqlite3.connect``), not at a few call sites: whatever statement meets a full disk, a
busy or damaged catalog, or a query stopped by a progress handler, the user reads one
line naming the catalog and what to do (docs/catalog.md, "Errors").

They stay ``sqlite3.Connection`` / ``sqlite3.Cursor`` instances, so the catalog's own
code keeps its types; only the errors change class. The same classes exist for the SQLite
build that maps a whole catalog (soundark.catalog.engine, for the web's readers): *engine*
of :func:`connect`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from soundark.catalog import engine as engines
from soundark.durable import kill_point
from soundark.errors import Conflict, EnvironmentProblem, QueryInterrupted, SoundarkError

SIGNAL_STEPS = 100_000  # SQLite instructions between two looks for a pending signal (~1-5 ms)

_HINTS = (  # (words in SQLite's message, what the user should do); first match wins
    (("disk is full", "database or disk is full"),
     "disk full: free space and re-run (nothing was half-written)"),
    (("locked", "busy"), "the catalog is busy: another process holds its write lock (waited "
                         "$SOUNDARK_BUSY_SECONDS, default 30 s); wait for it or stop it, then re-run"),
    (("malformed", "not a database", "vtable constructor failed"),
     "the catalog file is damaged or not a soundark catalog: "
     "run `soundark doctor` to see what is lost and how to restore it"),
    (("readonly", "read-only"), "the catalog is read-only here (a read-only mount or file permissions): "
                                     "writing needs a writable archive; verify, search, stats, serve and "
                                     "release list work read-only"),
    (("unable to open",), "cannot open the catalog: check that the folder exists and is writable"),
    (("disk i/o error",), "the disk reported an I/O error: check the disk and free space, then re-run"),
)


# every engine's sqlite3.Error: what the classes below convert
_ERRORS: tuple[type[Exception], ...] = tuple(e.Error for e in engines.available())


def describe_sqlite_error(path: object, err: Exception) -> SoundarkError:
    """The SoundarkError a user reads for *err* (an engine's sqlite3.Error) met on the catalog at *path*."""
    text = str(err)
    kind = type(err).__name__  # each engine has its own classes of these names
    if kind == "OperationalError" and text == "interrupted":
        return QueryInterrupted(path, "the query was stopped before it finished")
    if kind == "IntegrityError":
        # a constraint the catalog's own code did not expect: the change contradicts a row
        return Conflict(path, f"the catalog refused a change ({text}); nothing was written")
    lowered = text.lower()
    if "disk i/o error" in lowered and _no_space_left(path):
        # SQLite says "disk I/O error" when a full disk refuses its -shm or -wal file
        return EnvironmentProblem(path, _HINTS[0][1])
    for words, hint in _HINTS:
        if any(w in lowered for w in words):
            return EnvironmentProblem(path, hint)
    return EnvironmentProblem(path, f"SQLite error: {text}")


def _no_space_left(path: object) -> bool:
    try:
        st = os.statvfs(Path(str(path)).parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 65536  # less than SQLite's -shm needs to grow


if TYPE_CHECKING:  # the mixins below are typed as what they are mixed into
    _Cursor = sqlite3.Cursor
    _Connection = sqlite3.Connection
else:
    _Cursor = _Connection = object


class _CursorBase(_Cursor):
    """A cursor whose statements and fetches convert SQLite errors (see the module docstring);
    mixed into each engine's Cursor (:func:`_classes`)."""

    def _fail(self, err: Exception) -> SoundarkError:
        conn = self.connection
        if isinstance(conn, _ConnectionBase):
            return conn._fail(err)
        return describe_sqlite_error("catalog", err)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        self.connection._stopped = False  # type: ignore[attr-defined]  # made only by CatalogConnection
        commit = sql.startswith("COMMIT")  # a durable step for the kill-anywhere test hook (durable.py)
        if commit:
            kill_point("commit")
        try:
            done = super().execute(sql, parameters)
        except _ERRORS as e:
            raise self._fail(e) from e
        if commit:
            kill_point("committed")
        return done

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Any:
        self.connection._stopped = False  # type: ignore[attr-defined]
        try:
            return super().executemany(sql, seq_of_parameters)
        except _ERRORS as e:
            raise self._fail(e) from e

    def executescript(self, sql_script: str, /) -> Any:
        try:
            return super().executescript(sql_script)
        except _ERRORS as e:
            raise self._fail(e) from e

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except _ERRORS as e:
            raise self._fail(e) from e

    def fetchmany(self, size: int | None = None) -> list[Any]:
        try:
            return super().fetchmany(self.arraysize if size is None else size)
        except _ERRORS as e:
            raise self._fail(e) from e

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except _ERRORS as e:
            raise self._fail(e) from e

    def __iter__(self) -> Iterator[Any]:
        # rows read one by one (a generator over a cursor) step SQLite too: a full temp
        # disk or an interrupt can surface on any row, long after execute() returned.
        # Delegating to the C fetchone costs ~0.25 us a row; overriding __next__ cost ~1.3.
        try:
            yield from iter(super().fetchone, None)
        except _ERRORS as e:
            raise self._fail(e) from e

    def __next__(self) -> Any:  # next(cursor) without iter(): rare, but converted too
        try:
            return super().__next__()
        except _ERRORS as e:
            raise self._fail(e) from e


def _poll_signals() -> int:
    """Carry on (0). Entering a Python function is where CPython runs a pending signal handler:
    if that handler raises (KeyboardInterrupt), the sqlite3 module drops the exception and stops
    the statement with SQLITE_INTERRUPT, which :meth:`CatalogConnection._fail` turns back into
    KeyboardInterrupt."""
    return 0


class _ConnectionBase(_Connection):
    """``sqlite3.Connection`` that converts every SQLite error; open it with :func:`connect`.

    A signal that arrives while one long statement runs in C (an index built over 10M rows, an
    integrity check) would wait for the statement to end: Python runs its handlers only between
    bytecodes. So every connection has a progress handler, called every ``SIGNAL_STEPS`` SQLite
    instructions, whose call lets a pending SIGINT/SIGTERM handler run; the KeyboardInterrupt it
    raises stops the statement and comes out of ``execute`` as a KeyboardInterrupt, as it does
    between statements (an "interrupted" statement that our own handler did not stop can only be
    that). Only a signal that arrives during a statement stops it: the clean-up
    statements after it run normally.
    """

    catalog_path: Path
    _stopped = False  # our progress handler stopped the running statement
    _cursor_class: type = object  # the engine's CatalogCursor (_classes)

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or self._cursor_class)

    def _fail(self, err: Exception) -> SoundarkError:
        if not self._stopped and getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_INTERRUPT:
            raise KeyboardInterrupt  # a signal handler raised inside _poll_signals (class doc)
        if self._stopped:
            # a stop can surface under another message too ("vtable constructor failed"
            # when it lands while FTS5 opens its tables): the handler knows, not the text
            self._stopped = False
            return QueryInterrupted(self.catalog_path, "the query was stopped before it finished")
        return describe_sqlite_error(self.catalog_path, err)

    def set_progress_handler(self, progress_handler: Callable[[], object] | None, n: int) -> None:
        if progress_handler is None:
            super().set_progress_handler(_poll_signals, SIGNAL_STEPS)
            return
        handler = progress_handler

        def watched() -> int:
            stop = handler()
            if stop:
                self._stopped = True
            return 1 if stop else 0
        super().set_progress_handler(watched, n)

    def interrupt(self) -> None:
        self._stopped = True
        super().interrupt()

    # sqlite3's own Connection.execute* make a plain Cursor in C, bypassing cursor():
    # go through a CatalogCursor so the rows read later convert their errors too
    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any:
        return self.cursor().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> Any:
        return self.cursor().executescript(sql_script)

    def commit(self) -> None:
        try:
            super().commit()
        except _ERRORS as e:
            raise self._fail(e) from e

    def rollback(self) -> None:
        try:
            super().rollback()
        except _ERRORS as e:
            raise self._fail(e) from e


class CatalogCursor(_CursorBase, sqlite3.Cursor):
    """The standard library's cursor, converting errors."""


class CatalogConnection(_ConnectionBase, sqlite3.Connection):
    """The standard library's connection, converting errors. For type checks it stands for any
    engine's: another engine's class is made by :func:`_classes`, on that engine's Connection."""

    _cursor_class = CatalogCursor


_CLASSES: dict[str, type] = {sqlite3.__name__: CatalogConnection}


def _classes(engine: ModuleType) -> type:
    """The converting connection class of *engine* (a DB-API module shaped as sqlite3)."""
    found = _CLASSES.get(engine.__name__)
    if found is None:
        cursor = type("CatalogCursor", (_CursorBase, engine.Cursor), {"__module__": __name__})
        found = type("CatalogConnection", (_ConnectionBase, engine.Connection),
                     {"__module__": __name__, "_cursor_class": cursor})
        _CLASSES[engine.__name__] = found
    return found


def connect(path: Path, database: str | Path, engine: ModuleType = sqlite3, **kwargs: Any) -> CatalogConnection:
    """``engine.connect(database, **kwargs)`` with the converting connection; errors name *path*.
    *engine* is the standard library's sqlite3 unless told (soundark.catalog.engine)."""
    try:
        conn: CatalogConnection = engine.connect(database, factory=_classes(engine), **kwargs)
    except _ERRORS as e:
        raise describe_sqlite_error(path, e) from e
    conn.catalog_path = path
    conn.set_progress_handler(None, SIGNAL_STEPS)  # signals reach a long statement (class doc)
    return conn
