"""Match what a source says about a piece of audio to a catalog recording, or create one.

A recording is found, in this order, by
1. its ISRC (ISO 3901, normalised to 12 characters), then
2. its MusicBrainz recording ID (each also as an alias: :mod:`soundark.catalog.identifiers`), then
3. normalised artist + title (:func:`soundark.model.match_key`) with a duration
   within :data:`DURATION_TOLERANCE_MS` (a recording whose duration is not yet
   known matches on artist + title alone). A name is not enough when the audio
   says otherwise: given the scanned file's acoustic signature
   (:mod:`soundark.media.fingerprint`), a candidate that already has accepted
   files whose audio all differs beyond the threshold is not the same recording
   (rule ``name+duration+audio`` when the audio agrees, ``name+duration`` when the
   candidate has no audio to compare, e.g. a row from a catalog import).

Nothing found: a new recording is made, keyed by the ISRC, else ``'mb'`` + the
MBID hex, else the caller's fallback key (e.g. ``derived_key("file", sha256)``).
On a match, fields the catalog lacks are filled in from the source; values the
catalog already has are never overwritten (the catalog is the system of record),
and ``rights`` only replaces ``'unknown'``.

Albums, artists (with credit order) and tracks are upserted here too, so every
importer keys them the same way. Every function takes a plain DB-API connection
(``catalog.conn``) and runs inside the caller's transaction.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass

from soundark.catalog.identifiers import find_by_alias
from soundark.isrc import normalise_or_none
from soundark.media.fingerprint import SAME_AUDIO_MAX_DISTANCE, distance
from soundark.model import derived_key, match_key, mbid_key, normalise_mbid, normalise_text

DURATION_TOLERANCE_MS = 3000
UNKNOWN_RIGHTS = "unknown"


@dataclass(frozen=True)
class RecordingFacts:
    """What one source says about one recording. Missing facts are None / empty."""

    title: str
    artists: tuple[str, ...] = ()
    album: str | None = None
    isrc: str | None = None
    mbid: str | None = None
    duration_ms: int | None = None
    date: str | None = None
    rights: str | None = None
    artist_mbids: tuple[str, ...] = ()  # MusicBrainz artist IDs, in the order of ``artists``

    @property
    def artist_display(self) -> str:
        return ", ".join(a for a in self.artists if a)


@dataclass(frozen=True)
class AudioEvidence:
    """The scanned file's own audio: its signature, and its path (its own row is no evidence)."""

    signature: bytes | None
    path: str


@dataclass(frozen=True)
class Match:
    recording_id: int
    key: str
    created: bool
    matched_by: str  # 'isrc', 'mbid', 'name+duration+audio', 'name+duration', 'new' or 'split'
    detail: str = ""  # why: the identifier, the audio distance and the file compared with


@dataclass(frozen=True)
class _Found:
    recording_id: int
    key: str
    rule: str
    detail: str = ""


@dataclass(frozen=True)
class AlbumFacts:
    title: str
    artist: str = ""
    mbid: str | None = None
    date: str | None = None
    label: str | None = None
    upc: str | None = None


@dataclass(frozen=True)
class TrackFacts:
    recording_id: int
    recording_key: str
    album_id: int | None
    album_key: str | None
    title: str
    artist: str = ""
    track_number: int | None = None
    disc_number: int | None = None


def find_recording(conn: sqlite3.Connection, facts: RecordingFacts) -> tuple[int, str, str] | None:
    """(id, key, matched_by) of the recording *facts* describe, or None."""
    found = _find(conn, facts, None)[0]
    return (found.recording_id, found.key, found.rule) if found else None


