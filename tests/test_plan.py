"""The plan stage over a real catalog (soundark.plan.stage): hand-computed plans, re-plans,
real audio sources, and the contract with the encode stage (plan rows, encoded kept)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from soundark.catalog import Catalog
from soundark.config import ArchivePaths, Settings
from soundark.errors import Conflict, NotFound
from soundark.media.probe import probe
from soundark.media.synth import make_file
from soundark.plan.stage import coverage_figures, popularity_weight, run_plan

from helpers.plan import add_recording, add_source, plan, rows


@pytest.fixture
def abcd(catalog: Catalog) -> dict[str, int]:
    """A 600 listens (64k MP3, 800 kB, may be kept), B 300 (FLAC only), C 100 (no audio), D 0.

    opus bytes: A 101000, B 101000, C 202000, D 101000 (durations 100, 100, 200, 100 s)
    opus listens are worth 0.9: A's upgrade (699000 bytes, 0.1 x 600 value) is bought after C and
    before D (0 listens, worth nothing): cumulative 101000, 202000, 404000, 1103000 (A original),
    1204000 (D).
    """
    ids = {"A": add_recording(catalog, "A", 600, duration_ms=100_000),
           "B": add_recording(catalog, "B", 300, duration_ms=100_000),
           "C": add_recording(catalog, "C", 100, duration_ms=200_000),
           "D": add_recording(catalog, "D", 0, duration_ms=100_000)}
    ids["A.mp3"] = add_source(catalog, ids["A"], "mp3", 64_000, 800_000, 100_000)
    ids["B.flac"] = add_source(catalog, ids["B"], "flac", 700_000, 8_750_000, 100_000)
    return ids


@pytest.mark.parametrize("budget, kept, share", [
    ("100999", "", 0.0), ("101000", "A", 0.6), ("101001", "A", 0.6),
    ("403999", "AB", 0.9), ("404000", "ABC", 1.0), ("404001", "ABC", 1.0), ("505000", "ABC", 1.0),
    ("1203999", "ABC", 1.0), ("1204000", "ABCD", 1.0),
])
def test_budget_at_item_sizes(catalog: Catalog, abcd: dict, budget: str, kept: str, share: float) -> None:
    result = plan(catalog, budget)
    got = rows(catalog)
    assert "".join(k for k in "ABCD" if got[k][0] != "skip") == kept
    assert result.share_covered == pytest.approx(share)
    assert result.bytes == sum(got[k][1] for k in "ABCD") <= int(budget)
    assert all(got[k][1] == 0 and got[k][4] is None for k in "ABCD" if k not in kept)


@pytest.mark.parametrize("budget, a_tier", [("1102999", "opus75"), ("1103000", "original"),
                                            ("1103001", "original"), ("", "original")])
def test_upgrade_at_its_cost(catalog: Catalog, abcd: dict, budget: str, a_tier: str) -> None:
    plan(catalog, budget)
    a = rows(catalog)["A"]
    assert a[0] == a_tier
    assert a[1] == (800_000 if a_tier == "original" else 101_000)
    assert a[4] == abcd["A.mp3"]  # the same file is the best input and the one kept


def test_hand_computed_rows_and_figures(catalog: Catalog, abcd: dict) -> None:
    result = plan(catalog, "404000")
    assert rows(catalog) == {
        "A": ("opus75", 101_000, 1, 600.0, abcd["A.mp3"]),
        "B": ("opus75", 101_000, 2, 300.0, abcd["B.flac"]),
        "C": ("opus75", 202_000, 3, 100.0, None),   # no audio: planned from its duration
        "D": ("skip", 0, 4, 0.0, None),
    }
    assert result.kept == 3 and result.recordings == 4 and result.listens_total == 1000.0
    f = coverage_figures(catalog)
    assert f["budget"] == 404_000 and f["run_id"] == result.run_id
    assert f["curve_bytes"]["bytes"] == [101_000, 202_000, 404_000, 1_103_000, 1_204_000]
    assert f["curve_bytes"]["share"] == pytest.approx([0.6, 0.9, 1.0, 1.0, 1.0])
    assert f["curve_bytes"]["value"] == pytest.approx([0.54, 0.81, 0.9, 0.96, 0.96])
    assert f["curve_recordings"]["share"] == pytest.approx([0.6, 0.9, 1.0, 1.0])
    assert f["tiers"]["opus75"] == {"recordings": 3, "bytes": 404_000, "listens": 1000.0,
                                    "listens_max": 600.0, "listens_min": 100.0, "hours": 400 / 3600,
                                    "without_audio": 1}
    assert [(t["recordings"], t["share"]) for t in f["top"]] == [(1, 0.6), (2, 0.9)]


def test_ties_by_key_and_no_listens(catalog: Catalog) -> None:
    # inserted in reverse key order: the id order must not decide
    for key in ("c", "b", "a"):
        add_recording(catalog, key, None, duration_ms=100_000)
    result = plan(catalog, "202000")
    got = rows(catalog)
    assert [got[k][0] for k in "abc"] == ["opus75", "opus75", "skip"]
    assert [got[k][2] for k in "abc"] == [1, 2, 3]
    assert result.listens_total == 0 and result.share_covered == 0.0


def test_popularity_map_is_monotone_and_below_known_listens_scale() -> None:
    p = np.array([0.0, 1.0, 20.0, 50.0, 99.0, 100.0, 150.0])
    w = popularity_weight(p)
    assert w[0] == 0.0 and np.all(np.diff(w[:-1]) > 0) and w[-1] == w[-2]
    assert w[2] == pytest.approx(9.0) and w[5] == pytest.approx(99_999.0)


def test_weights_from_listens_popularity_or_neither(catalog: Catalog) -> None:
    add_recording(catalog, "listens", 5, popularity=100.0, duration_ms=1000)  # listens win
    add_recording(catalog, "pop", None, popularity=60.0, duration_ms=1000)
    add_recording(catalog, "none", None, duration_ms=1000)
    plan(catalog)
    got = rows(catalog)
    assert got["listens"][3] == 5.0
    assert got["pop"][3] == pytest.approx(999.0)
    assert got["none"][3] == 0.0
    assert [got[k][2] for k in ("pop", "listens", "none")] == [1, 2, 3]


def test_source_choice_and_estimates(catalog: Catalog) -> None:
    r1 = add_recording(catalog, "r1", 10, duration_ms=100_000)
    flac = add_source(catalog, r1, "flac", 900_000, 11_250_000, 100_000)
    add_source(catalog, r1, "mp3", 128_000, 1_600_000, 100_000)     # has a lossless sibling: never kept
    r2 = add_recording(catalog, "r2", 10, duration_ms=None)
    add_source(catalog, r2, "mp3", 320_000, 4_000_000, 100_000)     # too rich to keep
    keep = add_source(catalog, r2, "vorbis", 160_000, 2_000_000, 100_000)
    add_source(catalog, r2, "aac", 96_000, 1_200_000, 100_000)
    r3 = add_recording(catalog, "r3", 10, duration_ms=50_000)
    mono = add_source(catalog, r3, "opus", None, 300_000, 60_000, channels=1)  # 40 kbit/s from size
    r4 = add_recording(catalog, "r4", 10, duration_ms=None)  # no audio, no duration: the median
    plan(catalog)
    got = rows(catalog)
    assert got["r1"][0] == "opus75" and got["r1"][4] == flac
    assert got["r2"][0] == "original" and got["r2"][4] == keep and got["r2"][1] == 2_000_000
    assert got["r3"][0] == "original" and got["r3"][4] == mono
    plan(catalog, tiers=("opus75",))
    got = rows(catalog)
    assert got["r2"][4] != keep and got["r2"][1] == 101_000  # best input: 320k mp3
    assert got["r3"][1] == int(np.ceil(60_000 * 1.01 * 5 / 8))  # mono: 5/8 of the rate
    durations = sorted([100_000, 50_000] + [100_000] * 5 + [60_000])  # recordings and sources
    assert got["r4"][1] == int(np.ceil(np.median(durations) * 1.01)) and got["r4"][4] is None
    assert r4


def test_lossless_sources_are_never_kept_as_they_are(catalog: Catalog) -> None:
    rng = np.random.default_rng(3)
    codecs = ["flac", "alac", "pcm_s16le", "pcm_f32le", "wavpack", "mp3", "opus", "vorbis", "aac"]
    for i in range(120):
        rid = add_recording(catalog, f"k{i:03d}", int(rng.integers(0, 1000)), duration_ms=100_000)
        for j in range(int(rng.integers(1, 3))):
            codec = codecs[int(rng.integers(len(codecs)))]
            bitrate = int(rng.choice([64_000, 128_000, 192_000, 256_000, 900_000]))
            add_source(catalog, rid, codec, bitrate, bitrate * 100 // 8, 100_000, path=f"/m/{i}/{j}")
    plan(catalog)
    kept = catalog.execute(
        "SELECT s.codec, s.bitrate, s.lossless, (SELECT max(lossless) FROM source_file x "
        "WHERE x.recording_id = p.recording_id) FROM plan p JOIN source_file s ON s.id = p.source_id "
        "WHERE p.tier = 'original'").fetchall()
    assert kept, "some lossy sources should be kept"
    for codec, bitrate, lossless, sibling_lossless in kept:
        assert not lossless and not sibling_lossless and bitrate <= 192_000
        assert codec in ("mp3", "opus", "vorbis", "aac")


def test_replan_is_idempotent(catalog: Catalog, abcd: dict) -> None:
    first = plan(catalog, "404000")
    before = catalog.execute("SELECT * FROM plan ORDER BY recording_id").fetchall()
    second = plan(catalog, "404000")
    assert first.changed == 4 and second.changed == 0 and second.tier_changes == 0
    assert [tuple(r) for r in catalog.execute("SELECT * FROM plan ORDER BY recording_id")] == \
        [tuple(r) for r in before]
    assert catalog.scalar("SELECT count(*) FROM plan_run") == 2


def test_replan_after_new_listens_changes_tiers_and_keeps_outputs(catalog: Catalog, abcd: dict,
                                                                 archive: ArchivePaths) -> None:
    plan(catalog, "202000")
    assert [rows(catalog)[k][0] for k in "ABCD"] == ["opus75", "opus75", "skip", "skip"]
    stored = archive.store_path("ab" * 32, ".opus")
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"OggS encoded B")
    catalog.execute("INSERT INTO encoded(recording_id, tier, sha256, bytes, ext, source_sha256, encoder, "
                    "created_at) VALUES (?, 'opus75', ?, 101000, '.opus', 'x', 'test', 'now')",
                    (abcd["B"], "ab" * 32))  # its real size equals the estimate here
    catalog.execute("UPDATE recording SET listens = 5000 WHERE key = 'D'")
    result = plan(catalog, "202000")
    got = rows(catalog)
    assert [got[k][0] for k in "ABCD"] == ["opus75", "skip", "skip", "opus75"]
    assert result.tier_changes == 2
    assert [got[k][2] for k in "DABC"] == [1, 2, 3, 4]
    assert catalog.scalar("SELECT count(*) FROM encoded WHERE recording_id = ?", (abcd["B"],)) == 1
    assert stored.read_bytes() == b"OggS encoded B"


def test_deleted_recordings_leave_the_plan(catalog: Catalog, abcd: dict) -> None:
    plan(catalog)
    catalog.execute("PRAGMA foreign_keys = OFF")  # as a bulk tool might: no cascade
    catalog.execute("DELETE FROM recording WHERE key = 'D'")
    catalog.execute("PRAGMA foreign_keys = ON")
    result = plan(catalog)
    assert set(rows(catalog)) == {"A", "B", "C"} and result.recordings == 3
    assert catalog.scalar("SELECT count(*) FROM plan") == 3


def test_empty_catalog_and_no_plan_yet(catalog: Catalog, archive: ArchivePaths) -> None:
    with pytest.raises(NotFound, match="no plan yet"):
        coverage_figures(catalog)
    result = run_plan(archive, Settings(budget="1TB"))
    assert result.recordings == 0 and result.kept == 0 and result.changed == 0
    assert coverage_figures(catalog)["recordings"] == 0


def test_real_audio_sources(catalog: Catalog, tmp_path: Path, archive: ArchivePaths) -> None:
    files = {
        "flac": make_file(tmp_path / "a", "flac", 2.0),
        "mp3-128": make_file(tmp_path / "b", "mp3", 2.0, bitrate=128_000),
        "mp3-320": make_file(tmp_path / "c", "mp3", 2.0, bitrate=320_000),
        "opus": make_file(tmp_path / "d", "opus", 2.0, bitrate=64_000),
    }
    ids = {}
    for name, path in files.items():
        facts = probe(path)
        rid = add_recording(catalog, name, 100, duration_ms=facts.duration_ms)
        ids[name] = add_source(catalog, rid, facts.codec, facts.bitrate, path.stat().st_size,
                               facts.duration_ms, facts.channels, path=str(path))
    result = run_plan(archive, Settings())
    got = rows(catalog)
    assert got["flac"][0] == "opus75" and got["mp3-320"][0] == "opus75"
    assert got["mp3-128"][0] == "original" and got["opus"][0] == "original"
    assert got["mp3-128"][1] == files["mp3-128"].stat().st_size
    assert {k: v[4] for k, v in got.items()} == ids
    opus_estimate = got["flac"][1]
    assert 2.0 * 75_000 / 8 <= opus_estimate <= 2.1 * 75_000 / 8 * 1.02
    assert result.kept == 4


@pytest.mark.parametrize("rebuild_min", [0, 10**9])
def test_plan_indexes_survive_bulk_and_small_writes(catalog: Catalog, abcd: dict, rebuild_min: int,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from soundark.plan import stage

    monkeypatch.setattr(stage, "REBUILD_MIN_ROWS", rebuild_min)
    plan(catalog, "202000")
    catalog.execute("UPDATE recording SET listens = 5000 WHERE key = 'D'")
    plan(catalog, "202000")
    indexes = {r[0] for r in catalog.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'plan' "
                                             "AND type = 'index' AND sql IS NOT NULL")}
    assert indexes == {"plan_rank", "plan_tier"}
    assert catalog.execute("SELECT r.key FROM plan p JOIN recording r ON r.id = p.recording_id "
                           "WHERE p.rank = 1").fetchone()[0] == "D"
    assert catalog.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("ids", [[5, 1, 3], [10**12, 7, 2**40]])  # dense table and sparse search
def test_locate(ids: list[int]) -> None:
    from soundark.plan.stage import locate

    got = locate(np.array(ids, dtype=np.int64), np.array([ids[2], -4, ids[0], 999_999, ids[1]]))
    assert got.tolist() == [2, -1, 0, -1, 1]
    assert locate(np.zeros(0, dtype=np.int64), np.array([1])).tolist() == [-1]


def test_the_plan_writes_only_tier_names_its_check_allows_and_restores_the_check(catalog: Catalog, abcd: dict) -> None:
    """The plan's writes skip plan.tier's CHECK (an IN list: ~5 us a row); the names they write are
    exactly the CHECK's, and the check is back on after, also when the write fails."""
    import re

    from soundark.plan import stage
    from soundark.plan.coverage import TIER_NAMES

    ddl = catalog.scalar("SELECT sql FROM sqlite_master WHERE name = 'plan'")
    listed = re.search(r"CHECK \(tier IN \(([^)]*)\)\)", ddl).group(1)
    assert tuple(x.strip().strip("'") for x in listed.split(",")) == TIER_NAMES
    plan(catalog, "2 MB")
    assert catalog.scalar("PRAGMA ignore_check_constraints") == 0
    assert {r[0] for r in rows(catalog).values()} <= set(TIER_NAMES)
    with pytest.raises(Conflict, match="CHECK"):
        catalog.execute("UPDATE plan SET tier = 'bogus'")  # the CHECK holds for every other writer

    class Broken(stage.NO_PROGRESS.__class__):
        writing = False

        def start(self, total: int | None, description: str = "", unit: str = "items") -> None:
            self.writing = description == "writing plan"

        def advance(self, n: int = 1, item: str = "", nbytes: int = 0) -> None:
            if self.writing:  # inside the write loop, after the first batch went in unchecked
                raise OSError("disk gone")

    with catalog.transaction() as conn:
        conn.execute("DELETE FROM plan")
    with pytest.raises(OSError):
        stage.plan_catalog(catalog, stage.PlanSettings.from_settings(Settings(budget="2 MB")), Broken())
    assert catalog.scalar("PRAGMA ignore_check_constraints") == 0
