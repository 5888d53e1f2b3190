"""`soundark serve --workers N`: a listening socket per worker (soundark.web.workers).

uvicorn's multi-process mode shares one socket, and a burst of clients connecting together
all lands on whichever worker wakes first (20 of 20 in 2 runs of 8). These tests start the real
CLI and read which process holds which socket from /proc (Linux, as the feature is).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from soundark.web import workers

from helpers.web import free_port, make_web_archive, wait_for

pytestmark = pytest.mark.skipif(not workers.balanced(), reason="SO_REUSEPORT balancing is Linux's")


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def tcp_sockets(port: int) -> dict[int, str]:
    """inode -> 'listen' or 'established' of the TCP sockets whose local port is *port*."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] in ("0A", "01"):
                found[int(f[9])] = "listen" if f[3] == "0A" else "established"
    return found


def inodes_of(pid: int, port: int, state: str) -> set[int]:
    """The sockets on *port* in *state* ('listen', 'established') that process *pid* holds."""
    states = tcp_sockets(port)
    held: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # it has ended meanwhile
        return held
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and states.get(int(link[8:-1])) == state:
            held.add(int(link[8:-1]))
    return held


def sockets_of(pid: int, port: int) -> dict[str, int]:
    return {state: len(inodes_of(pid, port, state)) for state in ("listen", "established")}


def serve(root: Path, port: int, workers_: int) -> subprocess.Popen:
    with open(root.parent / "serve.log", "wb") as log:  # the child holds its own copy
        proc = subprocess.Popen([sys.executable, "-m", "soundark", "serve", "-a", str(root), "--port", str(port),
                                 "--workers", str(workers_)], stdout=subprocess.DEVNULL, stderr=log)
    wait_for(f"http://127.0.0.1:{port}/api/search?q=x", 60)
    deadline = time.monotonic() + 30
    while len(children(proc.pid)) < workers_ and time.monotonic() < deadline:
        time.sleep(0.1)
    return proc


def workers_of(proc: subprocess.Popen, port: int) -> list[int]:
    """The server's worker processes: its children holding a socket on the port (not, e.g., the
    resource tracker multiprocessing may start)."""
    return [p for p in children(proc.pid) if sockets_of(p, port)["listen"]]


def burst(port: int, n: int) -> list[socket.socket]:
    """*n* keep-alive connections opened together, each having had one answer."""
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    for c in conns:
        c.sendall(b"GET /api/search?q=tone HTTP/1.1\r\nHost: x\r\n\r\n")
    for c in conns:
        assert c.recv(65536).startswith(b"HTTP/1.1 200")
    return conns


@pytest.fixture
def served(tmp_path: Path):
    """`soundark serve --workers 2` of a small archive: (its process, its port)."""
    web = make_web_archive(tmp_path / "archive", with_releases=False, seconds=0.5)
    port = free_port()
    proc = serve(web.paths.root, port, 2)
    yield proc, port
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.slow  # the CLI in a child interpreter, and its workers
def test_each_worker_listens_on_its_own_socket_and_a_burst_is_spread(served, tmp_path: Path) -> None:
    proc, port = served
    try:
        pids = workers_of(proc, port)
        assert len(pids) == 2
        # one listening socket each, not one shared (uvicorn's mode: the same inode in both)
        listening = [inodes_of(p, port, "listen") for p in pids]
        assert [len(x) for x in listening] == [1, 1] and listening[0] != listening[1]
        assert inodes_of(proc.pid, port, "listen") == listening[0] | listening[1]  # kept for replacements
        conns = burst(port, 24)
        held = [sockets_of(p, port)["established"] for p in pids]
        # spread by a hash of each client's port: both workers serve some (all 24 on one: p = 2^-23)
        assert sum(held) == 24 and min(held) >= 1, held
        for c in conns:
            c.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_sigterm_stops_them_all(served, tmp_path: Path) -> None:
    proc, port = served
    first = workers_of(proc, port)
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = workers_of(proc, port)
        if len(now) == 2 and first[0] not in now:
            break
        time.sleep(0.1)
    now = workers_of(proc, port)
    assert len(now) == 2 and first[1] in now and first[0] not in now
    # every request is answered, whichever socket the kernel picks
    for _ in range(20):  # each a new connection
        with httpx.Client(headers={"connection": "close"}) as one:
            assert one.get(f"http://127.0.0.1:{port}/api/search?q=tone").status_code == 200
    proc.send_signal(signal.SIGTERM)  # to the parent alone, as a service manager stops it
    proc.wait(30)
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()
    time.sleep(0.5)
    assert not [p for p in now if Path(f"/proc/{p}").exists() and "zombie" not in
                Path(f"/proc/{p}/status").read_text()], "a worker outlived its parent"


def test_port_zero_binds_one_port_for_every_socket() -> None:
    socks = workers.bind_sockets("127.0.0.1", 0, 3)
    try:
        ports = {s.getsockname()[1] for s in socks}
        assert len(ports) == 1 and 0 not in ports
        assert len({s.fileno() for s in socks}) == 3
    finally:
        for s in socks:
            s.close()


def test_a_port_held_by_another_program_is_refused() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(OSError):
            workers.bind_sockets("127.0.0.1", busy.getsockname()[1], 2)


@pytest.mark.slow  # a spawned interpreter
def test_a_worker_that_cannot_start_stops_the_server_instead_of_restarting_forever() -> None:
    socks = workers.bind_sockets("127.0.0.1", 0, 2)
    config = dict(app="soundark.web.no_such_module:app", log_level="critical")
    started = time.monotonic()
    assert workers.Workers(config, socks).run() == 1
    assert time.monotonic() - started < 60
    assert all(s.fileno() == -1 for s in socks)  # closed
