"""The fresh bulk path (indexes built once at the end) against the incremental one, and killed imports.

catalog/deferred.py: a fresh import keeps a committed fts_deferred row while it loads; the
next writer that opens the catalog finishes what a killed import left.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from soundark.catalog import deferred, open_catalog
from soundark.catalog.importers import _bulk, _fresh, _reader, tabular
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.catalog.search import find
from soundark.errors import BadInput
from soundark.model import Progress

QUERIES = ["song", "東京", "タワー", "北京", "artist 3", "blue*", "天安门 -song", "夜"]
TITLES = ["Song", "Blue Song", "東京タワー", "我爱北京天安门", "夜に駆ける", "Ökonomie", "Sky"]


def rows(n: int, isrc_prefix: str = "USXYZ") -> list[dict]:
    """Rows that share ISRCs, MBIDs and artist+title keys, within and across batches."""
    out = []
    for i in range(n):
        row = {"title": f"{TITLES[i % len(TITLES)]} {i % 97}", "artists": [f"Artist {i % 11}"],
               "album": f"Album {i // 9}", "duration_ms": 100000 + (i % 97) * 10, "track_number": i % 9 + 1,
               "listens": i}
        if i % 5:
            row["isrc"] = f"{isrc_prefix}{(i % 400):07d}"
        if i % 7 == 0:
            row["recording_mbid"] = f"00000000-0000-4000-8000-{(i % 300):012d}"
        out.append(row)
    return out


def write(path: Path, data: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data), encoding="utf-8")
    return path


def snapshot(catalog) -> dict:
    q = {
        "recording": "SELECT id, key, isrc, mbid, title, artist, album, duration_ms, date, listens, popularity,"
                     " rights, match_key FROM recording ORDER BY id",
        "track": "SELECT id, key, recording_id, album_id, title, artist, track_number, disc_number FROM track"
                 " ORDER BY id",
        "album": "SELECT id, key, title, artist, date, label, upc, mbid FROM album ORDER BY id",
        "artist": "SELECT id, key, name, mbid FROM artist ORDER BY id",
        "credits": "SELECT * FROM recording_artist ORDER BY 1, 2",
        "indexes": "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name",
    }
    out = {name: [tuple(r) for r in catalog.execute(sql)] for name, sql in q.items()}
    out["search"] = {q: [h.key for h in find(catalog, q, limit=200).hits] for q in QUERIES}
    out["words"] = [r[0] for r in catalog.execute(
        "SELECT key FROM recording WHERE id IN (SELECT rowid FROM recording_fts"
        " WHERE recording_fts MATCH 'song OR artist') ORDER BY key")]
    out["trigrams"] = [r[0] for r in catalog.execute(
        "SELECT key FROM recording WHERE id IN (SELECT rowid FROM recording_trigram"
        " WHERE recording_trigram MATCH '\"京タワ\" OR \"北京天\"') ORDER BY key")]
    return out


def indexes_sound(catalog) -> None:
    assert catalog.scalar("PRAGMA integrity_check") == "ok"
    for name in ("recording_fts", "recording_trigram"):
        catalog.execute(f"INSERT INTO {name}({name}, rank) VALUES ('integrity-check', 1)")
    assert catalog.scalar("SELECT count(*) FROM recording_fts_docsize") == catalog.scalar(
        "SELECT count(*) FROM recording")
    assert catalog.scalar("SELECT count(*) FROM recording_trigram_docsize") == catalog.scalar(
        "SELECT count(*) FROM recording_nospace")
    assert catalog.scalar("SELECT count(*) FROM fts_deferred") == 0


def import_twice(db: Path, first: Path, second: Path) -> list:
    with open_catalog(db) as cat:
        reports = [import_catalog_file(cat, first).as_dict(), import_catalog_file(cat, second).as_dict()]
        indexes_sound(cat)
        return [snapshot(cat), reports]


def test_fresh_and_incremental_paths_build_the_same_catalog(tmp_path, monkeypatch):
    monkeypatch.setattr(tabular, "CHUNK_BYTES", 20_000)  # ~100 rows per batch
    first = write(tmp_path / "a.jsonl", rows(1200))
    second = write(tmp_path / "b.jsonl", rows(700, "USXYZ") + rows(300, "GBABC"))  # joins and new rows
    fresh = import_twice(tmp_path / "fresh.sqlite3", first, second)
    monkeypatch.setattr(_bulk, "NEAR_EMPTY_RECORDINGS", 0)  # every batch indexed as it commits
    incremental = import_twice(tmp_path / "incremental.sqlite3", first, second)
    assert fresh[0]["search"]["東京"] and fresh[0]["search"]["タワー"] and fresh[0]["trigrams"]
    assert fresh == incremental


def test_the_fresh_path_is_taken_only_by_a_near_empty_catalog(catalog, tmp_path, monkeypatch):
    monkeypatch.setattr(_bulk, "NEAR_EMPTY_RECORDINGS", 50)
    report = import_catalog_file(catalog, write(tmp_path / "a.jsonl", rows(40)))
    assert report.counts == {}  # nothing existed to join
    states = []
    original = _bulk.BulkWriter.write

    def spy(self, batch):
        states.append((self.fresh, catalog.scalar("SELECT count(*) FROM fts_deferred")))
        return original(self, batch)

    monkeypatch.setattr(_bulk.BulkWriter, "write", spy)
    import_catalog_file(catalog, write(tmp_path / "b.jsonl", rows(60, "GBABC")))  # 40 recordings < 50
    report = import_catalog_file(catalog, write(tmp_path / "c.jsonl", rows(40)))  # now more than 50
    assert states == [(True, 1), (False, 0)]
    # every row of c.jsonl joined a recording of a.jsonl, by ISRC, MBID or name + duration
    assert sum(report.counts.values()) == 40 and report.counts["joined_by_isrc"] == 32
    assert set(report.counts) <= {"joined_by_isrc", "joined_by_mbid", "joined_by_name+duration"}
    indexes_sound(catalog)


CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from soundark.catalog import open_catalog
    from soundark.catalog.importers import _bulk, tabular
    from soundark.model import Progress

    class StopAfterOneBatch(Progress):
        def advance(self, n=1, item="", nbytes=0):
            Path(sys.argv[3]).write_text("one batch committed")
            time.sleep(600)  # the parent kills us here, mid-import

    tabular.CHUNK_BYTES = 20_000
    _bulk.GROUP_ROWS = 1  # commit every batch: the kill comes after the first
    with open_catalog(sys.argv[1]) as catalog:
        tabular.import_catalog_file(catalog, Path(sys.argv[2]), progress=StopAfterOneBatch())
""")


