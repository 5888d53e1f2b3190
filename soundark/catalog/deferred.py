"""Index work deferred by a fresh bulk import, finished once (migrations 0005 and 0010).

A bulk import into an empty or near-empty catalog loads its batches without
updating the search indexes (``recording_fts``, ``recording_trigram``) or the
secondary indexes the import itself never reads (DEFERRED_INDEXES), then builds
them once at the end: an index built over sorted, finished tables costs a
fraction of the same index grown one random key at a time.

The promise rests on one row, ``fts_deferred`` (id 1, ``upto``): while it
exists, recordings with ``id > upto`` are not in the search indexes yet, and the
triggers of 0010 leave them alone. The row is committed with the first batch, so
an import killed at any point leaves it behind; :func:`finish` (run by the
import's last step, and by the next writer that opens the catalog) indexes what
is pending, re-creates the indexes and deletes the row in one transaction.
Finishing twice is harmless: the second finds no row.
"""

from __future__ import annotations

import sqlite3

# Secondary indexes no import statement reads (migration 0001); dropped while a fresh import loads.
DEFERRED_INDEXES = {
    "track_recording": "CREATE INDEX IF NOT EXISTS track_recording ON track(recording_id)",
    "track_album": "CREATE INDEX IF NOT EXISTS track_album ON track(album_id)",
}
_INDEX_WORDS = ("INSERT INTO recording_fts(rowid, title, artist, album)"
                " SELECT id, title, artist, album FROM recording WHERE id > ?")
_INDEX_TRIGRAMS = ("INSERT INTO recording_trigram(rowid, title, artist, album)"
                   " SELECT id, title, artist, album FROM recording_nospace WHERE id > ?")


def index_new(conn: sqlite3.Connection, after_id: int) -> None:
    """Put the recordings with ``id > after_id`` into both search indexes (they must not be there)."""
    conn.execute(_INDEX_WORDS, (after_id,))
    conn.execute(_INDEX_TRIGRAMS, (after_id,))


def pending(conn: sqlite3.Connection) -> bool:
    """True when a fresh import left work; False also for a catalog older than migration 0010."""
    if conn.execute("SELECT 1 FROM pragma_table_info('fts_deferred') WHERE name = 'upto'").fetchone() is None:
        return False
    return conn.execute("SELECT 1 FROM fts_deferred").fetchone() is not None


def begin_fresh_load(conn: sqlite3.Connection) -> None:
    """Inside the caller's transaction: defer indexing of recordings made from now on."""
    conn.execute("INSERT INTO fts_deferred(id, upto) SELECT 1, coalesce(max(id), 0) FROM recording"
                 " WHERE true ON CONFLICT DO NOTHING")  # an older pending row keeps its lower upto
    for name in DEFERRED_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {name}")


def finish_in(conn: sqlite3.Connection) -> bool:
    """Inside the caller's transaction: index what is pending; False when nothing was."""
    row = conn.execute("SELECT upto FROM fts_deferred").fetchone()
    if row is None:
        return False
    conn.execute("DELETE FROM fts_deferred")  # first: the index statements below see no deferral
    if row[0] is None or row[0] == 0:
        # Everything is pending: 'rebuild' reads the whole table once, and is right even
        # if some rows were indexed (it clears the index first).
        conn.execute("INSERT INTO recording_fts(recording_fts) VALUES ('rebuild')")
        conn.execute("INSERT INTO recording_trigram(recording_trigram) VALUES ('rebuild')")
    else:
        index_new(conn, int(row[0]))
    for sql in DEFERRED_INDEXES.values():
        conn.execute(sql)
    return True


def finish(conn: sqlite3.Connection) -> bool:
    """Finish deferred index work in its own transaction (autocommit connection); False if none."""
    if not pending(conn):
        return False
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = finish_in(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return done
