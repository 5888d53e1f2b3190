"""SQLITE_BUSY from a concurrent writer (issue 13, faults): another process holds the catalog's
write lock (``BEGIN IMMEDIATE`` here, in this test's own connection). A soundark writer waits up to
``$SOUNDARK_BUSY_SECONDS`` (default 30) for it, then says in one line that another process holds
the catalog, and exits 1; a lock released in time is simply waited for. Readers are not blocked
(WAL: a reader sees the last commit while a writer writes).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from helpers.faults import one_error_line

LISTENS = "tests/data/listens/listenbrainz_listens.jsonl"


def _soundark(archive, *args: str, busy: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SOUNDARK_BUSY_SECONDS": busy}
    return subprocess.run([sys.executable, "-m", "soundark", *args, "-a", str(archive.root)],
                          capture_output=True, text=True, check=False, timeout=300, env=env)


@pytest.fixture
def held(archive):
    """This test's own connection holding the catalog's write lock, as another process would."""
    conn = sqlite3.connect(archive.catalog, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO artist(key, name) VALUES ('n:holder', 'holder')")
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


@pytest.mark.parametrize("args", [["import", "listens", LISTENS], ["plan"]])
def test_a_writer_meeting_a_held_lock_says_so_in_one_line(archive, held, args):
    started = time.monotonic()
    done = _soundark(archive, *args, busy="1")
    assert done.returncode == 1, done.stderr
    assert one_error_line(done) == (
        f"error: {archive.catalog}: the catalog is busy: another process holds its write lock "
        "(waited $SOUNDARK_BUSY_SECONDS, default 30 s); wait for it or stop it, then re-run")
    assert time.monotonic() - started >= 1.0  # it did wait before giving up
    held.execute("ROLLBACK")
    with sqlite3.connect(archive.catalog) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM recording").fetchone() == (0,)  # nothing half-done


def test_a_lock_released_in_time_is_waited_for(archive, held, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"title": f"Song {i}", "artists": ["A"], "isrc": f"USAAA{i:07d}"}) + "\n"
                            for i in range(5)), encoding="utf-8")
    threading.Timer(1.0, lambda: held.execute("ROLLBACK")).start()
    done = _soundark(archive, "import", "catalog", str(rows), "--json", busy="60")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["new"] == 5
    with sqlite3.connect(archive.catalog) as conn:
        assert conn.execute("SELECT count(*) FROM recording").fetchone()[0] == 5


def test_readers_are_not_blocked_by_a_writer(archive, held):
    done = _soundark(archive, "stats", "--json", busy="1")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["artists"] == 0  # the uncommitted row is not seen


def test_a_bad_busy_setting_is_one_line(archive):
    done = _soundark(archive, "stats", busy="soon")
    assert done.returncode == 1
    assert one_error_line(done) == "error: SOUNDARK_BUSY_SECONDS: not a number of seconds: 'soon'"
