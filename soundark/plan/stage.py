"""The plan stage: catalog columns in, one ``plan`` row per recording out.

Reads recordings, listens/popularity and source files in bulk into numpy
columns, runs the selection (:mod:`soundark.plan.coverage`) and writes back
only the plan rows that changed, in one transaction, plus a ``plan_run`` row
holding the coverage figures. Re-planning an unchanged catalog writes no plan
row. Nothing is deleted from ``encoded`` or the store: the encode stage
re-queues a recording whenever its planned tier has no output yet.

Weight = listens; where only popularity (0-100) is known,
``10 ** (popularity / 20) - 1`` (0 -> 0, 20 -> 9, 60 -> 999, 100 -> 99 999:
monotone, and popularity scores are roughly logarithmic in plays); with
neither, 0, the lowest weight.

Byte estimates: ``original`` = the kept file's size; ``opus75`` =
duration x ``opus_bitrate`` / 8 plus 1 % Ogg overhead (RFC 7845 pages),
5/8 of it for mono sources. A recording without a usable duration gets the
catalog's median duration (240 s in an empty catalog).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from soundark.catalog import Catalog, open_catalog
from soundark.catalog.store import utc_now
from soundark.config import ArchivePaths, Settings
from soundark.errors import EnvironmentProblem, NotFound
from soundark.model import LOSSLESS_CODECS, LOSSY_KEEPABLE_CODECS, NO_PROGRESS, Progress
from soundark.plan.budget import PlanSettings
from soundark.plan.coverage import OPUS, ORIGINAL, TIER_NAMES, SelectionOptions, select
from soundark.plan.figures import compute_figures

OGG_OVERHEAD = 1.01
MONO_SHARE = 5 / 8
DEFAULT_DURATION_MS = 240_000
WRITE_BATCH = 100_000
REBUILD_MIN_ROWS = 50_000  # fewer changed rows than this: update the plan indexes in place
_FETCH = 200_000


def popularity_weight(popularity: np.ndarray) -> np.ndarray:
    """The documented monotone map of popularity (0-100) to a listen-like weight."""
    p = np.clip(np.asarray(popularity, dtype=np.float64), 0.0, 100.0)
    return np.power(10.0, p / 20.0) - 1.0


def read_columns(catalog: Catalog, sql: str, dtype: np.dtype, params: tuple = ()) -> np.ndarray:
    """One SELECT into a structured numpy array, fetched in chunks (NULLs must be coalesced)."""
    cursor = catalog.execute(sql, params)
    cursor.row_factory = None  # plain tuples: numpy reads them without a per-row Python step
    parts = []
    while True:
        rows = cursor.fetchmany(_FETCH)
        if not rows:
            break
        parts.append(np.fromiter(rows, dtype=dtype, count=len(rows)))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


@dataclass
class PlanInputs:
    """Selection columns in recording-key order (the tie-break order)."""

    ids: np.ndarray             # recording.id
    weight: np.ndarray          # float64
    opus_bytes: np.ndarray      # int64
    original_bytes: np.ndarray  # int64, 0 = may not be kept as it is
    best_source: np.ndarray     # source_file.id to encode from, -1 = no audio
    original_source: np.ndarray  # source_file.id kept as it is, -1 = none


_REC = np.dtype([("id", "i8"), ("listens", "i8"), ("popularity", "f8"), ("duration_ms", "i8")])
_SRC = np.dtype([("rid", "i8"), ("sid", "i8"), ("size", "i8"), ("duration_ms", "i8"),
                 ("lossless", "i1"), ("bitrate", "i8"), ("channels", "i8"), ("keepable", "i1")])


def _source_sql() -> str:
    lossless = ", ".join(f"'{c}'" for c in sorted(LOSSLESS_CODECS))
    lossy = ", ".join(f"'{c}'" for c in sorted(LOSSY_KEEPABLE_CODECS))
    is_lossless = f"(coalesce(lossless, 0) != 0 OR codec LIKE 'pcm\\_%' ESCAPE '\\' OR codec IN ({lossless}))"
    return (
        f"SELECT recording_id, id, size, coalesce(duration_ms, 0), {is_lossless}, "
        "coalesce(bitrate, CASE WHEN duration_ms > 0 THEN size * 8000 / duration_ms ELSE 0 END, 0), "
        # a file only the fallback decoder reads is re-encoded, never kept: FFmpeg-based players refuse it
        f"coalesce(channels, 2), (codec IN ({lossy}) AND NOT {is_lossless} "
        "AND coalesce(decoder, 'ffmpeg') = 'ffmpeg') "
        "FROM source_file WHERE status = 'ok' AND recording_id IS NOT NULL"
    )


def _first_per_group(group: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Indices of the first row of each *group* after sorting by (group, keys...) ascending."""
    if group.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort(tuple(reversed(keys)) + (group,))
    g = group[order]
    first = np.ones(g.size, dtype=bool)
    first[1:] = g[1:] != g[:-1]
    return order[first]


