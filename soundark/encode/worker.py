"""One encode job, as it runs in a worker process (local pool or a Ray node).

A worker never touches the catalog. It gets an :class:`EncodeTask` (source path,
expected SHA-256, tags to write, a temporary folder on the store's filesystem)
and returns an :class:`EncodeOutcome`: the temporary file, its SHA-256, size and
duration, or a one-line error. It never raises: a bad file is an outcome too.

Steps: read the source and check its SHA-256 against the scan (a file changed or
deleted since is refused); refuse DRM; encode Ogg Opus (RFC 7845) or keep the
original bytes; write Vorbis comments; run QA (:mod:`soundark.media.qa`); fsync.
The parent renames the file into the store and records it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from soundark import lifeline
from soundark.errors import BadInput, SoundarkError, os_reason
from soundark.fixity.digest import sha256_file
from soundark.media import opus_tags, qa, transcode
from soundark.media.transcode import OpusSettings, PcmFacts

# Extension of a kept original whose file name has none, by decoder name.
_CODEC_EXT = {"mp3": ".mp3", "mp3float": ".mp3", "vorbis": ".ogg", "opus": ".opus",
              "libopus": ".opus", "aac": ".m4a", "flac": ".flac"}
_COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class EncodeTask:
    """Everything a worker needs; plain data, so it pickles to any executor."""

    recording_id: int
    tier: str                            # 'opus75' or 'original'
    source_path: str
    source_sha256: str | None            # from the scan; None = not known, not checked
    tmp_dir: str                         # on the store's filesystem
    comments: dict[str, list[str]] = field(default_factory=dict)  # win over the file's own tags
    opus: OpusSettings = OpusSettings()
    want_art: bool = True
    decoder: str | None = None           # the one the scan recorded; None: FFmpeg, else libsndfile
    source_size: int | None = None       # from the scan: said when the source changed since
    source_mtime_ns: int | None = None
    qa: str = "decode"                   # QA mode of an Opus output (qa.QA_MODES; setting encode_qa)


@dataclass(frozen=True)
class EncodeOutcome:
    recording_id: int
    tier: str
    error: str | None = None
    tmp_path: str | None = None
    sha256: str | None = None
    bytes: int = 0
    ext: str = ""
    duration_ms: int | None = None
    source_sha256: str | None = None
    bytes_in: int = 0
    audio_seconds: float = 0.0
    art: bytes | None = None
    art_mime: str | None = None
    seconds: float = 0.0                 # wall time in the worker
    machine: bool = False                # the error is the machine's (disk full, out of memory), not the input's

    @property
    def ok(self) -> bool:
        return self.error is None


def watch_parent(pid: int, interval: float = 0.5) -> None:
    """Pool initializer: exit this worker as soon as the run that started it is gone.

    A pool worker holds both ends of its own task pipe, so when its run is killed
    (SIGKILL, OOM) it would wait for work forever. Two guards end it, and with it the
    file in flight (the journal gives that job to the next run): the kernel kills it when
    the process that forked it dies (PR_SET_PDEATHSIG: the fork server, which exits when
    the run's end of its pipe closes), and a daemon thread ends it when the run is gone
    or a zombie (a killed run nobody reaped still passes ``os.kill(pid, 0)``).
    """
    import threading

    lifeline.die_with_parent()

    def watch() -> None:
        while not lifeline.process_gone(pid):
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


# Errors of the machine, not of the input: the job goes back to pending and the run stops.
MACHINE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def encode_one(task: EncodeTask) -> EncodeOutcome:
    """Run one task; every failure becomes ``EncodeOutcome.error`` (one line)."""
    started = time.perf_counter()
    tmp = Path(task.tmp_dir) / f"{task.recording_id}.{task.tier}.part"
    try:
        outcome = _run(task, tmp)
    except SoundarkError as e:
        _unlink(tmp)
        outcome = EncodeOutcome(task.recording_id, task.tier, error=e.reason)
    except OSError as e:  # the output side: disk full, temporary folder gone
        _unlink(tmp)
        where = e.filename or task.tmp_dir
        outcome = EncodeOutcome(task.recording_id, task.tier,
                                error=f"cannot write {where}: {os_reason(e)}",
                                machine=e.errno in MACHINE_ERRNOS)
    except MemoryError:
        _unlink(tmp)
        outcome = EncodeOutcome(task.recording_id, task.tier, error="out of memory", machine=True)
    except Exception as e:  # a bug or a library surprise must not end the batch
        _unlink(tmp)
        text = " ".join(str(e).split())[:300]
        outcome = EncodeOutcome(task.recording_id, task.tier,
                                error=f"internal error: {type(e).__name__}: {text}")
    return _with_time(outcome, time.perf_counter() - started)


def _with_time(outcome: EncodeOutcome, seconds: float) -> EncodeOutcome:
    from dataclasses import replace

    return replace(outcome, seconds=seconds)


def _run(task: EncodeTask, tmp: Path) -> EncodeOutcome:
    path = Path(task.source_path)
    data, size = transcode.read_source(path)
    if size == 0:
        raise BadInput(path, "empty source file (0 bytes)")
    source_sha = hashlib.sha256(data).hexdigest() if data is not None else _hash_file(path)
    if task.source_sha256 and source_sha != task.source_sha256:
        raise BadInput(path, f"source changed since the scan ({_what_changed(task, path, size)}): "
                             "run `soundark scan` on its folder again, then `soundark encode --retry-failed`")
    transcode.refuse_encrypted(path, data)
    source = data if data is not None else path
    if task.tier == "original":
        pcm, out_sha, out_bytes, ext = _keep_original(path, source, data, tmp, task.decoder)
    else:
        pcm, out_sha, out_bytes = _encode_opus(task, path, source, source_sha, tmp)
        ext = ".opus"
    art = _art(path) if task.want_art else None
    return EncodeOutcome(
        task.recording_id, task.tier, tmp_path=str(tmp), sha256=out_sha, bytes=out_bytes, ext=ext,
        duration_ms=pcm.duration_ms, source_sha256=source_sha, bytes_in=size,
        audio_seconds=pcm.source_samples / pcm.source_rate if pcm.source_rate else 0.0,
        art=art[0] if art else None, art_mime=art[1] if art else None)


def _what_changed(task: EncodeTask, path: Path, size: int) -> str:
    """"size 1,000 -> 1,200 bytes, modified 2024-05-01 12:00:00 UTC, SHA-256 differs"."""
    import datetime as dt

    parts = []
    if task.source_size is not None and size != task.source_size:
        parts.append(f"size {task.source_size:,} -> {size:,} bytes")
    try:
        mtime_ns = path.stat().st_mtime_ns
    except OSError:
        mtime_ns = None
    if task.source_mtime_ns is not None and mtime_ns is not None and mtime_ns != task.source_mtime_ns:
        when = dt.datetime.fromtimestamp(mtime_ns / 1_000_000_000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        parts.append(f"modified {when}")
    parts.append("SHA-256 differs")
    return ", ".join(parts)


def _encode_opus(task: EncodeTask, path: Path, source: object, source_sha: str,
                 tmp: Path) -> tuple[PcmFacts, str, int]:
    serial = int(source_sha[:8], 16) or 1  # deterministic, and not the 0 some tools warn about
    pcm = transcode.transcode_to_opus(source, tmp, task.opus, serial=serial, decoder=task.decoder)
    qa.check_source(path, pcm)
    file_tags = opus_tags.comments_from_tagset(_read_tags(path))
    provenance = {"SOUNDARK_SOURCE_SHA256": source_sha, "SOUNDARK_SOURCE_CODEC": pcm.codec,
                  "SOUNDARK_SOURCE_SAMPLE_RATE": pcm.source_rate,
                  "SOUNDARK_SOURCE_CHANNELS": pcm.source_channels}
    if pcm.bitrate:
        provenance["SOUNDARK_SOURCE_BITRATE"] = pcm.bitrate
    if task.decoder and task.decoder != "ffmpeg":  # FFmpeg is the norm: only the exception is tagged
        provenance["SOUNDARK_SOURCE_DECODER"] = task.decoder
    comments = opus_tags.merge_comments(file_tags, task.comments, provenance)
    opus_tags.write_opus_comments(tmp, comments)
    # One read: QA walks and decodes these bytes, and they are what is hashed.
    data, sha = _read_hash_and_sync(tmp)
    qa.check_opus(tmp, pcm, data, mode=task.qa)
    return pcm, sha, len(data)


def _keep_original(path: Path, source: object, data: bytes | None, tmp: Path,
                   decoder: str | None) -> tuple[PcmFacts, str, int, str]:
    pcm = transcode.measure_source(source, decoder)
    qa.check_source(path, pcm)
    if data is not None:
        _write_synced(tmp, data)
    else:
        _copy_synced(path, tmp)
    sha, size = sha256_file(tmp, sync=True)  # the digest of bytes that are on disk
    if data is None and sha != _hash_file(path):
        raise BadInput(path, "source changed while it was being copied")
    ext = path.suffix.lower() if path.suffix else _CODEC_EXT.get(pcm.codec, ".bin")
    return pcm, sha, size, ext


def _read_tags(path: Path):  # -> TagSet
    from soundark.media.tags import read_tags

    try:
        return read_tags(path)
    except SoundarkError:
        from soundark.model import TagSet

        return TagSet()  # unreadable tags do not stop an encode: the catalog's still apply


def _art(path: Path) -> tuple[bytes, str] | None:
    from soundark.media.tags import read_art

    try:
        return read_art(path)
    except SoundarkError:
        return None


def _hash_file(path: Path) -> str:
    try:
        return sha256_file(path)[0]
    except OSError as e:
        raise BadInput(path, f"cannot read the source ({e.strerror or e})") from e


def _read_hash_and_sync(path: Path) -> tuple[bytes, str]:
    """The bytes of *path* and their SHA-256, after they are on disk (fsync)."""
    with open(path, "rb+") as f:
        data = f.read()
        os.fsync(f.fileno())
    return data, hashlib.sha256(data).hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _copy_synced(src: Path, dst: Path) -> None:
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        while chunk := fi.read(_COPY_CHUNK):
            fo.write(chunk)
        fo.flush()
        os.fsync(fo.fileno())


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
