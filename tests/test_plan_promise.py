"""The plan's fallback weights (no or partial listen counts) and the budget as a promise
(real sizes after encode, released bytes spent, release stopping at the budget, `plan --check`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soundark.catalog import Catalog, open_catalog
from soundark.cli import main
from soundark.config import ArchivePaths, Settings, write_settings
from soundark.plan.signals import ALBUM_DAMPING, ARTIST_DAMPING
from soundark.plan.stage import coverage_figures
from soundark.release.stage import OVER_BUDGET, run_release_audio

from helpers.plan import add_recording, add_source, plan, rows
from helpers.release import Rec, add, sized


def album(catalog: Catalog, name: str) -> int:
    return int(catalog.execute("INSERT INTO album(key, title) VALUES (?, ?)", (f"al:{name}", name)).lastrowid)


def on_album(catalog: Catalog, rid: int, aid: int, number: int) -> None:
    catalog.execute("INSERT INTO track(key, recording_id, album_id, title, track_number) VALUES (?, ?, ?, 't', ?)",
                    (f"t{rid}-{aid}", rid, aid, number))


def credit(catalog: Catalog, rid: int, artist: str) -> None:
    catalog.execute("INSERT OR IGNORE INTO artist(key, name) VALUES (?, ?)", (f"n:{artist}", artist))
    aid = catalog.scalar("SELECT id FROM artist WHERE key = ?", (f"n:{artist}",))
    catalog.execute("INSERT INTO recording_artist(recording_id, position, artist_id) VALUES (?, 0, ?)", (rid, aid))


def test_every_fallback_level(catalog: Catalog) -> None:
    hit = add_recording(catalog, "hit", 1000, duration_ms=100_000)
    popular = add_recording(catalog, "pop", None, popularity=60, duration_ms=100_000)
    mate = add_recording(catalog, "mate", None, duration_ms=100_000)      # same album as the hit
    sibling = add_recording(catalog, "sib", None, duration_ms=100_000)    # same artist, other album
    stranger = add_recording(catalog, "str", None, duration_ms=100_000)   # nothing known
    first, second = album(catalog, "First"), album(catalog, "Second")
    on_album(catalog, hit, first, 1)
    on_album(catalog, mate, first, 2)
    on_album(catalog, sibling, second, 1)
    for rid in (hit, mate, sibling):
        credit(catalog, rid, "Band")
    result = plan(catalog)
    got = rows(catalog)
    assert got["hit"][3] == 1000.0 and got["pop"][3] == pytest.approx(999.0)
    assert got["mate"][3] == pytest.approx(ALBUM_DAMPING * 1000)
    assert got["sib"][3] == pytest.approx(ARTIST_DAMPING * 1000)
    assert got["str"][3] == 0.0
    assert result.signal == {"mode": "partial", "counts": {"listens": 1, "popularity": 1, "album": 1,
                                                           "artist": 1, "none": 1}}
    del popular, stranger


def test_partial_counts_are_stated(catalog: Catalog, archive: ArchivePaths, capsys: pytest.CaptureFixture) -> None:
    for i in range(5):
        add_recording(catalog, f"r{i}", 10 if i < 2 else None, duration_ms=100_000)
    catalog.conn.commit()
    code, out = run(capsys, "plan", "-a", str(archive.root))
    assert code == 0 and "partial listen data: 2 of 5 recordings have listens or popularity" in out
    code, out = run(capsys, "report", "-a", str(archive.root))
    assert "partial listen data: 2 of 5 recordings" in out


def test_no_listen_data_keeps_whole_albums_in_scan_order(catalog: Catalog, archive: ArchivePaths,
                                                         capsys: pytest.CaptureFixture) -> None:
    # scanned: album B's files first, then album A's; keys sort the other way
    write_settings(archive.root, Settings(opus_bitrate=8000))
    a, b = album(catalog, "A"), album(catalog, "B")
    recs = {}
    for name, aid, n in (("b1", b, 1), ("b2", b, 2), ("a1", a, 1), ("a2", a, 2), ("a3", a, 3)):
        recs[name] = add_recording(catalog, f"z{name}" if aid == b else name, None, duration_ms=100_000)
        on_album(catalog, recs[name], aid, n)
        add_source(catalog, recs[name], "flac", 700_000, 8_750_000, 100_000)
    catalog.conn.commit()
    # 8 kbit/s: 101000 B each; 350000 B holds album B (2) and one more, which would cut album A
    code, out = run(capsys, "plan", "-a", str(archive.root), "--budget", "350000", "--json")
    result = json.loads(out)
    assert result["signal"]["mode"] == "none"
    with open_catalog(archive.catalog, readonly=True) as cat:
        got = rows(cat)
        f = coverage_figures(cat)
    assert [got[k][0] for k in ("zb1", "zb2", "a1", "a2", "a3")] == ["opus75", "opus75", "skip", "skip", "skip"]
    assert [got[k][2] for k in ("zb1", "zb2", "a1", "a2", "a3")] == [1, 2, 3, 4, 5]
    assert f["hours_kept"] == pytest.approx(200 / 3600)
    code, out = run(capsys, "plan", "-a", str(archive.root), "--budget", "350000")
    assert "no listen data: every recording weighs the same" in out and "% of listens" not in out
    code, out = run(capsys, "report", "-a", str(archive.root))
    assert "no listen data" in out and "% of listens" not in out
    from fastapi.testclient import TestClient

    from soundark.web.app import create_app
    with TestClient(create_app(archive.root), raise_server_exceptions=False) as client:
        summary = client.get("/api/coverage").json()["summary"]
        page = client.get("/coverage", headers={"accept": "text/html"}).text
    assert summary["signal_mode"] == "none" and summary["hours_kept"] == pytest.approx(200 / 3600)
    assert 'id="signal"' in page and "no listen data" in page and "of all listens" not in page


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    return info.value.code, capsys.readouterr().out


@pytest.fixture
def slow_archive(archive: ArchivePaths) -> ArchivePaths:
    write_settings(archive.root, Settings(opus_bitrate=8000, parity_overhead=0.0))
    return archive


def test_plan_after_encode_uses_real_sizes_and_check_says_how_far(catalog: Catalog, slow_archive: ArchivePaths,
                                                                  capsys: pytest.CaptureFixture) -> None:
    a = add_recording(catalog, "A", 300, duration_ms=100_000)
    b = add_recording(catalog, "B", 200, duration_ms=100_000)
    c = add_recording(catalog, "C", 100, duration_ms=100_000)
    catalog.conn.commit()
    code, _ = run(capsys, "plan", "-a", str(slow_archive.root), "--budget", "303000")
    assert [rows(catalog)[k][0] for k in "ABC"] == ["opus75"] * 3  # 3 x 101000 estimated
    # encode wrote A and B larger than estimated: the plan as stored is now over the budget
    for rid in (a, b):
        catalog.execute("INSERT INTO encoded(recording_id, tier, sha256, bytes, ext, source_sha256, encoder, "
                        "created_at) VALUES (?, 'opus75', ?, 150000, '.opus', 'x', 't', 'now')", (rid, f"{rid:064d}"))
    catalog.conn.commit()
    code, out = run(capsys, "plan", "-a", str(slow_archive.root), "--budget", "303000", "--check", "--json")
    check = json.loads(out)
    assert code == 1 and check["actual"] == 150000 * 2 + 101000 and check["over_by"] == 98000
    assert check["encoded_recordings"] == 2 and check["pending"] == 101000 and not check["fits"]
    # the re-plan uses the real sizes and drops the cheapest-value recording instead of overrunning
    run(capsys, "plan", "-a", str(slow_archive.root), "--budget", "303000")
    got = rows(catalog)
    assert [got[k][0] for k in "ABC"] == ["opus75", "opus75", "skip"] and got["A"][1] == 150000
    code, out = run(capsys, "plan", "-a", str(slow_archive.root), "--budget", "303000", "--check")
    assert code == 0 and "budget 303.0 kB: 3.0 kB under with real sizes" in out
    del c


def test_released_bytes_never_exceed_the_budget(tmp_path: Path) -> None:
    paths = ArchivePaths(tmp_path / "a")
    paths.root.mkdir()
    write_settings(paths.root, Settings(parity_overhead=0.0))
    open_catalog(paths.catalog).close()
    with open_catalog(paths.catalog) as cat:
        # encoded outputs larger than the plan expected: 3 x 400 bytes, budget 1000
        for i in range(3):
            add(cat, paths, Rec(key=f"K{i}", rank=i + 1, data=sized(i, 400), listens=300 - 100 * i))
    settings = Settings(parity_overhead=0.0, budget="1000")
    result = run_release_audio(paths, settings, date="2024-05-01")
    assert result.held_back == {OVER_BUDGET: 1}
    with open_catalog(paths.catalog, readonly=True) as cat:
        released = cat.scalar("SELECT sum(bytes) FROM release_file WHERE recording_id IS NOT NULL")
    assert released == 800 <= 1000
    # a re-plan counts the released bytes as spent and keeps them as released; the third is dropped
    with open_catalog(paths.catalog) as cat:
        from soundark.plan.budget import PlanSettings
        from soundark.plan.stage import plan_catalog
        planned = plan_catalog(cat, PlanSettings.from_settings(settings))
        tiers = dict(cat.execute("SELECT r.key, p.tier FROM plan p JOIN recording r ON r.id = p.recording_id"))
    assert planned.bytes_released == 800 and planned.bytes <= 1000
    assert tiers == {"K0": "opus75", "K1": "opus75", "K2": "skip"}
    again = run_release_audio(paths, settings, date="2024-05-02")
    assert again.published == [] and OVER_BUDGET not in again.held_back


def test_policy_flags_on_the_command_line(catalog: Catalog, slow_archive: ArchivePaths,
                                          capsys: pytest.CaptureFixture) -> None:
    # three 128k MP3s (1.6 MB originals, 101000 B as opus75) with 700, 200 and 100 listens
    for key, listens in (("A", 700), ("B", 200), ("C", 100)):
        rid = add_recording(catalog, key, listens, duration_ms=100_000)
        add_source(catalog, rid, "mp3", 128_000, 1_600_000, 100_000)
    catalog.conn.commit()
    root = str(slow_archive.root)
    code, out = run(capsys, "plan", "-a", root, "--policy", "popular-originals", "--original-top", "50%", "--json")
    result = json.loads(out)
    assert code == 0 and result["policy"] == "popular-originals"
    assert [rows(catalog)[k][0] for k in "ABC"] == ["original", "opus75", "opus75"]  # A holds 70 %
    run(capsys, "plan", "-a", root, "--policy", "popular-originals", "--original-top", "0.8")
    assert [rows(catalog)[k][0] for k in "ABC"] == ["original", "original", "opus75"]
    # the value rule without a budget keeps every original; a listen in opus worth 1.0 changes nothing there
    run(capsys, "plan", "-a", root, "--opus-value", "1.0")
    assert [rows(catalog)[k][0] for k in "ABC"] == ["original"] * 3
    for bad in (("--policy", "loudest"), ("--original-top", "150%"), ("--opus-value", "0")):
        code, _ = run(capsys, "plan", "-a", root, *bad)
        assert code == 1, bad
