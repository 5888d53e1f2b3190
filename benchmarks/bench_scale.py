"""Benchmark: the catalog path at scale (1M, 10M, 50M rows), and how each cost grows with the catalog.

For each size N, on a synthetic catalog of N track rows (benchmarks/catalog_gen.py: ISRCs
shared like 256M tracks / 186M recordings, Zipf listens, log-normal durations, artists with
several albums, 10 % non-Latin titles, MusicBrainz IDs on a share), every step runs as its own
child process (the real CLI where there is one), timed, with its peak RSS (/usr/bin/time %M;
for the web server, the largest VmHWM of its processes):

1. ``soundark import catalog`` of the N rows into a fresh archive (JSONL), then of 1 % more
   rows (new albums of the same catalog, compilations included) into the loaded catalog;
   beside the fresh import, at the sizes given by --cli-sizes (default the smallest), the
   sqlite3 CLI writing the same tables from the same rows as CSV (bench_import.SAME_TABLES_SQL);
2. the catalog's size on disk (checkpointed: catalog.sqlite3 + WAL);
3. search p50/p95 (soundark.catalog.search.find, what the CLI and the web run) over a fixed
   seeded mix of 300 queries: title words, artists, title + artist, prefixes, phrases, ISRCs,
   and Japanese, Chinese, Cyrillic and Arabic words; one untimed pass first (a warm catalog);
4. web: ``soundark serve`` on 127.0.0.1 as served (two workers, search cache on), 20 concurrent
   clients (wrk, else httpx) on ``/api/search`` for --web-seconds over 30,000 queries of the same
   kinds, after 5 s of load on 5,000 others (it reports the share of requests whose query was asked
   before, in the warm-up or the run: the cache's hits, mostly the 16 non-Latin words);
   the catalog file is read once first when it fits in the memory available (a serving machine
   holds its catalog in the page cache), and the server's CPU per request is reported;
   --web-runs times (default 3), the figure being the median run's p95 (every run's is kept);
5. ``soundark plan --budget`` end to end (read the catalog, select, write every plan row);
6. ``soundark release list`` and ``soundark mirror plan`` over a release list of 10,000 releases
   (releases/torrents.json in the documented format, docs/release.md).

Then it prints each cost's growth exponent k between consecutive sizes (cost ∝ N^k: 1 is
linear, a step well above 1 is super-linear), checks the floors at the largest size (search
p95 <= 30 ms, web p95 <= 50 ms, plan <= 10 min, <= 40 GB on disk for 50M rows, no memory growth
but the plan's), extrapolates to 50M rows from the last exponent when 50M was not run, and
ends with one JSON line: {"benchmark": "catalog_scale", "ours": fresh import rows/s, "theirs":
the sqlite3 CLI's rows/s, "unit": "rows/s", "ratio", "floor": 1.0, "sizes": {...},
"exponents": {...}, "floors": {...}}.

    python benchmarks/bench_scale.py                      # 1M and 3M rows
    python benchmarks/bench_scale.py --sizes 1M,10M,50M --work /big/disk/folder
    python benchmarks/bench_scale.py --search-only ARCHIVE --albums N   # step 3 alone, one JSON line

--search-only times step 3 alone over an archive imported beforehand from catalog_gen.py rows
(N: the `next album` catalog_gen printed), e.g. the same catalog before and after a migration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from catalog_gen import CatalogGenerator  # noqa: E402

RELEASES = 10_000
FLOORS = {"search_p95_ms": 30.0, "web_p95_ms": 50.0, "plan_s": 600.0, "disk_gb_at_50M": 40.0}
TARGET = 50_000_000
WEB_QUERIES = 30_000  # more than 20 clients ask in --web-seconds: wrk never wraps round to a query it asked
WEB_WARM_S = 5  # seconds of load on other queries first (their prefix buckets, the workers' connections)
GROWS = 0.25  # a peak RSS exponent above this between the two largest sizes counts as growing


# ---------------------------------------------------------------- child processes

def timed(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of *cmd* run under /usr/bin/time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-o", tf.name, "-f", "%M", *cmd], capture_output=True,
                              text=True, env={**os.environ, **(env or {})})
        seconds = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        rss_kb = int(tf.read().split()[-1])
    return seconds, rss_kb / 1024, proc.stdout


def soundark(*args: str) -> list[str]:
    return [sys.executable, "-m", "soundark", *args]


def child_search(db: Path, queries_file: Path) -> None:
    """Child mode: time find() over the queries (after one untimed pass); print one JSON object with
    p50/p95 overall and p95 per kind of query."""
    from soundark.catalog import open_catalog
    from soundark.catalog.search import find

    mix = [(kind_of(q), q) for q in json.loads(queries_file.read_text(encoding="utf-8"))]
    with open_catalog(db, readonly=True) as catalog:
        for _, q in mix:
            find(catalog, q, limit=20)
        times, hits = [], 0
        for _, q in mix:
            t = time.perf_counter()
            res = find(catalog, q, limit=20)
            times.append((time.perf_counter() - t) * 1000)
            hits += res.total > 0
    by_kind: dict[str, list[float]] = {}
    for (kind, _), ms in zip(mix, times):
        by_kind.setdefault(kind, []).append(ms)
    slowest = sorted(zip(times, (q for _, q in mix)), reverse=True)[:5]
    indexed = [ms for (kind, _), ms in zip(mix, times) if kind != SCAN_KIND]  # all but those (a scan before 0011)
    print(json.dumps({**percentiles(times), "queries": len(times), "found": hits,
                      "p95_ms_indexed": percentiles(indexed)["p95_ms"] if indexed else None,
                      "by_kind": {k: {**percentiles(v), "queries": len(v)} for k, v in sorted(by_kind.items())},
                      "slowest": [[round(t, 1), q] for t, q in slowest]}, ensure_ascii=False))


SCAN_KIND = "CJK word of 1-2 characters (grams)"  # a scan until migration 0011


def kind_of(query: str) -> str:
    """What a query asks for, as search.find treats it."""
    from soundark.catalog.search import NOSPACE
    from soundark.isrc import is_valid

    words = query.strip('"').split()
    if is_valid(query):
        return "ISRC"
    if any(len(w) < 3 and re.search(f"[{NOSPACE}]", w) for w in words):
        return SCAN_KIND
    if any(re.search(f"[{NOSPACE}]", w) for w in words):
        return "CJK 3+ characters (trigrams)"
    if query.startswith('"'):
        return "quoted title"
    if query.endswith("*"):
        return "prefix"
    return "words" if query.isascii() else "words, non-ASCII"


def percentiles(times: list[float]) -> dict:
    times = sorted(times)
    return {"p50_ms": statistics.median(times), "p95_ms": times[math.ceil(len(times) * 0.95) - 1],
            "max_ms": times[-1]}


# ---------------------------------------------------------------- inputs

def query_mix(gen: CatalogGenerator, albums: int, count: int, seed: int) -> list[str]:
    """A fixed seeded mix of what a search box sees, drawn from recordings of the catalog."""
    df = gen.sample(count, albums, seed)
    rng = np.random.default_rng(seed)
    out = []
    for i, (title, artists, isrc) in enumerate(zip(df["title"].to_list(), df["artists"].to_list(),
                                                    df["isrc"].to_list())):
        words = title.split()
        word = words[int(rng.integers(len(words)))]
        kind = i % 8
        if kind == 0 or (kind == 7 and not isrc):
            out.append(word.lower())                                    # one word of a title
        elif kind == 1:
            out.append(artists[0])                                      # an artist
        elif kind == 2:
            out.append(f"{word} {artists[0].split()[0]}")               # title word + artist
        elif kind == 3:
            out.append(word[:4] + "*" if len(word) >= 4 and word.isascii() else word)  # a prefix
        elif kind == 4:
            out.append(f'"{title}"')                                     # a quoted title
        elif kind == 5:
            out.append(NON_LATIN[int(rng.integers(len(NON_LATIN)))])     # a non-Latin word
        elif kind == 6:
            out.append(f"{word} {words[-1]}")                            # two title words
        else:
            out.append(f"{isrc[:2]}-{isrc[2:5]}-{isrc[5:7]}-{isrc[7:]}")  # an ISRC
    return out


# words the generator's non-Latin vocabularies hold: whole words, substrings of longer runs (ja, zh)
NON_LATIN = ("東京", "タワー", "さくら", "夜", "ありがとう", "月亮", "北京", "朋友", "爱情", "ночь", "любовь",
             "Москва", "звезда", "حب", "قمر", "ليل")


def release_list(path: Path, count: int, seed: int = 5) -> None:
    """releases/torrents.json with *count* releases: metadata, audio by rank, parity, art."""
    rng = np.random.default_rng(seed)
    share = 1.0 / np.arange(1, count + 1) ** 1.1
    share /= share.sum()
    size = rng.integers(20 * 10**9, 100 * 10**9, size=count)
    rows = []
    for i in range(count):
        phase = "metadata" if i < 3 else ("art" if i >= count - 20 else ("parity" if i % 50 == 49 else "audio"))
        name = f"soundark-{phase}-{i + 1:05d}"
        ih = f"{int(rng.integers(1 << 62)):016x}{i:024x}"
        rows.append({"name": name, "phase": phase, "infohash_v1": ih, "infohash_v2": None,
                     "magnet": f"magnet:?xt=urn:btih:{ih}&dn={name}", "bytes": int(size[i]),
                     "files": int(size[i] // 2_100_000), "rank_first": i * 40_000 + 1,
                     "rank_last": (i + 1) * 40_000, "listens": int(share[i] * 1e10),
                     "listens_share": float(share[i]), "created": "2026-01-01",
                     "torrent": f"torrents/{name}.torrent",
                     "parity_for": f"soundark-audio-{i:05d}" if phase == "parity" else None})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": "soundark-torrents/1", "releases": rows}), encoding="utf-8")


# ---------------------------------------------------------------- steps

def catalog_bytes(db: Path) -> int:
    from soundark.catalog import open_catalog

    with open_catalog(db) as catalog:
        catalog.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists())


def import_rows(archive: Path, jsonl: Path, rows: int) -> dict:
    s, rss, out = timed(soundark("import", "catalog", str(jsonl), "--rights", "owned", "--json", "-a", str(archive)))
    rep = json.loads(out)
    assert rep["rejected"] == 0 and rep["new"] + rep["updated"] + rep["unchanged"] == rows, rep
    return {"s": s, "rows_per_s": rows / s, "rss_mb": rss}


def cli_import(csv_path: Path, work: Path, rows: int) -> dict:
    from bench_import import SAME_TABLES_SQL

    archive = work / "cli-archive"
    shutil.rmtree(archive, ignore_errors=True)
    timed(soundark("init", str(archive)))
    db = archive / "catalog.sqlite3"
    script = work / "same-tables.sql"
    script.write_text(SAME_TABLES_SQL.format(csv=csv_path), encoding="utf-8")
    s, rss, _ = timed(["sh", "-c", f'sqlite3 "{db}" < "{script}"'])
    shutil.rmtree(archive, ignore_errors=True)
    return {"s": s, "rows_per_s": rows / s, "rss_mb": rss}


def search(archive: Path, queries: list[str], work: Path) -> dict:
    qf = work / "queries.json"
    qf.write_text(json.dumps(queries, ensure_ascii=False), encoding="utf-8")
    s, rss, out = timed([sys.executable, __file__, "--child-search", str(archive / "catalog.sqlite3"), str(qf)])
    return {**json.loads(out), "rss_mb": rss}


def tree_status_kb(pid: int, fields: tuple[str, ...]) -> list[dict[str, int]]:
    """*fields* of /proc/PID/status (in kB) of a process and of each of its children."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if int(entry) != pid and int(stat[1]) != pid:
                continue
            status = {line.split(":", 1)[0]: line for line in Path(f"/proc/{entry}/status").read_text().splitlines()}
            found.append({f: int(status[f].split()[1]) for f in fields if f in status})
        except (OSError, IndexError, ValueError):
            continue
    return found


