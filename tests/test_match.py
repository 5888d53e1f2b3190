"""catalog.match: ISRC, then MBID, then artist + title + duration; fill in, never overwrite."""

from __future__ import annotations

from soundark.catalog import Catalog
from soundark.catalog.match import (
    DURATION_TOLERANCE_MS,
    AlbumFacts,
    RecordingFacts,
    TrackFacts,
    album_key,
    artist_key,
    find_recording,
    match_recording,
    upsert_album,
    upsert_track,
)
from soundark.model import derived_key, match_key

MBID = "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"


def _new(catalog: Catalog, facts: RecordingFacts, fallback: str = "sa0000000000000001"):
    with catalog.transaction() as conn:
        return match_recording(conn, facts, fallback)


def _row(catalog: Catalog, rid: int) -> dict:
    return dict(catalog.execute("SELECT * FROM recording WHERE id = ?", (rid,)).fetchone())


def test_new_recording_keys(catalog: Catalog) -> None:
    a = _new(catalog, RecordingFacts("Song", ("A",), isrc="us-rc1-76-07839", mbid=MBID))
    b = _new(catalog, RecordingFacts("Other", ("A",), mbid=MBID.replace("0c1d", "1c1d")))
    c = _new(catalog, RecordingFacts("Third", ("A",)), fallback="sa00000000000000ff")
    assert (a.key, a.created, a.matched_by) == ("USRC17607839", True, "new")
    assert b.key == "mb1c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f"
    assert c.key == "sa00000000000000ff"
    row = _row(catalog, a.recording_id)
    assert (row["isrc"], row["mbid"], row["match_key"]) == ("USRC17607839", MBID, match_key("A", "Song"))


def test_isrc_match_ignores_name_and_duration(catalog: Catalog) -> None:
    first = _new(catalog, RecordingFacts("Song", ("A",), isrc="USRC17607839", duration_ms=100_000))
    again = _new(catalog, RecordingFacts("Totally different", ("B",), isrc="US-RC1-76-07839",
                                         duration_ms=300_000))
    assert (again.recording_id, again.created, again.matched_by) == (first.recording_id, False, "isrc")


def test_mbid_match_and_fill_in(catalog: Catalog) -> None:
    first = _new(catalog, RecordingFacts("Song", ("A",), mbid=MBID))
    again = _new(catalog, RecordingFacts("Song", ("A",), mbid=MBID.upper(), isrc="GBAYE0000351",
                                         duration_ms=200_000, date="1999", album="Alb"))
    assert (again.recording_id, again.matched_by) == (first.recording_id, "mbid")
    row = _row(catalog, first.recording_id)
    assert (row["isrc"], row["duration_ms"], row["date"], row["album"]) == ("GBAYE0000351", 200_000, "1999", "Alb")
    # a later ISRC lookup finds it by the filled-in code
    with catalog.transaction() as conn:
        assert find_recording(conn, RecordingFacts("x", isrc="GBAYE0000351"))[0] == first.recording_id


def test_fill_in_never_overwrites(catalog: Catalog) -> None:
    first = _new(catalog, RecordingFacts("Song", ("A",), mbid=MBID, duration_ms=1000, date="2001",
                                         album="Original", rights="owned"))
    _new(catalog, RecordingFacts("Song", ("A", "B"), mbid=MBID, duration_ms=2000, date="1990",
                                 album="Compilation", rights="cc-by-4.0"))
    row = _row(catalog, first.recording_id)
    assert (row["duration_ms"], row["date"], row["album"], row["rights"], row["artist"]) == (
        1000, "2001", "Original", "owned", "A")
    credits = catalog.execute("SELECT count(*) FROM recording_artist WHERE recording_id = ?",
                              (first.recording_id,)).fetchone()[0]
    assert credits == 1


def test_rights_replace_only_unknown(catalog: Catalog) -> None:
    first = _new(catalog, RecordingFacts("Song", ("A",), isrc="USRC17607839"))
    assert _row(catalog, first.recording_id)["rights"] == "unknown"
    _new(catalog, RecordingFacts("Song", ("A",), isrc="USRC17607839", rights="unknown"))
    assert _row(catalog, first.recording_id)["rights"] == "unknown"
    _new(catalog, RecordingFacts("Song", ("A",), isrc="USRC17607839", rights="cc0-1.0"))
    assert _row(catalog, first.recording_id)["rights"] == "cc0-1.0"


def test_isrc_already_taken_is_not_copied(catalog: Catalog) -> None:
    owner = _new(catalog, RecordingFacts("Song", ("A",), isrc="USRC17607839"))
    other = _new(catalog, RecordingFacts("Other", ("B",), mbid=MBID))
    # a source claiming both: the ISRC wins the match; the MBID is filled into it
    both = _new(catalog, RecordingFacts("Other", ("B",), mbid=MBID, isrc="USRC17607839"))
    assert both.recording_id == owner.recording_id
    assert _row(catalog, owner.recording_id)["mbid"] is None  # MBID belongs to `other` already
    assert _row(catalog, other.recording_id)["isrc"] is None