def _find(conn: sqlite3.Connection, facts: RecordingFacts,
          audio: AudioEvidence | None) -> tuple[_Found | None, str]:
    """The recording found and by which rule; else None and why a same-name candidate was refused."""
    isrc = normalise_or_none(facts.isrc)
    if isrc:
        row = conn.execute("SELECT id, key FROM recording WHERE isrc = ? OR key = ? LIMIT 1",
                           (isrc, isrc)).fetchone()
        if row:
            return _Found(row[0], row[1], "isrc", _with_audio(conn, row[0], audio, f"ISRC {isrc}")), ""
    mbid = normalise_mbid(facts.mbid)
    if mbid:
        row = conn.execute("SELECT id, key FROM recording WHERE mbid = ? OR key = ? LIMIT 1",
                           (mbid, mbid_key(mbid))).fetchone()
        if row:
            return _Found(row[0], row[1], "mbid", _with_audio(conn, row[0], audio, f"MBID {mbid}")), ""
    alias = find_by_alias(conn, isrc=isrc, mbid=mbid)  # further ISRCs, MBIDs that share an ISRC
    if alias:
        rid, key, rule = alias
        what = f"alias ISRC {isrc}" if rule == "isrc" else f"alias MBID {mbid}"
        return _Found(rid, key, rule, _with_audio(conn, rid, audio, what)), ""
    return _find_by_name(conn, facts, audio)


def _find_by_name(conn: sqlite3.Connection, facts: RecordingFacts,
                  audio: AudioEvidence | None) -> tuple[_Found | None, str]:
    artist, title = normalise_text(facts.artist_display), normalise_text(facts.title)
    if not artist or not title:
        return None, ""  # a title alone is too weak to call two things the same recording
    rows = conn.execute("SELECT id, key, duration_ms, isrc, mbid FROM recording WHERE match_key = ? ORDER BY id",
                        (match_key(facts.artist_display, facts.title),)).fetchall()
    # A file or row carrying an ISRC or MBID (found by neither above) falls back to its name only
    # onto a recording that has neither: two ISRCs are two recordings (the bulk path's rule too).
    identified = bool(normalise_or_none(facts.isrc) or normalise_mbid(facts.mbid))
    candidates: list[tuple[int, int, str]] = []  # (distance, id, key)
    for rid, key, duration, isrc, mbid in rows:
        if identified and (isrc or mbid):
            continue
        if duration is None or facts.duration_ms is None:
            gap = DURATION_TOLERANCE_MS  # unknown: matches, but any known close duration wins
        else:
            gap = abs(duration - facts.duration_ms)
            if gap > DURATION_TOLERANCE_MS:
                continue
        candidates.append((gap, rid, key))
    refused = []
    for _, rid, key in sorted(candidates):
        closest = _closest_audio(conn, rid, audio)
        if closest is None:
            why = "no audio of it to compare" if audio is not None else ""
            return _Found(rid, key, "name+duration", why), ""
        d, path = closest
        if d <= SAME_AUDIO_MAX_DISTANCE:
            return _Found(rid, key, "name+duration+audio", f"audio distance {d:.2f} to {path}"), ""
        refused.append(f"same name as {key} but audio differs (distance {d:.2f} to {path})")
    return None, "; ".join(refused)


def _closest_audio(conn: sqlite3.Connection, rid: int,
                   audio: AudioEvidence | None) -> tuple[float, str] | None:
    """(smallest signature distance, that file) over the recording's other accepted files.

    None when there is nothing to compare: no signature here, no other file, or old rows
    scanned before signatures were kept.
    """
    if audio is None or not audio.signature:
        return None
    best: tuple[float, str] | None = None
    for path, signature in conn.execute(
            "SELECT path, signature FROM source_file WHERE recording_id = ? AND status = 'ok'"
            " AND path != ? AND signature IS NOT NULL ORDER BY id", (rid, audio.path)):
        d = distance(audio.signature, signature)
        if d is not None and (best is None or d < best[0]):
            best = (d, path)
    return best


def _with_audio(conn: sqlite3.Connection, rid: int, audio: AudioEvidence | None, detail: str) -> str:
    """An identifier merges directly, but the report says when the audio disagrees."""
    closest = _closest_audio(conn, rid, audio)
    if closest is None or closest[0] <= SAME_AUDIO_MAX_DISTANCE:
        return detail
    return (f"{detail}; audio differs (distance {closest[0]:.2f} to {closest[1]}): "
            "`soundark catalog split` undoes a wrong merge")


