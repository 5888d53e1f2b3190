"""Counts that describe a catalog (``soundark stats``)."""

from __future__ import annotations

from typing import Any

from soundark.catalog.store import Catalog


def _table_exists(catalog: Catalog, name: str) -> bool:
    return bool(catalog.scalar("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)))


def catalog_stats(catalog: Catalog) -> dict[str, Any]:
    """Counts per table and the figures a person asks first, as one flat-ish dict."""
    q = catalog.scalar
    # one pass over recording for the five (each its own scan: 7 s more at 10M rows, a minute at 50M)
    recordings, with_isrc, with_mbid, with_listens, listens = catalog.execute(
        "SELECT count(*), count(isrc), count(mbid), count(listens), coalesce(sum(listens), 0) FROM recording"
    ).fetchone()
    stats: dict[str, Any] = {
        "catalog": str(catalog.path),
        "schema_version": catalog.schema_version(),
        "recordings": recordings,
        "recordings_with_isrc": with_isrc,
        "recordings_with_mbid": with_mbid,
        "recordings_with_listens": with_listens,
        "total_listens": listens,
        "tracks": q("SELECT count(*) FROM track"),
        "albums": q("SELECT count(*) FROM album"),
        "artists": q("SELECT count(*) FROM artist"),
        "source_files": q("SELECT count(*) FROM source_file WHERE status = 'ok'"),
        "source_files_rejected": q("SELECT count(*) FROM source_file WHERE status = 'rejected'"),
        "source_bytes": q("SELECT coalesce(sum(size), 0) FROM source_file WHERE status = 'ok'"),
        "recordings_with_audio": q(
            "SELECT count(DISTINCT recording_id) FROM source_file WHERE status = 'ok'"),
        "rights": {row[0]: row[1] for row in catalog.execute(
            "SELECT rights, count(*) FROM recording GROUP BY rights ORDER BY count(*) DESC")},
        "codecs": {row[0]: row[1] for row in catalog.execute(
            "SELECT codec, count(*) FROM source_file WHERE status = 'ok' GROUP BY codec "
            "ORDER BY count(*) DESC")},
    }
    if _table_exists(catalog, "plan"):
        stats["plan_tiers"] = {row[0]: row[1] for row in catalog.execute(
            "SELECT tier, count(*) FROM plan GROUP BY tier ORDER BY tier")}
    if _table_exists(catalog, "encoded"):
        stats["encoded_files"] = q("SELECT count(*) FROM encoded")
        stats["encoded_bytes"] = q("SELECT coalesce(sum(bytes), 0) FROM encoded")
    if _table_exists(catalog, "release"):
        stats["releases"] = q("SELECT count(*) FROM release")
    return stats
