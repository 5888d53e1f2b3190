"""read_tags() / read_art(): every field from every format, written by real taggers (mutagen)."""

from __future__ import annotations

import base64
from pathlib import Path

import mutagen
import pytest
from mutagen import id3
from mutagen.mp4 import MP4Cover, MP4FreeForm

from soundark.media.synth import FORMATS, SourceTags, make_file, tiny_jpeg
from soundark.media.tags import MAX_VALUE_BYTES, TITLE_JOIN, read_art, read_tags
from soundark.model import TagSet

REC = "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"
REL = "1c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"
ART = tiny_jpeg()

FULL = SourceTags(
    title="Tïtle (Live)", artists=["AC/DC", "Björk"], album="Album", album_artist="Various",
    track_number=3, disc_number=2, date="2001-03-04", isrc="us-rc1-76-07839", label="Label",
    mb_recording_id=REC.upper(), mb_release_id=REL.replace("-", ""),
    replaygain_track_gain="-6.50 dB", replaygain_album_gain="+1.25 dB",
    license="https://creativecommons.org/licenses/by/4.0/", copyright="2001 Someone",
    art=ART, extra={"MOOD": "happy"},
)


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tags")
    return {fmt: make_file(folder / f"full_{fmt}", fmt, 0.3, tags=FULL) for fmt in FORMATS}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_field(tagged: dict[str, Path], fmt: str) -> None:
    t = read_tags(tagged[fmt])
    assert t.title == "Tïtle (Live)"
    assert t.artists == ("AC/DC", "Björk")  # multiple values in order; '/' is not a separator
    assert (t.album, t.album_artist) == ("Album", "Various")
    assert (t.track_number, t.disc_number) == (3, 2)
    assert t.date == "2001-03-04"
    assert t.isrc == "USRC17607839"
    assert t.label == "Label"
    assert t.mb_recording_id == REC
    assert t.mb_release_id == REL
    assert t.replaygain_track_gain == -6.5
    assert t.replaygain_album_gain == 1.25
    assert t.license == "https://creativecommons.org/licenses/by/4.0/"
    assert t.copyright == "2001 Someone"
    assert t.has_art is True
    assert t.extra["MOOD"] == "happy"
    for key in ("TITLE", "ARTIST", "ISRC", "METADATA_BLOCK_PICTURE", "APIC", "COVR"):
        assert key not in t.extra


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_art(tagged: dict[str, Path], fmt: str) -> None:
    assert read_art(tagged[fmt]) == (ART, "image/jpeg")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_untagged_file(tmp_path: Path, fmt: str) -> None:
    p = make_file(tmp_path / "plain", fmt, 0.2)
    t = read_tags(p)
    assert (t.title, t.artists, t.isrc, t.has_art) == (None, (), None, False)
    assert read_art(p) is None


@pytest.mark.parametrize("content", [b"", b"hello, this is text\n" * 10, tiny_jpeg(), bytes(range(256)) * 8])
@pytest.mark.parametrize("suffix", [".flac", ".mp3", ".m4a", ".ogg", ".wav"])
def test_junk_has_no_tags(tmp_path: Path, content: bytes, suffix: str) -> None:
    p = tmp_path / f"junk{suffix}"
    p.write_bytes(content)
    assert read_tags(p) == TagSet()
    assert read_art(p) is None


