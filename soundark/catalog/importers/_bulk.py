"""Set-based loading of staged catalog rows into recording/artist/album/track.

Each batch (about 50k rows) is loaded with one ``executemany`` into the TEMP
table ``stage`` and merged into the catalog by a fixed sequence of
``INSERT ... SELECT`` / ``UPDATE ... FROM`` statements, all in one transaction
per batch, so an interrupted import leaves whole batches and a re-run finishes
the job. Reading and validating the next batch runs on a second thread while
SQLite merges this one (sqlite3 releases the GIL while a statement runs).

Matching (docs/formats.md, the same rules as the scan importer): a row finds its
recording by normalised ISRC, then MusicBrainz recording ID, then match key
(normalised artist + title) with durations within 3000 ms. Rows that share an
identifier are resolved once, by their first row (the *leader*), so tracks that
share an ISRC always share a recording. A row carrying an ISRC or MBID falls back
to the match key only onto a recording that has neither, and then gives it its
identifiers; a row never joins a recording with a different ISRC.
"""

from __future__ import annotations

import contextlib
import gc
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from soundark.catalog import deferred, vocabulary
from soundark.catalog.importers._fresh import Memory
from soundark.catalog.importers._rows import StagedBatch
from soundark.catalog.store import Catalog
from soundark.errors import SoundarkError
from soundark.model import ImportReport, Progress, derived_key

MATCH_WINDOW_MS = 3000
IMPORT_CACHE_KIB = 262_144  # page cache while importing: random-key index inserts stay in memory
# A catalog with fewer recordings than this takes the fresh path (catalog/deferred.py): search
# indexes built once at the end. Re-indexing this many existing rows costs less than a second.
NEAR_EMPTY_RECORDINGS = 100_000
GROUP_ROWS = 1_000_000  # rows per commit while the fresh path matches in memory (see _write_from_memory)
STAGE_COLUMNS = (
    "seq", "title", "artist", "artists", "album", "album_key", "album_first", "album_mbid",
    "upc", "date", "label", "isrc", "mbid", "duration_ms", "track_number", "disc_number", "listens",
    "popularity", "rights", "match_key", "cand_key", "track_key", "track_derived", "leader_seq",
    "track_first", "album_seq",
)

_CREATE = [
    "CREATE TEMP TABLE IF NOT EXISTS stage ("
    " seq INTEGER PRIMARY KEY, title TEXT, artist TEXT, artists TEXT, album TEXT,"
    " album_key TEXT, album_first INTEGER, album_mbid TEXT, upc TEXT, date TEXT, label TEXT,"
    " isrc TEXT, mbid TEXT, duration_ms INTEGER, track_number INTEGER, disc_number INTEGER,"
    " listens INTEGER, popularity REAL, rights TEXT, match_key TEXT, cand_key TEXT, track_key TEXT,"
    " track_derived INTEGER, leader_seq INTEGER, track_first INTEGER, album_seq INTEGER,"
    " rec_id INTEGER, album_id INTEGER, via_key INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS temp.stage_mbid ON stage(mbid) WHERE mbid IS NOT NULL",
    "CREATE TEMP TABLE IF NOT EXISTS stage_artist (key TEXT PRIMARY KEY, name TEXT, mbid TEXT)",
]

_DURATION_OK = (f"(r.duration_ms IS NULL OR stage.duration_ms IS NULL"
                f" OR abs(r.duration_ms - stage.duration_ms) <= {MATCH_WINDOW_MS})")
# Nearest duration first (an unknown one counts as 3000 ms away, as in catalog/match.py), then
# lowest id. SQLite 3.40 cannot see the outer row in a subquery's ORDER BY inside UPDATE, so the
# choice is packed into one min(): distance * 2^32 + id.
_BY_KEY = (f"(SELECT min(coalesce(abs(r.duration_ms - stage.duration_ms), {MATCH_WINDOW_MS}) * 4294967296 + r.id)"
           " % 4294967296 FROM recording r WHERE r.match_key = stage.match_key AND r.match_key != '' {extra} AND "
           + _DURATION_OK + ")")
