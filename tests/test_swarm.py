"""seed/fetch over libtorrent on 127.0.0.1 only (no DHT, LSD, PEX, UPnP, NAT-PMP, trackers);
interop with Debian's aria2 (package `aria2`) and Transmission (package `transmission-cli`), each
skipped when its program is absent."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from soundark.fixity.torrent import read_torrent
from soundark.model import Progress
from soundark.preserve.swarm import FetchRequest, Seeder, SwarmConfig, fetch
from soundark.preserve.verify import verify_path

from helpers.fixity import make_release, snapshot

LOOP = SwarmConfig(listen_interfaces="127.0.0.1:0")


@pytest.fixture
def release(tmp_path: Path):
    bag, original = make_release(tmp_path / "releases", n=30, max_size=80_000, parity=None)
    return bag, original, tmp_path / "releases" / "torrents" / "rel-0001.torrent"


def test_loopback_only_settings() -> None:
    pack = LOOP.session_pack()
    assert pack["enable_dht"] is False and pack["dht_bootstrap_nodes"] == ""
    assert pack["enable_lsd"] is False and pack["enable_upnp"] is False and pack["enable_natpmp"] is False
    assert pack["outgoing_interfaces"] == "127.0.0.1" and pack["webtorrent_stun_server"] == ""
    assert "outgoing_interfaces" not in SwarmConfig(listen_interfaces="0.0.0.0:6881").session_pack()


def test_seed_then_fetch_torrent_and_magnet(release, tmp_path: Path) -> None:
    bag, original, torrent = release
    info = read_torrent(torrent)
    with Seeder(LOOP) as seeder:
        seeder.add(torrent, bag.parent)
        seeder.wait_ready()
        got = fetch(FetchRequest(str(torrent), tmp_path / "dl", (("127.0.0.1", seeder.port),), 30), LOOP)
        assert got.complete and got.bytes_downloaded == info.total
        magnet = f"magnet:?xt=urn:btih:{info.infohash_v1}&dn=rel-0001&x.pe=127.0.0.1:{seeder.port}"
        got2 = fetch(FetchRequest(magnet, tmp_path / "dl2", (), 30), LOOP)
        assert got2.complete
    assert snapshot(tmp_path / "dl" / "rel-0001") == original
    assert snapshot(tmp_path / "dl2" / "rel-0001") == original
    assert verify_path(tmp_path / "dl2" / "rel-0001").ok  # finds dl2/rel-0001.torrent beside it


class StopAfter(Progress):
    def __init__(self, nbytes: int) -> None:
        self.limit, self.seen = nbytes, 0

    def advance(self, n: int = 1, item: str = "", nbytes: int = 0) -> None:
        self.seen += nbytes

    def cancelled(self) -> bool:
        return self.seen >= self.limit


def test_interrupted_fetch_resumes(release, tmp_path: Path) -> None:
    bag, original, torrent = release
    total = read_torrent(torrent).total
    slow = SwarmConfig(listen_interfaces="127.0.0.1:0", upload_rate_limit=600_000)
    with Seeder(slow) as seeder:
        seeder.add(torrent, bag.parent)
        seeder.wait_ready()
        req = FetchRequest(str(torrent), tmp_path / "dl", (("127.0.0.1", seeder.port),), 30)
        first = fetch(req, LOOP, progress=StopAfter(total // 3))
        assert not first.complete and "interrupted" in first.reason
        second = fetch(req, LOOP)
    assert second.complete
    assert second.bytes_already_had > 0  # pieces finished before the interruption were kept
    assert second.bytes_downloaded < total
    assert snapshot(tmp_path / "dl" / "rel-0001") == original


def test_fetch_reaches_a_tcp_only_seeder(release, tmp_path: Path) -> None:
    """Like aria2, this seeder does not speak uTP: the fetch must fall back to TCP and stay there."""
    bag, original, torrent = release
    with Seeder(LOOP) as seeder:
        seeder.ses.apply_settings({"enable_incoming_utp": False})
        seeder.add(torrent, bag.parent)
        seeder.wait_ready()
        got = fetch(FetchRequest(str(torrent), tmp_path / "dl", (("127.0.0.1", seeder.port),), 60), LOOP)
    assert got.complete, got.reason
    assert snapshot(tmp_path / "dl" / "rel-0001") == original


def test_fetch_refuses_hostile_magnet(tmp_path: Path) -> None:
    from soundark.errors import BadInput
    with pytest.raises(BadInput):
        fetch(FetchRequest("magnet:?xt=urn:btih:" + "a" * 40 + "&dn=../evil", tmp_path, (), 1), LOOP)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- aria2 interop

ARIA2 = shutil.which("aria2c") or "aria2c"
needs_aria2 = pytest.mark.needs_tool("aria2c")
ARIA2_SAFE = ["--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
              "--enable-peer-exchange=false", "--disable-ipv6=true", "--interface=127.0.0.1",
              "--no-conf=true", "--summary-interval=0"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Tracker:
    """A loopback HTTP tracker that always answers with one peer: the only way to point aria2c at us."""

    def __init__(self, peer_port: int) -> None:
        peer = socket.inet_aton("127.0.0.1") + peer_port.to_bytes(2, "big")
        body = b"d8:intervali60e5:peers6:" + peer + b"e"

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/announce"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@needs_aria2
@pytest.mark.slow
def test_aria2_fetches_what_soundark_seeds(release, tmp_path: Path) -> None:
    bag, original, torrent = release
    with Seeder(LOOP) as seeder:
        seeder.add(torrent, bag.parent)
        seeder.wait_ready()
        tracker = Tracker(seeder.port)
        try:
            run = subprocess.run([ARIA2, *ARIA2_SAFE, "--console-log-level=warn", f"--bt-tracker={tracker.url}",
                                  "--seed-time=0", f"--listen-port={free_port()}", f"--dir={tmp_path / 'aria'}",
                                  str(torrent)],
                                 capture_output=True, timeout=120)
        finally:
            tracker.close()
    assert run.returncode == 0, run.stdout + run.stderr
    assert snapshot(tmp_path / "aria" / "rel-0001") == original


class Client:
    """An ordinary BitTorrent client run as a seeder; its output is read (and kept) as it comes."""

    def __init__(self, argv: list[str], **kw) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # text mode: Transmission's \r status lines become lines too
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        """The first output line matching ``pattern``; fails with the output so far if none comes."""
        deadline, seen = time.monotonic() + timeout, 0
        with self.changed:
            while True:
                for line in self.lines[seen:]:
                    m = re.search(pattern, line)
                    if m:
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and seen == len(self.lines)):
                    pytest.fail(f"no {pattern!r} from {self.proc.args[0]}:\n{self.output()}")
                self.changed.wait(min(left, 0.5))

    def output(self) -> str:
        return "".join(self.lines[-60:])

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=20)  # it ends at the end of the output
        self.proc.stdout.close()


@needs_aria2
@pytest.mark.slow
def test_soundark_fetches_what_aria2_seeds(release, tmp_path: Path) -> None:
    """aria2 speaks TCP only: this needs the uTP-to-TCP fallback (see swarm.NAMED_PEER_FLAGS)."""
    bag, original, torrent = release
    info = read_torrent(torrent)
    aria2 = Client([ARIA2, *ARIA2_SAFE, "--console-log-level=notice", "--check-integrity=true",
                    "--seed-ratio=0.0", f"--listen-port={free_port()}", f"--dir={bag.parent}", str(torrent)])
    try:
        aria2.wait_for(r"Verification finished successfully")
        # aria2 may not take the port it was given: read the one it says it listens on
        port = int(aria2.wait_for(r"listening on TCP port (\d+)").group(1))
        got = fetch(FetchRequest(str(torrent), tmp_path / "dl", (("127.0.0.1", port),), 60), LOOP)
        assert got.complete, f"{got.reason}\n{aria2.output()}"
        magnet = f"magnet:?xt=urn:btih:{info.infohash_v1}&dn=rel-0001&x.pe=127.0.0.1:{port}"
        got2 = fetch(FetchRequest(magnet, tmp_path / "dl2", (), 60), LOOP)  # metadata from aria2 too
        assert got2.complete, f"{got2.reason}\n{aria2.output()}"
    finally:
        aria2.close()
    assert snapshot(tmp_path / "dl" / "rel-0001") == original
    assert snapshot(tmp_path / "dl2" / "rel-0001") == original


TRANSMISSION = shutil.which("transmission-cli") or "transmission-cli"
needs_transmission = pytest.mark.needs_tool("transmission-cli")


def transmission_config(folder: Path, port: int) -> Path:
    """settings.json for transmission-cli: loopback only; no DHT, LPD, PEX, port mapping, RPC, blocklist."""
    folder.mkdir(parents=True)
    (folder / "settings.json").write_text(json.dumps({
        "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1", "peer-port": port,
        "peer-port-random-on-start": False, "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False,
        "port-forwarding-enabled": False, "rpc-enabled": False, "blocklist-enabled": False,
        "watch-dir-enabled": False, "message-level": 3}))  # 3: debug, says which port it bound
    return folder


@needs_transmission
@pytest.mark.slow
def test_soundark_fetches_what_transmission_seeds(release, tmp_path: Path) -> None:
    bag, original, torrent = release
    port = free_port()
    conf = transmission_config(tmp_path / "transmission", port)
    tr = Client([TRANSMISSION, "--config-dir", str(conf), "--no-portmap", "--port", str(port),
                 "--download-dir", str(bag.parent), str(torrent)], env={**os.environ, "HOME": str(tmp_path)})
    try:
        tr.wait_for(rf"Bound socket \d+ to port {port} on 127\.0\.0\.1")
        # it checks the files, then seeds (its "Seeding" status lines are block-buffered in a pipe)
        tr.wait_for(r"rel-0001: Verification is done")
        got = fetch(FetchRequest(str(torrent), tmp_path / "dl", (("127.0.0.1", port),), 60), LOOP)
        assert got.complete, f"{got.reason}\n{tr.output()}"
    finally:
        tr.close()
    assert snapshot(tmp_path / "dl" / "rel-0001") == original
