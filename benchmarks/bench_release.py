"""Benchmark: build audio bags + torrents vs `mktorrent` (v1) then `sha256sum` over the same bytes.

Makes a scratch archive whose store holds >= 1 GiB of audio-sized files (``--quick``: 64 MiB),
warms the page cache, then times side by side in one run:

* theirs: ``mktorrent -l <same piece size>`` over a folder of the same files (hard links),
  then ``sha256sum`` over them (what a shell script would do to make a bag manifest + torrent);
* ours: ``run_release_audio`` (links the files into a BagIt bag, writes tracks.jsonl and the
  manifests, one read for SHA-256 + SHA-1 pieces on two threads, libtorrent ``set_hash``).

Prints the figures, then one JSON line: ratio = our MB/s over theirs (floor 2.0, aim 4).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths, Settings, write_settings
from soundark.release.stage import run_release_audio
from soundark.release.torrent import piece_length_for

FLOOR = 2.0
NOW = "2024-01-01T00:00:00Z"


def make_archive(root: Path, total: int, file_size: int) -> tuple[ArchivePaths, list[Path]]:
    paths = ArchivePaths(root)
    root.mkdir(parents=True)
    write_settings(root, Settings())
    files = []
    block = os.urandom(1 << 20)
    with open_catalog(paths.catalog) as cat, cat.transaction():
        for i in range(max(1, total // file_size)):
            # distinct bytes per file, cheaply: a per-file header in front of shared random blocks
            data = hashlib.sha256(str(i).encode()).digest() * 32 + block * (file_size >> 20)
            sha = hashlib.sha256(data).hexdigest()
            path = paths.store_path(sha, ".opus")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            files.append(path)
            rid = cat.execute("INSERT INTO recording (key, title, artist, listens, rights) VALUES (?, ?, ?, ?, "
                              "'cc0-1.0')", (f"BENCH{i:07d}", f"Title {i}", "Bench Artist", 1000 - i)).lastrowid
            cat.execute("INSERT INTO plan (recording_id, tier, est_bytes, rank, weight, planned_at) "
                        "VALUES (?, 'opus75', ?, ?, ?, ?)", (rid, len(data), i + 1, 1000.0 - i, NOW))
            cat.execute("INSERT INTO encoded (recording_id, tier, sha256, bytes, ext, source_sha256, encoder,"
                        " created_at) VALUES (?, 'opus75', ?, ?, '.opus', ?, 'bench', ?)",
                        (rid, sha, len(data), "0" * 64, NOW))
    return paths, files


def warm(files: list[Path]) -> None:
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(8 << 20):
                pass


def theirs(files: list[Path], work: Path, piece: int) -> float:
    folder = work / "plain"
    folder.mkdir()
    for f in files:
        os.link(f, folder / f.name)
    start = time.perf_counter()
    subprocess.run(["mktorrent", "-l", str(piece.bit_length() - 1), "-d", "-o", str(work / "plain.torrent"),
                    str(folder)], check=True, capture_output=True)
    names = sorted(p.name for p in folder.iterdir())
    with open(work / "manifest.txt", "wb") as out:
        subprocess.run(["sha256sum", *names], cwd=folder, check=True, stdout=out)
    return time.perf_counter() - start


def ours(paths: ArchivePaths) -> tuple[float, dict]:
    settings = Settings(parity_overhead=0.0)
    start = time.perf_counter()
    result = run_release_audio(paths, settings, date="2024-01-01", target_size=1 << 50)
    return time.perf_counter() - start, result.as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB smoke run instead of 1 GiB")
    parser.add_argument("--size-mib", type=int, default=0, help="payload size in MiB (default 1024, quick 64)")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a temp folder)")
    args = parser.parse_args()
    for tool in ("mktorrent", "sha256sum"):
        if shutil.which(tool) is None:
            sys.exit(f"error: {tool} is not installed")
    total = (args.size_mib or (64 if args.quick else 1024)) << 20
    scratch = Path(tempfile.mkdtemp(prefix="bench_release_", dir=args.dir))
    try:
        paths, files = make_archive(scratch / "archive", total, 4 << 20)
        nbytes = sum(f.stat().st_size for f in files)
        piece = piece_length_for(nbytes)
        warm(files)
        t_theirs = theirs(files, scratch, piece)
        t_ours, result = ours(paths)
        [pub] = result["published"]
        mb = nbytes / 1e6
        print(f"payload: {len(files)} files, {nbytes / (1 << 20):,.0f} MiB, piece {piece >> 10} KiB")
        print(f"theirs (mktorrent v1 + sha256sum): {t_theirs:6.2f} s  {mb / t_theirs:8.1f} MB/s")
        print(f"ours   (bag + v1 torrent, 1 read):  {t_ours:6.2f} s  {mb / t_ours:8.1f} MB/s  "
              f"infohash {pub['infohash_v1']}")
        ratio = t_theirs / t_ours
        print(f"ratio {ratio:.2f}x (floor {FLOOR}x, aim 4x)")
        print(json.dumps({"benchmark": "release", "ours": round(mb / t_ours, 1), "theirs": round(mb / t_theirs, 1),
                          "unit": "MB/s", "ratio": round(ratio, 3), "floor": FLOOR}))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