def test_mp3_id3_specifics(tmp_path: Path) -> None:
    p = make_file(tmp_path / "x", "mp3", 0.3)
    f = mutagen.File(str(p))
    if f.tags is None:
        f.add_tags()
    f.tags.add(id3.TPE1(encoding=3, text=["A", "B"]))
    f.tags.add(id3.TIT2(encoding=3, text=["Song"]))
    f.tags.add(id3.TRCK(encoding=3, text=["03/12"]))
    f.tags.add(id3.TYER(encoding=3, text=["1999"]))
    f.tags.add(id3.TSRC(encoding=3, text=["GBAYE0000351"]))
    f.tags.add(id3.UFID(owner="http://example.org", data=b"not-musicbrainz"))
    f.tags.add(id3.UFID(owner="http://musicbrainz.org", data=REC.encode()))
    for desc, value in [("MusicBrainz Artist Id", REL), ("MusicBrainz Album Artist Id", REC),
                        ("MusicBrainz Release Group Id", REL), ("REPLAYGAIN_TRACK_PEAK", "0.988"),
                        ("CATALOGNUMBER", "CAT-1"), ("ARTISTS", "A")]:
        f.tags.add(id3.TXXX(encoding=3, desc=desc, text=[value]))
    f.tags.add(id3.COMM(encoding=3, lang="eng", desc="", text=["a comment"]))
    f.tags.add(id3.PRIV(owner="x", data=b"\x00\x01binary"))
    f.tags.add(id3.TCON(encoding=3, text=["Rock"]))
    f.save(v2_version=3, v23_sep=None)  # ID3v2.3 with NUL-separated values
    t = read_tags(p)
    assert (t.title, t.artists, t.track_number, t.date, t.isrc) == ("Song", ("A", "B"), 3, "1999", "GBAYE0000351")
    assert (t.mb_recording_id, t.mb_artist_id, t.mb_album_artist_id, t.mb_release_group_id) == (REC, REL, REC, REL)
    assert t.replaygain_track_peak == 0.988
    assert t.extra["CATALOGNUMBER"] == "CAT-1"
    assert t.extra["COMMENT"] == "a comment"
    assert t.extra["GENRE"] == "Rock"
    assert all(isinstance(v, (str, list)) for v in t.extra.values())
    assert not any("PRIV" in k for k in t.extra)


def test_vorbis_case_multi_values_and_caps(tmp_path: Path) -> None:
    p = make_file(tmp_path / "x", "flac", 0.3)
    f = mutagen.File(str(p))
    f["title"] = ["Song"]
    f["Artist"] = ["One", "Two", "Three"]
    f["tracknumber"] = ["7/9"]
    f["date"] = ["2004-05-06T07:08:09"]
    f["MUSICBRAINZ_ARTISTID"] = [REC, REL]
    f["BIG"] = ["x" * (MAX_VALUE_BYTES * 2)]
    f["NULS"] = ["a\x00b"]
    f["GENRE"] = ["Jazz", "Funk"]
    f["ISRC"] = ["not an isrc"]
    f.save()
    t = read_tags(p)
    assert t.artists == ("One", "Two", "Three")
    assert t.track_number == 7
    assert t.date == "2004-05-06T07:08:09"
    assert t.mb_artist_id == REC and t.extra["MUSICBRAINZ_ARTISTID"] == [REC, REL]
    assert len(t.extra["BIG"].encode()) == MAX_VALUE_BYTES
    assert t.extra["NULS"] == ["a", "b"]  # NUL separates values (as in APEv2 and ID3v2.4)
    assert t.extra["GENRE"] == ["Jazz", "Funk"]
    assert t.isrc is None and t.extra["ISRC"] == "not an isrc"


def test_date_with_time_keeps_iso_prefix(tmp_path: Path) -> None:
    p = make_file(tmp_path / "x", "opus", 0.3, tags=SourceTags(date="2010-01-02 10:00"))
    assert read_tags(p).date == "2010-01-02"
    q = make_file(tmp_path / "y", "opus", 0.3, tags=SourceTags(date="circa 1920"))
    assert read_tags(q).date == "circa 1920"


