"""Parity: repair is byte-exact within reach, names what is beyond it, and needs no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soundark.cli import main
from soundark.errors import BadInput
from soundark.fixity.parity import plan_layout, read_index, write_parity
from soundark.fixity.parity_repair import repair_bag
from soundark.preserve.repair import repair_path
from soundark.preserve.verify import verify_path

from helpers.fixity import flip, make_release, snapshot


@pytest.fixture
def rel(tmp_path: Path):
    bag, original = make_release(tmp_path / "releases", n=40, max_size=60_000)
    return bag, original, tmp_path / "releases" / "rel-0001.parity"


def flip_stream_blocks(bag: Path, parity: Path, first_block: int, count: int) -> set[str]:
    """Flip one byte in each of ``count`` consecutive stream blocks; return the files hit."""
    idx = read_index(parity)
    B = idx.layout.block_size
    starts, pos = [], 0
    for path, size, _ in idx.files:
        starts.append((pos, path, size))
        pos += size
    hit = set()
    for g in range(first_block, first_block + count):
        off = g * B + B // 2
        for start, path, size in starts:
            if start <= off < start + size:
                flip(bag / path, off - start)
                hit.add(path)
                break
        else:
            raise AssertionError(f"block {g} is past the stream")
    return hit


def test_layout_overhead_and_limits() -> None:
    L = plan_layout(100 * 2**30, 0.05)
    assert L.k + L.m <= 256 and L.block_size == 65536
    assert 0.045 <= L.m / L.k <= 0.055
    assert L.k * L.columns * L.block_size >= 100 * 2**30
    small = plan_layout(10_000, 0.05)
    assert small.k * small.columns * small.block_size >= 10_000 and small.m >= 1
    for bad in (0, -0.1, 1.5):
        with pytest.raises(BadInput):
            plan_layout(1000, bad)


def test_parity_is_a_valid_bag_and_deterministic(rel, tmp_path: Path) -> None:
    bag, _, parity = rel
    assert verify_path(parity).ok
    again = write_parity(bag, tmp_path / "again.parity", 0.05)
    assert again["parity_bytes"] <= 0.1 * again["stream_bytes"]
    for name in ("data/parity.json", "data/blocks.sha256", "data/parity-000.bin", "manifest-sha256.txt"):
        assert (parity / name).read_bytes() == (tmp_path / "again.parity" / name).read_bytes()


def test_damage_just_within_reach_is_repaired_byte_exact(rel) -> None:
    bag, original, parity = rel
    L = read_index(parity).layout
    assert L.columns >= 2  # so the run crosses columns and rows
    hit = flip_stream_blocks(bag, parity, first_block=3, count=L.m * L.columns)
    result = repair_bag(bag, parity)
    assert result.ok and set(result.repaired) == hit
    assert result.recovered_blocks == L.m * L.columns
    assert snapshot(bag) == original


def test_damage_just_beyond_reach_is_named(rel) -> None:
    bag, original, parity = rel
    L = read_index(parity).layout
    hit = flip_stream_blocks(bag, parity, first_block=3, count=L.m * L.columns + 1)
    result = repair_bag(bag, parity)
    assert not result.ok
    assert result.unrecoverable, "one column lost m+1 blocks"
    assert set(result.unrecoverable) <= hit
    assert all("beyond the parity's reach" in why for why in result.unrecoverable.values())
    # what could be repaired was; what could not is untouched, not made worse
    for path in set(result.repaired):
        assert (bag / path).read_bytes() == original[path]


def test_deleted_truncated_and_renamed_files_via_repair_path(rel) -> None:
    bag, original, _ = rel
    (bag / "data/audio/f003.bin").unlink()
    with open(bag / "data/audio/f010.bin", "r+b") as f:
        f.truncate(1)
    (bag / "data/audio/f020.bin").rename(bag / "data/audio/renamed.bin")
    (bag / "bagit.txt").unlink()
    report = repair_path(bag)
    assert report.ok, report.as_dict()
    b = report.bags[0]
    assert b.renamed_back == ["data/audio/f020.bin"]
    assert set(b.repaired) == {"data/audio/f003.bin", "data/audio/f010.bin", "bagit.txt"}
    assert snapshot(bag) == original
    assert verify_path(bag).ok


def test_deleted_run_longer_than_reach_is_named(rel) -> None:
    bag, original, parity = rel
    L = read_index(parity).layout
    gone, total = [], 0
    for path in sorted(p for p in original if p.startswith("data/audio/f0"))[10:]:
        gone.append(path)
        total += len(original[path])
        (bag / path).unlink()
        if total > L.reach_bytes + 2 * L.block_size:
            break
    assert total > L.reach_bytes + 2 * L.block_size
    report = repair_path(bag)
    assert not report.ok
    lost = report.bags[0].unrecoverable
    assert lost and set(lost) <= set(gone)
    for path in gone:
        if path in lost:
            assert not (bag / path).exists()
        else:
            assert (bag / path).read_bytes() == original[path]


def test_damaged_parity_counts_against_reach(rel) -> None:
    bag, original, parity = rel
    L = read_index(parity).layout
    flip(parity / "data/parity-000.bin", 10)  # one parity block of column 0 gone
    flip_stream_blocks(bag, parity, first_block=0, count=(L.m - 1) * L.columns)
    assert repair_bag(bag, parity).ok
    assert snapshot(bag) == original


def test_missing_parity_says_so(tmp_path: Path) -> None:
    bag, _ = make_release(tmp_path / "releases", parity=None)
    (bag / "data/audio/f001.bin").unlink()
    report = repair_path(bag)
    assert not report.ok
    assert "no parity" in report.bags[0].unrecoverable["data/audio/f001.bin"]


def test_cli_repair_json(rel, capsys: pytest.CaptureFixture) -> None:
    bag, original, _ = rel
    flip(bag / "data/audio/f007.bin", 3)
    with pytest.raises(SystemExit) as e:
        main(["repair", str(bag), "--json"])
    assert e.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["repaired"] == 1 and out["after"]["ok"]
    assert snapshot(bag) == original
