"""The audio phase: bags, torrents, cutting, reproducibility, immutability, rights gating."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import os
import shutil
import subprocess
from pathlib import Path

import bagit
import libtorrent as lt
import pytest

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths, Settings, write_settings
from soundark.errors import Conflict
from soundark.release.stage import load_torrent_list, run_release_audio
from soundark.release.torrent import piece_length_for

from helpers.release import Rec, add, libtorrent_check, opus_bytes, sized

DATE = "2024-05-01"
NO_PARITY = Settings(parity_overhead=0.0)


def new_archive(root: Path) -> ArchivePaths:
    paths = ArchivePaths(root)
    root.mkdir(parents=True)
    write_settings(root, Settings())
    open_catalog(paths.catalog).close()
    return paths


def fill(paths: ArchivePaths, recs: list[Rec]) -> list[int]:
    with open_catalog(paths.catalog) as cat:
        return [add(cat, paths, r) for r in recs]


@pytest.fixture(scope="module")
def opus_files(tmp_path_factory) -> list[bytes]:
    tmp = tmp_path_factory.mktemp("opus")
    return [opus_bytes(tmp, i) for i in range(4)]


def hostile_recs(opus_files: list[bytes]) -> list[Rec]:
    titles = ["../", "CON", "a:b*?", "é" * 150 + " end. "]
    return [Rec(key=f"USABC24000{i:02d}", rank=i + 1, data=d, title=titles[i], listens=100 * (4 - i))
            for i, d in enumerate(opus_files)]


def all_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.needs_tool("sha256sum")
def test_audio_release_is_a_valid_bag_with_hard_links(tmp_path: Path, opus_files: list[bytes]) -> None:
    paths = new_archive(tmp_path / "a")
    fill(paths, hostile_recs(opus_files))
    result = run_release_audio(paths, NO_PARITY, date=DATE)
    assert [p.name for p in result.published] == ["soundark-audio-0001"]
    bag = paths.releases / "soundark-audio-0001"
    files = all_files(bag)
    assert files[:2] == ["bag-info.txt", "bagit.txt"]
    assert {"manifest-sha256.txt", "tagmanifest-sha256.txt", "data/README.txt", "data/tracks.jsonl"} <= set(files)
    audio = [f for f in files if f.startswith("data/audio/")]
    assert len(audio) == 4
    # every audio file is the store file itself (same inode), not a copy
    lines = [json.loads(line) for line in (bag / "data/tracks.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [line["rank"] for line in lines] == [1, 2, 3, 4]
    for line in lines:
        stored = paths.store_path(line["sha256"], ".opus")
        assert os.stat(bag / line["path"]).st_ino == os.stat(stored).st_ino
        assert line["recording"]["key"].startswith("USABC24000")
        assert line["tracks"][0]["album"]["title"] == "Album"
        assert line["rights"] == "cc-by-4.0" and line["provenance"]["encoder"] == "test encoder"
    # coreutils checks the manifest from inside the bag
    check = subprocess.run(["sha256sum", "--strict", "-c", "manifest-sha256.txt"], cwd=bag,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": OK") == len(files) - 4
    # and the reference BagIt implementation (Library of Congress' bagit-python) agrees
    bagit.Bag(str(bag)).validate()
    # libtorrent hash-checks the payload against the torrent: every piece good; one flipped byte is not
    torrent = paths.releases / result.published[0].torrent
    assert libtorrent_check(torrent, paths.releases) == 1.0
    victim = bag / audio[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.unlink()  # a new file: the store's hard-linked copy stays intact
    victim.write_bytes(bytes(data))
    assert libtorrent_check(torrent, paths.releases) < 1.0
    info = (bag / "bag-info.txt").read_text(encoding="utf-8")
    assert "Bagging-Date: 2024-05-01" in info
    payload = sum((bag / f).stat().st_size for f in files if f.startswith("data/"))
    assert f"Payload-Oxum: {payload}.{len(files) - 4}" in info


@pytest.mark.needs_tool("sha256sum")
def test_manifest_check_catches_a_damaged_file(tmp_path: Path, opus_files: list[bytes]) -> None:
    paths = new_archive(tmp_path / "a")
    fill(paths, hostile_recs(opus_files)[:1])
    run_release_audio(paths, NO_PARITY, date=DATE)
    bag = paths.releases / "soundark-audio-0001"
    tracks = bag / "data/tracks.jsonl"
    data = bytearray(tracks.read_bytes())
    data[5] ^= 1
    tracks.write_bytes(bytes(data))
    check = subprocess.run(["sha256sum", "-c", "manifest-sha256.txt"], cwd=bag, capture_output=True, text=True)
    assert check.returncode != 0 and "tracks.jsonl: FAILED" in check.stdout


def test_torrent_parses_and_matches_the_bag(tmp_path: Path, opus_files: list[bytes]) -> None:
    paths = new_archive(tmp_path / "a")
    fill(paths, hostile_recs(opus_files))
    pub = run_release_audio(paths, NO_PARITY, date=DATE).published[0]
    info = lt.torrent_info(str(paths.releases / pub.torrent))
    assert str(info.info_hashes().v1) == pub.infohash_v1 and not info.info_hashes().has_v2()
    assert info.name() == pub.name and info.creation_date() == 1714521600
    fs = info.layout()
    listed = [fs.file_path(i) for i in range(fs.num_files())]
    bag = paths.releases / pub.name
    assert listed == [f"{pub.name}/{f}" for f in all_files(bag)]  # canonical order
    assert info.piece_length() == piece_length_for(sum((bag / f).stat().st_size
                                                       for f in all_files(bag) if f.startswith("data/")))
    # libtorrent hashing the folder itself gives the very same torrent bytes
    from soundark.release.torrent import TorrentSpec, make_torrent
    spec = TorrentSpec(pub.name, tuple((f, (bag / f).stat().st_size) for f in all_files(bag)),
                       info.piece_length(), DATE)
    assert make_torrent(spec, paths.releases, None).data == (paths.releases / pub.torrent).read_bytes()
    assert pub.magnet.startswith(f"magnet:?xt=urn:btih:{pub.infohash_v1}&dn={pub.name}")


@pytest.mark.needs_tool("transmission-show")
def test_transmission_show_reads_the_torrent(tmp_path: Path, opus_files: list[bytes]) -> None:
    tool = shutil.which("transmission-show") or "transmission-show"
    paths = new_archive(tmp_path / "a")
    fill(paths, hostile_recs(opus_files))
    pub = run_release_audio(paths, NO_PARITY, date=DATE).published[0]
    out = subprocess.run([tool, str(paths.releases / pub.torrent)], capture_output=True, text=True, check=True)
    assert pub.infohash_v1 in out.stdout.lower()


def test_same_input_gives_byte_identical_bags_and_torrents(tmp_path: Path, opus_files: list[bytes]) -> None:
    trees = []
    for n in (1, 2):
        paths = new_archive(tmp_path / f"a{n}")
        fill(paths, hostile_recs(opus_files))
        run_release_audio(paths, Settings(), date=DATE, target_size=opus_files[0].__len__() * 2 + 10)
        trees.append(paths.releases)
    a, b = trees
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and len(names) > 3
    files = all_files(a)
    assert files == all_files(b)
    _, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert not mismatch and not errors
    assert any(f.endswith(".parity.torrent") for f in files)


def test_rerun_adds_only_new_bags_and_never_rewrites(tmp_path: Path, opus_files: list[bytes]) -> None:
    paths = new_archive(tmp_path / "a")
    recs = hostile_recs(opus_files)
    fill(paths, recs[:2])
    first = run_release_audio(paths, NO_PARITY, date=DATE)
    bag = paths.releases / "soundark-audio-0001"
    before = {f: os.stat(bag / f) for f in all_files(bag)}
    torrent_before = (paths.releases / first.published[0].torrent).read_bytes()
    assert run_release_audio(paths, NO_PARITY, date="2024-06-01").published == []
    fill(paths, recs[2:])
    second = run_release_audio(paths, NO_PARITY, date="2024-06-01")
    assert [p.name for p in second.published] == ["soundark-audio-0002"]
    assert (second.published[0].rank_first, second.published[0].rank_last) == (3, 4)
    after = {f: os.stat(bag / f) for f in all_files(bag)}
    assert {f: (s.st_ino, s.st_mtime_ns, s.st_size) for f, s in before.items()} == \
           {f: (s.st_ino, s.st_mtime_ns, s.st_size) for f, s in after.items()}
    assert (paths.releases / first.published[0].torrent).read_bytes() == torrent_before
    listing = load_torrent_list(paths)
    assert [r["name"] for r in listing["releases"]] == ["soundark-audio-0001", "soundark-audio-0002"]


def test_changing_a_published_release_is_refused(tmp_path: Path, opus_files: list[bytes]) -> None:
    paths = new_archive(tmp_path / "a")
    recs = hostile_recs(opus_files)
    fill(paths, recs[:1])
    run_release_audio(paths, NO_PARITY, date=DATE)
    # the catalog loses its record of the release (e.g. restored from an old backup): the
    # next run would build soundark-audio-0001 again, over the published folder
    with open_catalog(paths.catalog) as cat:
        cat.execute("DELETE FROM release_file")
        cat.execute("DELETE FROM release")
    with pytest.raises(Conflict, match="soundark-audio-0001"):
        run_release_audio(paths, NO_PARITY, date=DATE)
    # and a different torrent is never written over a published one
    from soundark.release.torrent import write_torrent
    with pytest.raises(Conflict, match="immutable"):
        write_torrent(paths.torrents / "soundark-audio-0001.torrent", b"d4:infode")


@pytest.mark.parametrize("delta, per_release", [(-1, 1), (0, 2), (1, 2)])
def test_cut_at_target_size(tmp_path: Path, delta: int, per_release: int) -> None:
    paths = new_archive(tmp_path / "a")
    size = 3000
    fill(paths, [Rec(key=f"K{i:03d}", rank=i + 1, data=sized(i, size)) for i in range(5)])
    result = run_release_audio(paths, NO_PARITY, date=DATE, target_size=2 * size + delta)
    counts = [p.rank_last - p.rank_first + 1 for p in result.published]
    expected = [per_release] * (5 // per_release) + ([5 % per_release] if 5 % per_release else [])
    assert counts == expected


def test_cut_at_file_cap_and_full_only(tmp_path: Path) -> None:
    paths = new_archive(tmp_path / "a")
    fill(paths, [Rec(key=f"K{i:03d}", rank=i + 1, data=sized(i, 100)) for i in range(7)])
    result = run_release_audio(paths, NO_PARITY, date=DATE, max_files=3, full_only=True)
    assert [(p.rank_first, p.rank_last) for p in result.published] == [(1, 3), (4, 6)]
    assert result.waiting == 1
    assert all(p.files == 3 + 6 for p in result.published)  # 3 audio + README + tracks + 4 tag files
    rest = run_release_audio(paths, NO_PARITY, date=DATE, max_files=3)
    assert [(p.rank_first, p.rank_last) for p in rest.published] == [(7, 7)]


def test_a_file_larger_than_the_target_gets_its_own_release(tmp_path: Path) -> None:
    paths = new_archive(tmp_path / "a")
    fill(paths, [Rec(key="BIG", rank=1, data=sized(1, 5000)), Rec(key="SMALL", rank=2, data=sized(2, 10))])
    result = run_release_audio(paths, NO_PARITY, date=DATE, target_size=1000)
    assert [(p.rank_first, p.rank_last) for p in result.published] == [(1, 1), (2, 2)]


def test_rights_gating_holds_back_and_counts(tmp_path: Path) -> None:
    paths = new_archive(tmp_path / "a")
    rights = ["cc-by-4.0", "unknown", "all-rights-reserved", "unknown", "public-domain"]
    fill(paths, [Rec(key=f"K{i}", rank=i + 1, data=sized(i, 50), rights=r) for i, r in enumerate(rights)])
    result = run_release_audio(paths, NO_PARITY, date=DATE)
    assert result.as_dict()["held_back"] == {"rights 'all-rights-reserved' not redistributable": 1,
                                             "rights 'unknown' not redistributable": 2}
    assert result.as_dict()["held_back_total"] == 3
    bag = paths.releases / result.published[0].name
    keys = [json.loads(line)["recording"]["key"] for line in (bag / "data/tracks.jsonl").read_text().splitlines()]
    assert keys == ["K0", "K4"]
    # what an operator declares redistributable is published on the next run
    wider = dataclasses.replace(NO_PARITY, redistributable=("unknown",))
    assert run_release_audio(paths, wider, date=DATE).published[0].rank_first == 2


def test_only_the_planned_tier_is_released(tmp_path: Path) -> None:
    paths = new_archive(tmp_path / "a")
    [rid] = fill(paths, [Rec(key="K", rank=1, data=sized(1, 80), tier="original", ext=".mp3")])
    with open_catalog(paths.catalog) as cat:  # an older opus75 encode of the same recording
        cat.execute("INSERT INTO encoded (recording_id, tier, sha256, bytes, ext, source_sha256, encoder,"
                    " created_at) VALUES (?, 'opus75', ?, 10, '.opus', ?, 'x', 'now')", (rid, "a" * 64, "0" * 64))
    result = run_release_audio(paths, NO_PARITY, date=DATE)
    bag = paths.releases / result.published[0].name
    assert [f for f in all_files(bag) if f.startswith("data/audio/")] == ["data/audio/K - Artist - Song.mp3"]


@pytest.mark.needs_tool("sha256sum")
def test_damaged_store_file_is_held_back_not_published(tmp_path: Path) -> None:
    paths = new_archive(tmp_path / "a")
    fill(paths, [Rec(key=f"K{i}", rank=i + 1, data=sized(i, 500)) for i in range(3)])
    with open_catalog(paths.catalog) as cat:
        sha = cat.scalar("SELECT e.sha256 FROM encoded e JOIN recording r ON r.id = e.recording_id WHERE r.key='K1'")
    store = paths.store_path(sha, ".opus")
    data = bytearray(store.read_bytes())
    data[100] ^= 0xFF  # same size, other bytes: only the SHA-256 can tell
    store.write_bytes(bytes(data))
    result = run_release_audio(paths, NO_PARITY, date=DATE)
    assert result.held_back == {"store file damaged (SHA-256 mismatch) or missing": 1}
    assert sha in result.errors[0]["subject"]
    bag = paths.releases / result.published[0].name
    keys = [json.loads(line)["recording"]["key"] for line in (bag / "data/tracks.jsonl").read_text().splitlines()]
    assert keys == ["K0", "K2"]
    assert subprocess.run(["sha256sum", "-c", "manifest-sha256.txt"], cwd=bag, capture_output=True).returncode == 0


def test_missing_store_file_is_held_back(tmp_path: Path) -> None:
    paths = new_archive(tmp_path / "a")
    fill(paths, [Rec(key=f"K{i}", rank=i + 1, data=sized(i, 500)) for i in range(2)])
    with open_catalog(paths.catalog) as cat:
        sha = cat.scalar("SELECT sha256 FROM encoded ORDER BY recording_id LIMIT 1")
    paths.store_path(sha, ".opus").unlink()
    result = run_release_audio(paths, NO_PARITY, date=DATE)
    assert result.held_back == {"store file missing or of the wrong size": 1}
    assert result.published[0].rank_first == 2


def test_hybrid_torrents_have_pad_files_and_v2_infohash(tmp_path: Path, opus_files: list[bytes]) -> None:
    paths = new_archive(tmp_path / "a")
    fill(paths, hostile_recs(opus_files))
    settings = dataclasses.replace(NO_PARITY, torrent_format="hybrid", trackers=("http://127.0.0.1:1/announce",),
                                   web_seeds=("http://127.0.0.1:2/",))
    pub = run_release_audio(paths, settings, date=DATE).published[0]
    info = lt.torrent_info(str(paths.releases / pub.torrent))
    assert info.info_hashes().has_v2() and str(info.info_hashes().v2) == pub.infohash_v2
    assert str(info.info_hashes().v1) == pub.infohash_v1
    fs = info.layout()
    assert any("/.pad/" in fs.file_path(i) for i in range(fs.num_files()))
    assert f"xt=urn:btmh:1220{pub.infohash_v2}" in pub.magnet and "tr=http%3A%2F%2F127.0.0.1%3A1" in pub.magnet
    meta = lt.bdecode((paths.releases / pub.torrent).read_bytes())
    assert meta[b"announce"] == b"http://127.0.0.1:1/announce"
    assert meta[b"url-list"] in (b"http://127.0.0.1:2/", [b"http://127.0.0.1:2/"])
    listing = load_torrent_list(paths)
    assert listing["releases"][0]["infohash_v2"] == pub.infohash_v2
    assert libtorrent_check(paths.releases / pub.torrent, paths.releases) == 1.0  # v1 pieces and v2 roots
    bagit.Bag(str(paths.releases / pub.name)).validate()


@pytest.mark.needs_tool("sha256sum")
def test_parity_sidecar_release(tmp_path: Path, opus_files: list[bytes]) -> None:
    paths = new_archive(tmp_path / "a")
    fill(paths, hostile_recs(opus_files))
    result = run_release_audio(paths, Settings(), date=DATE)
    assert [(p.name, p.phase, p.parity_for) for p in result.published] == [
        ("soundark-audio-0001", "audio", None), ("soundark-audio-0001.parity", "parity", "soundark-audio-0001")]
    parity = paths.releases / "soundark-audio-0001.parity"
    assert subprocess.run(["sha256sum", "-c", "manifest-sha256.txt"], cwd=parity, capture_output=True).returncode == 0
    listing = load_torrent_list(paths)
    assert listing["releases"][1]["parity_for"] == "soundark-audio-0001"
    assert lt.torrent_info(str(paths.releases / "torrents/soundark-audio-0001.parity.torrent")).name() == parity.name
