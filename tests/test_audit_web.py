"""Audit findings on the web face (issue 13): HEAD on listed files, symlinked store files, a
damaged catalog answered 503, not 500.

Each test ran against the code before its fix and failed (see docs/reliability.md, "Audit:
preserve, fetch and web").
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from soundark.errors import SoundarkError
from soundark.web.app import create_app

from helpers.web import WebArchive, make_web_archive


@pytest.fixture(scope="module")
def web(tmp_path_factory) -> WebArchive:
    return make_web_archive(tmp_path_factory.mktemp("auditweb") / "archive")


@pytest.fixture(scope="module")
def client(web) -> TestClient:
    with TestClient(create_app(web.paths.root), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("which", ["torrent", "torrents.json"])
def test_head_on_listed_files_answers_like_get_without_a_body(client, web, which):
    url = (f"/torrents/{web.torrent_name}.torrent" if which == "torrent"
           else "/releases/torrents.json")
    got = client.get(url)
    head = client.head(url)
    assert got.status_code == 200 and head.status_code == 200, head.text[:200]
    assert head.content == b""
    for name in ("content-type", "content-length", "cache-control"):
        assert head.headers[name] == got.headers[name]
    assert head.headers.get("etag") == got.headers.get("etag")


def test_head_on_a_missing_torrent_is_404(client):
    assert client.head("/torrents/nothing-here.torrent").status_code == 404


def _swap_for_symlink(path: Path, target: str) -> bytes:
    original = path.read_bytes()
    path.unlink()
    os.symlink(target, path)
    return original


@pytest.mark.parametrize("kind", ["audio", "art"])
def test_a_symlinked_store_file_is_not_followed(web, kind, tmp_path):
    """A store file replaced by a symlink to /etc/passwd must not be served (before: it was)."""
    paths = web.paths
    sha = web.audio_sha if kind == "audio" else web.art_sha
    path = paths.store_path(sha, ".opus") if kind == "audio" else paths.art_path(sha, ".jpg")
    original = _swap_for_symlink(path, "/etc/passwd")
    try:
        with TestClient(create_app(paths.root), raise_server_exceptions=False) as c:
            for method in ("GET", "HEAD"):
                resp = c.request(method, f"/{kind}/{sha}")
                assert resp.status_code == 404, (method, resp.status_code)
                assert b"root:" not in resp.content
    finally:
        path.unlink()
        path.write_bytes(original)


def test_a_torrent_symlinked_elsewhere_is_not_served(web):
    path = web.paths.torrents / "evil.torrent"
    os.symlink("/etc/passwd", path)
    try:
        with TestClient(create_app(web.paths.root), raise_server_exceptions=False) as c:
            resp = c.get("/torrents/evil.torrent")
            assert resp.status_code == 404 and b"root:" not in resp.content
    finally:
        path.unlink()


def _copy(web: WebArchive, tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(web.paths.root, root)
    for suffix in ("-wal", "-shm"):
        Path(f"{root / 'catalog.sqlite3'}{suffix}").unlink(missing_ok=True)
    return root


def _overwrite_pages(catalog: Path) -> None:
    """Garbage over every page but the schema's and `recording` and its indexes: the app starts."""
    conn = sqlite3.connect(catalog)
    try:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        spared = {r[0] for r in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'sqlite_schema' OR name IN "
            "(SELECT name FROM sqlite_schema WHERE tbl_name = 'recording')")}
        count = conn.execute("PRAGMA page_count").fetchone()[0]
    finally:
        conn.close()
    with open(catalog, "r+b") as f:
        for n in range(2, count + 1):
            if n not in spared:
                f.seek((n - 1) * page)
                f.write(os.urandom(page) if n % 2 else b"\xff" * page)


def _check_503(c: TestClient, web: WebArchive) -> None:
    statuses = {}
    for url in ("/api/search?q=tide", "/api/recordings/GBXYZ2400001", "/api/stats", "/api/coverage",
                "/api/releases", "/", "/?q=tide", "/coverage", f"/audio/{web.audio_sha}",
                "/albums"):
        resp = c.get(url)
        statuses[url] = resp.status_code
        assert resp.status_code != 500, (url, resp.text[:300])
        if resp.status_code >= 500:
            assert resp.status_code == 503
            assert resp.json()["error"]["code"] == "unavailable"
            assert "damaged" in resp.json()["error"]["message"]
    assert 503 in statuses.values(), statuses
    page = c.get("/?q=tide", headers={"Accept": "text/html"})
    assert page.status_code == 503 and "text/html" in page.headers["content-type"]
    assert "damaged" in page.text


def test_a_catalog_with_pages_of_garbage_answers_503_not_500(web, tmp_path):
    root = _copy(web, tmp_path)
    _overwrite_pages(root / "catalog.sqlite3")
    with TestClient(create_app(root), raise_server_exceptions=False) as c:
        _check_503(c, web)


def test_a_catalog_truncated_while_serving_answers_503_not_500(web, tmp_path):
    root = _copy(web, tmp_path)
    with TestClient(create_app(root), raise_server_exceptions=False) as c:
        assert c.get("/api/stats").status_code == 200
        os.truncate(root / "catalog.sqlite3", 3 * 4096)
        _check_503(c, web)


def test_serve_of_a_catalog_damaged_before_start_is_one_line(web, tmp_path):
    root = _copy(web, tmp_path)
    os.truncate(root / "catalog.sqlite3", 3 * 4096)
    with pytest.raises(SoundarkError) as e:
        create_app(root)
    assert "damaged" in str(e.value) and "\n" not in str(e.value)