def _choose_sources(src: np.ndarray, pos: np.ndarray, n: int, max_bitrate: int) -> dict[str, np.ndarray]:
    """Per recording position: the best input (lossless first, then bit rate, then lowest id)
    and the file that may be kept as it is (lossy, <= max_bitrate, no lossless sibling)."""
    best = _first_per_group(pos, -src["lossless"].astype(np.int64), -src["bitrate"], src["sid"])
    out = {name: np.full(n, -1, dtype=np.int64) for name in ("best", "orig", "orig_size")}
    out["best_duration"] = np.zeros(n, dtype=np.int64)
    out["best_channels"] = np.full(n, 2, dtype=np.int64)
    out["best"][pos[best]] = src["sid"][best]
    out["best_duration"][pos[best]] = src["duration_ms"][best]
    out["best_channels"][pos[best]] = src["channels"][best]
    has_lossless = np.zeros(n, dtype=bool)
    has_lossless[pos[src["lossless"] != 0]] = True
    ok = ((src["keepable"] != 0) & (src["bitrate"] > 0) & (src["bitrate"] <= max_bitrate)
          & (src["size"] > 0) & ~has_lossless[pos])
    idx = np.flatnonzero(ok)
    keep = idx[_first_per_group(pos[idx], -src["bitrate"][idx], src["sid"][idx])]
    out["orig"][pos[keep]] = src["sid"][keep]
    out["orig_size"][pos[keep]] = src["size"][keep]
    return out


def _weights(rec: np.ndarray) -> np.ndarray:
    weight = np.zeros(rec.size, dtype=np.float64)
    has_pop = rec["popularity"] >= 0
    weight[has_pop] = popularity_weight(rec["popularity"][has_pop])
    has_listens = rec["listens"] >= 0
    weight[has_listens] = rec["listens"][has_listens]
    return weight


