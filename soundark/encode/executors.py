"""Where encode tasks run: a small executor protocol, a local process pool, and Ray.

The stage needs ``submit(task) -> concurrent.futures.Future``, ``land(future)``
(what came back, and from which node), ``room()`` (back-pressure) and
``shutdown()``, so a cluster executor drops in beside the local one. Workers get
plain data (:class:`~soundark.encode.worker.EncodeTask`) and return plain data;
they never hold the catalog.

On Ray (docs/cluster.md) a node either sees the sources and the archive folder at
the same paths (a shared filesystem: it writes its checked output into the run's
temporary folder itself) or it does not: then the driver ships the source bytes
through Ray's object store and the node returns the checked output bytes, which
the stage writes. ``ray_storage`` picks ``shared``, ``ship`` or ``auto`` (a task
first checks, on its node, that it sees the run's marker file and the source at
its scanned size; if not, the driver ships it). Tasks lost with their node or
worker raise :class:`TaskLost`: the stage sends them again, under the same lease.

Ray is optional (``pip install soundark[ray]``) and is imported only here.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass, replace
from typing import Any, Protocol

from soundark.config import cpu_count
from soundark.encode.worker import EncodeOutcome, EncodeTask, encode_one, watch_parent
from soundark.errors import BadInput, EnvironmentProblem
from soundark.units import split_host_port

EXECUTORS = ("local", "ray")
RAY_STORAGE = ("auto", "shared", "ship")
_MARKER = ".soundark-run"   # in the run's temporary folder: proves a node sees the driver's files
_SHIP_PREFIX = "soundark-ship-"  # + worker pid: a shipped task's private folder on its node


class TaskLost(Exception):
    """The cluster lost a task (its node or worker died, an object was lost): not the input's fault."""


@dataclass(frozen=True)
class Landed:
    """What one task brought back, and where it ran."""

    outcome: EncodeOutcome
    node: str = "local"
    data: bytes | None = None   # shipped tasks: the checked output bytes; the stage writes them
    blind: bool = False         # the node does not see the run's files: ship this task instead


class Executor(Protocol):
    """Runs :func:`~soundark.encode.worker.encode_one` on tasks, somewhere."""

    workers: int
    peak_bytes: int  # most shipped source bytes in flight at once

    def submit(self, task: EncodeTask) -> cf.Future[EncodeOutcome]: ...

    def shutdown(self) -> None: ...

    def describe(self) -> str: ...

    def ship(self, task: EncodeTask) -> cf.Future[Any]: ...

    def land(self, future: cf.Future[Any]) -> Landed: ...

    def room(self) -> bool: ...

    @property
    def max_inflight(self) -> int: ...


class _OnThisMachine:
    """What the local executors share: results come back as they are, from this host."""

    workers: int
    peak_bytes = 0  # nothing is shipped

    def submit(self, task: EncodeTask) -> cf.Future[Any]:
        raise NotImplementedError

    def ship(self, task: EncodeTask) -> cf.Future[Any]:
        return self.submit(task)  # this machine sees every file

    def land(self, future: cf.Future[Any]) -> Landed:
        return Landed(future.result())

    def room(self) -> bool:
        return True

    @property
    def max_inflight(self) -> int:
        # One task per worker runs, one waits in the pool's queue: the rest wait in the stage,
        # longest first (the pool runs tasks in submission order).
        return self.workers + 1


class LocalExecutor(_OnThisMachine):
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


class ThreadExecutor(_OnThisMachine):
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


@dataclass(frozen=True)
class RayOptions:
    """How the driver meets a Ray cluster (settings ``ray_address``, ``ray_storage``, ``ray_ship_bytes``)."""

    address: str = ""
    storage: str = "auto"
    ship_bytes: int = 1 << 30