def test_a_killed_fresh_import_is_finished_by_the_next_open_and_the_rerun(tmp_path, archive):
    source = write(tmp_path / "rows.jsonl", rows(1200))
    db, flag = tmp_path / "killed.sqlite3", tmp_path / "flag"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(source), str(flag)],
                             env=dict(os.environ))
    try:
        while not flag.exists():
            assert child.poll() is None, "the import ended before it could be killed"
            try:
                child.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    with open_catalog(db, readonly=True) as seen:  # as the kill left it: consistent, work pending
        assert seen.scalar("PRAGMA integrity_check") == "ok"
        assert seen.scalar("SELECT count(*) FROM fts_deferred") == 1
        committed = [tuple(r) for r in seen.execute("SELECT id, title FROM recording")]
        assert 0 < len(committed) < 1200
    with open_catalog(db) as cat:  # a writer's open finishes the deferred work
        indexes_sound(cat)
        assert {"track_recording", "track_album", "recording_match", *deferred.INSERT_TRIGGERS} <= {
            r[0] for r in cat.execute("SELECT name FROM sqlite_master")}
        for rid, title in committed:  # every committed recording is searchable
            assert rid in [h.id for h in find(cat, f'"{title}"', limit=200).hits], title
        import_catalog_file(cat, source)  # the rerun finishes the job
        indexes_sound(cat)
        after = snapshot(cat)
    with open_catalog(tmp_path / "clean.sqlite3") as clean:
        import_catalog_file(clean, source)
        expected = snapshot(clean)
    assert {k: v for k, v in after.items() if k not in ("recording", "track", "album", "artist", "credits")} \
        == {k: v for k, v in expected.items() if k not in ("recording", "track", "album", "artist", "credits")}
    # the same recordings, albums and artists (which row lends an older recording a missing MBID
    # depends on the batches' history, as for any import interrupted and re-run)
    for table in ("recording", "album", "artist"):
        assert sorted(r[1] for r in after[table]) == sorted(r[1] for r in expected[table]), table
    assert len(after["track"]) == len(expected["track"]) and len(after["credits"]) == len(expected["credits"])


