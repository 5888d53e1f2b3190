"""MusicBrainz JSON: both official dumps (streamed tarballs laid out as published), plain lines,
web-service and search responses; entity detection, ISRC/MBID aliases, credits, validation.

The real samples in tests/data/musicbrainz/ (see its README) are web-service responses from
metabrainz/picard's test data; dump lines are the same objects on one line each.
"""

from __future__ import annotations

import io
import json
import lzma
import tarfile
from pathlib import Path

import pytest

from soundark.catalog.identifiers import resolve_recording_ids
from soundark.catalog.importers.musicbrainz import import_musicbrainz
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.catalog.match import RecordingFacts, find_recording
from soundark.catalog.search import search
from soundark.errors import BadInput, NotFound
from soundark.model import mbid_key

REC = "b1a9c0e9-d987-4042-ae91-78d6a3267d69"
ARTIST_A = "a74b1b7f-71a5-4011-9441-d0b5e4122711"
ARTIST_B = "5b11f4ce-a62d-471e-81fc-a69a8278c7da"
RELEASE = "7a5d4ce1-4c3b-4b1a-9d1b-2f2c3a5e6f70"


def recording(i: int = 0, **over) -> dict:
    line = {
        "id": REC if i == 0 else f"00000000-0000-4000-8000-{i:012d}",
        "title": "Under Pressure" if i == 0 else f"Song {i}",
        "length": 248000,
        "isrcs": ["GBAYE0100543", "GBAYE9900001"] if i == 0 else [],
        "first-release-date": "1981-10-26",
        "video": False,
        "artist-credit": [
            {"name": "Queen", "joinphrase": " & ", "artist": {"id": ARTIST_A, "name": "Queen"}},
            {"name": "David Bowie", "joinphrase": "", "artist": {"id": ARTIST_B, "name": "David Bowie"}},
        ],
        "releases": [{"id": RELEASE, "title": "Hot Space", "date": "1982-05-21"}],
    }
    line.update(over)
    return line


