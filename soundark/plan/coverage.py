"""Choose a tier for every recording under a byte budget: columns in, columns out.

The selection is a **multiple-choice knapsack** (one tier per recording,
maximise the value kept under a byte budget) solved greedily, on whole numpy
columns, never row by row. A listen kept as the ``original`` is worth 1, a
listen kept as ``opus75`` is worth ``opus_value`` (default 0.9: a re-encode
loses a little), a skipped one 0.

Each recording's options (skip, opus75, original) are reduced to their upper
convex hull in the (bytes, value) plane: an option that costs more and is
worth no more is dropped (an original no larger than its Opus estimate
replaces the Opus), and so is an option below the line joining its
neighbours (when ``opus_value x original_bytes < opus_bytes`` the original is
the better buy per byte and opus75 is never offered). What is left is one or
two **increments** per recording: "keep it" (cheapest hull point) and "upgrade
it" (the next one), each with incremental value / incremental bytes. All
increments are sorted once by that density, descending, and bought in that
order until the next one does not fit: the plan is a prefix of one order ("the
budget line is drawn once"; nothing past it is cherry-picked), and reading the
cumulative curve at any budget gives the plan for that budget.

Ties: keep-increments come before upgrade-increments of the same density
(so a zero-listen recording is kept before any zero-value upgrade), keeps by
position (the caller passes recording-key order), upgrades by rank (most
listened first, so a zero-listen recording never gets its original before a
listened one).

The ``popular-originals`` policy is the simple rule large archives follow:
the recordings holding the top ``original_top`` share of listens are planned
as ``original`` where they have a keepable source, the rest as ``opus75``;
recordings are then bought by listens per byte of that planned tier.

Sort keys are packed into one ``uint64`` each (value bits above, the row
position below) and sorted in place: an unsigned sort is several times faster
than an argsort and breaks ties by position for free. The value keeps the top
``64 - log2(n)`` bits of the float64 (for 256M rows: 35 bits, a relative
resolution of ~1e-7; two densities closer than that rank by position).
Cumulative sums are int64 (bytes) and float64 (listens): float32 sums were
measured to be 10x off at this scale (shared/DEPENDENCIES.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ORIGINAL, OPUS, SKIP = 0, 1, 2
TIER_NAMES = ("original", "opus75", "skip")
POLICIES = ("value", "popular-originals")
CURVE_POINTS = 400
_CHUNK = 1 << 22  # rows per block where a block loop saves a full-size temporary


@dataclass(frozen=True)
class SelectionOptions:
    """What the selection may do.

    ``budget``: bytes, None = no limit; ``opus_value``: worth of a listen kept as
    opus75 relative to the original (0 < v <= 1); ``policy``: ``value`` (the
    knapsack) or ``popular-originals``; ``original_top``: for that policy, the
    share of listens (0..1) whose recordings keep their original.
    """

    budget: int | None = None
    allow_original: bool = True
    allow_opus: bool = True
    opus_value: float = 0.9
    policy: str = "value"
    original_top: float = 0.5


@dataclass
class Curve:
    """The greedy path sampled: after buying ``steps`` increments, ``bytes`` spent,
    ``listens`` kept (any tier) and ``value`` kept (listens weighted by tier)."""

    steps: np.ndarray
    bytes: np.ndarray
    listens: np.ndarray
    value: np.ndarray


@dataclass
class Selection:
    """The plan as columns, aligned with the input columns.

    ``tier``: int8 codes (0 original, 1 opus75, 2 skip); ``est_bytes``: bytes of
    the chosen tier (0 for skip); ``min_bytes``: bytes of the cheapest hull point
    (0 when nothing may be kept); ``rank``: 1 = most listened; ``n_kept``: rows
    not skipped; ``curve``: the sampled greedy path; ``locked_bytes``: bytes of
    rows whose tier was fixed by the caller (already released).
    """

    tier: np.ndarray
    est_bytes: np.ndarray
    min_bytes: np.ndarray
    rank: np.ndarray
    n_kept: int
    n_keepable: int
    curve: Curve
    value_total: float = 0.0
    value_kept: float = 0.0
    locked_bytes: int = 0
    extra: dict = field(default_factory=dict)


def _index_bits(n: int) -> int:
    return max(1, int(n - 1).bit_length())


_SIGN = np.uint64(1 << 63)


def _sort_descending(packed: np.ndarray, last: np.ndarray | None, out_dtype: type | None,
                     keep_keys: bool = False) -> np.ndarray:
    """Sort the float64 bit patterns in *packed* (consumed) descending; positions out.

    A non-negative float64's bit pattern orders like the float; inverting it
    makes an ascending unsigned sort descending. Inverting sets the sign bit of
    every row; clearing it frees that bit to push the rows where *last* (a mask
    over the first ``last.size`` rows) is true behind all others. The low bits
    carry the position, so equal values keep position order. ``out_dtype`` None
    returns *packed* itself (no second full-size column at the peak); ``keep_keys``
    leaves the (truncated) value bits in it too.
    """
    n = packed.size
    bits = _index_bits(n)
    np.invert(packed, out=packed)
    packed ^= _SIGN
    if last is not None:
        head = packed[:last.size]
        head[last] |= _SIGN
    packed >>= np.uint64(bits)
    packed <<= np.uint64(bits)
    for start in range(0, n, _CHUNK):  # packed[i] |= i, without a full-size arange
        stop = min(n, start + _CHUNK)
        packed[start:stop] |= np.arange(start, stop, dtype=np.uint64)
    packed.sort()
    if keep_keys:
        return packed
    packed &= np.uint64((1 << bits) - 1)
    return packed if out_dtype is None else packed.astype(out_dtype)


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


@dataclass
class _Options:
    """Each row's hull: the keep increment and, where ``two``, an upgrade to original.

    ``keep``: unsigned bytes of the cheapest hull point (>= 1; meaningless where not
    keepable) with ``flag`` (the top bit) set where that point is the original: one
    column, so the walk gathers one value per increment, not two.
    """

    keep: np.ndarray
    flag: np.uint64 | np.uint32
    keepable: np.ndarray | None  # bool; None = every row
    two: np.ndarray           # bool: an upgrade increment exists
    listens_density: bool = False  # densities are listens per byte (popular-originals), not value

    def is_original(self, rows: np.ndarray) -> np.ndarray:
        return (self.keep[rows] & self.flag) != 0

    def keep_bytes(self) -> np.ndarray:
        """The bytes without the flag (consumes the column)."""
        self.keep &= ~self.flag
        return self.keep


def _top(values: np.ndarray) -> int:
    return int(values.max()) if values.size else 0


def _unsigned(values: np.ndarray, top: int) -> tuple[np.ndarray, np.uint64 | np.uint32]:
    """A copy of *values* as an unsigned column with a free top bit, and that bit: uint32 while
    every size (up to *top*) is under 2 GiB (half the memory of 64 bits), else uint64."""
    if top < (1 << 31):
        return values.astype(np.uint32), np.uint32(1 << 31)
    return values.astype(np.uint64), np.uint64(1 << 63)


def _hull(opus_bytes: np.ndarray, original_bytes: np.ndarray, opts: SelectionOptions) -> _Options:
    n = opus_bytes.size
    orig_ok = original_bytes > 0 if opts.allow_original else np.zeros(n, dtype=bool)
    if not opts.allow_opus:
        keep, flag = _unsigned(original_bytes, _top(original_bytes))
        np.maximum(keep, 1, out=keep)
        keep |= flag
        return _Options(keep, flag, orig_ok, np.zeros(n, dtype=bool))
    keep, flag = _unsigned(opus_bytes, max(_top(opus_bytes), _top(original_bytes)))
    # at equal size the original wins: same cost, no generational loss; and an original that is
    # worth more per byte than its Opus (v x original < opus) replaces the Opus on the hull
    direct = orig_ok & (original_bytes <= opus_bytes)
    if opts.policy == "value":
        for start in range(0, n, _CHUNK):  # blocks: no full-size float64 temporary
            s = slice(start, min(n, start + _CHUNK))
            direct[s] |= orig_ok[s] & (opts.opus_value * original_bytes[s].astype(np.float64) < opus_bytes[s])
    np.copyto(keep, original_bytes, where=direct, casting="unsafe")
    # a zero-byte estimate would make value/bytes infinite; nothing real is that small
    np.maximum(keep, 1, out=keep)
    keep[direct] |= flag
    two = orig_ok & ~direct if opts.policy == "value" else np.zeros(n, dtype=bool)
    return _Options(keep, flag, None, two)


def _top_share_rows(rank_order: np.ndarray, weight: np.ndarray, share: float) -> np.ndarray:
    """Mask of the fewest most-listened rows that hold at least *share* of all listens."""
    top = np.zeros(weight.size, dtype=bool)
    total = float(weight.sum(dtype=np.float64))
    if total <= 0 or share <= 0:
        return top
    target, spent = share * total, 0.0
    for start in range(0, rank_order.size, _CHUNK):
        rows = rank_order[start:start + _CHUNK]
        cum = np.cumsum(weight[rows], dtype=np.float64)
        cum += spent
        upto = int(np.searchsorted(cum, target * (1 - 1e-12), side="left"))
        top[rows[:upto + 1]] = True
        if upto < rows.size:
            break
        spent = float(cum[-1])
    top &= weight > 0
    return top


def _popular_originals(h: _Options, weight: np.ndarray, rank_order: np.ndarray,
                       original_bytes: np.ndarray, opts: SelectionOptions) -> None:
    """The simple rule: the top share of listens planned as original where keepable."""
    # bought by listens per byte of the planned tier: the tier was decided by the rule, not by value
    h.listens_density = True
    if not (opts.allow_original and opts.allow_opus):
        return
    top = _top_share_rows(rank_order, weight, opts.original_top)
    top &= original_bytes > 0
    np.copyto(h.keep, original_bytes, where=top, casting="unsafe")
    h.keep[top] |= h.flag


def _densities(weight: np.ndarray, h: _Options, two_rows: np.ndarray, opus_bytes: np.ndarray,
               original_bytes: np.ndarray, v: float) -> tuple[np.ndarray, np.ndarray]:
    """(packed float64 densities: the n keep increments, then the upgrades in *two_rows* order;
    the bytes of each upgrade)."""
    n = weight.size
    packed = np.empty(n + two_rows.size, dtype=np.uint64)
    d = packed.view(np.float64)
    for start in range(0, n, _CHUNK):
        s = slice(start, min(n, start + _CHUNK))
        code = h.keep[s]
        np.divide(weight[s], code & ~h.flag, out=d[s])
        if not h.listens_density:
            d[s] *= np.where((code & h.flag) != 0, 1.0, v)
    up_bytes = np.empty(two_rows.size, dtype=h.keep.dtype)  # sizes fit the keep column's dtype
    for start in range(0, two_rows.size, _CHUNK):  # blocks: no upgrade-sized float64 temporaries
        rows = two_rows[start:start + _CHUNK]
        extra = original_bytes[rows].astype(np.int64) - opus_bytes[rows]
        up_bytes[start:start + rows.size] = extra
        np.divide(weight[rows] * (1.0 - v), extra, out=d[n + start:n + start + rows.size])
    return packed, up_bytes


@dataclass
class _Path:
    """The increments in buying order: the sorted packed keys (density bits above, increment id
    below: < n keep of that row, >= n upgrade of two_rows[id - n])."""

    packed: np.ndarray
    bits: int
    valid: int              # increments that may be bought (the rest are unkeepable or locked)
    two_rows: np.ndarray
    n: int

    def ids(self, start: int, stop: int) -> np.ndarray:
        return (self.packed[start:stop] & np.uint64((1 << self.bits) - 1)).astype(np.intp)

    def density(self, start: int, stop: int) -> np.ndarray:
        """The (truncated) value per byte of increments start..stop, from their sort keys."""
        high = ~np.uint64((1 << self.bits) - 1)
        t = self.packed[start:stop] & high
        t ^= _SIGN
        np.invert(t, out=t)
        t &= high
        return t.view(np.float64)

    def block(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, upgrade mask) of increments start..stop."""
        rows = self.ids(start, stop)
        up = rows >= self.n
        if up.any():
            rows[up] = self.two_rows[rows[up] - self.n]
        return rows, up