def match_recording(conn: sqlite3.Connection, facts: RecordingFacts, fallback_key: str,
                    audio: AudioEvidence | None = None) -> Match:
    """Find the recording for *facts* (filling in what it lacks) or create it.

    With *audio*, a same-name candidate whose audio differs is refused (the new
    recording's ``detail`` says which); without it, names and durations decide.
    """
    found, refused = _find(conn, facts, audio)
    if found:
        _fill_in(conn, found.recording_id, facts)
        return Match(found.recording_id, found.key, False, found.rule, found.detail)
    isrc, mbid = normalise_or_none(facts.isrc), normalise_mbid(facts.mbid)
    key = isrc or (mbid_key(mbid) if mbid else fallback_key)
    if mbid and conn.execute("SELECT 1 FROM recording WHERE mbid = ?", (mbid,)).fetchone():
        mbid = None  # unreachable in practice (find_recording would have matched); keeps UNIQUE safe
    row = conn.execute("SELECT id FROM recording WHERE key = ?", (key,)).fetchone()
    if row:  # e.g. the same bytes (same derived key) at a second path: a join, never a silent one
        _fill_in(conn, row[0], facts)
        return Match(row[0], key, False, "same-key", f"key {key} exists already")
    rid = _insert(conn, key, facts, isrc, mbid)
    return Match(rid, key, True, "new", refused)


def own_recording(conn: sqlite3.Connection, facts: RecordingFacts, key: str) -> Match:
    """The recording under *key*, created if missing, for a file split off by the operator.

    It never takes the ISRC or MBID as its own: those stay with the recording it was split from.
    """
    row = conn.execute("SELECT id FROM recording WHERE key = ?", (key,)).fetchone()
    if row:
        _fill_in(conn, row[0], dataclasses.replace(facts, isrc=None, mbid=None))
        return Match(row[0], key, False, "split")
    return Match(_insert(conn, key, facts, None, None), key, True, "split")


def _insert(conn: sqlite3.Connection, key: str, facts: RecordingFacts, isrc: str | None,
            mbid: str | None) -> int:
    rid = conn.execute(
        "INSERT INTO recording (key, isrc, mbid, title, artist, album, duration_ms, date, rights, match_key)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(key) DO UPDATE SET key = excluded.key RETURNING id",
        (key, isrc, mbid, facts.title or "", facts.artist_display, facts.album or "", facts.duration_ms,
         facts.date, facts.rights or UNKNOWN_RIGHTS, match_key(facts.artist_display, facts.title)),
    ).fetchone()[0]
    set_credits(conn, rid, facts.artists, facts.artist_mbids)
    return int(rid)


def _fill_in(conn: sqlite3.Connection, rid: int, facts: RecordingFacts) -> None:
    row = conn.execute("SELECT isrc, mbid, title, artist, album, duration_ms, date, rights"
                       " FROM recording WHERE id = ?", (rid,)).fetchone()
    isrc_now, mbid_now, title, artist, album, duration, date, rights = row
    updates: dict[str, object] = {}
    isrc, mbid = normalise_or_none(facts.isrc), normalise_mbid(facts.mbid)
    if isrc and not isrc_now and not _taken(conn, "isrc", isrc):
        updates["isrc"] = isrc
    if mbid and not mbid_now and not _taken(conn, "mbid", mbid):
        updates["mbid"] = mbid
    if facts.title and not title:
        updates["title"] = facts.title
    if facts.artist_display and not artist:
        updates["artist"] = facts.artist_display
    if facts.album and not album:
        updates["album"] = facts.album
    if facts.duration_ms and duration is None:
        updates["duration_ms"] = facts.duration_ms
    if facts.date and not date:
        updates["date"] = facts.date
    if facts.rights and facts.rights != UNKNOWN_RIGHTS and rights == UNKNOWN_RIGHTS:
        updates["rights"] = facts.rights
    if "title" in updates or "artist" in updates:
        updates["match_key"] = match_key(str(updates.get("artist", artist)), str(updates.get("title", title)))
    if updates:
        sets = ", ".join(f"{name} = ?" for name in updates)
        conn.execute(f"UPDATE recording SET {sets} WHERE id = ?", (*updates.values(), rid))
    set_credits(conn, rid, facts.artists, facts.artist_mbids)


def _taken(conn: sqlite3.Connection, column: str, value: str) -> bool:
    return conn.execute(f"SELECT 1 FROM recording WHERE {column} = ?", (value,)).fetchone() is not None