def dump_lines(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


DATA = Path(__file__).parent / "data" / "musicbrainz"


def make_tarball(path: Path, payload: bytes, member: str = "mbdump/recording") -> Path:
    """A tarball laid out as the published JSON dumps are (members in their order)."""
    members = [("COPYING", b"Creative Commons CC0 1.0 Universal\n"), ("README", b"MusicBrainz JSON dump\n"),
               ("REPLICATION_SEQUENCE", b"160000\n"), ("TIMESTAMP", b"2024-01-01 00:00:00.000000+00\n"),
               ("JSON_DUMPS_SCHEMA_NUMBER", b"1\n"), (member, payload)]
    with tarfile.open(path, "w:xz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_dump_line_becomes_a_recording_with_artists_and_album(catalog, tmp_path):
    path = tmp_path / "recording.jsonl"
    path.write_bytes(dump_lines([json.dumps(recording())]))
    report = import_musicbrainz(catalog, path, rights="owned")
    assert (report.new, report.rejected) == (1, 0)
    rec = catalog.execute("SELECT key, isrc, mbid, title, artist, album, duration_ms, date, rights"
                          " FROM recording").fetchone()
    assert tuple(rec) == ("GBAYE0100543", "GBAYE0100543", REC, "Under Pressure", "Queen & David Bowie",
                          "Hot Space", 248000, "1981-10-26", "owned")
    artists = [tuple(r) for r in catalog.execute(
        "SELECT a.key, a.name, a.mbid FROM recording_artist ra JOIN artist a ON a.id = ra.artist_id"
        " ORDER BY ra.position")]
    assert artists == [(ARTIST_A, "Queen", ARTIST_A), (ARTIST_B, "David Bowie", ARTIST_B)]
    album = catalog.execute("SELECT key, title, mbid FROM album").fetchone()
    assert tuple(album) == ("mb" + RELEASE.replace("-", ""), "Hot Space", RELEASE)


def test_tar_xz_dump_is_streamed_and_idempotent(catalog, tmp_path):
    lines = [json.dumps(recording(i)) for i in range(50)]
    path = make_tarball(tmp_path / "recording.tar.xz", dump_lines(lines))
    report = import_musicbrainz(catalog, path)
    assert (report.new, report.rejected) == (50, 0)
    assert catalog.scalar("SELECT count(*) FROM recording") == 50
    assert catalog.scalar("SELECT key FROM recording WHERE title = 'Song 7'") == mbid_key(
        "00000000-0000-4000-8000-000000000007")
    again = import_musicbrainz(catalog, path)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 50)
    assert catalog.scalar("SELECT count(*) FROM track") == 50
    assert not list(tmp_path.glob("mbdump*")), "nothing may be extracted to disk"


def test_bad_dump_lines_are_rejected(catalog, tmp_path):
    lines = [
        json.dumps(recording(1)),
        "{broken",
        json.dumps(recording(2, title=None)),
        json.dumps(recording(3, isrcs=["NOTANISRC"])),
        json.dumps({"title": "no id"}),
        json.dumps(recording(4, length="long")),
        json.dumps(recording(5)),
    ]
    path = make_tarball(tmp_path / "recording.tar.xz", dump_lines(lines))
    report = import_musicbrainz(catalog, path)
    assert (report.new, report.rejected) == (2, 5)
    reasons = {r.subject: r.reason for r in report.rejections}
    assert reasons["recording.tar.xz:2"].startswith("not valid JSON")
    assert reasons["recording.tar.xz:3"] == "no title"
    assert reasons["recording.tar.xz:4"] == "NOTANISRC: ISRC must have 12 characters, not 9"
    assert reasons["recording.tar.xz:5"] == "an unknown entity line, not a recording or release"
    assert "long" in reasons["recording.tar.xz:6"]


def test_catalog_rows_match_musicbrainz_recordings(catalog, tmp_path):
    path = tmp_path / "recording.json"
    path.write_bytes(dump_lines([json.dumps(recording())]))
    import_musicbrainz(catalog, path)
    rows = tmp_path / "rows.jsonl"
    # the recording's second ISRC: found through the MBID, not made a new recording
    rows.write_text(json.dumps({"title": "Under Pressure", "artists": ["Queen", "David Bowie"],
                                "isrc": "GBAYE9900001", "recording_mbid": REC, "album": "Greatest Hits II",
                                "listens": 99}) + "\n")
    report = import_catalog_file(catalog, rows)
    assert report.new == 1
    assert catalog.scalar("SELECT count(*) FROM recording") == 1
    assert catalog.scalar("SELECT listens FROM recording") == 99


def test_dump_errors(catalog, tmp_path):
    with pytest.raises(NotFound):
        import_musicbrainz(catalog, tmp_path / "missing.tar.xz")
    wrong = make_tarball(tmp_path / "artist.tar.xz", b"{}\n", member="mbdump/artist")
    with pytest.raises(BadInput, match="no mbdump/recording or mbdump/release inside"):
        import_musicbrainz(catalog, wrong)
    good = make_tarball(tmp_path / "cut.tar.xz", dump_lines([json.dumps(recording(i)) for i in range(200)]))
    cut = tmp_path / "damaged.tar.xz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(BadInput, match="not a readable tarball"):
        import_musicbrainz(catalog, cut)


def test_plain_xz_lines(catalog, tmp_path):
    path = tmp_path / "recording.jsonl.xz"
    path.write_bytes(lzma.compress(dump_lines([json.dumps(recording(i)) for i in range(3)])))
    assert import_musicbrainz(catalog, path).new == 3


# --- the release dump, entities, responses -----------------------------------------------------

def one_line(name: str) -> str:
    """A real web-service response (pretty-printed) as the dump writes it: one line."""
    return json.dumps(json.loads((DATA / name).read_text(encoding="utf-8")), ensure_ascii=False)


DARK_SIDE = "b84ee12a-09ef-421b-82de-0441a926375b"
CARELESS = "6c4f766f-3351-4c10-a53d-b119452c27b2"


def test_release_dump_gives_albums_tracks_discs_labels_and_barcodes(catalog, tmp_path):
    path = make_tarball(tmp_path / "release.tar.xz",
                        dump_lines([one_line("release_trimmed.json"), one_line("release_multidisc.json")]),
                        member="mbdump/release")
    report = import_musicbrainz(catalog, path)
    assert (report.new, report.rejected) == (17, 0)
    albums = {r[0]: tuple(r[1:]) for r in catalog.execute("SELECT mbid, title, artist, date, label, upc FROM album")}
    assert albums[DARK_SIDE] == ("The Dark Side of the Moon", "Pink Floyd", "1973-03-24", "Harvest", "123")
    assert albums[CARELESS] == ("ケアレス", "", "2021-09-15", None, "4547366518764")
    discs = catalog.execute("SELECT t.disc_number, count(*), max(t.track_number) FROM track t JOIN album a"
                            " ON a.id = t.album_id WHERE a.mbid = ? GROUP BY 1 ORDER BY 1", (CARELESS,)).fetchall()
    assert [tuple(d) for d in discs] == [(1, 4, 4), (2, 3, 3)]
    # the track keeps the title as printed on the release; the recording keeps its own
    assert catalog.scalar("SELECT t.title FROM track t JOIN recording r ON r.id = t.recording_id"
                          " WHERE r.mbid = 'e7434e09-727e-4962-aa20-6c8b38431d31'") == "Bye-Bye Butterfly"
    assert catalog.scalar("SELECT title FROM recording WHERE mbid = 'e7434e09-727e-4962-aa20-6c8b38431d31'") \
        == "Bye\u2010Bye Butterfly"
    assert catalog.scalar("SELECT artist FROM track WHERE title = 'Money'") == "Pink Floyd"
    again = import_musicbrainz(catalog, path)
    assert (again.new, again.updated, again.unchanged, again.rejected) == (0, 0, 17, 0)
    assert not list(tmp_path.glob("mbdump*")), "nothing may be extracted to disk"


def test_both_dumps_in_one_command_share_recordings(catalog, tmp_path):
    rel = make_tarball(tmp_path / "release.tar.xz", dump_lines([json.dumps(release_with(
        [track(1, "Under Pressure", REC, ["GBAYE0100543"])]))]), member="mbdump/release")
    rec = make_tarball(tmp_path / "recording.tar.xz", dump_lines([json.dumps(recording())]))
    report = import_musicbrainz(catalog, [rel, rec])
    assert report.rejected == 0
    assert catalog.scalar("SELECT count(*) FROM recording") == 1
    assert catalog.scalar("SELECT count(*) FROM album") == 1  # the recording's first release is that release
    assert catalog.scalar("SELECT isrc FROM isrc_alias") == "GBAYE9900001"


def release_with(tracks: list[dict], **over) -> dict:
    line = {"id": RELEASE, "title": "Hot Space", "date": "1982-05-21", "barcode": "",
            "label-info": [{"catalog-number": "EMA 797", "label": {"id": ARTIST_B, "name": "EMI"}}],
            "artist-credit": [{"name": "Queen", "joinphrase": "", "artist": {"id": ARTIST_A, "name": "Queen"}}],
            "release-group": {"id": ARTIST_A, "primary-type": "Album"},
            "media": [{"position": 1, "format": "CD", "tracks": tracks}]}
    line.update(over)
    return line


def track(position: int, title: str, mbid: str, isrcs: list[str], **rec_over) -> dict:
    rec = {"id": mbid, "title": title, "length": 248000, "video": False, "isrcs": isrcs}
    rec.update(rec_over)
    return {"id": f"99999999-0000-4000-8000-{position:012d}", "position": position, "number": str(position),
            "title": title, "length": 248000, "recording": rec}


def test_each_line_is_read_as_the_entity_it_is(catalog, tmp_path):
    path = tmp_path / "recording.jsonl"  # named for recordings, but holds a release and others
    path.write_bytes(dump_lines([
        json.dumps(release_with([track(1, "Staying Power", "00000000-0000-4000-8000-000000000001", [])])),
        json.dumps({"id": ARTIST_A, "name": "Queen", "sort-name": "Queen", "type": "Group"}),
        json.dumps({"id": ARTIST_B, "name": "EMI", "sort-name": "EMI", "label-code": 542}),
        json.dumps({"id": RELEASE, "title": "Hot Space", "primary-type": "Album", "secondary-types": []}),
        json.dumps({"id": REC, "title": "Under Pressure", "iswcs": [], "languages": ["eng"]}),
        json.dumps(recording()),
    ]))
    report = import_musicbrainz(catalog, path)
    reasons = {r.subject: r.reason for r in report.rejections}
    assert reasons == {
        "recording.jsonl:2": "an artist line, not a recording or release",
        "recording.jsonl:3": "a label line, not a recording or release",
        "recording.jsonl:4": "a release-group line, not a recording or release",
        "recording.jsonl:5": "a work line, not a recording or release",
    }
    assert report.new == 2
    assert catalog.scalar("SELECT count(*) FROM track WHERE track_number = 1 AND disc_number = 1") == 1
    assert catalog.scalar("SELECT label FROM album WHERE mbid = ?", (RELEASE,)) == "EMI"


def test_pretty_printed_lookup_and_search_responses(catalog, tmp_path):
    report = import_musicbrainz(catalog, [DATA / "recording_trimmed.json", DATA / "release_multidisc.json"])
    assert (report.new, report.rejected) == (8, 0)
    assert catalog.scalar("SELECT title FROM recording WHERE isrc = 'GBAHS1400099'") == "Thinking Out Loud"
    found = tmp_path / "search.json"  # the shape of /ws/2/recording?query=...&fmt=json
    hits = [json.loads((DATA / "recording_multi_artists_1.json").read_text(encoding="utf-8")),
            {"id": ARTIST_A, "name": "not a recording", "sort-name": "x"}]
    found.write_text(json.dumps({"created": "2024-01-01T00:00:00.000Z", "count": 2, "offset": 0,
                                 "recordings": hits}, indent=2))
    report = import_musicbrainz(catalog, found)
    assert (report.new, report.rejected) == (1, 1)
    assert report.rejections[0].subject == "search.json:2"


def test_credits_keep_artist_names_and_the_credited_display(catalog):
    import_musicbrainz(catalog, DATA / "recording_multi_artists_1.json")
    display = "Ed Sheeran feat. Meek Mill & A Boogie Wit da Hoodie"
    assert catalog.scalar("SELECT artist FROM recording") == display
    assert catalog.scalar("SELECT artist FROM track") == display
    credits = [tuple(r) for r in catalog.execute(
        "SELECT a.name, a.mbid FROM recording_artist ra JOIN artist a ON a.id = ra.artist_id ORDER BY ra.position")]
    assert credits == [("Ed Sheeran", "b8a7c51f-362c-4dcb-a259-bc6e0095f0a6"),
                       ("Meek Mill", "31bcadcc-e1da-4cad-bec8-2f4f1d41b095"),
                       ("A Boogie Wit da Hoodie", "c1708d03-8a66-46eb-848e-fe0d233ffb39")]
    assert [h.title for h in search(catalog, "meek mill")] == ["1000 Nights"]


def test_a_credited_name_is_shown_but_the_artist_keeps_its_own(catalog, tmp_path):
    path = tmp_path / "r.jsonl"
    credit = [{"name": "Freddie", "joinphrase": " with ", "artist": {"id": ARTIST_A, "name": "Freddie Mercury"}},
              {"name": "Bowie", "joinphrase": "", "artist": {"id": ARTIST_B, "name": "David Bowie"}}]
    path.write_bytes(dump_lines([json.dumps(recording(**{"artist-credit": credit}))]))
    import_musicbrainz(catalog, path)
    assert catalog.scalar("SELECT artist FROM recording") == "Freddie with Bowie"
    assert [r[0] for r in catalog.execute("SELECT name FROM artist ORDER BY id")] == ["Freddie Mercury",
                                                                                      "David Bowie"]


# --- identifiers -------------------------------------------------------------------------------

def test_a_recording_is_found_by_each_of_its_isrcs(catalog, tmp_path):
    path = tmp_path / "recording.jsonl"
    path.write_bytes(dump_lines([json.dumps(recording(isrcs=["GBAYE0100543", "GBAYE9900001", "USRC17607839"]))]))
    report = import_musicbrainz(catalog, path)
    assert report.counts == {"isrc_aliases_added": 2}
    rid = catalog.scalar("SELECT id FROM recording")
    assert [tuple(r) for r in catalog.execute("SELECT isrc, recording_id FROM isrc_alias ORDER BY isrc")] == [
        ("GBAYE9900001", rid), ("USRC17607839", rid)]
    for code in ("GBAYE0100543", "GB-AYE-99-00001", "USRC17607839"):
        assert [h.title for h in search(catalog, code)] == ["Under Pressure"], code
        assert find_recording(catalog.conn, RecordingFacts(title="?", isrc=code))[0] == rid
    assert resolve_recording_ids(catalog.conn, isrcs=["USRC17607839", "XX0000000000"], mbids=[REC]) == {
        "USRC17607839": rid, REC: rid}
    # a catalog row naming only the second ISRC joins the recording, not a new one
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"title": "Under Pressure", "artists": ["Queen"], "isrc": "USRC17607839",
                                "listens": 5}) + "\n")
    import_catalog_file(catalog, rows)
    assert catalog.scalar("SELECT count(*) FROM recording") == 1
    assert import_musicbrainz(catalog, path).counts == {"joined_by_isrc": 1}  # no alias added twice