@pytest.mark.parametrize("group", [1, 250])
def test_a_failing_batch_keeps_the_committed_groups_searchable(tmp_path, monkeypatch, group):
    monkeypatch.setattr(tabular, "CHUNK_BYTES", 20_000)  # ~130 rows per batch
    monkeypatch.setattr(_bulk, "GROUP_ROWS", group)  # commit every batch, or every two
    original, sizes = _fresh.Memory._tracks, []

    def failing(self, rows, *args):
        sizes.append(len(rows))
        if len(sizes) == 4:
            raise RuntimeError("disk on fire")
        return original(self, rows, *args)

    monkeypatch.setattr(_fresh.Memory, "_tracks", failing)
    with open_catalog(tmp_path / "c.sqlite3") as cat:
        with pytest.raises(RuntimeError):
            import_catalog_file(cat, write(tmp_path / "a.jsonl", rows(1200)))
        # batches 1-3 committed (by one, or batches 1-2 as a group), batch 4 rolled back with its
        # group; the import's last step still built the deferred indexes over what was kept
        kept = sum(sizes[:3]) if group == 1 else sizes[0] + sizes[1]
        assert cat.scalar("SELECT count(*) FROM track") == kept
        indexes_sound(cat)


def test_the_insert_triggers_put_back_are_those_of_the_migrations(tmp_path):
    with open_catalog(tmp_path / "c.sqlite3") as cat:
        made = {name: sql for name, sql in cat.execute("SELECT name, sql FROM sqlite_master")}
        import_catalog_file(cat, write(tmp_path / "a.jsonl", rows(300)))
        after = {name: sql for name, sql in cat.execute("SELECT name, sql FROM sqlite_master")}
    for name, sql in {**deferred.INSERT_TRIGGERS, **deferred.MATCH_INDEX}.items():
        assert made[name] == after[name] == sql.replace(" IF NOT EXISTS", ""), name
    assert made == after


def test_a_reader_process_prepares_the_same_batches(tmp_path, monkeypatch):
    # (the child reads in its own default batches: a monkeypatched CHUNK_BYTES stays here)
    data = rows(700)
    data[5]["duration_ms"] = "long"  # rejected with its line, by the child
    source = write(tmp_path / "a.jsonl", data)
    with open_catalog(tmp_path / "thread.sqlite3") as cat:
        by_thread = import_catalog_file(cat, source).as_dict()
        expected = snapshot(cat)
    monkeypatch.setattr(_reader, "PROCESS_READER_BYTES", 0)
    started = []
    original = _reader.prepared_batches
    monkeypatch.setattr(_reader, "prepared_batches", lambda *a: started.append(1) or original(*a))
    with open_catalog(tmp_path / "process.sqlite3") as cat:
        by_process = import_catalog_file(cat, source).as_dict()
        assert snapshot(cat) == expected
    assert started and by_process == by_thread
    assert by_process["rejected"] == 1 and "a.jsonl:6" in str(by_process["rejections"])


