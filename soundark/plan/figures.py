"""Coverage figures of a plan: what share of listens a number of bytes or recordings holds.

Two curves, both cumulative shares of listens (weight):

* **vs bytes**: the greedy path of the selection (keeps and upgrades in the
  order the plan buys them, by value per byte), x = bytes spent, y = share of
  listens kept (and share of value: listens weighted by tier). Reading the
  curve at a budget gives what that budget's plan keeps.
* **vs recordings**: recordings by rank (most listened first), x = how many.

Curves are sampled (linear and logarithmic positions, a few hundred points):
a chart needs no more, and the figures are stored as JSON in ``plan_run``.
Sums are float64 (listens) and int64 (bytes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from soundark.plan.coverage import OPUS, ORIGINAL, SKIP, TIER_NAMES, Selection, sample_positions


def _share(x: float, total: float) -> float:
    return float(x / total) if total > 0 else 0.0


def _tier_table(sel: Selection, weight: np.ndarray, has_audio: np.ndarray | None,
                seconds: np.ndarray | None) -> dict[str, Any]:
    table = {}
    for code, name in ((ORIGINAL, "original"), (OPUS, "opus75"), (SKIP, "skip")):
        mask = sel.tier == code
        row = {"recordings": int(np.count_nonzero(mask)),
               "bytes": int(sel.est_bytes.sum(dtype=np.int64, where=mask)),
               "listens": float(weight.sum(dtype=np.float64, where=mask))}
        if row["recordings"]:  # what the tier holds: the most and least listened in it
            row["listens_max"] = float(weight.max(where=mask, initial=0.0))
            row["listens_min"] = float(weight.min(where=mask, initial=np.inf))
        if seconds is not None:
            row["hours"] = float(seconds.sum(dtype=np.float64, where=mask)) / 3600
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


def _by_position(values: np.ndarray, position: np.ndarray, dtype: type) -> np.ndarray:
    """values re-ordered so that out[position[i] - 1] = values[i]."""
    out = np.empty(values.size, dtype=dtype)
    out[position - 1] = values
    return out


def compute_figures(sel: Selection, weight: np.ndarray, budget: int | None,
                    has_audio: np.ndarray | None = None, seconds: np.ndarray | None = None,
                    context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every figure ``soundark report`` shows, as plain JSON-able values.

    *seconds*: duration of each row (for hours kept); *context*: the plan's
    settings and weight signals, stored as they are (policy, opus_listen_value,
    original_top, signal).
    """
    weight = np.asarray(weight, dtype=np.float64)
    n = weight.size
    total = float(weight.sum(dtype=np.float64))
    kept = sel.tier != SKIP
    covered = float(weight.sum(dtype=np.float64, where=kept))
    w_rank = _by_position(weight, sel.rank, np.float64)
    np.cumsum(w_rank, out=w_rank)
    at_rank = sample_positions(n)
    c = sel.curve
    figures = {
        "recordings": n,
        "kept": sel.n_kept,
        "keepable": sel.n_keepable,
        "budget": budget,
        "bytes": int(sel.est_bytes.sum(dtype=np.int64)),
        "bytes_cheapest_all": int(sel.min_bytes.sum(dtype=np.int64)),
        "bytes_best_all": int(c.bytes[-1]) if c.bytes.size else 0,
        "bytes_released": sel.locked_bytes,
        "listens_total": total,
        "listens_covered": covered,
        "share_covered": _share(covered, total),
        "value_kept": sel.value_kept,
        "share_value": _share(sel.value_kept, total),
        "tiers": _tier_table(sel, weight, has_audio, seconds),
        "top": _top_table(w_rank, total),
        "curve_bytes": {"recordings": c.steps.tolist(), "bytes": c.bytes.tolist(),
                        "share": [_share(x, total) for x in c.listens],
                        "value": [_share(x, total) for x in c.value]},
        "curve_recordings": {"recordings": at_rank.tolist(),
                             "share": [_share(x, total) for x in w_rank[at_rank - 1]]},
        "tier_names": list(TIER_NAMES),
    }
    if seconds is not None:
        figures["hours_total"] = float(seconds.sum(dtype=np.float64)) / 3600
        figures["hours_kept"] = float(seconds.sum(dtype=np.float64, where=kept)) / 3600
    figures.update(context or {})
    return figures
