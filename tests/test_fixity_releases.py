"""soundark.fixity.releases: the release list's one reader and writer, and the names beside a bag."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from soundark.errors import BadInput
from soundark.fixity.releases import (
    LIST_FIELDS,
    find_torrent,
    is_parity_name,
    parity_dir,
    parity_name,
    read_release_list,
    release_list_path,
    release_list_text,
    torrent_relpath,
)

PACKAGE = Path(__file__).resolve().parents[1] / "soundark"
ROW = {"name": "sa-audio-0001", "phase": "audio", "infohash_v1": "ab" * 20, "infohash_v2": None,
       "magnet": "magnet:?xt=urn:btih:abab", "bytes": 123, "files": 2, "rank_first": 1, "rank_last": 2,
       "listens": 7, "listens_share": 0.5, "created": "2024-01-01", "torrent": "torrents/sa-audio-0001.torrent",
       "parity_for": None}


def test_written_list_reads_back(tmp_path: Path) -> None:
    path = release_list_path(tmp_path)
    path.write_text(release_list_text([{**ROW, "extra": "dropped"}]), encoding="utf-8")
    assert path.name == "torrents.json"
    assert read_release_list(path) == [ROW]
    assert list(json.loads(path.read_text())["releases"][0]) == list(LIST_FIELDS)  # field order is fixed


def test_missing_and_junk_lists(tmp_path: Path) -> None:
    path = release_list_path(tmp_path)
    assert read_release_list(path, missing_ok=True) == []
    with pytest.raises(BadInput, match="no release list here"):
        read_release_list(path)
    for junk in ("{", '{"format": "other/1", "releases": []}', '[]', '{"format": "soundark-torrents/1"}'):
        path.write_text(junk)
        with pytest.raises(BadInput, match="release list"):
            read_release_list(path)


def test_names_beside_a_bag(tmp_path: Path) -> None:
    bag = tmp_path / "sa-audio-0001"
    bag.mkdir()
    assert parity_dir(bag) == tmp_path / "sa-audio-0001.parity" and parity_name(bag.name) == "sa-audio-0001.parity"
    assert is_parity_name(parity_name(bag.name)) and not is_parity_name(bag.name)
    assert torrent_relpath(bag.name) == "torrents/sa-audio-0001.torrent"
    assert find_torrent(bag) is None
    for where in (bag / "sa-audio-0001.torrent", tmp_path / "sa-audio-0001.torrent",
                  tmp_path / torrent_relpath(bag.name)):  # each later one is preferred
        where.parent.mkdir(exist_ok=True)
        where.write_bytes(b"d4:infode")
        assert find_torrent(bag) == where


def test_no_second_reader_of_the_releases_folder_names() -> None:
    """torrents.json, <bag>.parity and torrents/<bag>.torrent are spelled in fixity/releases.py only."""
    pattern = re.compile(r"""\+ "\.parity"|\("\.parity"\)|}\.parity"|}\.torrent"|/ ["']torrents\.json["']"""
                         r"""|f"torrents/""")
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "releases.py" and path.parent.name == "fixity":
            continue
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line.split("#", 1)[0]):
                found.append(f"{path.relative_to(PACKAGE)}:{no}: {line.strip()}")
    assert found == []
