"""The column selection of the plan (soundark.plan.coverage), against hand-computed cases
and against a plain-Python reference of the same rules."""

from __future__ import annotations

import numpy as np
import pytest

from soundark.plan import coverage
from soundark.plan.coverage import OPUS, ORIGINAL, SKIP, SelectionOptions, descending_order, select
from soundark.plan.figures import compute_figures

# weight, opus bytes, original bytes (0 = may not be kept as it is)
W = np.array([10.0, 5.0, 5.0, 0.0, 1.0])
OP = np.array([100, 100, 50, 100, 10], dtype=np.uint32)
OR = np.array([0, 150, 0, 0, 5], dtype=np.uint32)
# by hand, opus listens worth v = 0.9:
#   r0 opus only: keep 100 B, density 0.9 * 10 / 100 = .09
#   r1 opus 100 then original 150 (0.9 * 150 >= 100: both on the hull): keep .045, upgrade 50 B, .1 * 5 / 50 = .01
#   r2 opus only: keep 50 B, .09 (tie with r0: position)
#   r3 0 listens: keep 100 B, density 0
#   r4 original 5 <= opus 10: the original directly, 1 / 5 = .2
# buying order r4, r0, r2, r1, r1 upgrade, r3; cumulative 5, 105, 155, 255, 305, 405


def tiers(budget: int | None, **kw: object) -> list[int]:
    return select(W, OP, OR, SelectionOptions(budget=budget, **kw)).tier.tolist()


def test_hand_computed_order_and_rank() -> None:
    sel = select(W, OP, OR, SelectionOptions(budget=None))
    assert sel.curve.bytes.tolist() == [5, 105, 155, 255, 305, 405]
    assert sel.curve.value.tolist() == pytest.approx([1, 10, 14.5, 19, 19.5, 19.5])
    assert sel.rank.tolist() == [1, 2, 3, 5, 4]  # r1 and r2 tie on 5 listens: key order
    assert sel.min_bytes.tolist() == [100, 100, 50, 100, 5]


@pytest.mark.parametrize("budget, expected", [
    (0, [SKIP, SKIP, SKIP, SKIP, SKIP]),
    (4, [SKIP, SKIP, SKIP, SKIP, SKIP]),            # r4's size - 1
    (5, [SKIP, SKIP, SKIP, SKIP, ORIGINAL]),        # exact
    (6, [SKIP, SKIP, SKIP, SKIP, ORIGINAL]),        # + 1
    (104, [SKIP, SKIP, SKIP, SKIP, ORIGINAL]),
    (105, [OPUS, SKIP, SKIP, SKIP, ORIGINAL]),
    (154, [OPUS, SKIP, SKIP, SKIP, ORIGINAL]),
    (155, [OPUS, SKIP, OPUS, SKIP, ORIGINAL]),
    (254, [OPUS, SKIP, OPUS, SKIP, ORIGINAL]),
    (255, [OPUS, OPUS, OPUS, SKIP, ORIGINAL]),
    (304, [OPUS, OPUS, OPUS, SKIP, ORIGINAL]),      # upgrade of r1 costs 50: 255 + 50 = 305
    (305, [OPUS, ORIGINAL, OPUS, SKIP, ORIGINAL]),
    (306, [OPUS, ORIGINAL, OPUS, SKIP, ORIGINAL]),
    (355, [OPUS, ORIGINAL, OPUS, SKIP, ORIGINAL]),  # the listened upgrade comes before the 0-listen r3
    (404, [OPUS, ORIGINAL, OPUS, SKIP, ORIGINAL]),
    (405, [OPUS, ORIGINAL, OPUS, OPUS, ORIGINAL]),
    (None, [OPUS, ORIGINAL, OPUS, OPUS, ORIGINAL]),
])
def test_budget_steps(budget: int | None, expected: list[int]) -> None:
    sel = select(W, OP, OR, SelectionOptions(budget=budget))
    assert sel.tier.tolist() == expected
    if budget is not None:
        assert int(sel.est_bytes.sum()) <= budget
    est = np.where(sel.tier == ORIGINAL, OR, np.where(sel.tier == OPUS, OP, 0))
    assert sel.est_bytes.tolist() == est.tolist()


@pytest.mark.parametrize("v, budget, expected", [
    # v = 1.0: an upgrade adds no value; it is bought only after every keep, zero-listen r3 included
    (1.0, 355, [OPUS, OPUS, OPUS, OPUS, ORIGINAL]),
    (1.0, 404, [OPUS, OPUS, OPUS, OPUS, ORIGINAL]),
    (1.0, 405, [OPUS, ORIGINAL, OPUS, OPUS, ORIGINAL]),
    # v = 0.5: 0.5 x 150 < 100, so r1's opus is off the hull: r1 is kept as original (5 / 150 = .033)
    # or not at all; order r4 .2, r0 .05, r2 .05, r1 original .033, r3; cumulative 5, 105, 155, 305, 405
    (0.5, 304, [OPUS, SKIP, OPUS, SKIP, ORIGINAL]),
    (0.5, 305, [OPUS, ORIGINAL, OPUS, SKIP, ORIGINAL]),
    (0.5, 306, [OPUS, ORIGINAL, OPUS, SKIP, ORIGINAL]),
])
def test_opus_listen_value(v: float, budget: int, expected: list[int]) -> None:
    assert tiers(budget, opus_value=v) == expected


