"""Reading .torrent files and magnet links without trusting them (BEP 3, BEP 9, BEP 47, BEP 52).

A small strict bdecoder (canonical integers, sorted unique dict keys, depth and size limits)
parses the metainfo before any BitTorrent library sees it; then every file path is checked
(:mod:`soundark.fixity.paths`: no ``..``, absolute paths, NUL, duplicates or case collisions)
and sizes, piece length and piece count must agree. v2 "pieces root" values (BEP 52 merkle
roots over 16 KiB blocks) are computed by :func:`merkle_root` to check hybrid torrents.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from soundark.errors import BadInput
from soundark.fixity.paths import check_relpath, check_size, check_unique
from soundark.fixity.regular import read_regular
from soundark.units import parse_host_port

MAX_TORRENT_BYTES = 64 << 20
MAX_DEPTH = 64
MAX_FILES = 10_000_000
BLOCK_V2 = 16384


class _Decoder:
    def __init__(self, data: bytes, subject: object) -> None:
        self.data, self.subject = data, subject
        self.info_span: tuple[int, int] | None = None

    def fail(self, pos: int, why: str) -> BadInput:
        return BadInput(self.subject, f"not a valid torrent (bencode at byte {pos}: {why})")

    def value(self, pos: int, depth: int) -> tuple[object, int]:
        if depth > MAX_DEPTH:
            raise self.fail(pos, "nested too deeply")
        if pos >= len(self.data):
            raise self.fail(pos, "unexpected end")
        c = self.data[pos:pos + 1]
        if c == b"i":
            end = self.data.find(b"e", pos)
            text = self.data[pos + 1:end] if end > 0 else b""
            if not re.fullmatch(rb"0|-?[1-9][0-9]{0,30}", text):
                raise self.fail(pos, "bad integer")
            return int(text), end + 1
        if c == b"l":
            items, pos = [], pos + 1
            while self.data[pos:pos + 1] != b"e":
                item, pos = self.value(pos, depth + 1)
                items.append(item)
            return items, pos + 1
        if c == b"d":
            return self.dictionary(pos, depth)
        if c.isdigit():
            return self.string(pos)
        raise self.fail(pos, f"unexpected byte {c!r}")

    def string(self, pos: int) -> tuple[bytes, int]:
        colon = self.data.find(b":", pos, pos + 21)
        text = self.data[pos:colon] if colon > 0 else b""
        if not re.fullmatch(rb"0|[1-9][0-9]*", text):
            raise self.fail(pos, "bad string length")
        start = colon + 1
        end = start + int(text)
        if end > len(self.data):
            raise self.fail(pos, "string runs past the end")
        return self.data[start:end], end

    def dictionary(self, pos: int, depth: int) -> tuple[dict[bytes, object], int]:
        out: dict[bytes, object] = {}
        pos += 1
        last = None
        while self.data[pos:pos + 1] != b"e":
            if not self.data[pos:pos + 1].isdigit():
                raise self.fail(pos, "dictionary key is not a string")
            key, pos = self.string(pos)
            if last is not None and key <= last:
                raise self.fail(pos, "dictionary keys not sorted or repeated")
            last = key
            start = pos
            out[key], pos = self.value(pos, depth + 1)
            if depth == 0 and key == b"info":
                self.info_span = (start, pos)
        return out, pos + 1


def bdecode(data: bytes, subject: object = "torrent") -> tuple[object, tuple[int, int] | None]:
    """Decode canonical bencode; return the value and the byte span of a top-level ``info``."""
    dec = _Decoder(bytes(data), subject)
    try:
        value, end = dec.value(0, 0)
    except (IndexError, ValueError, RecursionError) as e:
        if isinstance(e, BadInput):
            raise
        raise BadInput(subject, f"not a valid torrent ({e})") from e
    if end != len(data):
        raise dec.fail(end, "trailing bytes")
    return value, dec.info_span


@dataclass(frozen=True)
class TorrentFile:
    path: str            # relative to the torrent's root folder (or the file name)
    size: int
    pad: bool = False    # BEP 47 padding: zeros, never on disk
    pieces_root: bytes | None = None  # BEP 52 merkle root (hybrid/v2 only)


@dataclass(frozen=True)
class TorrentInfo:
    name: str
    piece_length: int
    pieces: tuple[bytes, ...]          # v1 SHA-1 piece hashes
    files: tuple[TorrentFile, ...]     # in v1 order, pad files included
    multi_file: bool
    infohash_v1: str
    infohash_v2: str | None

    @property
    def total(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def real_files(self) -> list[TorrentFile]:
        return [f for f in self.files if not f.pad]


def _text(value: object, subject: object, what: str) -> str:
    if not isinstance(value, bytes):
        raise BadInput(subject, f"{what} is not a string")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(subject, f"{what} is not UTF-8") from e


def read_torrent(path: Path) -> TorrentInfo:
    """Parse and check a .torrent file; anything hostile or inconsistent raises BadInput."""
    path = Path(path)
    try:  # a FIFO or a device named .torrent is refused, not waited on or read without end
        data = read_regular(path, MAX_TORRENT_BYTES, follow=True)
    except OSError as e:
        raise BadInput(path, f"cannot read: {e.strerror or e}") from e
    return parse_torrent(data, path)


def parse_torrent(data: bytes, subject: object = "torrent") -> TorrentInfo:
    meta, span = bdecode(data, subject)
    if not isinstance(meta, dict) or not isinstance(meta.get(b"info"), dict) or span is None:
        raise BadInput(subject, "no info dictionary")
    info = meta[b"info"]
    name = _text(info.get(b"name"), subject, "name")
    if "/" in name:
        raise BadInput(subject, f"torrent name {name!r} contains '/'")
    check_relpath(name, subject)
    plen = info.get(b"piece length")
    if not isinstance(plen, int) or not (16384 <= plen <= 1 << 30) or plen & (plen - 1):
        raise BadInput(subject, f"piece length {plen!r} is not a power of two in 16 KiB..1 GiB")
    pieces = info.get(b"pieces", b"")
    if not isinstance(pieces, bytes) or len(pieces) % 20:
        raise BadInput(subject, "'pieces' is not a whole number of SHA-1 hashes")
    files, multi = _files(info, subject)
    total = sum(f.size for f in files)
    if math.ceil(total / plen) != len(pieces) // 20:
        raise BadInput(subject, f"{len(pieces) // 20} piece hashes for {total} bytes in "
                                f"{plen}-byte pieces")
    raw_info = data[span[0]:span[1]]
    v2 = info.get(b"meta version") == 2
    return TorrentInfo(name, plen, tuple(pieces[i:i + 20] for i in range(0, len(pieces), 20)),
                       tuple(files), multi, hashlib.sha1(raw_info).hexdigest(),
                       hashlib.sha256(raw_info).hexdigest() if v2 else None)


def _files(info: dict[bytes, Any], subject: object) -> tuple[list[TorrentFile], bool]:
    roots = _v2_roots(info.get(b"file tree"), subject) if info.get(b"meta version") == 2 else {}
    if b"files" not in info:
        size = check_size(info.get(b"length"), subject)
        return [TorrentFile(_text(info[b"name"], subject, "name"), size,
                            pieces_root=roots.get(_text(info[b"name"], subject, "name")))], False
    entries = info[b"files"]
    if not isinstance(entries, list) or not entries or len(entries) > MAX_FILES:
        raise BadInput(subject, "'files' must be a non-empty list")
    out = []
    for n, entry in enumerate(entries):
        where = f"{subject} file {n}"
        if not isinstance(entry, dict) or not isinstance(entry.get(b"path"), list) or not entry[b"path"]:
            raise BadInput(where, "needs 'path' and 'length'")
        parts = [_text(p, where, "path") for p in entry[b"path"]]
        if any("/" in p for p in parts):
            raise BadInput(where, f"path component with '/' in {parts!r}")
        rel = check_relpath("/".join(parts), where)
        size = check_size(entry.get(b"length"), where)
        pad = b"p" in (entry.get(b"attr") or b"")
        if b"l" in (entry.get(b"attr") or b""):
            raise BadInput(where, f"{rel!r} is a symlink entry; refused")
        out.append(TorrentFile(rel, size, pad, None if pad else roots.get(rel)))
    _check_pads(out, info.get(b"piece length"), subject)
    check_unique([f.path for f in out if not f.pad], subject)
    return out, True


def _check_pads(files: list[TorrentFile], piece_length: object, subject: object) -> None:
    """BEP 47: a pad file fills the rest of a piece after a file, so it is shorter than a piece
    and ends on a piece boundary. A longer one would only make a verifier hash declared zeros."""
    if not isinstance(piece_length, int) or piece_length <= 0:
        return  # parse_torrent refuses the piece length itself
    offset = 0
    for f in files:
        offset += f.size
        if f.pad and (f.size >= piece_length or offset % piece_length):
            raise BadInput(subject, f"pad file {f.path!r} of {f.size} bytes does not just fill a "
                                    f"{piece_length}-byte piece (BEP 47)")


def _v2_roots(tree: object, subject: object, prefix: str = "", depth: int = 0) -> dict[str, bytes]:
    """BEP 52 ``file tree`` -> {path: pieces root} (files of one block or less have none)."""
    if not isinstance(tree, dict) or depth > 64:
        raise BadInput(subject, "bad v2 file tree")
    out: dict[str, bytes] = {}
    for key, sub in tree.items():
        if key == b"":
            continue
        name = _text(key, subject, "file tree name")
        rel = f"{prefix}/{name}" if prefix else name
        if isinstance(sub, dict) and b"" in sub:
            leaf = sub[b""]
            root = leaf.get(b"pieces root") if isinstance(leaf, dict) else None
            if isinstance(root, bytes) and len(root) == 32:
                out[rel] = root
        else:
            out.update(_v2_roots(sub, subject, rel, depth + 1))
    return out


def merkle_root(leaves: list[bytes], piece_length: int) -> bytes:
    """BEP 52 pieces root from the SHA-256 of each 16 KiB block of a file.

    Leaves are padded with zero hashes to a power of two (at least one piece's worth when the
    file spans more than one piece, which the power of two already guarantees).
    """
    if not leaves:
        return b"\0" * 32
    n = 1 << (len(leaves) - 1).bit_length()
    layer = list(leaves) + [b"\0" * 32] * (n - len(leaves))
    while len(layer) > 1:
        layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest() for i in range(0, len(layer), 2)]
    return layer[0]


@dataclass(frozen=True)
class Magnet:
    infohash_v1: str | None
    infohash_v2: str | None
    name: str | None
    peers: tuple[tuple[str, int], ...]
    uri: str


def parse_magnet(uri: str) -> Magnet:
    """BEP 9 magnet link: needs a btih (hex or base32) or btmh infohash; ``dn`` must be a safe name."""
    if len(uri) > 65536 or "\0" in uri:
        raise BadInput("magnet", "link too long or contains NUL")
    parts = urlsplit(uri)
    if parts.scheme != "magnet":
        raise BadInput(uri[:80], "not a magnet: link")
    if parts.netloc or parts.path:  # `magnet:xt=A&xt=?&xt=B` once read as B alone (fuzzing found it)
        raise BadInput(uri[:80], "not a magnet link: its fields must follow `magnet:?`")
    # everything after `magnet:?` is fields: a `#` is a character of one (`dn=Best #1`), not the
    # start of a fragment that would drop the fields after it (`dn=0#&xt=B` once lost B)
    q = parse_qs(uri.partition("?")[2], keep_blank_values=True)
    v1s, v2s = set(), set()
    for xt in q.get("xt", []):
        if m := re.fullmatch(r"urn:btih:([0-9a-fA-F]{40})", xt):
            v1s.add(m.group(1).lower())
        elif m := re.fullmatch(r"urn:btih:([A-Za-z2-7]{32})", xt):
            v1s.add(base64.b32decode(m.group(1).upper()).hex())
        elif m := re.fullmatch(r"urn:btmh:1220([0-9a-fA-F]{64})", xt):
            v2s.add(m.group(1).lower())
        else:
            raise BadInput(uri[:80], f"unsupported xt {xt[:80]!r}")
    # Two different infohashes of one kind name two torrents: which one to fetch is not ours to guess.
    if len(v1s) > 1 or len(v2s) > 1:
        raise BadInput(uri[:80], "two different infohashes (xt) in one magnet; give one torrent per link")
    v1, v2 = (v1s.pop() if v1s else None), (v2s.pop() if v2s else None)
    if not v1 and not v2:
        raise BadInput(uri[:80], "no infohash (xt=urn:btih:... or urn:btmh:...)")
    name = q.get("dn", [None])[0]
    if name is not None and ("/" in name or check_relpath(name, "magnet dn") != name):
        raise BadInput("magnet dn", f"name {name!r} is not a plain folder name")
    peers = tuple(parse_host_port(pe, "magnet x.pe") for pe in q.get("x.pe", []))
    return Magnet(v1, v2, name, peers, uri)
