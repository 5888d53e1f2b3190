"""Encode benchmark: `soundark encode` vs `ffmpeg -c:a libopus` per file, same parallelism.

Corpus: generated music-like audio (three synthesised voices, a bass line and noise
percussion, stereo, each file different) of mixed lengths and formats (FLAC, WAV,
MP3, AAC, Vorbis, AIFF, 24-bit and 96 kHz among them), at least 30 minutes in all;
or every audio file under ``--corpus DIR``.

Ours runs the whole stage with one worker per core: SHA-256 check of the source,
decode, resample, libopus, tags, QA (a complete decode of the output), hashing,
fsync and the store rename, including the start of its worker pool. Theirs is
``ffmpeg -i IN -c:a libopus -b:a 75k -vbr on -compression_level 10 OUT``, one
process per file (its process starts count: that is how ffmpeg is used), as many
at once as there are cores. Both take the files longest first. The physical floor
is libopus alone (the library both use: the one PyAV bundles) encoding PCM that
was decoded and resampled beforehand, one thread per core.

The machine is shared, so the sides alternate for ``--rounds`` rounds and each
side's best round counts (every round is printed).

    python benchmarks/bench_encode.py                  # >= 30 min generated corpus
    python benchmarks/bench_encode.py --quick          # ~3 min, a smoke run
    python benchmarks/bench_encode.py --corpus DIR     # your own music

Ends with one JSON line; rates are audio seconds encoded per wall second.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from soundark.catalog import open_catalog
from soundark.catalog.store import utc_now
from soundark.config import ArchivePaths, Settings, cpu_count, write_settings
from soundark.encode.stage import EncodeOptions, run_encode
from soundark.media import synth
from soundark.media.libopus import OpusEncoder
from soundark.media.transcode import (
    OPUS_RATE,
    OpusSettings,
    bitrate_for,
    output_channels,
)

FLOOR = 0.95
NOISY = 0.05  # a round in which other processes used more than this share of the cores
AUDIO_EXT = {".flac", ".wav", ".aiff", ".aif", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus",
             ".wv", ".ape", ".alac", ".mp4"}
# (format, sample rate, seconds): 14 files, 31.8 minutes, longest not first
MIX = [("flac", 44100, 95), ("mp3", 44100, 240), ("wav", 48000, 130), ("m4a", 44100, 185),
       ("flac", 96000, 60), ("ogg", 44100, 150), ("wav24", 44100, 210), ("flac", 44100, 75),
       ("aiff", 44100, 120), ("mp3", 44100, 165), ("flac", 48000, 200), ("m4a", 44100, 110),
       ("wav", 44100, 90), ("flac", 44100, 78)]


@dataclass
class Source:
    path: Path
    seconds: float
    pcm: np.ndarray  # 48 kHz interleaved float32, as fed to libopus
    channels: int


def music_like(seconds: float, seed: int, rate: int = 44100) -> np.ndarray:
    """Stereo float32: melody, harmony, bass and noise percussion, panned apart."""
    rng = np.random.default_rng(seed)
    scale = [0, 2, 4, 5, 7, 9, 11]
    melody = tuple(int(60 + scale[i % 7] + 12 * (i % 3 == 0)) for i in rng.integers(0, 14, 16))
    lead = synth.render(synth.Voice(notes=melody, note_seconds=0.25, harmonics=(1, 0.6, 0.3, 0.2),
                                    vibrato_hz=5.5, noise=0.01, seed=seed), seconds, rate, 1)[0]
    pad = synth.render(synth.Voice(notes=tuple(n - 12 for n in melody[::2]), note_seconds=1.0,
                                   harmonics=(1, 0.3), seed=seed + 1), seconds, rate, 1)[0]
    bass = synth.render(synth.Voice(notes=tuple(n - 24 for n in melody[::4]), note_seconds=0.5,
                                    harmonics=(1, 0.8, 0.1), seed=seed + 2), seconds, rate, 1)[0]
    n = lead.size
    t = np.arange(n) / rate
    beat = (t % 0.5) / 0.5
    drums = rng.standard_normal(n).astype(np.float32) * np.exp(-30 * beat).astype(np.float32)
    left = 0.45 * lead + 0.25 * pad + 0.35 * bass + 0.2 * drums
    right = 0.25 * lead + 0.45 * pad + 0.35 * bass + 0.2 * drums
    out = np.stack([left, right]).astype(np.float32)
    return out / np.max(np.abs(out)) * 0.8


def make_corpus(folder: Path, scale: float) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (fmt, rate, seconds) in enumerate(MIX):
        path = folder / f"track{i:02d}{synth.FORMATS[fmt][3]}"
        bitrate = {"mp3": 256_000, "m4a": 256_000}.get(fmt)
        synth.encode_file(path, music_like(seconds * scale, seed=i, rate=rate), rate, fmt, bitrate)
        paths.append(path)
    return paths


def find_corpus(folder: Path) -> list[Path]:
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXT)
    if not paths:
        sys.exit(f"{folder}: no audio files ({', '.join(sorted(AUDIO_EXT))})")
    return paths


def decode_48k(path: Path) -> Source:
    """Decode and resample like the encoder's input (untimed): the floor's PCM and the length."""
    chunks = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        channels = output_channels(stream.codec_context.channels or 2)
        resampler = av.AudioResampler(format="flt", layout="mono" if channels == 1 else "stereo",
                                      rate=OPUS_RATE)
        for frame in container.decode(stream):
            frame.pts = None
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    pcm = np.concatenate(chunks).astype(np.float32, copy=False)
    return Source(path, pcm.size / channels / OPUS_RATE, pcm, channels)


def make_archive(root: Path, sources: list[Source]) -> ArchivePaths:
    """A catalog with every source planned as opus75, as `soundark scan` + `plan` would leave it."""
    paths = ArchivePaths(root)
    root.mkdir(parents=True)
    write_settings(root, Settings())
    with open_catalog(paths.catalog) as catalog, catalog.transaction() as conn:
        for rank, src in enumerate(sources, start=1):
            digest = hashlib.sha256(src.path.read_bytes()).hexdigest()
            rid = conn.execute("INSERT INTO recording(key, title, artist) VALUES (?, ?, 'Bench') "
                               "RETURNING id", (f"bench{rank}", src.path.stem)).fetchone()[0]
            stat = src.path.stat()
            sid = conn.execute(
                "INSERT INTO source_file(path, size, mtime_ns, sha256, status, recording_id, "
                "duration_ms, scanned_at) VALUES (?, ?, ?, ?, 'ok', ?, ?, ?) RETURNING id",
                (str(src.path), stat.st_size, stat.st_mtime_ns, digest, rid,
                 int(src.seconds * 1000), utc_now())).fetchone()[0]
            conn.execute("INSERT INTO plan(recording_id, tier, est_bytes, rank, weight, source_id, "
                         "planned_at) VALUES (?, 'opus75', 0, ?, 1, ?, ?)", (rid, rank, sid, utc_now()))
    return paths


def run_ours(root: Path, sources: list[Source], workers: int) -> tuple[float, int]:
    """Time run_encode in a fresh process, so every round pays for starting its worker pool.

    Only the Python start and imports of that process are left out (once per run,
    whatever the corpus); ffmpeg's time includes its process start for every file.
    """
    make_archive(root, sources)
    # -c, not this file as __main__: pool workers would import the main script again
    # (as `python -m soundark` avoids; see multiprocessing's "safe importing of main")
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_encode; "
            f"bench_encode.child(bench_encode.Path({str(root)!r}), {workers})")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["failed"] == 0 and result["encoded"] == len(sources), result
    shutil.rmtree(root)
    return result["seconds"], result["bytes_out"]


def child(root: Path, workers: int) -> None:
    started = time.perf_counter()
    result = run_encode(ArchivePaths(root), Settings(), options=EncodeOptions(workers=workers))
    elapsed = time.perf_counter() - started
    # Reap the fork server (and through it the pool workers it forked), so that their
    # CPU time reaches this process's parent and is not taken for other processes' load.
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        stop()
    print(json.dumps({"seconds": elapsed, "bytes_out": result.bytes_out, "encoded": result.encoded,
                      "failed": result.failed, "failures": [f.reason for f in result.failures]}))


def run_ffmpeg(out_dir: Path, sources: list[Source], workers: int) -> tuple[float, int]:
    out_dir.mkdir()

    def one(i_src: tuple[int, Source]) -> int:
        dest = out_dir / f"{i_src[0]}.opus"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(i_src[1].path),
                        "-c:a", "libopus", "-b:a", "75k", "-vbr", "on", "-compression_level", "10",
                        str(dest)], check=True)
        return dest.stat().st_size

    started = time.perf_counter()
    with cf.ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(one, enumerate(longest_first(sources))))
    elapsed = time.perf_counter() - started
    shutil.rmtree(out_dir)
    return elapsed, total


def _libopus_only(src: Source) -> int:
    """Encode PCM already at 48 kHz with libopus, our settings; no decode, no Ogg, no QA."""
    s = OpusSettings()
    encoder = OpusEncoder(src.channels, bitrate_for(s.bitrate, src.channels), s.complexity, s.vbr, s.frame_ms)
    step = encoder.frame_samples * src.channels
    total = (src.pcm.size // src.channels + encoder.pre_skip + encoder.frame_samples - 1)
    frames = total // encoder.frame_samples
    pcm = np.zeros(frames * step, dtype=np.float32)
    pcm[:src.pcm.size] = src.pcm  # padded with silence as the encoder pads the end
    base, size = pcm.ctypes.data, 0
    try:
        for i in range(frames):
            size += len(encoder.encode(base + 4 * i * step))
    finally:
        encoder.close()
    return size


def run_floor(sources: list[Source], workers: int) -> tuple[float, int]:
    started = time.perf_counter()
    with cf.ThreadPoolExecutor(workers) as pool:  # ctypes lets go of the GIL inside libopus
        total = sum(pool.map(_libopus_only, longest_first(sources)))
    return time.perf_counter() - started, total


def _busy_seconds() -> float:
    """CPU seconds spent by the whole machine so far (/proc/stat), or 0 where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Any, *args: Any) -> tuple[float, Any, float]:
    """Run fn(*args) -> (seconds, result); also the share of the cores others used meanwhile.

    The machine may be shared: a round in which other processes took CPU is slower
    for reasons of its own, so each round says how busy the machine was besides us.
    """
    busy0, own0, t0 = _busy_seconds(), _own_seconds(), time.perf_counter()
    seconds, result = fn(*args)
    wall = time.perf_counter() - t0
    foreign = (_busy_seconds() - busy0) - (_own_seconds() - own0)
    return seconds, result, max(0.0, foreign / (wall * (os.cpu_count() or 1)))


