"""The synthetic catalog generator's promises (benchmarks/catalog_gen.py) and a tiny run of
benchmarks/bench_scale.py, so that neither rots."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from soundark.isrc import is_valid

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen_module():
    return _module("catalog_gen")


@pytest.fixture(scope="module")
def gen(gen_module):
    return gen_module.CatalogGenerator(42)


@pytest.fixture(scope="module")
def rows(gen, tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "rows.jsonl"
    gen.write(15_000, path)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_rows_are_valid_catalog_rows(rows):
    assert len(rows) == 15_000
    for r in rows[:3000]:
        assert r["title"] and r["artists"] and r["album"]
        assert r["isrc"] is None or is_valid(r["isrc"])
        assert r["recording_mbid"] is None or len(r["recording_mbid"]) == 36
        assert 30_000 <= r["duration_ms"] <= 1_800_000 and r["listens"] >= 0


def test_isrcs_are_shared_like_the_real_catalog(rows):
    """256M tracks carry 186M ISRCs: a compilation repeats a recording with every field the same."""
    with_isrc = [r for r in rows if r["isrc"]]
    assert abs(len({r["isrc"] for r in with_isrc}) / len(with_isrc) - 186 / 256) < 0.02
    seen = {}
    for r in with_isrc:
        key = (r["title"], tuple(r["artists"]), r["duration_ms"], r["recording_mbid"], r["listens"])
        assert seen.setdefault(r["isrc"], key) == key
    assert 0.02 < sum(r["isrc"] is None for r in rows) / len(rows) < 0.04


def test_listens_follow_zipf_and_durations_are_log_normal(rows):
    listens = sorted({r["isrc"]: r["listens"] for r in rows if r["isrc"]}.values(), reverse=True)
    top = sum(listens[: len(listens) // 100]) / sum(listens)
    assert top > 0.3, top  # the top 1 % of recordings hold a third of the listens or more
    assert 0.35 < listens.count(0) / len(listens) < 0.65
    logs = [math.log(r["duration_ms"]) for r in rows]
    assert 200 < math.exp(statistics.median(logs)) / 1000 < 250
    assert 0.33 < statistics.pstdev(logs) < 0.45


def test_artists_have_several_albums_and_some_write_other_scripts(rows):
    albums = defaultdict(set)
    for r in rows:
        if r["album"].split()[0] not in ("Greatest", "The", "Essentials", "Gold", "Anthology", "Hits",
                                         "Summer", "Now", "Love", "Classics"):
            albums[r["artists"][0]].add(r["album"])
    assert statistics.mean(len(a) for a in albums.values()) > 1.5
    assert max(len(a) for a in albums.values()) >= 5

    def script(text: str) -> str:
        for c in text:
            o = ord(c)
            if 0x3040 <= o <= 0x30FF:
                return "ja"
            if 0x4E00 <= o <= 0x9FFF:
                return "han"
            if 0x0400 <= o <= 0x04FF:
                return "cyrillic"
            if 0x0600 <= o <= 0x06FF:
                return "arabic"
        return "latin"

    scripts = Counter(script(r["title"]) for r in rows)
    assert set(scripts) == {"latin", "ja", "han", "cyrillic", "arabic"}
    assert 0.05 < 1 - scripts["latin"] / len(rows) < 0.16


def test_output_depends_on_the_seed_only_not_on_chunking(gen_module, gen, tmp_path, monkeypatch):
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    nxt = gen.write(1500, a)
    monkeypatch.setattr(gen_module, "CHUNK_ALBUMS", 17)  # many small chunks: the same bytes
    assert gen_module.CatalogGenerator(42).write(1500, b) == nxt
    assert a.read_bytes() == b.read_bytes()
    gen_module.CatalogGenerator(8).write(1500, c)
    assert a.read_bytes() != c.read_bytes()
    more = tmp_path / "more.jsonl"  # a continuation: new albums of the same catalog
    gen.write(300, more, start_album=nxt)
    first = json.loads(more.read_text(encoding="utf-8").splitlines()[0])
    assert first["track_id"] == f"t{nxt}-0"
    old_ids = {json.loads(line)["track_id"] for line in a.read_text(encoding="utf-8").splitlines()}
    assert not old_ids & {json.loads(line)["track_id"] for line in more.read_text(encoding="utf-8").splitlines()}


def test_csv_holds_the_same_rows(gen, tmp_path):
    import csv

    j, c = tmp_path / "r.jsonl", tmp_path / "r.csv"
    gen.write(500, j, c)
    with open(c, encoding="utf-8", newline="") as f:
        records = list(csv.DictReader(f))
    lines = [json.loads(line) for line in j.read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(lines) == 500
    for rec, line in zip(records, lines):
        assert rec["title"] == line["title"] and rec["artists"] == "; ".join(line["artists"])
        assert rec["isrc"] == (line["isrc"] or "") and rec["rights"] == "owned"


@pytest.mark.slow
def test_bench_scale_runs_end_to_end_on_a_tiny_catalog(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH.parent),
                                                                      os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(BENCH / "bench_scale.py"), "--sizes", "2000", "--web-seconds", "1",
                           "--web-runs", "2", "--work", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["benchmark"] == "catalog_scale" and out["unit"] == "rows/s" and out["ours"] > 0
    assert out["theirs"] > 0 and out["ratio"] == pytest.approx(out["ours"] / out["theirs"], rel=0.01, abs=0.001)
    size = out["sizes"]["2000"]
    assert 1300 < size["recordings"] < 1600  # ~186/256 of 2,000 rows, plus the 1 % more
    assert size["search"]["found"] >= 0.8 * size["search"]["queries"]
    # the web answered (a request may still time out on a loaded machine: that is a figure, not a failure)
    assert size["web"]["rps"] > 0 and size["releases"]["list_s"] > 0
    # two web runs, the figure the upper median of their p95s
    runs = size["web"]["p95_ms_runs"]
    assert len(runs) == 2 and size["web"]["p95_ms"] == max(runs)
    assert len(size["web"]["server_cpu_ms_per_request_runs"]) == 2
    assert set(out["floors"]) >= {"search_p95_ms", "web_p95_ms", "plan_s", "disk_gb_at_50M",
                                  "memory_flat_but_plan"}
    assert (tmp_path / "result-2000.json").exists() and not (tmp_path / "n2000").exists()


def test_bench_scale_times_search_alone_on_a_catalog_it_is_given(gen, tmp_path):
    from soundark.catalog import open_catalog
    from soundark.catalog.importers.tabular import import_catalog_file

    rows = tmp_path / "rows.jsonl"
    albums = gen.write(3000, rows)  # the next album number: the albums the rows hold
    (tmp_path / "a").mkdir()
    with open_catalog(tmp_path / "a" / "catalog.sqlite3") as cat:
        import_catalog_file(cat, rows)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH.parent),
                                                                      os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(BENCH / "bench_scale.py"), "--search-only", str(tmp_path / "a"),
                           "--albums", str(albums)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["benchmark"] == "catalog_search" and out["queries"] == 300
    assert out["found"] >= 0.8 * out["queries"] and "CJK word of 1-2 characters (grams)" in out["by_kind"]
