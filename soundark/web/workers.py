"""Several uvicorn worker processes sharing one listening socket, each taking new connections
only while it holds no more of them than the least loaded worker (Linux and other Unixes).

uvicorn's own multi-process mode gives every worker the same listening socket. When several
clients connect at once, every idle worker wakes up and the first one takes *all* the waiting
connections (asyncio accepts up to the backlog in one go): measured with 20 keep-alive clients
opening together on 2 workers, the split was 20/0 in 2 runs of 8, 18/2 or 14/6 in most others.
A socket per worker with SO_REUSEPORT (this module's previous design) spreads connections by a
hash of the client's port: 20 connections fall on 2 workers like 20 coin tosses, 10/10 in only
18 % of bursts and 13/7 or worse in 27 % (measured: 14/6, 11/9, 10/10, 14/6, 11/9, 12/8, 11/9,
10/10). Under load, a worker's clients wait for each other: with 14 of 20 connections, that
worker's answers take 14/10 as long as with an even split, and the p95 follows.

Here the parent binds one socket, every worker accepts on it, and a shared array holds each
worker's number of open connections. :class:`BalancedAcceptor` accepts one connection at a time,
and only while its worker holds no more than any other; otherwise it steps back for
:data:`RETRY_SECONDS` and lets a less loaded worker take the connection. A connection that no
other worker has taken after :data:`MAX_DEFER_SECONDS` (that worker is stuck in a long search, or
gone) is taken anyway, so one hung worker cannot stall new clients. A burst of 20 is split 10/10.

The parent calls ``on_ready`` once every worker has loaded the app and accepts (``soundark serve``
then prints ``ready: N workers accepting`` on stderr); until then a starting worker's slot reads as
full and the others take every connection. The parent keeps the socket open: a worker that dies is
replaced, and meanwhile the others take every new connection (its slot in the array reads as full
until the new one accepts). Ctrl-C (SIGINT to the process group) or SIGTERM to the parent stops
every worker gracefully.

Where ``loop.add_reader`` is not available (Windows' proactor loop), :func:`balanced` is False
and the caller runs uvicorn's own multi-process mode instead.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("soundark.web")

BACKLOG = 2048  # uvicorn's default listen backlog
STARTUP_FAILURE = 3  # uvicorn's exit code for a worker that could not start
STOP_SECONDS = 10.0  # a worker still running this long after SIGTERM is killed
CHECK_SECONDS = 0.5
RETRY_SECONDS = 0.002  # a worker holding more connections than another looks again this much later
MAX_DEFER_SECONDS = 0.1  # ...and takes a connection nobody else has taken after this long
ABSENT = 1 << 30  # a worker slot's count while no worker accepts there (starting, dead)


def balanced() -> bool:
    """True where workers can share one socket through :class:`BalancedAcceptor` (not Windows)."""
    return sys.platform != "win32"


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket on host:port that every worker accepts on (port 0: a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


class BalancedAcceptor:
    """Accepts on a listening socket shared with other workers, one connection at a time and only
    while ``counts[index]`` (this worker's open connections) is no more than every other worker's.

    *factory* makes the protocol of each accepted connection (uvicorn's); the count goes down
    when that protocol's ``connection_lost`` runs. Has uvicorn's server interface (``close``,
    ``wait_closed``) so that uvicorn stops it on shutdown."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 factory: Callable[[], asyncio.Protocol], counts: Any, index: int) -> None:
        self.loop = loop
        self.sock = sock
        self.factory = factory
        self.counts = counts
        self.index = index
        self.open = 0
        self.deferred_since: float | None = None
        self.last_deferral = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.serving: set[asyncio.Task[None]] = set()  # asyncio keeps only weak references to tasks
        sock.setblocking(False)
        counts[index] = 0
        loop.add_reader(sock.fileno(), self._readable)

    def _least_loaded(self) -> bool:
        counts: Sequence[int] = self.counts[:]
        return counts[self.index] <= min(counts)

    def _readable(self) -> None:
        if not self._least_loaded():
            now = self.loop.time()
            # a gap in the retries: what waited before was taken meanwhile, this is a new wait
            if self.deferred_since is None or now - self.last_deferral > 5 * RETRY_SECONDS:
                self.deferred_since = now
            self.last_deferral = now
            if now - self.deferred_since < MAX_DEFER_SECONDS:
                self.loop.remove_reader(self.sock.fileno())  # not readable again until the retry
                self.timer = self.loop.call_later(RETRY_SECONDS, self._rearm)
                return
        self.deferred_since = None
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it, or the client gave up
        except OSError as e:  # out of file descriptors, ...: wait a little, the connection stays queued
            log.warning("cannot accept a connection: %s", e)
            self.loop.remove_reader(self.sock.fileno())
            self.timer = self.loop.call_later(0.1, self._rearm)
            return
        conn.setblocking(False)
        self._count(+1)
        task = self.loop.create_task(self._serve(conn))
        self.serving.add(task)
        task.add_done_callback(self.serving.discard)

    def _rearm(self) -> None:
        self.timer = None
        if self.closed:
            return
        self.loop.add_reader(self.sock.fileno(), self._readable)

    def _count(self, change: int) -> None:
        self.open += change
        if not self.closed:  # once closed, the slot stays ABSENT while the last connections end
            self.counts[self.index] = self.open

    async def _serve(self, conn: socket.socket) -> None:
        def counted() -> asyncio.Protocol:
            protocol = self.factory()
            lost = protocol.connection_lost

            def connection_lost(exc: Exception | None) -> None:
                self._count(-1)
                lost(exc)

            protocol.connection_lost = connection_lost  # type: ignore[method-assign]
            return protocol

        try:
            await self.loop.connect_accepted_socket(counted, conn)
        except OSError as e:  # the client went away before the transport was set up
            log.debug("connection dropped before it was served: %s", e)
            self._count(-1)
            conn.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        self.loop.remove_reader(self.sock.fileno())
        self.counts[self.index] = ABSENT

    async def wait_closed(self) -> None:
        return None


def call_when_started(server: Any, callback: Callable[[], None]) -> None:
    """Call *callback* from a thread once the uvicorn *server* has started (not if it gives up)."""

    def watch() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            callback()

    threading.Thread(target=watch, daemon=True).start()


def _serve_one(config: dict[str, Any], sock: socket.socket, counts: Any, index: int,
               ready: Any) -> None:  # pragma: no cover (a child)
    import uvicorn

    class BalancedServer(uvicorn.Server):
        """uvicorn's server with a :class:`BalancedAcceptor` in place of ``loop.create_server``."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=[])  # the app's lifespan, no listener of uvicorn's own
            config = self.config

            def protocol() -> asyncio.Protocol:  # as uvicorn's own startup makes them
                return config.http_protocol_class(config=config, server_state=self.server_state,  # type: ignore
                                                  app_state=self.lifespan.state)

            self.servers.append(BalancedAcceptor(asyncio.get_running_loop(), sock, protocol, counts, index))

    server = BalancedServer(uvicorn.Config(**config))
    call_when_started(server, ready.set)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class Workers:
    """The parent of the worker processes: starts them, replaces one that dies, stops them all."""

    def __init__(self, config: dict[str, Any], sock: socket.socket, count: int,
                 on_ready: Callable[[], None] | None = None) -> None:
        self.config = config
        self.sock = sock
        self.on_ready = on_ready  # called once, when every worker first accepts
        self.context = multiprocessing.get_context("spawn")  # a clean interpreter, as uvicorn starts workers
        # each worker's open connections, read by all (ABSENT while none accepts in that slot)
        self.counts = self.context.RawArray("l", [ABSENT] * count)
        self.processes: list[Any] = [None] * count
        self.ready: list[Any] = [None] * count
        self.stopping = threading.Event()
        self.failed = False

    def _start(self, i: int) -> None:
        self.ready[i] = self.context.Event()
        self.counts[i] = ABSENT  # its connections, if it had any, went with it
        proc = self.context.Process(target=_serve_one, args=(self.config, self.sock, self.counts, i, self.ready[i]))
        proc.start()
        self.processes[i] = proc

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping.set()

    def run(self) -> int:
        """Serve until SIGINT or SIGTERM; the exit status (1 when a worker could not start)."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for i in range(len(self.processes)):
                self._start(i)
            announced = False
            while not self.stopping.wait(CHECK_SECONDS if announced else 0.05):
                self._replace_dead()
                if not announced and all(e.is_set() for e in self.ready):
                    announced = True
                    if self.on_ready is not None:
                        self.on_ready()
        finally:
            self._stop_all()
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.sock.close()
        return 1 if self.failed else 0

    def _replace_dead(self) -> None:
        for i, proc in enumerate(self.processes):
            if proc.is_alive():
                continue
            proc.join()
            if not self.ready[i].is_set() and (proc.exitcode or 0) > 0:
                # it gave up before it served (the app could not load, ...): a replacement would too;
                # one killed by a signal (exit code < 0) is replaced like any other
                log.error("a server process could not start (exit code %s); stopping", proc.exitcode)
                self.failed = True
                self.stopping.set()
                return
            log.warning("server process %s ended (exit code %s); starting another", proc.pid, proc.exitcode)
            self._start(i)

    def _stop_all(self) -> None:
        alive = [p for p in self.processes if p is not None and p.is_alive()]
        for proc in alive:
            try:
                os.kill(proc.pid, signal.SIGTERM)  # graceful: uvicorn finishes what it is answering
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_SECONDS
        for proc in alive:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
