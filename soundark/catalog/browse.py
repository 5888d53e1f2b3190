"""Read-only browse queries for the web face (docs/web.md): home page, albums, artists.

Like soundark.catalog.queries, everything here only reads, tolerates the tables of later
stages being absent (a young archive), and never returns the operator's source paths.
"Preserved" means the recording has a file in the store (an ``encoded`` row).
"""

from __future__ import annotations

import json
from typing import Any

from soundark.catalog.queries import tables
from soundark.catalog.store import Catalog

# The file a page plays for a recording: the planned tier when stored, else any stored one.
_PLAYABLE = """(SELECT e.sha256 || '|' || e.ext || '|' || e.tier FROM encoded e
  LEFT JOIN plan p ON p.recording_id = e.recording_id AND p.tier = e.tier WHERE e.recording_id = {rid}
  ORDER BY p.tier IS NULL, e.tier = 'original', e.tier LIMIT 1)"""
_ART = "(SELECT a.sha256 || '|' || a.ext FROM art a WHERE a.sha256 = {sha})"


def _split(value: str | None, names: tuple[str, ...]) -> dict[str, str] | None:
    return None if not value else dict(zip(names, value.split("|"), strict=False))


def _recording_rows(catalog: Catalog, sql: str, params: tuple[Any, ...], have: set[str]) -> list[dict[str, Any]]:
    rows = []
    for row in catalog.execute(sql, params):
        obj = dict(row)
        obj["play"] = _split(obj.pop("_play", None), ("sha256", "ext", "tier"))
        obj["art"] = _split(obj.pop("_art", None), ("sha256", "ext"))
        rows.append(obj)
    return rows


def _columns(have: set[str], rid: str = "r.id", art_sha: str = "al.art_sha256") -> str:
    play = _PLAYABLE.format(rid=rid) if {"encoded", "plan"} <= have else "NULL"
    art = _ART.format(sha=art_sha) if "art" in have else "NULL"
    tier = f"(SELECT p.tier FROM plan p WHERE p.recording_id = {rid})" if "plan" in have else "NULL"
    return f"{play} AS _play, {art} AS _art, {tier} AS tier"


def headline(catalog: Catalog) -> dict[str, Any]:
    """Preserved recordings, their share of all listens, and the bytes they take in the store."""
    have = tables(catalog)
    total = int(catalog.scalar("SELECT count(*) FROM recording") or 0)
    listens_total = float(catalog.scalar("SELECT coalesce(sum(listens), 0) FROM recording") or 0)
    if "encoded" not in have:
        return {"recordings": total, "preserved": 0, "bytes": 0, "listens_share": None}
    preserved = int(catalog.scalar("SELECT count(DISTINCT recording_id) FROM encoded") or 0)
    # identical bytes are stored once, so count each content hash once
    stored = int(catalog.scalar(
        "SELECT coalesce(sum(bytes), 0) FROM (SELECT max(bytes) AS bytes FROM encoded GROUP BY sha256)") or 0)
    covered = float(catalog.scalar(
        "SELECT coalesce(sum(listens), 0) FROM recording WHERE id IN (SELECT recording_id FROM encoded)") or 0)
    return {"recordings": total, "preserved": preserved, "bytes": stored,
            "listens_share": covered / listens_total if listens_total else None}


def most_listened(catalog: Catalog, limit: int = 12) -> list[dict[str, Any]]:
    """The most listened recordings that are preserved (a file in the store)."""
    have = tables(catalog)
    if not {"encoded", "plan"} <= have:
        return []
    sql = (f"SELECT r.key, r.title, r.artist, r.album, r.duration_ms, r.listens, al.key AS album_key, "
           f"{_columns(have)} FROM recording r "
           "LEFT JOIN album al ON al.id = (SELECT t.album_id FROM track t WHERE t.recording_id = r.id "
           "AND t.album_id IS NOT NULL ORDER BY t.id LIMIT 1) "
           "WHERE r.id IN (SELECT recording_id FROM encoded) "
           "ORDER BY coalesce(r.listens, -1) DESC, coalesce(r.popularity, -1) DESC, r.id LIMIT ?")
    return _recording_rows(catalog, sql, (limit,), have)


