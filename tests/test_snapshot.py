"""catalog diff and stats read a snapshot where it is published (issue 14, item 7), and refuse
crafted ones before any query can run away."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from soundark.catalog import open_catalog
from soundark.catalog.snapshot import MAX_RATIO, locate, open_snapshot
from soundark.catalog.stats import catalog_stats
from soundark.config import Settings
from soundark.errors import BadInput, NotFound
from soundark.preserve.diff import diff_catalogs
from soundark.release.stage import run_release_metadata

from helpers.store import archive


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> tuple[Path, Path]:
    """(archive root, its first metadata release folder): a real snapshot, as published."""
    paths, _ = archive(tmp_path_factory.mktemp("snap") / "a")
    result = run_release_metadata(paths, Settings(), date="2024-05-02")
    [name] = [p.name for p in result.published]
    return paths.root, paths.releases / name


def packed(bag: Path) -> Path:
    return next((bag / "data").glob("catalog.sqlite3*"))


def unpack(src: Path, dst: Path) -> Path:
    dst.write_bytes(zstandard.ZstdDecompressor().stream_reader(src.read_bytes()).read())
    return dst


def test_the_published_snapshot_is_zstd_and_every_form_reads_the_same(published, tmp_path):
    root, bag = published
    assert packed(bag).name == "catalog.sqlite3.zst"
    raw = unpack(packed(bag), tmp_path / "catalog.sqlite3")
    counts = []
    for form in (bag, packed(bag), raw, root):
        with open_snapshot(form) as catalog:
            stats = catalog_stats(catalog)
        assert stats["catalog"] == str(form)  # the path as given, never a temporary file
        counts.append((stats["recordings"], stats["tracks"], stats["encoded_files"]))
    assert counts == [(3, 3, 3)] * 4
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("soundark-snapshot-*/catalog.sqlite3"))


def test_diff_of_a_release_against_the_live_catalog(published, tmp_path):
    root, bag = published
    live = tmp_path / "live.sqlite3"
    shutil.copy(root / "catalog.sqlite3", live)
    with open_catalog(live) as cat, cat.transaction():
        cat.execute("UPDATE recording SET title = 'Renamed' WHERE key = 'USABC2400001'")
        cat.execute("INSERT INTO recording (key, title, artist, listens) VALUES ('new', 'Fresh', 'A', 9)")
    d = diff_catalogs(bag, live)
    assert [(c.kind, c.key) for c in d.changes] == [("changed", "USABC2400001"), ("appeared", "new")]
    assert d.old == str(bag)
    with pytest.raises(BadInput, match="same catalog"):
        diff_catalogs(bag, packed(bag))


def test_a_damaged_snapshot_in_a_release_is_named_not_misread(published, tmp_path):
    _, bag = published
    copy = tmp_path / bag.name
    shutil.copytree(bag, copy)
    target = packed(copy)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    for form in (copy, target):
        with pytest.raises(BadInput, match="SHA-256 differs from .*manifest-sha256.txt"):
            with open_snapshot(form):
                pass


def crafted(tmp_path: Path, published, *statements: str) -> Path:
    """The real snapshot, unpacked, with a few statements of an attacker's applied."""
    path = unpack(packed(published[1]), tmp_path / "crafted.sqlite3")
    conn = sqlite3.connect(path)
    conn.executescript(";".join(statements))
    conn.close()
    return path


# Bounded so that, were the check missing, the diff would end (and this test fail) rather than hang.
RECURSIVE = ("CREATE VIEW recording AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
             "WHERE i < 50000) SELECT 'k' || i AS key, 't' AS title, 'a' AS artist, NULL AS isrc, "
             "0 AS duration_ms, i AS listens FROM n")


def test_a_view_over_a_recursive_query_is_refused_before_any_query(published, tmp_path):
    bad = crafted(tmp_path, published, "PRAGMA foreign_keys = OFF", "DROP TABLE recording", RECURSIVE)
    with pytest.raises(BadInput, match="view 'recording' is not one a soundark catalog makes"):
        diff_catalogs(packed(published[1]), bad)


@pytest.mark.parametrize("statement, why", [
    ("CREATE TRIGGER sneaky AFTER INSERT ON album BEGIN DELETE FROM album; END", "trigger 'sneaky'"),
    ("CREATE TABLE extra (a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2))", "generated columns"),
    ("DROP VIEW recording_nospace; CREATE VIEW recording_nospace AS SELECT id, title, artist, album "
     "FROM recording", "view 'recording_nospace'"),
])
def test_unknown_schema_objects_are_refused(published, tmp_path, statement, why):
    bad = crafted(tmp_path, published, statement)
    with pytest.raises(BadInput, match=why):
        with open_snapshot(bad):
            pass


def test_a_decompression_bomb_is_refused(tmp_path):
    bomb = tmp_path / "catalog.sqlite3.zst"
    bomb.write_bytes(zstandard.ZstdCompressor(level=19).compress(b"\0" * (8 << 20)))
    assert (8 << 20) > MAX_RATIO * bomb.stat().st_size + (1 << 20)
    with pytest.raises(BadInput, match="unpacks to more than"):
        with open_snapshot(bomb):
            pass
    (tmp_path / "junk.sqlite3.zst").write_bytes(b"not zstd at all")
    with pytest.raises(BadInput, match="not a valid zstd stream"):
        with open_snapshot(tmp_path / "junk.sqlite3.zst"):
            pass


def test_locate_names_what_it_expects(tmp_path):
    with pytest.raises(NotFound, match="metadata release"):
        locate(tmp_path)
    with pytest.raises(NotFound, match="no such catalog file"):
        locate(tmp_path / "nope.sqlite3")


def soundark(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soundark", *args], capture_output=True, text=True, timeout=120)


def test_cli_stats_and_diff_take_a_release(published, tmp_path):
    root, bag = published
    r = soundark("stats", str(bag), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["recordings"] == 3 and out["catalog"] == str(bag)
    r = soundark("stats", "-a", str(root), "--json")
    assert json.loads(r.stdout)["recordings"] == 3
    r = soundark("catalog", "diff", str(packed(bag)), str(root), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"] == {"vanished": 0, "changed": 0, "appeared": 0}
    bad = crafted(tmp_path, published, "PRAGMA foreign_keys = OFF", "DROP TABLE recording", RECURSIVE)
    r = soundark("stats", str(bad))
    assert r.returncode == 1
    assert r.stderr.strip().startswith(f"error: {bad}: view 'recording'")
