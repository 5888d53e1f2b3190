"""Coverage figures of a plan: what share of listens a number of bytes or recordings holds.

Two curves, both cumulative shares of listens (weight):

* **vs bytes**: recordings in the order the plan buys them (weight per byte of
  their cheapest tier), x = bytes spent. Reading the curve at a budget gives
  the share of listens that budget covers.
* **vs recordings**: recordings by rank (most listened first), x = how many.

Curves are sampled (linear and logarithmic positions, a few hundred points):
a chart needs no more, and the figures are stored as JSON in ``plan_run``.
Sums are float64 (listens) and int64 (bytes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from soundark.plan.coverage import ORIGINAL, OPUS, SKIP, TIER_NAMES, Selection

CURVE_POINTS = 400


def _sample_positions(n: int, points: int = CURVE_POINTS) -> np.ndarray:
    """1-based counts at which to sample a cumulative curve of *n* items (always n itself)."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    lin = np.linspace(1, n, num=min(n, points // 2), dtype=np.float64)
    log = np.geomspace(1, n, num=min(n, points // 2))
    return np.unique(np.concatenate([np.rint(lin), np.rint(log), [n]]).astype(np.int64))


def _by_position(values: np.ndarray, position: np.ndarray, dtype: type) -> np.ndarray:
    """values re-ordered so that out[position[i] - 1] = values[i]."""
    out = np.empty(values.size, dtype=dtype)
    out[position - 1] = values
    return out


def _share(x: float, total: float) -> float:
    return float(x / total) if total > 0 else 0.0


def _tier_table(sel: Selection, weight: np.ndarray, has_audio: np.ndarray | None) -> dict[str, Any]:
    table = {}
    for code, name in ((ORIGINAL, "original"), (OPUS, "opus75"), (SKIP, "skip")):
        mask = sel.tier == code
        row = {"recordings": int(np.count_nonzero(mask)),
               "bytes": int(sel.est_bytes.sum(dtype=np.int64, where=mask)),
               "listens": float(weight.sum(dtype=np.float64, where=mask))}
        if has_audio is not None and code != SKIP:
            row["without_audio"] = int(np.count_nonzero(mask & ~has_audio))
        table[name] = row
    return table


def _top_table(cum_by_rank: np.ndarray, total: float) -> list[dict[str, Any]]:
    """"The top N recordings hold X % of listens" for N = 1, 10, 100, ... and 1 %, 10 %, 50 %."""
    n = cum_by_rank.size
    counts = {10**k for k in range(0, 13) if 10**k <= n}
    counts |= {max(1, round(n * f)) for f in (0.01, 0.1, 0.5)} if n else set()
    return [{"recordings": c, "share_of_recordings": c / n, "share": _share(cum_by_rank[c - 1], total)}
            for c in sorted(counts)]


def compute_figures(sel: Selection, weight: np.ndarray, budget: int | None,
                    has_audio: np.ndarray | None = None) -> dict[str, Any]:
    """Every figure ``soundark report`` shows, as plain JSON-able values."""
    weight = np.asarray(weight, dtype=np.float64)
    n = weight.size
    total = float(weight.sum(dtype=np.float64))
    kept = sel.tier != SKIP
    covered = float(weight.sum(dtype=np.float64, where=kept))
    w_pick = _by_position(weight, sel.pick, np.float64)[:sel.n_keepable]
    np.cumsum(w_pick, out=w_pick)
    b_pick = np.cumsum(_by_position(sel.min_bytes, sel.pick, np.int64)[:sel.n_keepable])
    w_rank = _by_position(weight, sel.rank, np.float64)
    np.cumsum(w_rank, out=w_rank)
    at = _sample_positions(sel.n_keepable)
    at_rank = _sample_positions(n)
    return {
        "recordings": n,
        "kept": int(np.count_nonzero(kept)),
        "keepable": sel.n_keepable,
        "budget": budget,
        "bytes": int(sel.est_bytes.sum(dtype=np.int64)),
        "bytes_cheapest_all": int(b_pick[-1]) if b_pick.size else 0,
        "listens_total": total,
        "listens_covered": covered,
        "share_covered": _share(covered, total),
        "tiers": _tier_table(sel, weight, has_audio),
        "top": _top_table(w_rank, total),
        "curve_bytes": {"recordings": at.tolist(), "bytes": b_pick[at - 1].tolist() if at.size else [],
                        "share": [_share(x, total) for x in w_pick[at - 1]]},
        "curve_recordings": {"recordings": at_rank.tolist(),
                             "share": [_share(x, total) for x in w_rank[at_rank - 1]]},
        "tier_names": list(TIER_NAMES),
    }