SECOND = "00000000-0000-4000-8000-00000000aaaa"
THIRD = "00000000-0000-4000-8000-00000000bbbb"


def test_recordings_sharing_an_isrc_become_aliases_and_are_reported(catalog, tmp_path):
    first = tmp_path / "recording.jsonl"
    first.write_bytes(dump_lines([json.dumps(recording()),
                                  json.dumps(recording(id=SECOND, isrcs=["GBAYE0100543"]))]))
    report = import_musicbrainz(catalog, first)
    later = tmp_path / "later.jsonl"  # in a later file: shares the recording's second ISRC
    later.write_bytes(dump_lines([json.dumps(recording(id=THIRD, isrcs=["GBAYE9900001"]))]))
    report_later = import_musicbrainz(catalog, later)
    assert catalog.scalar("SELECT count(*) FROM recording") == 1
    rid = catalog.scalar("SELECT id FROM recording")
    aliases = [tuple(r) for r in catalog.execute("SELECT mbid, recording_id, reason, source FROM mbid_alias"
                                                 " ORDER BY mbid")]
    assert aliases == [(SECOND, rid, "shares ISRC GBAYE0100543", "musicbrainz:recording.jsonl:2"),
                       (THIRD, rid, "shares ISRC GBAYE9900001", "musicbrainz:later.jsonl:1")]
    assert [(m.subject, m.recording, m.rule) for m in report.merges + report_later.merges] == [
        ("recording.jsonl:2", "GBAYE0100543", "isrc"), ("later.jsonl:1", "GBAYE0100543", "isrc")]
    assert SECOND in report.merges[0].detail and REC in report.merges[0].detail
    assert report.counts["mbid_aliases_added"] == 1
    for mbid in (REC, SECOND, THIRD):
        assert find_recording(catalog.conn, RecordingFacts(title="?", mbid=mbid))[0] == rid
    assert resolve_recording_ids(catalog.conn, mbids=[SECOND, THIRD.upper()]) == {SECOND: rid, THIRD: rid}
    again = import_musicbrainz(catalog, [first, later])
    assert (again.new, again.updated, again.merged) == (0, 0, 0)


