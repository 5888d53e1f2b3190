"""The budget as a promise: real sizes after encode, released bytes as spent, and `plan --check`.

Stages meet in the catalog (docs/architecture.md): the encode stage records
each output's size in ``encoded``, the release stage each published file in
``release_file``. The plan reads both and never imports those stages.

* A recording with an output of a tier is planned with that output's real
  size instead of the estimate.
* A recording already in an audio release is **locked**: published releases
  never change, so it stays kept, in the tier it was published in, and the
  bytes of every file published for it are spent before anything else is
  bought. A re-plan that no longer fits therefore drops (``skip``) the
  recordings of least value per byte that are not yet published, and the
  release stage never publishes a skipped recording.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from soundark.catalog import Catalog
from soundark.plan.columns import locate, read_columns

_TIER_CODE = "CASE {col} WHEN 'original' THEN 0 ELSE 1 END"
_ENCODED = np.dtype([("rid", "i8"), ("tier", "i1"), ("bytes", "i8")])
_RELEASED = np.dtype([("rid", "i8"), ("tier", "i1"), ("bytes", "i8")])


def use_real_sizes(catalog: Catalog, ids: np.ndarray, opus_bytes: np.ndarray,
                   original_bytes: np.ndarray) -> int:
    """Replace estimates by the sizes of outputs already encoded (in place); how many were replaced."""
    enc = read_columns(catalog, f"SELECT recording_id, {_TIER_CODE.format(col='tier')}, bytes FROM encoded",
                       _ENCODED)
    pos = locate(ids, enc["rid"])
    opus = (pos >= 0) & (enc["tier"] == 1)
    opus_bytes[pos[opus]] = enc["bytes"][opus]
    # an original is only used where the plan may still keep that recording as it is
    orig = (pos >= 0) & (enc["tier"] == 0)
    orig &= original_bytes[np.where(orig, pos, 0)] > 0
    original_bytes[pos[orig]] = enc["bytes"][orig]
    return int(np.count_nonzero(opus) + np.count_nonzero(orig))


def released_locks(catalog: Catalog, ids: np.ndarray, opus_bytes: np.ndarray,
                   original_bytes: np.ndarray) -> np.ndarray | None:
    """Tier code per position for recordings already in an audio release (-1 = free), with the
    bytes of every file published for each written into the column of that tier; None when
    nothing is released."""
    rel = read_columns(catalog,
                       "SELECT rf.recording_id, coalesce((SELECT " + _TIER_CODE.format(col="e.tier")
                       + " FROM encoded e WHERE e.recording_id = rf.recording_id AND e.sha256 = rf.sha256 "
                       "LIMIT 1), 1), rf.bytes FROM release_file rf JOIN release rl ON rl.id = rf.release_id "
                       "WHERE rl.phase = 'audio' AND rf.recording_id IS NOT NULL ORDER BY rl.id", _RELEASED)
    if rel.size == 0:
        return None
    pos = locate(ids, rel["rid"])
    rel, pos = rel[pos >= 0], pos[pos >= 0]
    locked = np.full(ids.size, -1, dtype=np.int8)
    locked[pos] = rel["tier"]  # the latest release of a recording names its tier (rows by release id)
    spent = np.zeros(ids.size, dtype=np.int64)
    np.add.at(spent, pos, rel["bytes"])
    rows = np.unique(pos)
    as_orig = rows[locked[rows] == 0]
    as_opus = rows[locked[rows] == 1]
    original_bytes[as_orig] = spent[as_orig]
    opus_bytes[as_opus] = spent[as_opus]
    return locked


@dataclass
class BudgetCheck:
    """How far the archive is from its budget (all byte counts are audio files)."""

    budget: int | None
    planned: int          # the plan's bytes as planned (estimates where nothing was encoded)
    actual: int           # real sizes where encoded, estimates elsewhere
    encoded: int          # bytes of outputs of the planned tier
    encoded_recordings: int
    pending: int          # estimated bytes still to encode
    pending_recordings: int
    released: int         # bytes of audio already published
    over_by: int          # actual - budget (negative: room left); 0 without a budget
    fits: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_CHECK = """
SELECT coalesce(sum(p.est_bytes), 0),
       coalesce(sum(coalesce(e.bytes, p.est_bytes)), 0),
       coalesce(sum(e.bytes), 0), count(e.bytes),
       coalesce(sum(CASE WHEN e.bytes IS NULL THEN p.est_bytes END), 0),
       count(*) - count(e.bytes)
FROM plan p LEFT JOIN encoded e ON e.recording_id = p.recording_id AND e.tier = p.tier
WHERE p.tier != 'skip'
"""
_RELEASED_BYTES = ("SELECT coalesce(sum(rf.bytes), 0) FROM release_file rf JOIN release rl "
                   "ON rl.id = rf.release_id WHERE rl.phase = 'audio' AND rf.recording_id IS NOT NULL")


def check_budget(catalog: Catalog, budget: int | None) -> BudgetCheck:
    """Compare the stored plan, with real sizes where known, and the releases with *budget*."""
    planned, actual, encoded, n_enc, pending, n_pending = catalog.execute(_CHECK).fetchone()
    released = int(catalog.scalar(_RELEASED_BYTES) or 0)
    # a released recording the plan now holds in another tier still occupies its released bytes
    actual = max(int(actual), released)
    over = actual - budget if budget is not None else 0
    return BudgetCheck(budget=budget, planned=int(planned), actual=actual, encoded=int(encoded),
                       encoded_recordings=int(n_enc), pending=int(pending), pending_recordings=int(n_pending),
                       released=released, over_by=over, fits=budget is None or actual <= budget)
