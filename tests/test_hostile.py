"""Hostile input: manifests, torrents, magnets, parity indexes and tracks.jsonl that try to escape
the target folder are refused with a message, and nothing is written outside it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from soundark.errors import BadInput
from soundark.fixity.bagit import parse_manifest
from soundark.fixity.parity import read_index
from soundark.fixity.paths import check_relpath, check_unique, resolve_inside
from soundark.fixity.torrent import parse_magnet, parse_torrent
from soundark.preserve.repair import repair_path
from soundark.preserve.verify import verify_path

from helpers.fixity import make_release

H = "a" * 64
BAD_PATHS = ["../x", "data/../../x", "/etc/passwd", "data/\0x", "data\\..\\x", "C:/x", "data//x",
             "data/./x", "", "data/" + "x" * 300, "data/a\x01b"]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_bad_relative_paths(path: str) -> None:
    with pytest.raises(BadInput):
        check_relpath(path)


@pytest.mark.parametrize("paths", [["data/a", "data/a"], ["data/A.opus", "data/a.opus"],
                                   ["data/e\u0301", "data/\u00e9"], ["data/a", "data/a/b"]])
def test_colliding_paths(paths: list[str]) -> None:
    with pytest.raises(BadInput):
        check_unique(paths)


@pytest.mark.parametrize("path", ["../x", "data/../../x", "/etc/passwd", "data/\0x", "data/%0A/../../x"])
def test_hostile_manifest_lines(path: str) -> None:
    with pytest.raises(BadInput):
        parse_manifest(f"{H}  {path}\n", "manifest")


def test_manifest_duplicates_and_case_collisions() -> None:
    with pytest.raises(BadInput, match="twice"):
        parse_manifest(f"{H}  data/a\n{H}  data/a\n", "m")
    with pytest.raises(BadInput, match="case"):
        parse_manifest(f"{H}  data/a.opus\n{H}  data/A.opus\n", "m")


def benc(v) -> bytes:
    """A tiny bencoder for tests (str as UTF-8, dict keys sorted as bytes)."""
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode("utf-8")
    if isinstance(v, bytes):
        return b"%d:" % len(v) + v
    if isinstance(v, list):
        return b"l" + b"".join(benc(x) for x in v) + b"e"
    items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
    return b"d" + b"".join(benc(k) + benc(x) for k, x in items) + b"e"


def bencode_torrent(files: list[tuple[list[str], int]], name: str = "rel", attr: bytes | None = None) -> bytes:
    total = sum(s for _, s in files)
    entries = []
    for path, size in files:
        e = {"length": size, "path": path}
        if attr:
            e["attr"] = attr
        entries.append(e)
    info = {"name": name, "piece length": 16384, "pieces": b"\0" * 20 * max(1, min(1000, -(-total // 16384))),
            "files": entries}
    return benc({"info": info})


@pytest.mark.parametrize("files,name,attr,why", [
    ([(["..", "x"], 1)], "rel", None, "'..'"),
    ([(["a/../../b"], 1)], "rel", None, "'/'"),
    ([(["a\0b"], 1)], "rel", None, "NUL"),
    ([(["a"], 1), (["a"], 1)], "rel", None, "twice"),
    ([(["A"], 1), (["a"], 1)], "rel", None, "case"),
    ([(["a"], 1)], "..", None, "'..'"),
    ([(["a"], 1)], "/abs", None, "'/'"),
    ([(["link"], 1)], "rel", b"l", "symlink"),
    ([(["a"], 1 << 60)], "rel", None, "absurd"),
    ([(["a"], -1)], "rel", None, "absurd"),
])
def test_hostile_torrents(files, name, attr, why) -> None:
    with pytest.raises(BadInput, match=why):
        parse_torrent(bencode_torrent(files, name, attr), "t")


@pytest.mark.parametrize("data", [b"", b"d4:infod", b"i01e", b"d1:b0:1:a0:e", b"d4:info" + b"l" * 200 + b"e",
                                  b"d4:infodee" + b"x", b"d4:infod4:name999999:xee"])
def test_malformed_bencode(data: bytes) -> None:
    with pytest.raises(BadInput):
        parse_torrent(data, "t")


def test_piece_count_must_match_sizes() -> None:
    info = {"name": "rel", "piece length": 16384, "pieces": b"\0" * 20, "files": [{"length": 40000, "path": ["a"]}]}
    with pytest.raises(BadInput, match="piece hashes"):
        parse_torrent(benc({"info": info}), "t")


@pytest.mark.parametrize("uri", ["magnet:?xt=urn:btih:" + "a" * 40 + "&dn=../x",
                                 "magnet:?xt=urn:btih:" + "a" * 40 + "&dn=a/b",
                                 "magnet:?xt=urn:btih:" + "a" * 40 + "&dn=%00",
                                 "magnet:?xt=urn:btih:zz",
                                 "magnet:?xt=urn:btih:" + "a" * 40 + "&x.pe=nohost"])
def test_hostile_magnets(uri: str) -> None:
    with pytest.raises(BadInput):
        parse_magnet(uri)


def test_symlinked_folder_is_not_followed_on_write(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "bag").mkdir()
    (tmp_path / "bag" / "data").symlink_to(outside)
    with pytest.raises(BadInput, match="symlink"):
        resolve_inside(tmp_path / "bag", "data/x.opus")


def test_repair_never_writes_through_a_symlinked_folder(tmp_path: Path) -> None:
    bag, original = make_release(tmp_path / "releases", n=6)
    outside = tmp_path / "outside"
    outside.mkdir()
    audio = bag / "data" / "audio"
    for f in audio.iterdir():
        f.rename(outside / f.name)
    audio.rmdir()
    audio.symlink_to(outside)
    (outside / "f001.bin").unlink()
    report = repair_path(bag)
    assert not report.ok
    assert not (outside / "f001.bin").exists()
    kept = {Path(p).name for p in original if p.startswith("data/audio/")} - {"f001.bin"}
    assert {p.name for p in outside.iterdir()} == kept


def test_hostile_parity_index_is_refused(tmp_path: Path) -> None:
    bag, _ = make_release(tmp_path / "releases", n=4)
    parity = tmp_path / "releases" / "rel-0001.parity"
    index = json.loads((parity / "data/parity.json").read_text())
    index["files"][0]["path"] = "../../evil"
    (parity / "data/parity.json").write_text(json.dumps(index))
    with pytest.raises(BadInput):
        read_index(parity)
    (bag / "data/audio/f001.bin").unlink()
    report = repair_path(bag)
    assert not report.ok and not (tmp_path / "evil").exists()
    assert "parity unusable" in report.bags[0].unrecoverable["data/audio/f001.bin"]


def test_hostile_tracks_jsonl_is_refused(tmp_path: Path) -> None:
    bag, _ = make_release(tmp_path / "releases", n=3, parity=None)
    tracks = bag / "data/tracks.jsonl"
    tracks.write_text('{"path": "../../../etc/passwd"}\n')
    from soundark.fixity.bagit import hash_files, read_manifest, write_bag_tags
    rels = sorted(read_manifest(bag))
    write_bag_tags(bag, [(r, h.sha256, h.size) for r, h in zip(rels, hash_files([bag / r for r in rels]))], {})
    report = verify_path(bag, torrent=None)
    refused = [p for p in report.problems if p.kind == "refused"]
    assert refused and refused[0].path == "data/tracks.jsonl" and "'..'" in refused[0].detail


def test_hostile_manifest_in_a_bag_is_reported_not_followed(tmp_path: Path) -> None:
    bag, _ = make_release(tmp_path / "releases", n=3, parity=None)
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    digest = hashlib.sha256(b"x").hexdigest()
    with open(bag / "manifest-sha256.txt", "a") as f:
        f.write(f"{digest}  ../../secret.txt\n")
    report = verify_path(bag)
    assert [p.kind for p in report.problems if p.path == "manifest-sha256.txt"][0] == "refused"
