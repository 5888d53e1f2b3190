"""Full verify of BagIt bags (manifest SHA-256 + torrent v1 pieces) vs coreutils `sha256sum -c`.

    python benchmarks/bench_verify.py            # >= 2 GiB of bags, best of 5 rounds each
    python benchmarks/bench_verify.py --quick    # 128 MiB smoke run
    python benchmarks/bench_verify.py --hybrid   # hybrid torrents: v2 roots too; no floor (pads
                                                 # to 4 MiB pieces double the SHA-1 work here)

Same bytes, same cache state: the bags are written, flushed to disk (so no writeback runs during
a timing) and read once untimed, so both sides read from the page cache. Then each round times
`sha256sum -c` (bag after bag, as one would by hand) and `soundark verify` over all the bags, in
alternating order; the best round of each counts (other work on the machine only ever slows a
run down). Both throughputs are the manifest-listed bytes over the wall time; ours also checks
every torrent piece (SHA-1), sha256sum only the manifests. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libtorrent as lt

from soundark.fixity.bagit import hash_files, write_bag_tags
from soundark.preserve.verify import verify_path

FLOOR = 3.0


def make_bags(root: Path, total: int, bags: int, file_size: int, hybrid: bool = False) -> None:
    per_bag = total // bags
    block = os.urandom(1 << 20)
    for b in range(bags):
        bag = root / "releases" / f"bench-{b:02d}"
        (bag / "data").mkdir(parents=True)
        rels, n, written = [], 0, 0
        while written < per_bag:
            rel = f"data/t{n:05d}.opus"
            size = min(file_size + (n % 7) * 4099, per_bag - written)
            with open(bag / rel, "wb") as f:
                left = size
                while left:
                    k = min(left, len(block))
                    f.write(block[(n * 4099) % 1000: (n * 4099) % 1000 + k] if k < len(block) - 1000 else block[:k])
                    left -= k
            rels.append(rel)
            written += size
            n += 1
        hashes = hash_files([bag / r for r in rels])
        write_bag_tags(bag, [(r, h.sha256, h.size) for r, h in zip(rels, hashes)], {})
        ct = lt.create_torrent(lt.list_files(str(bag)), 4 << 20, 0 if hybrid else lt.create_torrent.v1_only)
        ct.set_creation_date(0)
        lt.set_piece_hashes(ct, str(bag.parent))
        (root / "releases" / "torrents").mkdir(exist_ok=True)
        (root / "releases" / "torrents" / f"{bag.name}.torrent").write_bytes(lt.bencode(ct.generate()))


def bench_bags(root: Path) -> list[Path]:
    return sorted(p for p in (root / "releases").iterdir() if p.name.startswith("bench-"))


def warm(root: Path) -> int:
    """Read every byte once (untimed); returns the bytes the manifests list."""
    listed, buf = 0, bytearray(1 << 20)
    for bag in bench_bags(root):
        for line in (bag / "manifest-sha256.txt").read_text().splitlines():
            with open(bag / line.split(None, 1)[1], "rb", buffering=0) as f:
                while (n := f.readinto(buf)):
                    listed += n
    return listed


def run_theirs(root: Path) -> float:
    """The standard way: `sha256sum -c manifest-sha256.txt` in each bag, one after another."""
    start = time.perf_counter()
    for bag in bench_bags(root):
        if subprocess.run(["sha256sum", "--quiet", "-c", "manifest-sha256.txt"], cwd=bag, check=False).returncode:
            sys.exit("sha256sum -c failed")
    return time.perf_counter() - start


def run_ours(root: Path, want: str) -> tuple[float, float]:
    """Wall and CPU seconds of one full verify of every bag."""
    start, cpu = time.perf_counter(), time.process_time()
    report = verify_path(root)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    if not (report.ok and {"manifest-sha256", want} <= set(report.checks)):
        sys.exit(f"soundark verify failed: {report.problems[:3]} {report.checks}")
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--hybrid", action="store_true", help="hybrid torrents (v2 roots too); the floor is v1")
    args = ap.parse_args()
    total = (128 << 20) if args.quick else int(args.gib * (1 << 30))
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        make_bags(root, total, bags=4, file_size=4 << 20, hybrid=args.hybrid)
        os.sync()
        listed = warm(root)
        print(f"made {total / 2**30:.2f} GiB in 4 bags in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        want = "v2-roots" if args.hybrid else "v1-pieces"
        theirs_s, ours_s, ours_cpu = [], [], []
        for r in range(max(1, args.rounds)):
            for side in (("theirs", "ours") if r % 2 == 0 else ("ours", "theirs")):
                if side == "theirs":
                    theirs_s.append(run_theirs(root))
                else:
                    wall, cpu = run_ours(root, want)
                    ours_s.append(wall)
                    ours_cpu.append(cpu)
            print(f"round {r + 1}: sha256sum -c {theirs_s[-1]:.2f} s, soundark verify {ours_s[-1]:.2f} s "
                  f"({ours_cpu[-1] / ours_s[-1]:.2f} cores busy)", file=sys.stderr)
        shutil.rmtree(root / "releases", ignore_errors=True)
    ours = listed / min(ours_s) / 1e6
    theirs = listed / min(theirs_s) / 1e6
    what = "SHA-256 + v1 pieces + v2 roots" if args.hybrid else "SHA-256 + v1 pieces"
    print(f"soundark verify ({what}, {os.cpu_count()} cores): {ours:,.0f} MB/s ({min(ours_s):.2f} s)")
    print(f"sha256sum -c, one bag after another:              {theirs:,.0f} MB/s ({min(theirs_s):.2f} s)")
    print(json.dumps({"benchmark": "verify" + ("-hybrid" if args.hybrid else ""), "ours": round(ours, 1),
                      "theirs": round(theirs, 1), "unit": "MB/s", "ratio": round(ours / theirs, 2),
                      "floor": None if args.hybrid else FLOOR}))


if __name__ == "__main__":
    main()
