"""Choose a tier for every recording under a byte budget: columns in, columns out.

The selection is a greedy answer to a 0/1 knapsack (maximise covered listens
under a byte budget), done on whole numpy columns, never row by row:

1. **Cover listens.** Every recording costs the bytes of its cheapest allowed
   tier. Recordings are taken by descending weight per byte, ties broken by
   position (the caller passes the columns in recording-key order), until the
   next one no longer fits: the kept set is a prefix of that order ("the
   budget line is drawn once"; nothing past it is cherry-picked, so the plan
   is easy to explain and to reproduce).
2. **Upgrade.** What is left of the budget upgrades kept recordings from
   ``opus75`` to ``original`` (the source kept byte for byte), most listened
   first (ties by key), again as a prefix that stops at the first upgrade
   that no longer fits.

Without a budget everything that can be kept is kept, and every recording
that may be kept as ``original`` is.

Two sort keys are packed into one ``uint64`` each (value bits above, the row
position below) and sorted in place: an unsigned sort is several times faster
than an argsort and breaks ties by key for free. The value keeps the top
``64 - log2(n)`` bits of the float64 (for 256M rows: 36 bits, a relative
resolution of ~1e-7; two recordings closer than that rank by key).
Cumulative sums are int64 (bytes) and float64 (listens): float32 sums were
measured to be 10x off at this scale (shared/DEPENDENCIES.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ORIGINAL, OPUS, SKIP = 0, 1, 2
TIER_NAMES = ("original", "opus75", "skip")
_CHUNK = 1 << 24  # rows per block where a block loop saves a full-size temporary


@dataclass(frozen=True)
class SelectionOptions:
    """What the selection may do: the byte budget (None = no limit) and the allowed tiers."""

    budget: int | None = None
    allow_original: bool = True
    allow_opus: bool = True


@dataclass
class Selection:
    """The plan as columns, aligned with the input columns.

    ``tier``: int8 codes (0 original, 1 opus75, 2 skip); ``est_bytes``: bytes of
    the chosen tier (0 for skip); ``min_bytes``: bytes of the cheapest allowed
    tier (0 when nothing may be kept); ``rank``: 1 = most listened; ``pick``: 1 =
    first bought in the greedy order; ``n_kept``: how many the budget covers.
    """

    tier: np.ndarray
    est_bytes: np.ndarray
    min_bytes: np.ndarray
    rank: np.ndarray
    pick: np.ndarray
    n_kept: int
    n_keepable: int


def _index_bits(n: int) -> int:
    return max(1, int(n - 1).bit_length())


_SIGN = np.uint64(1 << 63)


def _sort_descending(packed: np.ndarray, last: np.ndarray | None, out_dtype: type) -> np.ndarray:
    """Sort the float64 bit patterns in *packed* (consumed) descending; positions out.

    A non-negative float64's bit pattern orders like the float; inverting it
    makes an ascending unsigned sort descending. Inverting sets the sign bit of
    every row; clearing it frees that bit to push the rows in *last* behind all
    others. The low bits carry the position, so equal values keep position order.
    """
    n = packed.size
    bits = _index_bits(n)
    np.invert(packed, out=packed)
    packed ^= _SIGN
    if last is not None:
        packed[last] |= _SIGN
    packed >>= np.uint64(bits)
    packed <<= np.uint64(bits)
    for start in range(0, n, _CHUNK):  # packed[i] |= i, without a full-size arange
        stop = min(n, start + _CHUNK)
        packed[start:stop] |= np.arange(start, stop, dtype=np.uint64)
    packed.sort()
    packed &= np.uint64((1 << bits) - 1)
    return packed.astype(out_dtype)


def descending_order(values: np.ndarray, last: np.ndarray | None = None) -> np.ndarray:
    """Positions sorted by *values* (float64 >= 0) descending, ties by position ascending;
    rows where *last* is true come after every other row."""
    values = np.asarray(values, dtype=np.float64)
    if values.size and values.min() < 0:
        raise ValueError("descending_order: negative value")
    packed = values.view(np.uint64).copy()
    return _sort_descending(packed, last, _positions_dtype(values.size))


def _positions_dtype(n: int) -> type:
    return np.uint32 if n < 2**32 - 1 else np.int64


def _inverse(order: np.ndarray) -> np.ndarray:
    """``inv[order[k]] = k + 1`` (1-based positions), block by block."""
    inv = np.empty(order.size, dtype=order.dtype)
    for start in range(0, order.size, _CHUNK):
        stop = min(order.size, start + _CHUNK)
        inv[order[start:stop]] = np.arange(start + 1, stop + 1, dtype=order.dtype)
    return inv


def _cheapest(opus_bytes: np.ndarray, original_bytes: np.ndarray,
              opts: SelectionOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(min_bytes, starts_original, keepable): the cheapest allowed tier of each row."""
    if opts.allow_original:
        orig_ok = original_bytes > 0
    else:
        orig_ok = np.zeros(original_bytes.size, dtype=bool)
    if opts.allow_opus:
        min_bytes = opus_bytes.copy()
        # at equal size the original wins: same cost, no generational loss
        starts_original = orig_ok & (original_bytes <= opus_bytes)
        np.copyto(min_bytes, original_bytes, where=starts_original, casting="unsafe")
        keepable = np.ones(min_bytes.size, dtype=bool)
    else:
        min_bytes = original_bytes.copy()
        starts_original = orig_ok
        keepable = orig_ok
    # a zero-byte estimate would make weight/bytes infinite; nothing real is that small
    np.maximum(min_bytes, 1, out=min_bytes)
    return min_bytes, starts_original, keepable


