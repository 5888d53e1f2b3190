"""Where encode tasks run: a small executor protocol, a local process pool, and Ray.

The stage only needs ``submit(task) -> concurrent.futures.Future`` and
``shutdown()``, so a cluster executor drops in beside the local one. Workers get
plain data (:class:`~soundark.encode.worker.EncodeTask`) and return plain data;
they never hold the catalog. On a Ray cluster every node must see the source
files and the archive folder at the same paths (a shared filesystem).

Ray is optional (``pip install soundark[ray]``) and is imported only here.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from typing import Protocol

from soundark.config import cpu_count
from soundark.encode.worker import EncodeOutcome, EncodeTask, encode_one, watch_parent
from soundark.errors import BadInput, EnvironmentProblem

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    """Runs :func:`~soundark.encode.worker.encode_one` on tasks, somewhere."""

    workers: int

    def submit(self, task: EncodeTask) -> cf.Future[EncodeOutcome]: ...

    def shutdown(self) -> None: ...

    def describe(self) -> str: ...


class LocalExecutor:
    """A process pool on this machine (default: one worker per core).

    Workers start from a fork server, not by forking the parent: the parent runs
    threads (the progress bar) and holds a SQLite connection, neither of which a
    forked child should inherit.
    """

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or cpu_count()
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":  # import PyAV, numpy and mutagen once, not once per worker
            ctx.set_forkserver_preload(["soundark.encode.worker"])
        self._pool = cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                            initializer=watch_parent, initargs=(os.getpid(),))

    def submit(self, task: EncodeTask) -> cf.Future[EncodeOutcome]:
        return self._pool.submit(encode_one, task)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def describe(self) -> str:
        return f"local pool, {self.workers} worker(s)"


class ThreadExecutor:
    """Threads in this process: libopus releases the GIL, so this scales for encoding.

    Used by tests and for ``workers == 1`` debugging; the process pool stays the default
    because tagging, hashing and QA hold the GIL.
    """

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or cpu_count()
        self._pool = cf.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="encode")

    def submit(self, task: EncodeTask) -> cf.Future[EncodeOutcome]:
        return self._pool.submit(encode_one, task)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def describe(self) -> str:
        return f"threads, {self.workers} worker(s)"


class RayExecutor:
    """Tasks on a Ray cluster (``address``), or on a private local Ray started for this run."""

    def __init__(self, workers: int = 0, address: str = "") -> None:
        try:
            import ray
        except ImportError as e:
            raise EnvironmentProblem("ray", "not installed: pip install 'soundark[ray]'") from e
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                # A private cluster on loopback: no usage report, no probing for a public IP.
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                ray.init(num_cpus=workers or cpu_count(), include_dashboard=False,
                         log_to_driver=False, _node_ip_address="127.0.0.1")
            self._started = True
        self.address = address or "local"
        self.workers = workers or int(ray.cluster_resources().get("CPU", 1))
        self._remote = ray.remote(num_cpus=1, max_retries=0)(encode_one)

    def submit(self, task: EncodeTask) -> cf.Future[EncodeOutcome]:
        return self._remote.remote(task).future()

    def shutdown(self) -> None:
        if self._started:
            self._ray.shutdown()

    def describe(self) -> str:
        return f"ray ({self.address}), {self.workers} slot(s)"


def check_executor(kind: str) -> None:
    if kind not in EXECUTORS + ("threads",):
        raise BadInput("executor", f"unknown executor {kind!r}; use one of: {', '.join(EXECUTORS)}")


def make_executor(kind: str, workers: int = 0, address: str = "") -> Executor:
    """The executor named *kind* (``local``, ``ray``, or ``threads`` for tests)."""
    if workers < 0:
        raise BadInput("workers", f"{workers} is negative; 0 means one per core")
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(workers, address)
    if kind == "threads":
        return ThreadExecutor(workers)
    raise BadInput("executor", f"unknown executor {kind!r}; use one of: {', '.join(EXECUTORS)}")
