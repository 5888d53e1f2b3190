"""Helpers shared by the fixity and preserve tests: real bags, real libtorrent torrents, real parity."""

from __future__ import annotations

import random
from pathlib import Path

import libtorrent as lt

from soundark.fixity.bagit import hash_files, write_bag_tags
from soundark.fixity.parity import write_parity


def random_files(n: int, seed: int = 1, max_size: int = 60_000) -> dict[str, bytes]:
    rnd = random.Random(seed)
    return {f"data/audio/f{i:03d}.bin": rnd.randbytes(rnd.randint(0, max_size)) for i in range(n)}


def make_bag(folder: Path, files: dict[str, bytes], info: dict[str, str] | None = None) -> Path:
    """Write ``files`` (paths relative to the bag) and the BagIt tag files."""
    folder.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    names = sorted(files)
    hashes = hash_files([folder / n for n in names])
    write_bag_tags(folder, [(n, h.sha256, h.size) for n, h in zip(names, hashes)],
                   info or {"Source-Organization": "soundark tests"})
    return folder


def make_torrent(bag: Path, out: Path, hybrid: bool = False, piece_length: int = 16384) -> Path:
    """A real libtorrent torrent of the bag folder (v1 by default), files sorted, fixed date."""
    flags = 0 if hybrid else lt.create_torrent.v1_only
    files = lt.list_files(str(bag))
    ct = lt.create_torrent(files, piece_length, flags)
    ct.set_creator("soundark tests")
    ct.set_creation_date(0)
    lt.set_piece_hashes(ct, str(bag.parent))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(lt.bencode(ct.generate()))
    return out


def make_release(root: Path, name: str = "rel-0001", n: int = 12, seed: int = 1, *, hybrid: bool = False,
                 parity: float | None = 0.05, max_size: int = 60_000) -> tuple[Path, dict[str, bytes]]:
    """An archive-like releases/ folder: releases/<name>/, releases/torrents/<name>.torrent, parity."""
    files = random_files(n, seed, max_size)
    files["data/tracks.jsonl"] = "".join(
        f'{{"path": "{p[len("data/"):]}", "bytes": {len(d)}}}\n' for p, d in files.items()).encode()
    bag = make_bag(root / name, files)
    make_torrent(bag, root / "torrents" / f"{name}.torrent", hybrid=hybrid)
    if parity:
        write_parity(bag, root / f"{name}.parity", parity)
    return bag, {rel: (bag / rel).read_bytes() for rel in _all_files(bag)}


def _all_files(bag: Path) -> list[str]:
    return sorted(p.relative_to(bag).as_posix() for p in bag.rglob("*") if p.is_file())


def snapshot(bag: Path) -> dict[str, bytes]:
    return {rel: (bag / rel).read_bytes() for rel in _all_files(bag)}


def flip(path: Path, offset: int = 0, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(data)