def _prefix_that_fits(rows_in_order: np.ndarray, cost: np.ndarray, budget: int) -> tuple[int, int]:
    """(how many of *rows_in_order* fit in *budget* as a prefix, their bytes), block by block
    so that a small budget stops early and no full-size cumulative column is held."""
    spent = 0
    for start in range(0, rows_in_order.size, _CHUNK):
        block = rows_in_order[start:start + _CHUNK]
        cum = np.cumsum(cost[block], dtype=np.int64)
        cum += spent
        fits = int(np.searchsorted(cum, budget, side="right"))
        if fits < block.size:
            return start + fits, int(cum[fits - 1]) if fits else spent
        spent = int(cum[-1])
    return rows_in_order.size, spent


def _greedy(weight: np.ndarray, min_bytes: np.ndarray, keepable: np.ndarray,
            budget: int | None) -> tuple[np.ndarray, int, int, int]:
    """(pick, n_kept, n_keepable, bytes_spent) of the cover-listens phase."""
    n_keepable = int(np.count_nonzero(keepable))
    density = np.divide(weight, min_bytes, dtype=np.float64)
    last = None if n_keepable == keepable.size else ~keepable
    order = _sort_descending(density.view(np.uint64), last, _positions_dtype(weight.size))
    del density
    pick = _inverse(order)
    if budget is None:
        n_kept = n_keepable
        spent = int(min_bytes.sum(dtype=np.int64, where=keepable))
    else:
        n_kept, spent = _prefix_that_fits(order[:n_keepable], min_bytes, budget)
    return pick, n_kept, n_keepable, spent


def _upgrade(rank_order: np.ndarray, candidate: np.ndarray, opus_bytes: np.ndarray,
             original_bytes: np.ndarray, left: int | None) -> np.ndarray:
    """Rows upgraded to original: candidates in rank order while the extra bytes fit."""
    if left is None:
        return np.flatnonzero(candidate)
    chosen = []
    spent = 0
    for start in range(0, rank_order.size, _CHUNK):
        rows = rank_order[start:start + _CHUNK]
        rows = rows[candidate[rows]]
        cum = np.subtract(original_bytes[rows], opus_bytes[rows], dtype=np.int64)
        np.cumsum(cum, out=cum)
        cum += spent
        fits = int(np.searchsorted(cum, left, side="right"))
        chosen.append(rows[:fits])
        if fits < rows.size:
            break
        if rows.size:
            spent = int(cum[-1])
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def select(weight: np.ndarray, opus_bytes: np.ndarray, original_bytes: np.ndarray,
           opts: SelectionOptions = SelectionOptions()) -> Selection:
    """The plan for columns given in recording-key order.

    *weight*: float64 >= 0 (listens or mapped popularity); *opus_bytes*: the
    opus75 estimate of each row; *original_bytes*: the size of the source that
    may be kept as it is, 0 where none may. Unsigned 32-bit byte columns halve
    the memory of 64-bit ones and are enough for one recording.
    """
    weight = np.asarray(weight, dtype=np.float64)
    n = weight.size
    if not (opus_bytes.size == original_bytes.size == n):
        raise ValueError("select: columns differ in length")
    if opus_bytes.dtype != original_bytes.dtype or opus_bytes.dtype.kind not in "iu":
        raise ValueError("select: byte columns must share one integer dtype")
    if opts.budget is not None and opts.budget < 0:
        raise ValueError("select: negative budget")
    min_bytes, starts_original, keepable = _cheapest(opus_bytes, original_bytes, opts)
    pick, n_kept, n_keepable, spent = _greedy(weight, min_bytes, keepable, opts.budget)
    tier = np.full(n, SKIP, dtype=np.int8)
    kept = pick <= n_kept
    tier[kept] = OPUS
    kept &= starts_original
    tier[kept] = ORIGINAL
    del kept, starts_original
    rank_order = descending_order(weight)
    rank = _inverse(rank_order)
    if opts.allow_original and opts.allow_opus:
        candidate = tier == OPUS
        candidate &= original_bytes > 0
        left = None if opts.budget is None else opts.budget - spent
        tier[_upgrade(rank_order, candidate, opus_bytes, original_bytes, left)] = ORIGINAL
        del candidate
    del rank_order
    est = np.zeros(n, dtype=min_bytes.dtype)
    np.copyto(est, original_bytes, where=tier == ORIGINAL, casting="unsafe")
    np.copyto(est, opus_bytes, where=tier == OPUS, casting="unsafe")
    if n_keepable < n:
        min_bytes[~keepable] = 0
    return Selection(tier=tier, est_bytes=est, min_bytes=min_bytes, rank=rank, pick=pick,
                     n_kept=n_kept, n_keepable=n_keepable)
