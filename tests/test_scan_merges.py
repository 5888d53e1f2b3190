"""No silent merges: audio decides between same-name files; every merge is reported, kept and undoable.

Real synthesised music (different melodies), real encoders (FLAC, MP3 through PyAV), a real catalog.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from soundark.catalog import Catalog
from soundark.catalog.importers.scan import scan_directory
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.catalog.merges import list_merges, split_file, undo_split
from soundark.config import ArchivePaths
from soundark.errors import Conflict, NotFound
from soundark.fixity.digest import sha256_file
from soundark.media.synth import SourceTags, Voice, make_file

SECONDS = 4.0
TUNE_A = Voice(notes=(60, 64, 67, 72, 67, 64, 62, 59), noise=0.02, seed=1)
TUNE_B = Voice(notes=(57, 55, 53, 52, 62, 65, 69, 71), note_seconds=0.25, noise=0.02, seed=2)
SAME_NAME = SourceTags(title="Battle Theme", artists=["Game Composer"], album="Soundtrack")


def _make(folder: Path, name: str, fmt: str, voice: Voice, tags: SourceTags = SAME_NAME) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return make_file(folder / name, fmt, SECONDS, voice=voice, tags=tags).resolve()


def _recordings(catalog: Catalog) -> int:
    return int(catalog.scalar("SELECT count(*) FROM recording"))


def _recording_of(catalog: Catalog, path: Path) -> str:
    return catalog.scalar("SELECT r.key FROM source_file f JOIN recording r ON r.id = f.recording_id"
                          " WHERE f.path = ?", (str(path),))


def _touch(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def test_different_music_with_identical_tags_and_duration_stays_two_recordings(
        catalog: Catalog, tmp_path: Path) -> None:
    a = _make(tmp_path / "lib" / "disc1", "01 Battle Theme", "flac", TUNE_A)
    b = _make(tmp_path / "lib" / "disc2", "01 Battle Theme", "flac", TUNE_B)
    report = scan_directory(catalog, tmp_path / "lib")
    assert (report.new, report.merged, report.merges) == (2, 0, [])
    assert _recordings(catalog) == 2
    assert _recording_of(catalog, a) != _recording_of(catalog, b)
    assert report.counts == {"kept_apart_by_audio": 1}
    [warning] = report.warnings
    assert warning.subject == str(b)
    assert "audio differs" in warning.reason and str(a) in warning.reason
    rows = catalog.execute("SELECT matched_by, merged_at FROM source_file ORDER BY path").fetchall()
    assert [tuple(r) for r in rows] == [("new", None), ("new", None)]


def test_same_audio_in_two_formats_merges_and_is_reported(catalog: Catalog, tmp_path: Path) -> None:
    flac = _make(tmp_path / "lib" / "flac", "01 Battle Theme", "flac", TUNE_A)
    mp3 = _make(tmp_path / "lib" / "mp3", "01 Battle Theme", "mp3", TUNE_A)
    report = scan_directory(catalog, tmp_path / "lib")
    assert _recordings(catalog) == 1
    assert report.merged == 1
    [merge] = report.merges
    assert merge.subject == str(mp3)
    assert merge.rule == "name+duration+audio"
    assert merge.recording == _recording_of(catalog, flac)
    assert merge.detail.startswith("audio distance 0.") and str(flac) in merge.detail
    listed = list_merges(catalog)
    assert listed["merged"] == 1
    assert (listed["merges"][0]["path"], listed["merges"][0]["rule"]) == (str(mp3), "name+duration+audio")


def test_rescan_reports_no_new_merge(catalog: Catalog, tmp_path: Path) -> None:
    _make(tmp_path / "lib" / "flac", "01 Battle Theme", "flac", TUNE_A)
    mp3 = _make(tmp_path / "lib" / "mp3", "01 Battle Theme", "mp3", TUNE_A)
    assert scan_directory(catalog, tmp_path / "lib").merged == 1
    again = scan_directory(catalog, tmp_path / "lib")
    assert (again.unchanged, again.merged) == (2, 0)
    _touch(mp3)
    touched = scan_directory(catalog, tmp_path / "lib")
    assert (touched.updated, touched.merged) == (1, 0)
    assert list_merges(catalog)["merged"] == 1  # still recorded, once


def test_a_catalog_row_without_audio_is_joined_by_name_and_duration(
        catalog: Catalog, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"title": "Battle Theme", "artists": ["Game Composer"],
                                "duration_ms": int(SECONDS * 1000)}) + "\n", encoding="utf-8")
    import_catalog_file(catalog, rows)
    assert _recordings(catalog) == 1
    flac = _make(tmp_path / "lib", "01 Battle Theme", "flac", TUNE_A)
    report = scan_directory(catalog, tmp_path / "lib")
    assert _recordings(catalog) == 1
    [merge] = report.merges
    assert (merge.subject, merge.rule, merge.detail) == (str(flac), "name+duration", "no audio of it to compare")


def test_isrc_merges_directly_but_says_when_the_audio_differs(catalog: Catalog, tmp_path: Path) -> None:
    tagged = SourceTags(title="Battle Theme", artists=["Game Composer"], isrc="JPK631400001")
    _make(tmp_path / "lib" / "a", "01 Battle Theme", "flac", TUNE_A, tagged)
    b = _make(tmp_path / "lib" / "b", "01 Battle Theme", "flac", TUNE_B, tagged)
    report = scan_directory(catalog, tmp_path / "lib")
    assert _recordings(catalog) == 1
    [merge] = report.merges
    assert (merge.subject, merge.rule, merge.recording) == (str(b), "isrc", "JPK631400001")
    assert merge.detail.startswith("ISRC JPK631400001; audio differs (distance 0.")


def test_split_gives_the_file_its_own_recording_and_a_rescan_keeps_it(
        catalog: Catalog, tmp_path: Path) -> None:
    flac = _make(tmp_path / "lib" / "flac", "01 Battle Theme", "flac", TUNE_A)
    mp3 = _make(tmp_path / "lib" / "mp3", "01 Battle Theme", "mp3", TUNE_A)
    scan_directory(catalog, tmp_path / "lib")
    old = _recording_of(catalog, mp3)
    result = split_file(catalog, str(mp3))
    assert (result.action, result.from_recording) == ("split", old)
    assert _recordings(catalog) == 2
    assert _recording_of(catalog, flac) == old
    assert _recording_of(catalog, mp3) == result.recording != old
    track = catalog.execute("SELECT t.title, t.artist FROM source_file f JOIN track t ON t.id = f.track_id"
                            " WHERE f.path = ?", (str(mp3),)).fetchone()
    assert tuple(track) == ("Battle Theme", "Game Composer")
    assert list_merges(catalog)["merged"] == 0 and list_merges(catalog)["split"] == 1
    _touch(mp3)
    rescan = scan_directory(catalog, tmp_path / "lib")
    assert (rescan.updated, rescan.merged) == (1, 0)
    assert _recording_of(catalog, mp3) == result.recording
    with pytest.raises(Conflict):
        split_file(catalog, sha256_file(mp3)[0])


def test_split_by_sha256_then_undo_lets_the_next_scan_merge_again(catalog: Catalog, tmp_path: Path) -> None:
    _make(tmp_path / "lib" / "flac", "01 Battle Theme", "flac", TUNE_A)
    mp3 = _make(tmp_path / "lib" / "mp3", "01 Battle Theme", "mp3", TUNE_A)
    scan_directory(catalog, tmp_path / "lib")
    old = _recording_of(catalog, mp3)
    split_file(catalog, sha256_file(mp3)[0])
    undone = undo_split(catalog, str(mp3))
    assert (undone.action, undone.recording) == ("undone", old)
    assert _recordings(catalog) == 1  # the emptied split recording is gone
    assert _recording_of(catalog, mp3) == old
    rescan = scan_directory(catalog, tmp_path / "lib")
    assert [(m.subject, m.rule) for m in rescan.merges] == [(str(mp3), "name+duration+audio")]
    with pytest.raises(NotFound):
        undo_split(catalog, str(mp3))


def test_split_of_a_file_alone_is_remembered(catalog: Catalog, tmp_path: Path) -> None:
    a = _make(tmp_path / "lib", "01 Battle Theme", "flac", TUNE_A)
    scan_directory(catalog, tmp_path / "lib")
    result = split_file(catalog, str(a))
    assert result.action == "remembered" and result.recording == result.from_recording
    twin = _make(tmp_path / "lib2", "01 Battle Theme", "mp3", TUNE_A)
    scan_directory(catalog, tmp_path / "lib2")
    assert _recording_of(catalog, twin) == _recording_of(catalog, a)  # others may still join it


def test_unknown_file_is_not_found(catalog: Catalog, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no accepted scanned file"):
        split_file(catalog, str(tmp_path / "nothing.flac"))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soundark", *args], capture_output=True, text=True,
                          check=False, timeout=120)


def test_cli_scan_json_merges_and_split(archive: ArchivePaths, tmp_path: Path) -> None:
    _make(tmp_path / "lib" / "flac", "01 Battle Theme", "flac", TUNE_A)
    mp3 = _make(tmp_path / "lib" / "mp3", "01 Battle Theme", "mp3", TUNE_A)
    _make(tmp_path / "lib" / "other", "01 Battle Theme", "flac", TUNE_B)
    a = ["-a", str(archive.root)]
    scanned = json.loads(_cli("scan", str(tmp_path / "lib"), *a, "--json").stdout)
    assert scanned["merged"] == 1
    assert [(m["subject"], m["rule"]) for m in scanned["merges"]] == [(str(mp3), "name+duration+audio")]
    assert scanned["counts"] == {"kept_apart_by_audio": 1}
    listed = json.loads(_cli("catalog", "merges", *a, "--json").stdout)
    assert [m["path"] for m in listed["merges"]] == [str(mp3)]
    text = _cli("catalog", "merges", *a)
    assert f"merged {mp3} -> " in text.stdout and "by name+duration+audio" in text.stdout
    split = json.loads(_cli("catalog", "split", str(mp3), *a, "--json").stdout)
    assert split["action"] == "split" and split["path"] == str(mp3)
    again = _cli("catalog", "split", str(mp3), *a)
    assert again.returncode == 1 and "already split off" in again.stderr
    undo = _cli("catalog", "split", str(mp3), "--undo", *a)
    assert undo.returncode == 0 and undo.stdout.count("\n") == 1 and "split undone" in undo.stdout


# --- real music: two pieces of one soundtrack with the same (misleading) tags ------------------

REAL = Path(__file__).parent / "data" / "realmusic"


def _tag_mp3(path: Path, title: str, artist: str, album: str) -> None:
    from mutagen.easyid3 import EasyID3

    tags = EasyID3()
    tags.update({"title": title, "artist": artist, "album": album, "tracknumber": "1"})
    tags.save(str(path))


def _reencode_flac(source: Path, target: Path) -> Path:
    """The same audio in another format (PyAV decode -> FLAC), with the same tags."""
    import av

    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        stream = src.streams.audio[0]
        enc = out.add_stream("flac", rate=stream.rate)
        enc.layout = stream.layout.name
        for frame in src.decode(stream):
            frame.pts = None
            for packet in enc.encode(frame):
                out.mux(packet)
        for packet in enc.encode(None):
            out.mux(packet)
    from mutagen.flac import FLAC

    flac = FLAC(str(target))
    flac.update({"title": "Main Theme", "artist": "Game Composer", "album": "Soundtrack",
                 "tracknumber": "1"})
    flac.save()
    return target.resolve()


def test_real_soundtrack_pieces_with_the_same_tags_stay_apart_and_formats_of_one_merge(
        catalog: Catalog, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    paths = []
    for folder, clip in (("disc1", "frontiers-excerpt.mp3"), ("disc2", "time_to_strike-excerpt.mp3")):
        (lib / folder).mkdir(parents=True)
        target = lib / folder / "01 Main Theme.mp3"
        target.write_bytes((REAL / clip).read_bytes())
        _tag_mp3(target, "Main Theme", "Game Composer", "Soundtrack")
        paths.append(target.resolve())
    (lib / "flac").mkdir()
    flac = _reencode_flac(paths[0], lib / "flac" / "01 Main Theme.flac")
    report = scan_directory(catalog, lib)
    assert _recordings(catalog) == 2  # two pieces of music; the FLAC joined its MP3
    assert _recording_of(catalog, paths[0]) != _recording_of(catalog, paths[1])
    assert _recording_of(catalog, flac) == _recording_of(catalog, paths[0])
    [merge] = report.merges
    assert (merge.subject, merge.rule) == (str(flac), "name+duration+audio")
    assert report.counts.get("kept_apart_by_audio") == 1