def test_m4a_png_cover_and_binary_freeform(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(32)
    p = make_file(tmp_path / "x", "m4a", 0.3)
    f = mutagen.File(str(p))
    if f.tags is None:
        f.add_tags()
    f.tags["covr"] = [MP4Cover(png, imageformat=MP4Cover.FORMAT_PNG)]
    f.tags["----:com.apple.iTunes:BLOB"] = [MP4FreeForm(b"\xff\xfe\x00bin", dataformat=0)]
    f.tags["----:com.apple.iTunes:MusicBrainz Release Group Id"] = [MP4FreeForm(REL.encode())]
    f.tags["trkn"] = [(5, 10)]
    f.save()
    t = read_tags(p)
    assert t.has_art and t.track_number == 5 and t.mb_release_group_id == REL
    assert "BLOB" not in t.extra
    assert read_art(p) == (png, "image/png")


def test_ogg_picture_prefers_front_cover(tmp_path: Path) -> None:
    from mutagen.flac import Picture

    p = make_file(tmp_path / "x", "ogg", 0.3)
    f = mutagen.File(str(p))
    pics = []
    for kind, data in ((4, b"\x89PNG\r\n\x1a\nback"), (3, ART)):
        pic = Picture()
        pic.type, pic.mime, pic.data = kind, "", data
        pics.append(base64.b64encode(pic.write()).decode())
    f["METADATA_BLOCK_PICTURE"] = pics
    f.save()
    assert read_tags(p).has_art
    assert read_art(p) == (ART, "image/jpeg")  # front cover, mime sniffed from the bytes


def test_wavpack_apev2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mutagen.apev2 import BINARY, APEv2, APEValue

    from soundark.media import synth
    from soundark.media.probe import probe

    monkeypatch.setitem(synth.FORMATS, "wv", ("wv", "wavpack", "s16p", ".wv"))
    p = make_file(tmp_path / "x", "wv", 0.5)
    t = APEv2()
    t["Title"], t["Artist"], t["Track"], t["Year"] = "WV Song", "One\x00Two", "4/10", "1988"
    t["ISRC"], t["MUSICBRAINZ_TRACKID"], t["Album Artist"] = "USRC17607839", REC, "Both"
    t["Cover Art (Front)"] = APEValue(b"cover.jpg\x00" + ART, BINARY)
    t.save(str(p))
    tags = read_tags(p)
    assert (tags.title, tags.artists, tags.track_number, tags.date) == ("WV Song", ("One", "Two"), 4, "1988")
    assert (tags.isrc, tags.mb_recording_id, tags.album_artist, tags.has_art) == ("USRC17607839", REC, "Both", True)
    assert tags.extra == {}
    assert read_art(p) == (ART, "image/jpeg")
    facts = probe(p)
    assert (facts.codec, facts.lossless, facts.duration_ms) == ("wavpack", True, 500)


@pytest.mark.parametrize("fmt", ["flac", "ogg", "opus"])
def test_vorbis_several_titles_and_artists_are_read_whole(tmp_path: Path, fmt: str) -> None:
    p = make_file(tmp_path / "x", fmt, 0.3)
    f = mutagen.File(str(p))
    f["TITLE"] = ["Overture", "Main Theme"]
    f["ARTIST"] = ["Composer", "Orchestra", "Choir"]
    f.save()
    t = read_tags(p)
    assert t.title == "Overture" + TITLE_JOIN + "Main Theme"
    assert t.extra["TITLE"] == ["Overture", "Main Theme"]
    assert t.artists == ("Composer", "Orchestra", "Choir")


def test_id3v24_several_tpe1_and_tit2_values(tmp_path: Path) -> None:
    p = make_file(tmp_path / "x", "mp3", 0.3)
    f = mutagen.File(str(p))
    if f.tags is None:
        f.add_tags()
    f.tags.add(id3.TPE1(encoding=3, text=["Composer", "Orchestra"]))
    f.tags.add(id3.TIT2(encoding=3, text=["Overture", "Main Theme"]))
    f.save(v2_version=4)
    assert mutagen.File(str(p)).tags.version[:2] == (2, 4)
    t = read_tags(p)
    assert t.artists == ("Composer", "Orchestra")
    assert (t.title, t.extra["TITLE"]) == ("Overture / Main Theme", ["Overture", "Main Theme"])


def test_mp4_several_artist_and_title_atoms(tmp_path: Path) -> None:
    p = make_file(tmp_path / "x", "m4a", 0.3)
    f = mutagen.File(str(p))
    f["\xa9ART"] = ["Composer", "Orchestra"]
    f["\xa9nam"] = ["Overture", "Main Theme"]
    f.save()
    t = read_tags(p)
    assert t.artists == ("Composer", "Orchestra")
    assert t.title == "Overture / Main Theme"


def test_one_title_is_not_listed_twice(tmp_path: Path) -> None:
    p = make_file(tmp_path / "x", "flac", 0.3, tags=SourceTags(title="Only", artists=["A"]))
    t = read_tags(p)
    assert t.title == "Only" and "TITLE" not in t.extra