class RayExecutor:
    """Tasks on a Ray cluster (``address``), or on a private local Ray started for this run.

    At most two tasks per cluster CPU are in flight (Ray queues the second on its node,
    so no CPU waits for the driver), and at most ``ship_bytes`` of shipped sources sit in
    the object store; a task's references are dropped as soon as it lands.
    """

    def __init__(self, workers: int = 0, options: RayOptions = RayOptions()) -> None:
        if options.storage not in RAY_STORAGE:
            raise BadInput("ray_storage", f"{options.storage!r} is not one of {', '.join(RAY_STORAGE)}")
        ray = _import_ray(options.address)
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            _connect(ray, workers, options.address)
            self._started = True
        self.address = options.address or "local"
        self.storage, self.ship_bytes = options.storage, options.ship_bytes
        self.workers = workers or int(ray.cluster_resources().get("CPU", 1))
        self.nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_run_on_node)
        self._token = uuid.uuid4().hex
        self._marked: set[str] = set()
        self._lock = threading.Lock()  # Ray completes futures on its own threads
        self._refs: dict[cf.Future[Any], tuple[Any, int]] = {}  # kept alive until landed
        self._bytes = 0         # shipped source bytes of the tasks in flight
        self.peak_bytes = 0

    @property
    def max_inflight(self) -> int:
        return 2 * self.workers

    def submit(self, task: EncodeTask) -> cf.Future[Any]:
        if self.storage == "ship":
            return self.ship(task)
        size = -1
        if self.storage == "auto":
            self._mark(task.tmp_dir)
            try:
                size = os.stat(task.source_path).st_size
            except OSError:
                return self.ship(task)  # the driver cannot see it either: ship() reports why
        return self._track(self._remote.remote(task, self.storage, self._token, size, None), None, 0)

    def ship(self, task: EncodeTask) -> cf.Future[Any]:
        """Send the source's bytes with the task; the node returns the checked output's bytes."""
        try:
            with open(task.source_path, "rb") as f:
                data = f.read()
        except OSError as e:
            done: cf.Future[Any] = cf.Future()
            done.set_result(Landed(EncodeOutcome(task.recording_id, task.tier, error=(
                f"cannot read the source ({e.strerror or e})")), node="driver"))
            return done
        payload = self._ray.put(data)
        return self._track(self._remote.remote(task, "ship", self._token, len(data), payload),
                           payload, len(data))

    def _track(self, ref: Any, payload: Any, nbytes: int) -> cf.Future[Any]:
        future: cf.Future[Any] = ref.future()
        with self._lock:
            self._refs[future] = ((ref, payload), nbytes)
            self._bytes += nbytes
            self.peak_bytes = max(self.peak_bytes, self._bytes)
        return future

    def _mark(self, tmp_dir: str) -> None:
        """Write the run's token where every node that shares the archive folder can read it."""
        if tmp_dir in self._marked:
            return
        with open(os.path.join(tmp_dir, _MARKER), "w", encoding="ascii") as f:
            f.write(self._token)
            f.flush()
            os.fsync(f.fileno())  # a shared filesystem shows other nodes what was closed and synced
        self._marked.add(tmp_dir)

    def room(self) -> bool:
        with self._lock:
            return self._bytes < self.ship_bytes or self._bytes == 0

    def land(self, future: cf.Future[Any]) -> Landed:
        with self._lock:  # the object store may free the source's bytes now
            _, nbytes = self._refs.pop(future, (None, 0))
            self._bytes -= nbytes
        exceptions = self._ray.exceptions
        try:
            landed: Landed = future.result()
        except (exceptions.RayTaskError, exceptions.TaskCancelledError):
            raise
        except exceptions.RayError as e:  # node or worker died, object lost, unschedulable
            text = " ".join(str(e).split())[:200]
            raise TaskLost(f"{type(e).__name__}: {text}") from e
        return landed

    def shutdown(self) -> None:
        with self._lock:
            self._refs.clear()
            self._bytes = 0
        if self._started:
            self._ray.shutdown()

    def describe(self) -> str:
        return (f"ray ({self.address}), {self.nodes} node(s), {self.workers} slot(s), "
                f"storage {self.storage}")


def _is_loopback(address: str) -> bool:
    host, _port = split_host_port(address)
    return host in ("127.0.0.1", "localhost", "::1")


def _import_ray(address: str) -> Any:
    # No usage report from a cluster this run starts (a cluster started by `ray start` decides
    # for itself: docs/cluster.md). For a loopback address, Ray would otherwise replace
    # 127.0.0.1 by the address it finds by probing a public IP, where a loopback-only
    # cluster does not listen; this switch (read when Ray is imported) keeps it on 127.0.0.1.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not address or _is_loopback(address):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError as e:
        raise EnvironmentProblem("ray", "not installed: pip install 'soundark[ray]'") from e
    return ray