def test_name_and_duration_within_tolerance(catalog: Catalog) -> None:
    first = _new(catalog, RecordingFacts("Hey Jude", ("The Beatles",), duration_ms=431_000))
    near = _new(catalog, RecordingFacts("hey jude!", ("the beatles",),
                                        duration_ms=431_000 + DURATION_TOLERANCE_MS))
    far = _new(catalog, RecordingFacts("Hey Jude", ("The Beatles",),
                                       duration_ms=431_000 + DURATION_TOLERANCE_MS + 1),
               fallback="sa00000000000000aa")
    assert (near.recording_id, near.matched_by) == (first.recording_id, "name+duration")
    assert far.created and far.recording_id != first.recording_id


def test_name_match_prefers_closest_duration(catalog: Catalog) -> None:
    a = _new(catalog, RecordingFacts("Song", ("A",), duration_ms=100_000), fallback="sa01")
    b = _new(catalog, RecordingFacts("Song", ("A",), duration_ms=104_000), fallback="sa02")
    assert a.recording_id != b.recording_id
    hit = _new(catalog, RecordingFacts("Song", ("A",), duration_ms=103_000), fallback="sa03")
    assert hit.recording_id == b.recording_id


def test_unknown_duration_matches_by_name(catalog: Catalog) -> None:
    first = _new(catalog, RecordingFacts("Song", ("A",)))
    hit = _new(catalog, RecordingFacts("Song", ("A",), duration_ms=123_456), fallback="sa04")
    assert hit.recording_id == first.recording_id
    assert _row(catalog, first.recording_id)["duration_ms"] == 123_456


def test_title_alone_never_matches(catalog: Catalog) -> None:
    first = _new(catalog, RecordingFacts("Intro", (), duration_ms=60_000), fallback="sa05")
    again = _new(catalog, RecordingFacts("Intro", (), duration_ms=60_000), fallback="sa06")
    assert again.recording_id != first.recording_id


def test_credits_in_order_with_mbid_keys(catalog: Catalog) -> None:
    m = _new(catalog, RecordingFacts("Duet", ("Björk", "Thom Yorke"), artist_mbids=(MBID,)))
    rows = catalog.execute(
        "SELECT a.key, a.name, a.mbid FROM recording_artist ra JOIN artist a ON a.id = ra.artist_id"
        " WHERE ra.recording_id = ? ORDER BY ra.position", (m.recording_id,)).fetchall()
    assert [tuple(r) for r in rows] == [(MBID, "Björk", MBID), ("n:thom yorke", "Thom Yorke", None)]
    assert _row(catalog, m.recording_id)["artist"] == "Björk, Thom Yorke"
    assert artist_key("  AC/DC ") == "n:ac dc"


def test_album_keys_follow_the_shared_rule(catalog: Catalog) -> None:
    assert album_key(AlbumFacts("Abbey Road", mbid=MBID)) == "mb" + MBID.replace("-", "")
    assert album_key(AlbumFacts("Abbey Road", upc="0077774644129")) == "upc:0077774644129"
    assert album_key(AlbumFacts("Abbey Road", "The Beatles")) == derived_key("album", "The Beatles", "Abbey Road")
    with catalog.transaction() as conn:
        a1, k1 = upsert_album(conn, AlbumFacts("Abbey Road", "The Beatles"))
        a2, k2 = upsert_album(conn, AlbumFacts("Abbey Road", "The Beatles", date="1969", label="Apple"))
        a3, _ = upsert_album(conn, AlbumFacts("Abbey Road", "The Beatles", date="2019"))
    assert a1 == a2 == a3 and k1 == k2
    row = catalog.execute("SELECT date, label FROM album WHERE id = ?", (a1,)).fetchone()
    assert tuple(row) == ("1969", "Apple")


def test_track_per_album_position(catalog: Catalog) -> None:
    m = _new(catalog, RecordingFacts("Song", ("A",), isrc="USRC17607839"))
    with catalog.transaction() as conn:
        a1, k1 = upsert_album(conn, AlbumFacts("First", "A"))
        a2, k2 = upsert_album(conn, AlbumFacts("Best Of", "A"))
        t1 = upsert_track(conn, TrackFacts(m.recording_id, m.key, a1, k1, "Song", "A", 1))
        t2 = upsert_track(conn, TrackFacts(m.recording_id, m.key, a2, k2, "Song", "A", 7))
        t1b = upsert_track(conn, TrackFacts(m.recording_id, m.key, a1, k1, "Song", "A", 1))
    assert t1 != t2 and t1 == t1b
    assert catalog.scalar("SELECT count(*) FROM track WHERE recording_id = ?", (m.recording_id,)) == 2
