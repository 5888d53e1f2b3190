"""Read-only queries the web face asks of the catalog (docs/web.md).

Everything here only reads. Tables written by later stages (``plan``,
``encoded``, ``art``, ``release``, ``release_file``) may be absent in a young
archive: each helper checks and answers "nothing yet" instead of failing, so a
page can say "no plan yet" or "no releases yet". Rows come back as plain dicts
ready for JSON; the operator's local source paths are never returned (a
published archive must not leak them, as in the metadata release).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from soundark.catalog.store import Catalog

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_SOURCE_COLUMNS = ("sha256, container, codec, bitrate, sample_rate, channels, duration_ms, lossless, "
                   "license, copyright, rights, has_art, scanned_at, decoder, guessed, licence_conflict")


def tables(catalog: Catalog) -> set[str]:
    return {row[0] for row in catalog.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def filled_tables(catalog: Catalog, among: Iterable[str]) -> set[str]:
    """The catalog's tables, less those of *among* that hold no row (one seek each)."""
    have = tables(catalog)
    return have - {t for t in among if t in have
                   and catalog.execute(f'SELECT NOT EXISTS (SELECT 1 FROM "{t}")').fetchone()[0]}


def _dicts(rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in rows]


def recording_row(catalog: Catalog, key: str) -> dict[str, Any] | None:
    row = catalog.execute(
        "SELECT id, key, isrc, mbid, title, artist, album, duration_ms, date, listens, users, "
        "popularity, rights FROM recording WHERE key = ?", (key,)).fetchone()
    return None if row is None else dict(row)


def key_of_isrc(catalog: Catalog, isrc: str) -> str | None:
    value = catalog.scalar(  # its own ISRC, else an alias (migration 0006)
        "SELECT key FROM recording WHERE isrc = ?1 UNION ALL SELECT r.key FROM isrc_alias a"
        " JOIN recording r ON r.id = a.recording_id WHERE a.isrc = ?1 LIMIT 1", (isrc,))
    return None if value is None else str(value)


def recording_detail(catalog: Catalog, key: str) -> dict[str, Any] | None:
    """Everything known about one recording, or None when the key is unknown."""
    rec = recording_row(catalog, key)
    if rec is None:
        return None
    rid = rec.pop("id")
    have = tables(catalog)
    rec["artists"] = _dicts(catalog.execute(
        "SELECT a.name, a.mbid, a.key, ra.position FROM recording_artist ra JOIN artist a ON a.id = ra.artist_id "
        "WHERE ra.recording_id = ? ORDER BY ra.position", (rid,)))
    rec["tracks"] = _dicts(catalog.execute(
        "SELECT t.key, t.title, t.artist, t.track_number, t.disc_number, al.key AS album_key, "
        "al.title AS album, al.artist AS album_artist, al.date AS album_date, al.label, al.upc, "
        "al.mbid AS album_mbid, al.art_sha256 FROM track t LEFT JOIN album al ON al.id = t.album_id "
        "WHERE t.recording_id = ? ORDER BY al.date, al.title, t.disc_number, t.track_number, t.id",
        (rid,)))
    rec["sources"] = _dicts(catalog.execute(
        f"SELECT {_SOURCE_COLUMNS} FROM source_file WHERE recording_id = ? AND status = 'ok' "
        "ORDER BY id", (rid,)))
    for source in rec["sources"]:  # fields named from the path, not the tags (migration 0008)
        source["guessed"] = json.loads(source["guessed"]) if source["guessed"] else []
    rec["plan"] = None
    if "plan" in have:
        row = catalog.execute("SELECT tier, est_bytes, rank, weight, planned_at FROM plan "
                              "WHERE recording_id = ?", (rid,)).fetchone()
        rec["plan"] = None if row is None else dict(row)
    rec["encoded"] = _encoded_of(catalog, rid, have)
    rec["releases"] = _releases_of(catalog, rid, have)
    rec["art"] = _art_of(catalog, rec, have)
    return rec


def _encoded_of(catalog: Catalog, rid: int, have: set[str]) -> list[dict[str, Any]]:
    if "encoded" not in have:
        return []
    return _dicts(catalog.execute(
        "SELECT tier, sha256, bytes, ext, duration_ms, source_sha256, encoder, art_sha256, created_at "
        "FROM encoded WHERE recording_id = ? ORDER BY tier = 'original', tier", (rid,)))


def _releases_of(catalog: Catalog, rid: int, have: set[str]) -> list[dict[str, Any]]:
    if not {"release", "release_file"} <= have:
        return []
    rows = catalog.execute(
        "SELECT r.*, rf.path AS file_path, rf.sha256 AS file_sha256, rf.bytes AS file_bytes "
        "FROM release_file rf JOIN release r ON r.id = rf.release_id WHERE rf.recording_id = ? "
        "ORDER BY r.id", (rid,))
    return _dicts(rows)