def _errors_to_stderr(ray: Any) -> None:
    """Send the cluster's error messages (a node died ...) to stderr instead of stdout.

    Ray's driver prints them on stdout, where ``--json`` promises one JSON object and
    nothing else. The function is private to Ray: if it moves, nothing is patched.
    """
    module = getattr(getattr(ray, "_private", None), "worker", None)
    original = getattr(module, "print_to_stdstream", None)
    if original is None or getattr(original, "soundark_stderr", False):
        return

    def to_stderr(data: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        return original({**data, "is_err": True}, *args, **kwargs)

    to_stderr.soundark_stderr = True  # type: ignore[attr-defined]
    module.print_to_stdstream = to_stderr  # type: ignore[union-attr]


def _connect(ray: Any, workers: int, address: str) -> None:
    _errors_to_stderr(ray)
    try:
        if not address:  # a private cluster on loopback
            ray.init(num_cpus=workers or cpu_count(), include_dashboard=False,
                     log_to_driver=False, _node_ip_address="127.0.0.1")
        elif _is_loopback(address):
            ray.init(address=address, log_to_driver=False, _node_ip_address="127.0.0.1")
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise EnvironmentProblem(f"ray {address or 'local'}", f"cannot start or join the cluster: {e}") from e


# --- what runs on a Ray node -------------------------------------------------------------

def _run_on_node(task: EncodeTask, mode: str, token: str, size: int, payload: bytes | None) -> Landed:
    node = _node_label()
    if payload is not None:
        return _run_shipped(task, payload, node)
    if mode == "auto" and not _sees(task, token, size):
        return Landed(EncodeOutcome(task.recording_id, task.tier), node=node, blind=True)
    # Each attempt writes into a folder of its own: a task given up for lost (its node cut
    # off, not dead) can never overwrite the output of the attempt that replaced it.
    attempt = os.path.join(task.tmp_dir, uuid.uuid4().hex[:12])
    try:
        os.mkdir(attempt)
    except OSError as e:
        return Landed(EncodeOutcome(task.recording_id, task.tier, machine=True, error=(
            f"node {node} cannot write {task.tmp_dir} ({e.strerror or e}): give every node the "
            "archive folder at the same path, or set ray_storage = \"auto\" or \"ship\"")), node=node)
    return Landed(encode_one(replace(task, tmp_dir=attempt)), node=node)


def _sees(task: EncodeTask, token: str, size: int) -> bool:
    """Does this node see the driver's run folder (its marker) and the source at its size?"""
    try:
        with open(os.path.join(task.tmp_dir, _MARKER), encoding="ascii") as f:
            if f.read().strip() != token:
                return False
        return os.stat(task.source_path).st_size == size and os.access(task.tmp_dir, os.W_OK)
    except OSError:
        return False


def _run_shipped(task: EncodeTask, payload: bytes, node: str) -> Landed:
    """Encode shipped bytes in a private folder on this node; return the output's bytes."""
    sweep_ship_folders()
    with tempfile.TemporaryDirectory(prefix=f"{_SHIP_PREFIX}{os.getpid()}-") as work:
        folder = os.path.join(work, "src")
        os.mkdir(folder)
        # Same file name as the source: its extension guides probing and names a kept original.
        src = os.path.join(folder, os.path.basename(task.source_path) or "source")
        with open(src, "wb") as f:
            f.write(payload)
        outcome = encode_one(replace(task, source_path=src, tmp_dir=work))
        if not outcome.ok or not outcome.tmp_path:
            return Landed(replace(outcome, error=(outcome.error or "").replace(src, task.source_path)),
                          node=node)
        with open(outcome.tmp_path, "rb") as f:
            data = f.read()
        return Landed(replace(outcome, tmp_path=None), node=node, data=data)


def sweep_ship_folders(root: str | None = None) -> int:
    """Remove the private folders of shipped tasks whose worker process is gone.

    A worker killed mid-task (its node lost, its driver killed) cannot clean up after
    itself; the next shipped task on the same node does it.
    """
    root = root or tempfile.gettempdir()
    removed = 0
    for name in os.listdir(root):
        pid = name[len(_SHIP_PREFIX):].split("-", 1)[0]
        if not (name.startswith(_SHIP_PREFIX) and pid.isdigit()) or _alive(int(pid)):
            continue
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _node_label() -> str:
    import ray

    return f"{ray.util.get_node_ip_address()}/{ray.get_runtime_context().get_node_id()[:8]}"

def check_executor(kind: str) -> None:
    if kind not in EXECUTORS + ("threads",):
        raise BadInput("executor", f"unknown executor {kind!r}; use one of: {', '.join(EXECUTORS)}")


def make_executor(kind: str, workers: int = 0, address: str = "",
                  ray: RayOptions | None = None) -> Executor:
    """The executor named *kind* (``local``, ``ray``, or ``threads`` for tests)."""
    if workers < 0:
        raise BadInput("workers", f"{workers} is negative; 0 means one per core")
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(workers, replace(ray or RayOptions(), address=address))
    if kind == "threads":
        return ThreadExecutor(workers)
    raise BadInput("executor", f"unknown executor {kind!r}; use one of: {', '.join(EXECUTORS)}")
