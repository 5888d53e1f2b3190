"""Benchmark: `soundark scan` vs the standard integrity check, FFmpeg full decode + sha256sum.

Generates a small library of real, tagged audio (FLAC, MP3, M4A, Ogg Vorbis, Opus, WAV; one
minute each, noisy tones so the codecs work for their bits), then in one run:

1. theirs: for every file, ``ffmpeg -v error -threads 1 -i FILE -f null -`` (decodes the whole
   stream: the usual way to check a file is whole) and ``sha256sum FILE``, with as many files in
   flight as there are cores;
2. ours: ``scan_directory`` into a fresh catalog: SHA-256, full decode with sample counting and
   truncation checks, DRM check, tags, matching and catalog writes.

Prints figures for people and LAST one JSON line:
{"benchmark": "scan", "ours": files/s, "theirs": files/s, "unit": "files/s", "ratio": ours/theirs, "floor": 1.0}

    python benchmarks/bench_scan.py            # 48 files x 60 s
    python benchmarks/bench_scan.py --quick    # 12 files x 10 s
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import subprocess
import tempfile
import time
from pathlib import Path

from soundark.catalog import open_catalog
from soundark.catalog.importers.scan import scan_directory
from soundark.config import cpu_count
from soundark.media.synth import SourceTags, Voice, make_file

FORMATS = ("flac", "mp3", "m4a", "ogg", "opus", "wav")
FLOOR = 1.0


def make_library(folder: Path, files: int, seconds: float) -> int:
    total = 0
    for n in range(files):
        fmt = FORMATS[n % len(FORMATS)]
        album = folder / f"Artist {n % 4}" / f"Album {n % 8}"
        album.mkdir(parents=True, exist_ok=True)
        voice = Voice(notes=tuple(48 + (n * 7 + k * 5) % 24 for k in range(8)), noise=0.03, seed=n)
        tags = SourceTags(title=f"Song {n}", artists=[f"Artist {n % 4}"], album=f"Album {n % 8}",
                          track_number=n // 8 + 1, isrc=f"XXBEN{n:07d}")
        path = make_file(album / f"{n // 8 + 1:02d} - Song {n}", fmt, seconds, voice=voice, tags=tags)
        total += path.stat().st_size
    return total


def standard_check(path: Path) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-threads", "1", "-i", str(path), "-f", "null", "-"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["sha256sum", str(path)], check=True, stdout=subprocess.DEVNULL)


def run_theirs(folder: Path) -> float:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    start = time.perf_counter()
    with cf.ThreadPoolExecutor(max_workers=cpu_count()) as pool:
        list(pool.map(standard_check, files))
    return time.perf_counter() - start


def run_ours(folder: Path, work: Path) -> tuple[float, int]:
    with open_catalog(work / "catalog.sqlite3") as catalog:
        start = time.perf_counter()
        report = scan_directory(catalog, folder)
        elapsed = time.perf_counter() - start
    if report.rejected:
        raise SystemExit(f"benchmark library had rejected files: {report.as_dict()['rejections'][:3]}")
    return elapsed, report.new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    args = parser.parse_args()
    files, seconds = (12, 10.0) if args.quick else (48, 60.0)
    with tempfile.TemporaryDirectory(prefix="bench_scan_") as tmp:
        tmp_path = Path(tmp)
        lib = tmp_path / "lib"
        t0 = time.perf_counter()
        nbytes = make_library(lib, files, seconds)
        print(f"library: {files} files, {files * seconds / 60:.0f} min of audio, {nbytes / 1e6:.1f} MB "
              f"(made in {time.perf_counter() - t0:.1f} s); {cpu_count()} workers each side")
        theirs_s = run_theirs(lib)
        ours_s, imported = run_ours(lib, tmp_path)
        assert imported == files
    ours, theirs = files / ours_s, files / theirs_s
    print(f"theirs (ffmpeg -f null + sha256sum): {theirs_s:.2f} s  {theirs:.1f} files/s  "
          f"{nbytes / theirs_s / 1e6:.1f} MB/s")
    print(f"ours (soundark scan, catalog included): {ours_s:.2f} s  {ours:.1f} files/s  "
          f"{nbytes / ours_s / 1e6:.1f} MB/s")
    print(json.dumps({"benchmark": "scan", "ours": round(ours, 2), "theirs": round(theirs, 2),
                      "unit": "files/s", "ratio": round(ours / theirs, 3), "floor": FLOOR}))


if __name__ == "__main__":
    main()
