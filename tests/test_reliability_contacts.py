"""No contact the operator did not allow (issue 13): seed and fetch of a .torrent or magnet that
names trackers and web seeds contact none of them unless enable_trackers / enable_web_seeds say so.

The tracker and the web seed are loopback HTTP listeners that record every request; with the
settings off they must see nothing, and with them on (the control) they do see libtorrent.
"""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import libtorrent as lt
import pytest

from soundark.fixity.torrent import read_torrent
from soundark.preserve.swarm import FetchRequest, Seeder, SwarmConfig, fetch, without_contacts

from helpers.fixity import make_release, snapshot

LOOP = SwarmConfig(listen_interfaces="127.0.0.1:0")


class Listener:
    """A loopback HTTP server that answers 404 and remembers every request line."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        seen = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                seen.append(self.requestline)
                self.send_error(404)

            def log_message(self, *a) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def listeners():
    tracker, web_seed = Listener(), Listener()
    yield tracker, web_seed
    tracker.close()
    web_seed.close()


def with_contacts(torrent: Path, tracker: str, web_seed: str) -> Path:
    """The same torrent (same info, same infohash) naming a tracker, a tier list and web seeds."""
    meta = lt.bdecode(torrent.read_bytes())
    meta[b"announce"] = f"{tracker}/announce".encode()
    meta[b"announce-list"] = [[f"{tracker}/announce".encode()]]
    meta[b"url-list"] = [f"{web_seed}/".encode()]
    meta[b"httpseeds"] = [f"{web_seed}/seed".encode()]
    out = torrent.with_name("contacts.torrent")
    out.write_bytes(lt.bencode(meta))
    assert read_torrent(out).infohash_v1 == read_torrent(torrent).infohash_v1
    return out


def seed_and_fetch(torrent: Path, bag: Path, to: Path, cfg: SwarmConfig, tracker: str, web_seed: str) -> None:
    """Seed *torrent*, fetch it and its magnet (with tr= and ws=) from the seeder, all with *cfg*."""
    info = read_torrent(torrent)
    with Seeder(cfg) as seeder:
        seeder.add(torrent, bag.parent)
        seeder.wait_ready()
        got = fetch(FetchRequest(str(torrent), to / "dl", (("127.0.0.1", seeder.port),), 30), cfg)
        assert got.complete, got.reason
        magnet = (f"magnet:?xt=urn:btih:{info.infohash_v1}&dn=rel-0001&x.pe=127.0.0.1:{seeder.port}"
                  f"&tr={tracker}/announce&ws={web_seed}/")
        assert fetch(FetchRequest(magnet, to / "dl2", (), 30), cfg).complete
        time.sleep(1.0)  # libtorrent announces within a second of adding a torrent; give it the time


def test_seed_and_fetch_contact_no_tracker_and_no_web_seed(tmp_path: Path, listeners) -> None:
    tracker, web_seed = listeners
    bag, original = make_release(tmp_path / "releases", n=8, max_size=40_000, parity=None)
    torrent = with_contacts(tmp_path / "releases" / "torrents" / "rel-0001.torrent", tracker.url, web_seed.url)
    seed_and_fetch(torrent, bag, tmp_path, LOOP, tracker.url, web_seed.url)
    assert tracker.requests == [] and web_seed.requests == []
    assert snapshot(tmp_path / "dl" / "rel-0001") == original


def test_a_torrent_with_only_a_web_seed_is_not_fetched_from_it(tmp_path: Path, listeners) -> None:
    tracker, web_seed = listeners
    make_release(tmp_path / "releases", n=4, max_size=20_000, parity=None)
    torrent = with_contacts(tmp_path / "releases" / "torrents" / "rel-0001.torrent", tracker.url, web_seed.url)
    got = fetch(FetchRequest(str(torrent), tmp_path / "dl", (), 3), LOOP)  # no peer: nothing to get
    assert not got.complete
    assert tracker.requests == [] and web_seed.requests == []


def test_control_the_listeners_do_see_libtorrent_when_allowed(tmp_path: Path, listeners) -> None:
    """Without this, a listener that cannot hear anything would pass the tests above."""
    tracker, web_seed = listeners
    make_release(tmp_path / "releases", n=4, max_size=20_000, parity=None)
    torrent = with_contacts(tmp_path / "releases" / "torrents" / "rel-0001.torrent", tracker.url, web_seed.url)
    allowed = SwarmConfig(listen_interfaces="127.0.0.1:0", enable_trackers=True, enable_web_seeds=True)
    fetch(FetchRequest(str(torrent), tmp_path / "dl", (), 4), allowed)
    assert any("/announce?" in r for r in tracker.requests), tracker.requests
    assert any(r.startswith("GET /") for r in web_seed.requests), web_seed.requests


def test_stripping_keeps_the_info_dictionary_byte_for_byte(tmp_path: Path) -> None:
    make_release(tmp_path / "releases", n=3, max_size=10_000, parity=None, hybrid=True)
    torrent = with_contacts(tmp_path / "releases" / "torrents" / "rel-0001.torrent",
                            "http://127.0.0.1:1", "http://127.0.0.1:2")
    data = torrent.read_bytes()
    stripped = without_contacts(data, LOOP, torrent)
    meta = lt.bdecode(stripped)
    assert set(meta) == {b"info", b"piece layers", b"created by", b"creation date"} & set(lt.bdecode(data))
    before, after = lt.torrent_info(data).info_hashes(), lt.torrent_info(stripped).info_hashes()
    assert before.v1 == after.v1 and before.v2 == after.v2
    assert without_contacts(data, SwarmConfig(enable_trackers=True, enable_web_seeds=True, enable_dht=True),
                            torrent) == data