def longest_first(sources: list[Source]) -> list[Source]:
    return sorted(sources, key=lambda s: -s.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 3-minute corpus, smoke run")
    parser.add_argument("--corpus", type=Path, help="encode every audio file under DIR instead")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; best counts")
    parser.add_argument("--workers", type=int, default=0, help="default: one per core")
    args = parser.parse_args()
    workers = args.workers or cpu_count()
    if shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg is needed as the comparison baseline")
    with tempfile.TemporaryDirectory(prefix="bench_encode_") as tmp:
        tmp_path = Path(tmp)
        paths = (find_corpus(args.corpus) if args.corpus
                 else make_corpus(tmp_path / "src", 0.1 if args.quick else 1.0))
        sources = [decode_48k(p) for p in paths]
        audio = sum(s.seconds for s in sources)
        bytes_in = sum(p.stat().st_size for p in paths)
        kinds = sorted({p.suffix.lower() for p in paths})
        print(f"{len(paths)} files ({' '.join(kinds)}), {audio / 60:.1f} min of audio, "
              f"{bytes_in / 1e6:.1f} MB, {workers} worker(s), {args.rounds} round(s)")
        runs: dict[str, list[tuple[float, int, float]]] = {"ours": [], "ffmpeg": [], "floor": []}
        r = 0
        # Extra rounds (up to twice as many) while a side's best round shared the machine.
        while r < args.rounds or (r < 2 * args.rounds and any(
                min(v)[2] > NOISY for v in runs.values())):
            order = ("ffmpeg", "ours") if r % 2 == 0 else ("ours", "ffmpeg")
            for side in order + ("floor",):
                if side == "ours":
                    runs[side].append(timed(run_ours, tmp_path / f"archive{r}", sources, workers))
                elif side == "ffmpeg":
                    runs[side].append(timed(run_ffmpeg, tmp_path / f"ffmpeg{r}", sources, workers))
                else:
                    runs[side].append(timed(run_floor, sources, workers))
            print(f"  round {r + 1}: " + ", ".join(
                f"{k} {v[-1][0]:.2f} s (others used {v[-1][2]:.0%} of the cores)"
                for k, v in runs.items()))
            r += 1
    (t_ours, b_ours, _), (t_ff, b_ff, _), (t_raw, _, _) = (min(runs[k])
                                                            for k in ("ours", "ffmpeg", "floor"))
    ours, theirs, raw = audio / t_ours, audio / t_ff, audio / t_raw
    print(f"soundark encode (QA, tags, hashing, fsync): {t_ours:6.2f} s  {ours:7.1f}x realtime  "
          f"mean {b_ours * 8 / audio / 1000:.1f} kbit/s  bytes out/in {b_ours / bytes_in:.4f}")
    print(f"ffmpeg -c:a libopus per file:                {t_ff:6.2f} s  {theirs:7.1f}x realtime  "
          f"mean {b_ff * 8 / audio / 1000:.1f} kbit/s  bytes out/in {b_ff / bytes_in:.4f}")
    print(f"libopus alone on decoded PCM (floor):        {t_raw:6.2f} s  {raw:7.1f}x realtime")
    print(f"ratio vs ffmpeg {ours / theirs:.3f} (floor {FLOOR}, aim > 1.0); "
          f"vs libopus alone {ours / raw:.3f}")
    print(json.dumps({"benchmark": "encode", "ours": round(ours, 2), "theirs": round(theirs, 2),
                      "unit": "audio seconds per second", "ratio": round(ours / theirs, 3),
                      "floor": FLOOR}))


if __name__ == "__main__":
    main()
