"""`soundark demo` end to end: every stage over the synthesised collection, checked from outside."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import bagit
import libtorrent as lt
import pytest


def demo(folder: Path) -> dict:
    r = subprocess.run([sys.executable, "-m", "soundark", "demo", str(folder), "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


pytestmark = pytest.mark.slow  # the whole pipeline, twice, in subprocesses


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("demo")
    return folder, demo(folder)


def steps(result: dict) -> dict:
    return {s["step"]: s for s in result["steps"]}


def test_every_stage_runs_and_reports(built):
    folder, result = built
    s = steps(result)
    assert result["ok"] and all(step["ok"] for step in result["steps"])
    assert list(s) == ["import catalog", "scan", "import listens", "plan", "encode", "release audio",
                       "release art", "plan (real sizes)", "release metadata", "verify, damage, repair", "search",
                       "releases"]
    assert s["scan"]["rejected"] == 1
    assert "Damaged Take" in s["scan"]["rejections"][0]["subject"]
    plan = s["plan"]["plan"]
    assert plan["by_tier"]["skip"]["recordings"] > 0, "the demo budget leaves part of the tail out"
    assert plan["by_tier"]["opus75"]["recordings"] > 0 and plan["by_tier"]["original"]["recordings"] > 0
    assert 0.5 < plan["share_covered"] < 1.0
    # the popular lossy tracks are kept as originals, the tail re-encoded, and the album without
    # listen counts is planned by the fallback (its one counted track, shared from another album)
    per = {t: row["listens"] / row["recordings"] for t, row in plan["by_tier"].items() if row["recordings"]}
    assert per["original"] > 2 * per["opus75"] > 2 * per["skip"]
    assert plan["signal"]["mode"] == "partial" and plan["signal"]["counts"]["album"] == 6
    assert (folder / "archive" / "reports" / "coverage.png").stat().st_size > 10_000
    assert s["encode"]["failed"] == 0 and s["encode"]["remaining"] == 0
    assert s["encode"]["encoded"] + s["encode"]["kept"] == (plan["by_tier"]["opus75"]["recordings"]
                                                          + plan["by_tier"]["original"]["recordings"]
                                                          - plan["by_tier"]["opus75"].get("without_audio", 0)
                                                          - plan["by_tier"]["original"].get("without_audio", 0))
    assert s["release audio"]["held_back_total"] > 0  # the demo's 'owned' album is not redistributable
    assert s["search"]["results"][0]["title"] == "Morning Tide"


def test_damage_is_named_then_repaired(built):
    cycle = steps(built[1])["verify, damage, repair"]
    assert cycle["before"]["ok"] and cycle["after"]["ok"]
    problems = cycle["damaged"]["problems"]
    # the bag file and its hard-linked store copy rot together; both are named, both restored
    assert [p["kind"] for p in problems] == ["altered", "altered"]
    assert problems[0]["path"].startswith("releases/soundark-audio-0001/data/audio/")
    assert problems[1]["path"].startswith("store/") and "hard-linked" in problems[1]["detail"]
    assert cycle["repair"]["repaired"] == 2 and cycle["repair"]["unrecoverable"] == 0
    # the bag file from parity, then its store copy re-linked to it by the same bag's repair
    bag_repair = next(b for b in cycle["repair"]["bags"] if b["repaired"])
    assert bag_repair["relinked"] == [problems[1]["path"]]
    assert "store sha256" in cycle["after"]["checks"]


@pytest.mark.needs_tool("sha256sum")
def test_releases_check_out_with_independent_tools(built):
    folder, result = built
    releases = folder / "archive" / "releases"
    listed = steps(result)["releases"]["releases"]
    assert {r["phase"] for r in listed} == {"metadata", "audio", "parity", "art"}
    for r in listed:
        bag = releases / r["name"]
        bagit.Bag(str(bag)).validate()  # the reference BagIt implementation
        check = subprocess.run(["sha256sum", "--quiet", "-c", "manifest-sha256.txt"], cwd=bag,
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        info = lt.torrent_info(str(releases / r["torrent"]) if not Path(r["torrent"]).is_absolute()
                               else r["torrent"])
        assert str(info.info_hash()) == r["infohash_v1"]
        assert info.num_files() == r["files"]


def test_rerun_adds_nothing_and_a_second_build_is_identical(built, tmp_path):
    folder, first = built
    again = steps(demo(folder))
    assert again["scan"]["unchanged"] == 28 and again["encode"]["encoded"] == 0
    # the metadata snapshot went last and already names this run's audio and art releases
    for phase in ("release audio", "release art", "release metadata"):
        assert again[phase]["published"] == [], phase
    assert again["release metadata"]["unchanged"] == ["soundark-metadata-0001"]
    assert not (folder / "archive" / "releases" / "soundark-metadata-0002").exists()
    # a second build from scratch: the same metadata, audio, parity and art bytes, so the same
    # infohashes in every phase (snapshot timestamps are the release date, rows in key order)
    def payload(result: dict) -> list[tuple[str, str]]:
        return [(r["name"], r["infohash_v1"]) for r in steps(result)["releases"]["releases"]]

    assert {r["phase"] for r in steps(first)["releases"]["releases"]} == {"metadata", "audio", "parity", "art"}
    assert payload(demo(tmp_path / "elsewhere")) == payload(first)
    for name, _ in payload(first):
        a = folder / "archive" / "releases" / name / "manifest-sha256.txt"
        b = tmp_path / "elsewhere" / "archive" / "releases" / name / "manifest-sha256.txt"
        assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
