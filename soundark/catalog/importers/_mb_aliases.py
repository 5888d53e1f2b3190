"""After each MusicBrainz batch: identifier aliases, recording titles, album artists.

Runs inside the batch's transaction (``BulkWriter.after_merge``), after the rows were
merged, with the TEMP table ``stage`` of :mod:`._bulk` still filled (each row's
``rec_id``). Fills migration 0006's tables (docs/catalog.md, "Identifiers"):

- ``isrc_alias``: every ISRC of a recording beyond its first (``recording.isrc``), unless
  the code is already a primary ISRC or an alias (then it is reported as a warning: the
  two recordings are kept apart, never merged on a second ISRC);
- ``mbid_alias``: a MusicBrainz recording whose ISRC already belongs to a catalog
  recording holding another MBID (MusicBrainz duplicates not yet merged there) resolves
  to that recording, with reason ``shares ISRC X``; each one is reported as a merge.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from soundark.model import ImportReport

CREATE = [
    "CREATE TEMP TABLE IF NOT EXISTS mb_extra (mbid TEXT NOT NULL, line INTEGER, isrcs TEXT, rec_title TEXT)",
    "CREATE INDEX IF NOT EXISTS temp.mb_extra_mbid ON mb_extra(mbid)",
    "CREATE TEMP TABLE IF NOT EXISTS mb_album (mbid TEXT PRIMARY KEY, artist TEXT NOT NULL)",
]

# A new recording made from a track row got the track's title: give it the recording's own.
_RECORDING_TITLES = (
    "UPDATE recording SET title = e.rec_title FROM (SELECT mbid, min(rec_title) AS rec_title FROM mb_extra"
    " WHERE rec_title IS NOT NULL GROUP BY mbid) AS e"
    " WHERE recording.mbid = e.mbid AND recording.id > :last AND recording.title != e.rec_title"
)
# A new album got its first row's (track) credit: give it the release's own.
_ALBUM_ARTISTS = (
    "UPDATE album SET artist = m.artist FROM mb_album AS m"
    " WHERE album.key = 'mb' || replace(m.mbid, '-', '') AND album.id >= :abase"
    " AND m.artist != '' AND album.artist != m.artist"
)
_SHARED_MBIDS = (
    "SELECT s.mbid, s.rec_id, r.key, r.mbid, s.isrc"
    " FROM stage s JOIN recording r ON r.id = s.rec_id"
    " WHERE s.mbid IS NOT NULL AND s.isrc IS NOT NULL AND r.mbid IS NOT s.mbid"
    " AND NOT EXISTS (SELECT 1 FROM recording x WHERE x.mbid = s.mbid)"
    " AND NOT EXISTS (SELECT 1 FROM mbid_alias a WHERE a.mbid = s.mbid)"
    " GROUP BY s.mbid"
)
_FURTHER_ISRCS = (
    "SELECT e.line, j.value, o.rec_id, r.key,"
    " (SELECT x.key FROM recording x WHERE x.isrc = j.value),"
    " (SELECT x.key FROM isrc_alias a JOIN recording x ON x.id = a.recording_id WHERE a.isrc = j.value)"
    " FROM mb_extra e JOIN json_each(e.isrcs) j"
    " JOIN (SELECT mbid, min(rec_id) AS rec_id FROM stage WHERE mbid IS NOT NULL GROUP BY mbid) o"
    " ON o.mbid = e.mbid JOIN recording r ON r.id = o.rec_id"
    " WHERE e.isrcs IS NOT NULL AND r.isrc IS NOT j.value"
)


@dataclass
class MusicBrainzExtra:
    """Per batch: recordings with more to record, the line of each MBID, release credits.

    ``recordings`` holds (MBID, line, further ISRCs as JSON, recording title) only for
    recordings with further ISRCs or a title other than their track's: most have neither,
    and staging every row again would cost ~8 us per row.
    """

    recordings: list[tuple[str, int, str | None, str | None]] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # recording MBID -> first line
    albums: list[tuple[str, str]] = field(default_factory=list)


class AliasRecorder:
    """The ``after_merge`` hook of a MusicBrainz import."""

    def __init__(self, conn: sqlite3.Connection, report: ImportReport, source: str) -> None:
        self.report = report
        self.source = source
        for sql in CREATE:
            conn.execute(sql)

    def __call__(self, conn: sqlite3.Connection, extra: object, ids: dict) -> None:
        if not isinstance(extra, MusicBrainzExtra):
            return
        conn.execute("DELETE FROM mb_extra")
        conn.execute("DELETE FROM mb_album")
        conn.executemany("INSERT INTO mb_extra(mbid, line, isrcs, rec_title) VALUES (?, ?, ?, ?)",
                         extra.recordings)
        conn.executemany("INSERT OR REPLACE INTO mb_album(mbid, artist) VALUES (?, ?)", extra.albums)
        conn.execute(_RECORDING_TITLES, ids)
        conn.execute(_ALBUM_ARTISTS, ids)
        self._mbid_aliases(conn, extra.lines)
        self._isrc_aliases(conn)

    def _mbid_aliases(self, conn: sqlite3.Connection, lines: dict[str, int]) -> None:
        added = []
        for mbid, rec_id, key, primary, isrc in conn.execute(_SHARED_MBIDS).fetchall():
            subject = f"{self.source}:{lines.get(mbid, '?')}"
            added.append((mbid, rec_id, f"musicbrainz:{subject}", f"shares ISRC {isrc}"))
            self.report.merge(subject, key, "isrc", f"MusicBrainz recording {mbid} shares ISRC {isrc} with "
                              f"{primary or 'it'}: kept as an alias")
        conn.executemany("INSERT OR IGNORE INTO mbid_alias(mbid, recording_id, source, reason)"
                         " VALUES (?, ?, ?, ?)", added)
        if added:
            self.report.count("mbid_aliases_added", len(added))

    def _isrc_aliases(self, conn: sqlite3.Connection) -> None:
        added: dict[str, tuple] = {}
        for line, isrc, rec_id, key, primary_of, alias_of in conn.execute(_FURTHER_ISRCS).fetchall():
            holder = primary_of or alias_of or (added[isrc][3] if isrc in added else None)
            if holder is None:
                added[isrc] = (isrc, rec_id, f"musicbrainz:{self.source}:{line}", key)
            elif holder != key:
                self.report.warn(f"{self.source}:{line}", f"ISRC {isrc} of recording {key} already belongs to "
                                 f"recording {holder}: the two are kept apart")
                self.report.count("isrcs_shared_kept_apart")
        conn.executemany("INSERT OR IGNORE INTO isrc_alias(isrc, recording_id, source) VALUES (?, ?, ?)",
                         [a[:3] for a in added.values()])
        if added:
            self.report.count("isrc_aliases_added", len(added))
