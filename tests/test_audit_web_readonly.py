"""Audit findings on read-only media (issue 13): a copy of an archive on a read-only mount (a
DVD, a write-protected disk; no ``-wal``/``-shm`` can be made next to the catalog) must still
be verified, searched and served; likewise one whose copy kept a leftover ``-shm`` file.

The read-only folder is a real read-only bind mount (we run as root, so ``chmod`` would not
stop a write). Without a mount (not root), the tests skip.
The clean and stale ``-shm`` copies failed before the catalog's read-only opening
(``mode=ro``, then ``immutable=1`` where the folder cannot be written: catalog/store.py).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from soundark.web.app import create_app

from helpers.fixity import make_release
from helpers.web import WebArchive, make_web_archive


def _mount_ro(source: Path, target: Path) -> None:
    target.mkdir()
    for argv in (["mount", "--bind", str(source), str(target)],
                 ["mount", "-o", "remount,ro,bind", str(target)]):
        got = subprocess.run(argv, capture_output=True, text=True)
        if got.returncode:
            subprocess.run(["umount", str(target)], capture_output=True)
            pytest.skip(f"cannot make a read-only bind mount here: {got.stderr.strip()}")


@pytest.fixture(scope="module")
def web(tmp_path_factory) -> WebArchive:
    web = make_web_archive(tmp_path_factory.mktemp("ro") / "archive")
    make_release(web.paths.releases, name="rel-0001", n=4, max_size=5_000)
    return web


def _with_leftover_shm(source: Path, copy: Path) -> None:
    """A copy taken while a writer had the catalog open: catalog, -wal and -shm side by side."""
    shutil.copytree(source, copy)
    catalog = copy / "catalog.sqlite3"
    writer = sqlite3.connect(catalog)
    try:
        writer.execute("PRAGMA journal_mode = WAL")
        writer.execute("UPDATE recording SET listens = listens WHERE id = 1")
        writer.commit()
        shutil.copy(catalog, copy / "snap.sqlite3")
        for suffix in ("-wal", "-shm"):
            shutil.copy(f"{catalog}{suffix}", copy / f"snap.sqlite3{suffix}")
    finally:
        writer.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{catalog}{suffix}").unlink(missing_ok=True)
        (copy / f"snap.sqlite3{suffix}").rename(f"{catalog}{suffix}")


@pytest.fixture(scope="module", params=["clean", "leftover-wal-shm", "stale-shm"])
def ro(request, web, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"ro-{request.param}")
    source = base / "source"
    if request.param == "leftover-wal-shm":
        _with_leftover_shm(web.paths.root, source)
    else:
        shutil.copytree(web.paths.root, source)
    if request.param == "stale-shm":  # a -shm left behind without its -wal (after a checkpoint)
        (source / "catalog.sqlite3-shm").write_bytes(bytes(32768))
    target = base / "mounted"
    _mount_ro(source, target)
    yield target
    subprocess.run(["umount", str(target)], check=False)


@pytest.fixture
def ro_path(ro):
    """The mounted copy."""
    return ro


def soundark(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soundark", *args], capture_output=True, text=True,
                          timeout=120)


def test_search_on_read_only_media(ro_path):
    got = soundark("search", "tide", "--archive", str(ro_path), "--json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["total"] >= 1


def test_verify_on_read_only_media(ro_path):
    got = soundark("verify", str(ro_path), "--json")
    assert got.returncode == 0, got.stdout[-600:] + got.stderr
    assert json.loads(got.stdout)["ok"]


def test_serve_on_read_only_media(ro_path, web):
    with TestClient(create_app(ro_path), raise_server_exceptions=False) as c:
        assert c.get("/api/search?q=tide").json()["total"] >= 1
        assert c.get("/api/stats").status_code == 200
        assert c.get(f"/audio/{web.audio_sha}").content == web.audio_bytes
        assert c.head("/releases/torrents.json").status_code == 200


def test_read_only_media_stays_unchanged(ro, web):
    """Whatever the commands answer, nothing on the read-only copy may change (it cannot; the
    mount is the check) and nothing is written beside it."""
    before = sorted(p.name for p in ro.iterdir())
    soundark("verify", str(ro), "--json")
    soundark("search", "tide", "--archive", str(ro), "--json")
    assert sorted(p.name for p in ro.iterdir()) == before
