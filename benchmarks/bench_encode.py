"""Encode benchmark: `soundark encode` vs `ffmpeg -c:a libopus` per file, same parallelism.

Default corpus: real lossy music, the Ogg Vorbis soundtrack of the game Drascula
(Debian package ``drascula-music``, 31 files, 47 minutes, 44.1 kHz stereo at about
112 kbit/s). The benchmark fetches it once with ``apt-get download drascula-music``
and unpacks it with ``dpkg-deb -x`` into ``~/.cache/soundark-bench/`` (or
``$SOUNDARK_BENCH_CACHE``). Licence: Alcachofa Soft's Drascula licence (free to
copy and redistribute with its notices; Debian main, DFSG-free; see the package's
``/usr/share/doc/drascula-music/copyright``). Where apt is missing or offline it says
so and falls back to the generated corpus. ``--generated`` takes the generated corpus:
music-like audio (three voices, bass and noise percussion, stereo, each file
different) of mixed lengths and formats (FLAC, WAV, MP3, AAC, Vorbis, AIFF, 24-bit and
96 kHz among them), 32 minutes in all. ``--corpus DIR`` takes every audio file under DIR.

Ours runs the whole stage with one worker per core: SHA-256 check of the source,
decode, resample, libopus, tags, QA (a complete decode of the output), hashing,
fsync and the store rename, including the start of its worker pool. Theirs is
``ffmpeg -i IN -c:a libopus -b:a 75k -vbr constrained -compression_level 10
-application audio -frame_duration 20 OUT`` (soundark's settings), one process per
file (its process starts count: that is how ffmpeg is used), as many at once as there
are cores. Both take the files longest first. The physical floor is libopus alone
(the library PyAV bundles) encoding PCM decoded and resampled beforehand, one thread
per core.

The machine may be shared, so the sides alternate for ``--rounds`` rounds and each
round gives two ratios: audio per wall second (what an idle machine shows) and audio
per CPU second of each side and all its processes (what stays true while other work
loads the cores). The minimum and median over rounds are printed.

    python benchmarks/bench_encode.py                  # real Ogg Vorbis, 3 rounds
    python benchmarks/bench_encode.py --quick          # generated, ~3 min of audio, smoke run
    python benchmarks/bench_encode.py --generated      # generated, 32 min, many formats
    python benchmarks/bench_encode.py --corpus DIR     # your own music

Ends with one JSON line for the corpus used; rates are audio seconds per second.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import resource
import shutil
import statistics
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

FLOOR = 0.9  # DESIGN.md: >= 0.9x ffmpeg on real lossy input, full QA on; aim >= 1.0
REAL_PACKAGE = "drascula-music"  # Debian main; 31 Ogg Vorbis files, 47 min
REAL_FOLDER = "usr/share/scummvm/drascula/audio"  # the other folders hold symlinks into it
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
    found = {p.resolve() for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXT}
    paths = sorted(found)  # resolved: a symlink and its target are one file
    if not paths:
        sys.exit(f"{folder}: no audio files ({', '.join(sorted(AUDIO_EXT))})")
    return paths


def real_corpus() -> Path | None:
    """The Debian package's Ogg Vorbis folder, fetched and unpacked once; None if apt cannot."""
    cache = Path(os.environ.get("SOUNDARK_BENCH_CACHE") or Path.home() / ".cache" / "soundark-bench")
    folder = cache / REAL_PACKAGE / REAL_FOLDER
    if folder.is_dir() and any(folder.glob("*.ogg")):
        return folder
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        print(f"no apt-get/dpkg-deb here: cannot fetch {REAL_PACKAGE}; "
              "using the generated corpus (or give --corpus DIR)")
        return None
    cache.mkdir(parents=True, exist_ok=True)
    got = subprocess.run(["apt-get", "download", REAL_PACKAGE], cwd=cache, capture_output=True,
                         text=True)
    debs = sorted(cache.glob(f"{REAL_PACKAGE}_*.deb"))
    if got.returncode != 0 or not debs:
        why = (got.stderr.strip().splitlines() or ["no .deb"])[-1]
        print(f"apt-get download {REAL_PACKAGE} failed ({why}); using the generated corpus "
              "(run `apt-get update` first, or give --corpus DIR)")
        return None
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(cache / REAL_PACKAGE)], check=True)
    debs[-1].unlink()  # the unpacked folder is the cache
    return folder if folder.is_dir() else None


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


