"""Many releases at once: `soundark seed` and `soundark verify` over 10, 100 and 1,000 bags.

    python benchmarks/bench_many.py                 # 10, 100, 1,000 releases of 8 files of ~64 KiB
    python benchmarks/bench_many.py --quick         # 10 and 100 releases
    python benchmarks/bench_many.py --sizes 1000 --files 50

For each size N it builds N small releases with soundark's own release code (BagIt bags by
`soundark.release.bag.build_bag`, v1 torrents by `soundark.release.torrent.make_torrent`), then,
each in a child process with the real command line:

* `soundark seed` of all N (one session, loopback only): the time until it says it is seeding
  (libtorrent checked every piece: the first start), its peak RSS (the kernel's ru_maxrss of
  the child, which is VmHWM) and the most file descriptors it held (/proc/PID/fd, sampled);
  then it is stopped (SIGINT) and started again: the time until seeding when the resume data
  saved by the first start is trusted (the JSON summary says how many were resumed, how many
  checked), and RSS and descriptors again;
* `soundark verify` of the N bags: time, peak RSS, most descriptors, and MB/s over the bytes the
  manifests list; beside it coreutils `sha256sum -c manifest-sha256.txt` in each bag, one after
  another (the way the bags' README tells a reader to check them by hand).

The command's time includes starting Python and importing soundark's CLI (seconds on a loaded
machine), so the throughput compared is verify_path's in this process, as bench_verify.py
measures it, against sha256sum -c's N processes (what a person checking N bags by hand pays).
The page cache is warm for both (read once untimed). Ends with one JSON line: verify throughput
of the largest N against sha256sum -c.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from soundark.preserve.verify import verify_path
from soundark.release.bag import BagEntry, build_bag
from soundark.release.torrent import TorrentSpec, make_torrent

FLOOR = 1.0  # verify of many small bags in one process is no slower than sha256sum -c bag by bag
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def build_releases(releases: Path, n: int, files: int, file_size: int) -> int:
    """N bags and their torrents under ``releases``; returns the payload bytes."""
    rnd = random.Random(n)
    block = rnd.randbytes(4 * file_size)
    (releases / "torrents").mkdir(parents=True, exist_ok=True)
    total = 0
    for r in range(n):
        name = f"many-{r:04d}"
        entries = []
        for i in range(files):
            size = file_size // 2 + rnd.randrange(file_size)
            start = rnd.randrange(len(block) - size)
            content = block[start:start + size] + f"{name}/{i}".encode()  # no two files alike
            entries.append(BagEntry(f"data/audio/t{i:03d}.opus", len(content), content=content))
            total += len(content)
        built = build_bag(releases / name, entries, {"Source-Organization": "bench_many"})
        spec = TorrentSpec(name, tuple(built.files), built.piece_length, "2026-01-01")
        made = make_torrent(spec, releases, built.pieces)
        (releases / "torrents" / f"{name}.torrent").write_bytes(made.data)
    return total


def fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Watch:
    """A child process: its output collected by threads, its descriptors sampled until it ends."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "soundark", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=ENV, text=True)
        self.out, self.err, self.max_fds, self.maxrss_kb, self.code = "", "", 0, 0, None
        self.readers = [threading.Thread(target=self._read, args=(name,), daemon=True) for name in ("out", "err")]
        for t in self.readers:
            t.start()

    def _read(self, name: str) -> None:
        for line in getattr(self.proc, "stdout" if name == "out" else "stderr"):
            setattr(self, name, getattr(self, name) + line)

    def alive(self) -> bool:
        """Reaps the child with wait4 (not Popen.poll) to get the kernel's peak RSS of it."""
        if self.code is not None:
            return False
        self.max_fds = max(self.max_fds, fds(self.proc.pid))
        pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        if pid == 0:
            return True
        self.code, self.maxrss_kb = os.waitstatus_to_exitcode(status), usage.ru_maxrss
        self.proc.returncode = self.code
        return False

    def wait_for(self, pattern: str, timeout: float) -> float:
        start = time.perf_counter()
        while not re.search(pattern, self.err):
            if not self.alive() or time.perf_counter() - start > timeout:
                sys.exit(f"child ended or timed out before {pattern!r}:\n{self.err[-2000:]}")
            time.sleep(0.02)
        return time.perf_counter() - start

    def finish(self) -> dict:
        while self.alive():
            time.sleep(0.01)
        for t in self.readers:
            t.join()
        return json.loads(self.out.strip().splitlines()[-1]) if self.out.strip() else {}


def seed_once(archive: Path, names: list[str], settle: float) -> dict:
    w = Watch(["seed", *names, "-a", str(archive), "--listen", "127.0.0.1:0", "--json"])
    ready = w.wait_for(r"seeding \d+ release", timeout=1800)
    until = time.monotonic() + settle  # a few seeding ticks: the steady state, not the start only
    while time.monotonic() < until and w.alive():
        time.sleep(0.1)
    w.proc.send_signal(signal.SIGINT)
    summary = w.finish()
    if summary.get("seeding") != len(names):
        sys.exit(f"seed: {summary.get('seeding')} of {len(names)} seeding:\n{w.err[-2000:]}")
    return {"ready_s": ready, "rss_mb": w.maxrss_kb / 1024, "fds": w.max_fds,
            "resumed": summary["resumed"], "checked": summary["checked"]}


