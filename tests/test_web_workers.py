"""`soundark serve --workers N`: workers share one listening socket and take connections only
while they are the least loaded (soundark.web.workers).

uvicorn's multi-process mode shares one socket, and a burst of clients connecting together
all lands on whichever worker wakes first (20 of 20 in 2 runs of 8); a socket per worker
(SO_REUSEPORT) splits it by a hash, 10/10 in 18 % of bursts. The CLI tests start the real server
and read which process holds which socket from /proc (Linux); the acceptor's own tests run it
in this process on uvloop, as uvicorn does.
"""

from __future__ import annotations

import asyncio
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

from helpers.web import free_port, make_web_archive

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
pytestmark = pytest.mark.skipif(not workers.balanced(), reason="the balanced acceptor needs loop.add_reader")


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
    """`soundark serve --workers N`, returned once it says on stderr that every worker accepts."""
    log_path = root.parent / "serve.log"
    with open(log_path, "wb") as log:  # the child holds its own copy
        proc = subprocess.Popen([sys.executable, "-m", "soundark", "serve", "-a", str(root), "--port", str(port),
                                 "--workers", str(workers_)], stdout=subprocess.DEVNULL, stderr=log)
    ready = f"ready: {workers_} worker{'s' if workers_ > 1 else ''} accepting"
    deadline = time.monotonic() + 60
    while ready not in log_path.read_text() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready in log_path.read_text(), log_path.read_text()
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