def test_a_shared_further_isrc_keeps_two_recordings_apart_with_a_warning(catalog, tmp_path):
    path = tmp_path / "recording.jsonl"
    path.write_bytes(dump_lines([json.dumps(recording(isrcs=["GBAYE0100543"])),
                                 json.dumps(recording(id=SECOND, isrcs=["USRC17607839", "GBAYE0100543"]))]))
    report = import_musicbrainz(catalog, path)
    assert catalog.scalar("SELECT count(*) FROM recording") == 2
    assert report.counts == {"isrcs_shared_kept_apart": 1}
    assert report.warnings[0].subject == "recording.jsonl:2"
    assert "GBAYE0100543" in report.warnings[0].reason


# --- validation --------------------------------------------------------------------------------

BAD = [
    ({"length": "abc"}, "length 'abc' is not a whole number of milliseconds"),
    ({"length": 1.5}, "length 1.5 is not a whole number of milliseconds"),
    ({"length": -1}, "length -1 is not a whole number of milliseconds"),
    ({"length": True}, "length True is not a whole number of milliseconds"),
    ({"first-release-date": "2001-13"}, "first-release-date '2001-13' is not a date (YYYY, YYYY-MM or YYYY-MM-DD)"),
    ({"first-release-date": "2001-02-30"},
     "first-release-date '2001-02-30' is not a date (YYYY, YYYY-MM or YYYY-MM-DD)"),
    ({"first-release-date": 2001}, "first-release-date 2001 is not a date (YYYY, YYYY-MM or YYYY-MM-DD)"),
    ({"isrcs": "GBAYE0100543"}, "isrcs 'GBAYE0100543' is not a list of ISRCs"),
    ({"isrcs": [12]}, "isrcs [12] is not a list of ISRCs"),
    ({"title": 5}, "title 5 is not text"),
    ({"title": "  "}, "no title"),
    ({"id": "not-a-uuid"}, "recording id 'not-a-uuid' is not a MusicBrainz ID (a UUID)"),
    ({"artist-credit": "Queen"}, "artist-credit is not a list of credits"),
    ({"releases": [{"id": RELEASE, "title": ["Hot Space"]}]}, "release title ['Hot Space'] is not text"),
]


