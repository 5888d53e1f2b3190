"""`soundark doctor` (soundark/catalog/doctor.py): a really truncated catalog, a page overwritten
with garbage (its offset from PRAGMA page_size and SQLite's own dbstat table), the store against
the catalog, and a restore from the last metadata release that follows the printed steps.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zstandard

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths

from helpers.release import Rec, add

SOUNDARK = [sys.executable, "-m", "soundark"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SOUNDARK, *args], capture_output=True, text=True, check=False, timeout=300)


def doctor(paths: ArchivePaths) -> tuple[int, dict]:
    done = run("doctor", "-a", str(paths.root), "--json")
    return done.returncode, json.loads(done.stdout)


@pytest.fixture
def filled(archive: ArchivePaths) -> ArchivePaths:
    """An archive with 300 recordings (long titles: `recording` spans many pages) and their store files."""
    with open_catalog(archive.catalog) as cat, cat.transaction():
        for i in range(300):
            add(cat, archive, Rec(f"r{i}", i + 1, f"audio {i}".encode() * 20, title=f"Song {i} " + "x" * 200))
    _checkpoint(archive.catalog)
    return archive


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the file, so bytes changed in the file are what SQLite reads."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _leaf_pages(path: Path, table: str) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno", (table,))]
    finally:
        conn.close()


def _overwrite_page(path: Path, page: int) -> None:
    conn = sqlite3.connect(path)
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(path, "r+b") as f:
        f.seek((page - 1) * size)  # pages are numbered from 1
        f.write(bytes(range(256)) * (size // 256))


def test_a_whole_archive_is_ok(filled):
    code, report = doctor(filled)
    assert code == 0, report
    assert report["ok"] and report["integrity"] == ["ok"] and report["counts"] == {}
    assert report["tables"]["recording"] == 300 and report["restore_steps"] == []
    text = run("doctor", "-a", str(filled.root))
    assert text.returncode == 0 and "integrity ok" in text.stdout and "nothing wrong found" in text.stdout


def test_a_page_of_garbage_names_the_table_and_what_is_left(filled):
    leaves = _leaf_pages(filled.catalog, "recording")
    assert len(leaves) > 4
    _overwrite_page(filled.catalog, leaves[len(leaves) // 2])
    code, report = doctor(filled)
    assert code == 1 and not report["catalog_ok"]
    assert report["integrity"] != ["ok"]
    assert "recording" in report["damaged_tables"]
    assert "album" not in report["damaged_tables"] and report["tables"]["album"] == 1
    assert report["tables"]["recording"] is not None and report["tables"]["recording"] < 300
    assert any("mv " in s for s in report["restore_steps"])
    # any other command meeting the damage: one line that points to doctor
    done = run("search", "Song", "-a", str(filled.root))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: {filled.catalog}: the catalog file is damaged or not a soundark catalog: "
        "run `soundark doctor` to see what is lost and how to restore it"]


def test_a_truncated_catalog_is_reported_with_its_missing_pages(filled):
    size = filled.catalog.stat().st_size
    with open(filled.catalog, "r+b") as f:
        f.truncate(size // 2)
    code, report = doctor(filled)
    assert code == 1 and not report["catalog_ok"]
    [cut] = [f for f in report["findings"] if f["kind"] == "truncated"]
    assert f"{size // 2} of {size} bytes" in cut["detail"]
    text = run("doctor", "-a", str(filled.root))
    assert "DAMAGED" in text.stdout and "catalog file truncated: 1" in text.stdout
    assert "restore from the last metadata release (no metadata release in this archive)" in text.stdout
    assert run("stats", "-a", str(filled.root)).stderr.count("\n") == 1


def test_the_store_against_the_catalog(filled):
    with open_catalog(filled.catalog) as cat:
        sha, ext = cat.execute("SELECT sha256, ext FROM encoded ORDER BY rowid LIMIT 1").fetchone()
        rid = cat.scalar("SELECT id FROM recording ORDER BY id LIMIT 1")
        cat.execute("PRAGMA foreign_keys = OFF")  # a job's source row is not what doctor looks at
        cat.execute("INSERT INTO encode_job (recording_id, tier, source_id, status, lease_owner, lease_expires,"
                    " rank, updated_at) VALUES (?, 'opus75', 1, 'running', 'elsewhere:1:x', ?, 1, 'now')",
                    (rid, time.time() - 60))
    filled.store_path(sha, ext).unlink()
    unknown = filled.store_path("f" * 64, ".opus")
    unknown.parent.mkdir(parents=True, exist_ok=True)
    unknown.write_bytes(b"nobody knows me")
    (unknown.parent / "half.part").write_bytes(b"half")
    (filled.releases / ".staging" / "soundark-audio-0009").mkdir(parents=True)
    code, report = doctor(filled)
    assert code == 1 and report["catalog_ok"]
    assert report["counts"] == {"missing-file": 1, "unknown-file": 1, "stuck-job": 1, "leftover": 2}
    subjects = {f["kind"]: f["subject"] for f in report["findings"]}
    assert subjects["missing-file"] == filled.store_path(sha, ext).relative_to(filled.root).as_posix()
    assert subjects["stuck-job"] == f"recording {rid}"
    assert report["restore_steps"] == []  # the catalog is whole: nothing to restore


def test_doctor_outside_an_archive_is_one_line(tmp_path):
    done = run("doctor", "-a", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path}: not a soundark archive "
                                                "(no catalog.sqlite3, no soundark.toml)"]


@pytest.mark.slow
def test_restoring_by_the_printed_steps_gives_a_whole_catalog(filled):
    done = run("release", "metadata", "-a", str(filled.root), "--json")
    assert done.returncode == 0, done.stderr
    _checkpoint(filled.catalog)
    _overwrite_page(filled.catalog, _leaf_pages(filled.catalog, "recording")[1])
    code, report = doctor(filled)
    assert code == 1 and report["restore_from"].startswith(str(filled.releases))
    snapshot = Path(report["restore_from"])
    # the printed steps, done here without the zstd tool: move aside, unpack, doctor
    filled.catalog.rename(filled.catalog.with_name("catalog.sqlite3.damaged"))
    for side in ("-wal", "-shm"):
        filled.catalog.with_name("catalog.sqlite3" + side).unlink(missing_ok=True)
    if snapshot.name.endswith(".zst"):
        with open(snapshot, "rb") as src, open(filled.catalog, "wb") as dst:
            zstandard.ZstdDecompressor().copy_stream(src, dst)
    else:
        shutil.copyfile(snapshot, filled.catalog)
    code, report = doctor(filled)
    assert report["catalog_ok"] and report["tables"]["recording"] == 300, report
