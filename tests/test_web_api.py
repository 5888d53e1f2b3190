"""The web face in-process (FastAPI TestClient): every endpoint, every error shape, range requests.

The archive is real: rows inserted through soundark.catalog, a real Ogg Opus
file and a real JPEG in the content-addressed store, a real v1 .torrent.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from fastapi.testclient import TestClient

from soundark.catalog import open_catalog
from soundark.errors import EnvironmentProblem, NotFound
from soundark.web.app import create_app

from helpers.web import ISRC, WebArchive, make_web_archive


@pytest.fixture(scope="module")
def web(tmp_path_factory) -> WebArchive:
    return make_web_archive(tmp_path_factory.mktemp("web") / "archive")


@pytest.fixture(scope="module")
def client(web) -> TestClient:
    with TestClient(create_app(web.paths.root), raise_server_exceptions=False) as c:
        yield c


def assert_error(resp, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text[:300]
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert "Traceback" not in resp.text
    return body["error"]["message"]


# -- search ---------------------------------------------------------------------------------

def test_search_returns_every_listed_field(client, web):
    body = client.get("/api/search", params={"q": "morning"}).json()
    assert body["total"] == 1 and body["has_next"] is False
    hit = body["results"][0]
    assert hit["title"] == "Morning Tide" and hit["artist"].startswith("The Tidewater")
    assert hit["album"] == "Harbour Lights" and hit["date"] == "2019-04-12"
    assert hit["duration_ms"] == 2000 and hit["isrc"] == ISRC and hit["key"] == ISRC
    assert hit["tier"] == "opus75" and hit["release"] == "soundark-demo-audio-0001"
    assert hit["magnet"] == web.magnet
    assert "id" not in hit


def test_search_by_isrc_in_any_spelling(client):
    for text in ("GB-XYZ-24-00001", "gbxyz2400001"):
        assert [r["key"] for r in client.get("/api/search", params={"q": text}).json()["results"]] == [ISRC]


def test_search_paging_is_complete_and_disjoint(client):
    seen, page = [], 1
    while True:
        body = client.get("/api/search", params={"q": "bulk", "page": page, "size": 20}).json()
        assert body["total"] == 45 and body["page"] == page
        seen += [r["key"] for r in body["results"]]
        if not body["has_next"]:
            break
        page += 1
    assert page == 3 and len(seen) == len(set(seen)) == 45


def test_search_operators_phrase_prefix_exclusion(client):
    def keys(q):
        return {r["title"] for r in client.get("/api/search", params={"q": q, "size": 100}).json()["results"]}
    assert keys('"morning tide"') == {"Morning Tide"}
    assert keys('"tide morning"') == set()
    assert keys("morn*") == {"Morning Tide"}
    assert keys("harbour -bulk") == {"Morning Tide", "Salt Wind"}


def test_empty_and_no_result_searches(client):
    for q in ("", "   "):
        body = client.get("/api/search", params={"q": q}).json()
        assert body["results"] == [] and body["total"] == 0
    assert client.get("/api/search", params={"q": "zzzyxnothing"}).json()["results"] == []


@pytest.mark.parametrize("hostile", [
    '"', '"unbalanced', "(((", "NEAR(a b)", "*", "title:morning", "^morning", "a OR b", "-", "- -",
    "'; DROP TABLE recording; --", "\x00", "\u202e", "🎵", "%00", "../catalog.sqlite3", "<script>alert(1)</script>",
    " ".join(["x"] * 40),
])
def test_hostile_queries_answer_cleanly(client, hostile):
    resp = client.get("/api/search", params={"q": hostile})
    if resp.status_code == 200:
        assert isinstance(resp.json()["results"], list)
    else:
        assert_error(resp, 400, "bad_input")


def test_query_and_page_limits(client):
    message = assert_error(client.get("/api/search", params={"q": "a" * 257}), 400, "bad_input")
    assert message.startswith("q: query too long")
    assert_error(client.get("/api/search", params={"q": "a", "size": 1000}), 422, "invalid_request")
    assert_error(client.get("/api/search", params={"q": "a", "size": 0}), 422, "invalid_request")
    assert "page" in assert_error(client.get("/api/search", params={"q": "a", "page": "two"}),
                                  422, "invalid_request")
    assert_error(client.get("/api/search", params={"q": "a", "page": 101}), 422, "invalid_request")


# -- recordings -----------------------------------------------------------------------------

def test_recording_has_all_its_metadata(client, web):
    rec = client.get(f"/api/recordings/{ISRC}").json()
    assert rec["title"] == "Morning Tide" and rec["isrc"] == ISRC and rec["rights"] == "cc-by-4.0"
    assert [a["name"] for a in rec["artists"]] == ["The Tidewater Ensemble", "Mara Vell"]
    assert {t["album"] for t in rec["tracks"]} == {"Harbour Lights", "Best of the Coast"}
    assert rec["plan"]["tier"] == "opus75" and rec["plan"]["rank"] == 1
    assert rec["play"]["sha256"] == web.audio_sha and rec["play"]["url"] == f"/audio/{web.audio_sha}.opus"
    assert rec["play"]["media_type"] == "audio/ogg"
    assert rec["art"]["url"] == f"/art/{web.art_sha}.jpg"
    assert rec["sources"][0]["codec"] == "flac" and rec["sources"][0]["license"] == "CC-BY-4.0"
    [release] = rec["releases"]
    assert release["magnet"] == web.magnet and release["torrent_url"] == f"/torrents/{web.torrent_name}.torrent"
    assert "/home/operator" not in json.dumps(rec)  # the operator's local paths stay private


def test_recording_by_isrc(client):
    assert client.get("/api/isrc/gb-xyz-24-00001").json()["key"] == ISRC
    assert "designation" in assert_error(client.get("/api/isrc/GBXYZ24ABCDE"), 400, "bad_input")
    assert_error(client.get("/api/isrc/GBXYZ2499999"), 404, "not_found")


@pytest.mark.parametrize("key", [
    "../catalog.sqlite3", "..%2Fcatalog.sqlite3", "%2e%2e%2fcatalog.sqlite3", "..%5Ccatalog.sqlite3",
    "%2Fetc%2Fpasswd", "catalog.sqlite3", "soundark.toml", "x" * 500, "%00", "GBXYZ2400001%00",
])
def test_path_like_keys_are_just_unknown_keys(client, key):
    for prefix in ("/api/recordings/", "/audio/", "/art/", "/torrents/", "/recording/", "/static/"):
        resp = client.get(prefix + key)
        assert resp.status_code == 404, (prefix, key, resp.status_code)
        assert b"SQLite format" not in resp.content and b"opus_bitrate" not in resp.content
        assert resp.json()["error"]["code"] == "not_found"


# -- audio and art --------------------------------------------------------------------------

def test_audio_whole_file_with_immutable_caching(client, web):
    resp = client.get(f"/audio/{web.audio_sha}.opus")
    assert resp.status_code == 200 and resp.content == web.audio_bytes
    assert resp.headers["content-type"] == "audio/ogg"
    assert resp.headers["accept-ranges"] == "bytes"
    assert resp.headers["content-length"] == str(len(web.audio_bytes))
    assert resp.headers["etag"] == f'"{web.audio_sha}"'
    assert "immutable" in resp.headers["cache-control"] and "max-age=31536000" in resp.headers["cache-control"]
    assert client.get(f"/audio/{web.audio_sha}").content == web.audio_bytes  # extension optional


@pytest.mark.parametrize("header, first, last", [
    ("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-50", -50, None), ("bytes=10-10", 10, 10),
    ("bytes=5-999999999", 5, None), ("bytes=-999999999", 0, None), ("BYTES = 3 - 7", 3, 7),
])
def test_audio_single_ranges(client, web, header, first, last):
    size = len(web.audio_bytes)
    first = first % size
    last = size - 1 if last is None else last
    resp = client.get(f"/audio/{web.audio_sha}.opus", headers={"Range": header})
    assert resp.status_code == 206
    assert resp.content == web.audio_bytes[first:last + 1]
    assert resp.headers["content-range"] == f"bytes {first}-{last}/{size}"
    assert resp.headers["content-length"] == str(last - first + 1)
    assert resp.headers["content-type"] == "audio/ogg"


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{size}", "bytes=-0", "bytes=99999999-"])
def test_unsatisfiable_ranges_answer_416(client, web, header):
    size = len(web.audio_bytes)
    resp = client.get(f"/audio/{web.audio_sha}.opus", headers={"Range": header.format(size=size)})
    assert_error(resp, 416, "range_not_satisfiable")
    assert resp.headers["content-range"] == f"bytes */{size}"


@pytest.mark.parametrize("header", ["bytes=abc", "items=0-10", "bytes=9-2", "bytes=0-1,5-9", "bytes=-",
                                    "bytes=", "0-10", "bytes=1-2-3", "bytes=" + "9" * 300])
def test_malformed_or_multiple_ranges_send_the_whole_file(client, web, header):
    resp = client.get(f"/audio/{web.audio_sha}.opus", headers={"Range": header})
    assert resp.status_code == 200 and resp.content == web.audio_bytes


def test_validators_if_range_if_none_match_and_head(client, web):
    url = f"/audio/{web.audio_sha}.opus"
    etag = f'"{web.audio_sha}"'
    assert client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206
    stale = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == web.audio_bytes
    cached = client.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    head = client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(web.audio_bytes))


def test_only_stored_hashes_are_served(client, web):
    assert_error(client.get(f"/audio/{'ab' * 32}.flac"), 404, "not_found")  # a source hash, not stored
    assert_error(client.get(f"/audio/{web.audio_sha.upper()}"), 404, "not_found")
    assert_error(client.get(f"/audio/{web.audio_sha}.mp3"), 404, "not_found")  # wrong extension
    assert_error(client.get(f"/audio/{web.art_sha}.jpg"), 404, "not_found")  # art is not audio
    assert_error(client.get(f"/art/{web.audio_sha}.opus"), 404, "not_found")


def test_art_by_hash(client, web):
    resp = client.get(f"/art/{web.art_sha}.jpg")
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/jpeg"
    assert hashlib.sha256(resp.content).hexdigest() == web.art_sha
    assert "immutable" in resp.headers["cache-control"]


def test_audio_listed_but_missing_from_store_is_not_found(tmp_path):
    arch = make_web_archive(tmp_path / "a", with_releases=False, seconds=0.5)
    arch.paths.store_path(arch.audio_sha, ".opus").unlink()
    with TestClient(create_app(arch.paths.root), raise_server_exceptions=False) as c:
        assert "missing from the store" in assert_error(c.get(f"/audio/{arch.audio_sha}.opus"), 404, "not_found")


# -- releases, stats, coverage, OpenAPI -----------------------------------------------------

def test_releases_api_and_files(client, web):
    body = client.get("/api/releases").json()
    [rel] = body["releases"]
    assert rel["name"] == web.torrent_name and rel["phase"] == "audio" and rel["magnet"] == web.magnet
    assert rel["files"] == 3 and rel["listens_share"] == pytest.approx(0.94)
    assert body["torrents_json"] == "/releases/torrents.json"
    listing = client.get("/releases/torrents.json")
    assert listing.status_code == 200 and listing.json()["format"] == "soundark-torrents/1"
    torrent = client.get(rel["torrent_url"])
    assert torrent.status_code == 200 and torrent.headers["content-type"] == "application/x-bittorrent"
    assert torrent.content.startswith(b"d") and b"4:info" in torrent.content
    assert torrent.content == (web.paths.torrents / f"{web.torrent_name}.torrent").read_bytes()
    assert_error(client.get("/torrents/nope.torrent"), 404, "not_found")


def test_stats_and_coverage(client):
    stats = client.get("/api/stats").json()
    assert stats["recordings"] == 47 and stats["releases"] == 1 and stats["encoded_files"] == 1
    assert "catalog" not in stats  # no server path
    cov = client.get("/api/coverage").json()
    assert cov["planned"] is True
    tiers = {t["tier"]: t for t in cov["tiers"]}
    assert tiers["opus75"]["recordings"] == 1 and tiers["skip"]["recordings"] == 1
    assert cov["summary"]["listens_share"] == pytest.approx(5000 / 5300)
    assert cov["curve_bytes"][-1]["share"] == pytest.approx(5000 / 5300)


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json").json()
    for path in ("/api/search", "/api/recordings/{key}", "/api/isrc/{isrc}", "/api/releases", "/api/stats"):
        assert path in spec["paths"], path
    assert "ErrorBody" in json.dumps(spec["components"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_unknown_routes_methods_and_bugs_share_the_error_shape(client, monkeypatch):
    assert_error(client.get("/api/nothing"), 404, "not_found")
    assert_error(client.post("/api/search"), 405, "method_not_allowed")

    def explode(*a, **k):
        raise RuntimeError("secret detail /home/operator")
    monkeypatch.setattr(client.app.state.reader, "search", explode)
    resp = client.get("/api/search", params={"q": "x"})
    message = assert_error(resp, 500, "internal")
    assert "secret" not in resp.text and "RuntimeError" not in resp.text and message


def test_environment_problem_is_503_without_details(client, monkeypatch):
    def broken(*a, **k):
        raise EnvironmentProblem("/srv/private/catalog.sqlite3", "disk I/O error")
    monkeypatch.setattr(client.app.state.reader, "stats", broken)
    resp = client.get("/api/stats")
    assert_error(resp, 503, "unavailable")
    assert "/srv/private" not in resp.text


# -- HTML pages -----------------------------------------------------------------------------

HTML = {"Accept": "text/html"}


def test_search_page_states(client):
    empty = client.get("/", headers=HTML)
    assert empty.status_code == 200 and "Search the archive" in empty.text and "47 recordings" in empty.text
    hits = client.get("/", params={"q": "morning"}, headers=HTML).text
    assert f'href="/recording/{ISRC}"' in hits and "Harbour Lights" in hits and "opus75" in hits
    none = client.get("/", params={"q": "zzzyxnothing"}, headers=HTML).text
    assert 'id="no-results"' in none
    paged = client.get("/", params={"q": "bulk", "page": 2}, headers=HTML).text
    assert 'rel="prev"' in paged and 'rel="next"' in paged
    bad = client.get("/", params={"q": "a" * 300}, headers=HTML)
    assert bad.status_code == 400 and "too long" in bad.text


def test_search_page_escapes_what_it_echoes(client):
    text = client.get("/", params={"q": "<script>alert(1)</script>"}, headers=HTML).text
    assert "<script>alert(1)" not in text and "&lt;script&gt;" in text


def test_recording_page(client, web):
    page = client.get(f"/recording/{ISRC}", headers=HTML)
    assert page.status_code == 200
    assert f'<audio id="player" controls preload="metadata" src="/audio/{web.audio_sha}.opus"' in page.text
    assert f'src="/art/{web.art_sha}.jpg"' in page.text and web.audio_sha in page.text
    assert web.magnet.replace("&", "&amp;") in page.text and "cc-by-4.0" in page.text
    assert "Best of the Coast" in page.text
    assert "content-security-policy" in page.headers and page.headers["x-content-type-options"] == "nosniff"
    missing = client.get("/recording/nope", headers=HTML)
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "no such recording" in missing.text


def test_coverage_and_releases_pages(client, web):
    cov = client.get("/coverage", headers=HTML).text
    assert 'id="tiers"' in cov and "<polyline" in cov and "opus75" in cov
    assert cov.count('class="mark"') == 1 and "recordings kept" in cov  # no budget here: the kept line only
    assert cov.count('class="tick"') == 6  # both charts: x ticks at 1/4, 1/2, 3/4, labelled in their unit
    assert " B</text>" in cov or " kB</text>" in cov or " MB</text>" in cov
    rel = client.get("/releases", headers=HTML).text
    assert web.torrent_name in rel and web.magnet.replace("&", "&amp;") in rel
    assert f'href="/torrents/{web.torrent_name}.torrent"' in rel and 'href="/releases/torrents.json"' in rel


def test_static_files_are_versioned(client):
    page = client.get("/", headers=HTML).text
    href = page.split('rel="stylesheet" href="')[1].split('"')[0]
    css = client.get(href)
    assert css.status_code == 200 and "immutable" in css.headers["cache-control"]
    assert css.headers["content-type"].startswith("text/css")
    assert "immutable" not in client.get("/static/style.css").headers["cache-control"]


# -- a young archive, read-only access ------------------------------------------------------

def test_young_archive_shows_empty_states(archive):
    with TestClient(create_app(archive.root), raise_server_exceptions=False) as c:
        assert c.get("/api/search", params={"q": "anything"}).json()["results"] == []
        assert c.get("/api/releases").json() == {"releases": [], "torrents_json": None}
        assert c.get("/api/coverage").json()["planned"] is False
        assert 'id="no-plan"' in c.get("/coverage", headers=HTML).text
        assert 'id="no-releases"' in c.get("/releases", headers=HTML).text
        assert_error(c.get("/releases/torrents.json"), 404, "not_found")
        assert c.get("/api/stats").json()["recordings"] == 0


def test_catalog_is_opened_read_only_and_never_written(web, client):
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in web.paths.root.iterdir() if p.is_file()}
    for url in ("/api/search?q=morning", f"/api/recordings/{ISRC}", "/api/stats", "/api/coverage", "/"):
        client.get(url)
    reader = client.app.state.reader
    assert reader.catalog().readonly
    with pytest.raises(EnvironmentProblem):
        reader.catalog().execute("INSERT INTO artist(key, name) VALUES ('x', 'y')")
    after = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in web.paths.root.iterdir() if p.is_file()}
    assert after == before


def test_stats_cache_follows_catalog_writes(tmp_path):
    arch = make_web_archive(tmp_path / "a", with_releases=False, seconds=0.5)
    with TestClient(create_app(arch.paths.root)) as c:
        assert c.get("/api/stats").json()["recordings"] == 47
        with open_catalog(arch.paths.catalog) as cat, cat.transaction() as conn:
            conn.execute("INSERT INTO recording(key, title) VALUES ('sa00000000000000ff', 'New One')")
        os.utime(arch.paths.catalog)  # same-nanosecond writes on coarse clocks: make the change visible
        assert c.get("/api/stats").json()["recordings"] == 48


def test_search_decorations_follow_catalog_writes(tmp_path):
    """Pages skip the decorations' statement while plan, releases, art and encodes are empty (a
    catalog before its plan): the moment a writer fills one, pages show it."""
    arch = make_web_archive(tmp_path / "a", with_releases=False, seconds=0.5)
    with open_catalog(arch.paths.catalog) as cat, cat.transaction() as conn:
        kept = conn.execute("SELECT * FROM plan").fetchall()
        encoded = conn.execute("SELECT * FROM encoded").fetchall()
        arts = conn.execute("SELECT * FROM art").fetchall()
        for table in ("plan", "encoded", "art"):
            conn.execute(f"DELETE FROM {table}")
        assert conn.execute("SELECT count(*) FROM release_file").fetchone()[0] == 0
    assert kept and encoded and arts

    def hit() -> dict:
        return c.get("/api/search", params={"q": "morning"}).json()["results"][0]
    with TestClient(create_app(arch.paths.root)) as c:
        assert (hit()["tier"], hit()["audio_url"]) == (None, None)
        with open_catalog(arch.paths.catalog) as cat, cat.transaction() as conn:
            conn.executemany(f"INSERT INTO plan VALUES ({','.join('?' * len(kept[0]))})", kept)
            conn.executemany(f"INSERT INTO encoded VALUES ({','.join('?' * len(encoded[0]))})", encoded)
            conn.executemany(f"INSERT INTO art VALUES ({','.join('?' * len(arts[0]))})", arts)
        os.utime(arch.paths.catalog)  # same-nanosecond writes on coarse clocks: make the change visible
        assert hit()["tier"] == "opus75" and hit()["audio_url"].startswith("/audio/") and hit()["art_url"]


def test_no_archive_is_not_found(tmp_path):
    with pytest.raises(NotFound):
        create_app(tmp_path / "nothing")


def test_common_queries_rank_a_bounded_candidate_set_by_listens(client, monkeypatch):
    from soundark.catalog import search

    monkeypatch.setattr(search, "CANDIDATES", 10)
    body = client.get("/api/search", params={"q": "bulk", "size": 4}).json()
    assert body["total"] == 10 and body["total_is_lower_bound"] is True
    listens = [r["listens"] for r in body["results"]]
    assert listens == sorted(listens, reverse=True) and len(listens) == 4
    last = client.get("/api/search", params={"q": "bulk", "size": 4, "page": 3}).json()
    assert len(last["results"]) == 2 and last["has_next"] is False
    few = client.get("/api/search", params={"q": "morning"}).json()
    assert few["total"] == 1 and few["total_is_lower_bound"] is False


def test_short_prefixes_are_refused_with_a_reason(client):
    assert "at least 3 letters" in assert_error(client.get("/api/search", params={"q": "bu*"}), 400, "bad_input")
    assert client.get("/api/search", params={"q": "bul*"}).json()["total"] == 45


@pytest.mark.parametrize("text", ["bul*", "harb* -bulk", "Harbour mor*", "tide*", "zzz*", "sal* OR win*"])
def test_prefix_expansion_finds_exactly_what_fts5_prefixes_find(client, text, monkeypatch):
    """FTS5's own prefix query, the OR of search_word's words, and the OR of FTS5's word list of
    the 3-letter bucket (the web's way when search_word is not current): the same hits."""
    from soundark.catalog import vocabulary
    from soundark.catalog.search import find

    reader = client.app.state.reader
    cat = reader.catalog()
    with open_catalog(reader.paths.catalog) as writer, writer.transaction() as conn:
        vocabulary.refresh(conn)  # as the catalog import leaves it
    assert vocabulary.current(cat.conn)
    native = find(cat, text, limit=100, offset=0, terms_of=lambda prefix: None)
    by_words = find(cat, text, limit=100, offset=0)
    web = find(cat, text, limit=100, offset=0, terms_of=lambda p: reader._terms_of(p, reader._version()))
    monkeypatch.setattr(vocabulary, "words", lambda conn, prefix, limit: None)  # as if not current
    by_bucket = find(cat, text, limit=100, offset=0, terms_of=lambda p: reader._terms_of(p, reader._version()))
    assert reader._buckets or "*" not in text.replace("zzz*", "")
    for other in (by_words, web, by_bucket):
        assert [h.key for h in other.hits] == [h.key for h in native.hits]
        assert other.total == native.total


def test_search_cache_is_dropped_when_the_catalog_changes(tmp_path):
    arch = make_web_archive(tmp_path / "a", with_releases=False, seconds=0.5)
    with TestClient(create_app(arch.paths.root)) as c:
        assert c.get("/api/search", params={"q": "zebra"}).json()["total"] == 0
        assert c.get("/api/search", params={"q": "zebra"}).json()["total"] == 0  # now cached
        with open_catalog(arch.paths.catalog) as cat, cat.transaction() as conn:
            conn.execute("INSERT INTO recording(key, title) VALUES ('sa00000000000000fe', 'Zebra Crossing')")
        os.utime(arch.paths.catalog)
        assert c.get("/api/search", params={"q": "zebra"}).json()["total"] == 1
        assert c.get("/api/search", params={"q": "zeb*"}).json()["total"] == 1


def test_a_search_past_its_time_is_stopped_with_a_reason(tmp_path, monkeypatch):
    from soundark.web import queries as web_queries

    arch = make_web_archive(tmp_path / "a", with_releases=False, seconds=0.5)
    monkeypatch.setattr(web_queries, "PROGRESS_STEPS", 1)
    monkeypatch.setattr(web_queries, "SEARCH_SECONDS", -1.0)  # every search is already late
    with TestClient(create_app(arch.paths.root)) as c:
        message = assert_error(c.get("/api/search", params={"q": "bulk"}), 400, "bad_input")
        assert "takes too long" in message
        monkeypatch.setattr(web_queries, "SEARCH_SECONDS", 60.0)
        assert c.get("/api/search", params={"q": "bulk"}).json()["total"] == 45  # the reader still works


def test_serve_binds_loopback_unless_told(archive):
    from soundark.config import Settings
    from soundark.errors import BadInput
    from soundark.web.server import plan_serve, serve_command

    default = plan_serve(archive, Settings())
    assert (default.host, default.port, default.public) == ("127.0.0.1", 8080, False)
    assert default.url == "http://127.0.0.1:8080/" and 1 <= default.workers <= 4
    assert plan_serve(archive, Settings(host="::1")).public is False
    assert plan_serve(archive, Settings(host="localhost")).public is False
    assert plan_serve(archive, Settings(host="0.0.0.0")).public is True
    with pytest.raises(BadInput):
        plan_serve(archive, Settings(port=70000))
    assert serve_command(archive, Settings()).endswith(f" serve -a {archive.root}")
    assert serve_command(archive, Settings(port=9000)).endswith("--port 9000")


def test_the_printed_serve_command_works_in_a_fresh_shell(archive):
    """Without an activated venv, `soundark` may not be on PATH: the command names what is."""
    import subprocess

    from soundark.config import Settings
    from soundark.web.server import serve_command

    cmd = serve_command(archive, Settings())
    fresh = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
             "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    r = subprocess.run(f"{cmd} --help", shell=True, capture_output=True, text=True, env=fresh, timeout=60)
    assert r.returncode == 0, (cmd, r.stderr[-500:])
    assert "Usage:" in r.stdout and "serve" in r.stdout


SEARCH_QUERIES = ["q=bulk", "q=bulk&size=4&page=3", "q=harb*+-bulk", "q=%E6%9D%B1%E4%BA%AC", "q=", "", "q=zzz*",
                  f"q={ISRC}", "q=bu*", "q=" + "x" * 300, "q=bulk&page=0", "q=bulk&size=101", "q=bulk&page=x",
                  "q=bulk&size=+5", "q=bulk&size=05", "q=bulk&q=harbour", "q=bulk&extra=1", "q=%ff%fe",
                  "q=a&page=1.0", "q=NEAR(x", "q=bulk&size=100&page=100"]


def test_the_search_fast_path_answers_as_the_route_does(web, monkeypatch):
    """/api/search with plain parameters skips FastAPI's routing (app.SearchFastPath): every answer,
    error or not, equals the documented route's, header for header."""
    from fastapi import FastAPI

    from soundark.web import app as app_module

    served = []
    real = app_module.plain_search_args
    monkeypatch.setattr(app_module, "plain_search_args", lambda qs: served.append(real(qs)) or served[-1])
    fast = create_app(web.paths.root, search_cache=0)
    route = create_app(web.paths.root, search_cache=0)
    route.build_middleware_stack = lambda: FastAPI.build_middleware_stack(route)  # no fast path in front
    with TestClient(fast) as a, TestClient(route) as b:
        for query in SEARCH_QUERIES:
            ra, rb = a.get(f"/api/search?{query}"), b.get(f"/api/search?{query}")
            assert (ra.status_code, ra.content) == (rb.status_code, rb.content), query
            drop = {"date", "content-length"}
            assert {k: v for k, v in ra.headers.items() if k not in drop} == \
                {k: v for k, v in rb.headers.items() if k not in drop}, query
    fast_ones = [args for args in served if args is not None]
    assert len(fast_ones) >= 10 and len(served) == len(SEARCH_QUERIES)  # the route app never asks
    assert ("bulk", 3, 4) in fast_ones and ("bulk", 100, 100) in fast_ones and ("bu*", 1, 20) in fast_ones


def test_a_search_page_is_the_json_the_standard_encoder_writes():
    """SearchPage.json_bytes (orjson) is byte for byte json.dumps(ensure_ascii=False, compact): the
    API's bodies did not change when the encoder did. Titles hold what catalogs hold."""
    import json

    from soundark.web.queries import SearchPage

    odd = ['plain', 'Señor "quoted" \\ back', 'tab\there\nnewline', '\u2028\u2029 separators', '東京タワー',
           'emoji 🎵', 'control \x00\x01\x1f\x7f', '</script><!--', "'single'", 'москва', '\ufeffbom', '']
    results = [{"key": f"sa{i:016x}", "title": t, "artist": odd[-1 - i], "album": t[::-1], "listens": i * 10**12,
                "duration_ms": None, "tier": None if i % 2 else "keep", "art_url": None, "play": i % 3 == 0}
               for i, t in enumerate(odd)]
    page = SearchPage("q \"x\" 東京", 2, 20, 10**9, True, False, results)
    assert page.json_bytes == json.dumps(page.as_dict(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert json.loads(page.json_bytes) == page.as_dict()