def recent_releases(catalog: Catalog, limit: int = 6) -> list[dict[str, Any]]:
    if "release" not in tables(catalog):
        return []
    return [dict(r) for r in catalog.execute(
        "SELECT name, phase, created, bytes, files, listens_share, magnet FROM release "
        "ORDER BY created DESC, id DESC LIMIT ?", (limit,))]


def albums(catalog: Catalog, offset: int = 0, limit: int = 60) -> tuple[int, list[dict[str, Any]]]:
    """Albums by title (those with tracks), with their cover and how many tracks are preserved."""
    have = tables(catalog)
    total = int(catalog.scalar("SELECT count(*) FROM album WHERE id IN (SELECT album_id FROM track)") or 0)
    art = _ART.format(sha="al.art_sha256") if "art" in have else "NULL"
    kept = ("(SELECT count(*) FROM track t WHERE t.album_id = al.id AND t.recording_id IN "
            "(SELECT recording_id FROM encoded))") if "encoded" in have else "0"
    rows = catalog.execute(
        f"SELECT al.key, al.title, al.artist, al.date, {art} AS _art, "
        f"(SELECT count(*) FROM track t WHERE t.album_id = al.id) AS tracks, {kept} AS preserved "
        "FROM album al WHERE al.id IN (SELECT album_id FROM track) "
        "ORDER BY al.title COLLATE NOCASE, al.artist COLLATE NOCASE, al.id LIMIT ? OFFSET ?", (limit, offset))
    out = []
    for row in rows:
        obj = dict(row)
        obj["art"] = _split(obj.pop("_art"), ("sha256", "ext"))
        out.append(obj)
    return total, out


def artists(catalog: Catalog, offset: int = 0, limit: int = 100) -> tuple[int, list[dict[str, Any]]]:
    """Credited artists by name, with how many recordings they are credited on."""
    total = int(catalog.scalar("SELECT count(DISTINCT artist_id) FROM recording_artist") or 0)
    rows = catalog.execute(
        "SELECT a.key, a.name, count(*) AS recordings FROM artist a "
        "JOIN recording_artist ra ON ra.artist_id = a.id GROUP BY a.id "
        "ORDER BY a.name COLLATE NOCASE, a.id LIMIT ? OFFSET ?", (limit, offset))
    return total, [dict(r) for r in rows]


