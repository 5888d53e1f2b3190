"""Several uvicorn worker processes, each accepting on its own listening socket (Linux SO_REUSEPORT).

uvicorn's own multi-process mode gives every worker the same listening socket. When several
clients connect at once, every idle worker wakes up and the first one takes *all* the waiting
connections (asyncio accepts up to the backlog in one go): measured with 20 keep-alive clients
opening together on 2 workers, the split was 20/0 in 2 runs of 8, 18/2 or 14/6 in most others. A
worker then queues its clients' searches while the other idles: throughput halves and latency
doubles (docs/web.md, "Workers").

Here each worker gets a socket of its own, all bound to the same address with SO_REUSEPORT, and
the kernel spreads new connections over them by a hash of the client's address and port, so a
burst is split about evenly. The parent binds every socket before any worker starts (port 0
then means one port for all) and keeps them open: a worker that dies is replaced on the same
socket, and connections that arrived meanwhile wait in its queue. Ctrl-C (SIGINT to the process
group) or SIGTERM to the parent stops every worker gracefully.

Where SO_REUSEPORT does not balance (anything but Linux), :func:`balanced` is False and the
caller runs uvicorn's own multi-process mode instead.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

log = logging.getLogger("soundark.web")

BACKLOG = 2048  # uvicorn's default listen backlog
STARTUP_FAILURE = 3  # uvicorn's exit code for a worker that could not start
STOP_SECONDS = 10.0  # a worker still running this long after SIGTERM is killed
CHECK_SECONDS = 0.5


def balanced() -> bool:
    """True where the kernel spreads connections over SO_REUSEPORT sockets (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """*count* listening sockets on host:port (SO_REUSEPORT); port 0 picks one free port for all."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(BACKLOG)
            sock.set_inheritable(True)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks


def _serve_one(config: dict[str, Any], sock: socket.socket, ready: Any) -> None:  # pragma: no cover (a child)
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(**config))

    def tell_when_started() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            ready.set()

    threading.Thread(target=tell_when_started, daemon=True).start()
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class Workers:
    """The parent of the worker processes: starts them, replaces one that dies, stops them all."""

    def __init__(self, config: dict[str, Any], socks: list[socket.socket]) -> None:
        self.config = config
        self.socks = socks
        self.context = multiprocessing.get_context("spawn")  # a clean interpreter, as uvicorn starts workers
        self.processes: list[Any] = [None] * len(socks)
        self.ready: list[Any] = [None] * len(socks)
        self.stopping = threading.Event()
        self.failed = False

    def _start(self, i: int) -> None:
        self.ready[i] = self.context.Event()
        proc = self.context.Process(target=_serve_one, args=(self.config, self.socks[i], self.ready[i]))
        proc.start()
        self.processes[i] = proc

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping.set()

    def run(self) -> int:
        """Serve until SIGINT or SIGTERM; the exit status (1 when a worker could not start)."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for i in range(len(self.socks)):
                self._start(i)
            while not self.stopping.wait(CHECK_SECONDS):
                self._replace_dead()
        finally:
            self._stop_all()
            for s, handler in previous.items():
                signal.signal(s, handler)
            for sock in self.socks:
                sock.close()
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