def locate(ids: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Position in *ids* (unique) of each of *query*, -1 where absent. Row ids are nearly always
    dense, so a direct table (8 bytes per id) replaces a binary search per query."""
    if ids.size == 0:
        return np.full(query.size, -1, dtype=np.int64)
    low, top = int(ids.min()), int(ids.max())
    if low >= 0 and top <= 4 * ids.size + 1024:
        table = np.full(top + 1, -1, dtype=np.int64)
        table[ids] = np.arange(ids.size)
        out = table[np.clip(query, 0, top)]
        out[(query < 0) | (query > top)] = -1
        return out
    order = np.argsort(ids, kind="stable")
    out = order[np.minimum(np.searchsorted(ids, query, sorter=order), ids.size - 1)]
    out[ids[out] != query] = -1
    return out


def load_inputs(catalog: Catalog, ps: PlanSettings) -> PlanInputs:
    """Read the catalog into selection columns (recording-key order)."""
    rec = read_columns(catalog, "SELECT id, coalesce(listens, -1), coalesce(popularity, -1.0), "
                                "coalesce(duration_ms, 0) FROM recording ORDER BY id", _REC)
    ids_by_key = read_columns(catalog, "SELECT id FROM recording ORDER BY key", np.dtype([("id", "i8")]))
    src = read_columns(catalog, _source_sql(), _SRC)
    pos = locate(rec["id"], src["rid"])
    found = pos >= 0  # a source of a recording that is gone (no foreign-key enforcement) is ignored
    src, pos = src[found], pos[found]
    chosen = _choose_sources(src, pos, rec.size, ps.original_max_bitrate)
    duration = np.where(chosen["best_duration"] > 0, chosen["best_duration"], rec["duration_ms"])
    known = np.concatenate([rec["duration_ms"][rec["duration_ms"] > 0], src["duration_ms"][src["duration_ms"] > 0]])
    median = int(np.median(known)) if known.size else DEFAULT_DURATION_MS
    duration[duration <= 0] = median
    opus = duration * (ps.opus_bitrate * OGG_OVERHEAD / 8000.0)
    opus[chosen["best_channels"] == 1] *= MONO_SHARE
    key = locate(rec["id"], ids_by_key["id"])
    return PlanInputs(ids=rec["id"][key], weight=_weights(rec)[key],
                      opus_bytes=np.ceil(opus).astype(np.int64)[key],
                      original_bytes=np.maximum(chosen["orig_size"], 0)[key],
                      best_source=chosen["best"][key], original_source=chosen["orig"][key])


@dataclass
class PlanResult:
    """What one `soundark plan` did."""

    recordings: int
    kept: int
    budget: int | None
    tiers: tuple[str, ...]
    bytes: int
    listens_total: float
    listens_covered: float
    share_covered: float
    changed: int
    tier_changes: int
    run_id: int
    by_tier: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tiers"] = list(self.tiers)
        return d


@dataclass
class _Planned:
    """Selection output columns, key order, ready to write."""

    ids: np.ndarray
    tier: np.ndarray
    est_bytes: np.ndarray
    rank: np.ndarray
    weight: np.ndarray
    source: np.ndarray


_OLD = np.dtype([("rid", "i8"), ("tier", "i1"), ("est", "i8"), ("rank", "i8"), ("weight", "f8"),
                 ("source", "i8")])


def _changed_rows(catalog: Catalog, new: _Planned) -> tuple[np.ndarray, int]:
    """(mask of rows to write, how many existing rows changed tier)."""
    old = read_columns(catalog, "SELECT recording_id, CASE tier WHEN 'original' THEN 0 "
                                "WHEN 'opus75' THEN 1 ELSE 2 END, est_bytes, rank, weight, "
                                "coalesce(source_id, -1) FROM plan", _OLD)
    changed = np.ones(new.ids.size, dtype=bool)
    if old.size == 0 or new.ids.size == 0:
        return changed, 0
    i = locate(new.ids, old["rid"])
    match = i >= 0
    i, old = i[match], old[match]
    tier_diff = new.tier[i] != old["tier"]
    changed[i] = (tier_diff | (new.est_bytes[i] != old["est"]) | (new.rank[i] != old["rank"])
                  | (new.weight[i] != old["weight"]) | (new.source[i] != old["source"]))
    return changed, int(np.count_nonzero(tier_diff))


_UPSERT = (
    "INSERT INTO plan(recording_id, tier, est_bytes, rank, weight, source_id, planned_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(recording_id) DO UPDATE SET tier = excluded.tier, "
    "est_bytes = excluded.est_bytes, rank = excluded.rank, weight = excluded.weight, "
    "source_id = excluded.source_id, planned_at = excluded.planned_at"
)


_PLAN_INDEXES = ("CREATE INDEX plan_rank ON plan(rank)", "CREATE INDEX plan_tier ON plan(tier)")


def _write_rows(catalog: Catalog, new: _Planned, rows: np.ndarray, progress: Progress) -> None:
    rows = rows[np.argsort(new.ids[rows], kind="stable")]  # rowid order: B-tree appends, not splits
    # ranks arrive in random order: rebuilding the indexes once is ~2x faster than updating them
    # row by row when much of the plan changes (measured on 1M rows)
    rebuild = rows.size > max(REBUILD_MIN_ROWS, int(catalog.scalar("SELECT count(*) FROM plan") or 0) // 4)
    if rebuild:
        catalog.execute("DROP INDEX IF EXISTS plan_rank")
        catalog.execute("DROP INDEX IF EXISTS plan_tier")
    names = np.array(TIER_NAMES, dtype=object)
    now = utc_now()
    progress.start(int(rows.size), "writing plan", unit="rows")
    for start in range(0, rows.size, WRITE_BATCH):
        if progress.cancelled():
            raise EnvironmentProblem("plan", "cancelled; the previous plan is unchanged")
        r = rows[start:start + WRITE_BATCH]
        source = new.source[r].astype(object)
        source[new.source[r] < 0] = None
        catalog.conn.executemany(_UPSERT, zip(
            new.ids[r].tolist(), names[new.tier[r]].tolist(), new.est_bytes[r].tolist(),
            new.rank[r].tolist(), new.weight[r].tolist(), source.tolist(), [now] * r.size))
        progress.advance(int(r.size))
    if rebuild:
        for sql in _PLAN_INDEXES:
            catalog.execute(sql)


def plan_catalog(catalog: Catalog, ps: PlanSettings, progress: Progress = NO_PROGRESS) -> PlanResult:
    """Plan every recording of *catalog* and store the plan (one transaction)."""
    with catalog.transaction():
        progress.start(2, "reading catalog, selecting", unit="steps")
        inputs = load_inputs(catalog, ps)
        progress.advance(1)
        opts = SelectionOptions(budget=ps.budget, allow_original="original" in ps.tiers,
                                allow_opus="opus75" in ps.tiers)
        sel = select(inputs.weight, inputs.opus_bytes, inputs.original_bytes, opts)
        source = np.where(sel.tier == ORIGINAL, inputs.original_source,
                          np.where(sel.tier == OPUS, inputs.best_source, -1))
        new = _Planned(inputs.ids, sel.tier, sel.est_bytes.astype(np.int64), sel.rank.astype(np.int64),
                       inputs.weight, source)
        figures = compute_figures(sel, inputs.weight, ps.budget, has_audio=inputs.best_source >= 0)
        changed, tier_changes = _changed_rows(catalog, new)
        progress.advance(1)
        _write_rows(catalog, new, np.flatnonzero(changed), progress)
        catalog.execute("DELETE FROM plan WHERE recording_id NOT IN (SELECT id FROM recording)")
        run_id = _record_run(catalog, ps, figures, int(np.count_nonzero(changed)), tier_changes)
    return PlanResult(
        recordings=figures["recordings"], kept=figures["kept"], budget=ps.budget, tiers=ps.tiers,
        bytes=figures["bytes"], listens_total=figures["listens_total"],
        listens_covered=figures["listens_covered"], share_covered=figures["share_covered"],
        changed=int(np.count_nonzero(changed)), tier_changes=tier_changes, run_id=run_id,
        by_tier=figures["tiers"])


def _record_run(catalog: Catalog, ps: PlanSettings, figures: dict[str, Any], changed: int,
                tier_changes: int) -> int:
    cursor = catalog.execute(
        "INSERT INTO plan_run(created_at, budget, tiers, recordings, kept, bytes, listens_total, "
        "listens_covered, changed, tier_changes, figures) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (utc_now(), ps.budget, ",".join(ps.tiers), figures["recordings"], figures["kept"],
         figures["bytes"], figures["listens_total"], figures["listens_covered"], changed,
         tier_changes, json.dumps(figures, separators=(",", ":"))))
    return int(cursor.lastrowid)


def run_plan(paths: ArchivePaths, settings: Settings, progress: Progress = NO_PROGRESS) -> PlanResult:
    """Entry of the plan stage: plan the archive's catalog with its settings."""
    ps = PlanSettings.from_settings(settings)
    with open_catalog(paths.catalog, create=False) as catalog:
        return plan_catalog(catalog, ps, progress)


def coverage_figures(catalog: Catalog) -> dict[str, Any]:
    """The figures of the latest plan (as stored by :func:`plan_catalog`), with its run facts."""
    row = catalog.execute("SELECT id, created_at, tiers, figures FROM plan_run "
                          "ORDER BY id DESC LIMIT 1").fetchone() \
        if catalog.scalar("SELECT 1 FROM sqlite_master WHERE name = 'plan_run'") else None
    if row is None:
        raise NotFound(catalog.path, "no plan yet: run `soundark plan` first")
    figures = json.loads(row[3])
    figures.update(run_id=row[0], planned_at=row[1], tiers_allowed=row[2].split(","))
    return figures


__all__ = ["run_plan", "plan_catalog", "coverage_figures", "load_inputs", "PlanResult",
           "popularity_weight"]
