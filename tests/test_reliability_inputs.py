"""Hostile inputs from the adversarial audit (issue 13): one line and exit 1, or a rejected row.

Crashes to one-line errors (JSON nested 100,000 deep, ``bytes: 10**400`` in a release list,
a magnet with two ``xt``), nothing dropped silently (a CSV field over the csv module's 131,072
characters, an unterminated quote, invalid UTF-8) and work bounded by the input's real size
(a JSONL line longer than MAX_LINE_BYTES). Each test failed before its fix.
"""

from __future__ import annotations

import gzip
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from soundark.catalog.importers import tabular
from soundark.catalog.importers.listens import import_listens
from soundark.catalog.importers.musicbrainz import import_musicbrainz
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.config import ArchivePaths
from soundark.errors import BadInput
from soundark.fixity import digest
from soundark.fixity.releases import LIST_FORMAT
from soundark.fixity.torrent import parse_torrent, read_torrent
from soundark.preserve.verify import verify_path

from helpers.fixity import make_release
from helpers.fuzz import bencode

DEEP = "[" * 100_000 + "]" * 100_000


def soundark(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soundark", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def one_line(r: subprocess.CompletedProcess) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, (r.returncode, r.stderr[-2000:])
    assert "internal error" not in lines[0]
    return lines[0]


def titles(catalog) -> set[str]:
    return {r[0] for r in catalog.execute("SELECT title FROM recording")}


# ---------------------------------------------------------------- JSON nested 100,000 deep

def test_import_catalog_keeps_the_good_rows_around_a_deep_line(catalog, tmp_path: Path) -> None:
    f = tmp_path / "rows.jsonl"
    f.write_text('{"title": "before", "artists": ["a"]}\n{"title": "deep", "artists": ' + DEEP + "}\n"
                 '{"title": "after", "artists": ["b"]}\n')
    report = import_catalog_file(catalog, f)
    assert (report.new, report.rejected) == (2, 1)
    assert report.rejections[0].subject.endswith("rows.jsonl:2") and "nested too deeply" in report.rejections[0].reason
    assert titles(catalog) == {"before", "after"}


def test_import_listens_rejects_a_deep_line(catalog, tmp_path: Path) -> None:
    f = tmp_path / "listens.jsonl"
    f.write_text('{"listened_at": 1, "track_metadata": ' + DEEP + "}\n")
    report = import_listens(catalog, f)
    assert report.rejected == 1 and "nested too deeply" in report.rejections[0].reason


def test_import_musicbrainz_rejects_a_deep_line(catalog, tmp_path: Path) -> None:
    f = tmp_path / "mb.jsonl"
    f.write_text('{"id": ' + DEEP + "}\n")
    report = import_musicbrainz(catalog, f)
    assert report.rejected == 1 and "nested too deeply" in report.rejections[0].reason


def test_mirror_plan_of_a_deep_release_list_is_one_line(tmp_path: Path) -> None:
    f = tmp_path / "torrents.json"
    f.write_text('{"format": "' + LIST_FORMAT + '", "releases": ' + DEEP + "}")
    line = one_line(soundark("mirror", "plan", "--budget", "1TB", "--torrents", str(f), "-a", str(tmp_path)))
    assert str(f) in line and "nested too deeply" in line


# ---------------------------------------------------------------- the release list

@pytest.mark.parametrize("row, why", [
    ({"bytes": 10**400}, "401 digits"),
    ({"created": 5}, "'created' must be text or null"),
    ({"name": None}, "'name' must be text"),
    ({"listens_share": float("nan")}, "listens_share"),
])
def test_release_list_with_a_bad_row_is_one_line(archive: ArchivePaths, row: dict, why: str) -> None:
    good = {"name": "soundark-audio-0001", "phase": "audio", "created": "2026-01-01T00:00:00Z", "bytes": 10,
            "files": 1, "infohash_v1": "ab" * 20, "magnet": f"magnet:?xt=urn:btih:{'ab' * 20}"}
    (archive.releases / "torrents.json").write_text(json.dumps({"format": LIST_FORMAT,
                                                                "releases": [{**good, **row}]}))
    for args in (("release", "list"), ("mirror", "plan", "--budget", "1TB")):
        line = one_line(soundark(*args, "-a", str(archive.root)))
        assert "releases[0]" in line and why in line


# ---------------------------------------------------------------- CSV: nothing dropped silently

def test_csv_field_over_131072_characters_keeps_the_rest_of_the_file(catalog, tmp_path: Path) -> None:
    f = tmp_path / "rows.csv"
    body = "".join(f"song {i},artist {i}\n" for i in range(988))
    f.write_text("title,artists\n" + "long," + "x" * 200_000 + "\n" + body)
    report = import_catalog_file(catalog, f)
    assert report.new + report.rejected == 989 and report.new >= 988
    assert {f"song {i}" for i in range(988)} <= titles(catalog)


def test_csv_unterminated_quote_costs_one_row(catalog, tmp_path: Path) -> None:
    f = tmp_path / "rows.csv"
    f.write_text('title,artists\n"broken,someone\n' + "".join(f"song {i},artist {i}\n" for i in range(100)))
    report = import_catalog_file(catalog, f)
    assert (report.new, report.rejected) == (100, 1)
    assert "unbalanced quote" in report.rejections[0].reason


def test_csv_invalid_utf8_is_rejected_like_jsonl(catalog, tmp_path: Path) -> None:
    f = tmp_path / "rows.csv"
    f.write_bytes(b"title,artists\ncaf\xe9,x\ngood,y\n")
    report = import_catalog_file(catalog, f)
    assert (report.new, report.rejected) == (1, 1)
    assert "byte 0xE9" in report.rejections[0].reason and titles(catalog) == {"good"}


# ---------------------------------------------------------------- a line longer than MAX_LINE_BYTES

def _gz_with_long_line(path: Path, before: bytes, long_prefix: bytes, suffix: bytes, after: bytes,
                       length: int) -> None:
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(before + long_prefix)
        chunk = b"x" * (1 << 20)
        for _ in range(length // len(chunk)):
            f.write(chunk)
        f.write(suffix + after)


@pytest.fixture
def small_cap(monkeypatch):
    """A 1 MiB line cap and 64 KiB blocks: the same code paths as 64 MiB, at a test's cost."""
    monkeypatch.setattr(tabular, "MAX_LINE_BYTES", 1 << 20)
    monkeypatch.setattr(tabular, "CHUNK_BYTES", 1 << 16)


def test_jsonl_gz_with_a_line_over_the_cap_is_skipped(catalog, tmp_path: Path, small_cap) -> None:
    f = tmp_path / "rows.jsonl.gz"
    _gz_with_long_line(f, b'{"title": "before", "artists": ["a"]}\n', b'{"title": "', b'"}\n',
                       b'{"title": "after", "artists": ["b"]}\n', 3 << 20)
    report = import_catalog_file(catalog, f)
    assert (report.new, report.rejected) == (2, 1)
    assert report.rejections[0].subject.endswith(":2") and "longer than" in report.rejections[0].reason


def test_listens_jsonl_with_a_line_over_the_cap_is_skipped(catalog, tmp_path: Path, small_cap) -> None:
    f = tmp_path / "listens.jsonl.gz"
    _gz_with_long_line(f, b'{"listened_at": 1, "track_metadata": {"track_name": "a", "artist_name": "b"}}\n',
                       b'{"listened_at": 1, "track_metadata": {"track_name": "', b'"}}\n', b"", 3 << 20)
    report = import_listens(catalog, f)
    long = [r for r in report.rejections if "longer than" in r.reason]
    assert len(long) == 1 and long[0].subject.endswith(":2")


# ---------------------------------------------------------------- work bounded by what is on disk

def _declaring(bag: Path, path: Path, sizes: dict[str, int], plen: int = 1 << 30) -> Path:
    """A torrent of ``bag`` whose files declare *sizes* (pieces count agrees, hashes do not)."""
    real = read_torrent(bag.parent / "torrents" / f"{bag.name}.torrent")
    files = [{b"path": f.path.encode().split(b"/"), b"length": sizes.get(f.path, f.size)} for f in real.files]
    total = sum(f[b"length"] for f in files)
    info = {b"name": real.name.encode(), b"piece length": plen, b"pieces": b"\1" * 20 * -(-total // plen),
            b"files": files}
    path.write_bytes(bencode({b"info": info}))
    return path


@pytest.fixture
def counted_hashing(monkeypatch):
    """Counts the bytes fed to the v1 piece hasher; more than the bag holds plus a piece fails."""
    fed = {"bytes": 0, "limit": 0}
    update = digest.PieceHasher.update

    def counting(self, data):
        fed["bytes"] += len(memoryview(data))
        assert fed["bytes"] <= fed["limit"], "hashing bytes that are not on disk"
        update(self, data)

    monkeypatch.setattr(digest.PieceHasher, "update", counting)
    return fed


def test_verify_torrent_declaring_a_1_tib_file_is_bounded_by_the_disk(tmp_path: Path, counted_hashing) -> None:
    bag, files = make_release(tmp_path, parity=None)
    victim = min(p for p in files if p.startswith("data/") and p != "data/tracks.jsonl")
    torrent = _declaring(bag, tmp_path / "evil.torrent", {victim: 1 << 40})
    assert torrent.stat().st_size < 64_000  # a 20 KB-class torrent
    counted_hashing["limit"] = sum(len(d) for d in files.values()) + (1 << 30)
    report = verify_path(bag, torrent=torrent)
    assert not report.ok
    found = {(p.kind, p.path) for p in report.problems}
    assert any(path == victim for _, path in found), found


def test_pad_file_longer_than_a_piece_is_refused() -> None:
    plen = 1 << 20
    files = [{b"path": [b"a"], b"length": 10},
             {b"path": [b".pad", b"64G"], b"length": 64 << 30, b"attr": b"p"},
             {b"path": [b"b"], b"length": 10}]
    total = 10 + (64 << 30) + 10
    info = {b"name": b"bag", b"piece length": plen, b"pieces": b"\0" * 20 * -(-total // plen), b"files": files}
    with pytest.raises(BadInput, match="BEP 47"):
        parse_torrent(bencode({b"info": info}))


# ---------------------------------------------------------------- serve: a request head over 64 KiB

def _ask(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        try:
            s.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while the head was still being sent
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_serve_answers_431_to_a_huge_request_header(tmp_path: Path) -> None:
    from helpers.web import free_port, make_web_archive, wait_for

    web = make_web_archive(tmp_path / "archive", with_releases=False, seconds=0.5)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "soundark", "serve", "-a", str(web.paths.root),
                             "--port", str(port), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(f"http://127.0.0.1:{port}/api/stats")
        huge = b"GET /api/stats HTTP/1.1\r\nHost: x\r\nCookie: " + b"a" * (8 << 20) + b"\r\n\r\n"
        assert _ask(port, huge).startswith(b"HTTP/1.1 431 ")
        near = b"GET /api/stats HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 60_000 + b"\r\nConnection: close\r\n\r\n"
        assert _ask(port, near).startswith(b"HTTP/1.1 200 ")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
