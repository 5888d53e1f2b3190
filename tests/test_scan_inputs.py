"""Real-world scan inputs: the fallback decoder, names from folders, the archive itself, licence tags."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient

from soundark.catalog import Catalog, open_catalog
from soundark.catalog.importers.pathnames import PathGuess, disc_of, guess_from_path, is_generic
from soundark.catalog.importers.scan import ARCHIVE_SKIPPED, scan_directory
from soundark.catalog.licences import licence_conflict
from soundark.config import ArchivePaths, Settings, write_settings
from soundark.errors import BadInput
from soundark.media.fingerprint import SignatureBuilder, decode_signature
from soundark.media.probe import probe
from soundark.media.synth import SourceTags, make_file, tiny_jpeg
from soundark.media.transcode import transcode_to_opus
from soundark.release.stage import run_release_audio
from soundark.web.app import create_app

from helpers.release import Rec, add, sized

DATA = Path(__file__).parent / "data" / "scan"
FRAMING = DATA / "vorbis_framing_junk.ogg"


def _rows(catalog: Catalog, sql: str, params: tuple = ()) -> list[dict]:
    return [dict(r) for r in catalog.execute(sql, params)]


# --- the fallback decoder ----------------------------------------------------------------------

def test_the_sample_is_one_ffmpeg_refuses_and_libsndfile_reads_in_full() -> None:
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(FRAMING))
    pcm, rate = soundfile.read(str(FRAMING), dtype="float32")
    assert (len(pcm), rate) == (22050, 22050) and 0.25 < float(np.abs(pcm).max()) < 0.35


def test_probe_falls_back_and_records_the_decoder() -> None:
    facts = probe(FRAMING)
    assert (facts.decoder, facts.container, facts.codec) == ("libsndfile", "ogg", "vorbis")
    assert (facts.sample_rate, facts.channels, facts.duration_ms) == (22050, 1, 1000)


def test_the_fallback_feeds_the_acoustic_signature() -> None:
    builder = SignatureBuilder()
    probe(FRAMING, signature=builder)
    frames = decode_signature(builder.finish())
    assert frames is not None and len(frames) >= 5 and int(np.count_nonzero(frames)) > 0


def test_an_ordinary_file_is_read_by_ffmpeg(tmp_path: Path) -> None:
    assert probe(make_file(tmp_path / "a", "ogg", 0.5)).decoder == "ffmpeg"


def test_a_refusal_names_every_decoder_and_its_message(tmp_path: Path) -> None:
    text = tmp_path / "notes.flac"
    text.write_text("liner notes, not audio\n" * 40)
    with pytest.raises(BadInput) as e:
        probe(text)
    assert e.value.reason == ("not audio: ffmpeg: nothing could be decoded from it; "
                              "libsndfile: Format not recognised")
    jpeg = tmp_path / "cover.mp3"
    jpeg.write_bytes(tiny_jpeg())
    with pytest.raises(BadInput) as e:
        probe(jpeg)
    assert e.value.reason.startswith("not audio: ffmpeg: ") and "; libsndfile: " in e.value.reason


def test_a_file_cut_short_in_the_fallback_is_still_refused(tmp_path: Path) -> None:
    cut = tmp_path / "cut.ogg"
    cut.write_bytes(FRAMING.read_bytes()[:-700])  # the one audio page loses its end
    with pytest.raises(BadInput) as e:
        probe(cut)
    assert e.value.reason == ("not audio: ffmpeg: Invalid data found when processing input; "
                              "libsndfile: nothing could be decoded from it")


def test_a_file_ffmpeg_reads_but_finds_cut_is_not_handed_to_the_fallback(tmp_path: Path) -> None:
    flac = make_file(tmp_path / "a", "flac", 2.0)
    flac.write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    with pytest.raises(BadInput) as e:
        probe(flac)
    assert e.value.reason.startswith("truncated") and "libsndfile" not in e.value.reason


@pytest.mark.parametrize("decoder", [None, "libsndfile"])
def test_encode_from_the_fallback_pcm(tmp_path: Path, decoder: str | None) -> None:
    out = tmp_path / "o.opus"
    pcm = transcode_to_opus(FRAMING, out, decoder=decoder)
    assert (pcm.codec, pcm.source_samples, pcm.source_rate) == ("vorbis", 22050, 22050)
    with av.open(str(out)) as c:
        n = sum(f.samples for f in c.decode(audio=0))
    assert abs(n - 48000) <= 960  # one second at 48 kHz, give or take a frame


def test_encode_with_ffmpeg_only_refuses_it(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="Invalid data"):
        transcode_to_opus(FRAMING, tmp_path / "o.opus", decoder="ffmpeg")


@pytest.mark.slow
def test_scan_plan_encode_such_a_file_end_to_end(tmp_path: Path) -> None:
    music = tmp_path / "music" / "Odd Encoder" / "Vorbis Oddities"
    music.mkdir(parents=True)
    shutil.copy(FRAMING, music / "01 - Framing.ogg")
    r = subprocess.run([sys.executable, "-m", "soundark", "archive", str(tmp_path / "music"), "-a",
                        str(tmp_path / "arch"), "--rights", "cc-by-4.0", "--json"],
                       capture_output=True, text=True, timeout=300)
    result = json.loads(r.stdout)
    assert r.returncode == 0, result
    scan = next(s for s in result["steps"] if s["step"] == "scan")
    assert "decoded by libsndfile" in json.dumps(scan)
    paths = ArchivePaths(tmp_path / "arch")
    with open_catalog(paths.catalog) as cat:
        src = _rows(cat, "SELECT decoder, guessed FROM source_file")[0]
        enc = _rows(cat, "SELECT tier, sha256, ext, duration_ms FROM encoded")[0]
    assert src["decoder"] == "libsndfile"
    assert json.loads(src["guessed"]) == ["title", "artist", "album", "track_number"]
    assert (enc["tier"], enc["ext"]) == ("opus75", ".opus")  # never kept: FFmpeg players refuse it
    with av.open(str(paths.store_path(enc["sha256"], ".opus"))) as c:
        assert c.streams.audio[0].metadata.get("SOUNDARK_SOURCE_DECODER") == "libsndfile"
        n = sum(f.samples for f in c.decode(audio=0))
    assert abs(n - 48000) <= 960 and abs(enc["duration_ms"] - 1000) <= 20


# --- names from the path ------------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "Music", "music", "MP3", "flac", "FLAC 24-96", "[MP3 320]", "320", "V0", "Lossless", "Albums",
    "Soundtrack", "OST", "Various Artists", "VA", "misc", "Unknown Artist", "Downloads", "new folder",
    "My Music", "iTunes Media", "Songs", "tracks", "ogg", "opus", "wav", "aac", "m4a", "24bit",
])
def test_generic_folder_names(name: str) -> None:
    assert is_generic(name)


@pytest.mark.parametrize("name", ["1999", "1", "Blue", "Kind of Blue", "Live 1999", "The Wall",
                                  "Music for Airports", "Songs of Innocence", "24"])
def test_names_that_are_not_generic(name: str) -> None:
    assert not is_generic(name)


@pytest.mark.parametrize("name, disc", [
    ("CD1", 1), ("cd 01", 1), ("CD 1 of 2", 1), ("Disc 2", 2), ("disk2", 2), ("DISC_3", 3),
    ("(Disc 2)", 2), ("Disc 1 - The Early Years", 1), ("CD", None), ("CD Singles", None),
    ("Discovery", None), ("Disco 2000", None),
])
def test_disc_folders(name: str, disc: int | None) -> None:
    assert disc_of(name.replace("_", " ")) == disc


@pytest.mark.parametrize("rel, depth, expected", [
    ("Artist/Album/CD 1/01 - x.flac", 3, PathGuess("x", 1, "Album", "Artist", 1)),
    ("Album/Disc 2/03 y.flac", 2, PathGuess("y", 3, "Album", None, 2)),
    ("Music/Artist/Album/01 - z.flac", 3, PathGuess("z", 1, "Album", "Artist", None)),
    ("Albums/Artist - Song.mp3", 1, PathGuess("Song", None, None, "Artist", None)),
    ("Soundtrack/Some Film/01 Theme.ogg", 2, PathGuess("Theme", 1, "Some Film", None, None)),
    ("Artist/mp3/02 - t.mp3", 2, PathGuess("t", 2, None, "Artist", None)),
    ("Various Artists/Comp/CD2/05 - u.flac", 3, PathGuess("u", 5, "Comp", None, 2)),
    ("CD 1/01 - v.flac", 1, PathGuess("v", 1, None, None, 1)),  # the album would be the root's name
])
def test_guess_from_path(rel: str, depth: int, expected: PathGuess) -> None:
    assert guess_from_path(Path("/music") / rel, depth) == expected


def test_scan_marks_guessed_fields_and_the_web_shows_them(archive, catalog: Catalog,
                                                          tmp_path: Path) -> None:
    lib = tmp_path / "Music"
    disc = lib / "Ana Pereira" / "Rivers" / "CD 2"
    disc.mkdir(parents=True)
    make_file(disc / "04 - Tagus", "flac", 0.5, tags=SourceTags(title="Tagus (tagged)"))
    make_file(lib / "Ana Pereira" / "Rivers" / "CD 2" / "05 - Douro", "flac", 0.5)
    scan_directory(catalog, lib)
    files = {Path(r["path"]).name: r for r in _rows(catalog, "SELECT * FROM source_file")}
    assert json.loads(files["04 - Tagus.flac"]["guessed"]) == ["artist", "album", "track_number",
                                                               "disc_number"]
    assert json.loads(files["05 - Douro.flac"]["guessed"]) == ["title", "artist", "album",
                                                               "track_number", "disc_number"]
    track = _rows(catalog, "SELECT t.title, t.track_number, t.disc_number, a.title AS album, a.artist "
                           "FROM track t JOIN album a ON a.id = t.album_id WHERE t.title = 'Douro'")[0]
    assert track == {"title": "Douro", "track_number": 5, "disc_number": 2, "album": "Rivers",
                     "artist": "Ana Pereira"}
    key = catalog.scalar("SELECT key FROM recording WHERE title = 'Douro'")
    with TestClient(create_app(archive.root)) as client:
        api = client.get(f"/api/recordings/{key}").json()
        page = client.get(f"/recording/{key}").text
    assert api["sources"][0]["guessed"] == ["title", "artist", "album", "track_number", "disc_number"]
    assert api["sources"][0]["decoder"] == "ffmpeg"
    assert "guessed from the folder and file names" in page and "track number" in page


# --- the archive itself, sidecars ---------------------------------------------------------------

def test_a_folder_holding_the_archive_skips_it(tmp_path: Path) -> None:
    root = tmp_path / "music"
    (root / "Band" / "Album").mkdir(parents=True)
    make_file(root / "Band" / "Album" / "01 - a", "flac", 0.5)
    paths = ArchivePaths(root / "arch")
    paths.root.mkdir()
    write_settings(paths.root, Settings())
    (paths.store / "ab" / "cd").mkdir(parents=True)
    make_file(paths.store / "ab" / "cd" / "x", "opus", 0.5)
    (paths.root / "releases" / "torrents").mkdir(parents=True)
    (paths.root / "releases" / "torrents" / "a.torrent").write_bytes(b"d4:infod4:name1:xee")
    for loose in ("old.sqlite3-wal", "old.sqlite3-shm", "x.db-journal", "list.json", "y.torrent"):
        (root / loose).write_bytes(b"\x00" * 64)
    with open_catalog(paths.catalog) as cat:
        report = scan_directory(cat, root)
        paths_seen = [r[0] for r in cat.execute("SELECT path FROM source_file")]
    assert (report.new, report.rejected) == (1, 0), report.as_dict()
    assert [(w.subject, w.reason) for w in report.warnings] == [(str(paths.root), ARCHIVE_SKIPPED)]
    assert all(not p.startswith(str(paths.root)) for p in paths_seen)


# --- licence tags -------------------------------------------------------------------------------

@pytest.mark.parametrize("rights, tag, conflicts", [
    ("cc-by-4.0", "GPL", True), ("cc-by-4.0", "GNU General Public License v3", True),
    ("cc-by-4.0", "CC BY-SA 4.0", True), ("cc-by-4.0", "CC BY-NC 4.0", True),
    ("cc-by-4.0", "https://creativecommons.org/licenses/by-nd/4.0/", True),
    ("cc-by-4.0", "Attribution-NonCommercial (Creative Commons)", True),
    ("cc-by-4.0", "All rights reserved", True), ("cc-by-4.0", "CC BY 4.0", False),
    ("cc-by-4.0", "cc-by-3.0", False), ("cc-by-4.0", "CC0", False), ("cc-by-4.0", "Public Domain", False),
    ("cc-by-4.0", "free download from the band's site", False),
    ("cc-by-sa-4.0", "CC BY-SA", False), ("cc-by-sa-4.0", "CC BY", False),
    ("cc-by-sa-4.0", "CC BY-NC-SA", True), ("public-domain", "CC BY", True),
    ("cc0-1.0", "CC0 1.0", False), ("gpl-3.0", "LGPL", False), ("lgpl-2.1", "GPL", True),
    ("owned", "All rights reserved", False), ("owned-redistributable", "GPL", False),
    ("unknown", "CC BY-NC", False),
])
def test_licence_conflicts(rights: str, tag: str, conflicts: bool) -> None:
    assert (licence_conflict(rights, tag, None) is not None) == conflicts


def test_a_copyright_tag_saying_all_rights_reserved_conflicts() -> None:
    why = licence_conflict("cc-by-4.0", None, "(C) 2003 Label Ltd. All Rights Reserved.")
    assert why == ("COPYRIGHT tag says 'all rights reserved', rights given 'cc-by-4.0': "
                   "all rights reserved forbids the redistribution it allows")
    assert licence_conflict("cc-by-4.0", None, "(P) 2003 Label Ltd.") is None


def test_scan_warns_and_keeps_the_conflict(catalog: Catalog, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    nc = make_file(lib / "nc", "flac", 0.5, tags=SourceTags(title="NC", license="CC BY-NC 4.0"))
    make_file(lib / "ok", "flac", 0.5, tags=SourceTags(title="OK", license="CC BY 4.0"))
    report = scan_directory(catalog, lib, rights="cc-by-4.0")
    assert [(w.subject, w.reason) for w in report.warnings] == [(str(nc), (
        "LICENSE tag says 'cc-by-nc', rights given 'cc-by-4.0': nc forbids the commercial use it allows"))]
    assert report.counts == {"licence conflicts": 1}
    rows = {r["path"]: r["licence_conflict"] for r in _rows(catalog, "SELECT * FROM source_file")}
    assert rows[str(nc)].startswith("LICENSE tag says 'cc-by-nc'") and rows[str(lib / "ok.flac")] is None


def test_release_holds_conflicts_back_unless_the_setting_says(tmp_path: Path) -> None:
    paths = ArchivePaths(tmp_path / "a")
    paths.root.mkdir()
    write_settings(paths.root, Settings())
    with open_catalog(paths.catalog) as cat:
        ids = [add(cat, paths, Rec(key=f"K{i}", rank=i + 1, data=sized(i, 50))) for i in range(3)]
        cat.execute("INSERT INTO source_file (path, size, mtime_ns, status, recording_id, rights,"
                    " scanned_at, license, licence_conflict) VALUES ('/x.flac', 1, 1, 'ok', ?,"
                    " 'cc-by-4.0', 'now', 'GPL', 'LICENSE tag says ''gpl''')", (ids[1],))
    settings = Settings(parity_overhead=0.0)
    result = run_release_audio(paths, settings, date="2024-05-01")
    held = result.as_dict()["held_back"]
    assert len(held) == 1 and list(held.values()) == [1] and "licence tag" in next(iter(held))
    assert [(p.rank_first, p.rank_last) for p in result.published] == [(1, 3)]
    with open_catalog(paths.catalog) as cat:
        released = {r[0] for r in cat.execute("SELECT recording_id FROM release_file WHERE recording_id IS NOT NULL")}
    assert released == {ids[0], ids[2]}
    allow = dataclasses.replace(settings, release_rights_conflicts=True)
    again = run_release_audio(paths, allow, date="2024-05-01")
    assert [(p.rank_first, p.rank_last) for p in again.published] == [(2, 2)]