_LEADER = "seq = leader_seq AND rec_id IS NULL"
# a title alone is too weak to call two things the same recording: both halves of the key must exist
_NAMED = "match_key != '' AND substr(match_key, 1, 1) != char(31) AND substr(match_key, -1, 1) != char(31)"
_IDENTIFIED = "(isrc IS NOT NULL OR mbid IS NOT NULL)"
# A new recording gets the id :base + seq (:base = the largest id before this batch + 1), so its
# row learns the id by a rowid look-up instead of a search by key; a row whose key turned out to
# be taken (ON CONFLICT) finds no recording under its id and falls back to the key.
_NEW_RECORDING = (
    "INSERT INTO recording(id, key, isrc, mbid, title, artist, album, duration_ms, date, listens,"
    " popularity, rights, match_key)"
    " SELECT :base + seq, cand_key, isrc, {mbid}, title, artist, coalesce(album, ''), duration_ms, date,"
    " listens, popularity, rights, match_key FROM stage WHERE {where} ORDER BY seq ON CONFLICT DO NOTHING"
)
_BY_NEW_ID = ("UPDATE stage SET rec_id = r.id FROM recording AS r"
              " WHERE r.id = :base + stage.seq AND " + "stage.seq = stage.leader_seq AND stage.rec_id IS NULL")
_MBID_IF_FREE = (
    "CASE WHEN mbid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM recording x WHERE x.mbid = stage.mbid)"
    " AND seq = (SELECT min(s2.seq) FROM stage s2 WHERE s2.mbid = stage.mbid"
    " AND s2.seq = s2.leader_seq AND s2.rec_id IS NULL) THEN mbid END"
)
# Join-form UPDATEs touch only the rows that find something: an unmatched row is not rewritten.
_JOIN_LEADER = "stage.seq = stage.leader_seq AND stage.rec_id IS NULL"
_JOIN_IDENTIFIED = "(stage.isrc IS NOT NULL OR stage.mbid IS NOT NULL)"
_BY_CAND_KEY = ("UPDATE stage SET rec_id = r.id FROM recording AS r"
                " WHERE r.key = stage.cand_key AND " + _JOIN_LEADER + "{extra}")
_KEY_EXISTS = ("EXISTS (SELECT 1 FROM recording r WHERE r.match_key = stage.match_key AND r.match_key != ''"
               " {extra} AND " + _DURATION_OK + ")")

# Identifiers beyond recording.isrc / recording.mbid (migration 0006): each resolves to its recording.
RESOLVE_ALIASES = [
    f"UPDATE stage SET rec_id = a.recording_id FROM isrc_alias AS a WHERE a.isrc = stage.isrc AND {_JOIN_LEADER}",
    f"UPDATE stage SET rec_id = a.recording_id FROM mbid_alias AS a WHERE a.mbid = stage.mbid AND {_JOIN_LEADER}",
]

RESOLVE = [
    # 1-2: existing recordings by identifier (primary, then alias)
    f"UPDATE stage SET rec_id = r.id FROM recording AS r WHERE r.isrc = stage.isrc AND {_JOIN_LEADER}",
    f"UPDATE stage SET rec_id = r.id FROM recording AS r WHERE r.mbid = stage.mbid AND {_JOIN_LEADER}",
    *RESOLVE_ALIASES,
    # 3: identified rows onto anonymous recordings by match key; one row per recording
    "UPDATE stage SET via_key = 1, rec_id = "
    + _BY_KEY.format(extra="AND +r.isrc IS NULL AND +r.mbid IS NULL")
    + f" WHERE {_LEADER} AND {_IDENTIFIED} AND {_NAMED} AND "
    + _KEY_EXISTS.format(extra="AND +r.isrc IS NULL AND +r.mbid IS NULL"),
    "UPDATE stage SET rec_id = NULL WHERE via_key = 1 AND rec_id IS NOT NULL AND seq NOT IN"
    " (SELECT min(seq) FROM stage WHERE via_key = 1 AND rec_id IS NOT NULL GROUP BY rec_id)",
    "UPDATE OR IGNORE recording SET mbid = s.mbid FROM (SELECT rec_id, mbid FROM stage"
    " WHERE via_key = 1 AND rec_id IS NOT NULL AND mbid IS NOT NULL) AS s"
    " WHERE s.rec_id = recording.id AND +recording.mbid IS NULL",  # "+": no index on NULLs
    # 4: new recordings keyed by ISRC or MBID
    _NEW_RECORDING.format(mbid=_MBID_IF_FREE, where=f"{_LEADER} AND {_IDENTIFIED}"),
    _BY_NEW_ID,
    _BY_CAND_KEY.format(extra=f" AND {_JOIN_IDENTIFIED}"),
    # 5-6: anonymous rows by match key (now also onto this batch's new recordings), else new
    "UPDATE stage SET rec_id = " + _BY_KEY.format(extra="") + f" WHERE {_LEADER} AND {_NAMED} AND "
    + _KEY_EXISTS.format(extra=""),
    _NEW_RECORDING.format(mbid="NULL", where=_LEADER),
    _BY_NEW_ID,
    _BY_CAND_KEY.format(extra=""),
    # 7: followers take their leader's recording
    "UPDATE stage SET rec_id = l.rec_id FROM stage AS l"
    " WHERE l.seq = stage.leader_seq AND stage.seq != stage.leader_seq",
]

