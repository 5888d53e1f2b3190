"""verify: every kind of damage is named, against manifests and torrent pieces (v1 and hybrid)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from soundark.cli import main
from soundark.fixity.bagit import hash_files, write_bag_tags
from soundark.media.synth import make_file
from soundark.model import Progress
from soundark.preserve import onepass
from soundark.preserve.verify import verify_path

from helpers.fixity import flip, make_release


@pytest.fixture
def release(tmp_path: Path) -> Path:
    bag, _ = make_release(tmp_path / "releases", parity=None)
    return bag


def kinds(report) -> set[tuple[str, str]]:
    return {(p.kind, p.path) for p in report.problems}


def test_intact_release_with_real_audio(tmp_path: Path) -> None:
    bag = tmp_path / "releases" / "audio-1"
    (bag / "data" / "audio").mkdir(parents=True)
    made = [make_file(bag / "data" / "audio" / f"t{i}", fmt, 0.5) for i, fmt in enumerate(("opus", "flac"))]
    rels = [p.relative_to(bag).as_posix() for p in made]
    write_bag_tags(bag, [(r, h.sha256, h.size) for r, h in zip(rels, hash_files(made))], {})
    from helpers.fixity import make_torrent
    make_torrent(bag, tmp_path / "releases" / "torrents" / "audio-1.torrent")
    report = verify_path(tmp_path)  # the archive folder: finds releases/
    assert report.ok, report.problems
    assert report.files == 6 and "v1-pieces" in report.checks
    flip(made[1], os.path.getsize(made[1]) // 2)
    assert kinds(verify_path(tmp_path)) == {("altered", f"releases/audio-1/{rels[1]}")}


def test_each_damage_kind_is_named(release: Path) -> None:
    assert verify_path(release).ok
    flip(release / "data/audio/f001.bin", 5, 3)                    # flipped bit
    with open(release / "data/audio/f002.bin", "r+b") as f:        # truncated
        f.truncate(10)
    (release / "data/audio/f003.bin").unlink()                     # deleted
    (release / "data/audio/new.bin").write_bytes(b"extra")         # extra
    os.rename(release / "data/audio/f004.bin", release / "data/audio/moved.bin")  # renamed
    report = verify_path(release)
    assert not report.ok
    assert kinds(report) == {
        ("altered", "data/audio/f001.bin"), ("truncated", "data/audio/f002.bin"),
        ("missing", "data/audio/f003.bin"), ("missing", "data/audio/f004.bin"),
        ("extra", "data/audio/new.bin"), ("extra", "data/audio/moved.bin"),
    }
    renamed = [p for p in report.problems if p.path == "data/audio/f004.bin"]
    assert renamed[0].detail == "renamed to data/audio/moved.bin?"


def test_fast_checks_sizes_and_oxum_only(release: Path) -> None:
    flip(release / "data/audio/f001.bin", 5)  # same size: fast cannot see it
    with open(release / "data/audio/f002.bin", "ab") as f:
        f.write(b"more")
    report = verify_path(release, fast=True)
    assert kinds(report) == {("altered", "data/audio/f002.bin")}
    assert "v1-pieces" not in report.checks


def test_oxum_alone_catches_size_change_without_torrent(tmp_path: Path) -> None:
    bag, _ = make_release(tmp_path / "r", parity=None)
    (tmp_path / "r" / "torrents" / "rel-0001.torrent").unlink()
    with open(bag / "data/audio/f001.bin", "ab") as f:
        f.write(b"x")
    assert kinds(verify_path(bag, fast=True)) == {("altered", "data")}


def test_consistently_rewritten_manifest_is_caught_by_pieces(release: Path) -> None:
    """Someone alters a file and rewrites every manifest to match: only the torrent knows."""
    flip(release / "data/audio/f005.bin", 0)
    rels = sorted(p.relative_to(release).as_posix() for p in (release / "data").rglob("*") if p.is_file())
    write_bag_tags(release, [(r, h.sha256, h.size) for r, h in zip(rels, hash_files([release / r for r in rels]))],
                   {"Source-Organization": "soundark tests"})
    report = verify_path(release)
    assert ("altered", "data/audio/f005.bin") in kinds(report)
    assert all("piece" in p.detail for p in report.problems if p.path == "data/audio/f005.bin")


def test_hybrid_torrent_checks_v2_roots(tmp_path: Path) -> None:
    bag, _ = make_release(tmp_path / "r", parity=None, hybrid=True, max_size=100_000)
    report = verify_path(bag)
    assert report.ok and "v2-roots" in report.checks
    flip(bag / "data/audio/f000.bin", 100)
    assert ("altered", "data/audio/f000.bin") in kinds(verify_path(bag))


def test_tag_file_damage(release: Path) -> None:
    text = (release / "bag-info.txt").read_text()
    (release / "bag-info.txt").write_text(text.replace("soundark tests", "soundark TESTS"))
    assert ("altered", "bag-info.txt") in kinds(verify_path(release))


def test_symlink_in_place_of_a_file(release: Path, tmp_path: Path) -> None:
    target = release / "data/audio/f006.bin"
    (tmp_path / "outside.bin").write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(tmp_path / "outside.bin")
    report = verify_path(release)
    assert [p.kind for p in report.problems if p.path == "data/audio/f006.bin"] == ["altered"]


def test_cli_exit_codes_and_json(release: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        main(["verify", str(release), "--json"])
    assert e.value.code == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    (release / "data/audio/f007.bin").unlink()
    with pytest.raises(SystemExit) as e:
        main(["verify", str(release), "--json"])
    assert e.value.code == 1
    out = json.loads(capsys.readouterr().out)
    assert out["counts"]["missing"] == 1 and out["problems"][0]["path"] == "data/audio/f007.bin"


def test_not_a_bag(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        main(["verify", str(tmp_path)])
    assert e.value.code == 1
    assert "no BagIt bag" in capsys.readouterr().err


def test_bags_share_one_pass_in_small_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several bags, each cut into many groups (pieces spanning groups): each piece checked once."""
    root = tmp_path / "releases"
    bags = [make_release(root, f"rel-{i:04d}", n=20, seed=i, parity=None, hybrid=i == 1)[0] for i in range(3)]
    whole = verify_path(tmp_path)
    monkeypatch.setattr(onepass, "GROUP_MIN", 1)
    monkeypatch.setattr(onepass, "GROUP_MAX", 1)
    assert len(onepass._groups(verify_entries(bags[0]), 16384, 2)) > 3
    report = verify_path(tmp_path)
    assert report.ok and whole.ok and len(report.bags) == 3 and "v2-roots" in report.checks
    assert report.bytes == whole.bytes == sum(p.stat().st_size for b in bags for p in b.rglob("*") if p.is_file())
    first = bags[0] / "data/audio/f000.bin"
    flip(first, 0)
    last = sorted((bags[2] / "data/audio").iterdir())[-1]
    flip(last, last.stat().st_size - 1)
    assert kinds(verify_path(tmp_path)) == {("altered", "releases/rel-0000/data/audio/f000.bin"),
                                             ("altered", f"releases/rel-0002/data/audio/{last.name}")}
    # a file altered and every manifest rewritten to match: only its pieces (across groups) tell
    flip(first, 0)
    flip(last, last.stat().st_size - 1)
    middle = bags[1] / "data/audio/f010.bin"
    flip(middle, middle.stat().st_size // 2)
    rels = sorted(p.relative_to(bags[1]).as_posix() for p in (bags[1] / "data").rglob("*") if p.is_file())
    write_bag_tags(bags[1], [(r, h.sha256, h.size) for r, h in zip(rels, hash_files([bags[1] / r for r in rels]))],
                   {"Source-Organization": "soundark tests"})
    report = verify_path(tmp_path)  # the rewritten tag files differ from the torrent too
    named = {p.path: p.detail for p in report.problems if "/data/" in p.path}
    assert list(named) == ["releases/rel-0001/data/audio/f010.bin"] and "v2 pieces root" in named[list(named)[0]]
    assert all(p.path.startswith("releases/rel-0001/") for p in report.problems)


def verify_entries(bag: Path) -> list[onepass.Entry]:
    return [onepass.Entry(p.relative_to(bag).as_posix(), p.stat().st_size)
            for p in sorted(bag.rglob("*")) if p.is_file()]


class _CancelAfter(Progress):
    def __init__(self, n: int) -> None:
        self.left = n

    def advance(self, n: int = 1, item: str = "", nbytes: int = 0) -> None:
        self.left -= 1

    def cancelled(self) -> bool:
        return self.left <= 0


def test_cancelled_verify_is_not_ok(tmp_path: Path) -> None:
    root = tmp_path / "releases"
    for i in range(3):
        make_release(root, f"rel-{i:04d}", n=4, seed=i, parity=None)
    (root / "rel-0002/data/audio/f000.bin").unlink()
    report = verify_path(tmp_path, progress=_CancelAfter(1))
    assert not report.ok
    refused = [p for p in report.problems if p.kind == "refused"]
    assert refused and all(p.detail == "verify cancelled before this bag" for p in refused)
    assert ("missing", "releases/rel-0002/data/audio/f000.bin") not in kinds(report)
    assert kinds(verify_path(tmp_path, progress=_CancelAfter(0))) == {
        ("refused", f"releases/rel-{i:04d}") for i in range(3)}


def test_fast_checks_each_size_from_the_parity_index_without_a_torrent(tmp_path: Path) -> None:
    bag, _ = make_release(tmp_path / "r")
    (tmp_path / "r" / "torrents" / "rel-0001.torrent").unlink()
    with open(bag / "data/audio/f001.bin", "ab") as f:
        f.write(b"x")
    report = verify_path(bag, fast=True)
    assert ("altered", "data/audio/f001.bin") in kinds(report)  # named, not only the Oxum total
    assert "sizes" in report.checks


def test_fast_names_an_unreadable_parity_index_instead_of_dropping_its_sizes(tmp_path: Path) -> None:
    bag, _ = make_release(tmp_path / "r")
    (tmp_path / "r" / "torrents" / "rel-0001.torrent").unlink()
    (tmp_path / "r" / "rel-0001.parity" / "data" / "parity.json").write_text("{not json")
    report = verify_path(bag, fast=True)
    assert kinds(report) == {("refused", "../rel-0001.parity/data/parity.json")}
    assert "sizes" not in report.checks and "payload-oxum" in report.checks
