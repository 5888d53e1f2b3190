"""The driver's side of a cluster run, without a cluster: lost tasks, shipped bytes, batched journal.

The executors here are the real thread executor with one step of a cluster's transport
replaced (a task reported lost, an output returned as bytes, a node that cannot see the
files), so the stage's handling of each is checked in a second; tests/test_encode_ray_cluster.py
runs the same paths on a real multi-node Ray cluster.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from soundark.config import Settings
from soundark.encode import jobs, stage
from soundark.encode.executors import Landed, TaskLost, ThreadExecutor
from soundark.encode.stage import EncodeOptions, run_encode

from helpers.encode import make_sources, store_files, tmp_leftovers

OPTS = EncodeOptions(executor="threads", workers=2)


def use(monkeypatch, executor_class) -> None:
    monkeypatch.setattr(stage, "make_executor", lambda *args, **kwargs: executor_class(2))


def statuses(catalog) -> list[tuple[str, int]]:
    return [tuple(r) for r in catalog.execute(
        "SELECT status, attempts FROM encode_job ORDER BY recording_id")]


def test_a_lost_task_is_sent_again_under_its_lease(archive, catalog, tmp_path, monkeypatch):
    ids = make_sources(catalog, tmp_path / "src", 3, seconds=0.5)
    losses = {ids[1]: 2}  # the second recording's node dies twice

    class Losing(ThreadExecutor):
        def land(self, future):
            landed = super().land(future)
            if losses.get(landed.outcome.recording_id, 0) > 0:
                losses[landed.outcome.recording_id] -= 1
                if landed.outcome.tmp_path:
                    os.unlink(landed.outcome.tmp_path)
                raise TaskLost("NodeDiedError: the node running this task died")
            return landed

    use(monkeypatch, Losing)
    result = run_encode(archive, Settings(), options=OPTS)
    assert (result.encoded, result.failed, result.retries, result.remaining) == (3, 0, 2, 0)
    assert statuses(catalog) == [("done", 1)] * 3  # leased once each: sent again, not re-leased
    assert sum(result.nodes.values()) == 3 and len(store_files(archive.store)) == 3
    assert tmp_leftovers(archive.root) == []


def test_a_cluster_that_loses_every_task_stops_the_run_and_fails_nothing(archive, catalog, tmp_path,
                                                                         monkeypatch):
    make_sources(catalog, tmp_path / "src", 3, seconds=0.2)

    class Gone(ThreadExecutor):
        def land(self, future):
            future.result()
            raise TaskLost("RaySystemError: the head node is gone")

    use(monkeypatch, Gone)
    result = run_encode(archive, Settings(), options=OPTS)
    assert result.stopped and "lost" in result.stopped and "none landed" in result.stopped
    assert (result.encoded, result.failed, result.remaining) == (0, 0, 3)
    assert {s for s, _ in statuses(catalog)} == {"pending"}
    assert store_files(archive.store) == [] and tmp_leftovers(archive.root) == []


class Shipping(ThreadExecutor):
    """Outputs come back as bytes, as from a node that does not share the archive's disk."""

    blind_first = False
    damage = False

    def __init__(self, workers: int = 0) -> None:
        super().__init__(workers)
        self.shipped: set[int] = set()

    def ship(self, task):
        self.shipped.add(task.recording_id)
        return super().submit(task)

    def land(self, future):
        landed = super().land(future)
        out = landed.outcome
        if self.blind_first and out.recording_id not in self.shipped:
            os.unlink(out.tmp_path)
            return Landed(replace(out, tmp_path=None), node="10.0.0.9/blind", blind=True)
        with open(out.tmp_path, "rb") as f:
            data = f.read()
        os.unlink(out.tmp_path)
        if self.damage:
            data = data[:-1] + bytes([data[-1] ^ 1])
        return Landed(replace(out, tmp_path=None), node="10.0.0.9/ship", data=data)