# Rows that joined a recording older than this batch, by the rule that found it (ImportReport.counts).
# Read right after RESOLVE: step 3 gives a recording found by match key its row's MBID, so a
# via_key leader counts as name+duration before the identifier comparisons can see that MBID.
JOINED = (
    "SELECT CASE WHEN l.via_key = 1 THEN 'name+duration' WHEN r.isrc = l.isrc THEN 'isrc'"
    " WHEN r.mbid = l.mbid THEN 'mbid' ELSE 'name+duration' END AS rule, count(*)"
    " FROM stage s JOIN stage l ON l.seq = s.leader_seq JOIN recording r ON r.id = s.rec_id"
    " WHERE s.rec_id <= :last GROUP BY rule"
)

# Albums: only the first row of each album in the batch looks the album up or makes it (new ones
# get the id :abase + seq, as recordings do); the other rows find it through album_seq.
ALBUMS = [
    "UPDATE stage SET album_id = a.id FROM album AS a WHERE a.key = stage.album_key AND stage.album_first = 1",
    "INSERT INTO album(id, key, title, artist, date, label, upc, mbid)"
    " SELECT CASE WHEN album_id IS NULL THEN :abase + seq END, album_key, coalesce(album, ''), artist, date,"
    " label, upc, album_mbid FROM stage WHERE album_first = 1 ORDER BY seq"
    " ON CONFLICT(key) DO UPDATE SET title = CASE WHEN album.title = '' THEN excluded.title"
    " ELSE album.title END, artist = CASE WHEN album.artist = '' THEN excluded.artist ELSE album.artist END,"
    " date = coalesce(album.date, excluded.date),"
    " label = coalesce(album.label, excluded.label), upc = coalesce(album.upc, excluded.upc),"
    " mbid = coalesce(album.mbid, excluded.mbid)"
    " WHERE (album.title = '' AND excluded.title != '') OR (album.artist = '' AND excluded.artist != '')"
    " OR (album.date IS NULL AND excluded.date IS NOT NULL)"
    " OR (album.label IS NULL AND excluded.label IS NOT NULL) OR (album.upc IS NULL AND excluded.upc IS NOT NULL)"
    " OR (album.mbid IS NULL AND excluded.mbid IS NOT NULL)",
    "UPDATE stage SET album_id = a.id FROM album AS a"
    " WHERE a.id = :abase + stage.seq AND stage.album_first = 1 AND stage.album_id IS NULL",
    "UPDATE stage SET album_id = a.id FROM album AS a"
    " WHERE a.key = stage.album_key AND stage.album_first = 1 AND stage.album_id IS NULL",
]
# A row's album: the album_id of its album's first row (itself, for that row).
_ALBUM_OF_S = "(SELECT f.album_id FROM stage f WHERE f.seq = s.album_seq)"