@dataclass
class Round:
    """One side's run: wall seconds, CPU seconds of all its processes, bytes written."""

    wall: float
    cpu: float
    bytes_out: int
    others: float = 0.0  # share of the cores other processes used meanwhile


def run_ours(root: Path, sources: list[Source], workers: int) -> Round:
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
    return Round(result["seconds"], result["cpu"], result["bytes_out"])


def child(root: Path, workers: int) -> None:
    cpu0, started = _own_seconds(), time.perf_counter()
    result = run_encode(ArchivePaths(root), Settings(), options=EncodeOptions(workers=workers))
    elapsed = time.perf_counter() - started
    # Reap the fork server (and through it the pool workers it forked), so that their
    # CPU time reaches this process (RUSAGE_CHILDREN) and is counted as ours.
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        stop()
    print(json.dumps({"seconds": elapsed, "cpu": _own_seconds() - cpu0,
                      "bytes_out": result.bytes_out, "encoded": result.encoded,
                      "failed": result.failed, "failures": [f.reason for f in result.failures]}))


FFMPEG_OPUS = ["-c:a", "libopus", "-b:a", "75k", "-vbr", "constrained", "-compression_level", "10",
               "-application", "audio", "-frame_duration", "20"]  # soundark's settings


def run_ffmpeg(out_dir: Path, sources: list[Source], workers: int) -> Round:
    out_dir.mkdir()

    def one(i_src: tuple[int, Source]) -> int:
        dest = out_dir / f"{i_src[0]}.opus"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(i_src[1].path),
                        *FFMPEG_OPUS, str(dest)], check=True)
        return dest.stat().st_size

    cpu0, started = _own_seconds(), time.perf_counter()
    with cf.ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(one, enumerate(longest_first(sources))))
    elapsed = time.perf_counter() - started
    cpu = _own_seconds() - cpu0  # the ffmpeg processes, reaped (and this process's few threads)
    shutil.rmtree(out_dir)
    return Round(elapsed, cpu, total)


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


def run_floor(sources: list[Source], workers: int) -> Round:
    cpu0, started = _own_seconds(), time.perf_counter()
    with cf.ThreadPoolExecutor(workers) as pool:  # ctypes lets go of the GIL inside libopus
        total = sum(pool.map(_libopus_only, longest_first(sources)))
    return Round(time.perf_counter() - started, _own_seconds() - cpu0, total)


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


def timed(fn: Any, *args: Any) -> Round:
    """Run one side; note the share of the cores other processes used meanwhile."""
    busy0, own0, t0 = _busy_seconds(), _own_seconds(), time.perf_counter()
    result: Round = fn(*args)
    wall = time.perf_counter() - t0
    foreign = (_busy_seconds() - busy0) - (_own_seconds() - own0)
    result.others = max(0.0, foreign / (wall * (os.cpu_count() or 1)))
    return result


def longest_first(sources: list[Source]) -> list[Source]:
    return sorted(sources, key=lambda s: -s.seconds)


def pick_corpus(args: argparse.Namespace, tmp: Path) -> tuple[str, list[Path]]:
    if args.corpus:
        return str(args.corpus), find_corpus(args.corpus)
    real = None if (args.generated or args.quick) else real_corpus()
    if real is not None:
        return f"{REAL_PACKAGE} (Debian, Ogg Vorbis)", find_corpus(real)
    return "generated", make_corpus(tmp / "src", 0.1 if args.quick else 1.0)


