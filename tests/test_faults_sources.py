"""Sources deleted or changed between scan and encode (issue 13, faults): encode says per file what
changed (size, modification time, SHA-256) and what to do (rescan, then --retry-failed), the batch
goes on, the summary counts the failures and the run exits 1; a rescan and a retry finish the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

from soundark.encode import jobs

from helpers.encode import make_sources
from helpers.faults import one_error_line, run

RESCAN = "run `soundark scan` on its folder again, then `soundark encode --retry-failed`"


def test_changed_and_deleted_sources_are_named_and_the_batch_goes_on(archive, catalog, tmp_path):
    src = tmp_path / "src"
    ids = make_sources(catalog, src, 5, seconds=0.5)
    files = sorted(src.iterdir())
    files[0].unlink()                                  # deleted
    with open(files[1], "ab") as f:                     # grown: size and time change
        f.write(b"\0" * 100)
    data = bytearray(files[2].read_bytes())            # same size, one byte flipped, time kept
    st = files[2].stat()
    data[len(data) // 2] ^= 0xFF
    files[2].write_bytes(bytes(data))
    os.utime(files[2], ns=(st.st_atime_ns, st.st_mtime_ns))

    done = run("encode", "-a", str(archive.root), "--workers", "1", "--json")
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert (result["encoded"], result["failed"], result["remaining"]) == (2, 3, 0)
    reasons = {f["path"]: f["reason"] for f in result["failures"]}
    assert reasons[str(files[0])] == "source file is gone (deleted or moved since the scan): " + RESCAN
    assert re.fullmatch(rf"source changed since the scan \(size [\d,]+ -> [\d,]+ bytes, modified "
                        rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC, SHA-256 differs\): {re.escape(RESCAN)}",
                        reasons[str(files[1])]), reasons[str(files[1])]
    assert reasons[str(files[2])] == "source changed since the scan (SHA-256 differs): " + RESCAN
    assert one_error_line(done) == ("error: 3 recording(s) failed (reasons above, or in --json); fix them, "
                                    "then `soundark encode --retry-failed`")
    assert jobs.status_counts(catalog) == {"pending": 0, "running": 0, "done": 2, "failed": 3}

    text = run("encode", "-a", str(archive.root))  # nothing left to do: exit 0
    assert text.returncode == 0, text.stderr

    # the operator's fix: the changed files rescanned (here: their rows brought up to date)
    for path in files[1:3]:
        st = path.stat()
        catalog.execute("UPDATE source_file SET size = ?, mtime_ns = ?, sha256 = ? WHERE path = ?",
                        (st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest(), str(path)))
    again = run("encode", "-a", str(archive.root), "--retry-failed", "--json")
    assert again.returncode == 1  # the deleted one is still gone, and says so
    result = json.loads(again.stdout)
    assert (result["encoded"], result["failed"]) == (2, 1), result
    assert catalog.scalar("SELECT count(*) FROM encoded") == len(ids) - 1
