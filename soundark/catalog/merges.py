"""Merges of scanned files into recordings: list them, split a wrong one off, undo a split.

A scanned file *merged* when it joined a recording that another file or a catalog row
had created (``source_file.merged_at``, with the rule in ``matched_by`` and the evidence in
``match_detail``: migration 0007). ``soundark catalog split FILE`` gives such a file its
own recording and remembers that by the file's SHA-256 (table ``split_file``), so a rescan
never merges it again, even after its mtime changed or at another path; ``--undo`` forgets
the split and puts the file back where it was (the next scan judges it afresh).
docs/scan.md, "Merges", describes the rules.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from soundark.catalog.match import RecordingFacts, TrackFacts, own_recording, upsert_track
from soundark.catalog.store import Catalog, utc_now
from soundark.errors import Conflict, NotFound
from soundark.model import derived_key

_SHA256_LEN = 64


@dataclass(frozen=True)
class SplitResult:
    """What ``split`` (or ``split --undo``) did to one file."""

    path: str
    sha256: str
    action: str          # 'split', 'remembered' (already alone) or 'undone'
    recording: str       # the recording the file is in now
    from_recording: str  # where it was
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_merges(catalog: Catalog) -> dict[str, Any]:
    """Every file that joined an existing recording, and every file split off, oldest first."""
    merges = [
        {"path": path, "sha256": sha, "recording": key, "title": title, "rule": rule,
         "detail": detail or "", "merged_at": at}
        for path, sha, key, title, rule, detail, at in catalog.execute(
            "SELECT f.path, f.sha256, r.key, r.title, f.matched_by, f.match_detail, f.merged_at"
            " FROM source_file f JOIN recording r ON r.id = f.recording_id"
            " WHERE f.merged_at IS NOT NULL AND f.status = 'ok' ORDER BY f.merged_at, f.path")
    ]
    splits = [
        {"path": path, "sha256": sha, "recording": key, "from_recording": from_key, "split_at": at}
        for sha, path, key, from_key, at in catalog.execute(
            "SELECT sha256, path, recording_key, from_key, split_at FROM split_file ORDER BY split_at, path")
    ]
    return {"merged": len(merges), "merges": merges, "split": len(splits), "splits": splits}


def split_file(catalog: Catalog, file: str) -> SplitResult:
    """Give *file* (its path as scanned, or its SHA-256) its own recording, and remember it."""
    with catalog.transaction() as conn:
        path, sha, rid, track_id, tags, duration = _source(conn, file)
        old_key = conn.execute("SELECT key FROM recording WHERE id = ?", (rid,)).fetchone()[0]
        done = conn.execute("SELECT recording_key FROM split_file WHERE sha256 = ?", (sha,)).fetchone()
        if done and done[0] == old_key:
            raise Conflict(path, f"already split off into its own recording {old_key}")
        others = conn.execute("SELECT count(*) FROM source_file WHERE recording_id = ? AND id != "
                              "(SELECT id FROM source_file WHERE path = ?)", (rid, path)).fetchone()[0]
        from_track = conn.execute("SELECT id FROM track WHERE id = ?", (track_id,)).fetchone()
        conn.execute("INSERT OR REPLACE INTO split_file"
                     " (sha256, path, recording_key, from_key, from_track_id, split_at) VALUES (?, ?, ?, ?, ?, ?)",
                     (sha, path, old_key if not others else derived_key("split", sha), old_key,
                      from_track[0] if from_track else None, utc_now()))
        if not others:
            msg = (f"{path} is already the only file of recording {old_key}; remembered: "
                   "a scan will never merge it into another recording")
            return SplitResult(path, sha, "remembered", old_key, old_key, msg)
        new_key = derived_key("split", sha)
        match = own_recording(conn, _facts(conn, rid, track_id, tags, duration), new_key)
        new_track = _own_track(conn, track_id, match.recording_id, new_key)
        conn.execute("UPDATE source_file SET recording_id = ?, track_id = ?, matched_by = 'split',"
                     " match_detail = ?, merged_at = NULL WHERE sha256 = ? AND recording_id = ?",
                     (match.recording_id, new_track, f"split from {old_key}", sha, rid))
    msg = (f"split {path} from recording {old_key} into its own recording {new_key} "
           f"({others} other file(s) stay); plan again before encoding")
    return SplitResult(path, sha, "split", new_key, old_key, msg)


def undo_split(catalog: Catalog, file: str) -> SplitResult:
    """Forget the split of *file*: back into the recording it came from; the next scan re-judges it."""
    with catalog.transaction() as conn:
        path, sha, rid, _, _, _ = _source(conn, file)
        row = conn.execute("SELECT recording_key, from_key, from_track_id FROM split_file WHERE sha256 = ?",
                           (sha,)).fetchone()
        if row is None:
            raise NotFound(path, "was never split (`soundark catalog merges` lists the splits)")
        split_key, from_key, from_track = row
        conn.execute("DELETE FROM split_file WHERE sha256 = ?", (sha,))
        back = conn.execute("SELECT id FROM recording WHERE key = ?", (from_key,)).fetchone()
        target = back[0] if back else rid
        track = conn.execute("SELECT id FROM track WHERE id = ? AND recording_id = ?",
                             (from_track, target)).fetchone()
        # mtime -1: the next scan reads the file again, matches it afresh and reports the merge
        conn.execute("UPDATE source_file SET recording_id = ?, track_id = ?, matched_by = NULL,"
                     " match_detail = NULL, merged_at = NULL, mtime_ns = -1 WHERE sha256 = ?",
                     (target, track[0] if track else None, sha))
        if split_key != from_key:
            _drop_if_empty(conn, split_key)
    msg = f"{path}: split undone; back in recording {from_key}; the next scan may merge it again"
    return SplitResult(path, sha, "undone", from_key, split_key, msg)


def _source(conn: sqlite3.Connection, file: str) -> tuple[str, str, int, int | None, str | None, int | None]:
    """(path, sha256, recording id, track id, tags JSON, duration) of an accepted scanned file."""
    text = file.strip()
    query = ("SELECT path, sha256, recording_id, track_id, tags, duration_ms FROM source_file"
             " WHERE status = 'ok' AND recording_id IS NOT NULL AND ")
    rows = []
    if len(text) == _SHA256_LEN and all(c in "0123456789abcdefABCDEF" for c in text):
        rows = conn.execute(query + "sha256 = ? ORDER BY id", (text.lower(),)).fetchall()
    if not rows:
        candidates = {text, str(Path(text).expanduser().resolve())}
        rows = [r for c in sorted(candidates)
                for r in conn.execute(query + "path = ?", (c,)).fetchall()][:1]
    if not rows:
        raise NotFound(file, "no accepted scanned file has this path or SHA-256")
    return rows[0]


def _facts(conn: sqlite3.Connection, rid: int, track_id: int | None, tags_json: str | None,
           duration: int | None) -> RecordingFacts:
    """The file's own names (its tags), else those of the track and recording it was in."""
    tags = json.loads(tags_json) if tags_json else {}
    rec = conn.execute("SELECT title, artist, album, date FROM recording WHERE id = ?", (rid,)).fetchone()
    track = conn.execute("SELECT title, artist FROM track WHERE id = ?", (track_id,)).fetchone()
    title = tags.get("title") or (track[0] if track else "") or rec[0]
    artists = tuple(tags.get("artists") or ()) or tuple(a for a in [(track[1] if track else rec[1])] if a)
    return RecordingFacts(title=title, artists=artists, album=tags.get("album") or rec[2],
                          duration_ms=duration, date=tags.get("date") or rec[3])


