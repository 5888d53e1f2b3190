"""Reading and preparing catalog rows in a second process, for large fresh imports.

Reading, validating and keying rows (tabular.read_frames, _rows.RowPreparer) is pure
Python for much of its time, and so is matching on the fresh path (_fresh.py): on two
threads they take turns on one GIL. A child process (``python -m`` this module) reads and
prepares the batches and sends them, pickled, through its stdout; the parent only matches
and writes. The pipe's buffer and the consumer's queue bound the memory. The child never
opens the catalog, and it dies with the thread that started it (``PR_SET_PDEATHSIG``, see
:mod:`soundark.lifeline`): a reader blocked on a slow input (a FIFO, a stalled network mount)
would otherwise outlive a killed import. (multiprocessing's ``spawn`` was tried first: it
re-runs the caller's main script, which breaks any caller without an ``if __name__ ==
"__main__"`` guard.)

Messages, each one pickle: the parent sends ``(path, options, rights, separator)``; the
child sends ``("plan", ColumnPlan)`` at most once, ``("batch", StagedBatch)`` per batch,
then ``("done", None)`` or ``("error", exception)``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from soundark.catalog.importers._rows import StagedBatch
from soundark.catalog.importers.columns import ColumnOptions
from soundark.errors import EnvironmentProblem

# Below this file size a second thread is enough: starting a Python process costs ~0.5 s.
PROCESS_READER_BYTES = 32 << 20
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])
PARENT_ENV = "SOUNDARK_READER_PARENT"
CHILD_MODULE = "soundark.catalog.importers._reader_child"  # by name: it imports tabular, which imports us


def prepared_batches(path: Path, options: ColumnOptions, rights: str, separator: str,
                     on_plan: Callable | None = None) -> Iterator[StagedBatch]:
    """The StagedBatches of *path*, read and prepared by a child process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    env[PARENT_ENV] = str(os.getpid())  # the child dies with us (soundark.lifeline), zombie or not
    child = subprocess.Popen([sys.executable, "-m", CHILD_MODULE], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=env)
    stdin, stdout = child.stdin, child.stdout
    try:
        if stdin is None or stdout is None:
            raise EnvironmentProblem(path, "the reader process has no pipes")
        pickle.dump((Path(path), options, rights, separator), stdin)
        stdin.close()
        while True:
            try:
                kind, payload = pickle.load(stdout)
            except EOFError:
                raise EnvironmentProblem(path, f"the reader process ended unexpectedly (exit code"
                                               f" {child.wait()})") from None
            if kind == "batch":
                yield payload
            elif kind == "plan":
                if on_plan is not None:
                    on_plan(payload)
            elif kind == "error":
                raise payload
            else:
                return
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        if stdout is not None:
            stdout.close()
