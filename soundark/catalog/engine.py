"""Which SQLite library a connection runs on: the standard library's, or one that maps a whole catalog.

SQLite reads a database through a memory mapping only up to ``SQLITE_MAX_MMAP_SIZE``, fixed
when the library is built: 2 GiB (0x7fff0000) in the usual builds, Debian's and python.org's
among them (``PRAGMA compile_options`` tells). Past it, every page a statement reads is copied
into the connection's page cache by a ``read()``. The search index is written last, so in a
catalog of tens of GB nearly all of a search's pages lie past the first 2 GiB.

The web's readers (soundark.web.queries) therefore open the catalog with *sqlean.py* when it is
installed (a dependency: the sqlite3 module of CPython with its own SQLite, built with a 1 TiB
mapping cap): at 50M rows (21.7 GB with a plan) a search then costs 7-11 % less CPU in the
reader and a web request ~3 % less, the same pages as before coming from the OS page cache
without a copy (docs/performance.md, "Tenth run"). Every
other connection (imports, plans, migrations: all writers) stays on the standard library's
sqlite3; the two read and write the same files (one file format, one WAL protocol).
"""

from __future__ import annotations

import sqlite3
from types import ModuleType

MAPPED_CAP = 1 << 40  # what a mapped open asks for (store.open_catalog); SQLite lowers it to its build's cap


def mapped() -> ModuleType | None:
    """The sqlite3-shaped module whose SQLite maps more than 2 GiB, or None when none is installed."""
    try:
        import sqlean  # type: ignore[import-untyped]
    except ImportError:
        return None
    module: ModuleType = sqlean
    return module


def available() -> list[ModuleType]:
    """The standard library's sqlite3 and, when installed, the mapping one."""
    return [sqlite3] + [m for m in (mapped(),) if m is not None]


def mapping_cap(conn: sqlite3.Connection) -> int:
    """How many bytes of its file *conn*'s SQLite maps at most (its build's SQLITE_MAX_MMAP_SIZE)."""
    for (option,) in conn.execute("PRAGMA compile_options").fetchall():
        if str(option).startswith("MAX_MMAP_SIZE="):
            return int(str(option).split("=", 1)[1].rstrip("L"), 0)
    return 0x7FFF0000  # SQLite's own default
