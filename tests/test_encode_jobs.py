"""The encode journal: leases, takeover, crash safety, and two runs at once (real processes)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from soundark.catalog import open_catalog
from soundark.encode import jobs
from soundark.encode.jobs import EncodedRow

from helpers.encode import make_sources, store_files, tmp_leftovers


def test_sync_adds_planned_work_in_rank_order(archive, catalog, tmp_path):
    ids = make_sources(catalog, tmp_path / "src", 3, seconds=0.2)
    catalog.execute("UPDATE plan SET rank = 10 - rank")  # reverse the order
    counts = jobs.sync_jobs(catalog)
    assert counts.added == 3
    leased = jobs.lease(catalog, "me", 3, 60)
    assert [j.recording_id for j in leased] == list(reversed(ids))
    assert jobs.sync_jobs(catalog).added == 0  # idempotent


def test_two_owners_never_lease_the_same_job(archive, catalog, tmp_path):
    make_sources(catalog, tmp_path / "src", 4, seconds=0.2)
    jobs.sync_jobs(catalog)
    with open_catalog(archive.catalog) as other:
        a = jobs.lease(catalog, "a", 3, 60)
        b = jobs.lease(other, "b", 3, 60)
    assert len(a) == 3 and len(b) == 1
    assert not {j.recording_id for j in a} & {j.recording_id for j in b}
    assert jobs.lease(catalog, "c", 3, 60) == []


def test_expired_lease_is_taken_over_and_the_old_owner_cannot_complete(archive, catalog, tmp_path):
    (rid,) = make_sources(catalog, tmp_path / "src", 1, seconds=0.2)
    jobs.sync_jobs(catalog)
    assert len(jobs.lease(catalog, "old", 1, -1)) == 1  # already expired
    taken = jobs.lease(catalog, "new", 1, 60)
    assert [j.recording_id for j in taken] == [rid] and taken[0].attempts == 2
    row = EncodedRow(rid, "opus75", "ab" * 32, 10, ".opus", 1000, "cd" * 32, "test", None)
    assert jobs.complete(catalog, "old", row) is False
    assert catalog.scalar("SELECT count(*) FROM encoded") == 0
    assert jobs.complete(catalog, "new", row) is True
    assert catalog.scalar("SELECT status FROM encode_job WHERE recording_id = ?", (rid,)) == "done"


def test_renew_keeps_a_lease(archive, catalog, tmp_path):
    make_sources(catalog, tmp_path / "src", 1, seconds=0.2)
    jobs.sync_jobs(catalog)
    jobs.lease(catalog, "me", 1, -1)
    assert jobs.renew(catalog, "me", 60) == 1
    assert jobs.lease(catalog, "thief", 1, 60) == []


def test_leases_of_a_dead_process_are_reclaimed(archive, catalog, tmp_path):
    make_sources(catalog, tmp_path / "src", 2, seconds=0.2)
    jobs.sync_jobs(catalog)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = f"{socket.gethostname()}:{proc.pid}:deadbeef"
    alive = f"{socket.gethostname()}:{os.getppid()}:cafe"
    assert jobs.owner_is_dead(dead) and not jobs.owner_is_dead(alive)
    assert not jobs.owner_is_dead(f"elsewhere:{proc.pid}:x")  # another host: cannot know
    jobs.lease(catalog, dead, 1, 600)
    jobs.lease(catalog, alive, 1, 600)
    assert jobs.reclaim_dead(catalog) == 1
    assert jobs.status_counts(catalog) == {"pending": 1, "running": 1, "done": 0, "failed": 0}


def test_fail_release_and_retry(archive, catalog, tmp_path):
    a, b = make_sources(catalog, tmp_path / "src", 2, seconds=0.2)
    jobs.sync_jobs(catalog)
    jobs.lease(catalog, "me", 2, 60)
    assert jobs.fail(catalog, "me", a, "bad file")
    assert jobs.release(catalog, "me") == 1
    assert jobs.status_counts(catalog) == {"pending": 1, "running": 0, "done": 0, "failed": 1}
    assert jobs.failures(catalog)[0]["error"] == "bad file"
    jobs.sync_jobs(catalog)
    assert jobs.status_counts(catalog)["failed"] == 1  # sync alone does not retry
    jobs.sync_jobs(catalog, retry=True)
    assert jobs.status_counts(catalog)["pending"] == 2 and b


def test_preview_rolls_back(archive, catalog, tmp_path):
    make_sources(catalog, tmp_path / "src", 2, seconds=0.2)
    counts, queue = jobs.preview(catalog, limit=1)
    assert counts.added == 2 and len(queue) == 1
    assert catalog.scalar("SELECT count(*) FROM encode_job") == 0


# --- real processes -----------------------------------------------------------------------------

def _soundark(*args: str, pipe: bool = True) -> subprocess.Popen:
    out = subprocess.PIPE if pipe else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "soundark", *args], stdout=out, stderr=out,
                            text=True)


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_finishes_exactly_once(archive, catalog, tmp_path):
    ids = make_sources(catalog, tmp_path / "src", 8, seconds=4.0)
    proc = _soundark("encode", "-a", str(archive.root), "--workers", "1", "--json", pipe=False)
    deadline = time.monotonic() + 120
    try:
        while not (archive.store.exists() and store_files(archive.store)):
            assert proc.poll() is None, "the run ended on its own"
            assert time.monotonic() < deadline, "no output landed"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = catalog.scalar("SELECT count(*) FROM encoded")
    assert before < len(ids), "the run finished before the kill: make the files longer"
    assert catalog.scalar("SELECT count(*) FROM encode_job WHERE status = 'running'") >= 1

    rerun = _soundark("encode", "-a", str(archive.root), "--workers", "2", "--json")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    result = json.loads(out)
    assert result["reclaimed"] >= 1 and result["failed"] == 0
    assert result["encoded"] == len(ids) - before  # finished work was not redone
    rows = catalog.execute("SELECT recording_id, sha256 FROM encoded ORDER BY recording_id").fetchall()
    assert [r[0] for r in rows] == ids
    assert sorted(archive.store_path(r[1], ".opus") for r in rows) == store_files(archive.store)
    assert jobs.status_counts(catalog)["done"] == len(ids)
    assert tmp_leftovers(archive.root) == []


@pytest.mark.slow
def test_two_concurrent_runs_never_encode_one_recording_twice(archive, catalog, tmp_path):
    ids = make_sources(catalog, tmp_path / "src", 8, seconds=1.0)
    runs = [_soundark("encode", "-a", str(archive.root), "--workers", "1", "--json") for _ in range(2)]
    results = []
    for proc in runs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert sum(r["encoded"] for r in results) == len(ids)
    assert all(r["failed"] == 0 for r in results)
    attempts = [r[0] for r in catalog.execute("SELECT attempts FROM encode_job")]
    assert attempts == [1] * len(ids)
    assert catalog.scalar("SELECT count(*) FROM encoded") == len(ids)
