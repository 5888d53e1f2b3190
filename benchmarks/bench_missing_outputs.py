"""Measure encode's check for outputs missing from the store (soundark/encode/jobs.py).

Every encode run stats each ``encoded`` row's store file, so that a file deleted on repair's
advice is made again (docs/encode.md). This builds a catalog with N encoded rows and N tiny
store files, deletes one, and times :func:`soundark.encode.jobs.missing_outputs`.

LAST line is one JSON object.

    python benchmarks/bench_missing_outputs.py --outputs 100000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths
from soundark.encode import jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = ArchivePaths(Path(tmp))
        with open_catalog(paths.catalog) as catalog:
            with catalog.transaction() as conn:
                for i in range(args.outputs):
                    sha = hashlib.sha256(str(i).encode()).hexdigest()
                    rid = conn.execute("INSERT INTO recording(key, title, artist, rights) "
                                       "VALUES (?, 't', 'a', 'owned') RETURNING id", (f"k{i}",)).fetchone()[0]
                    conn.execute("INSERT INTO encoded(recording_id, tier, sha256, bytes, ext, source_sha256, "
                                 "encoder, created_at) VALUES (?, 'opus75', ?, 1, '.opus', 'x', 'e', 'now')",
                                 (rid, sha))
                    path = paths.store_path(sha, ".opus")
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(b"x")
            paths.store_path(hashlib.sha256(b"0").hexdigest(), ".opus").unlink()
            started = time.perf_counter()
            missing = jobs.missing_outputs(catalog, paths.store)
            seconds = time.perf_counter() - started
    assert len(missing) == 1
    print(json.dumps({"outputs": args.outputs, "missing": len(missing), "seconds": round(seconds, 3),
                      "us_per_output": round(seconds / args.outputs * 1e6, 1)}))


if __name__ == "__main__":
    main()