_TRACK_DIFFERS = (
    f"t.recording_id IS NOT s.rec_id OR t.album_id IS NOT {_ALBUM_OF_S} OR t.title IS NOT s.title"
    " OR t.artist IS NOT s.artist OR t.track_number IS NOT s.track_number"
    " OR t.disc_number IS NOT s.disc_number"
)
_RECORDING_GAINS = (
    "s.listens > coalesce(r.listens, -1) OR s.popularity > coalesce(r.popularity, -1)"
    " OR (r.duration_ms IS NULL AND s.duration_ms IS NOT NULL)"
    " OR (s.date IS NOT NULL AND (r.date IS NULL OR s.date < r.date))"
    " OR (s.rights != 'unknown' AND r.rights = 'unknown')"
    " OR (s.isrc IS NOT NULL AND r.isrc IS NULL)"
    " OR (s.mbid IS NOT NULL AND r.mbid IS NULL AND NOT EXISTS (SELECT 1 FROM recording x WHERE x.mbid = s.mbid))"
)
# Counting (each row is new, updated or unchanged; a row counts by its batch's first row with the
# same track key). New and changed tracks are counted by the track upsert itself (see write); here
# only rows whose track stays the same but whose older recording gains something. CROSS JOIN keeps
# SQLite's order: the cheap rowid probe of recording first, the track key probe only for gainers.
GAINS = (
    "SELECT count(*) FROM stage s CROSS JOIN recording r CROSS JOIN track t"
    " WHERE s.track_first AND s.rec_id <= :last AND r.id = s.rec_id"
    f" AND ({_RECORDING_GAINS}) AND t.key = s.track_key AND NOT ({_TRACK_DIFFERS})"
)

MERGE = [
    # Identifiers and text an older recording lacked (:last = the largest id before this batch;
    # this batch's new recordings were made from their rows, so they lack nothing the rows have).
    # One value per recording; an ISRC or MBID held by another recording is left where it is.
    "UPDATE OR IGNORE recording SET isrc = s.isrc FROM (SELECT rec_id, min(isrc) AS isrc FROM stage"
    " WHERE isrc IS NOT NULL AND rec_id <= :last GROUP BY rec_id) AS s"
    " WHERE s.rec_id = recording.id AND +recording.isrc IS NULL",
    "UPDATE OR IGNORE recording SET mbid = s.mbid FROM (SELECT rec_id, min(mbid) AS mbid FROM stage"
    " WHERE mbid IS NOT NULL AND rec_id <= :last GROUP BY rec_id) AS s"
    " WHERE s.rec_id = recording.id AND +recording.mbid IS NULL",
    # counts and facts: monotone (largest count, earliest date), so re-imports change nothing
    "UPDATE recording SET"
    " listens = CASE WHEN a.listens > coalesce(recording.listens, -1) THEN a.listens ELSE recording.listens END,"
    " popularity = CASE WHEN a.popularity > coalesce(recording.popularity, -1) THEN a.popularity"
    " ELSE recording.popularity END,"
    " duration_ms = coalesce(recording.duration_ms, a.duration_ms),"
    " date = CASE WHEN a.date IS NOT NULL AND (recording.date IS NULL OR a.date < recording.date)"
    " THEN a.date ELSE recording.date END,"
    " rights = CASE WHEN recording.rights = 'unknown' THEN coalesce(a.rights, 'unknown') ELSE recording.rights END"
    " FROM (SELECT rec_id, max(listens) AS listens, max(popularity) AS popularity,"
    " min(duration_ms) AS duration_ms, min(date) AS date,"
    " max(CASE WHEN rights != 'unknown' THEN rights END) AS rights FROM stage GROUP BY rec_id"
    # a recording made in this batch holds its first row's facts: only its other rows can add any
    " HAVING rec_id <= :last OR count(*) > 1) AS a"
    " WHERE recording.id = a.rec_id AND (a.listens > coalesce(recording.listens, -1)"
    " OR a.popularity > coalesce(recording.popularity, -1)"
    " OR (recording.duration_ms IS NULL AND a.duration_ms IS NOT NULL)"
    " OR (a.date IS NOT NULL AND (recording.date IS NULL OR a.date < recording.date))"
    " OR (a.rights IS NOT NULL AND recording.rights = 'unknown'))",
    # searchable text only where it was empty (keeps the FTS update trigger quiet)
    "UPDATE recording SET"
    " artist = CASE WHEN recording.artist = '' THEN a.artist ELSE recording.artist END,"
    " match_key = CASE WHEN recording.artist = '' THEN a.match_key ELSE recording.match_key END,"
    " album = CASE WHEN recording.album = '' THEN a.album ELSE recording.album END"
    " FROM (SELECT rec_id, min(seq), artist, match_key, coalesce(album, '') AS album FROM stage"
    " WHERE rec_id <= :last GROUP BY rec_id) AS a"
    " WHERE recording.id = a.rec_id AND ((recording.artist = '' AND a.artist != '')"
    " OR (recording.album = '' AND a.album != ''))",
    "INSERT INTO artist(key, name, mbid) SELECT key, name, mbid FROM stage_artist WHERE true"
    " ON CONFLICT(key) DO NOTHING",
    "INSERT OR IGNORE INTO recording_artist(recording_id, position, artist_id)"
    " SELECT s.rec_id, j.key, a.id FROM (SELECT rec_id, min(seq), artists FROM stage"
    " WHERE artists != '[]' GROUP BY rec_id) AS s, json_each(s.artists) AS j JOIN artist a ON a.key = j.value"
    " WHERE s.rec_id > :last OR NOT EXISTS (SELECT 1 FROM recording_artist x WHERE x.recording_id = s.rec_id)",
]
# {first} = 1: each track key's first row (counted); then 0: later rows with the same key.
UPSERT_TRACKS = (
    "INSERT INTO track(key, recording_id, album_id, title, artist, track_number, disc_number)"
    f" SELECT track_key, rec_id, {_ALBUM_OF_S}, title, artist, track_number, disc_number FROM stage s"
    " WHERE track_first = {first} ORDER BY seq"
    " ON CONFLICT(key) DO UPDATE SET recording_id = excluded.recording_id, album_id = excluded.album_id,"
    " title = excluded.title, artist = excluded.artist, track_number = excluded.track_number,"
    " disc_number = excluded.disc_number"
    " WHERE track.recording_id IS NOT excluded.recording_id OR track.album_id IS NOT excluded.album_id"
    " OR track.title IS NOT excluded.title OR track.artist IS NOT excluded.artist"
    " OR track.track_number IS NOT excluded.track_number OR track.disc_number IS NOT excluded.disc_number"
)

