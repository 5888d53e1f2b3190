"""Helpers for the release tests: catalog rows inserted directly, real files in the store.

The release stage only reads the catalog and the store, so tests build what the plan and
encode stages would have left: recording, album, track, plan and encoded rows, and the
bytes at ``store/ab/cd/<sha256><ext>``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from soundark.catalog import Catalog
from soundark.config import ArchivePaths
from soundark.media.synth import Voice, make_file, tiny_jpeg

NOW = "2024-01-02T03:04:05Z"


@dataclass(frozen=True)
class Rec:
    key: str
    rank: int
    data: bytes
    title: str = "Song"
    artist: str = "Artist"
    rights: str = "cc-by-4.0"
    listens: int | None = 100
    tier: str = "opus75"
    ext: str = ".opus"
    album: str | None = "Album"
    art: bytes | None = None


def store_bytes(paths: ArchivePaths, data: bytes, ext: str) -> str:
    sha = hashlib.sha256(data).hexdigest()
    path = paths.store_path(sha, ext)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(data)
    return sha


def store_art(catalog: Catalog, paths: ArchivePaths, data: bytes, ext: str = ".jpg") -> str:
    sha = hashlib.sha256(data).hexdigest()
    path = paths.art_path(sha, ext)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    catalog.execute("INSERT OR IGNORE INTO art (sha256, mime, ext, bytes) VALUES (?, 'image/jpeg', ?, ?)",
                    (sha, ext, len(data)))
    return sha


def add(catalog: Catalog, paths: ArchivePaths, rec: Rec) -> int:
    """Insert one planned and encoded recording (with one album track); return its id."""
    sha = store_bytes(paths, rec.data, rec.ext)
    art = store_art(catalog, paths, rec.art) if rec.art else None
    cur = catalog.execute(
        "INSERT INTO recording (key, title, artist, album, listens, rights, duration_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, 1000)",
        (rec.key, rec.title, rec.artist, rec.album or "", rec.listens, rec.rights))
    rid = cur.lastrowid
    aid = None
    if rec.album:
        catalog.execute("INSERT OR IGNORE INTO album (key, title, artist, date, art_sha256)"
                        " VALUES (?, ?, ?, '2001', ?)", (f"al:{rec.album}", rec.album, rec.artist, art))
        aid = catalog.scalar("SELECT id FROM album WHERE key = ?", (f"al:{rec.album}",))
    catalog.execute("INSERT INTO track (key, recording_id, album_id, title, artist, track_number)"
                    " VALUES (?, ?, ?, ?, ?, 1)", (f"t:{rec.key}", rid, aid, rec.title, rec.artist))
    catalog.execute("INSERT INTO plan (recording_id, tier, est_bytes, rank, weight, planned_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (rid, rec.tier, len(rec.data), rec.rank, float(rec.listens or 0), NOW))
    catalog.execute(
        "INSERT INTO encoded (recording_id, tier, sha256, bytes, ext, duration_ms, source_sha256, encoder,"
        " art_sha256, created_at) VALUES (?, ?, ?, ?, ?, 1000, ?, 'test encoder', ?, ?)",
        (rid, rec.tier, sha, len(rec.data), rec.ext, "0" * 64, art, NOW))
    return rid


def opus_bytes(tmp: Path, seed: int, seconds: float = 0.5) -> bytes:
    """A real, distinct little Ogg Opus file."""
    path = make_file(tmp / f"s{seed}.opus", "opus", seconds,
                     voice=Voice(notes=(60 + seed % 12, 64, 67), seed=seed, noise=0.01))
    return path.read_bytes()


def sized(seed: int, size: int) -> bytes:
    """``size`` deterministic bytes, distinct per seed (store content is opaque to release)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def jpeg(color: tuple[int, int, int]) -> bytes:
    return tiny_jpeg(color)


def libtorrent_check(torrent: Path, save_path: Path, timeout: float = 120.0) -> float:
    """Let libtorrent itself hash-check a payload against a .torrent: the share of pieces it accepts.

    A private session on loopback with every discovery off: nothing leaves this machine.
    """
    import time

    import libtorrent as lt

    ses = lt.session({"listen_interfaces": "127.0.0.1:0", "outgoing_interfaces": "127.0.0.1",
                      "enable_dht": False, "dht_bootstrap_nodes": "", "enable_lsd": False,
                      "enable_upnp": False, "enable_natpmp": False, "enable_ip_notifier": False,
                      "webtorrent_stun_server": "", "listen_system_port_fallback": False,
                      "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.error_notification})
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(str(torrent))
    atp.save_path = str(save_path)
    atp.flags = (atp.flags | lt.torrent_flags.upload_mode) & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    atp.trackers = []
    atp.url_seeds = []
    handle = ses.add_torrent(atp)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ses.wait_for_alert(500)
        for alert in ses.pop_alerts():
            if isinstance(alert, lt.torrent_checked_alert):
                return handle.status().num_pieces / atp.ti.num_pieces()
            if isinstance(alert, lt.torrent_error_alert):
                raise AssertionError(f"libtorrent: {alert.message()}")
    raise TimeoutError(f"libtorrent did not finish checking {torrent}")
