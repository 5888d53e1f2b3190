"""scan_directory(): real files of every format into a real catalog; rescans, rejections, matching."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mutagen
import pytest

from soundark.catalog import Catalog
from soundark.catalog.importers import scan as scan_module
from soundark.catalog.importers.scan import names_from_path, scan_directory
from soundark.media.probe import ENCRYPTED_REASON
from soundark.media.synth import FORMATS, SourceTags, Voice, make_file, tiny_jpeg
from soundark.model import Progress

MBID = "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"
REL = "1c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"

EXPECTED_CODEC = {"flac": "flac", "wav": "pcm_s16le", "wav24": "pcm_s24le", "wavf32": "pcm_f32le",
                  "aiff": "pcm_s16be", "ogg": "vorbis", "opus": "opus", "mp3": "mp3", "m4a": "aac"}


class Notes(Progress):
    def __init__(self, stop_after: int | None = None) -> None:
        self.notes: list[str] = []
        self.done = 0
        self.total: int | None = None
        self.stop_after = stop_after

    def start(self, total: int | None, description: str = "", unit: str = "items") -> None:
        self.total = total

    def advance(self, n: int = 1, item: str = "", nbytes: int = 0) -> None:
        self.done += n

    def note(self, message: str) -> None:
        self.notes.append(message)

    def cancelled(self) -> bool:
        return self.stop_after is not None and self.done >= self.stop_after


def _rows(catalog: Catalog, sql: str, params: tuple = ()) -> list[dict]:
    return [dict(r) for r in catalog.execute(sql, params).fetchall()]


def _file(catalog: Catalog, path: Path) -> dict:
    rows = _rows(catalog, "SELECT * FROM source_file WHERE path = ?", (str(path.resolve()),))
    assert rows, f"{path} not in the catalog"
    return rows[0]


def test_every_format_imports_tags_and_facts(catalog: Catalog, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    for n, fmt in enumerate(sorted(FORMATS), start=1):
        tags = SourceTags(title=f"Song {fmt}", artists=["Ann", "Bob"], album="Formats", album_artist="Ann",
                          track_number=n, date="2020-01-02", isrc=f"USRC1760{n:04d}", license="cc-by-4.0",
                          copyright="2020 Ann", art=tiny_jpeg())
        make_file(lib / f"{n:02d} {fmt}", fmt, 1.0, tags=tags)
    report = scan_directory(catalog, lib, rights="cc-by-4.0")
    assert (report.new, report.rejected, report.updated, report.unchanged) == (len(FORMATS), 0, 0, 0)
    for n, fmt in enumerate(sorted(FORMATS), start=1):
        path = lib / f"{n:02d} {fmt}{FORMATS[fmt][3]}"
        row = _file(catalog, path)
        assert row["status"] == "ok" and row["codec"] == EXPECTED_CODEC[fmt]
        assert row["sample_rate"] == (48000 if fmt == "opus" else 44100) and row["channels"] == 2
        assert abs(row["duration_ms"] - 1000) <= 47
        assert (row["license"], row["copyright"], row["has_art"], row["rights"]) == (
            "cc-by-4.0", "2020 Ann", 1, "cc-by-4.0")
        assert len(row["sha256"]) == 64 and row["size"] == path.stat().st_size
        assert json.loads(row["tags"])["isrc"] == f"USRC1760{n:04d}"
        rec = _rows(catalog, "SELECT * FROM recording WHERE id = ?", (row["recording_id"],))[0]
        assert (rec["key"], rec["title"], rec["artist"], rec["album"], rec["rights"]) == (
            f"USRC1760{n:04d}", f"Song {fmt}", "Ann, Bob", "Formats", "cc-by-4.0")
        track = _rows(catalog, "SELECT * FROM track WHERE id = ?", (row["track_id"],))[0]
        assert (track["recording_id"], track["track_number"]) == (row["recording_id"], n)
    assert catalog.scalar("SELECT count(*) FROM album") == 1
    assert catalog.scalar("SELECT count(*) FROM artist") == 2
    assert catalog.scalar("SELECT count(*) FROM recording_fts WHERE recording_fts MATCH 'formats'") == len(FORMATS)


def test_untagged_files_are_named_from_the_path(catalog: Catalog, tmp_path: Path) -> None:
    lib = tmp_path / "Music"
    (lib / "Some Artist" / "Great_Album").mkdir(parents=True)
    make_file(lib / "Some Artist" / "Great_Album" / "03 - The_First_Song", "flac", 0.5)
    (lib / "Loose").mkdir()
    make_file(lib / "Loose" / "Other Band - Hit", "ogg", 0.5)
    make_file(lib / "07. Lonely.mp3", "mp3", 0.5)
    report = scan_directory(catalog, lib)
    assert report.new == 3, report.as_dict()
    recs = {r["title"]: r for r in _rows(catalog, "SELECT * FROM recording")}
    assert (recs["The First Song"]["artist"], recs["The First Song"]["album"]) == ("Some Artist", "Great Album")
    assert (recs["Hit"]["artist"], recs["Hit"]["album"]) == ("Other Band", "Loose")
    assert (recs["Lonely"]["artist"], recs["Lonely"]["album"]) == ("", "")  # "Music" is generic
    numbers = {r["title"]: r["track_number"] for r in _rows(catalog, "SELECT * FROM track")}
    assert numbers == {"The First Song": 3, "Hit": None, "Lonely": 7}


@pytest.mark.parametrize("name, depth, expected", [
    ("A/B/01 - Title.flac", 2, ("Title", 1, "B", "A")),
    ("A/B/1-05 Title.flac", 2, ("Title", 5, "B", "A")),
    ("B/01.Title_Two.mp3", 1, ("Title Two", 1, "B", None)),
    ("B/Artist - Title.mp3", 1, ("Title", None, "B", "Artist")),
    ("B/1979.flac", 1, ("1979", None, "B", None)),
    ("B/99 Luftballons.flac", 1, ("Luftballons", 99, "B", None)),
])
def test_names_from_path(name: str, depth: int, expected: tuple) -> None:
    assert names_from_path(Path("/music") / name, depth) == expected


def test_rescan_skips_unchanged_and_rereads_changed(catalog: Catalog, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    a = make_file(lib / "a", "flac", 0.5, tags=SourceTags(title="A", artists=["X"]))
    b = make_file(lib / "b", "mp3", 0.5, tags=SourceTags(title="B", artists=["X"]))
    (lib / "bad.flac").write_text("not audio")
    assert scan_directory(catalog, lib).new == 2
    before = _file(catalog, b)

    reads: list[str] = []
    real = scan_module.read_file
    monkeypatch.setattr(scan_module, "read_file", lambda p, *a: reads.append(str(p)) or real(p, *a))
    again = scan_directory(catalog, lib)
    assert (again.new, again.updated, again.unchanged, again.rejected) == (0, 0, 2, 1)
    assert again.rejections[0].reason.startswith("not audio")
    assert reads == []

    f = mutagen.File(str(b))
    f.tags.add(mutagen.id3.TALB(encoding=3, text=["New Album"]))
    f.save()
    os.utime(b, ns=(before["mtime_ns"] + 10**9, before["mtime_ns"] + 10**9))
    third = scan_directory(catalog, lib)
    assert (third.new, third.updated, third.unchanged, third.rejected) == (0, 1, 1, 1)
    assert reads == [str(b.resolve())]
    after = _file(catalog, b)
    assert after["sha256"] != before["sha256"] and after["recording_id"] == before["recording_id"]
    assert json.loads(after["tags"])["album"] == "New Album"
    assert _file(catalog, a)["scanned_at"] <= after["scanned_at"]


def _cut(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def _rewrite_sample_entry(src: Path, dst: Path, fourcc: bytes) -> Path:
    data = src.read_bytes()
    at = data.find(b"stsd")
    entry = at + 4 + 8 + 4  # past 'stsd', version/flags + count, the entry's size
    assert data[entry:entry + 4] == b"mp4a"
    dst.write_bytes(data[:entry] + fourcc + data[entry + 4:])
    return dst


def test_bad_files_are_rejected_and_good_ones_import(catalog: Catalog, tmp_path: Path) -> None:
    src, lib = tmp_path / "src", tmp_path / "lib"
    src.mkdir()
    lib.mkdir()
    good = [make_file(lib / f"good_{fmt}", fmt, 1.0, tags=SourceTags(title=fmt, artists=["X"]))
            for fmt in ("flac", "mp3", "m4a")]
    (lib / "zero.flac").write_bytes(b"")
    (lib / "text.flac").write_text("just some text, honestly\n" * 40)
    (lib / "cover.mp3").write_bytes(tiny_jpeg())
    for fmt in ("flac", "mp3", "wav"):
        _cut(make_file(src / fmt, fmt, 2.0), lib / f"cut_{fmt}{FORMATS[fmt][3]}")
    m4a = make_file(src / "m4a", "m4a", 1.0)
    for fourcc in (b"enca", b"drms"):
        _rewrite_sample_entry(m4a, lib / f"drm_{fourcc.decode()}.m4a", fourcc)
    (lib / "archive.zip").write_bytes(b"PK\x03\x04" + bytes(100))
    for sidecar in ("folder.jpg", "notes.txt", "rip.log", "album.cue", "info.nfo", "list.m3u", "book.pdf"):
        (lib / sidecar).write_bytes(tiny_jpeg())
    (lib / ".hidden.flac").write_text("hidden files are not looked at")

    progress = Notes()
    report = scan_directory(catalog, lib, progress=progress)
    reasons = {Path(r.subject).name: r.reason for r in report.rejections}
    assert report.new == 3
    assert set(reasons) == {"zero.flac", "text.flac", "cover.mp3", "cut_flac.flac", "cut_mp3.mp3",
                            "cut_wav.wav", "drm_enca.m4a", "drm_drms.m4a", "archive.zip"}
    assert reasons["zero.flac"] == "empty file (0 bytes)"
    assert reasons["text.flac"].startswith("not audio")
    assert reasons["cover.mp3"].startswith("not audio")
    for fmt in ("flac", "mp3", "wav"):
        assert reasons[f"cut_{fmt}{FORMATS[fmt][3]}"].startswith("truncated")
    assert reasons["drm_enca.m4a"] == reasons["drm_drms.m4a"] == ENCRYPTED_REASON
    assert len(progress.notes) == len(reasons)
    assert all(": " in note for note in progress.notes)
    assert progress.total == 3 + len(reasons)  # sidecars and hidden files are not even counted
    rejected = _rows(catalog, "SELECT * FROM source_file WHERE status = 'rejected'")
    assert len(rejected) == len(reasons)
    assert all(r["error"] and r["recording_id"] is None for r in rejected)
    assert {r["path"] for r in _rows(catalog, "SELECT path FROM source_file WHERE status = 'ok'")} == {
        str(p.resolve()) for p in good}


def test_shared_isrc_is_one_recording_on_two_albums(catalog: Catalog, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    for album, fmt, n in (("First Album", "flac", 4), ("Greatest Hits", "mp3", 1)):
        (lib / album).mkdir(parents=True)
        make_file(lib / album / "song", fmt, 1.0, tags=SourceTags(
            title="The Song", artists=["Band"], album=album, track_number=n, isrc="GB-AYE-00-00351"))
    report = scan_directory(catalog, lib)
    assert report.new == 2
    assert catalog.scalar("SELECT count(*) FROM recording") == 1
    assert catalog.scalar("SELECT key FROM recording") == "GBAYE0000351"
    tracks = _rows(catalog, "SELECT t.track_number, a.title FROM track t JOIN album a ON a.id = t.album_id"
                            " ORDER BY a.title")
    assert [(t["track_number"], t["title"]) for t in tracks] == [(4, "First Album"), (1, "Greatest Hits")]
    assert len({r["recording_id"] for r in _rows(catalog, "SELECT recording_id FROM source_file")}) == 1


def test_mbid_match_joins_a_catalog_recording(catalog: Catalog, tmp_path: Path) -> None:
    catalog.execute("INSERT INTO recording (key, mbid, title, artist, rights) VALUES (?, ?, ?, ?, ?)",
                    ("mb" + MBID.replace("-", ""), MBID, "Catalog Title", "Catalog Artist", "unknown"))
    lib = tmp_path / "lib"
    lib.mkdir()
    make_file(lib / "x", "opus", 1.0, tags=SourceTags(title="File Title", artists=["Someone"],
                                                       mb_recording_id=MBID, mb_release_id=REL,
                                                       album="Rel", isrc="USRC17607839"))
    assert scan_directory(catalog, lib, rights="owned").new == 1
    recs = _rows(catalog, "SELECT * FROM recording")
    assert len(recs) == 1
    rec = recs[0]
    assert (rec["title"], rec["artist"], rec["isrc"], rec["rights"]) == (
        "Catalog Title", "Catalog Artist", "USRC17607839", "owned")
    assert abs(rec["duration_ms"] - 1000) <= 21
    assert catalog.scalar("SELECT key FROM album") == "mb" + REL.replace("-", "")


def test_artist_title_duration_match(catalog: Catalog, tmp_path: Path) -> None:
    catalog.execute("INSERT INTO recording (key, title, artist, duration_ms, match_key) VALUES"
                    " ('sa01', 'Blue Song', 'The Band', 4000, ?), ('sa02', 'Red Song', 'The Band', 1000, ?)",
                    ("the band\x1fblue song", "the band\x1fred song"))
    lib = tmp_path / "lib"
    lib.mkdir()
    # blue: 2.5 s from 'Blue Song' (a match); red: 3.5 s from 'Red Song' (a new recording);
    # red_long: 3.2 s from 'Red Song' but 0.3 s from the new one, which it joins
    make_file(lib / "blue", "flac", 1.5, tags=SourceTags(title="Blue song", artists=["the band"]))
    make_file(lib / "red", "flac", 4.5, tags=SourceTags(title="RED SONG", artists=["The Band"]))
    make_file(lib / "red_long", "flac", 4.2, voice=Voice(seed=1),
              tags=SourceTags(title="Red Song", artists=["The Band"]))
    report = scan_directory(catalog, lib)
    assert report.new == 3
    by_name = {Path(r["path"]).stem: r["recording_id"] for r in _rows(catalog, "SELECT * FROM source_file")}
    keys = {r["id"]: r["key"] for r in _rows(catalog, "SELECT id, key FROM recording")}
    assert keys[by_name["blue"]] == "sa01"           # 2.5 s apart: within 3 s
    assert keys[by_name["red"]] != "sa02"            # 3.5 s apart: a different recording
    assert keys[by_name["red_long"]] == keys[by_name["red"]]  # 0.3 s from the new one
    assert catalog.scalar("SELECT count(*) FROM recording") == 3


def test_idempotent(catalog: Catalog, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    (lib / "Artist" / "Album").mkdir(parents=True)
    for n, fmt in enumerate(("flac", "ogg", "mp3"), start=1):
        make_file(lib / "Artist" / "Album" / f"{n:02d} - t{n}", fmt, 0.5,
                  tags=SourceTags(artists=["A", "B"]) if n == 2 else None)
    tables = ("recording", "album", "track", "artist", "recording_artist", "source_file")

    def counts() -> dict[str, int]:
        return {t: catalog.scalar(f"SELECT count(*) FROM {t}") for t in tables}

    scan_directory(catalog, lib)
    first = counts()
    # touch every file: same bytes, new mtime -> re-read, but nothing is duplicated
    for p in (lib / "Artist" / "Album").iterdir():
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    report = scan_directory(catalog, lib)
    assert report.updated == 3 and counts() == first
    assert first["recording"] == 3 and first["album"] == 1 and first["artist"] == 3


def test_symlinked_directories_are_not_followed(catalog: Catalog, tmp_path: Path) -> None:
    outside, lib = tmp_path / "outside", tmp_path / "lib"
    outside.mkdir()
    lib.mkdir()
    make_file(outside / "elsewhere", "flac", 0.3)
    make_file(lib / "here", "flac", 0.3)
    (lib / "link").symlink_to(outside, target_is_directory=True)
    (lib / "loop").symlink_to(lib, target_is_directory=True)
    report = scan_directory(catalog, lib)
    assert (report.new, report.rejected) == (1, 0)


def test_cancelled_scan_keeps_commits_and_resumes(catalog: Catalog, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_module, "BATCH_FILES", 2)
    lib = tmp_path / "lib"
    lib.mkdir()
    for n in range(6):
        make_file(lib / f"{n:02d} - song {n}", "flac", 0.2, voice=Voice(seed=n), tags=SourceTags(
            title=f"Song {n}", artists=["X"], isrc=f"USRC1760{n:04d}"))
    first = scan_directory(catalog, lib, progress=Notes(stop_after=3))
    assert 0 < first.new < 6
    assert catalog.scalar("SELECT count(*) FROM source_file") == first.new
    rest = scan_directory(catalog, lib)
    assert (rest.unchanged, rest.new) == (first.new, 6 - first.new)
    assert catalog.scalar("SELECT count(*) FROM recording") == 6


def test_file_that_is_fixed_later(catalog: Catalog, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    target = lib / "song.flac"
    target.write_text("placeholder")
    assert scan_directory(catalog, lib).rejected == 1
    make_file(tmp_path / "real", "flac", 0.5).replace(target)
    report = scan_directory(catalog, lib)
    assert (report.updated, report.rejected) == (1, 0)
    row = _file(catalog, target)
    assert row["status"] == "ok" and row["error"] is None and row["recording_id"]


def test_missing_root(catalog: Catalog, tmp_path: Path) -> None:
    from soundark.errors import BadInput

    with pytest.raises(BadInput, match="not a folder"):
        scan_directory(catalog, tmp_path / "nope")



def test_identical_untagged_copies_share_a_recording(catalog: Catalog, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    original = make_file(lib / "copy one", "flac", 0.4)
    (lib / "copy two.flac").write_bytes(original.read_bytes())
    assert scan_directory(catalog, lib).new == 2
    assert catalog.scalar("SELECT count(DISTINCT sha256) FROM source_file") == 1
    assert catalog.scalar("SELECT count(DISTINCT recording_id) FROM source_file") == 1


def test_cli_scan_json(archive, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from soundark.cli import app

    lib = tmp_path / "lib"
    lib.mkdir()
    make_file(lib / "ok", "opus", 0.4, tags=SourceTags(title="T", artists=["A"]))
    (lib / "bad.mp3").write_bytes(b"")
    result = CliRunner().invoke(app, ["scan", str(lib), "-a", str(archive.root), "--rights", "owned", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["new"], report["rejected"]) == (1, 1)
    assert report["rejections"][0]["reason"] == "empty file (0 bytes)"