_INSERT_STAGE = f"INSERT INTO stage({', '.join(STAGE_COLUMNS)}) VALUES ({', '.join('?' * len(STAGE_COLUMNS))})"
# migration 0010: while this row is in fts_deferred, recordings with id > upto wait for indexing
_DEFER = "INSERT INTO fts_deferred(id, upto) VALUES (1, :last) ON CONFLICT DO NOTHING"
# Rows on the recording their leader made (id :base + leader_seq) share its key: no need to look.
_KEY_FIXES = (
    "SELECT s.seq, r.key, s.album_key, s.disc_number, s.track_number FROM stage s"
    " JOIN recording r ON r.id = s.rec_id WHERE s.track_derived = 1 AND s.rec_id != :base + s.leader_seq"
    " AND r.key != s.cand_key"
)


@dataclass(frozen=True)
class ImportSource:
    """Where rows come from, for messages: rejections read ``<name>:<line>``."""

    name: str
    unit: str = "rows"


class BulkWriter:
    """Merges staged batches into the catalog; one transaction per batch."""

    def __init__(self, catalog: Catalog, report: ImportReport, source: ImportSource) -> None:
        self.catalog = catalog
        self.report = report
        self.source = source
        # One thread runs Python at a time anyway (the GIL); this lock decides whose turn it is.
        # executemany gives up the GIL around every row's sqlite3_step, and if the reader thread
        # is busy in Python, each row then waits for the GIL to come back: 10x slower staging.
        # The reader takes the lock for each slice of rows it prepares (RowPreparer.turn).
        self.turn = threading.Lock()
        self._cache_size = catalog.scalar("PRAGMA cache_size")
        with catalog.transaction() as conn:
            for sql in _CREATE:
                conn.execute(sql)
            # Fresh path: an empty or near-empty catalog defers its indexes until the end
            # (committed now, so a kill at any later point leaves the marker to recover).
            self.fresh = NEAR_EMPTY_RECORDINGS > 0 and conn.execute(
                "SELECT 1 FROM recording LIMIT 1 OFFSET ?", (NEAR_EMPTY_RECORDINGS - 1,)).fetchone() is None
            if self.fresh:
                deferred.begin_fresh_load(conn)
        catalog.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
        # importer-specific steps, run in each batch's transaction after the merge, while the
        # stage table still holds the batch: hook(conn, batch.extra, ids)
        self.after_merge: list[Callable[..., None]] = []
        # The fresh path matches in memory (_fresh.py) until something else writes to the catalog
        # or memory fills up; None: not loaded yet, False: the SQL statements from now on.
        self.memory: Memory | None | bool = None if self.fresh else False
        self._match_index_dropped = False

    @property
    def matches_in_memory(self) -> bool:
        """True while batches go to the fresh path's in-memory matching (_fresh.py)."""
        return self.memory is not False and not self.after_merge

    def close(self) -> None:
        """Commit the last group; build what the fresh path deferred; give back the page cache."""
        try:
            if self.catalog.conn.in_transaction:
                self.catalog.execute("COMMIT")
            with self.catalog.transaction() as conn:
                if not (self.fresh and deferred.finish_in(conn)):  # finish_in does both
                    deferred.compact(conn)
                    vocabulary.refresh(conn)  # a no-op when the import changed no word
        finally:
            self.catalog.execute(f"PRAGMA cache_size = {int(self._cache_size)}")

    def write(self, batch: StagedBatch) -> None:
        for line, reason in batch.rejections:
            self.report.reject(f"{self.source.name}:{line}", reason)
        if not batch.rows:
            return
        if self.matches_in_memory and self._write_from_memory(batch):
            return
        with self.catalog.transaction() as conn:
            if self._match_index_dropped:  # the memory path gave up: the statements below read it
                deferred.end_memory_load(conn)
                self._match_index_dropped = False
            conn.execute("DELETE FROM stage")
            conn.execute("DELETE FROM stage_artist")
            with self.turn:
                conn.executemany(_INSERT_STAGE, batch.rows)
                conn.executemany("INSERT OR IGNORE INTO stage_artist(key, name, mbid) VALUES (?, ?, ?)",
                                 batch.artists)
            last_id = conn.execute("SELECT coalesce(max(id), 0) FROM recording").fetchone()[0]
            ids = {"last": last_id, "base": last_id + 1,
                   "abase": conn.execute("SELECT coalesce(max(id), 0) + 1 FROM album").fetchone()[0]}
            # migrations 0005/0010: index new recordings in one statement, not per row; on the
            # fresh path (or behind another import's pending row) leave them for deferred.finish
            conn.execute(_DEFER, ids)
            owned = not self.fresh and conn.execute("SELECT changes()").fetchone()[0] == 1
            for sql in RESOLVE:
                conn.execute(sql, ids)
            if owned:
                conn.execute("DELETE FROM fts_deferred")
                deferred.index_new(conn, last_id)
            joined = conn.execute(JOINED, ids).fetchall()
            self._fix_track_keys(conn, batch, ids)
            for sql in ALBUMS:
                conn.execute(sql, ids)
            gains = conn.execute(GAINS, ids).fetchone()[0]
            for sql in MERGE:
                conn.execute(sql, ids)
            new, changed = self._upsert_tracks(conn)
            for hook in self.after_merge:
                hook(conn, batch.extra, ids)
            conn.execute("DELETE FROM stage")
        self._count(batch, joined, new, changed + gains)

    def _count(self, batch: StagedBatch, joined: Iterable[tuple[str, int]], new: int, updated: int) -> None:
        for rule, n in joined:
            self.report.count(f"joined_by_{rule}", n)
        self.report.new += new
        self.report.updated += updated
        self.report.unchanged += len(batch.rows) - new - updated

    def _write_from_memory(self, batch: StagedBatch) -> bool:
        """The fresh path: match in memory, write final rows; False when the SQL path must take over.

        Batches are committed in groups of GROUP_ROWS rows, not one by one: every commit
        rewrites to the WAL nearly every page of the random-key indexes (recording, track,
        album keys), 4 x 6,000 pages per batch at 1M rows, and a checkpoint copies them again.
        A failing or killed import loses its uncommitted group; the groups before it stay whole.
        """
        conn = self.catalog.conn
        try:
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
                self._grouped = 0
            if self.memory is None:
                self.memory = Memory(conn)
                self._match_index_dropped = True
                deferred.begin_memory_load(conn)
            memory = self.memory
            if not isinstance(memory, Memory) or not memory.current(conn) or memory.full():
                self.memory = False  # another writer committed, or memory is full
                conn.execute("COMMIT")
                return False
            joined, new, updated = memory.match(batch.rows, batch.artists)
            memory.flush(conn, self.turn)
            self._grouped += len(batch.rows)
            if self._grouped >= GROUP_ROWS:
                conn.execute("COMMIT")
        except BaseException:
            self.memory = False  # rolled back: the dictionaries no longer describe the catalog
            if conn.in_transaction:
                with contextlib.suppress(SoundarkError):
                    conn.execute("ROLLBACK")
            raise
        self._count(batch, joined.items(), new, updated)
        return True

    @staticmethod
    def _upsert_tracks(conn) -> tuple[int, int]:
        """Write the tracks; (new, changed) among each key's first row in the batch.

        New tracks take ids max(id) + 1, + 2, ...: the growth of max(id) counts them, and the
        statement's other changes are updates of tracks that differed.
        """
        before = conn.execute("SELECT coalesce(max(id), 0) FROM track").fetchone()[0]
        conn.execute(UPSERT_TRACKS.format(first=1))
        written = conn.execute("SELECT changes()").fetchone()[0]
        new = conn.execute("SELECT coalesce(max(id), 0) FROM track").fetchone()[0] - before
        conn.execute(UPSERT_TRACKS.format(first=0))
        return new, written - new

    def _fix_track_keys(self, conn, batch: StagedBatch, ids: dict) -> None:
        """Derived track keys name the *matched* recording's key, known only now."""
        fixes = conn.execute(_KEY_FIXES, ids).fetchall()
        if not fixes:
            return
        key_at, first_at = STAGE_COLUMNS.index("track_key"), STAGE_COLUMNS.index("track_first")
        keys = [row[key_at] for row in batch.rows]  # rows[seq] is the row staged as seq
        firsts = [row[first_at] for row in batch.rows]
        for seq, rec_key, album_key, disc, tno in fixes:
            keys[seq] = derived_key("track", rec_key, album_key, disc, tno)
        seen: set[str] = set()
        updates = []
        for seq, key in enumerate(keys):
            first = int(key not in seen)
            seen.add(key)
            if key != batch.rows[seq][key_at] or first != firsts[seq]:
                updates.append((key, first, seq))
        conn.executemany("UPDATE stage SET track_key = ?, track_first = ? WHERE seq = ?", updates)


