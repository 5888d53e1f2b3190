"""Rows/s of `import musicbrainz` on a generated release dump, beside `import catalog` of the same tracks.

    python benchmarks/bench_import_musicbrainz.py [--releases 10000]   (10 tracks per release)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

from soundark.catalog.importers.musicbrainz import import_musicbrainz
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.catalog.store import open_catalog


def _id(i: int, kind: int) -> str:
    return str(uuid.UUID(int=(kind << 64) | i))


def write_files(folder: Path, releases: int, per: int = 10) -> tuple[Path, Path]:
    """A release-dump file (one release per line) and the same tracks as catalog rows."""
    dump, rows = folder / "release.jsonl", folder / "rows.jsonl"
    n = 0
    with dump.open("w") as d, rows.open("w") as c:
        for r in range(releases):
            credit = [{"name": f"Artist {r % 3000}", "joinphrase": "",
                       "artist": {"id": _id(r % 3000, 4), "name": f"Artist {r % 3000}"}}]
            tracks = []
            for p in range(1, per + 1):
                n += 1
                code = f"{(n // 100000) % 100:02d}{n % 100000:05d}"
                isrcs = ([f"USABC{code}"] + ([f"GBXYZ{code}"] if n % 3 == 0 else [])) if n % 5 else []
                rec = {"id": _id(n, 1), "title": f"Song {n}", "length": 200000 + n % 50000, "video": False,
                       "isrcs": isrcs}
                tracks.append({"id": _id(n, 3), "position": p, "number": str(p), "title": f"Song {n}",
                               "artist-credit": credit, "recording": rec})
                c.write(json.dumps({"title": rec["title"], "artists": [f"Artist {r % 3000}"], "album": f"Album {r}",
                                    "isrc": (isrcs or [None])[0], "recording_mbid": rec["id"],
                                    "release_mbid": _id(r, 2), "duration_ms": rec["length"], "date": "2001-02-03",
                                    "label": f"Label {r % 50}", "upc": f"{r:012d}", "track_number": p,
                                    "disc_number": 1}) + "\n")
            d.write(json.dumps({"id": _id(r, 2), "title": f"Album {r}", "date": "2001-02-03", "barcode": f"{r:012d}",
                                "label-info": [{"label": {"id": _id(r % 50, 5), "name": f"Label {r % 50}"}}],
                                "artist-credit": credit, "release-group": {"id": _id(r, 6)},
                                "media": [{"position": 1, "tracks": tracks}]}) + "\n")
    return dump, rows


def timed(importer, path: Path, folder: Path) -> float:
    with open_catalog(folder / f"{path.stem}-{time.monotonic_ns()}.sqlite3") as catalog:
        start = time.perf_counter()
        report = importer(catalog, path)
        elapsed = time.perf_counter() - start
    return (report.new + report.updated + report.unchanged) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--releases", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        dump, rows = write_files(folder, args.releases)
        mb = timed(import_musicbrainz, dump, folder)
        cat = timed(import_catalog_file, rows, folder)
        print(json.dumps({"tracks": args.releases * 10, "musicbrainz_rows_per_s": round(mb),
                          "catalog_rows_per_s": round(cat), "ratio": round(mb / cat, 2)}))


if __name__ == "__main__":
    main()
