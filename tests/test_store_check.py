"""verify and repair on a whole archive also cover the content-addressed store."""

from __future__ import annotations

import os

from soundark.preserve.repair import repair_path
from soundark.preserve.verify import verify_path

from helpers.release import store_bytes
from helpers.store import archive, rot


def test_intact_archive_checks_the_store_without_reading_linked_files_twice(tmp_path):
    paths, stored = archive(tmp_path / "a")
    report = verify_path(paths.root)
    assert report.ok and "store sha256" in report.checks
    bag_only = verify_path(paths.releases)
    assert report.bytes == bag_only.bytes  # every store file is hard-linked into a bag: not re-read


def test_rot_in_a_linked_file_names_both_and_repair_restores_both(tmp_path):
    paths, stored = archive(tmp_path / "a")
    rot(stored[0])  # the same inode as a bag file
    report = verify_path(paths.root)
    kinds = sorted((p.kind, p.path.split("/")[0]) for p in report.problems)
    assert kinds == [("altered", "releases"), ("altered", "store")]
    fixed = repair_path(paths.root)
    assert fixed.ok and fixed.after.ok
    bag_file = paths.root / next(p.path for p in report.problems if p.path.startswith("releases/"))
    assert os.stat(bag_file).st_ino == os.stat(stored[0]).st_ino  # linked again, one copy on disk


def test_rot_in_an_unlinked_store_file_is_found_and_restored_from_a_release(tmp_path):
    paths, stored = archive(tmp_path / "a")
    data = bytearray(stored[1].read_bytes())
    data[5] ^= 0xFF
    stored[1].unlink()
    stored[1].write_bytes(bytes(data))  # a new inode: the bag copy is intact
    report = verify_path(paths.root)
    assert [(p.kind, p.path) for p in report.problems] == [
        ("altered", stored[1].relative_to(paths.root).as_posix())]
    assert report.problems[0].detail == "SHA-256 differs from its name"
    assert repair_path(paths.root).after.ok


def test_a_store_file_in_no_release_cannot_be_restored_and_says_so(tmp_path):
    paths, _ = archive(tmp_path / "a")
    lone = paths.store_path(store_bytes(paths, b"x" * 5000, ".opus"), ".opus")
    rot(lone, 10)
    fixed = repair_path(paths.root)
    assert not fixed.ok
    [(rel, why)] = [(r, w) for b in fixed.bags for r, w in b.unrecoverable.items()]
    assert rel.startswith("store/") and "no intact copy" in why


def test_a_store_file_gone_missing_is_named_and_relinked_from_its_release(tmp_path):
    paths, stored = archive(tmp_path / "a")
    stored[2].unlink()
    report = verify_path(paths.root)
    assert [(p.kind, p.path, p.detail) for p in report.problems] == [
        ("missing", stored[2].relative_to(paths.root).as_posix(), "the catalog lists it as encoded")]
    assert repair_path(paths.root).after.ok and stored[2].is_file()
