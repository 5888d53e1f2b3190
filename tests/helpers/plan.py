"""A catalog by hand for plan tests: recordings, sources, and the plan with easy-to-compute sizes."""

from __future__ import annotations

from soundark.catalog import Catalog
from soundark.config import Settings
from soundark.plan.budget import PlanSettings
from soundark.plan.stage import plan_catalog

# opus at 8 kbit/s makes the estimate easy by hand: bytes = duration_ms * 1.01
SLOW = dict(opus_bitrate=8000)


def add_recording(catalog: Catalog, key: str, listens: int | None = None, popularity: float | None = None,
                  duration_ms: int | None = None) -> int:
    cur = catalog.execute("INSERT INTO recording(key, title, listens, popularity, duration_ms) "
                          "VALUES (?, ?, ?, ?, ?)", (key, f"title {key}", listens, popularity, duration_ms))
    return int(cur.lastrowid)


def add_source(catalog: Catalog, rid: int, codec: str, bitrate: int | None, size: int, duration_ms: int,
               channels: int = 2, path: str | None = None) -> int:
    lossless = int(codec in ("flac", "alac") or codec.startswith("pcm_"))
    cur = catalog.execute(
        "INSERT INTO source_file(path, size, mtime_ns, status, codec, bitrate, duration_ms, channels, "
        "lossless, recording_id, scanned_at) VALUES (?, ?, 0, 'ok', ?, ?, ?, ?, ?, ?, 'now')",
        (path or f"/music/{rid}-{codec}-{bitrate}-{size}", size, codec, bitrate, duration_ms, channels,
         lossless, rid))
    return int(cur.lastrowid)


def plan(catalog: Catalog, budget: str = "", **kw: object):
    return plan_catalog(catalog, PlanSettings.from_settings(Settings(budget=budget, **{**SLOW, **kw})))


def rows(catalog: Catalog) -> dict[str, tuple]:
    return {r[0]: tuple(r[1:]) for r in catalog.execute(
        "SELECT r.key, p.tier, p.est_bytes, p.rank, p.weight, p.source_id "
        "FROM plan p JOIN recording r ON r.id = p.recording_id")}
