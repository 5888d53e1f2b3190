"""Browsing in-process (FastAPI TestClient): home, albums, album, artists, artist, search extras.

The archive is tests/helpers/web.py's real one, with "Harbour Lights" filled to three tracks.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from soundark.web.app import create_app

from helpers.web import ISRC, LONG_TITLE, SHARED_ISRC, WebArchive, add_album_tracks, make_web_archive

HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def web(tmp_path_factory) -> WebArchive:
    web = make_web_archive(tmp_path_factory.mktemp("browse") / "archive", seconds=0.5)
    add_album_tracks(web)
    return web


@pytest.fixture(scope="module")
def client(web) -> TestClient:
    with TestClient(create_app(web.paths.root), raise_server_exceptions=False) as c:
        yield c


def test_home_api_headline_top_and_releases(client, web):
    home = client.get("/api/home").json()
    head = home["headline"]
    # two recordings preserved (same bytes, stored once) of 48; their listens over all listens
    total = 5000 + 300 + 900 + sum(range(45))
    assert head == {"recordings": 48, "preserved": 2, "bytes": len(web.audio_bytes),
                    "listens_share": pytest.approx((5000 + 900) / total)}
    assert [r["key"] for r in home["most_listened"]] == [ISRC, "sa00000000000000ff"]
    top = home["most_listened"][0]
    assert top["art_url"] == f"/art/{web.art_sha}.jpg" and top["audio_url"] == f"/audio/{web.audio_sha}.opus"
    assert top["album_key"] == "a1"
    assert [r["name"] for r in home["recent_releases"]] == [web.torrent_name]


def test_home_page(client, web):
    page = client.get("/", headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert "2 recordings preserved" in text and "% of listens" in text and "48 recordings" in text
    assert f'src="/art/{web.art_sha}.jpg"' in text and 'href="/album/a1"' in text
    assert f'data-audio="/audio/{web.audio_sha}.opus"' in text and web.torrent_name in text
    assert 'href="/albums"' in text and 'href="/artists"' in text


def test_home_has_no_listen_share_without_listen_data(tmp_path):
    web = make_web_archive(tmp_path / "a", with_releases=False, seconds=0.5)
    from soundark.catalog import open_catalog
    with open_catalog(web.paths.catalog) as cat, cat.transaction() as conn:
        conn.execute("UPDATE recording SET listens = NULL")
        conn.execute("UPDATE plan SET weight = 1.0")
    with TestClient(create_app(web.paths.root)) as c:
        assert c.get("/api/home").json()["headline"]["listens_share"] is None
        text = c.get("/", headers=HTML).text
        assert "1 recording preserved, in" in text and "of listens" not in text


def test_album_api_tracks_in_order_with_releases(client, web):
    album = client.get("/api/albums/a1").json()
    assert album["title"] == "Harbour Lights" and album["art_url"] == f"/art/{web.art_sha}.jpg"
    assert [(t["track_number"], t["key"]) for t in album["tracks"]] == [
        (1, ISRC), (2, SHARED_ISRC), (3, "sa00000000000000ff")]
    assert [t["audio_url"] is not None for t in album["tracks"]] == [True, False, True]
    assert album["tracks"][1]["tier"] == "skip"
    [rel] = album["releases"]
    assert rel["name"] == web.torrent_name and rel["tracks"] == 1
    assert rel["torrent_url"] == f"/torrents/{web.torrent_name}.torrent"
    assert client.get("/api/albums/nope").status_code == 404


def test_album_page_plays_all_and_words_the_plan(client, web):
    page = client.get("/album/a1", headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert 'class="play-all"' in text and 'data-queue' in text and text.count("data-audio=") == 2
    assert "not kept under the current plan" in text and ">skip<" not in text
    assert 'alt="Cover of Harbour Lights"' in text and web.torrent_name in text
    assert text.index("Morning Tide") < text.index("Salt Wind") < text.index("Low Water")
    assert 'class="title clamp"' in text and LONG_TITLE in text
    missing = client.get("/album/nope", headers=HTML)
    assert missing.status_code == 404 and "no such album" in missing.text


def test_albums_and_artists_listings(client):
    albums = client.get("/api/albums").json()
    assert [a["key"] for a in albums["albums"]] == ["a2", "a1"]  # by title: Best of..., Harbour...
    assert albums["albums"][1]["preserved"] == 2 and albums["albums"][1]["tracks"] == 3
    assert albums["total"] == 2 and albums["has_next"] is False
    page = client.get("/api/albums", params={"size": 1, "page": 2}).json()
    assert [a["key"] for a in page["albums"]] == ["a1"]
    artists = client.get("/api/artists").json()["artists"]
    assert [(a["name"], a["recordings"]) for a in artists] == [("Mara Vell", 1), ("The Tidewater Ensemble", 3)]
    assert 'href="/album/a1"' in client.get("/albums", headers=HTML).text
    assert 'href="/artist/n%3Atidewater"' in client.get("/artists", headers=HTML).text
    assert client.get("/api/albums", params={"size": 0}).status_code == 422


def test_artist_page_and_api(client, web):
    artist = client.get("/api/artists/n:tidewater").json()
    assert artist["name"] == "The Tidewater Ensemble"
    assert [a["key"] for a in artist["albums"]] == ["a1", "a2"]
    assert [r["key"] for r in artist["recordings"]][:2] == [ISRC, "sa00000000000000ff"]
    text = client.get("/artist/n:tidewater", headers=HTML).text
    assert "Harbour Lights" in text and 'id="artist-tracks"' in text
    assert client.get("/artist/nobody", headers=HTML).status_code == 404
    rec = client.get(f"/recording/{ISRC}", headers=HTML).text
    assert 'href="/artist/n%3Atidewater"' in rec and 'href="/album/a1"' in rec


def test_search_results_carry_thumbnails_and_audio(client, web):
    [hit] = client.get("/api/search", params={"q": "morning tide"}).json()["results"]
    assert hit["art_url"] == f"/art/{web.art_sha}.jpg" and hit["audio_url"] == f"/audio/{web.audio_sha}.opus"
    text = client.get("/", params={"q": "harbour"}, headers=HTML).text
    assert f'src="/art/{web.art_sha}.jpg"' in text and 'data-queue' in text
    assert "not kept under the current plan" in text and ">skip<" not in text


def test_recording_page_wording(client):
    skipped = client.get(f"/recording/{SHARED_ISRC}", headers=HTML).text
    assert "Not kept under the current plan" in skipped and "Not encoded yet" not in skipped
    kept = client.get(f"/recording/{ISRC}", headers=HTML).text
    assert "flac flac" not in kept and "<dd>flac ·" in kept.replace("\n", "")
