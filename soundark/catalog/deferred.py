"""Index work deferred by a fresh bulk import, finished once (migrations 0005, 0010 and 0011).

A bulk import into an empty or near-empty catalog loads its batches without
updating the search indexes (``recording_fts``, ``recording_trigram``, ``recording_gram``) or the
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

from soundark.catalog import vocabulary

# Secondary indexes no import statement reads (migration 0001); dropped while a fresh import loads.
DEFERRED_INDEXES = {
    "track_recording": "CREATE INDEX IF NOT EXISTS track_recording ON track(recording_id)",
    "track_album": "CREATE INDEX IF NOT EXISTS track_album ON track(album_id)",
}
# Dropped too while a fresh import matches in memory (importers/_fresh.py), which never reads it.
MATCH_INDEX = {"recording_match": "CREATE INDEX IF NOT EXISTS recording_match ON recording(match_key)"
                                  " WHERE match_key != ''"}
# The insert triggers of migrations 0005, 0010 and 0011, word for word. While fts_deferred holds its row
# they do nothing but look at it, once per inserted recording (a quarter of the cost of inserting
# one): an in-memory fresh import drops them and finish_in puts them back.
# tests/test_import_fresh.py checks these equal what the migrations made.
INSERT_TRIGGERS = {
    "recording_fts_ai": """CREATE TRIGGER recording_fts_ai AFTER INSERT ON recording
WHEN NOT EXISTS (SELECT 1 FROM fts_deferred) BEGIN
    INSERT INTO recording_fts(rowid, title, artist, album) VALUES (new.id, new.title, new.artist, new.album);
END""",
    "recording_trigram_ai": """CREATE TRIGGER recording_trigram_ai AFTER INSERT ON recording
WHEN NOT EXISTS (SELECT 1 FROM fts_deferred)
 AND (new.title || ' ' || new.artist || ' ' || new.album) GLOB '*[฀-𯿿]*'
     AND (new.title || ' ' || new.artist || ' ' || new.album)
     GLOB '*[぀-鿿豈-﫿ｦ-ﾟ฀-໿က-႟ក-៿𠀀-𯿿]*' BEGIN
    INSERT INTO recording_trigram(rowid, title, artist, album) VALUES (new.id, new.title, new.artist, new.album);
END""",
    "recording_gram_ai": """CREATE TRIGGER recording_gram_ai AFTER INSERT ON recording
WHEN NOT EXISTS (SELECT 1 FROM fts_deferred)
 AND (new.title || ' ' || new.artist || ' ' || new.album) GLOB '*[฀-𯿿]*' BEGIN
    INSERT OR IGNORE INTO recording_gram(gram, recording_id)
    SELECT substr(t.s, p.key / 2 + 1, p.key % 2 + 1), t.id
    FROM (SELECT new.id AS id, lower(new.title || ' ' || new.artist || ' ' || new.album) AS s LIMIT -1) AS t CROSS JOIN
         json_each('[' || replace(hex(zeroblob(2 * length(t.s) - 1)), '00', '0,') || '0]') AS p
    WHERE substr(t.s, p.key / 2 + 1, p.key % 2 + 1) GLOB '*[぀-鿿豈-﫿ｦ-ﾟ฀-໿က-႟ក-៿𠀀-𯿿]*'
      AND instr(substr(t.s, p.key / 2 + 1, p.key % 2 + 1), ' ') = 0;
END""",
}
_INDEX_WORDS = ("INSERT INTO recording_fts(rowid, title, artist, album)"
                " SELECT id, title, artist, album FROM recording WHERE id > ?")
_INDEX_TRIGRAMS = ("INSERT INTO recording_trigram(rowid, title, artist, album)"
                   " SELECT id, title, artist, album FROM recording_nospace WHERE id > ?")
# Migration 0011's substrings of the recordings above an id, in key order: a B-tree filled in order.
_INDEX_GRAMS = """INSERT OR IGNORE INTO recording_gram(gram, recording_id)
SELECT substr(t.s, p.key / 2 + 1, p.key % 2 + 1), t.id
FROM (SELECT id, lower(title || ' ' || artist || ' ' || album) AS s FROM recording_nospace
      WHERE id > ? LIMIT -1) AS t CROSS JOIN
     json_each('[' || replace(hex(zeroblob(2 * length(t.s) - 1)), '00', '0,') || '0]') AS p
WHERE substr(t.s, p.key / 2 + 1, p.key % 2 + 1) GLOB '*[぀-鿿豈-﫿ｦ-ﾟ฀-໿က-႟ក-៿𠀀-𯿿]*'
  AND instr(substr(t.s, p.key / 2 + 1, p.key % 2 + 1), ' ') = 0
ORDER BY 1, 2"""
_ALL = -(1 << 63)
SEARCH_INDEXES = ("recording_fts", "recording_trigram")
# FTS5 looks a term up in every segment of its index. A bulk load leaves a dozen or more (15 at 10M
# rows), which makes a prefix search that expands to many words cost twice as much (bench_scale).
MAX_SEGMENTS = 8


def index_new(conn: sqlite3.Connection, after_id: int) -> None:
    """Put the recordings with ``id > after_id`` into the search indexes (they must not be there)."""
    conn.execute(_INDEX_WORDS, (after_id,))
    conn.execute(_INDEX_TRIGRAMS, (after_id,))
    conn.execute(_INDEX_GRAMS, (after_id,))


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


def begin_memory_load(conn: sqlite3.Connection) -> None:
    """Inside the caller's transaction, after begin_fresh_load: drop what only the SQL path needs."""
    for name in MATCH_INDEX:
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    for name in INSERT_TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")


def end_memory_load(conn: sqlite3.Connection) -> None:
    """Inside the caller's transaction: the SQL path takes over a fresh load; it reads recording_match."""
    for sql in MATCH_INDEX.values():
        conn.execute(sql)


def _restore(conn: sqlite3.Connection) -> None:
    for sql in (*DEFERRED_INDEXES.values(), *MATCH_INDEX.values()):
        conn.execute(sql)
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    for name, sql in INSERT_TRIGGERS.items():
        if name not in present:
            conn.execute(sql)


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
        conn.execute("DELETE FROM recording_gram")
        conn.execute(_INDEX_GRAMS, (_ALL,))
    else:
        index_new(conn, int(row[0]))
    compact(conn, 1)
    vocabulary.refresh(conn)
    _restore(conn)
    return True


def segments(conn: sqlite3.Connection, table: str) -> int:
    """How many segments the FTS5 index *table* has (its ``_idx`` table: one row per leaf page run)."""
    return int(conn.execute(f"SELECT count(DISTINCT segid) FROM {table}_idx").fetchone()[0])


def compact(conn: sqlite3.Connection, most: int = MAX_SEGMENTS) -> list[str]:
    """Inside the caller's transaction: merge each search index with more than *most* segments into
    one (FTS5 'optimize': the same index, read faster); the names of those merged.

    About 6 s for the word index at 10M rows; a bulk load does it always, an incremental import
    only when its commits have left more than MAX_SEGMENTS (FTS5's own automerge keeps them few)."""
    merged = []
    for table in SEARCH_INDEXES:
        if segments(conn, table) > most:
            conn.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")
            merged.append(table)
    return merged


def finish(conn: sqlite3.Connection) -> bool:
    """Finish deferred index work in its own transaction (autocommit connection); False if none."""
    if not pending(conn):
        return False
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = finish_in(conn)
        conn.execute("COMMIT")
    except BaseException:  # an error, or a signal just before the COMMIT
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return done
