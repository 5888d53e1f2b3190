"""The words of the search index, kept beside it for prefix* searches (migration 0012).

``search.find`` runs ``lov*`` as an OR of the whole indexed words that start with ``lov``, which
FTS5 evaluates lazily (its own prefix query merges every matching doclist up front). The words
come from ``search_word``: one B-tree range, where FTS5's fts5vocab reads the doclists of every
word it lists (15-50 ms for a 3-letter start at 10M rows).

The table is exact or unused. ``search_word_state`` keeps the FTS5 structure record of
``recording_fts`` (``recording_fts_data`` row 10) the words were read at; every write to the index
changes that record (its segment write counter), so :func:`words` answers only while the two are
equal, and None otherwise (the caller then asks FTS5). :func:`refresh` rebuilds it from FTS5 in
the caller's transaction: the catalog import does so at its end (about 3 s at 10M rows).

Each word comes with how many recordings hold it (migration 0013): :func:`frequent` gives a lone
prefix* of 300+ hits its few most common words instead of all of them (docs/catalog.md, "Prefixes").
"""

from __future__ import annotations

import sqlite3

from soundark.catalog import postings

STRUCTURE_ROW = 10  # FTS5_STRUCTURE_ROWID


def has(conn: sqlite3.Connection, table: str, column: str | None = None) -> bool:
    """Whether the catalog has *table* (and its *column*): a catalog read-only opened before a
    migration lacks them. A search asks on every query, so a yes is kept on the connection
    (migrations only add; ~10-20 us a question otherwise); a no is asked again."""
    known = getattr(conn, "soundark_schema_has", None)
    if known is not None and (table, column) in known:
        return True
    if column is None:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    else:
        found = conn.execute("SELECT 1 FROM pragma_table_info(?) WHERE name = ?", (table, column)).fetchone()
    if found is not None:
        if known is None:
            known = set()
            try:
                conn.soundark_schema_has = known  # type: ignore[attr-defined]  # a plain sqlite3.Connection takes none
            except AttributeError:
                return True
        known.add((table, column))
    return found is not None


def structure(conn: sqlite3.Connection) -> bytes | None:
    """recording_fts's structure record: every write to the index changes it (None: never written)."""
    row = conn.execute("SELECT block FROM recording_fts_data WHERE id = ?", (STRUCTURE_ROW,)).fetchone()
    return None if row is None else bytes(row[0])


def current(conn: sqlite3.Connection) -> bool:
    """True when search_word lists exactly the words of recording_fts as it is now."""
    if not has(conn, "search_word_state"):  # a catalog opened read-only before migration 0012
        return False
    row = conn.execute("SELECT s.fts_structure = d.block FROM search_word_state s, recording_fts_data d "
                       "WHERE s.id = 1 AND d.id = ?", (STRUCTURE_ROW,)).fetchone()
    return bool(row and row[0])


def refresh(conn: sqlite3.Connection) -> bool:
    """Inside the caller's write transaction: rebuild search_word (and search_postings) unless they
    are current; True if rebuilt."""
    if current(conn):
        if _postings_built(conn):
            return False
        _store_postings(conn)
        conn.execute("UPDATE search_word_state SET postings = 1")
        return True
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.soundark_fts_terms "
                 "USING fts5vocab(main, recording_fts, 'row')")
    conn.execute("DELETE FROM search_word")
    conn.execute("INSERT INTO search_word(word, docs) SELECT term, doc FROM temp.soundark_fts_terms")  # term order
    record = structure(conn)
    if record is None:  # an index never written: no words, and nothing to compare with later
        conn.execute("DELETE FROM search_word_state")
        conn.execute("DELETE FROM search_postings")
        return True
    _store_postings(conn)
    conn.execute("INSERT INTO search_word_state(id, fts_structure, postings) VALUES (1, ?, 1) "
                 "ON CONFLICT(id) DO UPDATE SET fts_structure = excluded.fts_structure, postings = 1", (record,))
    return True


POSTINGS_SHARE = 200  # a word held by at least 1/POSTINGS_SHARE of the recordings has its ids stored
POSTINGS_SLICE = 1 << 20  # ids read from FTS5 and written at a time


def recordings(conn: sqlite3.Connection) -> int:
    """The largest recording id: the catalog's size for the word shares (ids may have gaps)."""
    return int(conn.execute("SELECT max(id) FROM recording").fetchone()[0] or 0)


