"""Fuzzing the hand-written readers of the formats soundark shares (hypothesis; tests/helpers/fuzz.py).

ISO 3901 ISRCs, bencode and .torrent metainfo (BEP 3/47/52), magnet links (BEP 9), BagIt
manifests, bag-info and Payload-Oxum (RFC 8493), the release list (torrents.json), parity.json,
a mirror's seeders file, HTTP Range headers (RFC 9110 §14) and search text (the FTS5 query
builder). Property: only SoundarkError (or the documented RangeNotSatisfiable) escapes, and
what is accepted satisfies the format's own rules. Each ``@example`` is an input that once
crashed a reader (docs/reliability.md, "Fuzzing").
"""

from __future__ import annotations

import hashlib
import json
import string
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from soundark import isrc
from soundark.catalog import search
from soundark.errors import BadInput
from soundark.fixity import bagit, parity, releases, torrent
from soundark.preserve import mirror
from soundark.web.ranges import RangeNotSatisfiable, parse_range

from helpers.fuzz import bencode, examples, only_soundark_errors, peak_python_bytes

DEEP = "[" * 100_000 + "]" * 100_000

# ---------------------------------------------------------------- ISRC (ISO 3901)

isrc_like = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"(ISRC:? ?)?[A-Za-z]{2}-?[A-Za-z0-9]{3}-?[0-9]{2}-?[0-9]{5}", fullmatch=True),
    st.text(alphabet=string.ascii_letters + string.digits + "-: \u00a0\u0660", max_size=20))


@examples(150)
@given(isrc_like)
@example("US-RC1-76-07839")
@example("ISRC ٠٠٠٠٠٠٠٠٠٠٠٠")  # Arabic-Indic digits are str.isdigit() but not ISO 3901
def test_isrc_parse_only_bad_input(text: str) -> None:
    code = only_soundark_errors(isrc.parse, text)
    assert isrc.is_valid(text) == (code is not None)
    if code is not None:
        assert str(code).isascii() and len(str(code)) == 12
        assert isrc.parse(str(code)) == code  # normal form is a fixed point


# ---------------------------------------------------------------- bencode and torrents

def _containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.binary(max_size=12), inner, max_size=5))


bencode_values = st.recursive(
    st.one_of(st.integers(min_value=-2**70, max_value=2**70), st.binary(max_size=40)), _containers, max_leaves=30)


@examples(100)
@given(bencode_values)
def test_bdecode_round_trips_canonical_bencode(value: object) -> None:
    assert torrent.bdecode(bencode(value))[0] == value


def _real_torrent() -> bytes:
    """A small multi-file torrent as the release stage writes it (piece hashes are real SHA-1s)."""
    files = [(b"data/a.opus", b"x" * 20000), (b"data/tracks.jsonl", b"{}\n"), (b"bagit.txt", b"BagIt")]
    stream = b"".join(d for _, d in files)
    pieces = b"".join(hashlib.sha1(stream[i:i + 16384]).digest() for i in range(0, len(stream), 16384))
    info = {b"name": b"soundark-audio-0001", b"piece length": 16384, b"pieces": pieces,
            b"files": [{b"path": p.split(b"/"), b"length": len(d)} for p, d in files]}
    return bencode({b"announce": b"http://127.0.0.1:1/announce", b"info": info})


REAL_TORRENT = _real_torrent()


@examples(200)
@given(st.data())
@example(None)
def test_parse_torrent_of_mutated_bytes(data) -> None:
    raw = bytearray(REAL_TORRENT)
    if data is not None:
        for _ in range(data.draw(st.integers(1, 8))):
            at = data.draw(st.integers(0, len(raw) - 1))
            op = data.draw(st.sampled_from(["set", "delete", "insert"]))
            byte = data.draw(st.integers(0, 255))
            if op == "set":
                raw[at] = byte
            elif op == "delete":
                del raw[at]
            else:
                raw.insert(at, byte)
    info = only_soundark_errors(torrent.parse_torrent, bytes(raw))
    if info is not None:  # what is accepted is consistent, whatever the bytes said
        assert -(-info.total // info.piece_length) == len(info.pieces)
        assert all(0 <= f.size <= 1 << 50 and not f.path.startswith("/") and ".." not in f.path.split("/")
                   for f in info.files)


@examples(150)
@given(st.binary(max_size=300))
@example(b"l" * 100_000)
@example(b"d" * 100_000)
@example(b"i" + b"9" * 5000 + b"e")
@example(b"99999999999999999999:")
def test_bdecode_random_bytes(raw: bytes) -> None:
    only_soundark_errors(torrent.parse_torrent, raw)


magnet_parts = st.lists(st.one_of(
    st.just("xt=urn:btih:" + "ab" * 20), st.just("xt=urn:btih:" + "cd" * 20),
    st.just("xt=urn:btih:" + "A" * 32), st.just("xt=urn:btmh:1220" + "ef" * 32),
    st.builds(lambda v: "dn=" + v, st.text(max_size=20)),
    st.builds(lambda v: "x.pe=" + v, st.text(alphabet="0123456789.:[]abcdef", max_size=25)),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["xt", "tr", "ws", "dn", "x.pe", "xl"]),
              st.text(max_size=30))), max_size=6)


