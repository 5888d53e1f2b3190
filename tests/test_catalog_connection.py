"""Every SQLite error leaves the catalog as a SoundarkError (soundark/catalog/connection.py).

A full catalog is reached for real: ``PRAGMA max_page_count`` makes SQLite itself answer
SQLITE_FULL ("database or disk is full"), and as root a 3 MB tmpfs holds the archive so
the disk itself fills during `soundark import catalog`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from soundark.catalog import open_catalog
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.errors import Conflict, EnvironmentProblem, QueryInterrupted, SoundarkError


def _fill_limit(catalog) -> None:
    """Let the catalog grow by no more than a few pages: the next big write is refused."""
    pages = catalog.scalar("PRAGMA page_count")
    catalog.execute(f"PRAGMA max_page_count = {int(pages) + 2}")


def _rows(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"title": f"Song number {i} with a long title", "artists": [f"Artist {i % 97}"],
                                "album": f"Album {i // 12}", "isrc": f"USAAA{i:07d}", "listens": i}) + "\n")
    return path


def test_full_catalog_inside_a_stage_transaction_names_the_catalog(catalog):
    _fill_limit(catalog)
    with pytest.raises(EnvironmentProblem) as e:
        with catalog.transaction() as conn:
            conn.executemany("INSERT INTO artist(key, name) VALUES (?, ?)",
                             ((f"n:{i}", f"artist {i}" * 20) for i in range(5000)))
    assert str(e.value) == f"{catalog.path}: disk full: free space and re-run (nothing was half-written)"
    assert not catalog.conn.in_transaction
    assert catalog.scalar("SELECT count(*) FROM artist") == 0  # rolled back, catalog still usable


def test_import_catalog_file_on_a_full_catalog(catalog, tmp_path):
    _fill_limit(catalog)
    with pytest.raises(EnvironmentProblem, match="disk full"):
        import_catalog_file(catalog, _rows(tmp_path / "rows.jsonl", 3000))
    assert catalog.scalar("SELECT count(*) FROM recording") == 0


def _interrupt_after(catalog, steps: int) -> None:
    catalog.conn.set_progress_handler(lambda: 1, steps)


@pytest.mark.parametrize("how", ["execute", "fetchall", "rows", "cursor"])
def test_an_interrupted_query_is_its_own_error(catalog, how):
    catalog.execute("CREATE TEMP TABLE n(i)")
    catalog.conn.executemany("INSERT INTO n VALUES (?)", ((i,) for i in range(20000)))
    sql = "SELECT a.i FROM n a, n b WHERE a.i = b.i"
    with pytest.raises(QueryInterrupted) as e:
        if how == "execute":
            _interrupt_after(catalog, 1)
            catalog.execute(sql)
        elif how == "fetchall":
            _interrupt_after(catalog, 100_000)
            catalog.execute(sql).fetchall()
        elif how == "rows":  # a generator over a cursor, long after execute() returned
            cur = catalog.execute(sql)
            _interrupt_after(catalog, 100_000)
            for _row in cur:
                pass
        else:
            _interrupt_after(catalog, 100_000)
            catalog.conn.cursor().execute(sql).fetchmany(20000)
    assert e.value.subject == str(catalog.path) and "stopped" in e.value.reason
    catalog.conn.set_progress_handler(None, 1)
    assert catalog.scalar("SELECT count(*) FROM n") == 20000


def test_an_unexpected_constraint_is_a_conflict_and_rolls_back(catalog):
    with pytest.raises(Conflict, match="UNIQUE constraint failed"):
        with catalog.transaction() as conn:
            conn.execute("INSERT INTO artist(key, name) VALUES ('n:a', 'a')")
            conn.execute("INSERT INTO recording(key, title) VALUES ('k', 't')")
            conn.execute("INSERT INTO recording(key, title) VALUES ('k', 't')")
    assert catalog.scalar("SELECT count(*) FROM artist") == 0


def test_bad_sql_is_a_soundark_error_too(catalog):
    with pytest.raises(SoundarkError, match="no such table"):
        catalog.execute("SELECT * FROM no_such_table")


def _mount_tmpfs(folder: Path) -> bool:
    if os.geteuid() != 0:
        return False
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)],
                          capture_output=True, check=False)
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "small"
    if not _mount_tmpfs(folder):
        pytest.skip("mounting a small tmpfs needs root")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.slow
def test_cli_import_onto_a_full_disk_says_so_in_one_line(small_disk, tmp_path):
    archive = small_disk / "archive"
    soundark = [sys.executable, "-m", "soundark"]
    subprocess.run([*soundark, "init", str(archive)], check=True, capture_output=True)
    rows = _rows(tmp_path / "rows.jsonl", 60000)  # ~9 MB of rows: the catalog outgrows 3 MB
    done = subprocess.run([*soundark, "import", "catalog", str(rows), "-a", str(archive), "--json"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [f"error: {archive / 'catalog.sqlite3'}: disk full: free space and re-run "
                     "(nothing was half-written)"]
    with open_catalog(archive / "catalog.sqlite3", readonly=True) as cat:
        assert cat.scalar("SELECT count(*) FROM recording") == 0  # nothing half-written
