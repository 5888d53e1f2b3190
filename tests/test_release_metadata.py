"""The metadata and art phases, the release list, and the `soundark release` commands."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import bagit
import libtorrent as lt
import pyarrow.parquet as pq
import pytest
import zstandard

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths, Settings, write_settings
from soundark.errors import BadInput
from soundark.release.stage import load_torrent_list, run_release_art, run_release_audio, run_release_metadata

from helpers.release import Rec, add, jpeg, libtorrent_check, sized

DATE = "2024-05-01"
SETTINGS = Settings(parity_overhead=0.0)
SECRET = "/home/operator/secret-music/track.flac"


def archive_with(root: Path, n: int = 4) -> ArchivePaths:
    paths = ArchivePaths(root)
    root.mkdir(parents=True)
    write_settings(root, SETTINGS)
    with open_catalog(paths.catalog) as cat:
        for i in range(n):
            add(cat, paths, Rec(key=f"K{i}", rank=i + 1, data=sized(i, 300), album=f"Album {i % 2}",
                                art=jpeg((40 * i, 10, 10)), rights="cc0-1.0" if i != 3 else "unknown"))
        cat.execute("INSERT INTO source_file (path, size, mtime_ns, sha256, status, scanned_at, recording_id)"
                    " VALUES (?, 10, 1234567, ?, 'ok', 'now', 1)", (SECRET, "0" * 64))
    return paths


def snapshot_file(bag: Path, tmp: Path) -> Path:
    packed = bag / "data/catalog.sqlite3.zst"
    if not packed.exists():
        return bag / "data/catalog.sqlite3"
    db = tmp / "snap.sqlite3"
    db.write_bytes(zstandard.ZstdDecompressor().decompress(packed.read_bytes()))
    return db


@pytest.mark.needs_tool("sha256sum")
def test_metadata_release_is_clean_and_complete(tmp_path: Path) -> None:
    paths = archive_with(tmp_path / "a")
    run_release_audio(paths, SETTINGS, date=DATE)
    result = run_release_metadata(paths, SETTINGS, date=DATE)
    [pub] = result.published
    assert pub.phase == "metadata" and pub.name == "soundark-metadata-0001"
    bag = paths.releases / pub.name
    assert subprocess.run(["sha256sum", "-c", "manifest-sha256.txt"], cwd=bag, capture_output=True).returncode == 0
    bagit.Bag(str(bag)).validate()
    assert libtorrent_check(paths.releases / pub.torrent, paths.releases) == 1.0
    db = snapshot_file(bag, tmp_path)
    assert b"SQLite format 3" in db.read_bytes()[:16]
    assert SECRET.encode() not in db.read_bytes(), "an operator path survived in a free page"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("SELECT path, mtime_ns FROM source_file").fetchall() == [("source-file-1", 0)]
    assert conn.execute("SELECT count(*) FROM recording").fetchone()[0] == 4
    assert conn.execute("SELECT name FROM release").fetchall() == [("soundark-audio-0001",)]
    conn.close()
    recording = pq.read_table(bag / "data/parquet/recording.parquet")
    assert recording.num_rows == 4 and "title" in recording.column_names
    assert pq.ParquetFile(bag / "data/parquet/recording.parquet").metadata.row_group(0).column(0).compression == "ZSTD"
    readme = (bag / "data/README.txt").read_text(encoding="utf-8")
    for parquet in (bag / "data/parquet").iterdir():
        assert f"data/parquet/{parquet.name}" in readme
        for column in pq.read_schema(parquet).names:
            assert f"  {column} " in readme
    assert "listens          INTEGER  total listen count, when known" in readme


def test_metadata_rerun_without_change_publishes_nothing(tmp_path: Path) -> None:
    paths = archive_with(tmp_path / "a")
    first = run_release_metadata(paths, SETTINGS, date=DATE)
    again = run_release_metadata(paths, SETTINGS, date="2024-05-02")
    assert again.published == [] and again.unchanged == [first.published[0].name]
    with open_catalog(paths.catalog) as cat:
        cat.execute("UPDATE recording SET title = 'Renamed' WHERE key = 'K0'")
    third = run_release_metadata(paths, SETTINGS, date="2024-05-02")
    assert [p.name for p in third.published] == ["soundark-metadata-0002"]


def test_metadata_is_reproducible(tmp_path: Path) -> None:
    blobs = []
    for n in (1, 2):
        paths = archive_with(tmp_path / f"a{n}")
        pub = run_release_metadata(paths, SETTINGS, date=DATE).published[0]
        blobs.append((paths.releases / pub.torrent).read_bytes())
    assert blobs[0] == blobs[1]


def test_art_release_maps_albums_to_distinct_images(tmp_path: Path) -> None:
    paths = archive_with(tmp_path / "a")
    result = run_release_art(paths, SETTINGS, date=DATE)
    [pub] = result.published
    bag = paths.releases / pub.name
    bagit.Bag(str(bag)).validate()
    assert libtorrent_check(paths.releases / pub.torrent, paths.releases) == 1.0
    images = sorted(p.name for p in (bag / "data/art").iterdir())
    # K0..K2 are redistributable; K3's own cover is used by nothing else
    assert len(images) == 3
    assert result.held_back == {"image used only by recordings that are not redistributable": 1}
    for name in images:
        import hashlib
        assert hashlib.sha256((bag / "data/art" / name).read_bytes()).hexdigest() == name.split(".")[0]
    albums = [json.loads(line) for line in (bag / "data/albums.jsonl").read_text().splitlines()]
    assert {a["title"] for a in albums} == {"Album 0", "Album 1"}
    assert all((bag / "data" / a["image"]).is_file() for a in albums)
    recordings = [json.loads(line) for line in (bag / "data/recordings.jsonl").read_text().splitlines()]
    assert [r["key"] for r in recordings] == ["K0", "K1", "K2"]
    assert run_release_art(paths, SETTINGS, date=DATE).published == []  # nothing new


def test_torrent_list_json_and_html(tmp_path: Path) -> None:
    paths = archive_with(tmp_path / "a")
    run_release_audio(paths, SETTINGS, date=DATE, target_size=600)
    run_release_metadata(paths, SETTINGS, date=DATE)
    listing = load_torrent_list(paths)
    assert listing["format"] == "soundark-torrents/1"
    rows = listing["releases"]
    assert [r["phase"] for r in rows] == ["audio", "audio", "metadata"]
    for row in rows:
        assert set(row) == {"name", "phase", "infohash_v1", "infohash_v2", "magnet", "bytes", "files",
                            "rank_first", "rank_last", "listens", "listens_share", "created", "torrent",
                            "parity_for"}
        info = lt.torrent_info(str(paths.releases / row["torrent"]))
        assert str(info.info_hashes().v1) == row["infohash_v1"] and row["created"] == DATE
    assert (rows[0]["rank_first"], rows[0]["rank_last"], rows[1]["rank_first"]) == (1, 2, 3)
    assert rows[0]["listens_share"] == pytest.approx(0.5) and rows[1]["listens_share"] == pytest.approx(0.25)
    html = (paths.releases / "torrents.html").read_text(encoding="utf-8")
    assert all(r["name"] in html and r["infohash_v1"] in html for r in rows)
    assert 'href="torrents/soundark-audio-0001.torrent"' in html


def test_load_torrent_list_refuses_junk(tmp_path: Path) -> None:
    paths = ArchivePaths(tmp_path)
    assert load_torrent_list(paths) == {"format": "soundark-torrents/1", "releases": []}
    paths.releases.mkdir()
    (paths.releases / "torrents.json").write_text('{"format": "other"}')
    with pytest.raises(BadInput):
        load_torrent_list(paths)


def test_bad_date_and_sizes_are_refused(tmp_path: Path) -> None:
    paths = archive_with(tmp_path / "a", n=1)
    for kwargs in ({"date": "2024-13-01"}, {"date": "yesterday"}, {"target_size": "lots"}, {"max_files": 0},
                   {"max_files": 200_000}):
        with pytest.raises(BadInput):
            run_release_audio(paths, SETTINGS, **kwargs)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "soundark", *args], capture_output=True, text=True, env=env)


def test_cli_release_commands(tmp_path: Path) -> None:
    paths = archive_with(tmp_path / "a")
    out = run_cli("release", "audio", "-a", str(paths.root), "--date", DATE, "--target-size", "600",
                  "--max-files", "10", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert [p["name"] for p in result["published"]] == ["soundark-audio-0001", "soundark-audio-0002"]
    assert result["held_back_total"] == 1
    text = run_cli("release", "art", "-a", str(paths.root), "--date", DATE)
    assert text.returncode == 0 and "published soundark-art-0001" in text.stdout
    meta = run_cli("release", "metadata", "-a", str(paths.root), "--date", DATE, "--json")
    assert json.loads(meta.stdout)["published"][0]["phase"] == "metadata"
    listed = run_cli("release", "list", "-a", str(paths.root), "--json")
    assert [r["name"] for r in json.loads(listed.stdout)["releases"]] == [
        "soundark-audio-0001", "soundark-audio-0002", "soundark-art-0001", "soundark-metadata-0001"]
    table = run_cli("release", "list", "-a", str(paths.root))
    assert "soundark-art-0001" in table.stdout
    bad = run_cli("release", "audio", "-a", str(paths.root), "--date", "2024-02-30")
    assert bad.returncode == 1 and "error: date: " in bad.stderr


def _scramble_history(paths: ArchivePaths) -> None:
    """What another builder's catalog goes through with the same content: other run times, encode
    jobs finishing in another order, a re-plan that remade indexes, an edit and its undoing."""
    with open_catalog(paths.catalog) as cat:
        with cat.transaction() as conn:
            conn.execute("UPDATE plan SET planned_at = '2031-07-07T07:07:07Z'")
            for table, key in (("encoded", "recording_id"), ("art", "sha256")):
                rows = conn.execute(f"SELECT * FROM {table} ORDER BY {key} DESC").fetchall()
                conn.execute(f"DELETE FROM {table}")
                marks = ", ".join("?" for _ in rows[0])
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})", [tuple(r) for r in rows])
            conn.execute("UPDATE encoded SET created_at = '2031-07-08T08:08:08Z'")
        cat.execute("DROP INDEX plan_rank")
        cat.execute("CREATE INDEX plan_rank ON plan(rank)")
        cat.execute("UPDATE recording SET title = 'Other' WHERE key = 'K1'")
        cat.execute("UPDATE recording SET title = 'Song' WHERE key = 'K1'")


def test_metadata_bytes_do_not_depend_on_the_catalog_history(tmp_path: Path) -> None:
    """Same content, different write order, timestamps and schema history: the same torrent."""
    built = []
    for n in (1, 2):
        paths = archive_with(tmp_path / f"a{n}")
        if n == 2:
            _scramble_history(paths)
        pub = run_release_metadata(paths, SETTINGS, date=DATE).published[0]
        built.append((paths, pub))
    (a, first), (b, second) = built
    db = snapshot_file(b.releases / second.name, tmp_path)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert conn.execute("SELECT DISTINCT planned_at FROM plan").fetchall() == [(DATE,)]
    assert conn.execute("SELECT DISTINCT created_at FROM encoded").fetchall() == [(DATE,)]
    assert [r[0] for r in conn.execute("SELECT recording_id FROM encoded ORDER BY rowid")] == [1, 2, 3, 4]
    assert conn.execute("SELECT rowid FROM recording_fts WHERE recording_fts MATCH 'song'").fetchall()
    conn.close()
    assert (a.releases / first.torrent).read_bytes() == (b.releases / second.torrent).read_bytes()


def test_a_snapshot_carries_the_latest_plan_figures_for_report_and_web(tmp_path: Path) -> None:
    """Coverage figures come from one place (plan.stage.coverage_figures), on a snapshot too."""
    from soundark.catalog.snapshot import open_snapshot
    from soundark.plan.stage import coverage_figures, run_plan

    paths = archive_with(tmp_path / "a")
    run_plan(paths, SETTINGS)
    run_plan(paths, SETTINGS)  # two runs: only the latest one's figures are published
    with open_catalog(paths.catalog, readonly=True) as cat:
        live = coverage_figures(cat)
    pub = run_release_metadata(paths, SETTINGS, date=DATE).published[0]
    with open_snapshot(paths.releases / pub.name) as snap:
        published = coverage_figures(snap)
        assert [tuple(r) for r in snap.execute("SELECT id, created_at, changed, tier_changes FROM plan_run")] == [
            (1, DATE, 0, 0)]
    for key in ("recordings", "kept", "bytes", "listens_total", "share_covered", "tiers", "curve_bytes", "top"):
        assert published[key] == live[key], key


def test_a_snapshots_search_tables_are_current(tmp_path: Path) -> None:
    """The snapshot rebuilds its word index, which leaves search_word and search_postings stale
    unless refreshed: a web over the snapshot uses them only while they are current."""
    from soundark.catalog import vocabulary
    from soundark.catalog.snapshot import open_snapshot

    paths = archive_with(tmp_path / "a")
    pub = run_release_metadata(paths, SETTINGS, date=DATE).published[0]
    with open_snapshot(paths.releases / pub.name) as snap:
        assert vocabulary.current(snap.conn) and vocabulary.postings_current(snap.conn)
        assert snap.execute("SELECT count(*) FROM search_word").fetchone()[0] > 0
