"""A read-only archive (issue 13, faults): a tmpfs remounted read-only, which refuses root too
(chmod -R a-w would not). Readers work, with the catalog opened ``mode=ro&immutable=1`` since no
``-wal``/``-shm`` can be made (soundark/catalog/store.py: readonly_uri); writers fail with one line.
The web and bag side of read-only media is tested with the audit's tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths, Settings, write_settings

from helpers.faults import one_error_line, remount, run, tmpfs
from helpers.release import Rec, add, sized


@pytest.fixture(scope="module", params=["clean", "leftover-shm"])
def readonly_archive(request, tmp_path_factory) -> ArchivePaths:
    """An archive with one published audio release, on a tmpfs remounted read-only.

    "clean": closed by its writer (no -wal, no -shm: SQLite cannot make them there);
    "leftover-shm": a stale -shm without its -wal (a copy made beside a running writer); SQLite
    can neither make the -wal nor use the -shm alone (before: "unable to open database file").
    """
    mount = tmp_path_factory.mktemp("ro") / "mnt"
    with tmpfs(mount, "16m"):
        paths = ArchivePaths(mount / "a")
        paths.root.mkdir()
        write_settings(paths.root, Settings(release_date="2024-05-01"))
        for folder in (paths.store, paths.art, paths.releases):
            folder.mkdir()
        with open_catalog(paths.catalog) as cat:
            for i in range(6):
                add(cat, paths, Rec(key=f"USABC2400{i:03d}", rank=i + 1, data=sized(i, 20_000),
                                    title=f"Tune {i}"))
        done = run("release", "audio", "-a", str(paths.root), "--json")
        assert done.returncode == 0, done.stderr
        assert not Path(f"{paths.catalog}-wal").exists()
        if request.param == "leftover-shm":
            Path(f"{paths.catalog}-shm").write_bytes(b"\0" * 32768)
        remount(mount, "ro")
        yield paths


def test_the_mount_really_refuses_root(readonly_archive):
    with pytest.raises(OSError, match="Read-only file system"):
        (readonly_archive.root / "probe").write_bytes(b"x")


@pytest.mark.parametrize("args, check", [
    (["stats", "--json"], lambda out: json.loads(out)["recordings"] == 6),
    (["search", "Tune", "--json"], lambda out: len(json.loads(out)["results"]) == 6),
    (["release", "list", "--json"], lambda out: len(json.loads(out)["releases"]) >= 1),
    (["doctor", "--json"], lambda out: json.loads(out)["catalog_ok"]),
])
def test_readers_work_on_a_readonly_archive(readonly_archive, args, check):
    done = run(*args, "-a", str(readonly_archive.root))
    assert done.returncode == 0, done.stderr
    assert check(done.stdout), done.stdout


def test_verify_works_on_a_readonly_archive(readonly_archive):
    done = run("verify", str(readonly_archive.root), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True


@pytest.mark.parametrize("args", [
    ["plan"],
    ["release", "metadata"],
    ["scan", "/usr/share/doc/python3"],
    ["import", "listens", "/dev/null"],
])
def test_writers_fail_with_one_line_on_a_readonly_archive(readonly_archive, args):
    done = run(*args, "-a", str(readonly_archive.root))
    assert done.returncode == 1, done.stderr
    line = one_error_line(done)
    assert str(readonly_archive.root) in line and "Read-only file system" in line, line
    assert "Traceback" not in done.stderr
