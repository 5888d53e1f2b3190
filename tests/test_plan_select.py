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
# by hand: weight per byte of the cheapest tier: r0 .1, r1 .05, r2 .1, r3 0, r4 1/5 (original 5 < opus 10)
# greedy order r4, r0, r2 (tie with r0, later key), r1, r3; cumulative 5, 105, 155, 255, 355


def tiers(budget: int | None, **kw: bool) -> list[int]:
    return select(W, OP, OR, SelectionOptions(budget=budget, **kw)).tier.tolist()


def test_hand_computed_order_and_rank() -> None:
    sel = select(W, OP, OR, SelectionOptions(budget=None))
    assert sel.pick.tolist() == [2, 4, 3, 5, 1]
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
    (354, [OPUS, ORIGINAL, OPUS, SKIP, ORIGINAL]),
    (355, [OPUS, OPUS, OPUS, OPUS, ORIGINAL]),      # covering r3 comes before any upgrade
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


def test_tiers_allowed() -> None:
    assert tiers(None, allow_original=False) == [OPUS] * 5
    # only originals: what has no keepable source cannot be kept at all
    assert tiers(None, allow_opus=False) == [SKIP, ORIGINAL, SKIP, SKIP, ORIGINAL]
    assert tiers(150, allow_opus=False) == [SKIP, SKIP, SKIP, SKIP, ORIGINAL]  # r4 5, r1 would need 155
    assert tiers(155, allow_opus=False) == [SKIP, ORIGINAL, SKIP, SKIP, ORIGINAL]


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


def reference(weight: list[float], opus: list[int], orig: list[int], budget: int | None) -> list[int]:
    """The plan rules written out plainly, row by row (independent of the numpy code)."""
    n = len(weight)
    cheap = [min(opus[i], orig[i]) if orig[i] > 0 else opus[i] for i in range(n)]
    cheap = [max(1, c) for c in cheap]
    tier = [SKIP] * n
    spent = 0
    for i in sorted(range(n), key=lambda i: (-(weight[i] / cheap[i]), i)):
        if budget is not None and spent + cheap[i] > budget:
            break
        spent += cheap[i]
        tier[i] = ORIGINAL if orig[i] > 0 and orig[i] <= opus[i] else OPUS
    for i in sorted(range(n), key=lambda i: (-weight[i], i)):
        if tier[i] != OPUS or orig[i] <= 0:
            continue
        if budget is not None and spent + orig[i] - opus[i] > budget:
            break
        spent += orig[i] - opus[i]
        tier[i] = ORIGINAL
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
    for budget in (None, 0, total // 10, total // 2, total, total + int(orig.sum())):
        got = select(weight, opus, orig, SelectionOptions(budget=budget)).tier.tolist()
        assert got == reference(weight.tolist(), opus.tolist(), orig.tolist(), budget), budget


def test_figures_hand_computed() -> None:
    sel = select(W, OP, OR, SelectionOptions(budget=155))
    f = compute_figures(sel, W, 155)
    assert f["listens_total"] == 21.0 and f["listens_covered"] == 16.0
    assert f["share_covered"] == pytest.approx(16 / 21)
    assert f["curve_bytes"]["bytes"] == [5, 105, 155, 255, 355]
    assert f["curve_bytes"]["share"] == pytest.approx([1 / 21, 11 / 21, 16 / 21, 21 / 21, 21 / 21])
    assert f["curve_recordings"]["share"] == pytest.approx([10 / 21, 15 / 21, 20 / 21, 21 / 21, 1.0])
    assert f["tiers"]["original"] == {"recordings": 1, "bytes": 5, "listens": 1.0}
    assert f["tiers"]["skip"]["recordings"] == 2
    assert f["top"][0] == {"recordings": 1, "share_of_recordings": 0.2, "share": pytest.approx(10 / 21)}
