"""A missing, emptied or replaced catalog is never re-created silently (issue 13).

Only `init` makes a catalog, and not over an archive whose store/ or releases/ hold data.
Each command runs as a real child process over a real archive with published releases.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths, Settings, write_settings

from helpers.release import Rec, add, sized


def soundark(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soundark", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> ArchivePaths:
    """An archive with a metadata release and an audio release (+ parity), built once."""
    paths = ArchivePaths(tmp_path_factory.mktemp("published") / "a")
    paths.root.mkdir()
    write_settings(paths.root, Settings(release_date="2024-05-01"))
    for folder in (paths.store, paths.art, paths.releases):
        folder.mkdir()
    open_catalog(paths.catalog).close()
    with open_catalog(paths.catalog) as cat:
        for i in range(3):
            add(cat, paths, Rec(key=f"USABC2400{i:03d}", rank=i + 1, data=sized(i, 60_000), title=f"T{i}"))
    for phase in ("metadata", "audio"):
        assert soundark("release", phase, "-a", str(paths.root)).returncode == 0
    return paths


@pytest.fixture
def archive_copy(published: ArchivePaths, tmp_path: Path) -> ArchivePaths:
    subprocess.run(["cp", "-a", str(published.root), str(tmp_path / "a")], check=True)
    return ArchivePaths(tmp_path / "a")


def one_line(r: subprocess.CompletedProcess) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, (r.returncode, r.stderr)
    return lines[0]


COMMANDS = [
    ("release", "audio", "-a", "{root}"),
    ("release", "metadata", "-a", "{root}"),
    ("release", "list", "-a", "{root}"),
    ("plan", "-a", "{root}"),
    ("encode", "-a", "{root}"),
    ("stats", "-a", "{root}"),
    ("search", "x", "-a", "{root}"),
    ("serve", "-a", "{root}", "--port", "9"),  # refused before it binds anything
    ("init", "{root}"),
]


@pytest.mark.parametrize("damage", ["emptied", "deleted", "replaced"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_commands_refuse_a_lost_catalog_and_change_nothing(archive_copy: ArchivePaths, damage: str,
                                                            command: tuple[str, ...]) -> None:
    paths = archive_copy
    if damage == "emptied":
        paths.catalog.write_bytes(b"")
    elif damage == "deleted":
        paths.catalog.unlink()
    else:
        paths.catalog.write_bytes(b"<html>not a catalog</html>" * 10)
    before = paths.catalog.read_bytes() if paths.catalog.exists() else None
    listing = (paths.releases / "torrents.json").read_bytes()
    line = one_line(soundark(*[part.format(root=paths.root) for part in command]))
    expected = {"emptied": "the catalog is empty (0 bytes)", "deleted": "the catalog is missing",
                "replaced": "not an SQLite database"}[damage]
    assert expected in line and str(paths.catalog) in line, line
    # the hint names the newest metadata snapshot to restore and the way to start afresh
    assert "soundark-metadata-0001/data/catalog.sqlite3" in line and "soundark init" in line, line
    after = paths.catalog.read_bytes() if paths.catalog.exists() else None
    assert after == before, "the catalog was re-created"
    assert not paths.catalog.with_name("catalog.sqlite3-wal").exists()
    assert (paths.releases / "torrents.json").read_bytes() == listing


def test_verify_names_the_lost_catalog_and_still_checks_the_bags(archive_copy: ArchivePaths) -> None:
    archive_copy.catalog.write_bytes(b"")
    r = soundark("verify", str(archive_copy.root), "--json")
    assert r.returncode == 1
    report = json.loads(r.stdout)
    assert [p["path"] for p in report["problems"]] == ["catalog.sqlite3"]
    assert "empty (0 bytes)" in report["problems"][0]["detail"]
    assert len(report["bags"]) == 3 and report["files"] > 3  # every bag was still verified
    assert archive_copy.catalog.stat().st_size == 0


def test_a_restored_snapshot_makes_the_archive_work_again(archive_copy: ArchivePaths) -> None:
    import zstandard

    snap = next(archive_copy.releases.glob("soundark-metadata-0001/data/catalog.sqlite3*"))
    data = snap.read_bytes()
    archive_copy.catalog.write_bytes(zstandard.ZstdDecompressor().decompress(data)
                                     if snap.suffix == ".zst" else data)
    r = soundark("release", "list", "-a", str(archive_copy.root), "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["releases"]) == 3


def test_init_makes_a_catalog_only_where_there_is_no_data(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    assert soundark("init", str(fresh)).returncode == 0
    assert (fresh / "catalog.sqlite3").stat().st_size > 0
    (fresh / "catalog.sqlite3").write_bytes(b"")  # a crash during the first init: nothing to lose yet
    assert soundark("init", str(fresh)).returncode == 0
    line = one_line(soundark("release", "audio", "-a", str(tmp_path / "nothing-here")))
    assert line.endswith("not a soundark archive (no catalog.sqlite3): run `soundark init` first"), line
