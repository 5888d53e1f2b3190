"""The encode stage: planned recordings -> Ogg Opus (RFC 7845) or kept originals, in the store.

:func:`run_encode` syncs the journal with the plan (:mod:`soundark.encode.jobs`),
then leases jobs a few at a time in plan rank order and hands them to an executor
(:mod:`soundark.encode.executors`). Workers write a checked, fsynced temporary file
under ``ARCHIVE/tmp/``; this process renames it to ``store/ab/cd/<sha256><ext>``
(identical bytes are stored once), stores the cover in ``art/`` (content-addressed,
once), and records ``encoded`` + job done. Only this process touches the catalog,
and it records finished jobs in batches (one transaction per :data:`BATCH_FILES`
files or :data:`BATCH_SECONDS`, whichever comes first): a file is in the store
before its row is committed, so a run killed between the two leaves a stored file
that the next run finds again (same bytes, same address) and records.

On Ray, a task lost with its node or worker (:class:`~soundark.encode.executors.TaskLost`)
is sent again under the same lease, up to :data:`LOST_RETRIES` times per job and run
(each counted in ``retries``); only then does it count as a crash. When the cluster loses
task after task with nothing landing in between (its head is gone), the run stops as for
a full disk: the jobs stay pending, none is failed for it.

Tags: the file's own tags are carried over, then the catalog's values replace
them field by field (the catalog is the matched, normalised identity the archive
publishes, and the release manifests are written from it), then provenance.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from soundark.catalog.store import Catalog, open_catalog
from soundark.config import ArchivePaths, Settings
from soundark.durable import replace_durably
from soundark.encode import jobs
from soundark.encode.executors import (
    Executor,
    Landed,
    RayOptions,
    TaskLost,
    check_executor,
    make_executor,
)
from soundark.encode.jobs import EncodedRow, Job, SyncCounts
from soundark.encode.tagging import catalog_comments
from soundark.encode.worker import MACHINE_ERRNOS, EncodeOutcome, EncodeTask
from soundark.errors import BadInput, EnvironmentProblem, os_reason
from soundark.media.transcode import OpusSettings, encoder_description
from soundark.model import NO_PROGRESS, Progress
from soundark.units import parse_bytes

MAX_CRASHES = 3          # a file that kills its worker this often is failed, not retried
LOST_RETRIES = 3         # a task lost with its node is sent again this often in one run
BATCH_FILES = 64         # finished jobs recorded per catalog transaction ...
BATCH_SECONDS = 1.0      # ... or after this long, whichever comes first
_ART_EXT = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
            "image/bmp": ".bmp", "image/tiff": ".tif"}


@dataclass(frozen=True)
class EncodeOptions:
    """Per-run choices; ``None`` takes the archive setting."""

    retry_failed: bool = False
    dry_run: bool = False
    limit: int | None = None
    workers: int | None = None
    executor: str | None = None
    ray_address: str | None = None


@dataclass
class Failure:
    recording_id: int
    tier: str
    path: str
    reason: str


@dataclass
class EncodeResult:
    """What one run did (``--json`` prints :meth:`as_dict`)."""

    archive: str
    dry_run: bool = False
    executor: str = ""
    encoded: int = 0               # new Opus files
    kept: int = 0                  # originals stored byte for byte
    failed: int = 0
    deduplicated: int = 0          # outputs whose bytes were already in the store
    art_stored: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    audio_seconds: float = 0.0
    seconds: float = 0.0
    reclaimed: int = 0             # leases taken back from dead runs
    retries: int = 0               # tasks sent again after the cluster lost them (a node died)
    retried: list[str] = field(default_factory=list)  # why, one line each (the first 100)
    shipped: int = 0               # tasks whose source went through Ray's object store
    nodes: dict[str, int] = field(default_factory=dict)  # where files ran: node -> files finished
    inflight_peak: int = 0         # most tasks in flight at once (bounded by the executor)
    shipped_peak_bytes: int = 0    # most source bytes in Ray's object store at once
    remaining: int = 0             # jobs still pending after this run
    stopped: str | None = None     # the run stopped early: the machine's problem (disk full...), not an input's
    interrupted: bool = False      # stopped by SIGINT/SIGTERM: jobs in flight went back to pending
    sync: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    would_encode: list[dict[str, Any]] = field(default_factory=list)
    store: str = ""

    @property
    def ratio(self) -> float | None:
        return round(self.bytes_in / self.bytes_out, 3) if self.bytes_out else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratio"] = self.ratio
        d["audio_hours"] = round(self.audio_seconds / 3600, 4)
        done = self.encoded + self.kept + self.failed
        d["files_per_second"] = round(done / self.seconds, 3) if self.seconds else None
        d["audio_hours_per_second"] = round(self.audio_seconds / 3600 / self.seconds, 6) if self.seconds else None
        return d


def run_encode(paths: ArchivePaths, settings: Settings, progress: Progress = NO_PROGRESS, *,
               options: EncodeOptions = EncodeOptions()) -> EncodeResult:
    """Encode (or keep) every planned recording that has no output yet; see the module doc."""
    if options.limit is not None and options.limit < 0:
        raise BadInput("limit", f"{options.limit} is negative")
    check_executor(options.executor or settings.executor)
    started = time.monotonic()
    result = EncodeResult(archive=str(paths.root), dry_run=options.dry_run, store=str(paths.store))
    with open_catalog(paths.catalog, create=False) as catalog:
        missing = jobs.missing_outputs(catalog, paths.store)
        if options.dry_run:
            counts, result.would_encode = jobs.preview(catalog, retry=options.retry_failed,
                                                       limit=options.limit, missing=missing)
            result.sync = asdict(counts)
            result.remaining = len(result.would_encode)
            return result
        result.sync = asdict(jobs.sync_jobs(catalog, retry=options.retry_failed, missing=missing))
        result.reclaimed = jobs.reclaim_dead(catalog)
        clean_stale_tmp(paths)
        total = jobs.pending_count(catalog)
        if options.limit is not None:
            total = min(total, options.limit)
        if total:
            run = _Run(catalog, paths, settings, progress, options, result)
            run.go(total)
            result.stopped = run.stopped
            result.interrupted = run.interrupted
        result.remaining = jobs.pending_count(catalog)
    result.seconds = round(time.monotonic() - started, 3)
    return result


def clean_stale_tmp(paths: ArchivePaths) -> int:
    """Remove temporary folders left by encode runs that died (their process is gone)."""
    removed = 0
    if not paths.tmp.is_dir():
        return 0
    import socket

    host = socket.gethostname()
    for folder in paths.tmp.glob("encode-*-*"):
        _, pid, nonce = folder.name.split("-", 2)
        if jobs.owner_is_dead(f"{host}:{pid}:{nonce}", host):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


class _Run:
    """One run's state: its lease owner name, temporary folder, executor and jobs in flight."""

    def __init__(self, catalog: Catalog, paths: ArchivePaths, settings: Settings,
                 progress: Progress, options: EncodeOptions, result: EncodeResult) -> None:
        self.catalog, self.paths, self.progress, self.result = catalog, paths, progress, result
        self.owner = jobs.new_owner()
        _, pid, nonce = self.owner.rsplit(":", 2)
        self.tmp = paths.tmp / f"encode-{pid}-{nonce}"
        self.lease_seconds = max(30, settings.lease_seconds)
        self.opus = OpusSettings(bitrate=settings.opus_bitrate)
        self.qa = settings.encode_qa
        self.encoder = encoder_description(self.opus)
        self.kind = options.executor or settings.executor
        self.workers = options.workers if options.workers is not None else settings.workers
        self.address = options.ray_address if options.ray_address is not None else settings.ray_address
        self.ray = RayOptions(self.address, settings.ray_storage, parse_bytes(settings.ray_ship_bytes))
        self.limit = options.limit
        self.leased = 0
        self.inflight: dict[cf.Future[Any], tuple[Job, str, EncodeTask]] = {}
        self.waiting: list[tuple[float, EncodeTask, Job, str]] = []  # leased, not yet submitted
        self.reship: list[tuple[EncodeTask, Job, str]] = []  # a node could not see them: send bytes
        self.executor: Executor | None = None
        self.lost: dict[int, int] = {}  # recording -> times the cluster lost its task in this run
        self.lost_in_a_row = 0          # lost tasks since the last one that landed
        self.batch: list[tuple[EncodedRow, tuple[str, str, str, int] | None, int]] = []
        self.batch_since = 0.0
        self.stopped: str | None = None  # why the run stopped early (the machine, not an input)
        self.interrupted = False

    def go(self, total: int) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.executor = self._new_executor()
        self.result.executor = self.executor.describe()
        self.progress.start(total, "encoding", unit="files")
        renew_at = time.monotonic() + self.lease_seconds / 3
        try:
            while True:
                if self.progress.cancelled() or self.stopped is not None:
                    self.waiting.clear()  # their leases go back with release() below
                    self.reship.clear()
                else:
                    self._fill()
                if not self.inflight:
                    break
                done, _ = cf.wait(list(self.inflight), timeout=5.0, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    self._finish(future)
                self._flush(force=not self.inflight)
                if time.monotonic() >= renew_at:
                    jobs.renew(self.catalog, self.owner, self.lease_seconds)
                    renew_at = time.monotonic() + self.lease_seconds / 3
        except KeyboardInterrupt:
            # SIGINT or SIGTERM (the CLI turns both into this): stop, give the work in flight
            # back below, and return what was done, so the caller can print a summary.
            self.interrupted = True
        finally:
            for future in self.inflight:
                future.cancel()
            self.result.shipped_peak_bytes = self.executor.peak_bytes
            self.executor.shutdown()
            self._flush(force=True)  # files already stored are recorded before the rest goes back
            jobs.release(self.catalog, self.owner)  # anything unfinished goes back to pending
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _fill(self) -> None:
        """Lease a window of jobs in rank order; start the longest of them first.

        The pool runs tasks in submission order, so only one task per worker waits in
        it; the rest wait here, longest (by scanned duration, else size) first, so the
        last tasks of a run are short ones and no core idles while one long file ends.
        """
        if self.executor is None:
            raise EnvironmentProblem("encode", "no worker pool is running (it was shut down)")
        window = 4 * self.executor.workers
        room = window - len(self.inflight) - len(self.waiting)
        if self.limit is not None:
            room = min(room, self.limit - self.leased)
        if room > 0:
            for job in jobs.lease(self.catalog, self.owner, room, self.lease_seconds):
                self.leased += 1
                try:
                    self.waiting.append(self._task(job))
                except BadInput as e:
                    self._failed(job, "", e.reason)
            self.waiting.sort(key=lambda w: w[0])
        while (self.reship or self.waiting) and self._has_room():
            if self.reship:
                task, job, path = self.reship.pop()
                self.inflight[self.executor.ship(task)] = (job, path, task)
            else:
                _, task, job, path = self.waiting.pop()
                self.inflight[self.executor.submit(task)] = (job, path, task)
            self.result.inflight_peak = max(self.result.inflight_peak, len(self.inflight))

    def _has_room(self) -> bool:
        """Back-pressure: tasks in flight, and source bytes in Ray's object store, are bounded."""
        if self.executor is None:
            return False
        return len(self.inflight) < self.executor.max_inflight and self.executor.room()

    def _task(self, job: Job) -> tuple[float, EncodeTask, Job, str]:
        row = self.catalog.execute(
            "SELECT path, sha256, size, mtime_ns, duration_ms, decoder FROM source_file WHERE id = ?",
            (job.source_id,)).fetchone()
        if row is None:
            raise BadInput(f"source {job.source_id}", "source file row is gone from the catalog")
        comments = catalog_comments(self.catalog, job.recording_id, job.source_id)
        comments["ENCODER"] = [self.encoder] if job.tier == "opus75" else []
        task = EncodeTask(recording_id=job.recording_id, tier=job.tier, source_path=row["path"],
                          source_sha256=row["sha256"], tmp_dir=str(self.tmp), comments=comments,
                          opus=self.opus, decoder=row["decoder"], source_size=row["size"],
                          source_mtime_ns=row["mtime_ns"], qa=self.qa)
        # Expected cost: audio length (a kept original costs one decode, a tenth of an encode).
        cost = float(row["duration_ms"] or (row["size"] or 0) / 16)  # else: as if 128 kbit/s
        return (cost if job.tier == "opus75" else cost / 10), task, job, row["path"]

    def _new_executor(self) -> Executor:
        if self.kind == "ray":
            return make_executor(self.kind, self.workers, self.address, self.ray)
        return make_executor(self.kind, self.workers, self.address)

    def _finish(self, future: cf.Future[Any]) -> None:
        job, path, task = self.inflight.pop(future)
        if self.executor is None:
            raise EnvironmentProblem("encode", "no worker pool is running (it was shut down)")
        try:
            landed = self.executor.land(future)
        except cf.CancelledError:
            return
        except TaskLost as e:
            self._lost(job, path, task, e)
            return
        except Exception as e:  # the worker process died (a crash in a decoder) or the pool broke
            self._crashed(job, path, e)
            return
        self.lost_in_a_row = 0
        if landed.blind:  # this node does not see the archive's files: send the bytes instead
            self.reship.append((task, job, path))
            return
        outcome = landed.outcome
        self.result.nodes[landed.node] = self.result.nodes.get(landed.node, 0) + 1
        if landed.data is not None:
            outcome = self._land_bytes(outcome, landed)
        if outcome.error is not None and outcome.machine:
            self._machine(job, path, outcome.error)
        elif outcome.error is not None:
            self._failed(job, path, outcome.error)
        else:
            try:
                self._store(job, outcome)
            except OSError as e:
                if e.errno in MACHINE_ERRNOS:
                    self._machine(job, path, f"cannot store the output: {os_reason(e)}")
                else:
                    self._failed(job, path, f"cannot store the output: {os_reason(e)}")
        self._advance(path, outcome, landed.node)

    def _advance(self, path: str, outcome: EncodeOutcome, node: str = "local") -> None:
        self.result.bytes_in += outcome.bytes_in if outcome.ok else 0
        self.result.audio_seconds += outcome.audio_seconds if outcome.ok else 0.0
        add_audio = getattr(self.progress, "add_audio", None)
        if add_audio is not None and outcome.ok:
            add_audio(outcome.audio_seconds)
        item = Path(path).name if node == "local" else f"{Path(path).name} on {node}"
        self.progress.advance(1, item=item, nbytes=outcome.bytes_in)

    def _failed(self, job: Job, path: str, reason: str) -> None:
        jobs.fail(self.catalog, self.owner, job.recording_id, reason)
        self.result.failed += 1
        if len(self.result.failures) < 1000:
            self.result.failures.append(Failure(job.recording_id, job.tier, path, reason))
        self.progress.note(f"failed {path or job.recording_id}: {reason}")

    def _machine(self, job: Job, path: str, reason: str) -> None:
        """Disk full, out of memory: not the input's fault. Back to pending; start nothing new."""
        jobs.release(self.catalog, self.owner, [job.recording_id])
        if self.stopped is None:
            self.stopped = f"{path or job.recording_id}: {reason}"
            self.progress.note(f"stopping: {reason}; the job stays pending, re-run when fixed")

    def _lost(self, job: Job, path: str, task: EncodeTask, error: TaskLost) -> None:
        """The cluster lost the task with its node or worker: send it again, same lease."""
        lost = self.lost[job.recording_id] = self.lost.get(job.recording_id, 0) + 1
        self.lost_in_a_row += 1
        bound = max(8, 2 * self.executor.max_inflight) if self.executor is not None else 0
        if self.progress.cancelled():  # Ctrl-C or SIGTERM: it goes back with the rest
            jobs.release(self.catalog, self.owner, [job.recording_id])
            return
        if self.stopped is not None or self.lost_in_a_row > bound:
            self._machine(job, path, f"the cluster lost {self.lost_in_a_row} tasks in a row and "
                                     f"none landed (last: {error})")  # back to pending, start nothing
            return
        if lost > LOST_RETRIES:
            self._crashed(job, path, error)
            return
        self.result.retries += 1
        if len(self.result.retried) < 100:
            self.result.retried.append(f"{path or job.recording_id}: {error}")
        self.progress.note(f"retrying {path}: the cluster lost it ({error})")
        self.inflight[self.executor.submit(task)] = (job, path, task)

    def _land_bytes(self, outcome: EncodeOutcome, landed: Landed) -> EncodeOutcome:
        """Write a shipped task's output bytes (checked on the node) here, synced, if intact."""
        import hashlib
        from dataclasses import replace

        data = landed.data or b""
        if hashlib.sha256(data).hexdigest() != outcome.sha256 or len(data) != outcome.bytes:
            return replace(outcome, error=f"output from node {landed.node} arrived damaged "
                                          "(SHA-256 differs)")
        tmp = self.tmp / f"{outcome.recording_id}.{outcome.tier}.part"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            return replace(outcome, error=f"cannot write {tmp}: {e.strerror or e}",
                           machine=e.errno in MACHINE_ERRNOS)
        self.result.shipped += 1
        return replace(outcome, tmp_path=str(tmp))

    def _crashed(self, job: Job, path: str, error: BaseException) -> None:
        reason = f"worker died while encoding ({type(error).__name__}: {error})"
        if job.attempts >= MAX_CRASHES:
            self._failed(job, path, f"{reason}; {job.attempts} attempts")
        else:
            jobs.release(self.catalog, self.owner, [job.recording_id])
            self.progress.note(f"retrying {path}: {reason}")
        if self.executor is not None and "Broken" in type(error).__name__:
            # A broken pool fails every future in it: start a fresh one for the rest.
            self.executor.shutdown()
            self.executor = self._new_executor()

    def _store(self, job: Job, outcome: EncodeOutcome) -> None:
        if not (outcome.tmp_path and outcome.sha256 and outcome.source_sha256):
            raise EnvironmentProblem(job.recording_id, "the encode worker reported success without its output file")
        final = self.paths.store_path(outcome.sha256, outcome.ext)
        if final.exists() and final.stat().st_size == outcome.bytes:
            os.unlink(outcome.tmp_path)  # same bytes already stored: content addressing
            self.result.deduplicated += 1
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            replace_durably(outcome.tmp_path, final)
        art = self._store_art(outcome)
        row = EncodedRow(job.recording_id, job.tier, outcome.sha256, outcome.bytes, outcome.ext,
                         outcome.duration_ms, outcome.source_sha256,
                         self.encoder if job.tier == "opus75" else "original (kept byte for byte)",
                         art[0] if art else None)
        if not self.batch:
            self.batch_since = time.monotonic()
        self.batch.append((row, art, outcome.bytes))

    def _flush(self, force: bool = False) -> None:
        """Record the stored files of the batch, in one transaction."""
        if not self.batch or not (force or len(self.batch) >= BATCH_FILES
                                  or time.monotonic() - self.batch_since >= BATCH_SECONDS):
            return
        batch, self.batch = self.batch, []
        recorded = jobs.complete_many(self.catalog, self.owner, [(row, art) for row, art, _ in batch])
        for (row, _, nbytes), ok in zip(batch, recorded):
            if not ok:
                self.progress.note(f"lease lost on recording {row.recording_id}; another run holds it")
                continue
            self.result.bytes_out += nbytes
            if row.tier == "opus75":
                self.result.encoded += 1
            else:
                self.result.kept += 1

    def _store_art(self, outcome: EncodeOutcome) -> tuple[str, str, str, int] | None:
        if not outcome.art:
            return None
        import hashlib

        sha = hashlib.sha256(outcome.art).hexdigest()
        mime = outcome.art_mime or "application/octet-stream"
        ext = _ART_EXT.get(mime, ".bin")
        final = self.paths.art_path(sha, ext)
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.tmp / f"art-{sha}.part"
            with open(tmp, "wb") as f:
                f.write(outcome.art)
                f.flush()
                os.fsync(f.fileno())
            replace_durably(tmp, final)
            self.result.art_stored += 1
        return sha, mime, ext, len(outcome.art)


__all__ = ["EncodeOptions", "EncodeResult", "Failure", "run_encode", "SyncCounts"]
