"""Counts that describe a catalog (``soundark stats``)."""

from __future__ import annotations

from typing import Any

from soundark.catalog.store import Catalog


def _table_exists(catalog: Catalog, name: str) -> bool:
    return bool(catalog.scalar("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)))


def catalog_stats(catalog: Catalog) -> dict[str, Any]:
    """Counts per table and the figures a person asks first, as one flat-ish dict."""
    q = catalog.scalar
    stats: dict[str, Any] = {
        "catalog": str(catalog.path),
        "schema_version": catalog.schema_version(),
        "recordings": q("SELECT count(*) FROM recording"),
        "recordings_with_isrc": q("SELECT count(*) FROM recording WHERE isrc IS NOT NULL"),
        "recordings_with_mbid": q("SELECT count(*) FROM recording WHERE mbid IS NOT NULL"),
        "recordings_with_listens": q("SELECT count(*) FROM recording WHERE listens IS NOT NULL"),
        "total_listens": q("SELECT coalesce(sum(listens), 0) FROM recording"),
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
