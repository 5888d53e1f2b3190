"""Encode benchmark: `soundark encode` vs `ffmpeg -c:a libopus` per file, same parallelism.

Input: FLAC files of music-like audio (three synthesised voices, a bass line and
noise percussion, stereo, 44.1 kHz), each different. Ours runs the whole stage:
SHA-256 check of the source, decode, resample, libopus, tags, QA (a second full
decode of the output), hashing, fsync and the store rename. Theirs is
``ffmpeg -c:a libopus -b:a 75k -vbr on -compression_level 10`` per file, as many
at once as there are cores. Also printed: libopus alone on already-decoded PCM
(the floor under any encoder), and the mean bit rate of both outputs.

    python benchmarks/bench_encode.py            # 8 files x 90 s
    python benchmarks/bench_encode.py --quick    # 4 files x 15 s

Ends with one JSON line; rates are audio seconds encoded per wall second.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from soundark.catalog import open_catalog
from soundark.catalog.store import utc_now
from soundark.config import ArchivePaths, Settings, cpu_count, write_settings
from soundark.encode.stage import EncodeOptions, run_encode
from soundark.media import synth

FLOOR = 0.95


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


def make_sources(folder: Path, count: int, seconds: float) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"track{i:02d}.flac"
        synth.encode_file(path, music_like(seconds, seed=i), 44100, "flac")
        paths.append(path)
    return paths


def make_archive(root: Path, sources: list[Path]) -> ArchivePaths:
    paths = ArchivePaths(root)
    root.mkdir(parents=True)
    write_settings(root, Settings())
    with open_catalog(paths.catalog) as catalog, catalog.transaction() as conn:
        for rank, src in enumerate(sources, start=1):
            digest = hashlib.sha256(src.read_bytes()).hexdigest()
            rid = conn.execute("INSERT INTO recording(key, title, artist) VALUES (?, ?, 'Bench') "
                               "RETURNING id", (f"bench{rank}", src.stem)).fetchone()[0]
            sid = conn.execute(
                "INSERT INTO source_file(path, size, mtime_ns, sha256, status, codec, recording_id, "
                "scanned_at) VALUES (?, ?, ?, ?, 'ok', 'flac', ?, ?) RETURNING id",
                (str(src), src.stat().st_size, src.stat().st_mtime_ns, digest, rid, utc_now())
            ).fetchone()[0]
            conn.execute("INSERT INTO plan(recording_id, tier, est_bytes, rank, weight, source_id, "
                         "planned_at) VALUES (?, 'opus75', 0, ?, 1, ?, ?)", (rid, rank, sid, utc_now()))
    return paths


def run_ours(root: Path, sources: list[Path], workers: int) -> tuple[float, int]:
    paths = make_archive(root, sources)
    started = time.perf_counter()
    result = run_encode(paths, Settings(), options=EncodeOptions(workers=workers))
    elapsed = time.perf_counter() - started
    assert result.failed == 0 and result.encoded == len(sources), result.failures
    return elapsed, result.bytes_out


def run_ffmpeg(out_dir: Path, sources: list[Path], workers: int) -> tuple[float, int]:
    out_dir.mkdir()

    def one(src: Path) -> int:
        dest = out_dir / (src.stem + ".opus")
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-c:a", "libopus",
                        "-b:a", "75k", "-vbr", "on", "-compression_level", "10", str(dest)],
                       check=True)
        return dest.stat().st_size

    started = time.perf_counter()
    with cf.ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(one, sources))
    return time.perf_counter() - started, total


def _libopus_only(pcm: np.ndarray) -> int:
    """Encode already-decoded 48 kHz stereo float PCM with libopus; nothing else."""
    import io

    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48000, layout="stereo")
        stream.codec_context.bit_rate = 75000
        stream.codec_context.options = {"vbr": "on", "compression_level": "10",
                                        "application": "audio", "frame_duration": "20"}
        for i, start in enumerate(range(0, pcm.shape[1], 960)):
            chunk = np.ascontiguousarray(pcm[:, start:start + 960].T).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return len(buf.getvalue())


def _decode_48k(path: Path) -> np.ndarray:
    import av

    chunks = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
        for frame in container.decode(audio=0):
            for f in resampler.resample(frame):
                chunks.append(f.to_ndarray())
        for f in resampler.resample(None):
            chunks.append(f.to_ndarray())
    return np.concatenate(chunks, axis=1)


def run_libopus_only(sources: list[Path], workers: int) -> float:
    pcms = [_decode_48k(s) for s in sources]
    started = time.perf_counter()
    with cf.ProcessPoolExecutor(workers) as pool:
        list(pool.map(_libopus_only, pcms))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--files", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args()
    count = args.files or (4 if args.quick else 8)
    seconds = args.seconds or (15.0 if args.quick else 90.0)
    workers = cpu_count()
    if shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg is needed as the comparison baseline")
    audio = count * seconds
    with tempfile.TemporaryDirectory(prefix="bench_encode_") as tmp:
        tmp_path = Path(tmp)
        sources = make_sources(tmp_path / "src", count, seconds)
        mb_in = sum(s.stat().st_size for s in sources) / 1e6
        print(f"{count} FLAC files x {seconds:.0f} s = {audio / 60:.1f} min of audio, "
              f"{mb_in:.1f} MB, {workers} worker(s)")
        t_ff, b_ff = run_ffmpeg(tmp_path / "ffmpeg", sources, workers)
        t_ours, b_ours = run_ours(tmp_path / "archive", sources, workers)
        t_raw = run_libopus_only(sources, workers)
    ours, theirs, raw = audio / t_ours, audio / t_ff, audio / t_raw
    print(f"soundark encode (QA, tags, hashing, fsync): {t_ours:6.2f} s  {ours:7.1f}x realtime  "
          f"mean {b_ours * 8 / audio / 1000:.1f} kbit/s")
    print(f"ffmpeg -c:a libopus per file:                {t_ff:6.2f} s  {theirs:7.1f}x realtime  "
          f"mean {b_ff * 8 / audio / 1000:.1f} kbit/s")
    print(f"libopus alone on decoded PCM:                {t_raw:6.2f} s  {raw:7.1f}x realtime")
    print(f"ratio vs ffmpeg {ours / theirs:.3f} (floor {FLOOR}); vs libopus alone {ours / raw:.3f}")
    print(json.dumps({"benchmark": "encode", "ours": round(ours, 2), "theirs": round(theirs, 2),
                      "unit": "audio seconds per second", "ratio": round(ours / theirs, 3),
                      "floor": FLOOR}))


if __name__ == "__main__":
    main()
