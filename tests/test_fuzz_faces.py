"""Fuzzing what soundark reads from files and requests it did not make (hypothesis; tests/helpers/fuzz.py).

* the tag reader (mutagen behind soundark.media.tags) on real files with bytes changed,
  the way mutagen's own tests corrupt real samples: ID3 (real MP3s), Vorbis comments (a real
  Ogg), FLAC and Opus made by soundark.media.synth;
* ``data/tracks.jsonl`` inside a bag, through ``verify`` (which must name it, not crash);
* the web face: every route with fuzzed path parameters, query parameters and Range /
  If-None-Match headers (RFC 9110), on a real archive through FastAPI's TestClient.

Property: only SoundarkError escapes a reader; the web never answers 500, and a 206 carries
exactly the bytes its Content-Range names.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import example, given
from hypothesis import strategies as st

from soundark.media import tags
from soundark.media.synth import SourceTags, make_file
from soundark.preserve.verify import verify_path
from soundark.web.app import create_app

from helpers.fixity import make_release
from helpers.fuzz import examples, only_soundark_errors
from helpers.web import make_web_archive

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("tagsamples")
    made = {fmt: make_file(root / f"s.{fmt}", fmt, 0.2, tags=SourceTags(title="T", isrc="USRC17607839"))
            for fmt in ("flac", "opus")}
    files = {"mp3": DATA / "realmusic" / "frontiers-excerpt.mp3", "ogg": DATA / "scan" / "vorbis_framing_junk.ogg",
             **made}
    return {fmt: Path(p).read_bytes()[:16384] for fmt, p in files.items()}  # the tags live in the head


@examples(80)
@given(st.sampled_from(["mp3", "ogg", "flac", "opus"]), st.data())
def test_tag_reader_on_damaged_real_files(tmp_path_factory, samples, fmt: str, data) -> None:
    raw = bytearray(samples[fmt])
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, min(len(raw) - 1, 600)))  # the tag headers and their lengths
        raw[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    path = tmp_path_factory.mktemp("tag") / f"x.{fmt}"
    path.write_bytes(bytes(raw))
    only_soundark_errors(tags.read_tags, path)
    only_soundark_errors(tags.read_art, path)


# ---------------------------------------------------------------- tracks.jsonl through verify

@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    bag, _ = make_release(tmp_path_factory.mktemp("tracks"), n=3, parity=None)
    return bag


def _nested(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)), _nested,
                           max_leaves=10)
track_lines = st.lists(st.one_of(
    st.builds(lambda p: json.dumps({"path": p}), st.text(max_size=30) | st.sampled_from(
        ["../x", "/etc/passwd", "a\0b", "data/../../x", "audio/a.opus", ""])),
    json_values.map(json.dumps), st.text(max_size=40), st.just("[" * 100_000)), max_size=5)


@examples(40)
@given(track_lines)
@example(["[" * 100_000])
def test_verify_names_a_hostile_tracks_jsonl(bag: Path, lines: list[str]) -> None:
    target = bag / "data" / "tracks.jsonl"
    original = target.read_bytes()
    try:
        target.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
        report = only_soundark_errors(verify_path, bag)
        assert report is not None
        assert all("\n" not in p.detail for p in report.problems)
    finally:
        target.write_bytes(original)


# ---------------------------------------------------------------- the web face

@pytest.fixture(scope="module")
def client(tmp_path_factory):
    web = make_web_archive(tmp_path_factory.mktemp("webfuzz") / "archive", seconds=0.5)
    with TestClient(create_app(web.paths.root), raise_server_exceptions=True) as c:
        yield web, c


ROUTES = ["/api/search", "/api/recordings/{}", "/api/isrc/{}", "/api/releases", "/api/stats", "/api/coverage",
          "/", "/recording/{}", "/coverage", "/releases", "/audio/{}", "/art/{}", "/torrents/{}",
          "/releases/torrents.json", "/static/{}"]
words = st.one_of(st.text(max_size=40), st.sampled_from(
    ["GBXYZ2400001", "-", "*", '"', "NEAR(a b)", "a OR b", "%00", "..", "../../etc/passwd", "9" * 400]))
params = st.dictionaries(st.sampled_from(["q", "page", "size", "v", "x"]),
                         st.one_of(words, st.integers(-2**70, 2**70).map(str)), max_size=3)
headers = st.fixed_dictionaries({}, optional={
    "range": st.one_of(st.text(max_size=40), st.builds("bytes={}-{}".format, st.integers(0, 2**70) | st.just(""),
                                                       st.integers(0, 2**70) | st.just(""))),
    "if-none-match": st.text(max_size=70), "accept": st.sampled_from(["text/html", "application/json", "*/*"])})


@examples(150)
@given(st.sampled_from(ROUTES), words, params, headers)
@example("/audio/{}", "", {}, {"range": "bytes=0-" + "9" * 400})
@example("/api/search", "", {"q": "\0"}, {})
def test_web_never_answers_500(client, route: str, word: str, query: dict, hdrs: dict) -> None:
    web, c = client
    if "{}" in route:
        word = word or (web.audio_sha + ".opus" if route.startswith("/audio") else word)
        route = route.format(quote(word, safe=""))
    hdrs = {k: v.encode("utf-8", "surrogatepass").decode("latin-1") for k, v in hdrs.items()}
    try:
        r = c.get(route, params=query, headers=hdrs)
    except UnicodeEncodeError:
        return  # the client cannot send it: no server is reached
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code == 206:
        unit, _, span = r.headers["content-range"].partition(" ")
        first, last = (int(x) for x in span.split("/")[0].split("-"))
        assert unit == "bytes" and r.content == web.audio_bytes[first:last + 1]


@examples(60)
@given(headers)
@example({"range": "bytes=-0"})
@example({"range": "bytes=5-2"})
def test_audio_ranges_are_exact(client, hdrs: dict) -> None:
    web, c = client
    hdrs = {k: v.encode("utf-8", "surrogatepass").decode("latin-1") for k, v in hdrs.items()}
    try:
        r = c.get(f"/audio/{web.audio_sha}.opus", headers=hdrs)
    except UnicodeEncodeError:
        return
    assert r.status_code in (200, 206, 304, 416), r.status_code
    if r.status_code == 200:
        assert r.content == web.audio_bytes
    if r.status_code == 416:
        assert r.headers["content-range"] == f"bytes */{len(web.audio_bytes)}"