def _walk(path: _Path, h: _Options, up_bytes: np.ndarray, budget: int | None,
          v: float) -> tuple[int, Curve]:
    """(increments bought, sampled curve): one pass over the whole order, block by block.

    Each increment's gain is its density (read back from the sort key, ~1e-7 relative
    precision: only the sampled curve uses it) times its bytes, so the pass gathers one
    column per increment, as the bare argsort + cumsum floor does.
    """
    at = sample_positions(path.valid)
    curve = Curve(at, np.zeros(at.size, np.int64), np.zeros(at.size), np.zeros(at.size))
    bought = path.valid if budget is None else -1
    spent, listens, value = 0, 0.0, 0.0
    for start in range(0, path.valid, _CHUNK):
        stop = min(path.valid, start + _CHUNK)
        ids = path.ids(start, stop)
        up = ids >= path.n
        code = h.keep[np.where(up, 0, ids)]
        cost = (code & ~h.flag).astype(np.int64)
        cost[up] = up_bytes[ids[up] - path.n]  # (uint -> int64: upgrades cost > 0 bytes)
        factor = np.where((code & h.flag) != 0, 1.0, v)
        gain = path.density(start, stop) * cost  # value (or listens under popular-originals)
        if h.listens_density:
            kept, gain = gain, gain * factor
        else:
            kept = gain / factor
            kept[up] = 0.0
        np.cumsum(cost, out=cost)
        cost += spent
        if bought < 0 and cost[-1] > budget:
            bought = start + int(np.searchsorted(cost, budget, side="right"))
        np.cumsum(kept, out=kept)
        np.cumsum(gain, out=gain)
        k = (at > start) & (at <= stop)
        idx = at[k] - 1 - start
        curve.bytes[k], curve.listens[k], curve.value[k] = cost[idx], kept[idx] + listens, gain[idx] + value
        spent, listens, value = int(cost[-1]), listens + float(kept[-1]), value + float(gain[-1])
    return (path.valid if bought < 0 else bought), curve