_DONE = object()
T = TypeVar("T")


def pipelined(batches: Iterable[object], prepare: Callable[[object], T], depth: int = 2) -> Iterator[T]:
    """Yield ``prepare(b)`` for each batch, reading and preparing ahead on a second thread.

    At most *depth* prepared batches wait in the queue, so memory stays bounded
    whatever the size of the input. An exception in the reader is re-raised here.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for b in batches:
                if stop.is_set():
                    return
                q.put(prepare(b))
        except BaseException as e:  # handed to the consumer, raised there
            q.put(e)
            return
        q.put(_DONE)

    thread = threading.Thread(target=work, name="soundark-import-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


def run_import(writer: BulkWriter, batches: Iterable[object], prepare: Callable[[object], StagedBatch],
               progress: Progress) -> ImportReport:
    """Drive a whole import: read + prepare ahead, merge each batch, report progress."""
    progress.start(None, f"importing {writer.source.name}", writer.source.unit)
    # The import makes millions of small objects that live until its end and no cycles: the
    # cyclic collector would walk them all again and again (a third of the matching's time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        with contextlib.closing(pipelined(batches, prepare)) as staged_batches:  # stops the reader on error
            for staged in staged_batches:
                writer.write(staged)
                progress.advance(staged.total)
                if progress.cancelled():
                    progress.note(f"{writer.source.name}: import cancelled; finished batches are kept")
                    break
    finally:
        if collecting:
            gc.enable()
        writer.close()
    return writer.report