# --- artists, albums, tracks -------------------------------------------------------------------

def artist_key(name: str, mbid: str | None = None) -> str:
    """The MBID when known, else ``'n:'`` + the normalised name."""
    m = normalise_mbid(mbid)
    if m:
        return m
    return "n:" + (normalise_text(name) or name.strip().casefold())


def upsert_artist(conn: sqlite3.Connection, name: str, mbid: str | None = None) -> int:
    m = normalise_mbid(mbid)
    return conn.execute(
        "INSERT INTO artist (key, name, mbid) VALUES (?, ?, ?)"
        " ON CONFLICT(key) DO UPDATE SET mbid = coalesce(artist.mbid, excluded.mbid) RETURNING id",
        (artist_key(name, m), name, m),
    ).fetchone()[0]


def set_credits(conn: sqlite3.Connection, recording_id: int, artists: tuple[str, ...],
                mbids: tuple[str, ...] = ()) -> None:
    """Credit *artists* in order, unless the recording already has credits (never overwritten)."""
    names = [a for a in artists if a and a.strip()]
    if not names:
        return
    if conn.execute("SELECT 1 FROM recording_artist WHERE recording_id = ? LIMIT 1",
                    (recording_id,)).fetchone():
        return
    for position, name in enumerate(names):
        mbid = mbids[position] if position < len(mbids) else None
        aid = upsert_artist(conn, name, mbid)
        conn.execute("INSERT INTO recording_artist (recording_id, position, artist_id) VALUES (?, ?, ?)",
                     (recording_id, position, aid))


def album_key(album: AlbumFacts, key_artist: str | None = None) -> str:
    """``'mb'`` + release MBID hex, else ``'upc:'`` + UPC, else derived from artist and title.

    *key_artist* is the name the derived key uses (the album artist, else the first
    track artist: the same rule as the tabular importers, so both find one album).
    """
    mbid = normalise_mbid(album.mbid)
    if mbid:
        return mbid_key(mbid)
    if album.upc:
        return f"upc:{album.upc}"
    return derived_key("album", album.artist if key_artist is None else key_artist, album.title)


def upsert_album(conn: sqlite3.Connection, album: AlbumFacts,
                 key_artist: str | None = None) -> tuple[int, str]:
    """(id, key) of the album, created if new; missing fields filled in, never overwritten."""
    key = album_key(album, key_artist)
    rid = conn.execute(
        "INSERT INTO album (key, title, artist, date, label, upc, mbid) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(key) DO UPDATE SET"
        "  artist = CASE WHEN album.artist = '' THEN excluded.artist ELSE album.artist END,"
        "  date = coalesce(album.date, excluded.date), label = coalesce(album.label, excluded.label),"
        "  upc = coalesce(album.upc, excluded.upc), mbid = coalesce(album.mbid, excluded.mbid)"
        " RETURNING id",
        (key, album.title, album.artist or "", album.date, album.label, album.upc, normalise_mbid(album.mbid)),
    ).fetchone()[0]
    return rid, key


def upsert_track(conn: sqlite3.Connection, track: TrackFacts) -> int:
    """The track (a recording on an album at disc/position); key derived from all four."""
    key = derived_key("track", track.recording_key, track.album_key, track.disc_number, track.track_number)
    return conn.execute(
        "INSERT INTO track (key, recording_id, album_id, title, artist, track_number, disc_number)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(key) DO UPDATE SET"
        "  title = CASE WHEN track.title = '' THEN excluded.title ELSE track.title END,"
        "  artist = CASE WHEN track.artist = '' THEN excluded.artist ELSE track.artist END"
        " RETURNING id",
        (key, track.recording_id, track.album_id, track.title, track.artist, track.track_number,
         track.disc_number),
    ).fetchone()[0]


__all__ = [
    "DURATION_TOLERANCE_MS", "RecordingFacts", "AudioEvidence", "Match", "AlbumFacts", "TrackFacts", "find_recording",
    "match_recording", "own_recording", "artist_key", "upsert_artist", "set_credits", "album_key", "upsert_album",
    "upsert_track",
]
