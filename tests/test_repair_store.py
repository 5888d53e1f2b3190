"""Repairing ONE release inside an archive heals its store copies too (issue 14, item 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from soundark.preserve.repair import repair_path
from soundark.preserve.store import archive_holding
from soundark.preserve.verify import verify_path

from helpers.store import archive, rot


def linked_pair(paths, stored: Path) -> Path:
    """The bag file that is the same inode as this store file."""
    ino = os.stat(stored).st_ino
    [bag_file] = [p for p in paths.releases.glob("*/data/**/*") if p.is_file() and os.stat(p).st_ino == ino]
    return bag_file


def test_repairing_one_release_relinks_the_damaged_store_copy(tmp_path):
    paths, stored = archive(tmp_path / "a")
    bag_file = linked_pair(paths, stored[0])
    bag = next(p for p in bag_file.parents if p.parent == paths.releases)
    assert os.stat(stored[0]).st_nlink == 2
    rot(bag_file)  # one flipped byte: the store copy is the same inode, so it rots too
    assert not verify_path(paths.root).ok
    fixed = repair_path(bag)
    assert fixed.ok and fixed.after.ok
    [result] = fixed.bags
    store_rel = stored[0].relative_to(paths.root).as_posix()
    assert result.relinked == [store_rel] and result.archive == str(paths.root.absolute())
    assert fixed.as_dict()["repaired"] == 2  # the bag file and its store copy
    assert os.path.samefile(bag_file, stored[0]) and os.stat(stored[0]).st_nlink == 2
    assert verify_path(paths.root).ok  # the whole archive is clean: store included


def test_a_lost_bag_file_is_linked_back_to_its_intact_store_copy(tmp_path):
    paths, stored = archive(tmp_path / "a")
    bag_file = linked_pair(paths, stored[1])
    bag = next(p for p in bag_file.parents if p.parent == paths.releases)
    bag_file.unlink()
    assert os.stat(stored[1]).st_nlink == 1
    fixed = repair_path(bag)  # a whole lost file is beyond this parity's reach; the store copy is not
    assert fixed.ok and fixed.bags[0].from_store == [bag_file.relative_to(bag).as_posix()]
    assert fixed.bags[0].repaired == [] and fixed.as_dict()["repaired"] == 1
    assert os.path.samefile(bag_file, stored[1]) and os.stat(stored[1]).st_nlink == 2


def test_a_bag_outside_the_archives_releases_is_not_the_archives(tmp_path):
    paths, _ = archive(tmp_path / "a")
    assert archive_holding(next(paths.releases.glob("soundark-audio-*"))) == paths.root.absolute()
    elsewhere = paths.root / "downloads" / "soundark-audio-0001"
    elsewhere.mkdir(parents=True)
    assert archive_holding(elsewhere) is None
    assert archive_holding(tmp_path / "nowhere" / "bag") is None


def soundark(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # piped: lines are never wrapped
    return subprocess.run([sys.executable, "-m", "soundark", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_repair_dot_inside_a_release_prints_paths_that_exist(tmp_path):
    paths, stored = archive(tmp_path / "a")
    bag_file = linked_pair(paths, stored[2])
    bag = next(p for p in bag_file.parents if p.parent == paths.releases)
    rot(bag_file)
    r = soundark("repair", ".", cwd=bag)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("repaired: 2 file(s) restored")
    restored = [ln.split(None, 1)[1] for ln in lines if ln.strip().startswith("restored")]
    relinked = [ln.split(None, 1)[1] for ln in lines if ln.strip().startswith("re-linked")]
    assert restored == [bag_file.relative_to(bag).as_posix()]
    assert [Path(p) for p in relinked] == [stored[2].absolute()]  # outside the current folder: absolute
    assert "store/store" not in r.stdout
    # from the archive: both paths relative to it, as typed there
    rot(bag_file)
    r = soundark("repair", str(bag.relative_to(paths.root)), "--json", cwd=paths.root)
    out = json.loads(r.stdout)
    assert out["ok"] and out["repaired"] == 2
    rot(bag_file)
    r = soundark("repair", str(bag.relative_to(paths.root)), cwd=paths.root)
    assert f"re-linked     {stored[2].relative_to(paths.root).as_posix()}" in r.stdout
    assert f"restored      {bag_file.relative_to(paths.root).as_posix()}" in r.stdout
    assert soundark("verify", ".", cwd=paths.root).returncode == 0


def test_whole_archive_repair_names_store_files_once(tmp_path):
    paths, stored = archive(tmp_path / "a")
    data = bytearray(stored[1].read_bytes())
    data[5] ^= 0xFF
    stored[1].unlink()
    stored[1].write_bytes(bytes(data))  # the store copy alone is damaged: the store pass re-links it
    r = soundark("repair", cwd=paths.root)
    assert r.returncode == 0, r.stderr
    assert f"restored      {stored[1].relative_to(paths.root).as_posix()}" in r.stdout
    assert "store/store" not in r.stdout
