"""Benchmark: `/api/search` of `soundark serve` on a 1M-recording catalog under 20 concurrent clients.

A synthetic catalog (Zipf-distributed words in titles, artists and albums, like real
music metadata) is built once and cached. The real `soundark serve` process answers on
127.0.0.1; the load generator is wrk (Debian package `wrk`), or an asyncio httpx client
when wrk is missing. Queries are a mix a search box sees: single words, artist names,
title + artist, prefixes, quoted phrases and ISRCs, thousands of distinct ones.

Floor: p95 <= 50 ms. The JSON line reports ratio = 50 ms / p95 (higher is better).

    python benchmarks/bench_web.py            # 1M recordings, 20 clients, 20 s
    python benchmarks/bench_web.py --quick    # 50k recordings, 5 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np

FLOOR_MS = 50.0
CONSONANTS = "bcdfghjklmnprstvwz"
VOWELS = "aeiou"


def vocabulary(n: int, rng: np.random.Generator) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        k = int(rng.integers(2, 4))
        words.add("".join(CONSONANTS[rng.integers(len(CONSONANTS))] + VOWELS[rng.integers(len(VOWELS))]
                          for _ in range(k)) + CONSONANTS[rng.integers(len(CONSONANTS))])
    ordered = sorted(words)
    rng.shuffle(ordered)  # a word's frequency rank must not follow the alphabet (prefix queries)
    return ordered


def zipf_words(vocab: list[str], rng: np.random.Generator, count: int) -> np.ndarray:
    ranks = np.arange(1, len(vocab) + 1, dtype=np.float64)
    p = 1.0 / ranks**1.07
    p /= p.sum()
    return rng.choice(len(vocab), size=count, p=p)


def phrases(vocab: list[str], rng: np.random.Generator, count: int, max_words: int) -> list[str]:
    lengths = rng.integers(1, max_words + 1, size=count)
    idx = zipf_words(vocab, rng, int(lengths.sum()))
    out, pos = [], 0
    for n in lengths:
        out.append(" ".join(vocab[i].capitalize() for i in idx[pos:pos + n]))
        pos += n
    return out


def build_catalog(root: Path, n: int) -> Path:
    """ARCHIVE/catalog.sqlite3 with n recordings (+ plan rows); kept for the next run."""
    from soundark.catalog import open_catalog
    from soundark.config import Settings, write_settings

    done = root / "built-v2.ok"
    if done.exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    write_settings(root, Settings())
    rng = np.random.default_rng(7)
    vocab = vocabulary(40_000, rng)
    artists = phrases(vocab, rng, max(1000, n // 10), 3)
    titles = phrases(vocab, rng, n, 4)
    albums = phrases(vocab, rng, max(1000, n // 8), 3)
    artist_of = rng.integers(len(artists), size=n)
    album_of = rng.integers(len(albums), size=n)
    listens = (1e6 / np.arange(1, n + 1) ** 0.9).astype(np.int64)
    rng.shuffle(listens)
    t0 = time.perf_counter()
    with open_catalog(root / "catalog.sqlite3") as catalog, catalog.transaction() as conn:
        rows = ((i + 1, f"QZABC{i // 100_000:02d}{i % 100_000:05d}", titles[i], artists[artist_of[i]],
                 albums[album_of[i]], 120_000 + i % 240_000, f"{1960 + i % 64}-01-01", int(listens[i]))
                for i in range(n))
        conn.executemany("INSERT INTO recording(id, key, isrc, title, artist, album, duration_ms, date, listens) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         ((r[0], r[1], r[1], *r[2:]) for r in rows))
        order = np.argsort(-listens, kind="stable")
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(1, n + 1)
        conn.executemany("INSERT INTO plan(recording_id, tier, est_bytes, rank, weight, planned_at) "
                         "VALUES (?, ?, ?, ?, ?, '2026-01-01')",
                         ((i + 1, "opus75" if rank[i] <= n * 0.8 else "skip", 2_000_000 if rank[i] <= n * 0.8
                           else 0, int(rank[i]), float(listens[i])) for i in range(n)))
    print(f"built a {n:,}-recording catalog in {time.perf_counter() - t0:.1f} s at {root}", flush=True)
    done.write_text("ok")
    return root


def query_mix(root: Path, count: int, seed: int = 11) -> list[str]:
    """Queries drawn from the catalog's own rows, like people type them: people look for what
    they listen to, so a recording is searched for in proportion to its listens."""
    from soundark.catalog import open_catalog

    rng = np.random.default_rng(seed)
    with open_catalog(root / "catalog.sqlite3", readonly=True) as cat:
        listens = np.array([r[0] or 0 for r in cat.execute("SELECT listens FROM recording ORDER BY id")],
                           dtype=np.float64) + 1.0
        ids = rng.choice(np.arange(1, listens.size + 1), size=count, p=listens / listens.sum())
        wanted = ",".join(map(str, set(ids.tolist())))
        rows = {r[0]: r[1:] for r in cat.execute(
            f"SELECT id, title, artist, album, isrc FROM recording WHERE id IN ({wanted})")}
    out = []
    for i, rid in enumerate(ids.tolist()):
        title, artist, album, isrc = rows[rid]
        tw, aw = title.lower().split(), artist.lower().split()
        kind = i % 20
        if kind < 7:
            q = str(rng.choice(tw))                      # one word of a title
        elif kind < 12:
            q = artist.lower()                           # an artist's name
        elif kind < 15:
            q = f"{rng.choice(tw)} {rng.choice(aw)}"     # title word + artist word
        elif kind < 17:
            q = str(rng.choice(tw))[:4] + "*"            # a prefix
        elif kind < 19:
            q = f'"{title.lower()}"'                     # a quoted title
        else:
            q = f"{isrc[:2]}-{isrc[2:5]}-{isrc[5:7]}-{isrc[7:]}"  # an ISRC
        out.append("/api/search?" + urllib.parse.urlencode({"q": q}))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, port: int, workers: int, cache: bool) -> subprocess.Popen:
    """`soundark serve` of *root*, returned once it says every worker accepts (`ready: N workers
    accepting` on stderr): a worker still starting takes no connection, so a load begun before then
    would pile its clients on the workers already up."""
    env = {**os.environ, "SOUNDARK_WEB_SEARCH_CACHE": "4096" if cache else "0"}
    proc = subprocess.Popen([sys.executable, "-m", "soundark", "serve", "-a", str(root), "--port", str(port),
                             "--workers", str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env, start_new_session=True)  # its group: the workers go with it
    said: list[str] = []
    ready = threading.Event()

    def drain() -> None:  # also keeps the pipe from filling while the server runs
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace")
            said.append(line)
            if line.startswith("ready: "):
                ready.set()

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 120
    while not ready.wait(0.2) and proc.poll() is None and time.monotonic() < deadline:
        pass
    if ready.is_set():
        return proc
    os.killpg(proc.pid, signal.SIGKILL)  # uvicorn's workers too: they hold its stderr open
    proc.wait()
    raise SystemExit(f"server did not start: {''.join(said[-20:])}")


WRK_SCRIPT = r"""
local paths = {}
local counter = 0
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  counter = (args[2] == "from-start") and 0 or math.random(#paths)
end
function request()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "errors": %d, "non2xx": %d}\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def run_wrk(base: str, paths_file: Path, clients: int, seconds: int, from_start: bool = False) -> dict:
    """wrk with one thread: the paths in order, from a random line (from the first: *from_start*)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT)
    out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "5s", "-s", f.name,
                          base, "--", str(paths_file), "from-start" if from_start else "anywhere"],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    line = next(ln for ln in out.splitlines() if ln.startswith("WRK "))
    r = json.loads(line[4:])
    return {"tool": "wrk", "requests": r["requests"], "rps": r["requests"] / (r["duration_us"] / 1e6),
            "p50": r["p50_us"] / 1000, "p95": r["p95_us"] / 1000, "p99": r["p99_us"] / 1000,
            "max": r["max_us"] / 1000, "errors": r["errors"] + r["non2xx"]}


async def _httpx_load(base: str, paths: list[str], clients: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(k: int, client: httpx.AsyncClient) -> None:
        nonlocal errors
        i = k * 997
        while time.perf_counter() < stop:
            i += 1
            t = time.perf_counter()
            try:
                ok = (await client.get(paths[i % len(paths)])).status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - t)
            errors += not ok

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
        await asyncio.gather(*(worker(k, client) for k in range(clients)))
    lat = np.array(latencies) * 1000
    return {"tool": "httpx", "requests": lat.size, "rps": lat.size / (time.perf_counter() - t0),
            "p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95)),
            "p99": float(np.percentile(lat, 99)), "max": float(lat.max()), "errors": errors}


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (Linux /proc), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:  # fields[1] is the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def repeat_share(paths: list[str]) -> float:
    """Share of requests whose query was already asked earlier in the stream."""
    seen: set[str] = set()
    repeats = 0
    for p in paths:
        repeats += p in seen
        seen.add(p)
    return repeats / len(paths)


def measure(root: Path, paths: list[str], paths_file: Path, args: argparse.Namespace, cache: bool,
            seconds: int) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(root, port, args.workers, cache)
    try:
        use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
        # warm-up on other queries than the measured ones: page cache and every worker's connections
        asyncio.run(_httpx_load(base, paths[len(paths) // 2:], args.clients, 2))
        cpu0 = tree_cpu_seconds(proc.pid)
        r = run_wrk(base, paths_file, args.clients, seconds) if use_wrk else \
            asyncio.run(_httpx_load(base, paths, args.clients, seconds))
        r["cpu_ms"] = (tree_cpu_seconds(proc.pid) - cpu0) * 1000 / max(1, r["requests"])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    label = "with the search cache" if cache else "no search cache (every query hits SQLite)"
    print(f"  {label}: {r['requests']:,} requests ({r['rps']:,.0f} req/s, {r['tool']}), errors {r['errors']}; "
          f"p50 {r['p50']:.1f} ms  p95 {r['p95']:.1f} ms  p99 {r['p99']:.1f} ms  max {r['max']:.1f} ms; "
          f"server CPU {r['cpu_ms']:.2f} ms/request",
          flush=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50k recordings, 5 s of load")
    ap.add_argument("--recordings", type=int, default=None)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2, help="server processes")
    ap.add_argument("--queries", type=int, default=50_000, help="length of the query stream")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "soundark-bench-web")
    ap.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto")
    args = ap.parse_args()
    n = args.recordings or (50_000 if args.quick else 1_000_000)
    seconds = args.seconds or (5 if args.quick else 20)
    root = build_catalog(args.cache / f"archive-{n}", n)
    paths = query_mix(root, args.queries)
    paths_file = root / "queries.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    print(f"/api/search on {n:,} recordings, {args.clients} concurrent clients, {args.workers} server "
          f"workers, {seconds} s per pass; a stream of {len(paths):,} queries ({len(set(paths)):,} distinct, "
          f"{repeat_share(paths):.0%} repeats of an earlier query)", flush=True)
    raw = measure(root, paths, paths_file, args, cache=False, seconds=seconds)
    r = measure(root, paths, paths_file, args, cache=True, seconds=seconds)
    met = "met" if r["p95"] <= FLOOR_MS else "NOT met"
    print(f"  floor p95 <= {FLOOR_MS:.0f} ms (as served, with the cache): {met}")
    print(json.dumps({"benchmark": "web_search", "ours": round(r["p95"], 2), "theirs": FLOOR_MS, "unit": "ms p95",
                      "ratio": round(FLOOR_MS / r["p95"], 3), "floor": 1.0, "rps": round(r["rps"], 1),
                      "p50_ms": round(r["p50"], 2), "p99_ms": round(r["p99"], 2), "errors": r["errors"],
                      "uncached_p95_ms": round(raw["p95"], 2), "uncached_rps": round(raw["rps"], 1),
                      "cpu_ms_per_request": round(r["cpu_ms"], 3),
                      "uncached_cpu_ms_per_request": round(raw["cpu_ms"], 3),
                      "load_average": round(os.getloadavg()[0], 2),
                      "recordings": n, "clients": args.clients}))


if __name__ == "__main__":
    main()
