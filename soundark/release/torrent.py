"""Torrents for release bags, made with libtorrent: BitTorrent v1 (BEP 3) or v1+v2 hybrid (BEP 52).

The only module of the release stage that imports libtorrent.

* **v1 by default**: every client reads it (Debian 12's aria2 1.36 computes a wrong infohash
  for hybrids and its Transmission 3.00 cannot parse them). Per-file fixity is already in the
  bag's ``manifest-sha256.txt``. Piece hashes come from :mod:`soundark.release.hashing`
  (one read, two cores) and are handed over with ``create_torrent.set_hash``.
* **hybrid** (``torrent_format = "hybrid"``): BEP 52 file roots plus a v1 view padded with
  BEP 47 ``.pad/N`` files; libtorrent hashes those itself (one thread).

Reproducible: files in canonical order (path components compared as UTF-8 bytes, the order
of BEP 52's file tree), fixed creator and comment, creation date = the release date, piece
size from the payload size (:data:`PIECE_TABLE`). The same bag gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import libtorrent as lt

from soundark.durable import fsync_dir
from soundark.errors import BadInput, Conflict, EnvironmentProblem, os_reason

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
CREATOR = "soundark"
COMMENT = "A BagIt bag (RFC 8493): check it with manifest-sha256.txt (sha256sum -c); see data/README.txt"
# (largest payload, piece length): about 1000-2000 pieces up to 16 GiB, then 16 MiB pieces
PIECE_TABLE = (
    (512 * MiB, 256 * KiB),
    (1 * GiB, 512 * KiB),
    (2 * GiB, 1 * MiB),
    (4 * GiB, 2 * MiB),
    (8 * GiB, 4 * MiB),
    (16 * GiB, 8 * MiB),
)
MAX_PIECE = 16 * MiB
MAX_METADATA = 8 * MiB  # clients refuse info dictionaries much past this


def piece_length_for(total_bytes: int) -> int:
    """Piece length for a payload of ``total_bytes`` (:data:`PIECE_TABLE`)."""
    for limit, piece in PIECE_TABLE:
        if total_bytes <= limit:
            return piece
    return MAX_PIECE


def canonical_key(relpath: str) -> tuple[bytes, ...]:
    """Sort key of a path inside a torrent: components as UTF-8 bytes (BEP 52 file tree order)."""
    return tuple(part.encode("utf-8") for part in relpath.split("/"))


def epoch_of(date: str) -> int:
    """``YYYY-MM-DD`` -> Unix time of midnight UTC that day."""
    day = dt.date.fromisoformat(date)
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


@dataclass(frozen=True)
class TorrentSpec:
    """What goes into one .torrent: the folder ``parent/name`` and how to describe it."""

    name: str
    files: tuple[tuple[str, int], ...]  # (path inside the folder, size), canonical order
    piece_length: int
    date: str  # YYYY-MM-DD: the creation date
    hybrid: bool = False
    trackers: tuple[str, ...] = ()
    web_seeds: tuple[str, ...] = ()


@dataclass(frozen=True)
class MadeTorrent:
    data: bytes
    infohash_v1: str
    infohash_v2: str | None
    info_bytes: int  # size of the bencoded info dictionary (the metadata clients fetch)


def make_torrent(spec: TorrentSpec, parent: Path, pieces: list[bytes] | None = None) -> MadeTorrent:
    """Build the torrent of ``parent/spec.name``. ``pieces``: v1 SHA-1 piece hashes, if computed.

    Without ``pieces`` (or for hybrids) libtorrent reads the files itself.
    """
    entries = [lt.create_file_entry(f"{spec.name}/{rel}", size) for rel, size in spec.files]
    flags = 0 if spec.hybrid else lt.create_torrent.v1_only
    ct = lt.create_torrent(entries, spec.piece_length, flags)
    ct.set_creator(CREATOR)
    ct.set_comment(COMMENT)
    ct.set_creation_date(epoch_of(spec.date))
    for tier, url in enumerate(spec.trackers):
        ct.add_tracker(url, tier)
    for url in spec.web_seeds:
        ct.add_url_seed(url)
    try:
        if pieces is not None and not spec.hybrid and len(pieces) == ct.num_pieces():
            for i, digest in enumerate(pieces):
                ct.set_hash(i, digest)
        else:
            lt.set_piece_hashes(ct, str(parent))
        entry = ct.generate()
    except RuntimeError as e:  # libtorrent reports missing/short files this way
        raise EnvironmentProblem(parent / spec.name, f"cannot hash for the torrent: {e}") from e
    data = lt.bencode(entry)
    info_bytes = len(lt.bencode(entry[b"info"]))
    if info_bytes > MAX_METADATA:
        raise BadInput(spec.name, f"torrent metadata is {info_bytes / MiB:.1f} MiB, over the "
                       f"{MAX_METADATA // MiB} MiB clients accept: lower max_files")
    hashes = lt.torrent_info(entry).info_hashes()
    v2 = str(hashes.v2) if hashes.has_v2() else None
    return MadeTorrent(data, str(hashes.v1), v2, info_bytes)


def magnet_link(name: str, infohash_v1: str, infohash_v2: str | None = None,
                trackers: tuple[str, ...] = (), web_seeds: tuple[str, ...] = ()) -> str:
    """A magnet URI (BEP 9; ``btmh`` multihash for v2 per BEP 52) with name, trackers, web seeds."""
    parts = [f"xt=urn:btih:{infohash_v1}"]
    if infohash_v2:
        parts.append(f"xt=urn:btmh:1220{infohash_v2}")
    parts.append(f"dn={quote(name, safe='')}")
    parts += [f"tr={quote(t, safe='')}" for t in trackers]
    parts += [f"ws={quote(w, safe='')}" for w in web_seeds]
    return "magnet:?" + "&".join(parts)


def write_torrent(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless it is there; True if written.

    A .torrent that exists with the same bytes is left alone (a re-run after a crash); one
    with other bytes is a published release and is never overwritten.
    """
    if path.exists():
        if path.read_bytes() == data:
            return False
        raise Conflict(path, "a different torrent is already published here; releases are immutable")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # fails if a racing run wrote it first: never overwrite
        fsync_dir(path.parent)  # the new name, not only the bytes, must survive a crash
    except FileExistsError as e:
        raise Conflict(path, "written by another run at the same time; re-run to check") from e
    except OSError as e:
        raise EnvironmentProblem(path, f"cannot write torrent: {os_reason(e)}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return True
