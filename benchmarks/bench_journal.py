"""Encode journal writes: one catalog transaction per finished file vs one per batch.

The encode stage records each finished file (its ``encoded`` row and its job marked
done, soundark.encode.jobs). It used to commit once per file; it now commits once per
batch (64 files or one second, soundark.encode.stage). On a cluster the driver records
every node's files, so this rate bounds how many files per second a run can take.
Same rows, same catalog schema, two fresh catalogs (WAL, synchronous=NORMAL).

    python benchmarks/bench_journal.py [--files 3000] [--batch 64]

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from soundark.catalog.store import Catalog, open_catalog, utc_now
from soundark.config import ArchivePaths, Settings, write_settings
from soundark.encode import jobs


def leased_catalog(root: Path, files: int) -> tuple[Catalog, str, list[jobs.EncodedRow]]:
    """A catalog with *files* planned recordings, all leased by one run."""
    paths = ArchivePaths(root)
    root.mkdir()
    write_settings(root, Settings())
    catalog = open_catalog(paths.catalog)
    now = utc_now()
    with catalog.transaction() as conn:
        for i in range(files):
            rid = conn.execute("INSERT INTO recording(key, title, artist) VALUES (?, ?, 'a') "
                               "RETURNING id", (f"k{i}", f"t{i}")).fetchone()[0]
            sid = conn.execute("INSERT INTO source_file(path, size, mtime_ns, status, codec, "
                               "recording_id, scanned_at) VALUES (?, 1, 0, 'ok', 'flac', ?, ?) "
                               "RETURNING id", (f"/x/{i}.flac", rid, now)).fetchone()[0]
            conn.execute("INSERT INTO plan(recording_id, tier, est_bytes, rank, weight, source_id, "
                         "planned_at) VALUES (?, 'opus75', 0, ?, 1.0, ?, ?)", (rid, i + 1, sid, now))
    jobs.sync_jobs(catalog)
    owner = jobs.new_owner()
    rows = [jobs.EncodedRow(j.recording_id, "opus75", f"{j.recording_id:064x}", 1000, ".opus",
                            1000, "0" * 64, "bench", None)
            for j in jobs.lease(catalog, owner, files, 600)]
    return catalog, owner, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        catalog, owner, rows = leased_catalog(Path(d) / "one", args.files)
        t = time.perf_counter()
        for row in rows:
            jobs.complete(catalog, owner, row)
        one = time.perf_counter() - t
        catalog.close()
        catalog, owner, rows = leased_catalog(Path(d) / "batched", args.files)
        t = time.perf_counter()
        for i in range(0, len(rows), args.batch):
            jobs.complete_many(catalog, owner, [(row, None) for row in rows[i:i + args.batch]])
        batched = time.perf_counter() - t
        catalog.close()
    print(f"per-file commits: {args.files / one:,.0f} files/s; batches of {args.batch}: "
          f"{args.files / batched:,.0f} files/s")
    print(json.dumps({"files": args.files, "batch": args.batch,
                      "per_file_files_per_s": round(args.files / one),
                      "batched_files_per_s": round(args.files / batched),
                      "ratio": round(one / batched, 2)}))


if __name__ == "__main__":
    main()
