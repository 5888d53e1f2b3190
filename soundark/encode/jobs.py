"""The encode journal: one ``encode_job`` row per planned recording (migration 0003).

A job is ``pending`` -> ``running`` (leased) -> ``done`` | ``failed``. A run leases
a few jobs at a time in one ``BEGIN IMMEDIATE`` transaction (``UPDATE ... RETURNING``),
so two runs on one catalog never hold the same job. A lease names its owner
(``host:pid:nonce``) and expires; a run renews the leases it holds, and an expired
lease, or one held by a process that no longer exists on this host, may be taken
over. A job is marked done in the same transaction that records its ``encoded``
row, so a run killed at any moment loses at most the files in flight.

Work comes from the plan (migration 0002): every plan row with a tier other than
``skip`` and a source file, that has no ``encoded`` row for that tier yet. An ``encoded``
row whose store file is gone (deleted on ``repair``'s advice, or lost) is dropped first,
so that recording is encoded again: no state the operator cannot get out of.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundark import lifeline
from soundark.catalog.store import Catalog, utc_now

ACTIVE_TIERS = ("original", "opus75")


@dataclass(frozen=True)
class Job:
    """A leased job: what the stage needs to build a task."""

    recording_id: int
    tier: str
    source_id: int
    rank: int
    attempts: int


@dataclass(frozen=True)
class SyncCounts:
    added: int
    reset: int
    dropped: int
    missing: int = 0    # encoded outputs whose store file was gone: recorded as not encoded


def new_owner() -> str:
    """``host:pid:nonce``: who holds a lease, and whether that process still lives."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str, host: str | None = None) -> bool:
    """True only when *owner* ran on this host and its process is gone (else: unknown, False)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    if parts[0] != (host or socket.gethostname()):
        return False
    pid = int(parts[1])
    return pid != os.getpid() and lifeline.process_gone(pid)


def missing_outputs(catalog: Catalog, store: Path) -> list[tuple[int, str, str]]:
    """``(recording_id, tier, sha256)`` of every ``encoded`` row whose file is gone from *store*.

    ``repair`` advises deleting a damaged store file that no release holds intact; this is how
    the next encode learns of it. One ``stat`` per stored output, outside any transaction
    (benchmarks/bench_missing_outputs.py: 100,000 outputs in 3 to 16 s on two heavily shared
    cores, 10.5 s with a Path object per row).
    """
    # store/ab/cd/<sha256><ext> as ArchivePaths.store_path lays it out, built as text: a Path
    # object per row cost twice the stat itself
    base = os.fspath(store)
    exists = os.path.isfile
    return [(r[0], r[1], r[2]) for r in catalog.execute("SELECT recording_id, tier, sha256, ext FROM encoded")
            if not exists(f"{base}/{r[2][:2]}/{r[2][2:4]}/{r[2]}{r[3]}")]


def sync_jobs(catalog: Catalog, *, retry: bool = False,
              missing: Iterable[tuple[int, str, str]] = ()) -> SyncCounts:
    """Bring the journal in line with the plan (one transaction); *retry* re-queues failed jobs.

    *missing* (from :func:`missing_outputs`) are outputs lost from the store: their ``encoded``
    rows go, so their jobs are pending again and the next run makes them anew.
    """
    with catalog.transaction() as conn:
        return _sync(conn, retry, missing)


class _Rollback(Exception):
    """Leaves a transaction so it rolls back, carrying what was found inside it."""

    def __init__(self, result: tuple[SyncCounts, list[dict[str, Any]]]) -> None:
        super().__init__()
        self.result = result


def preview(catalog: Catalog, *, retry: bool = False, limit: int | None = None,
            missing: Iterable[tuple[int, str, str]] = ()) -> tuple[SyncCounts, list[dict[str, Any]]]:
    """What a run would do (--dry-run): sync and list the queue, then roll everything back."""
    try:
        with catalog.transaction() as conn:
            raise _Rollback((_sync(conn, retry, missing), queue(conn, limit)))
    except _Rollback as done:
        return done.result


def _sync(conn: Any, retry: bool, missing: Iterable[tuple[int, str, str]] = ()) -> SyncCounts:
    now = utc_now()
    lost = sum(conn.execute("DELETE FROM encoded WHERE recording_id = ? AND tier = ? AND sha256 = ?",
                            row).rowcount for row in missing)
    if retry:
        conn.execute("UPDATE encode_job SET status = 'pending', error = NULL, updated_at = ? "
                     "WHERE status = 'failed'", (now,))
    # Planned work already stored (by an earlier run under another plan) is done.
    conn.execute(
        "UPDATE encode_job SET status = 'done', error = NULL, lease_owner = NULL, "
        "lease_expires = NULL, updated_at = ? WHERE status IN ('pending', 'failed') AND EXISTS "
        "(SELECT 1 FROM encoded e WHERE e.recording_id = encode_job.recording_id "
        " AND e.tier = encode_job.tier)", (now,))
    dropped = conn.execute(
        "DELETE FROM encode_job WHERE status IN ('pending', 'failed') AND NOT EXISTS "
        "(SELECT 1 FROM plan p WHERE p.recording_id = encode_job.recording_id "
        " AND p.tier != 'skip' AND p.source_id IS NOT NULL)").rowcount
    added = conn.execute(
        "INSERT INTO encode_job(recording_id, tier, source_id, rank, status, attempts, updated_at) "
        "SELECT p.recording_id, p.tier, p.source_id, p.rank, 'pending', 0, ? FROM plan p "
        "WHERE p.tier != 'skip' AND p.source_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM encoded e WHERE e.recording_id = p.recording_id "
        "                AND e.tier = p.tier) "
        "AND NOT EXISTS (SELECT 1 FROM encode_job j WHERE j.recording_id = p.recording_id)",
        (now,)).rowcount
    # A job whose planned tier or source changed, or that is done but has no output
    # for its tier, goes back to pending. Jobs leased by a live run are left alone.
    reset = conn.execute(
        "UPDATE encode_job SET tier = p.tier, source_id = p.source_id, rank = p.rank, "
        "status = 'pending', attempts = 0, error = NULL, lease_owner = NULL, "
        "lease_expires = NULL, updated_at = ? FROM plan p "
        "WHERE p.recording_id = encode_job.recording_id AND p.tier != 'skip' "
        "AND p.source_id IS NOT NULL AND encode_job.status != 'running' "
        "AND NOT EXISTS (SELECT 1 FROM encoded e WHERE e.recording_id = p.recording_id "
        "                AND e.tier = p.tier) "
        "AND (encode_job.tier != p.tier OR encode_job.source_id != p.source_id "
        "     OR encode_job.status = 'done')", (now,)).rowcount
    conn.execute(
        "UPDATE encode_job SET rank = p.rank FROM plan p "
        "WHERE p.recording_id = encode_job.recording_id AND encode_job.rank != p.rank")
    return SyncCounts(added=added, reset=reset, dropped=dropped, missing=lost)


def reclaim_dead(catalog: Catalog) -> int:
    """Give back the leases of runs on this host whose process is gone (e.g. killed -9)."""
    owners = [r[0] for r in catalog.execute(
        "SELECT DISTINCT lease_owner FROM encode_job WHERE status = 'running' "
        "AND lease_owner IS NOT NULL")]
    dead = [o for o in owners if owner_is_dead(o)]
    if not dead:
        return 0
    with catalog.transaction() as conn:
        return sum(conn.execute(
            "UPDATE encode_job SET status = 'pending', lease_owner = NULL, lease_expires = NULL, "
            "updated_at = ? WHERE status = 'running' AND lease_owner = ?",
            (utc_now(), owner)).rowcount for owner in dead)


def lease(catalog: Catalog, owner: str, n: int, lease_seconds: float) -> list[Job]:
    """Take up to *n* jobs in plan rank order: pending ones, or running ones whose lease expired."""
    if n <= 0:
        return []
    now = time.time()
    with catalog.transaction() as conn:
        rows = conn.execute(
            "UPDATE encode_job SET status = 'running', lease_owner = ?, lease_expires = ?, "
            "attempts = attempts + 1, updated_at = ? WHERE recording_id IN ("
            " SELECT recording_id FROM ("
            "  SELECT recording_id, rank FROM encode_job WHERE status = 'pending' "
            "  UNION ALL SELECT recording_id, rank FROM encode_job "
            "  WHERE status = 'running' AND lease_expires < ?) ORDER BY rank LIMIT ?) "
            "RETURNING recording_id, tier, source_id, rank, attempts",
            (owner, now + lease_seconds, utc_now(), now, n)).fetchall()
    jobs = [Job(r["recording_id"], r["tier"], r["source_id"], r["rank"], r["attempts"]) for r in rows]
    return sorted(jobs, key=lambda j: (j.rank, j.recording_id))


def renew(catalog: Catalog, owner: str, lease_seconds: float) -> int:
    """Push back the expiry of every lease *owner* holds."""
    with catalog.transaction() as conn:
        return conn.execute(
            "UPDATE encode_job SET lease_expires = ? WHERE status = 'running' AND lease_owner = ?",
            (time.time() + lease_seconds, owner)).rowcount


def release(catalog: Catalog, owner: str, recording_ids: Iterable[int] | None = None) -> int:
    """Give leases back unfinished (cancelled run): the jobs return to pending."""
    with catalog.transaction() as conn:
        sql = ("UPDATE encode_job SET status = 'pending', lease_owner = NULL, lease_expires = NULL, "
               "updated_at = ? WHERE status = 'running' AND lease_owner = ?")
        if recording_ids is None:
            return conn.execute(sql, (utc_now(), owner)).rowcount
        return sum(conn.execute(sql + " AND recording_id = ?", (utc_now(), owner, rid)).rowcount
                   for rid in recording_ids)


def fail(catalog: Catalog, owner: str, recording_id: int, error: str) -> bool:
    """Mark a job failed with its one-line reason; False if the lease was lost."""
    with catalog.transaction() as conn:
        return conn.execute(
            "UPDATE encode_job SET status = 'failed', error = ?, lease_owner = NULL, "
            "lease_expires = NULL, updated_at = ? WHERE recording_id = ? AND lease_owner = ? "
            "AND status = 'running'", (error, utc_now(), recording_id, owner)).rowcount == 1


@dataclass(frozen=True)
class EncodedRow:
    """One ``encoded`` row (the contract the release and web stages read)."""

    recording_id: int
    tier: str
    sha256: str
    bytes: int
    ext: str
    duration_ms: int | None
    source_sha256: str
    encoder: str
    art_sha256: str | None


def complete(catalog: Catalog, owner: str, row: EncodedRow,
             art: tuple[str, str, str, int] | None = None) -> bool:
    """Record the output and mark the job done, in one transaction.

    *art* is ``(sha256, mime, ext, bytes)`` of a cover already in the art store.
    Returns False (and records nothing) when this run no longer holds the lease.
    """
    return complete_many(catalog, owner, [(row, art)])[0]


def complete_many(catalog: Catalog, owner: str,
                  done: list[tuple[EncodedRow, tuple[str, str, str, int] | None]]) -> list[bool]:
    """:func:`complete` for a batch of jobs in one transaction (one commit, not one per file).

    Each entry is recorded only if this run still holds its lease; the answer says which were.
    """
    now = utc_now()
    recorded = []
    with catalog.transaction() as conn:
        for row, art in done:
            recorded.append(_complete(conn, owner, row, art, now))
    return recorded


def _complete(conn: Any, owner: str, row: EncodedRow, art: tuple[str, str, str, int] | None,
              now: str) -> bool:
    done = conn.execute(
        "UPDATE encode_job SET status = 'done', error = NULL, lease_owner = NULL, "
        "lease_expires = NULL, updated_at = ? WHERE recording_id = ? AND lease_owner = ? "
        "AND status = 'running'", (now, row.recording_id, owner)).rowcount
    if done != 1:
        return False
    if art is not None:
        conn.execute("INSERT INTO art(sha256, mime, ext, bytes) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT(sha256) DO NOTHING", art)
        _link_album_art(conn, row.recording_id, art[0])
    conn.execute(
        "INSERT INTO encoded(recording_id, tier, sha256, bytes, ext, duration_ms, source_sha256, "
        "encoder, art_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(recording_id, tier) DO UPDATE SET sha256 = excluded.sha256, "
        "bytes = excluded.bytes, ext = excluded.ext, duration_ms = excluded.duration_ms, "
        "source_sha256 = excluded.source_sha256, encoder = excluded.encoder, "
        "art_sha256 = excluded.art_sha256, created_at = excluded.created_at",
        (row.recording_id, row.tier, row.sha256, row.bytes, row.ext, row.duration_ms,
         row.source_sha256, row.encoder, row.art_sha256, now))
    return True


def _link_album_art(conn: Any, recording_id: int, sha256: str) -> None:
    """The cover embedded in a source is its album's cover: give it to the album the source's own
    track is on (else to every album of the recording), without replacing a cover already known.

    Without this link the art release's albums.jsonl and the web's album pages had no image.
    """
    conn.execute(
        "UPDATE album SET art_sha256 = ? WHERE art_sha256 IS NULL AND id IN ("
        " SELECT coalesce(st.album_id, t.album_id) FROM encode_job j"
        " JOIN source_file s ON s.id = j.source_id"
        " LEFT JOIN track st ON st.id = s.track_id"
        " LEFT JOIN track t ON s.track_id IS NULL AND t.recording_id = j.recording_id"
        " WHERE j.recording_id = ?)", (sha256, recording_id))


def pending_count(catalog: Catalog) -> int:
    return int(catalog.scalar(
        "SELECT count(*) FROM encode_job WHERE status = 'pending' "
        "OR (status = 'running' AND lease_expires < ?)", (time.time(),)) or 0)


def status_counts(catalog: Catalog) -> dict[str, int]:
    counts = {s: 0 for s in ("pending", "running", "done", "failed")}
    for r in catalog.execute("SELECT status, count(*) FROM encode_job GROUP BY status"):
        counts[r[0]] = r[1]
    return counts


def queue(db: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """The jobs a run would take, in order (for --dry-run): no lease is taken.

    *db* is a :class:`Catalog` or a connection inside one of its transactions.
    """
    rows = db.execute(
        "SELECT j.recording_id, j.tier, j.rank, j.attempts, j.status, s.path, s.size, s.codec, "
        "r.title, r.artist FROM encode_job j JOIN source_file s ON s.id = j.source_id "
        "JOIN recording r ON r.id = j.recording_id "
        "WHERE j.status = 'pending' OR (j.status = 'running' AND j.lease_expires < ?) "
        "ORDER BY j.rank, j.recording_id LIMIT ?", (time.time(), -1 if limit is None else limit))
    return [dict(r) for r in rows]


def failures(catalog: Catalog, limit: int = 1000) -> list[dict[str, Any]]:
    rows = catalog.execute(
        "SELECT j.recording_id, j.tier, j.attempts, j.error, s.path FROM encode_job j "
        "JOIN source_file s ON s.id = j.source_id WHERE j.status = 'failed' "
        "ORDER BY j.rank, j.recording_id LIMIT ?", (limit,))
    return [dict(r) for r in rows]