def _art_of(catalog: Catalog, rec: dict[str, Any], have: set[str]) -> dict[str, Any] | None:
    """The cover to show: the encoded file's own art first, else its album's."""
    if "art" not in have:
        return None
    candidates = [e["art_sha256"] for e in rec["encoded"]] + [t["art_sha256"] for t in rec["tracks"]]
    for sha in candidates:
        if sha:
            row = catalog.execute("SELECT sha256, mime, ext, bytes, width, height FROM art WHERE sha256 = ?",
                                  (sha,)).fetchone()
            if row is not None:
                return dict(row)
    return None


def terms_in_bucket(catalog: Catalog, bucket: str) -> list[str]:
    """Every indexed word starting with *bucket*, for the prefix expansion of soundark.catalog.search.find
    (FTS5's fts5vocab, in a TEMP table: the catalog file is not touched). Slow-ish once per bucket
    (it reads the words' doclists): cache it."""
    catalog.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.soundark_fts_terms "
                    "USING fts5vocab(main, recording_fts, 'row')")
    high = bucket[:-1] + chr(ord(bucket[-1]) + 1)
    return [r[0] for r in catalog.execute(
        "SELECT term FROM temp.soundark_fts_terms WHERE term >= ? AND term < ?", (bucket, high))]


def encoded_file(catalog: Catalog, sha256: str) -> dict[str, Any] | None:
    """The stored audio with this content hash (ext and size), or None."""
    if not SHA256_HEX.match(sha256) or "encoded" not in tables(catalog):
        return None
    row = catalog.execute("SELECT sha256, ext, bytes FROM encoded WHERE sha256 = ? LIMIT 1",
                          (sha256,)).fetchone()
    return None if row is None else dict(row)


def art_file(catalog: Catalog, sha256: str) -> dict[str, Any] | None:
    if not SHA256_HEX.match(sha256) or "art" not in tables(catalog):
        return None
    row = catalog.execute("SELECT sha256, mime, ext, bytes FROM art WHERE sha256 = ?", (sha256,)).fetchone()
    return None if row is None else dict(row)


def release_rows(catalog: Catalog) -> list[dict[str, Any]]:
    """Every release (torrent) the catalog knows, in publication order; [] before the first."""
    if "release" not in tables(catalog):
        return []
    return _dicts(catalog.execute("SELECT * FROM release ORDER BY id"))


def plan_tiers(catalog: Catalog) -> list[dict[str, Any]]:
    """Per tier: recordings, bytes and listens (weight), with shares of the whole plan."""
    if "plan" not in tables(catalog):
        return []
    rows = _dicts(catalog.execute(
        "SELECT tier, count(*) AS recordings, coalesce(sum(est_bytes), 0) AS bytes, "
        "coalesce(sum(weight), 0.0) AS listens FROM plan GROUP BY tier "
        "ORDER BY CASE tier WHEN 'original' THEN 0 WHEN 'opus75' THEN 1 ELSE 2 END"))
    total_recordings = sum(r["recordings"] for r in rows) or 1
    total_listens = sum(r["listens"] for r in rows) or 1.0
    for r in rows:
        r["recordings_share"] = r["recordings"] / total_recordings
        r["listens_share"] = r["listens"] / total_listens
    return rows


def coverage_curve(catalog: Catalog, points: int = 200) -> list[dict[str, Any]]:
    """Cumulative (recordings, bytes, listens share) along the plan's rank order, kept recordings only.

    Sampled to about *points* points (always including the last) so a page can draw it.
    """
    if "plan" not in tables(catalog):
        return []
    kept = int(catalog.scalar("SELECT count(*) FROM plan WHERE tier != 'skip'") or 0)
    total = float(catalog.scalar("SELECT coalesce(sum(weight), 0.0) FROM plan") or 0.0)
    if kept == 0:
        return []
    step = max(1, kept // points)
    rows = catalog.execute(
        "SELECT n, cum_bytes, cum_weight FROM ("
        " SELECT row_number() OVER w AS n, sum(est_bytes) OVER w AS cum_bytes,"
        "        sum(weight) OVER w AS cum_weight"
        " FROM plan WHERE tier != 'skip' WINDOW w AS (ORDER BY rank ROWS UNBOUNDED PRECEDING)"
        ") WHERE n % ? = 0 OR n = ? ORDER BY n", (step, kept))
    return [{"recordings": n, "bytes": int(b), "listens_share": (w / total) if total else 0.0}
            for n, b, w in rows]
