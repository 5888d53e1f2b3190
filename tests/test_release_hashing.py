"""One-pass hashing (soundark.release.hashing): SHA-256 per file and SHA-1 per v1 piece.

The piece hasher itself is tested in test_fixity_digest.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from soundark.release.hashing import StreamHasher

PIECE = 16384


def reference_pieces(data: bytes, piece: int) -> list[bytes]:
    return [hashlib.sha1(data[i:i + piece]).digest() for i in range(0, len(data), piece)]


@pytest.mark.parametrize("size", [0, 1, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE, 5 * PIECE + 7])
def test_pieces_across_files_and_bytes(tmp_path: Path, size: int) -> None:
    head = b"BagIt-Version: 1.0\n"
    parts = [hashlib.sha256(bytes([i])).digest() * (size // 32 + 1) for i in range(3)]
    parts = [p[:size + i] for i, p in enumerate(parts)]
    files = []
    for i, p in enumerate(parts):
        files.append(tmp_path / f"f{i}")
        files[-1].write_bytes(p)
    with StreamHasher(PIECE, chunk=4096) as hasher:  # small chunks: pieces span chunks and files
        assert hasher.add_bytes(head) == hashlib.sha256(head).hexdigest()
        for f, p in zip(files, parts):
            assert hasher.add_file(f) == (hashlib.sha256(p).hexdigest(), len(p))
        pieces = hasher.finish()
    assert pieces == reference_pieces(head + b"".join(parts), PIECE)


def test_a_missing_file_raises_and_the_helper_stops(tmp_path: Path) -> None:
    hasher = StreamHasher(PIECE)
    with pytest.raises(FileNotFoundError):
        with hasher:
            hasher.add_file(tmp_path / "nope")
    assert not hasher._thread.is_alive()