@linux
@pytest.mark.slow  # the CLI in a child interpreter, and its workers
def test_workers_share_one_socket_and_a_burst_is_split_evenly(served, tmp_path: Path) -> None:
    proc, port = served
    try:
        pids = workers_of(proc, port)
        assert len(pids) == 2
        # one listening socket, the same in both workers and kept by the parent for replacements
        listening = [inodes_of(p, port, "listen") for p in pids]
        assert [len(x) for x in listening] == [1, 1] and listening[0] == listening[1]
        assert inodes_of(proc.pid, port, "listen") == listening[0]
        conns = burst(port, 24)  # at once: "ready" means every worker accepts
        held = sorted(sockets_of(p, port)["established"] for p in pids)
        # each takes a connection only while it holds no more than the other: 12/12, where a
        # hash of the client's port (SO_REUSEPORT) gives 12/12 in 16 % of bursts
        assert held == [12, 12], held
        for c in conns:
            c.close()
        deadline = time.monotonic() + 10  # the counts go down as the connections close...
        while any(sockets_of(p, port)["established"] for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        conns = burst(port, 6)  # ...so the next burst is split evenly again
        held = sorted(sockets_of(p, port)["established"] for p in pids)
        assert held == [3, 3], held
        for c in conns:
            c.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()


@linux
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
    # every request is answered, whichever worker takes it
    for _ in range(20):  # each a new connection
        with httpx.Client(headers={"connection": "close"}) as one:
            assert one.get(f"http://127.0.0.1:{port}/api/search?q=tone").status_code == 200
    proc.send_signal(signal.SIGTERM)  # to the parent alone, as a service manager stops it
    proc.wait(30)
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()
    time.sleep(0.5)
    assert not [p for p in now if Path(f"/proc/{p}").exists() and "zombie" not in
                Path(f"/proc/{p}/status").read_text()], "a worker outlived its parent"


@pytest.mark.slow
def test_one_worker_says_when_it_accepts_and_stops_cleanly(tmp_path: Path) -> None:
    web = make_web_archive(tmp_path / "archive", with_releases=False, seconds=0.5)
    port = free_port()
    proc = serve(web.paths.root, port, 1)  # uvicorn's server in this process, no parent of workers
    try:
        assert children(proc.pid) == [] or all(not sockets_of(p, port)["listen"] for p in children(proc.pid))
        assert httpx.get(f"http://127.0.0.1:{port}/api/search?q=tone", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()


def test_port_zero_binds_a_free_port() -> None:
    with workers.bind_socket("127.0.0.1", 0) as sock:
        assert sock.getsockname()[1] != 0 and sock.get_inheritable()


def test_a_port_held_by_another_program_is_refused() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(OSError):
            workers.bind_socket("127.0.0.1", busy.getsockname()[1])


@pytest.mark.slow  # a spawned interpreter
def test_a_worker_that_cannot_start_stops_the_server_instead_of_restarting_forever() -> None:
    sock = workers.bind_socket("127.0.0.1", 0)
    config = dict(app="soundark.web.no_such_module:app", log_level="critical")
    started = time.monotonic()
    assert workers.Workers(config, sock, 2).run() == 1
    assert time.monotonic() - started < 60
    assert sock.fileno() == -1  # closed


# -- the acceptor itself, in this process -------------------------------------------------------

class Echo(asyncio.Protocol):
    """Answers each read with the same bytes, and remembers its transport."""

    made: list[asyncio.Transport] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        Echo.made.append(transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


def run_acceptor(counts: list[int], body, index: int = 0) -> None:
    """*body(loop, acceptor, port)* with an acceptor for slot *index* of *counts*, on uvloop."""
    uvloop = pytest.importorskip("uvloop")
    Echo.made = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with workers.bind_socket("127.0.0.1", 0) as sock:
            acceptor = workers.BalancedAcceptor(loop, sock, Echo, counts, index)
            try:
                await body(loop, acceptor, sock.getsockname()[1])
            finally:
                acceptor.close()
                await acceptor.wait_closed()
                for transport in Echo.made:  # the server's ends: the loop does not close with them open
                    transport.close()
                await asyncio.sleep(0.01)

    uvloop.run(main())


async def echo_once(loop: asyncio.AbstractEventLoop, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
    return reader, writer


def test_the_acceptor_counts_open_connections_in_its_slot() -> None:
    counts = [0, 0]

    async def body(loop, acceptor, port) -> None:
        assert counts == [0, 0]
        conns = [await echo_once(loop, port) for _ in range(3)]
        # the other slot stays 0 but nobody takes the connections there: taken after the wait
        assert counts[0] == 3 and acceptor.open == 3
        # uvicorn's transports answer without Nagle's delay, as loop.create_server's do
        nodelay = [t.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for t in Echo.made]
        assert all(nodelay), nodelay
        for _, writer in conns[:2]:
            writer.close()
            await writer.wait_closed()
        deadline = loop.time() + 5
        while counts[0] != 1 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert counts[0] == 1  # connection_lost took each closed one off
        conns[2][1].close()
        await conns[2][1].wait_closed()

    run_acceptor(counts, body)
    assert counts[0] == workers.ABSENT  # closed: the slot no longer takes connections


def test_a_loaded_worker_steps_back_but_takes_what_nobody_else_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = [0, 0]

    async def body(loop, acceptor, port) -> None:
        held = [await echo_once(loop, port)]  # 1 against 0: this worker is now the more loaded one
        assert counts == [1, 0]
        started = loop.time()
        held.append(await echo_once(loop, port))  # nobody holds slot 1 here: taken after MAX_DEFER_SECONDS
        assert loop.time() - started >= 0.2 * 0.9 and counts == [2, 0]
        counts[1] = 5  # another worker now holds more: taken at once, no deferral state left over
        started = loop.time()
        held.append(await echo_once(loop, port))
        assert loop.time() - started < 0.2 and counts == [3, 5]
        for _, writer in held:
            writer.close()
            await writer.wait_closed()

    monkeypatch.setattr(workers, "MAX_DEFER_SECONDS", 0.2)
    run_acceptor(counts, body)


def test_a_stepping_back_worker_forgets_a_connection_another_took(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its wait counts from the first connection it left: one that another worker took must not
    make it take the next one at once."""
    counts = [0, 0]

    async def body(loop, acceptor, port) -> None:
        _, mine = await echo_once(loop, port)  # 1 against 0
        other = socket.create_connection(("127.0.0.1", port))  # waits: slot 0 holds more than slot 1
        await asyncio.sleep(0.05)
        assert acceptor.deferred_since is not None and acceptor.open == 1
        with socket.socket(fileno=os.dup(acceptor.sock.fileno())) as listener:
            listener.setblocking(True)
            taken, _ = listener.accept()  # "another worker" takes it
        await asyncio.sleep(0.12)  # past MAX_DEFER_SECONDS since the first wait began
        later = socket.create_connection(("127.0.0.1", port))  # a new wait: not taken at once
        await asyncio.sleep(0.03)
        assert acceptor.open == 1
        taken.close()
        other.close()
        later.close()
        mine.close()
        await mine.wait_closed()

    monkeypatch.setattr(workers, "MAX_DEFER_SECONDS", 0.15)
    run_acceptor(counts, body)


def lowest_free_fd() -> int:
    probe = os.dup(0)
    os.close(probe)
    return probe


def test_out_of_file_descriptors_the_connection_waits_in_the_queue_and_is_served_later(caplog) -> None:
    """accept() failing with EMFILE must not lose the connection nor spin: the acceptor logs it,
    steps back, and serves the client once descriptors are free again."""
    resource = pytest.importorskip("resource")
    counts = [0]

    async def body(loop, acceptor, port) -> None:
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # its descriptor before the limit
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free_fd(), hard))  # no new descriptor now
        try:
            with pytest.raises(OSError):
                os.dup(0)
            client.connect(("127.0.0.1", port))  # the kernel completes it and queues it all the same
            await asyncio.sleep(0.25)
            assert acceptor.open == 0 and counts == [0]  # not taken, not lost
            assert acceptor.timer is not None  # stepped back rather than spinning on the reader
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        try:
            client.setblocking(False)
            await loop.sock_sendall(client, b"ping")
            assert await asyncio.wait_for(loop.sock_recv(client, 4), 5) == b"ping"  # served now
            assert counts == [1]
        finally:
            client.close()

    with caplog.at_level("WARNING", logger="soundark.web"):
        run_acceptor(counts, body)
    warnings = [r.getMessage() for r in caplog.records if "cannot accept" in r.getMessage()]
    assert warnings and "Too many open files" in warnings[0]
    assert len(warnings) <= 5  # about one a 0.1 s retry, not one per loop turn


def test_a_client_that_resets_at_once_leaves_no_count_behind() -> None:
    counts = [0]

    async def body(loop, acceptor, port) -> None:
        for _ in range(5):
            client = socket.create_connection(("127.0.0.1", port))
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            client.close()  # RST, perhaps before the acceptor has taken it
        _, writer = await echo_once(loop, port)  # the acceptor still serves
        deadline = loop.time() + 5
        while counts[0] != 1 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert counts == [1]  # the five reset connections were taken off again
        writer.close()
        await writer.wait_closed()
        while counts[0] != 0 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert counts == [0]

    run_acceptor(counts, body)
