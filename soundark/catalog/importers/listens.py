"""Import listen counts or popularity per recording (docs/formats.md, "Listen files").

Three shapes, as CSV, JSON Lines, Parquet or (for API answers) one JSON document:

- **aggregates**, the shape of ListenBrainz's popularity data
  (https://listenbrainz.readthedocs.io, "Popularity data"; api.listenbrainz.org
  ``/1/popularity/recording`` answers a JSON array of them): ``recording_mbid`` or
  ``isrc`` (ISO 3901) with ``total_listen_count`` / ``total_user_count`` (aliases:
  listen_count, count, playcount, plays, listens; user_count, users) and/or
  ``popularity`` 0-100. ``2069050.0`` is a whole number; ``2069050.5`` is rejected.
- **raw listens**, one listen per row: a ListenBrainz user export (JSON lines or a
  JSON array of ``{"listened_at", "user_name", "track_metadata": {"artist_name",
  "track_name", "release_name", "additional_info": {"recording_mbid", "isrc"},
  "mbid_mapping": {"recording_mbid"}}}``), the ListenBrainz listens dump in Parquet
  (``listened_at, user_id, recording_msid, artist_name, release_name,
  recording_name, recording_mbid, ...``), a Last.fm scrobble export. A file without
  a count column is raw: rows are summed per recording while streaming, and
  distinct users counted where a user column exists.
- **without IDs**: ``artist`` + ``title`` (+ ``album``) matched through the scan's
  normalised key (``model.match_key``), reported as matched / ambiguous / unmatched.

An MBID or ISRC resolves through ``recording.mbid`` / ``recording.isrc`` and the
``mbid_alias`` / ``isrc_alias`` tables (migration 0006). A row whose MBID and ISRC
name two different recordings is rejected and says which.

Counts *replace* what the catalog held: the file is one snapshot, summed over all its
rows, written once at the end (memory bounded by the catalog, not by the listens).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from soundark import jsontext
from soundark.catalog.importers._bulk import pipelined
from soundark.catalog.importers.columns import ColumnOptions, ColumnPlan, parse_map
from soundark.catalog.importers.listen_rows import (
    FIELDS,
    flatten_listen,
    listen_frames,
    stage_frame,
)
from soundark.catalog.importers.tabular import (
    Frame,
    describe_plan,
    file_format,
    read_frames,
)
from soundark.catalog.store import Catalog
from soundark.errors import BadInput, NotFound
from soundark.model import NO_PROGRESS, ImportReport, Progress, normalise_text

ALIASES = {
    "total_listen_count": "listens", "listen_count": "listens", "count": "listens", "playcount": "listens",
    "play_count": "listens", "plays": "listens", "scrobbles": "listens",
    "total_user_count": "users", "user_count": "users",
    "artist_name": "artist", "artists": "artist", "artist name(s)": "artist", "creator": "artist",
    "track_name": "title", "track": "title", "recording_name": "title", "name": "title", "song": "title",
    "release_name": "album", "album_name": "album", "release": "album",
    "user_name": "user", "user_id": "user", "username": "user",
    "timestamp": "listened_at", "time": "listened_at", "date": "listened_at", "uts": "listened_at",
}

_CREATE = (
    "CREATE TEMP TABLE IF NOT EXISTS listen_stage (seq INTEGER PRIMARY KEY, line INTEGER, rows INTEGER,"
    " mbid TEXT, isrc TEXT, mkey TEXT, artist TEXT, title TEXT, album TEXT, counts INTEGER, listens INTEGER,"
    " users INTEGER, popularity REAL, user TEXT, by_mbid INTEGER, by_isrc INTEGER, hits INTEGER, rec_id INTEGER)",
    "CREATE TEMP TABLE IF NOT EXISTS listen_sum (rec_id INTEGER PRIMARY KEY, counts INTEGER,"
    " listens INTEGER, users INTEGER, popularity REAL)",
    "CREATE TEMP TABLE IF NOT EXISTS listen_user (rec_id INTEGER, user TEXT, PRIMARY KEY (rec_id, user))"
    " WITHOUT ROWID",
)
_RESOLVE = (
    "UPDATE listen_stage SET by_mbid = coalesce((SELECT id FROM recording WHERE mbid = listen_stage.mbid),"
    " (SELECT recording_id FROM mbid_alias WHERE mbid = listen_stage.mbid)) WHERE mbid IS NOT NULL",
    "UPDATE listen_stage SET by_isrc = coalesce((SELECT id FROM recording WHERE isrc = listen_stage.isrc),"
    " (SELECT recording_id FROM isrc_alias WHERE isrc = listen_stage.isrc)) WHERE isrc IS NOT NULL",
    "UPDATE listen_stage SET hits = (SELECT count(*) FROM recording WHERE match_key = listen_stage.mkey)"
    " WHERE by_mbid IS NULL AND by_isrc IS NULL AND mkey IS NOT NULL",
    "UPDATE listen_stage SET rec_id = coalesce(by_mbid, by_isrc,"
    " CASE WHEN hits = 1 THEN (SELECT id FROM recording WHERE match_key = listen_stage.mkey) END)"
    " WHERE by_mbid IS NULL OR by_isrc IS NULL OR by_mbid = by_isrc",
)
_ADD = (
    "INSERT INTO listen_sum(rec_id, counts, listens, users, popularity)"
    " SELECT rec_id, max(counts), sum(listens), sum(users), max(popularity) FROM listen_stage"
    " WHERE rec_id IS NOT NULL GROUP BY rec_id"
    " ON CONFLICT(rec_id) DO UPDATE SET counts = max(counts, excluded.counts),"
    " listens = CASE WHEN listens IS NULL THEN excluded.listens WHEN excluded.listens IS NULL THEN listens"
    " ELSE listens + excluded.listens END,"
    " users = CASE WHEN users IS NULL THEN excluded.users WHEN excluded.users IS NULL THEN users"
    " ELSE users + excluded.users END,"
    " popularity = max(coalesce(popularity, excluded.popularity), coalesce(excluded.popularity, popularity))",
    "INSERT OR IGNORE INTO listen_user(rec_id, user) SELECT rec_id, user FROM listen_stage"
    " WHERE rec_id IS NOT NULL AND user IS NOT NULL",
)
_NEW_VALUES = (
    "CASE WHEN s.counts THEN s.listens ELSE r.listens END",
    "CASE WHEN s.counts THEN s.users ELSE r.users END",
    "coalesce(s.popularity, r.popularity)",
)
_DIFFERS = (f"({_NEW_VALUES[0]}) IS NOT r.listens OR ({_NEW_VALUES[1]}) IS NOT r.users"
            f" OR ({_NEW_VALUES[2]}) IS NOT r.popularity")
_COUNT = f"SELECT count(*), coalesce(sum({_DIFFERS}), 0) FROM listen_sum AS s JOIN recording r ON r.id = s.rec_id"
_UPDATE = (
    "UPDATE recording AS r SET listens = " + _NEW_VALUES[0] + ", users = " + _NEW_VALUES[1]
    + ", popularity = " + _NEW_VALUES[2] + f" FROM listen_sum AS s WHERE r.id = s.rec_id AND ({_DIFFERS})"
)


def _what(mbid: str | None, code: str | None, artist: str | None, title: str | None) -> str:
    parts = ([f"MBID {mbid}"] if mbid else []) + ([f"ISRC {code}"] if code else [])
    if artist or title:
        parts.append(f"artist+title {artist or ''!r} / {title or ''!r}")
    return " or ".join(parts)


def _reject(report: ImportReport, subject: str, reason: str, rows: int) -> None:
    report.reject(subject, reason + (f" ({rows} rows)" if rows > 1 else ""))
    report.rejected += rows - 1


def _conflicts(conn, report: ImportReport, name: str) -> None:
    for line, rows, mbid, code, a_key, b_key in conn.execute(
            "SELECT s.line, s.rows, s.mbid, s.isrc, a.key, b.key FROM listen_stage s"
            " JOIN recording a ON a.id = s.by_mbid JOIN recording b ON b.id = s.by_isrc"
            " WHERE s.by_mbid != s.by_isrc ORDER BY s.seq").fetchall():
        _reject(report, f"{name}:{line}",
                f"recording_mbid {mbid} is recording {a_key} but isrc {code} is recording {b_key}", rows)
        report.count("conflicting", rows)


def _narrow(conn, report: ImportReport, name: str) -> None:
    """Several recordings share the artist+title key: the album picks one, else the row is ambiguous."""
    for seq, line, rows, mkey, artist, title, album in conn.execute(
            "SELECT seq, line, rows, mkey, artist, title, album FROM listen_stage WHERE hits > 1"
            " ORDER BY seq").fetchall():
        candidates = conn.execute(
            "SELECT r.id, r.key, group_concat(a.title, char(30)) FROM recording r"
            " LEFT JOIN track t ON t.recording_id = r.id LEFT JOIN album a ON a.id = t.album_id"
            " WHERE r.match_key = ? GROUP BY r.id ORDER BY r.id", (mkey,)).fetchall()
        want = normalise_text(album) if album else ""
        fits = [(rid, key) for rid, key, albums in candidates
                if want and want in {normalise_text(x) for x in (albums or "").split("\x1e")}]
        if len(fits) == 1:
            conn.execute("UPDATE listen_stage SET rec_id = ? WHERE seq = ?", (fits[0][0], seq))
            continue
        keys = ", ".join(k for _, k in (fits or [(r, k) for r, k, _ in candidates]))
        _reject(report, f"{name}:{line}", f"ambiguous: artist+title {artist!r} / {title!r} is "
                f"{len(fits or candidates)} recordings ({keys}); give the album or an MBID/ISRC", rows)
        report.count("ambiguous", rows)


def _write(catalog: Catalog, rows: list[tuple], report: ImportReport, name: str) -> None:
    with catalog.transaction() as conn:
        conn.execute("DELETE FROM listen_stage")
        conn.executemany("INSERT INTO listen_stage(seq, line, rows, mbid, isrc, mkey, artist, title, album,"
                         " counts, listens, users, popularity, user) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        for sql in _RESOLVE:
            conn.execute(sql)
        _conflicts(conn, report, name)
        _narrow(conn, report, name)
        for line, n, mbid, code, artist, title in conn.execute(
                "SELECT line, rows, mbid, isrc, artist, title FROM listen_stage WHERE rec_id IS NULL"
                " AND coalesce(hits, 0) <= 1 AND NOT (by_mbid IS NOT NULL AND by_isrc IS NOT NULL)"
                " ORDER BY seq").fetchall():
            _reject(report, f"{name}:{line}", f"no recording with {_what(mbid, code, artist, title)} in the catalog", n)
            report.count("unmatched", n)
        for n, by_name in conn.execute("SELECT coalesce(sum(rows), 0), coalesce(sum(rows) FILTER (WHERE"
                                       " by_mbid IS NULL AND by_isrc IS NULL), 0) FROM listen_stage"
                                       " WHERE rec_id IS NOT NULL"):
            report.count("matched", n)
            report.count("matched_by_name", by_name)
        for sql in _ADD:
            conn.execute(sql)
        conn.execute("DELETE FROM listen_stage")


def _apply(catalog: Catalog, report: ImportReport, raw_users: bool) -> None:
    """Write the summed snapshot into the recordings, once, at the end of the file."""
    with catalog.transaction() as conn:
        if raw_users:
            conn.execute("UPDATE listen_sum SET users = (SELECT nullif(count(*), 0) FROM listen_user u"
                         " WHERE u.rec_id = listen_sum.rec_id)")
        recordings, changed = conn.execute(_COUNT).fetchone()
        conn.execute(_UPDATE)
        conn.execute("DELETE FROM listen_sum")
        conn.execute("DELETE FROM listen_user")
    report.updated += changed
    report.unchanged += recordings - changed


def _json_document(path: Path, options: ColumnOptions, on_plan) -> Iterator[Frame]:
    """A whole JSON document: an array of listens or of popularity rows, or an API answer."""
    try:
        with open(path, "rb") as f:
            doc = jsontext.loads(f.read())
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(path, f"not valid JSON ({e})") from e
    if isinstance(doc, dict):  # api.listenbrainz.org wraps listens as {"payload": {"listens": [...]}}
        doc = (doc.get("payload") or {}).get("listens", doc.get("listens"))
    if not isinstance(doc, list):
        raise BadInput(path, "expected a JSON array of listens or of {recording_mbid, total_listen_count} rows")
    yield from listen_frames(((i + 1, flatten_listen(o)) for i, o in enumerate(doc)), options, on_plan, path)


def import_listens(catalog: Catalog, path: Path, *, progress: Progress = NO_PROGRESS,
                   column_map: str | None = None, encoding: str | None = None) -> ImportReport:
    """Set recording.listens / users / popularity from a listen file (docs/formats.md).

    Returns how many recordings changed and how many did not, importer counts (rows
    matched, matched_by_name, ambiguous, unmatched, conflicting) and every rejected row
    (``file:line: reason``). A cancelled import writes nothing: a partial sum would
    understate every count.
    """
    path = Path(path)
    is_json = path.suffix.lower() == ".json"
    if not is_json:
        file_format(path)
    if not path.exists():
        raise NotFound(path, "no such file")
    report = ImportReport(source=str(path))
    options = ColumnOptions(FIELDS, aliases=ALIASES, user_map=parse_map(column_map, FIELDS), encoding=encoding,
                            rename={"artists": "artist", "date": "listened_at", "track_id": "_ignored"})
    raw = {"value": False, "users": False}

    def on_plan(plan: ColumnPlan) -> None:
        describe_plan(path.name, plan, progress, report)
        raw["value"] = not {"listens", "users", "popularity"} & set(plan.fields)
        raw["users"] = raw["value"] and "user" in plan.fields
        if raw["value"]:
            progress.note(f"{path.name}: no count column: one row is one listen, summed per recording")

    with catalog.transaction() as conn:
        for sql in _CREATE:
            conn.execute(sql)
        for table in ("listen_stage", "listen_sum", "listen_user"):
            conn.execute(f"DELETE FROM {table}")
    frames = _json_document(path, options, on_plan) if is_json else _raw_listen_frames(path, options, on_plan)
    progress.start(None, f"importing listens from {path.name}", "rows")
    with contextlib.closing(pipelined(frames, lambda f: stage_frame(f, raw["value"]))) as batches:
        for rows, rejections, total in batches:
            for line, reason, n in rejections:
                _reject(report, f"{path.name}:{line}", reason, n)
            if rows:
                _write(catalog, rows, report, path.name)
            progress.advance(total)
            if progress.cancelled():
                progress.note(f"{path.name}: import cancelled; no counts were changed")
                return report
    _apply(catalog, report, raw["users"])
    return report


def _raw_listen_frames(path: Path, options: ColumnOptions, on_plan) -> Iterator[Frame]:
    """CSV/Parquet/flat JSONL through the tabular reader; ListenBrainz's nested JSONL flattened."""
    fmt, _ = file_format(path)
    if fmt in (".jsonl", ".ndjson") and _nested_jsonl(path):
        yield from listen_frames(_jsonl_objects(path), options, on_plan, path)
        return
    yield from read_frames(path, options, on_plan)


def _nested_jsonl(path: Path) -> bool:
    from soundark.catalog.importers.tabular import open_binary

    with open_binary(path, file_format(path)[1]) as stream:
        head = stream.readline(1 << 20)
    with contextlib.suppress(ValueError):
        obj = jsontext.loads(head)
        return isinstance(obj, dict) and isinstance(obj.get("track_metadata"), dict)
    return False


def _jsonl_objects(path: Path) -> Iterator[tuple[int, object]]:
    """(line, flattened listen or a reason string) per non-blank line, streamed."""
    from soundark.catalog.importers.tabular import json_lines, open_binary

    with open_binary(path, file_format(path)[1]) as stream:
        for number, obj, why in json_lines(stream):
            yield number, why if why is not None else flatten_listen(obj)

