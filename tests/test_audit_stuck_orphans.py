"""Issue 13 audit: child processes die with their parent, even when nobody reaps the parent.

A killed process that its own parent does not wait for stays a zombie, and a zombie passes
``os.kill(pid, 0)``: encode's pool workers used exactly that check and outlived the run. Here a
real ``soundark encode`` runs under an intermediate Python process that never reaps it; the
encode process is SIGKILLed once its workers are busy; every process it started must be gone
within a generous bounded wait (polled, no timing assertion).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soundark import lifeline

from helpers.encode import make_sources

# The intermediate: starts the command, prints its pid, then sleeps without ever calling wait().
_NO_REAPER = (
    "import subprocess, sys, time\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "print(p.pid, flush=True)\n"
    "time.sleep(600)\n"
)


def _children(pid: int) -> set[int]:
    """Every live descendant of *pid* (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    parents[int(entry)] = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for child, parent in parents.items():
            if parent == p and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_encode_workers_die_when_the_unreaped_parent_is_killed(archive, catalog, tmp_path: Path) -> None:
    make_sources(catalog, tmp_path / "src", 6, seconds=6.0)
    keeper = subprocess.Popen(
        [sys.executable, "-c", _NO_REAPER, sys.executable, "-m", "soundark", "encode", "-a",
         str(archive.root), "--workers", "2"], stdout=subprocess.PIPE, text=True)
    try:
        assert keeper.stdout is not None
        encode_pid = int(keeper.stdout.readline())
        # the fork server and two workers: at least three processes below the run
        assert _wait_until(lambda: len(_children(encode_pid)) >= 3, 120), "the workers never started"
        started = _children(encode_pid)
        os.kill(encode_pid, signal.SIGKILL)
        assert _wait_until(lambda: lifeline.process_gone(encode_pid), 30)
        assert lifeline.is_zombie(encode_pid)  # nobody reaped it: the case os.kill(pid, 0) misses
        assert _wait_until(lambda: all(lifeline.process_gone(p) for p in started), 60), \
            f"still running after their parent died: {sorted(p for p in started if not lifeline.process_gone(p))}"
    finally:
        keeper.kill()
        keeper.wait()
        if keeper.stdout is not None:
            keeper.stdout.close()


def test_process_gone_sees_a_zombie() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        assert _wait_until(lambda: lifeline.is_zombie(child.pid), 30)
        os.kill(child.pid, 0)  # a zombie still passes the old check ...
        assert lifeline.process_gone(child.pid)  # ... but not this one
        assert not lifeline.process_gone(os.getpid())
    finally:
        child.wait()
    assert lifeline.process_gone(child.pid)  # reaped: no such process at all


# The intermediate for the catalog reader: its reader child blocks opening a FIFO nobody writes.
_BLOCKED_IMPORT = (
    "import sys\n"
    "from pathlib import Path\n"
    "from soundark.catalog.importers import _reader\n"
    "from soundark.catalog.importers._rows import FIELDS\n"
    "from soundark.catalog.importers.columns import ColumnOptions\n"
    "print('started', flush=True)\n"
    "next(_reader.prepared_batches(Path(sys.argv[1]), ColumnOptions(FIELDS), 'unknown', ';'))\n"
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_catalog_reader_child_dies_with_its_unreaped_parent(tmp_path: Path) -> None:
    fifo = tmp_path / "rows.jsonl"
    os.mkfifo(fifo)
    importer = subprocess.Popen([sys.executable, "-c", _BLOCKED_IMPORT, str(fifo)],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert importer.stdout is not None and importer.stdout.readline().strip() == "started"
        assert _wait_until(lambda: bool(_children(importer.pid)), 60), "the reader never started"
        readers = _children(importer.pid)
        importer.kill()  # not reaped until the end of the test: a zombie meanwhile
        assert _wait_until(lambda: lifeline.is_zombie(importer.pid), 30)
        assert _wait_until(lambda: all(lifeline.process_gone(p) for p in readers), 30), \
            "the reader outlived its parent"
    finally:
        importer.kill()
        importer.wait()
        importer.stdout.close()
