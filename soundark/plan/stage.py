"""The plan stage: catalog columns in, one ``plan`` row per recording out.

Reads recordings, listens/popularity and source files in bulk into numpy
columns, runs the selection (:mod:`soundark.plan.coverage`) and writes back
only the plan rows that changed, in one transaction, plus a ``plan_run`` row
holding the coverage figures. Re-planning an unchanged catalog writes no plan
row. Nothing is deleted from ``encoded`` or the store: the encode stage
re-queues a recording whenever its planned tier has no output yet.

Weight: listens, else a fallback signal (popularity, album, artist; see
:mod:`soundark.plan.signals`). After encode and release, real sizes and
released bytes replace estimates (:mod:`soundark.plan.actual`).

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
from soundark.plan.actual import BudgetCheck, check_budget, released_locks, use_real_sizes
from soundark.plan.budget import PlanSettings
from soundark.plan.columns import locate, read_columns
from soundark.plan.coverage import OPUS, ORIGINAL, TIER_NAMES, SelectionOptions, select
from soundark.plan.figures import compute_figures
from soundark.plan.signals import direct_weights, fallback_weights, popularity_weight, scan_order, signal_counts

OGG_OVERHEAD = 1.01
MONO_SHARE = 5 / 8
DEFAULT_DURATION_MS = 240_000
WRITE_BATCH = 100_000
REBUILD_MIN_ROWS = 50_000  # fewer changed rows than this: update the plan indexes in place


@dataclass
class PlanInputs:
    """Selection columns in recording-key order (the tie-break order)."""

    ids: np.ndarray             # recording.id
    weight: np.ndarray          # float64
    opus_bytes: np.ndarray      # int64
    original_bytes: np.ndarray  # int64, 0 = may not be kept as it is
    best_source: np.ndarray     # source_file.id to encode from, -1 = no audio
    original_source: np.ndarray  # source_file.id kept as it is, -1 = none
    seconds: np.ndarray         # float64 duration used for the estimate
    level: np.ndarray           # int8 weight signal (soundark.plan.signals.SIGNALS)
    groups: np.ndarray | None = None  # album of each row when planning in scan order
    locked: np.ndarray | None = None  # tier code of already released rows, -1 = free
    real_sizes: int = 0         # rows whose bytes come from an encoded output

    def reorder(self, order: np.ndarray) -> None:
        for name in ("ids", "weight", "opus_bytes", "original_bytes", "best_source", "original_source",
                     "seconds", "level"):
            setattr(self, name, getattr(self, name)[order])


_REC = np.dtype([("id", "i8"), ("listens", "i8"), ("popularity", "f8"), ("duration_ms", "i8")])
_SRC = np.dtype([("rid", "i8"), ("sid", "i8"), ("size", "i8"), ("duration_ms", "i8"),
                 ("lossless", "i1"), ("bitrate", "i8"), ("channels", "i8"), ("keepable", "i1")])


def _source_sql() -> str:
    lossless = ", ".join(f"'{c}'" for c in sorted(LOSSLESS_CODECS))
    lossy = ", ".join(f"'{c}'" for c in sorted(LOSSY_KEEPABLE_CODECS))
    is_lossless = (f"coalesce(coalesce(lossless, 0) != 0 OR codec LIKE 'pcm\\_%' ESCAPE '\\' "
                   f"OR codec IN ({lossless}), 0)")  # a NULL codec is no evidence either way
    return (
        f"SELECT recording_id, id, size, coalesce(duration_ms, 0), {is_lossless}, "
        "coalesce(bitrate, CASE WHEN duration_ms > 0 THEN size * 8000 / duration_ms ELSE 0 END, 0), "
        # a file only the fallback decoder reads is re-encoded, never kept: FFmpeg-based players refuse it
        # coalesce: a source with no codec recorded is not keepable (NULL would not fit the column)
        f"coalesce(channels, 2), coalesce(codec IN ({lossy}) AND NOT {is_lossless} "
        "AND coalesce(decoder, 'ffmpeg') = 'ffmpeg', 0) "
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


def load_inputs(catalog: Catalog, ps: PlanSettings) -> PlanInputs:
    """Read the catalog into selection columns (recording-key order; album-by-album scan order
    when no recording has any weight)."""
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
    ids = rec["id"][key]
    weight, level = direct_weights(rec["listens"][key], rec["popularity"][key])
    fallback_weights(catalog, ids, weight, level)
    inputs = PlanInputs(ids=ids, weight=weight, opus_bytes=np.ceil(opus).astype(np.int64)[key],
                        original_bytes=np.maximum(chosen["orig_size"], 0)[key],
                        best_source=chosen["best"][key], original_source=chosen["orig"][key],
                        seconds=duration[key] / 1000.0, level=level)
    inputs.real_sizes = use_real_sizes(catalog, ids, inputs.opus_bytes, inputs.original_bytes)
    if float(weight.sum()) <= 0 and ids.size:
        order, inputs.groups = scan_order(catalog, ids)
        inputs.reorder(order)
    inputs.locked = released_locks(catalog, inputs.ids, inputs.opus_bytes, inputs.original_bytes)
    return inputs


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
    policy: str = "value"
    share_value: float = 0.0    # listens x worth of their tier (original 1, opus75 opus_listen_value)
    signal: dict[str, Any] = field(default_factory=dict)  # mode (full/partial/none) and counts per level
    hours_total: float = 0.0
    hours_kept: float = 0.0
    bytes_released: int = 0

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


def _changed_rows(catalog: Catalog, new: _Planned) -> tuple[np.ndarray, int, np.ndarray]:
    """(mask of rows to write, how many existing rows changed tier, the recording ids planned
    before that are no longer in the catalog: their plan rows go)."""
    old = read_columns(catalog, "SELECT recording_id, CASE tier WHEN 'original' THEN 0 "
                                "WHEN 'opus75' THEN 1 ELSE 2 END, est_bytes, rank, weight, "
                                "coalesce(source_id, -1) FROM plan", _OLD)
    changed = np.ones(new.ids.size, dtype=bool)
    if old.size == 0:
        return changed, 0, np.empty(0, dtype=np.int64)
    i = locate(new.ids, old["rid"])  # each old row's place among the new ones, -1: gone
    match = i >= 0
    gone = old["rid"][~match]  # (np.setdiff1d sorted both: 27 s of an 87 s re-plan at 10M rows)
    if new.ids.size == 0:
        return changed, 0, gone
    i, old = i[match], old[match]
    tier_diff = new.tier[i] != old["tier"]
    changed[i] = (tier_diff | (new.est_bytes[i] != old["est"]) | (new.rank[i] != old["rank"])
                  | (new.weight[i] != old["weight"]) | (new.source[i] != old["source"]))
    return changed, int(np.count_nonzero(tier_diff)), gone


_UPSERT = (
    "INSERT INTO plan(recording_id, tier, est_bytes, rank, weight, source_id, planned_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(recording_id) DO UPDATE SET tier = excluded.tier, "
    "est_bytes = excluded.est_bytes, rank = excluded.rank, weight = excluded.weight, "
    "source_id = excluded.source_id, planned_at = excluded.planned_at"
)


_INSERT = _UPSERT.split(" ON CONFLICT")[0]  # the first plan: every row is new (~25 % faster)

_PLAN_INDEXES = ("CREATE INDEX plan_rank ON plan(rank)", "CREATE INDEX plan_tier ON plan(tier)")


def _write_rows(catalog: Catalog, new: _Planned, rows: np.ndarray, progress: Progress) -> None:
    rows = rows[np.argsort(new.ids[rows], kind="stable")]  # rowid order: B-tree appends, not splits
    # ranks arrive in random order: rebuilding the indexes once is ~2x faster than updating them
    # row by row when much of the plan changes (measured on 1M rows)
    planned = int(catalog.scalar("SELECT count(*) FROM plan") or 0)
    rebuild = rows.size > max(REBUILD_MIN_ROWS, planned // 4)
    write = _UPSERT if planned else _INSERT
    if rebuild:
        catalog.execute("DROP INDEX IF EXISTS plan_rank")
        catalog.execute("DROP INDEX IF EXISTS plan_tier")
    names = np.array(TIER_NAMES, dtype=object)
    now = utc_now()
    progress.start(int(rows.size), "writing plan", unit="rows")
    # plan.tier's CHECK (tier IN (...)) builds its list anew for every row executemany inserts:
    # ~5 us a row, half the cost of writing the plan. The names written here are TIER_NAMES
    # (the CHECK's list, a test holds them equal), so the check is off while they are.
    catalog.execute("PRAGMA ignore_check_constraints = ON")
    try:
        for start in range(0, rows.size, WRITE_BATCH):
            if progress.cancelled():
                raise EnvironmentProblem("plan", "cancelled; the previous plan is unchanged")
            r = rows[start:start + WRITE_BATCH]
            source = new.source[r].astype(object)
            source[new.source[r] < 0] = None
            catalog.conn.executemany(write, zip(
                new.ids[r].tolist(), names[new.tier[r]].tolist(), new.est_bytes[r].tolist(),
                new.rank[r].tolist(), new.weight[r].tolist(), source.tolist(), [now] * r.size))
            progress.advance(int(r.size))
    finally:
        catalog.execute("PRAGMA ignore_check_constraints = OFF")
    if rebuild:
        for sql in _PLAN_INDEXES:
            catalog.execute(sql)


def _signal_context(inputs: PlanInputs, ps: PlanSettings) -> dict[str, Any]:
    counts = signal_counts(inputs.level)
    direct = counts["listens"] + counts["popularity"]
    mode = "none" if float(inputs.weight.sum()) <= 0 else ("full" if direct == inputs.ids.size else "partial")
    return {"signal": {"mode": mode, "counts": counts}, "policy": ps.policy,
            "opus_listen_value": ps.opus_value, "original_top": ps.original_top,
            "real_sizes": inputs.real_sizes}


def plan_catalog(catalog: Catalog, ps: PlanSettings, progress: Progress = NO_PROGRESS) -> PlanResult:
    """Plan every recording of *catalog* and store the plan (one transaction)."""
    # every id the plan rows name is read from recording and source_file in this transaction
    with catalog.foreign_keys_unchecked(), catalog.transaction():
        progress.start(2, "reading catalog, selecting", unit="steps")
        inputs = load_inputs(catalog, ps)
        progress.advance(1)
        opts = SelectionOptions(budget=ps.budget, allow_original="original" in ps.tiers,
                                allow_opus="opus75" in ps.tiers, opus_value=ps.opus_value,
                                policy=ps.policy, original_top=ps.original_top)
        sel = select(inputs.weight, inputs.opus_bytes, inputs.original_bytes, opts,
                     locked=inputs.locked, groups=inputs.groups)
        source = np.where(sel.tier == ORIGINAL, inputs.original_source,
                          np.where(sel.tier == OPUS, inputs.best_source, -1))
        new = _Planned(inputs.ids, sel.tier, sel.est_bytes.astype(np.int64), sel.rank.astype(np.int64),
                       inputs.weight, source)
        figures = compute_figures(sel, inputs.weight, ps.budget, has_audio=inputs.best_source >= 0,
                                  seconds=inputs.seconds, context=_signal_context(inputs, ps))
        changed, tier_changes, gone = _changed_rows(catalog, new)
        progress.advance(1)
        _write_rows(catalog, new, np.flatnonzero(changed), progress)
        # the plan rows of recordings gone from the catalog, by id: an anti-join over the whole
        # plan would look up every planned recording (36M at 50M rows) to find the few gone
        catalog.conn.executemany("DELETE FROM plan WHERE recording_id = ?", ((int(r),) for r in gone))
        run_id = _record_run(catalog, ps, figures, int(np.count_nonzero(changed)), tier_changes)
    return PlanResult(
        recordings=figures["recordings"], kept=figures["kept"], budget=ps.budget, tiers=ps.tiers,
        bytes=figures["bytes"], listens_total=figures["listens_total"],
        listens_covered=figures["listens_covered"], share_covered=figures["share_covered"],
        changed=int(np.count_nonzero(changed)), tier_changes=tier_changes, run_id=run_id,
        by_tier=figures["tiers"], policy=ps.policy, share_value=figures["share_value"],
        signal=figures["signal"], hours_total=figures["hours_total"], hours_kept=figures["hours_kept"],
        bytes_released=figures["bytes_released"])


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


def run_check(paths: ArchivePaths, settings: Settings) -> BudgetCheck:
    """`soundark plan --check`: the stored plan and releases against the budget (nothing written)."""
    ps = PlanSettings.from_settings(settings)
    with open_catalog(paths.catalog, readonly=True) as catalog:
        return check_budget(catalog, ps.budget)


__all__ = ["run_plan", "run_check", "plan_catalog", "coverage_figures", "load_inputs", "PlanResult",
           "popularity_weight", "locate", "read_columns"]