def album_detail(catalog: Catalog, key: str) -> dict[str, Any] | None:
    """One album: its facts, cover, tracks in disc/track order, and the releases holding them."""
    row = catalog.execute("SELECT id, key, title, artist, date, label, upc, mbid, art_sha256 FROM album "
                          "WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    album = dict(row)
    aid = album.pop("id")
    have = tables(catalog)
    album["art"] = None
    if album["art_sha256"] and "art" in have:
        art = catalog.execute("SELECT sha256, ext, mime FROM art WHERE sha256 = ?", (album["art_sha256"],)).fetchone()
        album["art"] = None if art is None else dict(art)
    album["tracks"] = _recording_rows(catalog, (
        "SELECT t.track_number, t.disc_number, t.title, t.artist, r.key, r.duration_ms, r.listens, "
        f"{_columns(have, art_sha='NULL')} FROM track t JOIN recording r ON r.id = t.recording_id "
        "WHERE t.album_id = ? ORDER BY coalesce(t.disc_number, 1), t.track_number IS NULL, t.track_number, "
        "t.title COLLATE NOCASE, t.id"), (aid,), have)
    album["releases"] = []
    if {"release", "release_file"} <= have:
        album["releases"] = [dict(r) for r in catalog.execute(
            "SELECT r.name, r.phase, r.created, r.bytes, r.magnet, r.torrent, count(*) AS tracks FROM release r "
            "JOIN release_file rf ON rf.release_id = r.id JOIN track t ON t.recording_id = rf.recording_id "
            "WHERE t.album_id = ? GROUP BY r.id ORDER BY r.id", (aid,))]
    return album


def artist_detail(catalog: Catalog, key: str, limit: int = 50) -> dict[str, Any] | None:
    """One artist: the albums their recordings are on, and their most listened recordings."""
    row = catalog.execute("SELECT id, key, name, mbid FROM artist WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    artist = dict(row)
    aid = artist.pop("id")
    have = tables(catalog)
    art = _ART.format(sha="al.art_sha256") if "art" in have else "NULL"
    artist["albums"] = []
    for r in catalog.execute(
            f"SELECT al.key, al.title, al.artist, al.date, {art} AS _art FROM album al WHERE al.id IN ("
            " SELECT t.album_id FROM track t JOIN recording_artist ra ON ra.recording_id = t.recording_id"
            " WHERE ra.artist_id = ?) ORDER BY al.date IS NULL, al.date, al.title COLLATE NOCASE", (aid,)):
        obj = dict(r)
        obj["art"] = _split(obj.pop("_art"), ("sha256", "ext"))
        artist["albums"].append(obj)
    artist["recordings"] = _recording_rows(catalog, (
        f"SELECT r.key, r.title, r.artist, r.album, r.duration_ms, r.listens, al.key AS album_key, "
        f"{_columns(have)} FROM recording r JOIN recording_artist ra ON ra.recording_id = r.id "
        "LEFT JOIN album al ON al.id = (SELECT t.album_id FROM track t WHERE t.recording_id = r.id "
        "AND t.album_id IS NOT NULL ORDER BY t.id LIMIT 1) "
        "WHERE ra.artist_id = ? ORDER BY coalesce(r.listens, -1) DESC, r.title COLLATE NOCASE LIMIT ?"),
        (aid, limit), have)
    return artist


DECORATED_BY = ("plan", "release_file", "art", "encoded")  # without a row in one of them, no decoration


def search_decorations(catalog: Catalog, ids: list[int], have: set[str]) -> dict[int, dict[str, Any]]:
    """What a search page shows beside each recording id, in one statement (*have*: tables(), or
    filled_tables(DECORATED_BY)): its plan tier, first release (name, magnet), cover (its encoded
    file's, else its first album's) and the stored file it plays (the planned tier first).
    Absent tables give None, and so do empty ones."""
    out: dict[int, dict[str, Any]] = {i: {"tier": None, "release": None, "magnet": None, "art": None,
                                          "play": None} for i in ids}
    if not ids or not have.intersection(DECORATED_BY):  # a catalog before its plan (metadata first)
        return out
    # Each lookup runs only when its table holds a row: `EXISTS (SELECT 1 FROM t)` does not depend
    # on the row, so SQLite evaluates it once per statement. A catalog before its audio or art
    # phase (metadata first) then pays nothing for them: ~0.4 ms of 20 rows' lookups at 10M rows.
    # The ids are the lookups' keys as they are: no seek in recording for them.
    tier = "(SELECT p.tier FROM plan p WHERE p.recording_id = r.id)" if "plan" in have else "NULL"
    release = ("CASE WHEN EXISTS (SELECT 1 FROM release_file) THEN (SELECT json_array(rl.name, rl.magnet) "
               "FROM release_file rf JOIN release rl ON rl.id = rf.release_id WHERE rf.recording_id = r.id "
               "ORDER BY rl.id LIMIT 1) END") if {"release", "release_file"} <= have else "NULL"
    art = "NULL"
    if "art" in have:
        enc = ("(SELECT e.art_sha256 FROM encoded e WHERE e.recording_id = r.id AND e.art_sha256 IS NOT NULL "
               "LIMIT 1), ") if "encoded" in have else ""
        art = "CASE WHEN EXISTS (SELECT 1 FROM art) THEN " + _ART.format(
            sha=f"coalesce({enc}(SELECT al.art_sha256 FROM track t JOIN album al ON al.id = t.album_id"
                " WHERE t.recording_id = r.id AND al.art_sha256 IS NOT NULL ORDER BY t.id LIMIT 1))") + " END"
    play = ("CASE WHEN EXISTS (SELECT 1 FROM encoded) THEN " + _PLAYABLE.format(rid="r.id") + " END") \
        if {"encoded", "plan"} <= have else "NULL"
    for rid, tier_, rel, art_, play_ in catalog.execute(
            f"SELECT r.id, {tier}, {release}, {art}, {play} FROM (SELECT value AS id FROM json_each(?)) AS r",
            (json.dumps(ids),)):
        row = out[rid]
        row["tier"] = tier_
        if rel is not None:
            row["release"], row["magnet"] = json.loads(rel)
        row["art"] = _split(art_, ("sha256", "ext"))
        row["play"] = _split(play_, ("sha256", "ext", "tier"))
    return out
