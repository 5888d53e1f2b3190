"""`soundark archive`: scan -> plan -> encode -> release over a folder, with --rights and rerun."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from soundark.media.synth import SourceTags, Voice, make_file


def archive(source: Path, target: Path, *extra: str) -> tuple[int, dict]:
    r = subprocess.run([sys.executable, "-m", "soundark", "archive", str(source), "-a", str(target),
                        "--json", *extra], capture_output=True, text=True, timeout=300)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else {"stderr": r.stderr}


def collection(folder: Path) -> Path:
    album = folder / "Field Recordings" / "Rivers"
    album.mkdir(parents=True)
    for i, fmt in enumerate(("flac", "mp3", "ogg")):
        make_file(album / f"{i + 1:02d} River {i + 1}.{fmt}", fmt, 3.0, voice=Voice(seed=i + 1),
                  tags=SourceTags(title=f"River {i + 1}", artists=["Ana Pereira"], album="Rivers",
                                  track_number=i + 1, isrc=f"QZSDB26000{i + 1:02d}"))
    untagged = folder / "loose"
    untagged.mkdir()
    make_file(untagged / "night birds.wav", "wav", 2.0)
    (untagged / "notes.txt").write_text("not audio, not claiming to be: ignored")
    (untagged / "fake.mp3").write_text("a text file that claims to be audio")
    return folder


def steps(result: dict) -> dict:
    return {s["step"]: s for s in result["steps"]}


@pytest.mark.slow
def test_archive_runs_every_stage_and_reruns_cleanly(tmp_path):
    source = collection(tmp_path / "music")
    code, result = archive(source, tmp_path / "arch", "--rights", "cc-by-4.0")
    assert code == 0, result
    s = steps(result)
    assert list(s) == ["scan", "plan", "encode", "release audio", "release art", "plan (real sizes)",
                       "release metadata", "releases"]
    assert s["scan"]["new"] == 4 and s["scan"]["rejected"] == 1  # notes.txt: not audio, with a reason
    assert "fake.mp3" in s["scan"]["rejections"][0]["subject"]
    assert s["encode"]["encoded"] + s["encode"]["kept"] == 4 and s["encode"]["failed"] == 0
    audio = [r for r in s["releases"]["releases"] if r["phase"] == "audio"]
    assert len(audio) == 1
    bag = tmp_path / "arch" / "releases" / audio[0]["name"]
    assert len(list((bag / "data" / "audio").iterdir())) == 4
    assert (bag / "manifest-sha256.txt").is_file() and (bag / "data" / "tracks.jsonl").is_file()

    code, again = archive(source, tmp_path / "arch")
    assert code == 0
    a = steps(again)
    assert a["scan"]["unchanged"] == 4 and a["encode"]["encoded"] == 0
    assert a["release audio"]["published"] == [] and a["release art"]["published"] == []
    # nothing new: the snapshot (taken after this run's audio and art releases) is unchanged too
    assert a["release metadata"]["published"] == [] and a["release metadata"]["unchanged"] == ["soundark-metadata-0001"]


@pytest.mark.slow
def test_rights_not_listed_as_redistributable_are_held_back(tmp_path):
    source = collection(tmp_path / "music")
    code, result = archive(source, tmp_path / "arch")  # rights default to 'unknown'
    assert code == 0, result
    s = steps(result)
    assert s["release audio"]["published"] == []
    assert s["release audio"]["held_back_total"] == 4
    assert any("unknown" in reason for reason in s["release audio"]["held_back"])


def test_a_missing_source_folder_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "soundark", "archive", str(tmp_path / "nope"),
                        "-a", str(tmp_path / "arch")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip() == f"error: {tmp_path / 'nope'}: not a folder"
