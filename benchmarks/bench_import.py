"""Benchmark: soundark's catalog import vs the sqlite3 CLI writing the same tables from the same rows.

Generates a realistic catalog (about 74 distinct ISRCs per 100 tracks, albums of
8-14 tracks by one artist, featured artists, Unicode titles incl. CJK, Zipf-distributed
words and listens), writes it as JSONL and CSV, then side by side in one run, each side
from the same starting catalog, rounds alternating which side goes first, best of N:

1. fresh catalog: ``import_catalog_file`` of the JSONL (matching, keys, artists, albums,
   tracks, both search indexes: the real work) vs ``sqlite3`` running SAME_TABLES_SQL on the
   CSV: the catalog's own tables (recording, artist, recording_artist, album, track) with the
   schema's every index and both FTS indexes (words and trigrams), without matching;
2. incremental: the same, into a copy of one base catalog of --base-rows other rows (built
   once per run by soundark; default 10M, which takes a long while: --base-rows 1000000 for a
   shorter run);
3. search latency (soundark.catalog.search.find, what the CLI and the web run) on both
   results: p50/p95 over 200 realistic queries after one warm-up pass.

Also prints what the search indexes cost (rebuild time and bytes). Ends with exactly one JSON line:
{"benchmark": "import", "ours": fresh rows/s, "theirs": CLI fresh rows/s, "unit": "rows/s",
 "ratio": ours/theirs, "floor": 1.0, "incremental_ratio": ..., "incremental_floor": 0.5,
 "base_rows": ..., "search_p95_ms": the larger p95 of the two}
The Debian package `sqlite3` provides /usr/bin/sqlite3.

    python benchmarks/bench_import.py                       # 1M rows into a 10M-row base
    python benchmarks/bench_import.py --base-rows 1000000   # 1M rows into a 1M-row base
    python benchmarks/bench_import.py --quick               # 50k rows into a 200k-row base
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from soundark.catalog import open_catalog
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.catalog.search import find

WORDS = (
    "love night dream heart fire rain blue song river light gold shadow moon star road home "
    "summer winter city dance girl boy baby time world life soul sky sun sea wind ghost storm "
    "wild broken little happy lonely electric sweet midnight silver golden forever tonight "
    "morning angel devil paradise highway memory echo shine fall rise run away back again "
    "Ökonomie café señor amour Zeit Straße naïve déjà vu fiancée über Москва ночь любовь 東京 夜 "
    "愛 東京タワー ciudad corazón canción noche été mélodie Ångström fjord smörgåsbord"
).split()
SYLLABLES = "ka ri mo la ne so ta vi de lu an el or mi ja ko ra be st ph ch ev ol".split()
COLUMNS = ("title", "artists", "album", "isrc", "recording_mbid", "release_mbid", "track_id",
           "duration_ms", "date", "label", "upc", "track_number", "disc_number", "listens",
           "popularity", "rights")


def _vocabulary(rnd: random.Random) -> tuple[list[str], list[float]]:
    """Real words first (common), then 3,000 made-up ones (the long tail), Zipf weights."""
    tail = {"".join(rnd.choice(SYLLABLES) for _ in range(rnd.randint(2, 4))) for _ in range(3000)}
    vocab = WORDS + sorted(tail)
    cum, total = [], 0.0
    for rank in range(len(vocab)):
        total += 1.0 / (rank + 8)
        cum.append(total)
    return vocab, cum


def _title(rnd: random.Random, vocab: tuple[list[str], list[float]]) -> str:
    words = rnd.choices(vocab[0], cum_weights=vocab[1], k=rnd.choice((1, 2, 2, 2, 3, 3, 4, 5)))
    return " ".join(words).capitalize()


def _artist_name(rnd: random.Random, i: int) -> str:
    name = "".join(rnd.choice(SYLLABLES) for _ in range(rnd.randint(2, 4))).capitalize()
    if i % 10 == 0:
        name += " " + rnd.choice(("Ørsted", "Müller", "Иванов", "山田", "Núñez", "Ekström"))
    elif i % 3 == 0:
        name = "The " + name + "s"
    return f"{name} {i}" if i % 7 == 0 else name


def generate(n: int, jsonl: Path, csv_path: Path, seed: int = 42, registrant: str = "R") -> int:
    """Write *n* rows to both files; return the number of distinct ISRCs (*registrant*: their 3rd
    character, so a base catalog's ISRCs differ from those of the rows imported into it)."""
    rnd = random.Random(seed)
    artists = [_artist_name(rnd, i) for i in range(max(1000, n // 12))]
    vocab = _vocabulary(rnd)
    recordings: list[dict] = []
    isrcs: set[str] = set()
    with open(jsonl, "w", encoding="utf-8") as fj, open(csv_path, "w", encoding="utf-8", newline="") as fc:
        writer = csv.writer(fc)
        writer.writerow(COLUMNS)
        row_no = album_no = made = 0
        while row_no < n:
            album_no += 1
            album_artist = artists[int(len(artists) * rnd.random() ** 1.5)]  # mildly skewed
            album = _title(rnd, vocab)
            year = rnd.randint(1955, 2024)
            upc = f"{rnd.randrange(10**11, 10**12)}" if album_no % 2 else None
            for track_no in range(1, rnd.randint(8, 14) + 1):
                if row_no >= n:
                    break
                row_no += 1
                if recordings and rnd.random() < 0.26:  # a re-release: same recording, new album
                    rec = rnd.choice(recordings)
                else:
                    credit = [album_artist] + ([rnd.choice(artists)] if rnd.random() < 0.2 else [])
                    made += 1
                    k = made
                    rec = {
                        "title": _title(rnd, vocab), "artists": credit,
                        "isrc": None if rnd.random() < 0.03 else
                        f"{('US', 'GB', 'DE', 'FR', 'JP', 'SE')[k % 6]}{registrant}{k // 100000 % 100:02d}"
                        f"{year % 100:02d}{k % 100000:05d}",
                        "recording_mbid": f"{rnd.getrandbits(128):032x}" if rnd.random() < 0.3 else None,
                        "duration_ms": rnd.randint(90_000, 420_000),
                        "listens": int(rnd.paretovariate(0.7) * 100),
                    }
                    if rec["recording_mbid"]:
                        h = rec["recording_mbid"]
                        rec["recording_mbid"] = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
                    recordings.append(rec)
                    if len(recordings) > 50_000:  # re-releases draw from recent recordings
                        recordings.pop(rnd.randrange(len(recordings)))
                if rec["isrc"]:
                    isrcs.add(rec["isrc"])
                row = dict(rec, album=album, date=f"{year}-{rnd.randint(1, 12):02d}-01",
                           label="Label " + album_artist[:8], upc=upc, track_number=track_no, disc_number=1,
                           rights="owned")
                fj.write(json.dumps({k: v for k, v in row.items() if v is not None}, ensure_ascii=False) + "\n")
                writer.writerow([("; ".join(row[c]) if c == "artists" else row.get(c)) if row.get(c) is not None
                                 else "" for c in COLUMNS])
    return len(isrcs)


# The sqlite3 CLI writing the catalog's own tables from the same rows as CSV: recordings (one per
# ISRC, else per artists + title), artists and credits, albums, tracks, both search indexes (words
# and trigrams) and every index of the schema, without soundark's matching, normalisation or
# validation. As a careful SQL user would, it defers the search indexes to one statement each
# (the fts_deferred row of migrations 0005/0010), in one transaction, fresh or incremental alike,
# with the page cache and sync setting soundark's import uses (the CLI's 2 MB default cache made
# it wait on the disk most of the time).
SAME_TABLES_SQL = """
PRAGMA cache_size = -262144;
PRAGMA synchronous = NORMAL;
.mode csv
.import --schema temp {csv} stage
BEGIN;
INSERT INTO fts_deferred(id, upto) SELECT 1, coalesce(max(id), 0) FROM recording;
INSERT INTO recording(key, isrc, mbid, title, artist, album, duration_ms, date, listens, rights, match_key)
  SELECT coalesce(nullif(isrc, ''), 'x:' || lower(artists) || char(31) || lower(title)), nullif(isrc, ''),
         nullif(recording_mbid, ''), title, replace(artists, '; ', ', '), album, CAST(duration_ms AS INTEGER),
         date, CAST(listens AS INTEGER), rights, lower(artists) || char(31) || lower(title)
  FROM temp.stage WHERE true ORDER BY rowid ON CONFLICT DO NOTHING;
INSERT INTO artist(key, name)
  SELECT 'n:' || lower(j.value), j.value FROM temp.stage s,
         json_each('["' || replace(s.artists, '; ', '","') || '"]') AS j WHERE true ON CONFLICT DO NOTHING;
INSERT OR IGNORE INTO recording_artist(recording_id, position, artist_id)
  SELECT r.id, j.key, a.id FROM temp.stage s
  JOIN recording r ON r.key = coalesce(nullif(s.isrc, ''), 'x:' || lower(s.artists) || char(31) || lower(s.title))
  JOIN json_each('["' || replace(s.artists, '; ', '","') || '"]') AS j
  JOIN artist a ON a.key = 'n:' || lower(j.value);
INSERT INTO album(key, title, artist, date, label, upc)
  SELECT coalesce(nullif('upc:' || upc, 'upc:'), 'a:' || artists || album), album, artists, date, label,
         nullif(upc, '') FROM temp.stage WHERE true ON CONFLICT DO NOTHING;
INSERT INTO track(key, recording_id, album_id, title, artist, track_number, disc_number)
  SELECT 't:' || r.key || ':' || a.key || ':' || s.disc_number || ':' || s.track_number, r.id, a.id, s.title,
         s.artists, CAST(s.track_number AS INTEGER), CAST(s.disc_number AS INTEGER)
  FROM temp.stage s
  JOIN recording r ON r.key = coalesce(nullif(s.isrc, ''), 'x:' || lower(s.artists) || char(31) || lower(s.title))
  LEFT JOIN album a ON a.key = coalesce(nullif('upc:' || s.upc, 'upc:'), 'a:' || s.artists || s.album)
  WHERE true ON CONFLICT DO NOTHING;
INSERT INTO recording_fts(rowid, title, artist, album)
  SELECT id, title, artist, album FROM recording WHERE id > (SELECT upto FROM fts_deferred);
INSERT INTO recording_trigram(rowid, title, artist, album)
  SELECT id, title, artist, album FROM recording_nospace WHERE id > (SELECT upto FROM fts_deferred);
DELETE FROM fts_deferred;
COMMIT;
"""


def _fresh_copy(src: Path | None, dst: Path) -> None:
    """*dst* as a copy of catalog *src* (checkpointed, one file), or a new empty catalog."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    if src is None:
        open_catalog(dst).close()
    else:
        shutil.copyfile(src, dst)


def run_cli(csv_path: Path, db: Path, rows: int) -> float:
    """rows/s of the sqlite3 CLI writing the catalog's tables in *db* from the CSV."""
    t = time.perf_counter()
    subprocess.run(["sqlite3", str(db)], input=SAME_TABLES_SQL.format(csv=csv_path), text=True, check=True)
    return rows / (time.perf_counter() - t)


def run_ours(jsonl: Path, db: Path, rows: int) -> float:
    """rows/s of soundark's import of the JSONL into *db*."""
    with open_catalog(db) as catalog:
        t = time.perf_counter()
        report = import_catalog_file(catalog, jsonl, rights="owned")
        seconds = time.perf_counter() - t
    assert report.rejected == 0 and report.new + report.updated + report.unchanged == rows, report.as_dict()
    return rows / seconds


def build_base(base_rows: int, work: Path) -> Path | None:
    """The catalog every incremental round starts from: *base_rows* other rows, imported by soundark."""
    if base_rows <= 0:
        return None
    base = work / "base.sqlite3"
    jsonl, csv_path = work / "base.jsonl", work / "base.csv"
    generate(base_rows, jsonl, csv_path, seed=1, registrant="B")
    _fresh_copy(None, base)
    t = time.perf_counter()
    run_ours(jsonl, base, base_rows)
    with open_catalog(base) as catalog:
        catalog.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        n = catalog.scalar("SELECT count(*) FROM recording")
    print(f"base catalog: {base_rows:,} rows -> {n:,} recordings, {base.stat().st_size / 1e9:.2f} GB, "
          f"built in {time.perf_counter() - t:.0f} s")
    jsonl.unlink()
    csv_path.unlink()
    return base


def side_by_side(jsonl: Path, csv_path: Path, rows: int, base: Path | None, work: Path,
                 rounds: int) -> tuple[float, float]:
    """Best of *rounds* for each side, alternating who goes first, each from the same start."""
    ours, theirs = [], []
    for i in range(rounds):
        for side in (("ours", "cli") if i % 2 == 0 else ("cli", "ours")):
            db = work / f"{side}.sqlite3"
            _fresh_copy(base, db)
            if side == "ours":
                ours.append(run_ours(jsonl, db, rows))
            else:
                theirs.append(run_cli(csv_path, db, rows))
    return max(ours), max(theirs)


def index_costs(db: Path) -> dict:
    """Time of rebuilding each search index of *db* (the fresh import's last step), and its size."""
    out = {}
    with open_catalog(db) as catalog:
        for name in ("recording_fts", "recording_trigram"):
            t = time.perf_counter()
            with catalog.transaction() as conn:
                conn.execute(f"INSERT INTO {name}({name}) VALUES ('rebuild')")
            pages = catalog.scalar(f"SELECT count(*) FROM {name}_data")  # one row per leaf page/segment
            size = catalog.scalar(f"SELECT sum(length(block)) FROM {name}_data")
            out[name] = {"rebuild_s": time.perf_counter() - t, "bytes": int(size or 0), "blocks": pages}
        out["catalog_bytes"] = db.stat().st_size
    return out


def queries(rnd: random.Random, catalog) -> list[str]:
    titles = [r[0] for r in catalog.execute("SELECT title FROM recording ORDER BY random() LIMIT 200")]
    artists = [r[0] for r in catalog.execute("SELECT name FROM artist ORDER BY random() LIMIT 60")]
    out: list[str] = []
    for i in range(200):
        kind = i % 5
        if kind == 0:
            out.append(rnd.choice(WORDS[:12]))                       # very common word
        elif kind == 1:
            out.append(rnd.choice(WORDS[40:]))                       # rare word
        elif kind == 2:
            out.append(rnd.choice(WORDS)[:3] + "*")                  # prefix
        elif kind == 3:
            words = rnd.choice(titles).split()
            out.append('"' + " ".join(words[:2]) + '"' if len(words) > 1 else words[0])  # phrase
        else:
            out.append(rnd.choice(artists).split()[0] + " " + rnd.choice(WORDS[:20]))   # artist + word
    return out


def bench_search(db: Path) -> dict:
    """p50/p95/max of soundark.catalog.search.find (what the CLI and the web run) over *db*."""
    with open_catalog(db, readonly=True) as catalog:
        qs = queries(random.Random(7), catalog)
        for q in qs:  # one untimed pass: a served catalog is warm (page cache, FTS segments)
            find(catalog, q, limit=20)
        times = []
        for q in qs:
            t = time.perf_counter()
            find(catalog, q, limit=20)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95) - 1],
            "max_ms": times[-1], "queries": len(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50k rows into a 200k-row base")
    ap.add_argument("--rows", type=int, default=None, help="rows imported (default 1,000,000)")
    ap.add_argument("--base-rows", type=int, default=None,
                    help="rows of the catalog the incremental import goes into (default 10,000,000)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds per side, best kept (default 2)")
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temp folder)")
    args = ap.parse_args()
    rows = args.rows or (50_000 if args.quick else 1_000_000)
    base_rows = args.base_rows if args.base_rows is not None else (200_000 if args.quick else 10_000_000)
    if shutil.which("sqlite3") is None:
        raise SystemExit("sqlite3 CLI not found: apt-get install sqlite3")
    work = args.keep or Path(tempfile.mkdtemp(prefix="soundark-bench-import-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(work, rows, base_rows, args.rounds)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, rows: int, base_rows: int, rounds: int) -> None:
    jsonl, csv_path = work / "rows.jsonl", work / "rows.csv"
    t = time.perf_counter()
    distinct = generate(rows, jsonl, csv_path)
    print(f"generated {rows:,} rows ({distinct:,} distinct ISRCs) in {time.perf_counter() - t:.1f} s: "
          f"JSONL {jsonl.stat().st_size / 1e6:.0f} MB, CSV {csv_path.stat().st_size / 1e6:.0f} MB")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(other work on the machine slows both sides alike: rounds alternate, best kept)")
    ours, theirs = side_by_side(jsonl, csv_path, rows, None, work, rounds)
    print(f"fresh catalog:       soundark {ours:,.0f} rows/s, sqlite3 CLI same tables {theirs:,.0f} rows/s"
          f" -> {ours / theirs:.2f}x (floor 1.0x and >= 100,000 rows/s)")
    costs = index_costs(work / "ours.sqlite3")
    for name in ("recording_fts", "recording_trigram"):
        c = costs[name]
        print(f"  {name}: built in {c['rebuild_s']:.2f} s ({rows / max(c['rebuild_s'], 1e-9):,.0f} rows/s alone), "
              f"{c['bytes'] / 1e6:.1f} MB of {costs['catalog_bytes'] / 1e6:.0f} MB")
    fresh_search = bench_search(work / "ours.sqlite3")
    base = build_base(base_rows, work)
    inc_ours, inc_theirs = side_by_side(jsonl, csv_path, rows, base, work, rounds)
    print(f"into {base_rows:,} rows: soundark {inc_ours:,.0f} rows/s, sqlite3 CLI {inc_theirs:,.0f} rows/s"
          f" -> {inc_ours / inc_theirs:.2f}x (floor 0.5x)")
    s = bench_search(work / "ours.sqlite3") if base else fresh_search
    for label, r in (("fresh", fresh_search), (f"{base_rows:,}-row base + import", s)):
        print(f"search ({label}): p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, "
              f"max {r['max_ms']:.1f} ms ({r['queries']} queries; floor p95 <= 30 ms)")
    p95 = max(fresh_search["p95_ms"], s["p95_ms"])
    print(json.dumps({"benchmark": "import", "ours": round(ours), "theirs": round(theirs), "unit": "rows/s",
                      "ratio": round(ours / theirs, 3), "floor": 1.0,
                      "incremental_ratio": round(inc_ours / inc_theirs, 3), "incremental_floor": 0.5,
                      "base_rows": base_rows, "search_p95_ms": round(p95, 2)}))


if __name__ == "__main__":
    main()