@pytest.mark.parametrize(("change", "reason"), BAD, ids=[r for _, r in BAD])
def test_a_malformed_recording_is_rejected_with_its_reason(catalog, tmp_path, change, reason):
    path = tmp_path / "recording.jsonl"
    path.write_bytes(dump_lines([json.dumps(recording(1)), json.dumps(recording(2, **change)),
                                 json.dumps(recording(3))]))
    report = import_musicbrainz(catalog, path)
    assert (report.new, report.rejected) == (2, 1)
    assert (report.rejections[0].subject, report.rejections[0].reason) == ("recording.jsonl:2", reason)
    assert catalog.scalar("SELECT count(*) FROM recording WHERE typeof(duration_ms) NOT IN ('integer', 'null')"
                          " OR date GLOB '*[^0-9-]*'") == 0


def test_a_malformed_track_is_rejected_alone_and_a_malformed_release_whole(catalog, tmp_path):
    good = [track(1, "Staying Power", "00000000-0000-4000-8000-000000000001", []),
            track(2, "Dancer", "00000000-0000-4000-8000-000000000002", [], length="2:00"),
            track(3, "Back Chat", "00000000-0000-4000-8000-000000000003", ["GBAYE0100543"])]
    path = tmp_path / "release.jsonl"
    path.write_bytes(dump_lines([json.dumps(release_with(good)),
                                 json.dumps(release_with(good, id=SECOND, date="1982-5-21")),
                                 json.dumps(release_with(good, id=THIRD, barcode=123))]))
    report = import_musicbrainz(catalog, path)
    assert [(r.subject, r.reason) for r in report.rejections] == [
        ("release.jsonl:1", "medium 1 track 2: length '2:00' is not a whole number of milliseconds"),
        ("release.jsonl:2", "date '1982-5-21' is not a date (YYYY, YYYY-MM or YYYY-MM-DD)"),
        ("release.jsonl:3", "barcode 123 is not text"),
    ]
    assert report.new == 2


def test_cli_imports_several_files_into_one_summary(archive, tmp_path):
    from typer.testing import CliRunner

    from soundark.cli import app

    result = CliRunner().invoke(app, ["import", "musicbrainz", str(DATA / "recording_trimmed.json"),
                                      str(DATA / "release_trimmed.json"), "-a", str(archive.root), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert (out["new"], out["rejected"]) == (11, 0)