def _postings_built(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT postings FROM search_word_state WHERE id = 1").fetchone()
    return bool(row and row[0])


def _store_postings(conn: sqlite3.Connection) -> None:
    """search_postings anew: the recording ids of every common word, read from FTS5 (12.8 s at 50M
    rows: 60 words, 171 MB). Each word's blob is made at its size (search_word's count) and
    filled POSTINGS_SLICE ids at a time, so memory stays flat whatever the catalog's size; a word
    whose ids do not add up to its count gets none (FTS5 answers for it)."""
    conn.execute("DELETE FROM search_postings")
    size = recordings(conn)
    width = 4 if size < 2**31 else 8  # the widest id is the recording table's largest
    common = conn.execute("SELECT word, docs FROM search_word WHERE docs * ? >= ? AND docs > 0",
                          (POSTINGS_SHARE, size)).fetchall()
    for word, docs in common:
        row = conn.execute("INSERT INTO search_postings(word, width, ids) VALUES (?, ?, zeroblob(?))",
                           (word, width, docs * width)).lastrowid
        written = 0
        after = 0
        with conn.blobopen("search_postings", "ids", row) as blob:
            while written <= docs:
                ids = postings.rowids(conn, word, after, POSTINGS_SLICE)
                if written + ids.size > docs:
                    written += ids.size
                    break
                blob.write(ids.astype(f"<i{width}").tobytes())
                written += ids.size
                if ids.size < POSTINGS_SLICE:
                    break
                after = int(ids[-1])
        if written != docs:
            conn.execute("DELETE FROM search_postings WHERE rowid = ?", (row,))


def postings_current(conn: sqlite3.Connection) -> bool:
    """True when search_postings holds the ids of the common words of recording_fts as it is now."""
    if not has(conn, "search_word_state", "postings"):  # a catalog read-only opened before migration 0014
        return False
    row = conn.execute("SELECT s.postings AND s.fts_structure = d.block FROM search_word_state s, "
                       "recording_fts_data d WHERE s.id = 1 AND d.id = ?", (STRUCTURE_ROW,)).fetchone()
    return bool(row and row[0])


def words(conn: sqlite3.Connection, prefix: str, limit: int) -> list[str] | None:
    """Up to *limit* indexed words starting with *prefix* (lower case), or None when search_word is
    not current. Both reads share one snapshot when the caller holds a transaction."""
    if not current(conn):
        return None
    return [r[0] for r in conn.execute("SELECT word FROM search_word WHERE word >= ? AND word < ? LIMIT ?",
                                       (prefix, _after(prefix), limit))]


def _after(prefix: str) -> str:
    """The first string past every word starting with *prefix* (the range's upper bound)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


FREQUENT_PEEK = 64  # most common words of a prefix looked at; fewer than enough hits among them: None


def frequent(conn: sqlite3.Connection, prefix: str, enough: int) -> list[str] | None:
    """The fewest words starting with *prefix* (lower case), the most common first, held by at
    least *enough* recordings counted word by word; None when search_word is not current, has no
    counts (a catalog read-only opened before migration 0013), or its FREQUENT_PEEK most common
    words of *prefix* do not add up to *enough*. Two of the words may share recordings: the
    caller checks the hits it got."""
    if not current(conn) or not has(conn, "search_word", "docs"):
        return None
    rows = conn.execute("SELECT word, docs FROM search_word WHERE word >= ? AND word < ? "
                        "ORDER BY docs DESC, word LIMIT ?", (prefix, _after(prefix), FREQUENT_PEEK))
    picked: list[str] = []
    held = 0
    for word, docs in rows:
        picked.append(word)
        held += docs
        if held >= enough:
            return picked
    return None


def counts(conn: sqlite3.Connection, words: list[str]) -> dict[str, int] | None:
    """How many recordings hold each of *words* (absent words are left out), current or not: the
    counts only order an AND's words, which changes its cost, never its hits. None when
    search_word has no counts (a catalog read-only opened before migration 0013)."""
    if not has(conn, "search_word", "docs"):
        return None
    marks = ",".join("?" * len(words))
    return dict(conn.execute(f"SELECT word, docs FROM search_word WHERE word IN ({marks})", words).fetchall())