def test_zero_listens_never_upgrade_before_listened_ones() -> None:
    # two identical lossy sources, one with listens: at v = 1 both upgrades are worth 0;
    # the listened one is still upgraded first (upgrades tie in rank order), whatever the key order
    w = np.array([0.0, 3.0])
    op, og = np.array([10, 10], dtype=np.int64), np.array([20, 20], dtype=np.int64)
    for v in (1.0, 0.9):
        assert select(w, op, og, SelectionOptions(budget=30, opus_value=v)).tier.tolist() == [OPUS, ORIGINAL]


def test_lossless_sources_cannot_be_kept_as_original() -> None:
    # original_bytes 0 = no keepable source (lossless, or over the bit rate): one option, opus75
    w = np.array([100.0, 1.0])
    sel = select(w, np.array([10, 10], dtype=np.int64), np.array([0, 15], dtype=np.int64),
                 SelectionOptions(budget=None))
    assert sel.tier.tolist() == [OPUS, ORIGINAL]


def test_tiers_allowed() -> None:
    assert tiers(None, allow_original=False) == [OPUS] * 5
    # only originals: what has no keepable source cannot be kept at all
    assert tiers(None, allow_opus=False) == [SKIP, ORIGINAL, SKIP, SKIP, ORIGINAL]
    assert tiers(150, allow_opus=False) == [SKIP, SKIP, SKIP, SKIP, ORIGINAL]  # r4 5, r1 would need 155
    assert tiers(155, allow_opus=False) == [SKIP, ORIGINAL, SKIP, SKIP, ORIGINAL]


def test_popular_originals_rule() -> None:
    # 21 listens; by rank r0 10, r1 5, r2 5, r4 1: the top 50 % (10.5) is held by r0 and r1;
    # r0 has no keepable source, so only r1 is planned as original; r4's original is cheaper anyway
    opts = dict(policy="popular-originals", original_top=0.5)
    assert tiers(None, **opts) == [OPUS, ORIGINAL, OPUS, OPUS, ORIGINAL]
    # bought by listens per byte of the planned tier: r4 .2, r0 .1, r2 .1, r1 5/150, r3 0
    assert tiers(154, **opts) == [OPUS, SKIP, SKIP, SKIP, ORIGINAL]
    assert tiers(155, **opts) == [OPUS, SKIP, OPUS, SKIP, ORIGINAL]
    assert tiers(305, **opts) == [OPUS, ORIGINAL, OPUS, SKIP, ORIGINAL]
    assert tiers(None, policy="popular-originals", original_top=0.0) == [OPUS, OPUS, OPUS, OPUS, ORIGINAL]


def test_locked_rows_spend_first_and_keep_their_tier() -> None:
    # r3 (0 listens) was released as opus75 (100 B): it stays, and only 205 B are left for the rest
    locked = np.array([-1, -1, -1, OPUS, -1], dtype=np.int8)
    sel = select(W, OP, OR, SelectionOptions(budget=305), locked=locked)
    assert sel.tier.tolist() == [OPUS, SKIP, OPUS, OPUS, ORIGINAL] and sel.locked_bytes == 100
    assert int(sel.est_bytes.sum()) <= 305
    # a budget below what is released: the released stay, nothing else is bought
    sel = select(W, OP, OR, SelectionOptions(budget=50), locked=locked)
    assert sel.tier.tolist() == [SKIP, SKIP, SKIP, OPUS, SKIP]


def test_whole_groups_are_not_cut() -> None:
    w = np.zeros(5)
    b = np.array([10, 10, 10, 10, 10], dtype=np.int64)
    groups = np.array([1, 1, 2, 2, 2])
    sel = select(w, b, np.zeros(5, dtype=np.int64), SelectionOptions(budget=40), groups=groups)
    assert sel.tier.tolist() == [OPUS, OPUS, SKIP, SKIP, SKIP]


def test_ties_are_broken_by_position() -> None:
    w = np.array([7.0, 7.0, 7.0])
    b = np.array([10, 10, 10], dtype=np.int64)
    sel = select(w, b, np.zeros(3, dtype=np.int64), SelectionOptions(budget=20))
    assert sel.tier.tolist() == [OPUS, OPUS, SKIP]
    assert sel.rank.tolist() == [1, 2, 3]