def sample_positions(n: int, points: int = CURVE_POINTS) -> np.ndarray:
    """1-based counts at which to sample a cumulative curve of *n* items (always n itself)."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    lin = np.linspace(1, n, num=min(n, points // 2), dtype=np.float64)
    log = np.geomspace(1, n, num=min(n, points // 2))
    return np.unique(np.concatenate([np.rint(lin), np.rint(log), [n]]).astype(np.int64))


def _check(weight: np.ndarray, opus_bytes: np.ndarray, original_bytes: np.ndarray,
           opts: SelectionOptions) -> None:
    n = weight.size
    if not (opus_bytes.size == original_bytes.size == n):
        raise ValueError("select: columns differ in length")
    if opus_bytes.dtype != original_bytes.dtype or opus_bytes.dtype.kind not in "iu":
        raise ValueError("select: byte columns must share one integer dtype")
    if opts.budget is not None and opts.budget < 0:
        raise ValueError("select: negative budget")
    if not 0 < opts.opus_value <= 1:
        raise ValueError("select: opus_value must be in (0, 1]")
    if opts.policy not in POLICIES or not 0 <= opts.original_top <= 1:
        raise ValueError("select: unknown policy or original_top outside 0..1")


def _apply(tier: np.ndarray, path: _Path, bought: int, h: _Options) -> None:
    """Tiers of the first *bought* increments. A keep always comes before its upgrade (convex
    hull; at equal density keeps sort first); an upgrade is applied to kept rows only, in case
    float rounding on the convexity boundary put it a hair before its keep."""
    for start in range(0, bought, _CHUNK):
        rows, up = path.block(start, min(bought, start + _CHUNK))
        keep_rows = rows[~up]
        tier[keep_rows] = np.where(h.is_original(keep_rows), ORIGINAL, OPUS)
        up_rows = rows[up]
        tier[up_rows[tier[up_rows] == OPUS]] = ORIGINAL


def _whole_groups(tier: np.ndarray, path: _Path, bought: int, groups: np.ndarray,
                  locked: np.ndarray | None) -> None:
    """Drop the part of the group (album) the budget line cuts through."""
    if bought >= path.valid:
        return
    rows, up = path.block(bought, bought + 1)
    if up[0]:
        return
    cut = groups == groups[rows[0]]
    if locked is not None:
        cut &= locked < 0
    tier[cut] = SKIP


def select(weight: np.ndarray, opus_bytes: np.ndarray, original_bytes: np.ndarray,
           opts: SelectionOptions = SelectionOptions(), *, locked: np.ndarray | None = None,
           groups: np.ndarray | None = None) -> Selection:
    """The plan for columns given in tie-break order (recording-key order).

    *weight*: float64 >= 0 (listens or a fallback signal); *opus_bytes*: the
    opus75 size (estimate or real) of each row; *original_bytes*: the size of
    the source that may be kept as it is, 0 where none may. Unsigned 32-bit
    byte columns halve the memory of 64-bit ones and are enough for one
    recording. *locked*: int8 tier per row, -1 = free; a locked row (already
    released) keeps that tier and its bytes are spent first. *groups*: when
    given, the budget line never cuts a group (album) in two.
    """
    weight = np.asarray(weight, dtype=np.float64)
    _check(weight, opus_bytes, original_bytes, opts)
    n, v = weight.size, opts.opus_value
    rank_order = descending_order(weight)
    rank = _inverse(rank_order)
    h = _hull(opus_bytes, original_bytes, opts)
    if opts.policy == "popular-originals":
        _popular_originals(h, weight, rank_order, original_bytes, opts)
    free = h.keepable if locked is None else (locked < 0) & (True if h.keepable is None else h.keepable)
    two = h.two if free is None else h.two & free
    two_rows = rank_order[two[rank_order]]  # upgrades tie in rank order: the most listened first
    del rank_order, two
    h.two = None
    locked_bytes, budget = _locked_bytes(locked, opus_bytes, original_bytes), opts.budget
    if budget is not None:
        budget = max(0, budget - locked_bytes)
    packed, up_bytes = _densities(weight, h, two_rows, opus_bytes, original_bytes, v)
    n_free = n if free is None else int(np.count_nonzero(free))
    _sort_descending(packed, None if n_free == n else ~free, None, keep_keys=True)
    del free
    path = _Path(packed, _index_bits(packed.size), n_free + two_rows.size, two_rows, n)
    bought, curve = _walk(path, h, up_bytes, budget, v)
    del up_bytes
    tier = np.full(n, SKIP, dtype=np.int8)
    _apply(tier, path, bought, h)
    if groups is not None:
        _whole_groups(tier, path, bought, groups, locked)
    del path, packed
    if locked is not None:
        tier[locked >= 0] = locked[locked >= 0]
    return _finish(tier, rank, h, weight, opus_bytes, original_bytes, curve, locked_bytes, v)


def _locked_bytes(locked: np.ndarray | None, opus_bytes: np.ndarray, original_bytes: np.ndarray) -> int:
    if locked is None:
        return 0
    return (int(opus_bytes.sum(dtype=np.int64, where=locked == OPUS))
            + int(original_bytes.sum(dtype=np.int64, where=locked == ORIGINAL)))


def _finish(tier: np.ndarray, rank: np.ndarray, h: _Options, weight: np.ndarray, opus_bytes: np.ndarray,
            original_bytes: np.ndarray, curve: Curve, locked_bytes: int, v: float) -> Selection:
    n = tier.size
    est = np.zeros(n, dtype=opus_bytes.dtype)
    is_orig = tier == ORIGINAL
    np.copyto(est, original_bytes, where=is_orig, casting="unsafe")
    is_opus = tier == OPUS
    np.copyto(est, opus_bytes, where=is_opus, casting="unsafe")
    value_kept = float(weight.sum(dtype=np.float64, where=is_orig)) + v * float(
        weight.sum(dtype=np.float64, where=is_opus))
    del is_orig, is_opus
    min_bytes = h.keep_bytes()
    n_keepable = n if h.keepable is None else int(np.count_nonzero(h.keepable))
    if n_keepable < n:
        min_bytes[~h.keepable] = 0
    value_total = float(weight.sum(dtype=np.float64))  # every listen kept as the original
    return Selection(tier=tier, est_bytes=est, min_bytes=min_bytes, rank=rank,
                     n_kept=int(np.count_nonzero(tier != SKIP)), n_keepable=n_keepable, curve=curve,
                     value_total=value_total, value_kept=value_kept, locked_bytes=locked_bytes)
