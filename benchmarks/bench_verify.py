"""Full verify of BagIt bags (manifest SHA-256 + torrent v1 pieces) vs coreutils `sha256sum -c`.

    python benchmarks/bench_verify.py            # >= 2 GiB of bags
    python benchmarks/bench_verify.py --quick    # 128 MiB smoke run

Both run warm (the data was just written, so it is in the page cache) over the same bags;
ours also checks every torrent piece (SHA-1), sha256sum only the manifests. Ends with one JSON line.
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


def make_bags(root: Path, total: int, bags: int, file_size: int) -> None:
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
        ct = lt.create_torrent(lt.list_files(str(bag)), 4 << 20, lt.create_torrent.v1_only)
        ct.set_creation_date(0)
        lt.set_piece_hashes(ct, str(bag.parent))
        (root / "releases" / "torrents").mkdir(exist_ok=True)
        (root / "releases" / "torrents" / f"{bag.name}.torrent").write_bytes(lt.bencode(ct.generate()))


def run_theirs(root: Path) -> float:
    """The standard way: `sha256sum -c manifest-sha256.txt` in each bag, one after another."""
    start = time.perf_counter()
    for bag in sorted(p for p in (root / "releases").iterdir() if p.name.startswith("bench-")):
        if subprocess.run(["sha256sum", "--quiet", "-c", "manifest-sha256.txt"], cwd=bag).returncode:
            sys.exit("sha256sum -c failed")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--gib", type=float, default=2.0)
    args = ap.parse_args()
    total = (128 << 20) if args.quick else int(args.gib * (1 << 30))
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        make_bags(root, total, bags=4, file_size=4 << 20)
        print(f"made {total / 2**30:.2f} GiB in 4 bags in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        theirs_s = run_theirs(root)
        t = time.perf_counter()
        report = verify_path(root)
        ours_s = time.perf_counter() - t
        assert report.ok and "v1-pieces" in report.checks, report.problems[:3]
        theirs_s2 = run_theirs(root)
        theirs_s = min(theirs_s, theirs_s2)
        ours = report.bytes / ours_s / 1e6
        theirs = total / theirs_s / 1e6
        print(f"soundark verify (SHA-256 + v1 pieces, {os.cpu_count()} cores): {ours:,.0f} MB/s ({ours_s:.2f} s)")
        print(f"sha256sum -c, one bag after another:              {theirs:,.0f} MB/s ({theirs_s:.2f} s)")
        shutil.rmtree(root / "releases", ignore_errors=True)
    print(json.dumps({"benchmark": "verify", "ours": round(ours, 1), "theirs": round(theirs, 1), "unit": "MB/s",
                      "ratio": round(ours / theirs, 2), "floor": FLOOR}))


if __name__ == "__main__":
    main()