def test_a_reader_process_error_reaches_the_caller(tmp_path, monkeypatch):
    source = tmp_path / "a.jsonl.gz"
    source.write_bytes(gzip.compress(write(tmp_path / "a.jsonl", rows(2000)).read_bytes())[:-4000])
    monkeypatch.setattr(_reader, "PROCESS_READER_BYTES", 0)
    with open_catalog(tmp_path / "c.sqlite3") as cat:
        with pytest.raises(BadInput, match="compressed data is damaged"):
            import_catalog_file(cat, source)
        indexes_sound(cat)  # what was read before the damage is kept, indexed


class ForeignWrite(Progress):
    """After the first batch, another connection adds a recording (as a second writer would)."""

    def __init__(self, db: Path) -> None:
        self.db, self.batches = db, 0

    def advance(self, n: int = 1, item: str = "", nbytes: int = 0) -> None:
        self.batches += 1
        if self.batches == 1:
            with open_catalog(self.db) as other, other.transaction() as conn:
                conn.execute("INSERT INTO recording(key, title, artist, match_key) VALUES"
                             " ('sa0000000000000001', 'Song 1', 'Artist 1', 'artist 1' || char(31) || 'song 1')")


def test_another_writer_between_batches_hands_over_to_the_statements(tmp_path, monkeypatch):
    monkeypatch.setattr(tabular, "CHUNK_BYTES", 20_000)
    monkeypatch.setattr(_bulk, "GROUP_ROWS", 1)
    source = write(tmp_path / "a.jsonl", rows(1200))
    handed = []
    original = _bulk.BulkWriter.write

    def spy(self, batch):
        original(self, batch)
        handed.append(self.memory is False)

    monkeypatch.setattr(_bulk.BulkWriter, "write", spy)
    results = []
    for near_empty in (100_000, 0):  # in memory first, then the statements all along
        monkeypatch.setattr(_bulk, "NEAR_EMPTY_RECORDINGS", near_empty)
        db = tmp_path / f"c{near_empty}.sqlite3"
        with open_catalog(db) as cat:
            report = import_catalog_file(cat, source, progress=ForeignWrite(db)).as_dict()
            indexes_sound(cat)
            results.append((snapshot(cat), report))
    assert handed[0] is False and handed[1] is True  # memory for batch 1, statements from batch 2
    assert results[0] == results[1]


