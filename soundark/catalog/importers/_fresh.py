"""The fresh path's matching in memory: _bulk's RESOLVE, ALBUMS, MERGE and track upsert, in dictionaries.

A catalog that is empty or near-empty when an import starts (_bulk.NEAR_EMPTY_RECORDINGS) is
read once into dictionaries (recordings by ISRC, MBID, key and match key; albums, tracks and
artists by key), and every batch is then matched in Python against them and written with a few
``executemany`` calls of final rows in id order: no staging table, no set-based statements, no
index probes for look-ups. The rules are exactly those of the SQL statements in _bulk.py (the
module docstring there, and docs/formats.md), step by step in the same order, including how a
batch sees itself: rows without identifiers match by name + duration only recordings made by
earlier batches or by this batch's identified rows, as the statements do.
tests/test_import_fresh.py builds the same catalogs both ways and compares them.

The dictionaries are the truth only while nobody else writes: every batch first checks
``PRAGMA data_version`` (it changes when another connection commits) and the largest ids; the
caller then goes back to the SQL path. They hold every recording and track of the import, so
past MEMORY_LIMIT recordings the caller goes back to the SQL path too.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from contextlib import AbstractContextManager

from soundark.model import derived_key

MATCH_WINDOW_MS = 3000
MEMORY_LIMIT = 1_500_000  # recordings held in memory, with their tracks: ~1.7 GB per 740k measured

# batch row columns (_bulk.STAGE_COLUMNS)
(SEQ, TITLE, ARTIST, ARTISTS, ALBUM, ALBUM_KEY, ALBUM_FIRST, ALBUM_MBID, UPC, DATE, LABEL, ISRC, MBID,
 DUR, TNO, DISC, LISTENS, POP, RIGHTS, MKEY, CAND_KEY, TRACK_KEY, TRACK_DERIVED, LEADER, TRACK_FIRST,
 ALBUM_SEQ) = range(26)
# a recording in memory: the INSERT's columns, in order
R_ID, R_KEY, R_ISRC, R_MBID, R_TITLE, R_ARTIST, R_ALBUM, R_DUR, R_DATE, R_LISTENS, R_POP, R_RIGHTS, R_MKEY = range(13)
REC_COLUMNS = "id, key, isrc, mbid, title, artist, album, duration_ms, date, listens, popularity, rights, match_key"
ALBUM_COLUMNS = "id, key, title, artist, date, label, upc, mbid"
TRACK_COLUMNS = "id, key, recording_id, album_id, title, artist, track_number, disc_number"

_INSERT_RECORDING = f"INSERT INTO recording({REC_COLUMNS}) VALUES ({', '.join('?' * 13)})"
_UPDATE_RECORDING = ("UPDATE recording SET isrc = ?, mbid = ?, duration_ms = ?, date = ?, listens = ?,"
                     " popularity = ?, rights = ? WHERE id = ?")
# only where searchable text changed: the FTS update triggers fire on these columns
_UPDATE_TEXT = "UPDATE recording SET artist = ?, album = ?, match_key = ? WHERE id = ?"
_INSERT_ALBUM = f"INSERT INTO album({ALBUM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_UPDATE_ALBUM = "UPDATE album SET title = ?, artist = ?, date = ?, label = ?, upc = ?, mbid = ? WHERE id = ?"
_INSERT_TRACK = f"INSERT INTO track({TRACK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_ARTIST = "INSERT INTO artist(id, key, name, mbid) VALUES (?, ?, ?, ?)"
_INSERT_CREDIT = "INSERT OR IGNORE INTO recording_artist(recording_id, position, artist_id) VALUES (?, ?, ?)"
_UPDATE_TRACK = ("UPDATE track SET recording_id = ?, album_id = ?, title = ?, artist = ?, track_number = ?,"
                 " disc_number = ? WHERE id = ?")
_MAX_IDS = ("SELECT (SELECT coalesce(max(id), 0) FROM recording), (SELECT coalesce(max(id), 0) FROM album),"
            " (SELECT coalesce(max(id), 0) FROM track), (SELECT coalesce(max(id), 0) FROM artist)")


def _named(mkey: str) -> bool:
    """_bulk._NAMED: both halves of the match key exist."""
    return mkey != "" and mkey[0] != "\x1f" and mkey[-1] != "\x1f"


def _gt(a, b) -> bool:
    """SQL ``a > coalesce(b, -1)``: false when a is NULL."""
    return a is not None and a > (-1 if b is None else b)


class Memory:
    """What the catalog holds, by the keys the import looks up; the writer of each batch."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.recs: dict[int, list] = {}
        self.by_isrc: dict[str, int] = {}
        self.by_mbid: dict[str, int] = {}
        self.by_key: dict[str, int] = {}
        self.by_mkey: dict[str, list[int]] = defaultdict(list)
        for row in conn.execute(f"SELECT {REC_COLUMNS} FROM recording ORDER BY id"):
            self._add(list(row))
        self.isrc_alias = dict(conn.execute("SELECT isrc, recording_id FROM isrc_alias"))
        self.mbid_alias = dict(conn.execute("SELECT mbid, recording_id FROM mbid_alias"))
        self.credited = {r[0] for r in conn.execute("SELECT DISTINCT recording_id FROM recording_artist")}
        self.albums = {r[1]: list(r) for r in conn.execute(f"SELECT {ALBUM_COLUMNS} FROM album")}
        # a track: (id, recording_id, album_id, title, artist, track_number, disc_number), by key
        self.tracks = {r[1]: (r[0], *r[2:]) for r in conn.execute(f"SELECT {TRACK_COLUMNS} FROM track")}
        self.artists: dict[str, int] = dict(conn.execute("SELECT key, id FROM artist"))
        self.credit_keys: dict[str, list[tuple[int, int]]] = {}
        self.ids = tuple(conn.execute(_MAX_IDS).fetchone())
        self.version = conn.execute("PRAGMA data_version").fetchone()[0]

    def _add(self, rec: list) -> None:
        rid = rec[R_ID]
        self.recs[rid] = rec
        self.by_key[rec[R_KEY]] = rid
        if rec[R_ISRC] is not None:
            self.by_isrc[rec[R_ISRC]] = rid
        if rec[R_MBID] is not None:
            self.by_mbid[rec[R_MBID]] = rid
        if rec[R_MKEY]:
            self.by_mkey[rec[R_MKEY]].append(rid)

    def current(self, conn: sqlite3.Connection) -> bool:
        """True while nobody else has written since the last batch (inside the batch's transaction)."""
        return (conn.execute("PRAGMA data_version").fetchone()[0] == self.version
                and tuple(conn.execute(_MAX_IDS).fetchone()) == self.ids)

    def full(self) -> bool:
        return len(self.recs) > MEMORY_LIMIT

    def _by_name(self, row: tuple, anonymous_only: bool) -> int | None:
        """_bulk._BY_KEY: the nearest duration (unknown = 3000 ms away) within the window, then lowest id."""
        best = None
        dur = row[DUR]
        for rid in self.by_mkey.get(row[MKEY], ()):
            rec = self.recs[rid]
            if anonymous_only and (rec[R_ISRC] is not None or rec[R_MBID] is not None):
                continue
            rdur = rec[R_DUR]
            if rdur is None or dur is None:
                score = MATCH_WINDOW_MS
            else:
                score = abs(rdur - dur)
                if score > MATCH_WINDOW_MS:
                    continue
            if best is None or (score, rid) < best:
                best = (score, rid)
        return None if best is None else best[1]

    def resolve(self, rows: list[tuple], base: int) -> tuple[list, list[bool], list[list]]:
        """_bulk.RESOLVE: each row's recording id, whether its leader joined by name, the new recordings."""
        n = len(rows)
        rec_id: list = [None] * n
        via = [False] * n
        leaders = [row for row in rows if row[SEQ] == row[LEADER]]
        for row in leaders:  # 1-2: by identifier, primary then alias
            isrc, mbid = row[ISRC], row[MBID]
            found = (isrc is not None and self.by_isrc.get(isrc)) or (mbid is not None and self.by_mbid.get(mbid)) \
                or (isrc is not None and self.isrc_alias.get(isrc)) or (mbid is not None and self.mbid_alias.get(mbid))
            if found:
                rec_id[row[SEQ]] = found
        self._onto_anonymous(leaders, rec_id, via)
        new: list[list] = []
        # 4: new recordings for identified rows; an MBID only if free and this is its first such row
        pending = [r for r in leaders if rec_id[r[SEQ]] is None and (r[ISRC] is not None or r[MBID] is not None)]
        first_of_mbid: dict[str, int] = {}
        for r in pending:
            if r[MBID] is not None:
                first_of_mbid.setdefault(r[MBID], r[SEQ])
        mbids = {r[SEQ]: r[MBID] for r in pending if r[MBID] is not None and r[MBID] not in self.by_mbid
                 and first_of_mbid[r[MBID]] == r[SEQ]}
        self._insert(pending, mbids, base, rec_id, new)
        # 5-6: anonymous rows by name + duration (now also onto this batch's new recordings), else new
        rest = [r for r in leaders if rec_id[r[SEQ]] is None]
        for r in rest:
            if _named(r[MKEY]):
                rec_id[r[SEQ]] = self._by_name(r, anonymous_only=False)
        self._insert([r for r in rest if rec_id[r[SEQ]] is None], {}, base, rec_id, new)
        for row in rows:  # 7: followers take their leader's recording
            if row[SEQ] != row[LEADER]:
                rec_id[row[SEQ]] = rec_id[row[LEADER]]
        return rec_id, via, new

    def _onto_anonymous(self, leaders: list[tuple], rec_id: list, via: list[bool]) -> None:
        """Step 3: identified rows onto recordings with neither identifier, one row per recording."""
        taken: set[int] = set()
        chosen = []
        for r in leaders:
            if rec_id[r[SEQ]] is None and (r[ISRC] is not None or r[MBID] is not None) and _named(r[MKEY]):
                found = self._by_name(r, anonymous_only=True)
                if found is not None:
                    via[r[SEQ]] = True
                    if found not in taken:  # a later row of the same recording stays unresolved
                        taken.add(found)
                        rec_id[r[SEQ]] = found
                        chosen.append(r)
        for r in chosen:  # the recording takes the row's MBID (UPDATE OR IGNORE: unless held)
            rec = self.recs[rec_id[r[SEQ]]]
            if r[MBID] is not None and rec[R_MBID] is None and r[MBID] not in self.by_mbid:
                rec[R_MBID] = r[MBID]
                self.by_mbid[r[MBID]] = rec[R_ID]
                self.touched.add(rec[R_ID])

    def _insert(self, rows: list[tuple], mbids: dict[int, str], base: int, rec_id: list, new: list) -> None:
        """_bulk._NEW_RECORDING (ON CONFLICT DO NOTHING on the key), then by new id, else by key."""
        for r in rows:
            seq, key = r[SEQ], r[CAND_KEY]
            held = self.by_key.get(key)
            if held is not None:
                rec_id[seq] = held
                continue
            rec = [base + seq, key, r[ISRC], mbids.get(seq), r[TITLE], r[ARTIST], r[ALBUM] or "", r[DUR],
                   r[DATE], r[LISTENS], r[POP], r[RIGHTS], r[MKEY]]
            self._add(rec)
            new.append(rec)
            rec_id[seq] = base + seq

    def match(self, rows: list[tuple], artists: list[tuple]) -> tuple[dict, int, int]:
        """Match one batch: (joined counts, new, updated); the writes wait in ``self.out``.

        The dictionaries change as the batch is matched: if the caller's transaction fails to
        write ``self.out``, this Memory no longer describes the catalog and must be dropped.
        """
        last, last_album = self.ids[0], self.ids[1]
        self.touched: set[int] = set()
        self.out: list[tuple[str, list]] = []
        rec_id, via, new_recs = self.resolve(rows, last + 1)
        joined: dict[str, int] = {}
        for row in rows:
            rid = rec_id[row[SEQ]]
            if rid <= last:
                lead, rec = rows[row[LEADER]], self.recs[rid]
                rule = ("name+duration" if via[lead[SEQ]] else "isrc" if rec[R_ISRC] is not None
                        and rec[R_ISRC] == lead[ISRC] else "mbid" if rec[R_MBID] is not None
                        and rec[R_MBID] == lead[MBID] else "name+duration")
                joined[rule] = joined.get(rule, 0) + 1
        keys, firsts = self._track_keys(rows, rec_id, last + 1)
        album_of = self._albums(rows, last_album + 1)
        gains = sum(1 for row in rows if firsts[row[SEQ]] and rec_id[row[SEQ]] <= last
                    and self._gains(row, self.recs[rec_id[row[SEQ]]])
                    and self._same_track(keys[row[SEQ]], row, rec_id[row[SEQ]], album_of))
        texts = self._merge(rows, rec_id, last)
        new_set = {rec[R_ID] for rec in new_recs}
        new_recs.sort(key=lambda rec: rec[R_ID])
        # recordings first (albums were queued by _albums): tracks and credits refer to them
        self.out[:0] = [(_INSERT_RECORDING, new_recs), (_UPDATE_RECORDING, [
            (r[R_ISRC], r[R_MBID], r[R_DUR], r[R_DATE], r[R_LISTENS], r[R_POP], r[R_RIGHTS], r[R_ID])
            for r in (self.recs[rid] for rid in sorted(self.touched - new_set))]), (_UPDATE_TEXT, texts)]
        self._credits(rows, rec_id, last, artists)
        new, changed = self._tracks(rows, rec_id, keys, firsts, album_of)
        if new_recs:
            self.ids = (new_recs[-1][R_ID], *self.ids[1:])
        return joined, new, changed + gains

    def flush(self, conn: sqlite3.Connection, turn: AbstractContextManager) -> None:
        """Write what match() queued, in order, inside the caller's transaction.

        *turn* is held around the writes (see _bulk.BulkWriter.turn). Tried and dropped: one
        ``INSERT ... SELECT ... FROM json_each(?)`` per table, which runs without the GIL so
        the reader could work meanwhile: SQLite 3.40 parses each row's JSON once per column,
        and the statements cost 1.7x the CPU of ``executemany`` (measured, 200k rows).
        """
        with turn:
            for sql, params in self.out:
                if params:
                    conn.executemany(sql, params)
        self.out = []

    def _track_keys(self, rows: list[tuple], rec_id: list, base: int) -> tuple[list[str], list[bool]]:
        """_bulk._fix_track_keys: derived track keys name the matched recording's key."""
        keys = [row[TRACK_KEY] for row in rows]
        for row in rows:
            seq = row[SEQ]
            if row[TRACK_DERIVED] and rec_id[seq] != base + row[LEADER]:
                rec_key = self.recs[rec_id[seq]][R_KEY]
                if rec_key != row[CAND_KEY]:
                    keys[seq] = derived_key("track", rec_key, row[ALBUM_KEY], row[DISC], row[TNO])
        seen: set[str] = set()
        firsts = []
        for key in keys:
            firsts.append(key not in seen)
            seen.add(key)
        return keys, firsts

    def _albums(self, rows: list[tuple], abase: int) -> list:
        """_bulk.ALBUMS: each album's first row makes it or fills what it lacks; every row's album id."""
        inserts, updates = [], {}
        for row in rows:
            if not row[ALBUM_FIRST]:
                continue
            title, artist = row[ALBUM] or "", row[ARTIST]
            album = self.albums.get(row[ALBUM_KEY])
            if album is None:
                album = [abase + row[SEQ], row[ALBUM_KEY], title, artist, row[DATE], row[LABEL], row[UPC],
                         row[ALBUM_MBID]]
                self.albums[row[ALBUM_KEY]] = album
                inserts.append(album)
                continue
            filled = [title if album[2] == "" else album[2], artist if album[3] == "" else album[3],
                      *(a if a is not None else b for a, b in zip(album[4:], (row[DATE], row[LABEL], row[UPC],
                                                                                 row[ALBUM_MBID])))]
            if filled != album[2:]:
                album[2:] = filled
                if album[0] < abase:
                    updates[album[0]] = album
        self.out.append((_INSERT_ALBUM, inserts))
        self.out.append((_UPDATE_ALBUM, [(*a[2:], a[0]) for a in updates.values()]))
        if inserts:
            self.ids = (self.ids[0], inserts[-1][0], *self.ids[2:])
        return [None if row[ALBUM_SEQ] is None else self.albums[rows[row[ALBUM_SEQ]][ALBUM_KEY]][0] for row in rows]

    def _gains(self, row: tuple, rec: list) -> bool:
        """_bulk._RECORDING_GAINS: the row brings its older recording something."""
        date = row[DATE]
        return (_gt(row[LISTENS], rec[R_LISTENS]) or _gt(row[POP], rec[R_POP])
                or (rec[R_DUR] is None and row[DUR] is not None)
                or (date is not None and (rec[R_DATE] is None or date < rec[R_DATE]))
                or (row[RIGHTS] != "unknown" and rec[R_RIGHTS] == "unknown")
                or (row[ISRC] is not None and rec[R_ISRC] is None)
                or (row[MBID] is not None and rec[R_MBID] is None and row[MBID] not in self.by_mbid))

    def _same_track(self, key: str, row: tuple, rid: int, album_of: list) -> bool:
        t = self.tracks.get(key)
        return t is not None and t[1:] == (rid, album_of[row[SEQ]], row[TITLE], row[ARTIST], row[TNO], row[DISC])

    def _merge(self, rows: list[tuple], rec_id: list, last: int) -> list[tuple]:
        """_bulk.MERGE for recordings: identifiers an older one lacked, monotone facts, empty text."""
        groups: dict[int, list[tuple]] = defaultdict(list)
        for row in rows:
            groups[rec_id[row[SEQ]]].append(row)
        old = sorted(rid for rid in groups if rid <= last)
        for column, at, index in ((ISRC, R_ISRC, self.by_isrc), (MBID, R_MBID, self.by_mbid)):
            for rid in old:  # one value per recording; one held by another recording stays there
                rec = self.recs[rid]
                values = [row[column] for row in groups[rid] if row[column] is not None]
                if values and rec[at] is None and min(values) not in index:
                    rec[at] = min(values)
                    index[rec[at]] = rid
                    self.touched.add(rid)
        for rid, group in groups.items():
            # a recording made from this batch's row holds that row's facts: only more rows add any
            if (rid <= last or len(group) > 1) and self._facts(self.recs[rid], group) and rid <= last:
                self.touched.add(rid)
        return [t for t in (self._text(self.recs[rid], groups[rid][0]) for rid in old) if t is not None]

    @staticmethod
    def _facts(rec: list, group: list[tuple]) -> bool:
        """Largest counts, earliest date, a known duration and rights; True when *rec* changed."""
        before = rec[R_DUR:R_RIGHTS + 1]
        listens = max((r[LISTENS] for r in group if r[LISTENS] is not None), default=None)
        pop = max((r[POP] for r in group if r[POP] is not None), default=None)
        if _gt(listens, rec[R_LISTENS]):
            rec[R_LISTENS] = listens
        if _gt(pop, rec[R_POP]):
            rec[R_POP] = pop
        if rec[R_DUR] is None:
            rec[R_DUR] = min((r[DUR] for r in group if r[DUR] is not None), default=None)
        date = min((r[DATE] for r in group if r[DATE] is not None), default=None)
        if date is not None and (rec[R_DATE] is None or date < rec[R_DATE]):
            rec[R_DATE] = date
        if rec[R_RIGHTS] == "unknown":
            rec[R_RIGHTS] = max((r[RIGHTS] for r in group if r[RIGHTS] != "unknown"), default="unknown")
        return rec[R_DUR:R_RIGHTS + 1] != before

    def _text(self, rec: list, first: tuple) -> tuple | None:
        """Artist (with its match key) and album where the recording had none, from its first row."""
        artist, album = first[ARTIST], first[ALBUM] or ""
        if not ((rec[R_ARTIST] == "" and artist != "") or (rec[R_ALBUM] == "" and album != "")):
            return None
        if rec[R_ARTIST] == "":
            if rec[R_MKEY] != first[MKEY]:
                if rec[R_MKEY]:
                    self.by_mkey[rec[R_MKEY]].remove(rec[R_ID])
                if first[MKEY]:
                    self.by_mkey[first[MKEY]].append(rec[R_ID])
            rec[R_ARTIST], rec[R_MKEY] = artist, first[MKEY]
        if rec[R_ALBUM] == "":
            rec[R_ALBUM] = album
        return rec[R_ARTIST], rec[R_ALBUM], rec[R_MKEY], rec[R_ID]

    def _credits(self, rows: list[tuple], rec_id: list, last: int, artists: list[tuple]) -> None:
        """New artists (ids in order), then the credits of recordings that have none yet."""
        added = []
        for key, name, mbid in artists:
            if key not in self.artists:
                self.ids = (*self.ids[:3], self.ids[3] + 1)
                self.artists[key] = self.ids[3]
                added.append((self.ids[3], key, name, mbid))
        self.out.append((_INSERT_ARTIST, added))
        firsts: dict[int, str] = {}
        for row in rows:
            if row[ARTISTS] != "[]":
                firsts.setdefault(rec_id[row[SEQ]], row[ARTISTS])
        if len(self.credit_keys) > 200_000:  # bounded memory on dumps with millions of artists
            self.credit_keys.clear()
        credits = []
        for rid in sorted(firsts):
            if rid <= last and rid in self.credited:
                continue
            made = self.credit_keys.get(firsts[rid])
            if made is None:
                keys = json.loads(firsts[rid])
                made = [(pos, self.artists[key]) for pos, key in enumerate(keys) if key in self.artists]
                if len(made) == len(keys):  # an artist unknown yet may be known by a later batch
                    self.credit_keys[firsts[rid]] = made
            if made:
                self.credited.add(rid)
                credits.extend([(rid, pos, aid) for pos, aid in made])
        self.out.append((_INSERT_CREDIT, credits))

    def _tracks(self, rows: list[tuple], rec_id: list, keys: list[str], firsts: list[bool],
                album_of: list) -> tuple[int, int]:
        """_bulk.UPSERT_TRACKS: each key's first row (counted), then its later rows; (new, changed)."""
        inserts, updates, changed = [], {}, 0
        last_track = next_id = self.ids[2]
        tracks = self.tracks
        later = [] if all(firsts) else [row for row in rows if not firsts[row[SEQ]]]
        for row in (rows if not later else [row for row in rows if firsts[row[SEQ]]] + later):
            seq = row[SEQ]
            key = keys[seq]
            track = tracks.get(key)
            if track is None:
                next_id += 1
                tracks[key] = (next_id, rec_id[seq], album_of[seq], row[TITLE], row[ARTIST], row[TNO], row[DISC])
                inserts.append(key)
            else:
                values = (rec_id[seq], album_of[seq], row[TITLE], row[ARTIST], row[TNO], row[DISC])
                if track[1:] != values:
                    tracks[key] = (track[0], *values)
                    changed += firsts[seq]
                    if track[0] <= last_track:
                        updates[track[0]] = key
        self.out.append((_INSERT_TRACK, [(tracks[k][0], k, *tracks[k][1:]) for k in inserts]))
        self.out.append((_UPDATE_TRACK, [(*tracks[k][1:], tid) for tid, k in updates.items()]))
        self.ids = (*self.ids[:2], next_id, self.ids[3])
        return len(inserts), changed
