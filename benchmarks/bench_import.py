"""Benchmark: import 1M catalog rows (JSONL) vs the sqlite3 CLI's `.import` of the same rows as CSV.

Generates a realistic catalog (about 74 distinct ISRCs per 100 tracks, albums of
8-14 tracks by one artist, featured artists, Unicode titles, Zipf-distributed
words and listens), writes it as JSONL and CSV, then in one run:

1. ``sqlite3 x.db ".mode csv" ".import rows.csv t"`` into a plain table (the floor's yardstick), and,
   for context, the sqlite3 CLI writing the catalog's own tables from that CSV (SAME_TABLES_SQL);
2. ``soundark.catalog.importers.tabular.import_catalog_file`` of the JSONL into a fresh catalog
   (matching, keys, artists, albums, tracks, FTS index: the real work);
3. FTS search latency over the imported catalog (p50/p95 over 200 realistic queries: common and
   rare words, prefixes, phrases, artist + word; after one warm-up pass).

Prints figures for people (search p50/p95 among them; its floor is p95 <= 30 ms), then ends with
exactly one JSON line, the import ratio:
{"benchmark": "import", "ours": rows/s, "theirs": rows/s, "unit": "rows/s", "ratio": ours/theirs, "floor": 0.5}
The Debian package `sqlite3` provides /usr/bin/sqlite3.

    python benchmarks/bench_import.py            # 1M rows
    python benchmarks/bench_import.py --quick    # 50k rows
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from soundark.catalog import open_catalog
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.catalog.search import search

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


def generate(n: int, jsonl: Path, csv_path: Path, seed: int = 42) -> int:
    """Write *n* rows to both files; return the number of distinct ISRCs."""
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
                        f"{('US', 'GB', 'DE', 'FR', 'JP', 'SE')[k % 6]}R{k // 100000 % 100:02d}"
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
                row = dict(rec, album=album, date=f"{year}-{rnd.randint(1, 12):02d}-01", label="Label " + album_artist[:8],
                           upc=upc, track_number=track_no, disc_number=1, rights="owned")
                fj.write(json.dumps({k: v for k, v in row.items() if v is not None}, ensure_ascii=False) + "\n")
                writer.writerow([("; ".join(row[c]) if c == "artists" else row.get(c)) if row.get(c) is not None
                                 else "" for c in COLUMNS])
    return len(isrcs)


def bench_sqlite3_cli(csv_path: Path, work: Path, rows: int) -> float:
    db = work / "plain.db"
    db.unlink(missing_ok=True)
    t = time.perf_counter()
    subprocess.run(["sqlite3", str(db), ".mode csv", f".import {csv_path} t"], check=True)
    seconds = time.perf_counter() - t
    got = int(subprocess.run(["sqlite3", str(db), "SELECT count(*) FROM t"], check=True,
                             capture_output=True, text=True).stdout)
    assert got == rows, (got, rows)
    return rows / seconds


# The sqlite3 CLI doing the catalog's table work for the same CSV (one recording per ISRC,
# albums, tracks, the FTS index) without matching, normalisation, artists or validation:
# context for the ratio, which compares with a plain-table .import.
SAME_TABLES_SQL = """
.mode csv
.import --schema temp {csv} stage
BEGIN;
INSERT INTO fts_deferred(id) VALUES (1);
INSERT INTO recording(key, isrc, title, artist, album, duration_ms, date, listens, rights, match_key)
  SELECT isrc, isrc, title, replace(artists, '; ', ', '), album, CAST(duration_ms AS INTEGER), date,
         CAST(listens AS INTEGER), rights, lower(artists) || char(31) || lower(title)
  FROM temp.stage WHERE isrc != '' ORDER BY rowid ON CONFLICT DO NOTHING;
INSERT INTO album(key, title, artist, date, label, upc)
  SELECT coalesce(nullif('upc:' || upc, 'upc:'), 'a:' || artists || album), album, artists, date, label,
         nullif(upc, '') FROM temp.stage WHERE true ON CONFLICT DO NOTHING;
INSERT INTO track(key, recording_id, album_id, title, artist, track_number, disc_number)
  SELECT 't:' || s.rowid, r.id, a.id, s.title, s.artists, CAST(s.track_number AS INTEGER),
         CAST(s.disc_number AS INTEGER)
  FROM temp.stage s JOIN recording r ON r.key = s.isrc
  LEFT JOIN album a ON a.key = coalesce(nullif('upc:' || s.upc, 'upc:'), 'a:' || s.artists || s.album);