def test_no_listens_at_all() -> None:
    w = np.zeros(4)
    b = np.array([40, 10, 30, 20], dtype=np.int64)
    sel = select(w, b, np.zeros(4, dtype=np.int64), SelectionOptions(budget=50))
    assert sel.tier.tolist() == [OPUS, OPUS, SKIP, SKIP]  # key order, while it fits
    f = compute_figures(sel, w, 50)
    assert f["listens_total"] == 0 and f["share_covered"] == 0.0
    assert f["curve_bytes"]["share"] == [0.0] * 4
    assert select(w, b, np.zeros(4, dtype=np.int64)).tier.tolist() == [OPUS] * 4


def test_empty() -> None:
    sel = select(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                 SelectionOptions(budget=10))
    assert sel.tier.size == 0 and sel.n_kept == 0
    f = compute_figures(sel, np.zeros(0), 10)
    assert f["recordings"] == 0 and f["top"] == []


def test_bad_columns() -> None:
    with pytest.raises(ValueError):
        select(W, OP, OR.astype(np.int64))
    with pytest.raises(ValueError):
        select(W, OP, OR, SelectionOptions(budget=-1))


def test_descending_order_equals_lexsort_with_many_ties() -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(0, 50, 10_000).astype(np.float64) * 1.5
    last = rng.random(10_000) < 0.1
    expected = np.lexsort((np.arange(values.size), -values, last))
    assert descending_order(values, last).tolist() == expected.tolist()
    with pytest.raises(ValueError):
        descending_order(np.array([1.0, -1.0]))


def reference(weight: list[float], opus: list[int], orig: list[int], budget: int | None,
              v: float = 0.9) -> list[int]:
    """The plan rules written out plainly, row by row (independent of the numpy code)."""
    n = len(weight)
    rank = sorted(range(n), key=lambda i: (-weight[i], i))
    incs = []  # (density, kind 0 keep / 1 upgrade, tie position, row, cost, tier)
    for i in range(n):
        if orig[i] > 0 and (orig[i] <= opus[i] or v * orig[i] < opus[i]):
            incs.append((weight[i] / max(1, orig[i]), 0, i, i, max(1, orig[i]), ORIGINAL))
            continue
        incs.append((v * weight[i] / max(1, opus[i]), 0, i, i, max(1, opus[i]), OPUS))
        if orig[i] > 0:
            incs.append(((1 - v) * weight[i] / (orig[i] - opus[i]), 1, rank.index(i), i,
                         orig[i] - opus[i], ORIGINAL))
    tier, spent = [SKIP] * n, 0
    for _density, _kind, _, i, cost, t in sorted(incs, key=lambda x: (-x[0], x[1], x[2])):
        if budget is not None and spent + cost > budget:
            break
        spent += cost
        tier[i] = t
    return tier


@pytest.mark.parametrize("seed", range(6))
def test_matches_reference_across_block_boundaries(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coverage, "_CHUNK", 37)  # exercise every block loop's boundaries
    rng = np.random.default_rng(seed)
    n = 600
    weight = np.floor(rng.zipf(1.3, n).clip(max=10**6) * rng.choice([0, 1, 1, 1], n)).astype(np.float64)
    opus = rng.integers(1, 60, n).astype(np.int64)
    orig = np.where(rng.random(n) < 0.4, rng.integers(1, 120, n), 0).astype(np.int64)
    total = int(opus.sum())
    for v in (0.9, 0.5, 1.0):
        for budget in (None, 0, total // 10, total // 2, total, total + int(orig.sum())):
            sel = select(weight, opus, orig, SelectionOptions(budget=budget, opus_value=v))
            assert sel.tier.tolist() == reference(weight.tolist(), opus.tolist(), orig.tolist(), budget, v), \
                (v, budget)


def test_figures_hand_computed() -> None:
    sel = select(W, OP, OR, SelectionOptions(budget=155))
    f = compute_figures(sel, W, 155)
    assert f["listens_total"] == 21.0 and f["listens_covered"] == 16.0
    assert f["share_covered"] == pytest.approx(16 / 21)
    assert f["value_kept"] == pytest.approx(1 + 0.9 * 15) and f["share_value"] == pytest.approx(14.5 / 21)
    assert f["curve_bytes"]["bytes"] == [5, 105, 155, 255, 305, 405]
    assert f["curve_bytes"]["share"] == pytest.approx([1 / 21, 11 / 21, 16 / 21, 1, 1, 1])
    assert f["curve_recordings"]["share"] == pytest.approx([10 / 21, 15 / 21, 20 / 21, 21 / 21, 1.0])
    assert f["tiers"]["original"] == {"recordings": 1, "bytes": 5, "listens": 1.0, "listens_max": 1.0,
                                      "listens_min": 1.0}
    assert f["tiers"]["skip"]["recordings"] == 2
    assert f["top"][0] == {"recordings": 1, "share_of_recordings": 0.2, "share": pytest.approx(10 / 21)}
