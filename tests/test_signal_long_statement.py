"""A signal reaches a long SQLite statement (issue 13, item 4: SIGTERM stops every long command).

Python runs its signal handlers only between bytecodes, so a SIGTERM that arrives while one
statement runs in C (an index built over 10M rows, an integrity check) used to wait for that
statement to end: a 10M-row import went on for more than 20 s after SIGTERM, in its index build.
The catalog connection's progress handler now lets the handler run inside the statement. The
child here runs a statement that never ends on its own, with soundark's own SIGTERM handler, and
gets a real SIGTERM from this process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import sys
from pathlib import Path
from soundark.cli import _install_signal_handlers
from soundark.catalog.connection import connect

_install_signal_handlers()  # the CLI's handler: SIGTERM raises KeyboardInterrupt
path = Path(sys.argv[1])
conn = connect(path, path)
conn.execute("CREATE TABLE t(x)")
conn.execute("INSERT INTO t VALUES (1)")
conn.commit()
try:
    print("running", flush=True)
    conn.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
except KeyboardInterrupt:
    # the clean-up after a stop still works: the next statements are not interrupted
    print("stopped; clean-up read", conn.execute("SELECT count(*) FROM t").fetchone()[0], flush=True)
    sys.exit(143)
print("statement ended", flush=True)
"""


def test_sigterm_stops_a_statement_that_runs_in_sqlite(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "c.sqlite3")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "running"
        time.sleep(0.5)  # let the statement start: the signal must land inside it
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)  # before the fix: never (the statement is endless)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert out.strip() == "stopped; clean-up read 1", err
