"""MusicBrainz JSON dump lines, plain and inside a real recording.tar.xz (streamed)."""

from __future__ import annotations

import io
import json
import lzma
import tarfile
from pathlib import Path

import pytest

from soundark.catalog.importers.musicbrainz import import_musicbrainz
from soundark.catalog.importers.tabular import import_catalog_file
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


def make_tarball(path: Path, payload: bytes, member: str = "mbdump/recording") -> Path:
    with tarfile.open(path, "w:xz") as tar:
        for name, data in (("TIMESTAMP", b"2024-01-01\n"), (member, payload)):
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
    assert tuple(rec) == ("GBAYE0100543", "GBAYE0100543", REC, "Under Pressure", "Queen, David Bowie",
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
    assert reasons["recording.tar.xz:5"] == "no recording id"
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
    with pytest.raises(BadInput, match="no mbdump/recording inside"):
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
