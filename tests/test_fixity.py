"""soundark.fixity: BagIt tag files, hashing, torrent parsing, magnets (checked with real tools)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import libtorrent as lt
import pytest

from soundark.errors import BadInput, NotFound
from soundark.fixity.bagit import (
    decode_path,
    encode_path,
    hash_files,
    read_bag_info,
    read_manifest,
    read_tagmanifest,
    write_bag_tags,
)
from soundark.fixity.digest import sha256_file
from soundark.fixity.torrent import merkle_root, parse_magnet, read_torrent

from helpers.fixity import make_bag, make_torrent, random_files


@pytest.mark.needs_tool("sha256sum")
def test_bag_tags_are_valid_for_sha256sum_and_deterministic(tmp_path: Path) -> None:
    files = random_files(5)
    files["data/with space/é.bin"] = b"x" * 10
    bag = make_bag(tmp_path / "a", files, {"Source-Organization": "Org", "External-Description": "two\nlines"})
    first = {n: (bag / n).read_bytes() for n in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt",
                                                 "tagmanifest-sha256.txt")}
    assert first["bagit.txt"] == b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    info = read_bag_info(bag)
    assert info["External-Description"] == "two\nlines"
    assert info["Payload-Oxum"] == f"{sum(len(d) for d in files.values())}.{len(files)}"
    lines = first["manifest-sha256.txt"].decode().splitlines()
    assert [ln.split("  ", 1)[1] for ln in lines] == sorted(files)
    for manifest in ("manifest-sha256.txt", "tagmanifest-sha256.txt"):
        run = subprocess.run(["sha256sum", "--strict", "-c", manifest], cwd=bag, capture_output=True)
        assert run.returncode == 0, run.stdout + run.stderr
    bag2 = make_bag(tmp_path / "b", files, {"Source-Organization": "Org", "External-Description": "two\nlines"})
    for name, data in first.items():
        assert (bag2 / name).read_bytes() == data
    assert read_manifest(bag) == {p: hashlib.sha256(d).hexdigest() for p, d in files.items()}
    assert set(read_tagmanifest(bag)) == {"bagit.txt", "bag-info.txt", "manifest-sha256.txt"}


def test_percent_encoding_round_trip() -> None:
    name = "data/a%b\nc\rd"
    assert encode_path(name) == "data/a%25b%0Ac%0Dd"
    assert decode_path(encode_path(name)) == name


def test_write_bag_tags_refuses_bad_payload(tmp_path: Path) -> None:
    digest = "0" * 64
    with pytest.raises(BadInput, match="start with data/"):
        write_bag_tags(tmp_path, [("x.bin", digest, 1)], {})
    with pytest.raises(BadInput, match="not a SHA-256"):
        write_bag_tags(tmp_path, [("data/x.bin", "abc", 1)], {})
    with pytest.raises(BadInput, match="listed twice"):
        write_bag_tags(tmp_path, [("data/x", digest, 1), ("data/x", digest, 1)], {})
    assert not (tmp_path / "manifest-sha256.txt").exists()


def test_read_manifest_of_folder_without_bag(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        read_manifest(tmp_path)


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1])
def test_hash_files_matches_hashlib_at_chunk_edges(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == (hashlib.sha256(data).hexdigest(), size)


def test_hash_files_keeps_order_and_reports_unreadable(tmp_path: Path) -> None:
    paths = []
    for i in range(20):
        paths.append(tmp_path / f"{i}")
        paths[-1].write_bytes(str(i).encode() * 1000)
    paths.insert(3, tmp_path / "missing")
    out = hash_files(paths, workers=2)
    assert [r.path for r in out] == paths
    assert out[3].sha256 is None and out[3].error
    assert out[0].sha256 == hashlib.sha256(b"0" * 1000).hexdigest()


@pytest.mark.parametrize("hybrid", [False, True])
def test_read_torrent_agrees_with_libtorrent(tmp_path: Path, hybrid: bool) -> None:
    bag = make_bag(tmp_path / "rel", random_files(6, max_size=70_000))
    path = make_torrent(bag, tmp_path / "rel.torrent", hybrid=hybrid)
    info = read_torrent(path)
    ti = lt.torrent_info(str(path))
    assert info.infohash_v1 == str(ti.info_hashes().v1)
    assert info.name == "rel" and info.piece_length == ti.piece_length()
    assert info.total == ti.total_size()
    if hybrid:
        assert info.infohash_v2 == str(ti.info_hashes().v2)
        assert any(f.pad for f in info.files)
        for f in info.real_files:
            data = (bag / f.path).read_bytes()
            leaves = [hashlib.sha256(data[i:i + 16384]).digest() for i in range(0, len(data), 16384)]
            if f.pieces_root is not None:
                assert merkle_root(leaves, info.piece_length) == f.pieces_root
    else:
        assert info.infohash_v2 is None
        assert not any(f.pad for f in info.files)


def test_parse_magnet_forms() -> None:
    hexhash = "0123456789abcdef0123456789abcdef01234567"
    m = parse_magnet(f"magnet:?xt=urn:btih:{hexhash.upper()}&dn=rel-1&x.pe=127.0.0.1:6881")
    assert m.infohash_v1 == hexhash and m.name == "rel-1" and m.peers == (("127.0.0.1", 6881),)
    import base64
    b32 = base64.b32encode(bytes.fromhex(hexhash)).decode()
    assert parse_magnet(f"magnet:?xt=urn:btih:{b32}").infohash_v1 == hexhash
    assert parse_magnet("magnet:?xt=urn:btmh:1220" + "ab" * 32).infohash_v2 == "ab" * 32
    with pytest.raises(BadInput, match="no infohash"):
        parse_magnet("magnet:?dn=x")
    with pytest.raises(BadInput, match="not a magnet"):
        parse_magnet("http://example.invalid/x")