def tree_peak_rss_mb(pid: int) -> float:
    """The largest VmHWM of a process and its children (the server's workers)."""
    return max((p.get("VmHWM", 0) for p in tree_status_kb(pid, ("VmHWM",))), default=0) / 1024


def tree_rss_now_mb(pid: int) -> dict[str, float]:
    """The largest private (RssAnon) and file-backed (RssFile: the mapped catalog's pages it
    touched, shared with the OS page cache) resident memory of a process and its children, now."""
    procs = tree_status_kb(pid, ("RssAnon", "RssFile"))
    return {"anon": max((p.get("RssAnon", 0) for p in procs), default=0) / 1024,
            "file": max((p.get("RssFile", 0) for p in procs), default=0) / 1024}


def warm_page_cache(db: Path) -> float:
    """Read the catalog once, as a serving machine holds it in its page cache, when it fits in the
    memory available (else leave it: the machine's memory is then the limit); GB read."""
    size = sum(f.stat().st_size for f in (db, Path(f"{db}-wal")) if f.exists())
    available = next((int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemAvailable:")), 0)
    if size > available - (1 << 30):  # a GiB left for the server's own memory
        return 0.0
    for f in (db, Path(f"{db}-wal")):
        if f.exists():
            with open(f, "rb", buffering=0) as fh:
                while fh.read(1 << 23):
                    pass
    return size / 1e9


def web(archive: Path, queries: list[str], warm_queries: list[str], work: Path, seconds: int) -> dict:
    """The server as served (two workers, search cache on) after a warm-up on other queries;
    the measured list is a different draw, but a query drawn twice is asked again (the share of such
    requests is returned: ~29 %, answered from a worker's cache when that worker saw it before)."""
    import bench_web

    def paths_file(name: str, qs: list[str]) -> Path:
        f = work / name
        f.write_text("\n".join("/api/search?" + urllib.parse.urlencode({"q": q}) for q in qs) + "\n",
                     encoding="utf-8")
        return f

    warmed_gb = warm_page_cache(archive / "catalog.sqlite3")
    measured, warm = paths_file("paths.txt", queries), paths_file("warm-paths.txt", warm_queries)
    port = bench_web.free_port()
    base = f"http://127.0.0.1:{port}"
    proc = bench_web.start_server(archive, port, 2, True)  # as served: two workers, the search cache on
    try:
        if shutil.which("wrk"):
            bench_web.run_wrk(base, warm, 20, WEB_WARM_S)
            cpu0 = bench_web.tree_cpu_seconds(proc.pid)
            r = bench_web.run_wrk(base, measured, 20, seconds, from_start=True)
        else:
            asyncio.run(bench_web._httpx_load(base, ["/api/search?q=" + urllib.parse.quote(q)
                                                     for q in warm_queries], 20, WEB_WARM_S))
            cpu0 = bench_web.tree_cpu_seconds(proc.pid)
            r = asyncio.run(bench_web._httpx_load(base, ["/api/search?q=" + urllib.parse.quote(q) for q in queries],
                                                  20, seconds))
        cpu_ms = (bench_web.tree_cpu_seconds(proc.pid) - cpu0) * 1000 / max(r["requests"], 1)
        r["rss_mb"] = tree_peak_rss_mb(proc.pid)
        now = tree_rss_now_mb(proc.pid)  # rss_mb counts the mapped catalog's pages a worker touched
        r["rss_anon_mb"], r["rss_file_mb"] = now["anon"], now["file"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    asked = queries[:r["requests"]]  # wrk walks the list from its first line
    seen = set(warm_queries)
    repeats = 0
    for q in asked:
        repeats += q in seen
        seen.add(q)
    return {"p50_ms": r["p50"], "p95_ms": r["p95"], "rps": r["rps"], "errors": r["errors"], "tool": r["tool"],
            "rss_mb": r["rss_mb"], "rss_anon_mb": r["rss_anon_mb"], "rss_file_mb": r["rss_file_mb"],
            "requests": r["requests"], "repeat_share": repeats / max(len(asked), 1),
            "server_cpu_ms_per_request": cpu_ms, "page_cache_warmed_gb": warmed_gb}


def web_runs(archive: Path, queries: list[str], warm_queries: list[str], work: Path, seconds: int,
             runs: int) -> dict:
    """:func:`web` *runs* times; the run of the median p95 (the upper one of an even count), with
    every run's p95 and server CPU a request: one run's p95 moves by a third between identical runs
    on a shared machine (docs/performance.md, "Seventh run")."""
    done = [web(archive, queries, warm_queries, work, seconds) for _ in range(max(runs, 1))]
    median = sorted(done, key=lambda w: w["p95_ms"])[len(done) // 2]
    return {**median, "p95_ms_runs": [w["p95_ms"] for w in done],
            "server_cpu_ms_per_request_runs": [w["server_cpu_ms_per_request"] for w in done]}


def plan(archive: Path, recordings: int) -> dict:
    budget = str(recordings * 1_000_000)  # about half the catalog at opus75 (~2 MB a recording)
    s, rss, out = timed(soundark("plan", "--budget", budget, "--json", "-a", str(archive)))
    return {"s": s, "rss_mb": rss, "recordings_per_s": recordings / s}


def releases(archive: Path) -> dict:
    release_list(archive / "releases" / "torrents.json", RELEASES)
    s1, rss1, out1 = timed(soundark("release", "list", "--json", "-a", str(archive)))
    assert len(json.loads(out1)["releases"]) == RELEASES
    s2, rss2, out2 = timed(soundark("mirror", "plan", "--budget", "50TB", "--json", "-a", str(archive)))
    assert json.loads(out2)["releases"] > 0
    return {"list_s": s1, "list_rss_mb": rss1, "mirror_s": s2, "mirror_rss_mb": rss2}


def generate(gen: CatalogGenerator, n: int, rows: Path, csv_path: Path | None) -> int:
    """Write the rows (or take them as they are when ``rows-N.jsonl.next`` says they are whole: a file
    made beforehand, e.g. while a smaller size runs); return the next album number."""
    done = Path(f"{rows}.next")
    if done.exists() and csv_path is None:
        return int(done.read_text())
    nxt = gen.write(n, rows, csv_path)
    done.write_text(str(nxt))
    return nxt


def run_size(n: int, work: Path, args: argparse.Namespace, gen: CatalogGenerator) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    archive = work / "archive"
    imported = work / "imported.json"  # the import steps' figures: a later run measures the rest
    if imported.exists() and (archive / "catalog.sqlite3").exists():
        r = json.loads(imported.read_text())
        say(f"[{n:,}] reusing the imported archive and its figures in {work}")
        return measure(n, archive, work, args, gen, r)
    shutil.rmtree(archive, ignore_errors=True)
    timed(soundark("init", str(archive)))
    rows, inc = work.parent / f"rows-{n}.jsonl", work.parent / f"inc-{n}.jsonl"
    csv_path = work / "rows.csv" if n in args.cli_sizes else None
    t = time.perf_counter()
    nxt = generate(gen, n, rows, csv_path)
    gen_s = time.perf_counter() - t
    n_inc = max(1, n // 100)
    gen.write(n_inc, inc, start_album=nxt)
    made = f"in {gen_s:.0f} s ({n / gen_s:,.0f} rows/s)" if gen_s > 1 else "beforehand"
    say(f"[{n:,}] generated {made}, JSONL {rows.stat().st_size / 1e9:.2f} GB")
    r: dict = {"rows": n, "generate_rows_per_s": n / gen_s}
    r["import"] = import_rows(archive, rows, n)
    say(f"[{n:,}] fresh import {r['import']['s']:.0f} s ({r['import']['rows_per_s']:,.0f} rows/s), "
        f"peak {r['import']['rss_mb']:,.0f} MB")
    if csv_path:
        r["cli_import"] = cli_import(csv_path, work, n)
        say(f"[{n:,}] sqlite3 CLI same tables {r['cli_import']['s']:.0f} s "
            f"({r['cli_import']['rows_per_s']:,.0f} rows/s)")
        csv_path.unlink()
    db = archive / "catalog.sqlite3"
    r["disk_bytes_before_inc"] = catalog_bytes(db)
    r["incremental"] = import_rows(archive, inc, n_inc)
    say(f"[{n:,}] +{n_inc:,} rows into it {r['incremental']['s']:.1f} s ({r['incremental']['rows_per_s']:,.0f} "
        f"rows/s), peak {r['incremental']['rss_mb']:,.0f} MB")
    for f in (rows, inc, Path(f"{rows}.next")):
        f.unlink()
    r["disk_bytes"] = catalog_bytes(db)
    from soundark.catalog import open_catalog

    with open_catalog(db, readonly=True) as catalog:
        r["recordings"] = catalog.scalar("SELECT count(*) FROM recording")
    say(f"[{n:,}] {r['recordings']:,} recordings, catalog {r['disk_bytes'] / 1e9:.2f} GB on disk "
        f"({r['disk_bytes'] / (n + n_inc):,.0f} bytes a row)")
    r["albums"] = nxt  # recordings are drawn from the albums of the first file
    imported.write_text(json.dumps(r))
    return measure(n, archive, work, args, gen, r)


def measure(n: int, archive: Path, work: Path, args: argparse.Namespace, gen: CatalogGenerator, r: dict) -> dict:
    """The steps after the import: search, the web, plan, the release list."""
    albums = r["albums"]
    r["search"] = search(archive, query_mix(gen, albums, 300, seed=7), work)
    say(f"[{n:,}] search p50 {r['search']['p50_ms']:.1f} ms, p95 {r['search']['p95_ms']:.1f} ms, "
        f"max {r['search']['max_ms']:.0f} ms, peak {r['search']['rss_mb']:,.0f} MB; p95 by kind: "
        + ", ".join(f"{k} {v['p95_ms']:.1f}" for k, v in r["search"]["by_kind"].items()))
    r["web"] = web_runs(archive, query_mix(gen, albums, WEB_QUERIES, seed=11),
                        query_mix(gen, albums, 5000, seed=13), work, args.web_seconds, args.web_runs)
    say(f"[{n:,}] web p50 {r['web']['p50_ms']:.1f} ms, p95 {r['web']['p95_ms']:.1f} ms "
        f"(the median of {len(r['web']['p95_ms_runs'])} runs: "
        + ", ".join(f"{p:.1f}" for p in r["web"]["p95_ms_runs"]) + " ms) "
        f"({r['web']['rps']:,.0f} req/s, {r['web']['errors']} errors, {r['web']['tool']}; server CPU "
        f"{r['web']['server_cpu_ms_per_request']:.2f} ms a request; {r['web']['requests']:,} requests, "
        f"{r['web']['repeat_share']:.0%} of them asked before; page cache warmed "
        f"{r['web']['page_cache_warmed_gb']:.1f} GB), "
        f"peak {r['web']['rss_mb']:,.0f} MB (at the end: private {r['web'].get('rss_anon_mb', 0):,.0f} MB, "
        f"mapped catalog pages {r['web'].get('rss_file_mb', 0):,.0f} MB)")
    r["plan"] = plan(archive, r["recordings"])
    say(f"[{n:,}] plan {r['plan']['s']:.1f} s, peak {r['plan']['rss_mb']:,.0f} MB")
    r["releases"] = releases(archive)
    say(f"[{n:,}] release list {r['releases']['list_s']:.2f} s / mirror plan {r['releases']['mirror_s']:.2f} s "
        f"over {RELEASES:,} releases, peak {r['releases']['list_rss_mb']:,.0f} / "
        f"{r['releases']['mirror_rss_mb']:,.0f} MB")
    if not args.keep:
        shutil.rmtree(archive, ignore_errors=True)
    return r


# ---------------------------------------------------------------- growth and floors

METRICS = {  # name -> (getter, unit)
    "import s": (lambda r: r["import"]["s"], "s"),
    "import RSS": (lambda r: r["import"]["rss_mb"], "MB"),
    "incremental s (1 %)": (lambda r: r["incremental"]["s"], "s"),
    "incremental RSS": (lambda r: r["incremental"]["rss_mb"], "MB"),
    "disk": (lambda r: r["disk_bytes"] / 1e9, "GB"),
    "search p50": (lambda r: r["search"]["p50_ms"], "ms"),
    "search p95": (lambda r: r["search"]["p95_ms"], "ms"),
    "search p95 indexed": (lambda r: r["search"].get("p95_ms_indexed"), "ms"),  # all but 1-2 char CJK
    "search RSS": (lambda r: r["search"]["rss_mb"], "MB"),
    "web p95": (lambda r: r["web"]["p95_ms"], "ms"),
    "web RSS": (lambda r: r["web"]["rss_mb"], "MB"),
    "web private RSS": (lambda r: r["web"].get("rss_anon_mb"), "MB"),  # without the mapped catalog's pages
    "plan s": (lambda r: r["plan"]["s"], "s"),
    "plan RSS": (lambda r: r["plan"]["rss_mb"], "MB"),
    "release list s": (lambda r: r["releases"]["list_s"], "s"),
    "release list RSS": (lambda r: r["releases"]["list_rss_mb"], "MB"),
    "mirror plan s": (lambda r: r["releases"]["mirror_s"], "s"),
    "mirror plan RSS": (lambda r: r["releases"]["mirror_rss_mb"], "MB"),
}


# costs that cannot grow slower than the rows (every row is read or written): also extrapolated linearly
LINEAR_AT_LEAST = ("import s", "disk", "plan s")


def exponent(n1: int, v1: float, n2: int, v2: float) -> float:
    return math.log(max(v2, 1e-9) / max(v1, 1e-9)) / math.log(n2 / n1)


def growth(results: list[dict]) -> dict:
    """Per metric: the values per size, the exponent between consecutive sizes, the 50M extrapolation."""
    out = {}
    for name, (get, unit) in METRICS.items():
        vals = [get(r) for r in results]
        ks = [exponent(results[i]["rows"], vals[i], results[i + 1]["rows"], vals[i + 1])
              if vals[i] is not None and vals[i + 1] is not None else None for i in range(len(results) - 1)]
        last_n = results[-1]["rows"]
        k = ks[-1] if ks else None
        extra = vals[-1] * (TARGET / last_n) ** max(k, 0.0) if k is not None and last_n < TARGET else None
        linear = vals[-1] * TARGET / last_n if vals[-1] is not None and name in LINEAR_AT_LEAST else None
        out[name] = {"unit": unit, "values": vals, "k": ks, "at_50M": vals[-1] if last_n == TARGET else extra,
                     "at_50M_linear": linear, "extrapolated": last_n != TARGET}
    return out


def floors(results: list[dict], g: dict) -> dict:
    def at50(name: str) -> float:
        v = g[name]["at_50M"]
        v = g[name]["values"][-1] if v is None else v
        return math.nan if v is None else v

    disk_50m = results[-1]["disk_bytes"] / 1e9 * TARGET / (results[-1]["rows"] * 1.01)  # bytes a row, linear
    # "web RSS" holds the pages of the mapped catalog a worker touched (the OS page cache, shared and
    # dropped under pressure: more of them the bigger the catalog); "web private RSS" is its own memory
    growing = [name for name, m in g.items() if name.endswith("RSS") and not name.startswith("plan")
               and name != "web RSS" and m["k"] and m["k"][-1] is not None and m["k"][-1] > GROWS]
    checks = {"search_p95_ms": (at50("search p95"), FLOORS["search_p95_ms"]),
              "search_p95_ms_without_1_2_char_cjk": (at50("search p95 indexed"), FLOORS["search_p95_ms"]),
              "web_p95_ms": (at50("web p95"), FLOORS["web_p95_ms"]),
              "plan_s": (max(at50("plan s"), g["plan s"]["at_50M_linear"] or 0.0), FLOORS["plan_s"]),
              "disk_gb_at_50M": (disk_50m, FLOORS["disk_gb_at_50M"])}
    out = {k: {"value": None if math.isnan(v) else round(v, 2), "floor": f, "met": None if math.isnan(v) else v <= f}
           for k, (v, f) in checks.items()}
    out["memory_flat_but_plan"] = {"growing": growing, "met": not growing}
    out["measured_at"] = results[-1]["rows"]
    return out


def report(results: list[dict], args: argparse.Namespace) -> None:
    g = growth(results)
    sizes = [r["rows"] for r in results]
    head = "".join(f"{_size(n):>10}" for n in sizes)
    ks = "".join(f"{'k ' + _size(a) + '>' + _size(b):>12}" for a, b in zip(sizes, sizes[1:]))
    say(f"\n{'cost':<22}{'unit':>5}{head}{ks}{'at 50M':>11}")
    for name, m in g.items():
        line = f"{name:<22}{m['unit']:>5}" + "".join(f"{v:>10.4g}" if v is not None else f"{'-':>10}"
                                                     for v in m["values"])
        line += "".join(f"{k:>12.2f}" if k is not None else f"{'-':>12}" for k in m["k"])
        if m["at_50M"] is not None:
            line += f"{m['at_50M']:>10.4g}" + ("*" if m["extrapolated"] else " ")
        say(line)
    if sizes[-1] < TARGET:
        say("* extrapolated to 50M from the last exponent (flat when it is negative): not measured")
    fl = floors(results, g)
    for k, v in fl.items():
        if isinstance(v, dict) and "floor" in v:
            verdict = {True: "met", False: "NOT met", None: "-"}[v["met"]]
            say(f"floor {k}: {v['value']} (<= {v['floor']}) {verdict}"
                + (" (extrapolated)" if sizes[-1] < TARGET else ""))
    grows = fl["memory_flat_but_plan"]["growing"]
    say("memory: " + ("no stage but the plan grows" if not grows else "growing: " + ", ".join(grows)))
    base = next((r for r in results if "cli_import" in r), None)
    ours = base["import"]["rows_per_s"] if base else results[0]["import"]["rows_per_s"]
    theirs = base["cli_import"]["rows_per_s"] if base else None
    print(json.dumps({
        "benchmark": "catalog_scale", "ours": round(ours), "theirs": round(theirs) if theirs else None,
        "unit": "rows/s", "ratio": round(ours / theirs, 3) if theirs else None, "floor": 1.0,
        "compared_at_rows": base["rows"] if base else None, "load_average": round(os.getloadavg()[0], 2),
        "sizes": {str(r["rows"]): _round(r) for r in results},
        "exponents": {k: [None if x is None else round(x, 3) for x in m["k"]] for k, m in g.items()},
        "at_50M": {k: (round(m["at_50M"], 3) if m["at_50M"] is not None else None) for k, m in g.items()},
        "at_50M_linear": {k: round(m["at_50M_linear"], 3) for k, m in g.items() if m["at_50M_linear"] is not None},
        "extrapolated": sizes[-1] < TARGET, "floors": fl}, ensure_ascii=False))


def _round(x):
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, float):
        return round(x, 3)
    return x


def _size(n: int) -> str:
    for unit, div in (("M", 10**6), ("k", 10**3)):
        if n >= div and n % (div // 10) == 0:
            return f"{n / div:g}{unit}"
    return str(n)


def parse_size(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 10**3, "M": 10**6}.get(text[-1:], 1)
    return int(float(text.rstrip("KM")) * mult)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child-search":
        child_search(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1M,3M", help="catalog rows, comma separated (default 1M,3M)")
    ap.add_argument("--cli-sizes", default=None,
                    help="sizes at which the sqlite3 CLI imports the same rows too (default: the smallest)")
    ap.add_argument("--web-seconds", type=int, default=10, help="seconds of load per web run (default 10)")
    ap.add_argument("--web-runs", type=int, default=3,
                    help="web runs at each size; the median p95 is the figure (default 3)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work", type=Path, default=None,
                    help="folder for the data (default: a temp folder); each finished size leaves its "
                         "result-N.json there, reused by the next run instead of measuring that size again; "
                         "an interrupted size keeps its imported archive, and the next run measures the "
                         "steps after the import on it")
    ap.add_argument("--keep", action="store_true", help="keep each size's archive")
    ap.add_argument("--search-only", type=Path, metavar="ARCHIVE", default=None,
                    help="only time the search query mix over this archive's catalog (one made by "
                         "catalog_gen.py rows and `soundark import catalog`); needs --albums")
    ap.add_argument("--albums", type=int, default=None,
                    help="with --search-only: the albums of those rows (catalog_gen's `next album`)")
    args = ap.parse_args()
    if args.search_only:
        if not args.albums:
            raise SystemExit("--search-only needs --albums (catalog_gen.py prints `next album N`)")
        with tempfile.TemporaryDirectory(prefix="soundark-bench-search-") as tmp:
            out = search(args.search_only, query_mix(CatalogGenerator(args.seed), args.albums, 300, seed=7),
                         Path(tmp))
        print(json.dumps({"benchmark": "catalog_search", **out}, ensure_ascii=False))
        return
    sizes = sorted(parse_size(s) for s in args.sizes.split(","))
    args.cli_sizes = {parse_size(s) for s in args.cli_sizes.split(",")} if args.cli_sizes else {sizes[0]}
    if shutil.which("sqlite3") is None:
        raise SystemExit("sqlite3 CLI not found: apt-get install sqlite3")
    work = args.work or Path(tempfile.mkdtemp(prefix="soundark-bench-scale-"))
    say(f"catalog path at {', '.join(_size(n) for n in sizes)} rows in {work}; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    gen = CatalogGenerator(args.seed)
    results = []
    try:
        for n in sizes:
            saved = work / f"result-{n}.json"  # with --work, a finished size is not run again
            if args.work and saved.exists():
                results.append(json.loads(saved.read_text()))
                say(f"[{n:,}] reusing {saved}")
                continue
            results.append(run_size(n, work / f"n{n}", args, gen))
            saved.write_text(json.dumps(results[-1]))
    finally:
        if not args.keep:
            for n in sizes:  # with --work, an unfinished size keeps its imported archive for the next run
                if not args.work or (work / f"result-{n}.json").exists():
                    shutil.rmtree(work / f"n{n}", ignore_errors=True)
            if not args.work:
                shutil.rmtree(work, ignore_errors=True)
    report(results, args)


if __name__ == "__main__":
    main()
