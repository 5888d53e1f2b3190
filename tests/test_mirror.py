"""mirror plan: hand-computed cases of listens at risk = share / (1 + seeders) under a budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soundark.cli import main
from soundark.errors import BadInput
from soundark.preserve.mirror import load_seeders, plan_mirror


def rel(name, phase, size, share, parity_for=None):
    return {"name": name, "phase": phase, "bytes": size, "listens_share": share,
            "magnet": f"magnet:?xt=urn:btih:{name}", "infohash_v1": name.ljust(40, "0")[:40], "parity_for": parity_for}


RELEASES = [
    rel("meta", "metadata", 10, None),
    rel("a", "audio", 100, 0.50),   # well seeded
    rel("b", "audio", 100, 0.30),   # nobody seeds it
    rel("c", "audio", 50, 0.10),
    rel("d", "audio", 200, 0.10),
    rel("b.parity", "parity", 5, None, parity_for="b"),
    rel("a.parity", "parity", 5, None, parity_for="a"),
]


def names(plan):
    return [c.name for c in plan.chosen]


def test_unseeded_release_is_weighted_up() -> None:
    # at risk: a = .5/(1+9) = .05, b = .3, c = .1/(1+0) = .1 ; per byte: b .003, c .002, a .0005
    plan = plan_mirror(RELEASES, budget=10 + 100 + 5, seeders={"a": 9})
    assert names(plan) == ["meta", "b", "b.parity"]
    assert plan.bytes == 115
    assert plan.as_dict()["at_risk_covered"] == pytest.approx(0.3)


def test_without_seeders_share_per_byte_decides() -> None:
    # per byte: a .005, b .003, c .002, d .0005; budget 260 after meta 250: a, b, c (250)
    plan = plan_mirror(RELEASES, budget=260)
    assert names(plan) == ["meta", "a", "b", "c"]
    assert plan.left_out == 3


def test_best_single_beats_greedy_when_greedy_is_poor() -> None:
    rels = [rel("small", "audio", 1, 0.02), rel("big", "audio", 100, 0.9)]
    plan = plan_mirror(rels, budget=100)  # greedy takes small (.02/B) then big no longer fits
    assert names(plan) == ["big"]


def test_nothing_fits() -> None:
    assert plan_mirror(RELEASES, budget=5).chosen == []


def test_seeders_file_forms(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"a": 3}')
    (tmp_path / "s.csv").write_text("release,seeders\na,3\nb,0\n")
    assert load_seeders(tmp_path / "s.json") == {"a": 3}
    assert load_seeders(tmp_path / "s.csv") == {"a": 3, "b": 0}
    (tmp_path / "bad.csv").write_text("a,-1\n")
    with pytest.raises(BadInput):
        load_seeders(tmp_path / "bad.csv")


def test_cli_writes_magnets_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "torrents.json").write_text(json.dumps({"format": "soundark-torrents/1", "releases": RELEASES}))
    with pytest.raises(SystemExit) as e:
        main(["mirror", "plan", "--budget", "260B", "--torrents", str(tmp_path / "torrents.json"),
              "--magnets", str(tmp_path / "m.txt"), "--json"])
    assert e.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in out["chosen"]] == ["meta", "a", "b", "c"]
    assert (tmp_path / "m.txt").read_text().splitlines()[1] == "magnet:?xt=urn:btih:a"