INSERT INTO recording_fts(rowid, title, artist, album) SELECT id, title, artist, album FROM recording;
DELETE FROM fts_deferred;
COMMIT;
"""


def bench_sqlite3_same_tables(csv_path: Path, work: Path, rows: int) -> float:
    db = work / "same-tables.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    open_catalog(db).close()  # the soundark schema, empty
    t = time.perf_counter()
    subprocess.run(["sqlite3", str(db)], input=SAME_TABLES_SQL.format(csv=csv_path), text=True, check=True)
    return rows / (time.perf_counter() - t)


def bench_soundark(jsonl: Path, work: Path, rows: int) -> tuple[float, dict]:
    for suffix in ("", "-wal", "-shm"):
        (work / f"catalog.sqlite3{suffix}").unlink(missing_ok=True)
    with open_catalog(work / "catalog.sqlite3") as catalog:
        t = time.perf_counter()
        report = import_catalog_file(catalog, jsonl, rights="owned")
        seconds = time.perf_counter() - t
        counts = {t: catalog.scalar(f"SELECT count(*) FROM {t}") for t in ("recording", "track", "album", "artist")}
    assert report.rejected == 0 and report.new + report.updated + report.unchanged == rows, report.as_dict()
    return rows / seconds, counts


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


def bench_search(work: Path) -> dict:
    with open_catalog(work / "catalog.sqlite3", readonly=True) as catalog:
        qs = queries(random.Random(7), catalog)
        for q in qs:  # one untimed pass: a served catalog is warm (page cache, FTS segments)
            search(catalog, q, limit=20)
        times = []
        for q in qs:
            t = time.perf_counter()
            search(catalog, q, limit=20)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95) - 1],
            "max_ms": times[-1], "queries": len(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50k rows instead of 1M")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temp folder)")
    args = ap.parse_args()
    rows = args.rows or (50_000 if args.quick else 1_000_000)
    if shutil.which("sqlite3") is None:
        raise SystemExit("sqlite3 CLI not found: apt-get install sqlite3")
    work = args.keep or Path(tempfile.mkdtemp(prefix="soundark-bench-import-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        jsonl, csv_path = work / "rows.jsonl", work / "rows.csv"
        t = time.perf_counter()
        distinct = generate(rows, jsonl, csv_path)
        print(f"generated {rows:,} rows ({distinct:,} distinct ISRCs) in {time.perf_counter() - t:.1f} s: "
              f"JSONL {jsonl.stat().st_size / 1e6:.0f} MB, CSV {csv_path.stat().st_size / 1e6:.0f} MB")
        theirs = bench_sqlite3_cli(csv_path, work, rows)
        print(f"sqlite3 .import (CSV, plain table): {theirs:,.0f} rows/s")
        same = bench_sqlite3_same_tables(csv_path, work, rows)
        print(f"sqlite3 CLI, same tables, no matching: {same:,.0f} rows/s (context only)")
        ours, counts = bench_soundark(jsonl, work, rows)
        print(f"soundark import catalog (JSONL):    {ours:,.0f} rows/s  -> {counts}")
        print(f"ratio: {ours / theirs:.2f}x (floor 0.5x, and >= 200,000 rows/s); "
              f"{ours / same:.2f}x of sqlite3 writing the same tables")
        s = bench_search(work)
        print(f"search over {counts['recording']:,} recordings: p50 {s['p50_ms']:.1f} ms, "
              f"p95 {s['p95_ms']:.1f} ms, max {s['max_ms']:.1f} ms ({s['queries']} queries; "
              f"floor p95 <= 30 ms: {'met' if s['p95_ms'] <= 30 else 'NOT met'})")
        print(f"floors: >= 200,000 rows/s {'met' if ours >= 200_000 else 'NOT met'}, "
              f">= 0.5x sqlite3 {'met' if ours / theirs >= 0.5 else 'NOT met'}")
        print(json.dumps({"benchmark": "import", "ours": round(ours), "theirs": round(theirs),
                          "unit": "rows/s", "ratio": round(ours / theirs, 3), "floor": 0.5}))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