def test_shipped_outputs_are_checked_and_stored_like_shared_ones(archive, catalog, tmp_path,
                                                                 monkeypatch):
    """A node that cannot see the files answers blind; the task is shipped; same bytes stored."""
    make_sources(catalog, tmp_path / "src", 3, seconds=0.5)

    class BlindThenShip(Shipping):
        blind_first = True

    use(monkeypatch, BlindThenShip)
    result = run_encode(archive, Settings(), options=OPTS)
    assert (result.encoded, result.failed, result.shipped) == (3, 0, 3)
    assert result.nodes == {"10.0.0.9/ship": 3}  # the blind answers are not counted as work
    shipped_store = {p.name: p.read_bytes() for p in store_files(archive.store)}
    # the same sources encoded where the worker writes the file itself: the same bytes
    with catalog.transaction() as conn:
        conn.execute("DELETE FROM encoded")
    for p in store_files(archive.store):
        p.unlink()
    monkeypatch.undo()  # the plain thread executor; the next run re-queues the jobs
    again = run_encode(archive, Settings(), options=OPTS)
    assert again.encoded == 3 and again.shipped == 0
    assert {p.name: p.read_bytes() for p in store_files(archive.store)} == shipped_store


def test_a_damaged_shipped_output_fails_its_job(archive, catalog, tmp_path, monkeypatch):
    make_sources(catalog, tmp_path / "src", 2, seconds=0.3)

    class Damaging(Shipping):
        damage = True

    use(monkeypatch, Damaging)
    result = run_encode(archive, Settings(), options=OPTS)
    assert (result.encoded, result.failed) == (0, 2)
    assert all("arrived damaged" in f.reason for f in result.failures)
    assert store_files(archive.store) == [] and tmp_leftovers(archive.root) == []


def test_journal_batches_record_only_the_leases_still_held(archive, catalog, tmp_path):
    ids = make_sources(catalog, tmp_path / "src", 3, seconds=0.2)
    jobs.sync_jobs(catalog)
    held = jobs.lease(catalog, "me", 2, 60)
    jobs.lease(catalog, "other", 1, 60)
    rows = [jobs.EncodedRow(rid, "opus75", f"{rid:064x}", 10, ".opus", 200, "0" * 64, "enc", None)
            for rid in ids]
    assert jobs.complete_many(catalog, "me", [(r, None) for r in rows]) == [True, True, False]
    done = [r[0] for r in catalog.execute("SELECT recording_id FROM encoded ORDER BY 1")]
    assert done == [j.recording_id for j in held] == ids[:2]


@pytest.mark.parametrize("files", [2, 3, 4])
def test_batches_commit_every_file_at_their_edges(archive, catalog, tmp_path, monkeypatch, files):
    """The batch's size limit (3 here) at -1, exactly, +1: every file ends recorded, none twice."""
    monkeypatch.setattr(stage, "BATCH_FILES", 3)
    ids = make_sources(catalog, tmp_path / "src", 1, seconds=0.2)
    rid = ids[0]
    with catalog.transaction() as conn:  # more jobs for the same bytes: copies of the plan row
        for i in range(1, files):
            new = conn.execute("INSERT INTO recording(key, title, artist) VALUES (?, 't', 'a') "
                               "RETURNING id", (f"copy{i}",)).fetchone()[0]
            conn.execute("INSERT INTO plan(recording_id, tier, est_bytes, rank, weight, source_id, "
                         "planned_at) SELECT ?, tier, est_bytes, rank + ?, weight, source_id, "
                         "planned_at FROM plan WHERE recording_id = ?", (new, i, rid))
    result = run_encode(archive, Settings(), options=OPTS)
    assert (result.encoded, result.failed, result.remaining) == (files, 0, 0)
    assert catalog.scalar("SELECT count(*) FROM encoded") == files
    for sha, in catalog.execute("SELECT sha256 FROM encoded"):
        assert archive.store_path(sha, ".opus").is_file()
