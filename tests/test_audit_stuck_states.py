"""Issue 13 audit: no stuck states between scan, encode and repair, end to end through the CLI.

- A source folder moved and rescanned: the encode job failed "source file is gone" and stayed
  failed for ever. Now the rescan recognises the same file (same SHA-256) at its new path, moves
  the source row there and makes the failed job pending again, and says so.
- A damaged store file deleted on repair's advice ("delete it and run `soundark encode`") was
  never encoded again. Now encode notices the missing store file and makes it again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from soundark.cli import main
from soundark.config import ArchivePaths
from soundark.media import synth

from helpers.encode import store_files


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, dict]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out = capsys.readouterr().out
    return info.value.code, json.loads(out) if out.strip().startswith("{") else {"text": out}


def _library(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True)
    return [synth.make_file(folder / f"t{i}", "flac", 0.5, voice=synth.Voice(notes=(60 + 5 * i,), seed=i))
            for i in range(n)]


def _scan_plan(capsys, archive: ArchivePaths, folder: Path) -> dict:
    code, scanned = run(capsys, "scan", str(folder), "-a", str(archive.root), "--json")
    assert code == 0, scanned
    code, planned = run(capsys, "plan", "-a", str(archive.root), "--json")
    assert code == 0, planned
    return scanned


def test_a_moved_source_folder_is_found_again_by_rescan(archive, catalog, tmp_path, capsys) -> None:
    _library(tmp_path / "music" / "old", 2)
    _scan_plan(capsys, archive, tmp_path / "music" / "old")
    shutil.move(tmp_path / "music" / "old", tmp_path / "music" / "new")

    code, first = run(capsys, "encode", "-a", str(archive.root), "--executor", "threads", "--json")
    assert first["failed"] == 2 and all("gone" in f["reason"] for f in first["failures"]), first
    code, again = run(capsys, "encode", "-a", str(archive.root), "--executor", "threads", "--json")
    assert again["encoded"] == 0 and again["remaining"] == 0  # failed stays failed until something changes

    scanned = _scan_plan(capsys, archive, tmp_path / "music" / "new")
    assert scanned["counts"].get("moved") == 2, scanned
    assert scanned["counts"].get("failed encode jobs made pending again") == 2, scanned
    assert scanned["new"] == 0 and scanned["updated"] == 2
    moved = [w for w in scanned["warnings"] if "moved from" in w["reason"]]
    assert len(moved) == 2 and all(str(tmp_path / "music" / "old") in w["reason"] for w in moved)
    paths = [r[0] for r in catalog.execute("SELECT path FROM source_file ORDER BY path")]
    assert paths == sorted(str(p) for p in (tmp_path / "music" / "new").iterdir())  # one row per file

    code, done = run(capsys, "encode", "-a", str(archive.root), "--executor", "threads", "--json")
    assert code == 0 and done["encoded"] == 2 and done["failed"] == 0, done


def test_a_copy_left_in_place_is_not_a_move(archive, catalog, tmp_path, capsys) -> None:
    _library(tmp_path / "music" / "a", 1)
    _scan_plan(capsys, archive, tmp_path / "music" / "a")
    shutil.copytree(tmp_path / "music" / "a", tmp_path / "music" / "b")
    scanned = _scan_plan(capsys, archive, tmp_path / "music" / "b")
    assert "moved" not in scanned["counts"] and scanned["new"] == 1
    assert catalog.scalar("SELECT count(*) FROM source_file") == 2


def test_a_store_file_deleted_on_repairs_advice_is_encoded_again(archive, catalog, tmp_path, capsys) -> None:
    _library(tmp_path / "music", 2)
    _scan_plan(capsys, archive, tmp_path / "music")
    code, done = run(capsys, "encode", "-a", str(archive.root), "--executor", "threads", "--json")
    assert done["encoded"] == 2
    before = store_files(archive.store)
    before[0].unlink()  # what `repair` advises for a damaged file with no intact copy

    code, dry = run(capsys, "encode", "-a", str(archive.root), "--dry-run", "--json")
    assert dry["sync"]["missing"] == 1 and len(dry["would_encode"]) == 1, dry
    assert catalog.scalar("SELECT count(*) FROM encoded") == 2  # a dry run changes nothing

    code, again = run(capsys, "encode", "-a", str(archive.root), "--executor", "threads", "--json")
    assert code == 0 and again["sync"]["missing"] == 1 and again["encoded"] == 1, again
    assert store_files(archive.store) == before  # the same bytes again (bit-exact encoder)
    code, text = run(capsys, "encode", "-a", str(archive.root), "--executor", "threads")
    assert "nothing" in text["text"] or "encoded 0" in text["text"]