def run_rounds(tmp: Path, sources: list[Source], workers: int, rounds: int) -> dict[str, list[Round]]:
    """Alternate the sides so that a change in the machine's load falls on both."""
    runs: dict[str, list[Round]] = {"ours": [], "ffmpeg": [], "floor": []}
    for r in range(rounds):
        order = ("ffmpeg", "ours") if r % 2 == 0 else ("ours", "ffmpeg")
        for side in order + ("floor",):
            if side == "ours":
                runs[side].append(timed(run_ours, tmp / f"archive{r}", sources, workers))
            elif side == "ffmpeg":
                runs[side].append(timed(run_ffmpeg, tmp / f"ffmpeg{r}", sources, workers))
            else:
                runs[side].append(timed(run_floor, sources, workers))
        print(f"  round {r + 1}: " + ", ".join(
            f"{k} {v[-1].wall:.2f} s wall {v[-1].cpu:.2f} s CPU (others used {v[-1].others:.0%})"
            for k, v in runs.items()), flush=True)
    return runs


def report(corpus: str, audio: float, bytes_in: int, runs: dict[str, list[Round]]) -> None:
    ours, ff, raw = runs["ours"], runs["ffmpeg"], runs["floor"]
    wall = [f.wall / o.wall for o, f in zip(ours, ff)]  # per round: side by side
    cpu = [f.cpu / o.cpu for o, f in zip(ours, ff)]
    vs_raw = [r.cpu / o.cpu for o, r in zip(ours, raw)]
    for name, side in (("soundark encode (QA, tags, hashing, fsync)", ours),
                       ("ffmpeg -c:a libopus per file", ff), ("libopus alone on decoded PCM", raw)):
        best = min(side, key=lambda r: r.wall)
        print(f"{name:43s} best {audio / best.wall:7.1f}x realtime, "
              f"{audio / min(r.cpu for r in side):6.1f} audio s per CPU s, "
              f"mean {best.bytes_out * 8 / audio / 1000:.1f} kbit/s, bytes out/in {best.bytes_out / bytes_in:.4f}")
    print(f"ratio vs ffmpeg, per round: wall {' '.join(f'{x:.3f}' for x in wall)}; "
          f"CPU {' '.join(f'{x:.3f}' for x in cpu)} (floor {FLOOR}, aim >= 1.0)")
    print(f"ratio vs libopus alone (CPU), median {statistics.median(vs_raw):.3f}")
    print(json.dumps({"benchmark": "encode", "corpus": corpus, "rounds": len(ours),
                      "audio_seconds": round(audio, 1),
                      "ours": round(audio / statistics.median(o.wall for o in ours), 2),
                      "theirs": round(audio / statistics.median(f.wall for f in ff), 2),
                      "unit": "audio seconds per wall second, median round",
                      "ratio": round(statistics.median(cpu), 3), "ratio_min": round(min(cpu), 3),
                      "ratio_kind": "CPU seconds of ffmpeg / of soundark, same files, median round",
                      "ratio_wall": round(statistics.median(wall), 3),
                      "ratio_wall_min": round(min(wall), 3),
                      "vs_libopus_alone": round(statistics.median(vs_raw), 3), "floor": FLOOR}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="generated 3-minute corpus, smoke run")
    parser.add_argument("--generated", action="store_true",
                        help="the generated 32-minute corpus of many formats, not the real one")
    parser.add_argument("--corpus", type=Path, help="encode every audio file under DIR instead")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (min and median)")
    parser.add_argument("--workers", type=int, default=0, help="default: one per core")
    args = parser.parse_args()
    workers = args.workers or cpu_count()
    if shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg is needed as the comparison baseline")
    with tempfile.TemporaryDirectory(prefix="bench_encode_") as tmp:
        corpus, paths = pick_corpus(args, Path(tmp))
        sources = [decode_48k(p) for p in paths]
        audio = sum(s.seconds for s in sources)
        bytes_in = sum(p.stat().st_size for p in paths)
        kinds = sorted({p.suffix.lower() for p in paths})
        print(f"{corpus}: {len(paths)} files ({' '.join(kinds)}), {audio / 60:.1f} min of audio, "
              f"{bytes_in / 1e6:.1f} MB, {workers} worker(s), {args.rounds} round(s)", flush=True)
        runs = run_rounds(Path(tmp), sources, workers, max(1, args.rounds))
    report(corpus, audio, bytes_in, runs)


if __name__ == "__main__":
    main()
