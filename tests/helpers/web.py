"""A real web archive for the web tests: one playable recording, cover art, a plan, a release.

Rows inserted through soundark.catalog, a real Ogg Opus file and a real JPEG in the
content-addressed store, a real v1 .torrent.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths
from soundark.media.synth import SourceTags, Voice, make_file, tiny_jpeg

ISRC = "GBXYZ2400001"
SHARED_ISRC = "USAAA1900007"


@dataclass
class WebArchive:
    paths: ArchivePaths
    audio_sha: str
    audio_bytes: bytes
    art_sha: str
    magnet: str
    torrent_name: str


def _store(paths: ArchivePaths, data: bytes, ext: str, art: bool = False) -> str:
    sha = hashlib.sha256(data).hexdigest()
    path = (paths.art_path if art else paths.store_path)(sha, ext)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return sha


def _real_torrent(paths: ArchivePaths, name: str) -> tuple[bytes, str]:
    """A real v1 torrent (libtorrent) of a one-file bag; returns (bencoded bytes, infohash)."""
    import libtorrent as lt

    bag = paths.releases / name
    (bag / "data").mkdir(parents=True, exist_ok=True)
    (bag / "data" / "tracks.jsonl").write_text('{"path": "data/a.opus"}\n')
    ct = lt.create_torrent(lt.list_files(str(bag)), 0, lt.create_torrent.v1_only)
    ct.set_creator("soundark test")
    ct.set_creation_date(0)
    lt.set_piece_hashes(ct, str(paths.releases))
    data = lt.bencode(ct.generate())
    return data, str(lt.torrent_info(data).info_hashes().v1)


def _insert_recordings(conn, audio_sha: str, art_sha: str, audio_size: int) -> None:
    x = conn.execute
    x("INSERT INTO artist(id, key, name) VALUES (1, 'n:tidewater', 'The Tidewater Ensemble'), "
      "(2, 'n:mara', 'Mara Vell')")
    x("INSERT INTO album(id, key, title, artist, date, label, upc, art_sha256) VALUES "
      "(1, 'a1', 'Harbour Lights', 'The Tidewater Ensemble', '2019-04-12', 'Quay Records', '0123456789012', ?), "
      "(2, 'a2', 'Best of the Coast', 'Various', '2022-01-01', 'Quay Records', NULL, NULL)", (art_sha,))
    x("INSERT INTO recording(id, key, isrc, title, artist, album, duration_ms, date, listens, rights) "
      "VALUES (1, ?, ?, 'Morning Tide', 'The Tidewater Ensemble, Mara Vell', 'Harbour Lights', 2000, "
      "'2019-04-12', 5000, 'cc-by-4.0')", (ISRC, ISRC))
    x("INSERT INTO recording_artist VALUES (1, 0, 1), (1, 1, 2)")
    x("INSERT INTO track(key, recording_id, album_id, title, artist, track_number) VALUES "
      "('t1', 1, 1, 'Morning Tide', 'The Tidewater Ensemble', 1), "
      "('t2', 1, 2, 'Morning Tide', 'The Tidewater Ensemble', 7)")
    x("INSERT INTO source_file(path, size, mtime_ns, sha256, status, codec, container, bitrate, sample_rate, "
      "channels, duration_ms, lossless, recording_id, license, rights, scanned_at) VALUES "
      "('/home/operator/secret/music/morning.flac', 1000, 1, ?, 'ok', 'flac', 'flac', 900000, 44100, 2, "
      "2000, 1, 1, 'CC-BY-4.0', 'cc-by-4.0', '2026-01-01T00:00:00Z')", ("ab" * 32,))
    x("INSERT INTO plan(recording_id, tier, est_bytes, rank, weight, planned_at) "
      "VALUES (1, 'opus75', ?, 1, 5000, '2026-01-01')", (audio_size,))
    x("INSERT INTO encoded(recording_id, tier, sha256, bytes, ext, duration_ms, source_sha256, encoder, "
      "art_sha256, created_at) VALUES (1, 'opus75', ?, ?, '.opus', 2000, ?, 'soundark test; libopus', ?, "
      "'2026-01-01')", (audio_sha, audio_size, "ab" * 32, art_sha))
    x("INSERT INTO art(sha256, mime, ext, bytes) VALUES (?, 'image/jpeg', '.jpg', 100)", (art_sha,))
    # a second recording sharing the album; many "harbour" recordings for paging
    x("INSERT INTO recording(id, key, isrc, title, artist, album, listens) VALUES "
      "(2, ?, ?, 'Salt Wind', 'The Tidewater Ensemble', 'Harbour Lights', 300)", (SHARED_ISRC, SHARED_ISRC))
    x("INSERT INTO plan(recording_id, tier, est_bytes, rank, weight, planned_at) "
      "VALUES (2, 'skip', 0, 2, 300, '2026-01-01')")
    for i in range(45):
        x("INSERT INTO recording(key, title, artist, album, listens) VALUES (?, ?, 'Pager Band', "
          "'Harbour Bulk', ?)", (f"sa{i:016x}", f"Bulk Song {i}", i))


def make_web_archive(root: Path, with_releases: bool = True, seconds: float = 2.0) -> WebArchive:
    """An archive folder with one playable recording, cover art, a plan and (optionally) a release."""
    from soundark.config import Settings, write_settings

    paths = ArchivePaths(root)
    for folder in (paths.root, paths.store, paths.art, paths.releases):
        folder.mkdir(parents=True, exist_ok=True)
    write_settings(paths.root, Settings())
    opus = make_file(root / "tmp-src.opus", "opus", seconds, voice=Voice(seed=3),
                     tags=SourceTags(title="Morning Tide", isrc=ISRC))
    audio = opus.read_bytes()
    opus.unlink()
    audio_sha = _store(paths, audio, ".opus")
    art_sha = _store(paths, tiny_jpeg(), ".jpg", art=True)
    magnet, torrent_name = "", ""
    with open_catalog(paths.catalog) as catalog:
        with catalog.transaction() as conn:
            _insert_recordings(conn, audio_sha, art_sha, len(audio))
        if with_releases:
            magnet, torrent_name = _add_release(paths, catalog)
    return WebArchive(paths, audio_sha, audio, art_sha, magnet, torrent_name)


def _add_release(paths: ArchivePaths, catalog) -> tuple[str, str]:
    name = "soundark-demo-audio-0001"
    data, infohash = _real_torrent(paths, name)
    paths.torrents.mkdir(parents=True, exist_ok=True)
    (paths.torrents / f"{name}.torrent").write_bytes(data)
    magnet = f"magnet:?xt=urn:btih:{infohash}&dn={name}"
    row = {"name": name, "phase": "audio", "created": "2026-01-01", "infohash_v1": infohash,
           "infohash_v2": None, "bytes": 12345, "files": 3, "rank_first": 1, "rank_last": 1,
           "listens": 5000, "listens_share": 0.94, "torrent": f"torrents/{name}.torrent", "magnet": magnet}
    with catalog.transaction() as conn:
        cur = conn.execute(f"INSERT INTO release({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                           tuple(row.values()))
        conn.execute("INSERT INTO release_file(release_id, recording_id, path, sha256, bytes) "
                     "VALUES (?, 1, 'data/audio/morning-tide.opus', ?, 10)", (cur.lastrowid, "cd" * 32))
    listing = {"format": "soundark-torrents/1", "releases": [{**row, "parity_for": None}]}
    (paths.releases / "torrents.json").write_text(json.dumps(listing))
    return magnet, name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer")
        time.sleep(0.1)


LONG_TITLE = ("Low Water at the Old Harbour Wall, Recorded on a Winter Morning When the Boats Were Still Out "
              "and the Gulls Were Quiet (Extended Field Recording)")


def add_album_tracks(web: WebArchive) -> None:
    """Fill "Harbour Lights": track 2 is Salt Wind (not kept by the plan), track 3 a second
    playable recording with a long title (the same stored bytes), so the album has a queue."""
    with open_catalog(web.paths.catalog) as catalog, catalog.transaction() as conn:
        x = conn.execute
        x("INSERT INTO recording(id, key, title, artist, album, duration_ms, listens, rights) VALUES "
          "(100, 'sa00000000000000ff', ?, 'The Tidewater Ensemble', 'Harbour Lights', 2000, 900, 'cc-by-4.0')",
          (LONG_TITLE,))
        x("INSERT INTO recording_artist VALUES (2, 0, 1), (100, 0, 1)")
        x("INSERT INTO track(key, recording_id, album_id, title, artist, track_number) VALUES "
          "('t3', 2, 1, 'Salt Wind', 'The Tidewater Ensemble', 2), "
          "('t4', 100, 1, ?, 'The Tidewater Ensemble', 3)", (LONG_TITLE,))
        x("INSERT INTO plan(recording_id, tier, est_bytes, rank, weight, planned_at) "
          "VALUES (100, 'opus75', ?, 3, 900, '2026-01-01')", (len(web.audio_bytes),))
        x("INSERT INTO encoded(recording_id, tier, sha256, bytes, ext, duration_ms, source_sha256, encoder, "
          "created_at) VALUES (100, 'opus75', ?, ?, '.opus', 2000, ?, 'soundark test; libopus', '2026-01-01')",
          (web.audio_sha, len(web.audio_bytes), "ef" * 32))
