"""``data/tracks.jsonl`` of an audio release: one JSON object per audio file (JSON Lines).

Each line says which file it is (path, sha256, bytes), what it is (the recording with its
artists, and every track that carries it: album, track and disc number, label, UPC, IDs),
how much it matters (tier, rank, listens), whether it may be shared (rights, and the source
file's own LICENSE/COPYRIGHT tags as evidence) and where it came from (encoder, SHA-256 of
the source, the source's codec and bit rate). The operator's local paths are never written.
Keys are sorted and the output is UTF-8 without escapes, so the same catalog gives the
same bytes.
"""

from __future__ import annotations

import json
from typing import Any

from soundark.catalog import Catalog
from soundark.release.layout import Placed

_RECORDING = """SELECT key, isrc, mbid, title, artist, album, duration_ms, date, listens, users, popularity,
rights FROM recording WHERE id = ?"""
_ARTISTS = """SELECT a.name, a.mbid FROM recording_artist ra JOIN artist a ON a.id = ra.artist_id
WHERE ra.recording_id = ? ORDER BY ra.position"""
_TRACKS = """SELECT t.key, t.title, t.artist, t.track_number, t.disc_number,
  al.key AS album_key, al.title AS album_title, al.artist AS album_artist, al.date AS album_date,
  al.label, al.upc, al.mbid AS album_mbid, al.art_sha256 AS album_art_sha256
FROM track t LEFT JOIN album al ON al.id = t.album_id
WHERE t.recording_id = ?
ORDER BY coalesce(al.date, ''), coalesce(al.key, ''), t.disc_number, t.track_number, t.key"""
_ENCODED = """SELECT e.encoder, e.source_sha256, e.created_at, e.duration_ms, e.art_sha256
FROM encoded e WHERE e.recording_id = ? AND e.tier = ?"""
_SOURCE = """SELECT container, codec, bitrate, sample_rate, channels, duration_ms, lossless,
license, copyright FROM source_file WHERE sha256 = ? AND status = 'ok' ORDER BY id LIMIT 1"""
_WEIGHT = "SELECT weight FROM plan WHERE recording_id = ?"


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def track_record(catalog: Catalog, placed: Placed) -> dict[str, Any]:
    """The tracks.jsonl object of one released audio file."""
    item = placed.item
    rid = item.recording_id
    recording = dict(catalog.execute(_RECORDING, (rid,)).fetchone())
    recording["artists"] = [dict(r) for r in catalog.execute(_ARTISTS, (rid,))]
    tracks = []
    for row in catalog.execute(_TRACKS, (rid,)):
        t = dict(row)
        album = {k.removeprefix("album_"): t.pop(k) for k in list(t)
                 if k.startswith("album_") or k in ("label", "upc")}
        t["album"] = album if album.get("key") else None
        tracks.append(t)
    enc = catalog.execute(_ENCODED, (rid, item.tier)).fetchone()
    source = catalog.execute(_SOURCE, (enc["source_sha256"],)).fetchone() if enc else None
    provenance = {
        "encoder": enc["encoder"] if enc else None,
        # no encode timestamp: two builders with the same sources get the same bag and infohash
        "source_sha256": enc["source_sha256"] if enc else None,
        "source": dict(source) if source else None,
        "art_sha256": enc["art_sha256"] if enc else None,
    }
    return {
        "path": placed.rel,
        "sha256": item.sha256,
        "bytes": item.bytes,
        "tier": item.tier,
        "rank": item.rank,
        "listens": item.listens,
        "weight": catalog.scalar(_WEIGHT, (rid,)),
        "rights": item.rights,
        "duration_ms": enc["duration_ms"] if enc else None,
        "recording": recording,
        "tracks": tracks,
        "provenance": provenance,
    }


def tracks_jsonl(catalog: Catalog, items: list[Placed]) -> bytes:
    """Every line of ``data/tracks.jsonl``, in the release's (rank) order."""
    return "".join(dumps(track_record(catalog, p)) + "\n" for p in items).encode("utf-8")
