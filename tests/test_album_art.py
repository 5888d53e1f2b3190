"""Cover art from scanned files reaches the album, the art release's albums.jsonl and the web."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fastapi.testclient import TestClient

from soundark.catalog import open_catalog
from soundark.catalog.importers.scan import scan_directory
from soundark.config import ArchivePaths, Settings
from soundark.encode.stage import EncodeOptions, run_encode
from soundark.media.synth import SourceTags, Voice, make_file, tiny_jpeg
from soundark.plan.stage import run_plan
from soundark.release.stage import run_release_art
from soundark.web.app import create_app

SETTINGS = Settings(redistributable=("owned",))


def scanned_album(archive: ArchivePaths, tmp_path: Path) -> bytes:
    """Two tracks of "Rivers" with the same embedded cover, and one loose file without art."""
    cover = tiny_jpeg((200, 30, 30))
    folder = tmp_path / "music" / "Ana" / "Rivers"
    folder.mkdir(parents=True)
    for n in (1, 2):
        make_file(folder / f"0{n} River {n}.flac", "flac", 0.5, voice=Voice(seed=n),
                  tags=SourceTags(title=f"River {n}", artists=["Ana"], album="Rivers",
                                  track_number=n, art=cover))
    (tmp_path / "music" / "Other" / "Plain").mkdir(parents=True)
    make_file(tmp_path / "music" / "Other" / "Plain" / "01 Plain.flac", "flac", 0.5, voice=Voice(seed=9),
              tags=SourceTags(title="Plain", artists=["Other"], album="Plain", track_number=1))
    with open_catalog(archive.catalog) as catalog:
        scan_directory(catalog, tmp_path / "music", rights="owned")
    run_plan(archive, SETTINGS)
    run_encode(archive, SETTINGS, options=EncodeOptions(executor="threads", workers=2))
    return cover


def test_encode_links_the_embedded_cover_to_its_album(archive: ArchivePaths, tmp_path: Path) -> None:
    cover = scanned_album(archive, tmp_path)
    with open_catalog(archive.catalog, readonly=True) as catalog:
        albums = {r["title"]: r["art_sha256"] for r in catalog.execute("SELECT title, art_sha256 FROM album")}
    assert albums == {"Rivers": hashlib.sha256(cover).hexdigest(), "Plain": None}


def test_art_release_lists_the_album_and_the_web_shows_it(archive: ArchivePaths, tmp_path: Path) -> None:
    cover = scanned_album(archive, tmp_path)
    sha = hashlib.sha256(cover).hexdigest()
    [pub] = run_release_art(archive, SETTINGS, date="2026-01-01").published
    lines = (archive.releases / pub.name / "data/albums.jsonl").read_text().splitlines()
    [album] = [json.loads(line) for line in lines]
    assert album["title"] == "Rivers" and album["art_sha256"] == sha
    assert (archive.releases / pub.name / "data" / album["image"]).read_bytes() == cover
    client = TestClient(create_app(archive.root))
    hits = client.get("/api/search", params={"q": "River"}).json()["results"]
    detail = client.get(f"/api/recordings/{hits[0]['key']}").json()
    assert detail["art"]["sha256"] == sha
    assert client.get(detail["art"]["url"]).content == cover