@examples(150)
@given(st.sampled_from(["magnet:?", "magnet:", "MAGNET:?", "http://x/?"]), magnet_parts)
@example("magnet:?", ["xt=urn:btih:" + "ab" * 20, "xt=urn:btih:" + "cd" * 20])
@example("magnet:?", ["dn=\n"])  # the error quoted the link with its line break: two lines
@example("magnet:", ["xt=urn:btih:" + "ab" * 20, "xt=?", "xt=urn:btih:" + "cd" * 20])  # read as cd alone
@example("magnet:?", ["xt=urn:btih:" + "ab" * 20, "dn=0#", "xt=urn:btih:" + "cd" * 20])  # read as ab alone
def test_parse_magnet(scheme: str, parts: list[str]) -> None:
    uri = scheme + "&".join(parts)
    magnet = only_soundark_errors(torrent.parse_magnet, uri)
    if magnet is not None:
        assert magnet.infohash_v1 or magnet.infohash_v2
        # one infohash of each kind: a link never stands for two torrents
        assert len({p.lower() for p in parts if p.startswith("xt=urn:btih:")}) <= 1


def test_magnet_with_two_infohashes_is_refused() -> None:
    with pytest.raises(BadInput, match="two different infohashes"):
        torrent.parse_magnet(f"magnet:?xt=urn:btih:{'ab' * 20}&xt=urn:btih:{'cd' * 20}")
    same = torrent.parse_magnet(f"magnet:?xt=urn:btih:{'ab' * 20}&xt=urn:btih:{'AB' * 20}")
    assert same.infohash_v1 == "ab" * 20


# ---------------------------------------------------------------- BagIt (RFC 8493)

HEX64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
manifest_lines = st.lists(st.one_of(
    st.builds(lambda h, p: f"{h}  {p}", HEX64.map(str.upper) | HEX64, st.text(max_size=30)),
    st.builds(lambda h, p: f"{h} *data/{p}", HEX64,
              st.text(alphabet=string.printable + "é%/", max_size=20)),
    st.text(max_size=80)), max_size=8)


@examples(150)
@given(manifest_lines, st.sampled_from(["\n", "\r\n", "\r"]))
@example(["0" * 64 + "  data/a", "0" * 64 + "  data/A"], "\n")
@example(["0" * 64 + "  data/%2e%2e/etc/passwd"], "\n")
def test_parse_manifest(lines: list[str], eol: str) -> None:
    parsed = only_soundark_errors(bagit.parse_manifest, eol.join(lines), "manifest-sha256.txt")
    if parsed is not None:
        for path, digest in parsed.items():
            assert path.startswith("data/") and ".." not in path.split("/") and len(digest) == 64


@examples(100)
@given(st.text(max_size=200))
def test_bag_info_and_oxum(tmp_path_factory, text: str) -> None:
    bag = tmp_path_factory.mktemp("bag")
    (bag / "bag-info.txt").write_text(text, encoding="utf-8", errors="surrogatepass")
    info = only_soundark_errors(bagit.read_bag_info, bag, allowed=(UnicodeEncodeError,))
    for value in (info or {}).values():
        only_soundark_errors(bagit.parse_oxum, value, "Payload-Oxum")


# ---------------------------------------------------------------- JSON files of the releases folder

def _nested(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
              st.sampled_from([10**400, -10**400, 2**63]), st.floats(allow_nan=True), st.text(max_size=20)),
    _nested, max_leaves=20)

release_rows = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=20), "phase": st.sampled_from(["audio", "metadata"]),
     "created": st.just("2026-01-01T00:00:00Z"), "bytes": st.integers(0, 1 << 40),
     "files": st.integers(0, 1000), "magnet": st.none()},
    optional={k: json_values for k in releases.LIST_FIELDS
              if k not in ("name", "phase", "created", "bytes", "files", "magnet")})


@examples(80)
@given(st.one_of(json_values, st.fixed_dictionaries(
    {"format": st.just(releases.LIST_FORMAT), "releases": st.lists(st.one_of(release_rows, json_values),
                                                                  max_size=4)})))
@example({"format": releases.LIST_FORMAT, "releases": [{"name": "x", "phase": "audio", "bytes": 10**400,
                                                        "files": 1, "created": "2026"}]})
@example({"format": releases.LIST_FORMAT, "releases": [{"name": "x", "bytes": 1, "files": 1}]})  # no 'created'
def test_release_list(tmp_path_factory, doc: object) -> None:
    path = tmp_path_factory.mktemp("rel") / "torrents.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    rows = only_soundark_errors(releases.read_release_list, path)
    for row in rows or []:  # every reader may index every field and print every size
        assert set(row) == set(releases.LIST_FIELDS)
        assert 0 <= row["bytes"] <= releases.MAX_RELEASE_BYTES and isinstance(row["created"], (str, type(None)))
    if rows is not None:
        only_soundark_errors(mirror.plan_mirror, rows, 10**12, {})


