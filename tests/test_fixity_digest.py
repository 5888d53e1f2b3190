"""soundark.fixity.digest: the one SHA-256-of-a-file and the one v1 piece hasher (BEP 3)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from soundark.fixity.digest import CHUNK, PieceHasher, sha256_file

PACKAGE = Path(__file__).resolve().parents[1] / "soundark"
PIECE = 16384


def reference_pieces(data: bytes, piece: int) -> list[bytes]:
    return [hashlib.sha1(data[i:i + piece]).digest() for i in range(0, len(data), piece)]


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1])
@pytest.mark.parametrize("sync", [False, True])
def test_sha256_file_at_chunk_edges(tmp_path: Path, size: int, sync: bool) -> None:
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f", sync=sync) == (hashlib.sha256(data).hexdigest(), size)


def test_sha256_file_of_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        sha256_file(tmp_path / "nope")


@pytest.mark.parametrize("size", [0, 1, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE, 5 * PIECE + 7])
@pytest.mark.parametrize("step", [1000, PIECE, 3 * PIECE + 5])
def test_pieces_of_a_stream_fed_in_any_steps(size: int, step: int) -> None:
    data = os.urandom(size)
    hasher = PieceHasher(PIECE)
    for at in range(0, size, step):
        hasher.update(data[at:at + step])
    assert hasher.finish() == reference_pieces(data, PIECE)
    assert hasher.pos == size


@pytest.mark.parametrize("start, end", [(0, 3 * PIECE), (1, 3 * PIECE), (PIECE - 1, 2 * PIECE + 1),
                                        (PIECE, 2 * PIECE), (2 * PIECE + 1, 5 * PIECE + 7),
                                        (PIECE + 1, PIECE + 2)])
def test_a_range_owns_the_pieces_that_start_in_it(start: int, end: int) -> None:
    """verify splits a stream into ranges; each range hashes the pieces that start inside it."""
    data = os.urandom(5 * PIECE + 7)
    stop = -(-end // PIECE)
    hasher = PieceHasher(PIECE, start, stop)
    hasher.update(data[start:min(len(data), stop * PIECE)])
    first = -(-start // PIECE)
    assert hasher.first == first
    assert hasher.finish() == reference_pieces(data, PIECE)[first:stop]


def test_a_zero_piece_length_is_refused() -> None:
    with pytest.raises(ValueError):
        PieceHasher(0)


def test_no_second_sha256_file_reader_in_the_package() -> None:
    """A file's SHA-256 is taken by fixity.digest; only the one-read passes that hash pieces
    in the same loop (release.hashing, preserve.onepass) keep a running SHA-256 of their own."""
    allowed = {"fixity/digest.py", "release/hashing.py", "preserve/onepass.py"}
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        text = path.read_text(encoding="utf-8")
        if rel not in allowed and re.search(r"hashlib\.sha(256|1)\(\)|file_digest\(", text):
            found.append(rel)
    assert found == []


def test_no_second_piece_hasher_in_the_package() -> None:
    found = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
             if p.name != "digest.py" and "hashlib.sha1()" in p.read_text(encoding="utf-8")]
    assert found == []