def tricky_rows(n: int) -> list[dict]:
    """Rows that exercise every matching rule, spread over many small batches."""
    out = []
    for i in range(n):
        k = i % 40
        row = {"title": f"Tune {k % 13}", "artists": [f"Band {k % 5}"], "album": f"Record {i // 25}",
               "duration_ms": 200_000 + (i * 700) % 6_000, "track_number": i % 12 + 1,
               "listens": (i * 37) % 1000, "popularity": round((i * 7.3) % 100, 1),
               "date": f"{2000 + i % 20}-0{1 + i % 9}-01"}
        if k % 4 == 1:
            row["isrc"] = f"GBXYZ{(i % 90):07d}"  # shared ISRCs, across batches
        if k % 6 == 2:
            row["recording_mbid"] = f"00000000-0000-4000-8000-{(i % 70):012d}"  # MBID-only rows
        if k % 9 == 3:
            row["isrc"] = f"DEABC{(i % 50):07d}"  # an ISRC on a name that had none: falls back by name
        if k % 11 == 4:
            del row["artists"]  # a title alone never matches by name
        if k % 8 == 5:
            row["duration_ms"] = None  # unknown durations count as 3000 ms away
        if k % 17 == 6:
            row["track_id"] = f"spotify:track:{i % 60}"
        if i % 23 == 0:
            row["rights"] = "cc-by"
        if (i // 40) % 3 == 2 and k in (0, 10, 30):
            # identified rows onto a recording with neither identifier, by name + duration (one
            # row per recording in a batch), named as the anonymous rows of k = 0 in other rounds
            row.update(title="Tune 0", artists=["Band 0"], isrc=f"FRNEW{i:07d}")
        out.append({key: v for key, v in row.items() if v is not None})
    return out


def test_fresh_and_incremental_paths_agree_on_the_tricky_cases(tmp_path, monkeypatch):
    monkeypatch.setattr(tabular, "CHUNK_BYTES", 8_000)  # ~45 rows per batch
    first = write(tmp_path / "a.jsonl", tricky_rows(900))
    second = write(tmp_path / "b.jsonl", tricky_rows(400)[::-1])  # the same rows again, backwards
    fresh = import_twice(tmp_path / "fresh.sqlite3", first, second)
    monkeypatch.setattr(_bulk, "NEAR_EMPTY_RECORDINGS", 0)
    incremental = import_twice(tmp_path / "incremental.sqlite3", first, second)
    counts = fresh[1][0]["counts"]
    assert counts["joined_by_isrc"] and counts["joined_by_mbid"] and counts["joined_by_name+duration"]
    assert fresh == incremental
    isrc_by_name = [r for r in fresh[0]["recording"] if r[2] and r[2].startswith("FRNEW") and r[1] != r[2]]
    assert isrc_by_name  # a recording first made without identifiers took a later row's ISRC


def test_imports_leave_the_search_indexes_in_few_segments(tmp_path, monkeypatch):
    """FTS5 looks a word up in every segment: a bulk load ends with one, and an incremental import
    merges them when its commits left more than MAX_SEGMENTS (deferred.compact). Same answers."""
    monkeypatch.setattr(tabular, "CHUNK_BYTES", 4_000)  # ~20 rows per batch: one commit each
    monkeypatch.setattr(_bulk, "NEAR_EMPTY_RECORDINGS", 0)  # every batch indexed as it commits
    real = deferred.compact
    out = {}
    for name, compacting in (("piled", False), ("compacted", True)):
        with open_catalog(tmp_path / f"{name}.sqlite3") as cat:
            for table in deferred.SEARCH_INDEXES:  # FTS5 would merge as it goes: let segments pile up
                cat.execute(f"INSERT INTO {table}({table}, rank) VALUES ('automerge', 0)")
            monkeypatch.setattr(deferred, "compact", lambda conn, most=deferred.MAX_SEGMENTS: [])
            import_catalog_file(cat, write(tmp_path / "a.jsonl", rows(600)))
            piled = [deferred.segments(cat.conn, t) for t in deferred.SEARCH_INDEXES]
            assert min(piled) > deferred.MAX_SEGMENTS, piled
            monkeypatch.setattr(deferred, "compact", real if compacting else lambda conn, most=8: [])
            import_catalog_file(cat, write(tmp_path / "b.jsonl", rows(30, "GBABC")))
            out[name] = ([deferred.segments(cat.conn, t) for t in deferred.SEARCH_INDEXES],
                         {q: [h.id for h in find(cat, q, limit=50).hits] for q in QUERIES})
            for table in deferred.SEARCH_INDEXES:
                cat.execute(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")
    assert out["compacted"][0] == [1, 1] and min(out["piled"][0]) > deferred.MAX_SEGMENTS
    assert out["compacted"][1] == out["piled"][1] and all(out["piled"][1].values())


def test_a_fresh_bulk_load_ends_with_one_segment_per_search_index(tmp_path, monkeypatch):
    monkeypatch.setattr(tabular, "CHUNK_BYTES", 4_000)
    with open_catalog(tmp_path / "c.sqlite3") as cat:
        calls = []
        real = deferred.compact
        monkeypatch.setattr(deferred, "compact", lambda conn, most=deferred.MAX_SEGMENTS: calls.append(most)
                            or real(conn, most))
        import_catalog_file(cat, write(tmp_path / "a.jsonl", rows(600)))
        assert calls == [1]  # finish_in, once: the rebuild's segments merged whatever their number
        assert {t: deferred.segments(cat.conn, t) for t in deferred.SEARCH_INDEXES} == \
            {"recording_fts": 1, "recording_trigram": 1}
