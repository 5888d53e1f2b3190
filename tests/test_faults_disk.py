"""A full disk in every writing stage (issue 13, faults), on a real filesystem that fills: a small
tmpfs holds the archive (sources and inputs stay outside), and a filler file takes its free space.

Each stage runs twice on a full disk: with no space at all (it stops before writing anything) and
with a little left (it stops inside its work: the catalog, the store or a bag is what fills). Each
time: exit 1, one line ending "disk full: free space and re-run", `PRAGMA integrity_check` ok, no
half-published release; then the filler is deleted and the same command finishes (exit 0).
Stages in pipeline order, on one archive: scan, import catalog, import listens, import
musicbrainz, plan, encode, release metadata, release audio, release art, repair.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from soundark.media import synth

from helpers.faults import fill, one_error_line, run, tmpfs

DATA = Path(__file__).parent / "data"


def _catalog_ok(catalog: Path) -> None:
    conn = sqlite3.connect(f"{catalog.as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


def _published(root: Path) -> tuple[list[str], list[str]]:
    """(release folders visible in releases/, releases the catalog and torrents.json list)."""
    releases = root / "releases"
    visible = sorted(p.name for p in releases.iterdir() if p.is_dir() and p.name not in ("torrents",)
                     and not p.name.startswith(".")) if releases.is_dir() else []
    listed = releases / "torrents.json"
    names = sorted(r["name"] for r in json.loads(listed.read_text())["releases"]) if listed.exists() else []
    return visible, names


def _sources(folder: Path) -> Path:
    folder.mkdir()
    for i in range(6):
        synth.make_file(folder / f"t{i}", "flac", 3.0,
                        voice=synth.Voice(notes=(60 + i, 64 + i, 67), seed=i, noise=0.02))
    return folder


def _rows(path: Path) -> Path:
    path.write_text("".join(json.dumps({"title": f"Song {i} " + "x" * 80, "artists": [f"Artist {i % 50}"],
                                        "isrc": f"USAAA{i:07d}"}) + "\n" for i in range(3000)),
                    encoding="utf-8")
    return path


def _stage_on_a_full_disk(mount: Path, root: Path, args: list[str], leave: int) -> None:
    """*args* run on the archive (``-a`` added unless the archive is already the command's PATH)."""
    filler = fill(mount, leave)
    try:
        done = run(*args, *([] if str(root) in args else ["-a", str(root)]))
        assert done.returncode == 1, f"{args} with {leave} bytes free: {done.returncode}\n{done.stdout}\n{done.stderr}"
        line = one_error_line(done)
        assert line.startswith("error: ") and "disk full: free space and re-run" in line, (args, line)
        assert str(root) in line, line  # names the archive or the file in it
    finally:
        filler.unlink()
    _catalog_ok(root / "catalog.sqlite3")  # checked with room again: a reader needs its -shm
    visible, listed = _published(root)
    assert visible == listed, f"{args}: half-published {set(visible) ^ set(listed)}"


# what is left free for the second try, per stage: enough to get into its work, too little to finish
STAGES = [
    (["scan", "{src}", "--rights", "cc-by-4.0"], 40_000),
    (["import", "catalog", "{rows}"], 150_000),
    (["import", "listens", str(DATA / "listens" / "popularity.json")], None),
    (["import", "musicbrainz", str(DATA / "musicbrainz" / "recording_trimmed.json")], None),
    (["plan"], 100_000),
    (["encode"], 60_000),
    (["release", "metadata"], 150_000),
    (["release", "audio"], 4096),
    (["release", "art"], None),
]


@pytest.mark.slow
def test_every_stage_on_a_full_disk_says_so_and_the_rerun_finishes(tmp_path):
    src, rows = _sources(tmp_path / "src"), _rows(tmp_path / "rows.jsonl")
    with tmpfs(tmp_path / "mnt", "16m") as mount:
        root = mount / "archive"
        assert run("init", str(root)).returncode == 0
        for template, leave in STAGES:
            args = [a.format(src=src, rows=rows) for a in template]
            for free in (0, leave) if leave else (0,):
                _stage_on_a_full_disk(mount, root, args, free)
            done = run(*args, "-a", str(root))
            assert done.returncode == 0, f"{args} after freeing space: {done.stderr}"
            _catalog_ok(root / "catalog.sqlite3")
        visible, listed = _published(root)
        assert any("-audio-" in n for n in listed) and visible == listed

        # repair on a full disk: a damaged bag file cannot be restored until there is room
        bag_file = next(p for p in root.glob("releases/*-audio-0001/data/**/*.opus"))
        with open(bag_file, "r+b") as f:
            f.seek(2000)
            f.write(b"\xff" * 64)
        _stage_on_a_full_disk(mount, root, ["repair", str(root)], 0)
        done = run("repair", str(root), "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        assert run("verify", str(root)).returncode == 0