@pytest.mark.parametrize("reader", [releases.read_release_list, parity.read_index, mirror.load_seeders])
def test_json_nested_100000_deep_is_one_line(reader, tmp_path: Path) -> None:
    for name in ("torrents.json", parity.INDEX, "seeders.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{\"a\": " + DEEP + "}")
    (tmp_path / parity.BLOCK_HASHES).write_bytes(b"")
    target = tmp_path if reader is parity.read_index else tmp_path / (
        "torrents.json" if reader is releases.read_release_list else "seeders.json")
    with pytest.raises(BadInput, match="nested too deeply"):
        reader(target)


parity_docs = st.fixed_dictionaries(
    {"format": st.just(parity.FORMAT), "k": st.integers(-2, 300), "m": st.integers(-2, 300),
     "block_size": st.integers(-1, 1 << 25), "columns": st.integers(-1, 1 << 30),
     "stream_bytes": st.integers(-1, 1 << 50)},
    optional={"files": json_values, "parity_files": json_values})


@examples(100)
@given(st.one_of(parity_docs, json_values), st.binary(max_size=256))
def test_parity_index(tmp_path_factory, doc: object, hashes: bytes) -> None:
    folder = tmp_path_factory.mktemp("par")
    (folder / parity.INDEX).parent.mkdir(parents=True, exist_ok=True)
    (folder / parity.INDEX).write_text(json.dumps(doc), encoding="utf-8")
    (folder / parity.BLOCK_HASHES).write_bytes(hashes)
    only_soundark_errors(parity.read_index, folder)


@examples(100)
@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps)))
@example('{"x": ' + "1" * 5000 + "}")  # more digits than int() converts
@example('{"":Infinity}')  # int(inf): OverflowError (the long fuzz run)
def test_seeders_file(tmp_path_factory, text: str) -> None:
    path = tmp_path_factory.mktemp("seed") / "seeders.txt"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    only_soundark_errors(mirror.load_seeders, path, allowed=(UnicodeEncodeError,))


# ---------------------------------------------------------------- HTTP Range (RFC 9110 §14) and search text

@examples(200)
@given(st.one_of(st.none(), st.text(max_size=60),
                 st.builds("{}bytes{}={}-{}".format, st.sampled_from(["", " "]), st.sampled_from(["", " "]),
                           st.integers(0, 1 << 50).map(str) | st.just(""),
                           st.integers(0, 1 << 50).map(str) | st.just(""))),
       st.integers(0, 1 << 45))
@example("bytes=-" + "9" * 5000, 10)
def test_parse_range(header: str | None, size: int) -> None:
    try:
        got = parse_range(header, size)
    except RangeNotSatisfiable as e:
        assert e.size == size
        return
    if got is not None:
        first, last = got
        assert 0 <= first <= last < size


@examples(200)
@given(st.text(max_size=300))
@example('"' * 7)
@example("-* NEAR( ^title: \"a\" OR b*")
def test_search_text_to_fts(text: str) -> None:
    query = only_soundark_errors(search.fts_query, text)
    if query is not None:
        assert peak_python_bytes(search.fts_query, text) < 4 << 20


# ---------------------------------------------------------------- v1 pieces over bytes that are not there

@examples(150)
@given(st.integers(1, 64), st.lists(st.tuples(st.booleans(), st.integers(0, 200)), max_size=8),
       st.integers(0, 100))
@example(3, [(True, 14), (True, 200), (False, 1)], 14)  # a lost run ending on a boundary left the next piece failed
def test_piece_hasher_lose_fails_exactly_the_pieces_it_touches(plen: int, segments, start: int) -> None:
    """``lose(n)`` == feeding n unknown bytes: the pieces they touch fail, the others hash as usual."""
    from soundark.fixity.digest import LOST, PieceHasher

    total = start + sum(n for _, n in segments)
    stream, lost = bytearray(b"\0" * start), set()
    hasher = PieceHasher(plen, start)
    for i, (gone, n) in enumerate(segments):
        if gone:
            lost.update(range(len(stream), len(stream) + n))
            stream += b"\0" * n
            hasher.lose(n)
        else:
            data = bytes((i * 7 + k) % 256 for k in range(n))
            stream += data
            hasher.update(data)
    got = hasher.finish()
    first = -(-start // plen)
    for k, digest in enumerate(got):
        lo, hi = (first + k) * plen, min((first + k + 1) * plen, total)
        if any(b in lost for b in range(lo, hi)):
            assert digest == LOST
        else:
            assert digest == hashlib.sha1(stream[lo:hi]).digest()
    assert len(got) == max(0, -(-total // plen) - first)
