"""Audit findings on fetch (issue 13): metadata checked before libtorrent creates anything, and a
full disk named as such.

The seeder is a bare libtorrent session on loopback (DHT, LSD, UPnP, NAT-PMP off; no trackers)
that seeds hand-made metainfo soundark itself would refuse to make.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import time
from pathlib import Path

import libtorrent as lt
import pytest

from soundark.errors import BadInput
from soundark.preserve.swarm import FetchRequest, SwarmConfig, fetch

LOOP = SwarmConfig(listen_interfaces="127.0.0.1:0")
PIECE = 16384


def _session() -> lt.session:
    return lt.session({
        "listen_interfaces": "127.0.0.1:0", "outgoing_interfaces": "127.0.0.1", "enable_dht": False,
        "dht_bootstrap_nodes": "", "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_ip_notifier": False, "webtorrent_stun_server": "", "allow_multiple_connections_per_ip": True,
        "listen_system_port_fallback": False})


def _seed(folder: Path, info: dict) -> tuple[lt.session, str]:
    """Seed ``info`` from ``folder`` on loopback; return the session and a magnet naming it."""
    ti = lt.torrent_info(lt.bencode({b"info": info}))
    ses = _session()
    atp = lt.add_torrent_params()
    atp.ti, atp.save_path = ti, str(folder)
    atp.flags = ((atp.flags | lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
                  | lt.torrent_flags.disable_pex)
                 & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused)
    handle = ses.add_torrent(atp)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # seeding after its files are checked, and still seeding
        st = handle.status()
        if st.is_seeding and not st.errc.value():
            break
        time.sleep(0.05)
    time.sleep(0.2)
    st = handle.status()
    assert st.is_seeding and not st.errc.value(), (st.state, st.errc.message())
    name = info[b"name"].decode()
    return ses, f"magnet:?xt=urn:btih:{ti.info_hashes().v1}&dn={name}&x.pe=127.0.0.1:{ses.listen_port()}"


def _pieces(data: bytes) -> bytes:
    return b"".join(hashlib.sha1(data[i:i + PIECE]).digest() for i in range(0, len(data), PIECE))


def _everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) + ("@" if p.is_symlink() else "") for p in folder.rglob("*"))


def test_magnet_metadata_with_a_symlink_creates_nothing(tmp_path):
    """BEP 47 ``attr: l``: before, libtorrent made the symlink before soundark refused the metadata."""
    src = tmp_path / "seed" / "evil" / "data"
    src.mkdir(parents=True)
    data = random.Random(3).randbytes(40_000)
    (src / "a.bin").write_bytes(data)
    os.symlink("a.bin", src / "link")
    info = {b"name": b"evil", b"piece length": PIECE, b"pieces": _pieces(data),
            b"files": [{b"length": len(data), b"path": [b"data", b"a.bin"]},
                       {b"length": 0, b"path": [b"data", b"link"], b"attr": b"l",
                        b"symlink path": [b"data", b"a.bin"]}]}
    ses, magnet = _seed(tmp_path / "seed", info)
    to = tmp_path / "dl"
    with pytest.raises(BadInput, match="symlink"):
        fetch(FetchRequest(magnet, to, (), 30), LOOP)
    del ses
    assert _everything_under(to) in ([], [".soundark-fetch"]), _everything_under(to)


def _small_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    got = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                         capture_output=True, text=True)
    return got.returncode == 0


def test_fetch_onto_a_full_disk_says_disk_full(tmp_path):
    data = random.Random(4).randbytes(600_000)
    src = tmp_path / "seed" / "big" / "data"
    src.mkdir(parents=True)
    (src / "payload.bin").write_bytes(data)
    info = {b"name": b"big", b"piece length": PIECE, b"pieces": _pieces(data),
            b"files": [{b"length": len(data), b"path": [b"data", b"payload.bin"]}]}
    ses, magnet = _seed(tmp_path / "seed", info)
    to = tmp_path / "small"
    if not _small_tmpfs(to, "256k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        started = time.monotonic()
        got = fetch(FetchRequest(magnet, to, (), 20), LOOP)
        assert not got.complete
        assert "disk full" in got.reason and "payload.bin" in got.reason, got.reason
        assert "\n" not in got.reason
        assert time.monotonic() - started < 20  # said at once, not after the stall timeout
    finally:
        del ses
        subprocess.run(["umount", "-l", str(to)], check=False)