def _own_track(conn: sqlite3.Connection, track_id: int | None, rid: int, key: str) -> int | None:
    """A copy of the file's track (album, disc, number, names) on its own recording."""
    row = conn.execute("SELECT t.album_id, a.key, t.title, t.artist, t.track_number, t.disc_number"
                       " FROM track t LEFT JOIN album a ON a.id = t.album_id WHERE t.id = ?",
                       (track_id,)).fetchone()
    if row is None:
        return None
    album_id, album_key, title, artist, number, disc = row
    return upsert_track(conn, TrackFacts(recording_id=rid, recording_key=key, album_id=album_id,
                                         album_key=album_key, title=title, artist=artist,
                                         track_number=number, disc_number=disc))


def _drop_if_empty(conn: sqlite3.Connection, key: str) -> None:
    """Remove a split recording nothing refers to any more (it keeps anything planned or released)."""
    row = conn.execute("SELECT id FROM recording WHERE key = ?", (key,)).fetchone()
    if row is None or conn.execute("SELECT 1 FROM source_file WHERE recording_id = ?", row).fetchone():
        return
    conn.execute("SAVEPOINT drop_split")
    try:
        conn.execute("DELETE FROM track WHERE recording_id = ?", row)
        conn.execute("DELETE FROM recording WHERE id = ?", row)
    except Conflict:  # the connection's form of IntegrityError (connection.py)
        conn.execute("ROLLBACK TO drop_split")  # planned, encoded or released: keep it
    conn.execute("RELEASE drop_split")


__all__ = ["SplitResult", "list_merges", "split_file", "undo_split"]