def verify_once(releases: Path) -> dict:
    start = time.perf_counter()
    w = Watch(["verify", str(releases), "--json"])
    report = w.finish()
    seconds = time.perf_counter() - start
    if not report.get("ok"):
        sys.exit(f"verify failed: {report.get('counts')}")
    return {"verify_s": seconds, "rss_mb": w.maxrss_kb / 1024, "fds": w.max_fds}


def sha256sum_all(releases: Path, bags: list[str]) -> float:
    start = time.perf_counter()
    for name in bags:
        subprocess.run(["sha256sum", "--quiet", "-c", "manifest-sha256.txt"], cwd=releases / name, check=True)
    return time.perf_counter() - start


def run_size(root: Path, n: int, args: argparse.Namespace) -> dict:
    archive = root / f"n{n}"
    releases = archive / "releases"
    t = time.perf_counter()
    payload = build_releases(releases, n, args.files, args.file_size)
    names = sorted(p.name for p in releases.iterdir() if p.name.startswith("many-"))
    print(f"{n} releases built in {time.perf_counter() - t:.1f} s ({payload / 1e6:.1f} MB)", file=sys.stderr)
    first = seed_once(archive, names, args.settle)
    again = seed_once(archive, names, args.settle)
    if again["resumed"] != n or again["checked"]:
        sys.exit(f"restart re-checked: {again}")
    sha256sum_all(releases, names)  # warm the page cache for both sides, untimed
    theirs = min(sha256sum_all(releases, names) for _ in range(args.rounds))
    ours = min((verify_once(releases) for _ in range(args.rounds)), key=lambda r: r["verify_s"])
    ours["inproc_s"] = min(verify_in_process(releases) for _ in range(args.rounds))
    return {"n": n, "mb": payload / 1e6, "first": first, "again": again, "verify": ours, "sha256sum_s": theirs}


def verify_in_process(releases: Path) -> float:
    """verify_path alone, as bench_verify.py times it (no interpreter start, no imports)."""
    start = time.perf_counter()
    if not verify_path(releases).ok:
        sys.exit("verify failed")
    return time.perf_counter() - start


def show(rows: list[dict], files: int) -> None:
    print("seed: seconds from start to seeding, first start (every piece checked) and restart (resume data);")
    print("verify: seconds of the command (interpreter start included) and of verify_path in-process")
    print(f"{'releases':>8} {'seed: check':>12} {'resume':>7} {'RSS MB':>7} {'fds':>4} | "
          f"{'verify s':>8} {'in-proc':>7} {'RSS MB':>7} {'fds':>4} {'MB/s':>6} | {'sha256sum -c s':>14} {'MB/s':>6}")
    for r in rows:
        f, a, v = r["first"], r["again"], r["verify"]
        print(f"{r['n']:>8} {f['ready_s']:>11.2f}s {a['ready_s']:>6.2f}s {max(f['rss_mb'], a['rss_mb']):>7.0f} "
              f"{max(f['fds'], a['fds']):>4} | {v['verify_s']:>8.2f} {v['inproc_s']:>7.2f} {v['rss_mb']:>7.0f} "
              f"{v['fds']:>4} {r['mb'] / v['inproc_s']:>6.1f} | {r['sha256sum_s']:>14.2f} "
              f"{r['mb'] / r['sha256sum_s']:>6.1f}")
    if len(rows) >= 2:
        lo, hi = rows[-2], rows[-1]
        per = (hi["first"]["rss_mb"] - lo["first"]["rss_mb"]) / (hi["n"] - lo["n"]) * 1024
        print(f"seed memory per release (from {lo['n']} to {hi['n']} releases of {files} files): "
              f"{per:.0f} KiB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10 and 100 releases")
    ap.add_argument("--sizes", default="10,100,1000")
    ap.add_argument("--files", type=int, default=8, help="files per release")
    ap.add_argument("--file-size", type=int, default=64 << 10, help="mean file size in bytes")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds of seeding before RSS is read")
    ap.add_argument("--rounds", type=int, default=2, help="verify and sha256sum rounds; the best counts")
    args = ap.parse_args()
    sizes = [10, 100] if args.quick else [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        for n in sizes:
            rows.append(run_size(Path(tmp), n, args))
            print(f"done: {n} releases", file=sys.stderr)
    show(rows, args.files)
    last = rows[-1]
    ours, theirs = last["mb"] / last["verify"]["inproc_s"], last["mb"] / last["sha256sum_s"]
    print(json.dumps({"benchmark": f"verify-{last['n']}-bags", "ours": round(ours, 1), "theirs": round(theirs, 1),
                      "unit": "MB/s", "ratio": round(ours / theirs, 2), "floor": FLOOR}))


if __name__ == "__main__":
    main()
