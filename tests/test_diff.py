"""catalog diff: vanished, appeared, changed recordings between two real catalogs, by listens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soundark.catalog import open_catalog
from soundark.cli import main
from soundark.preserve.diff import diff_catalogs


def make_catalog(path: Path, rows: list[tuple]) -> Path:
    with open_catalog(path) as cat:
        with cat.transaction():
            for key, title, isrc, dur, listens in rows:
                cat.execute("INSERT INTO recording (key, title, artist, isrc, duration_ms, listens) "
                            "VALUES (?, ?, 'Artist', ?, ?, ?)", (key, title, isrc, dur, listens))
    return path


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    old = make_catalog(tmp_path / "old.sqlite3", [
        ("k1", "Kept", "USAAA0000001", 200_000, 50),
        ("k2", "Gone small", None, 100_000, 5),
        ("k3", "Gone big", None, 100_000, 500),
        ("k4", "Retitled", None, 100_000, 40),
        ("k5", "Stretched", None, 100_000, 30),
        ("k6", "Jitter", None, 100_000, 20),
    ])
    new = make_catalog(tmp_path / "new.sqlite3", [
        ("k1", "Kept", "USAAA0000001", 200_000, 60),
        ("k4", "Retitled (Remastered)", None, 100_000, 40),
        ("k5", "Stretched", None, 130_000, 30),
        ("k6", "Jitter", None, 100_900, 20),       # within 1 s: not a change
        ("k7", "New", None, 90_000, 7),
    ])
    return old, new


def test_diff_ranks_vanished_first_by_listens(pair) -> None:
    d = diff_catalogs(*pair)
    assert [(c.kind, c.key) for c in d.changes] == [
        ("vanished", "k3"), ("vanished", "k2"), ("changed", "k4"), ("changed", "k5"), ("appeared", "k7")]
    assert d.changes[2].fields == ("title",) and d.changes[3].fields == ("duration_ms",)
    assert d.as_dict()["listens_vanished"] == 505
    assert d.to_csv().splitlines()[1].startswith("vanished,k3,Gone big,Artist,500")


def test_cli_json_and_csv(pair, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        main(["catalog", "diff", str(pair[0]), str(pair[1]), "--csv", str(tmp_path / "d.csv"), "--json"])
    assert e.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["counts"] == {"vanished": 2, "changed": 2, "appeared": 1}
    assert len((tmp_path / "d.csv").read_text().splitlines()) == 6


def test_missing_catalog(tmp_path: Path, pair) -> None:
    with pytest.raises(SystemExit) as e:
        main(["catalog", "diff", str(tmp_path / "nope.sqlite3"), str(pair[1])])
    assert e.value.code == 1
