"""Catalog rows from JSONL, CSV and Parquet: formats, rejections, matching, idempotence, streaming."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from soundark.catalog.importers import _rows, tabular
from soundark.catalog.importers.columns import ColumnOptions
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.errors import BadInput, NotFound
from soundark.model import Progress, derived_key, match_key, mbid_key, normalise_text

MBID = "f1a3c2d4-0000-4000-8000-000000000001"
REL = "0b7e3a7c-1111-4111-8111-000000000002"

ROWS = [
    {"title": "Heart of Gold", "artists": ["Neil Young"], "album": "Harvest", "isrc": "USRE10000001",
     "duration_ms": 185000, "date": "1972-02-01", "label": "Reprise", "track_number": 1,
     "disc_number": 1, "listens": 1000, "upc": "075992727726"},
    {"title": "Ökonomie der Zeit", "artists": ["Björk", "Ólafur Arnalds"], "album": "Nacht",
     "isrc": "de-a12-99-00001", "recording_mbid": MBID, "release_mbid": REL, "duration_ms": 200000,
     "track_number": 2, "popularity": 55.5, "rights": "cc-by-4.0"},
    {"title": "東京の夜", "artists": ["山田"], "album": "夜", "duration_ms": 240000, "track_number": 3},
]


class Notes(Progress):
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.advanced = 0

    def note(self, message: str) -> None:
        self.notes.append(message)

    def advance(self, n: int = 1, item: str = "", nbytes: int = 0) -> None:
        self.advanced += n


def write_jsonl(path: Path, rows: list[dict], extra_lines: dict[int, str] | None = None) -> Path:
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    for at, text in sorted((extra_lines or {}).items()):
        lines.insert(at, text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    cols = sorted({k for r in rows for k in r})
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow(["; ".join(r[c]) if c == "artists" else r.get(c, "") for c in cols])
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    cols = sorted({k for r in rows for k in r})
    pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in rows]), path)
    return path


def snapshot(catalog) -> dict:
    q = {
        "recording": "SELECT key, isrc, mbid, title, artist, album, duration_ms, listens, popularity, rights,"
                     " match_key FROM recording ORDER BY key",
        "track": "SELECT t.key, r.key, a.key, t.title, t.artist, t.track_number, t.disc_number FROM track t"
                 " JOIN recording r ON r.id = t.recording_id LEFT JOIN album a ON a.id = t.album_id ORDER BY t.key",
        "album": "SELECT key, title, artist, date, label, upc, mbid FROM album ORDER BY key",
        "artist": "SELECT key, name, mbid FROM artist ORDER BY key",
        "credits": "SELECT r.key, ra.position, a.key FROM recording_artist ra JOIN recording r"
                   " ON r.id = ra.recording_id JOIN artist a ON a.id = ra.artist_id ORDER BY 1, 2",
    }
    return {name: [tuple(row) for row in catalog.execute(sql)] for name, sql in q.items()}


def count(catalog, table: str) -> int:
    return int(catalog.scalar(f"SELECT count(*) FROM {table}"))


@pytest.mark.parametrize("writer, name", [(write_jsonl, "rows.jsonl"), (write_jsonl, "rows.ndjson"),
                                          (write_csv, "rows.csv"), (write_parquet, "rows.parquet")])
def test_every_format_imports_the_same_catalog(catalog, tmp_path, writer, name):
    report = import_catalog_file(catalog, writer(tmp_path / name, ROWS), rights="owned")
    assert (report.new, report.updated, report.unchanged, report.rejected) == (3, 0, 0, 0)
    snap = snapshot(catalog)
    assert [r[0] for r in snap["recording"]] == sorted(
        ["USRE10000001", "DEA129900001", derived_key("cat", match_key("山田", "東京の夜"), 240)])
    heart = next(r for r in snap["recording"] if r[0] == "USRE10000001")
    assert heart[1:10] == ("USRE10000001", None, "Heart of Gold", "Neil Young", "Harvest", 185000, 1000, None,
                           "owned")
    bjork = next(r for r in snap["recording"] if r[0] == "DEA129900001")
    assert bjork[2] == MBID and bjork[4] == "Björk, Ólafur Arnalds" and bjork[8] == 55.5
    assert bjork[9] == "cc-by-4.0"  # the row's own rights win over the argument
    assert {a[0] for a in snap["album"]} == {"upc:075992727726", "mb" + REL.replace("-", ""),
                                             derived_key("album", "山田", "夜")}
    assert ("n:" + normalise_text("Ólafur Arnalds"), "Ólafur Arnalds", None) in snap["artist"]
    credits = [c for c in snap["credits"] if c[0] == "DEA129900001"]
    assert [c[2] for c in credits] == ["n:bjork", "n:olafur arnalds"]
    heart_track = next(t for t in snap["track"] if t[1] == "USRE10000001")
    assert heart_track[0] == derived_key("track", "USRE10000001", "upc:075992727726", 1, 1)
    # the FTS index holds the new recordings (deferred per batch by migration 0005)
    hits = catalog.execute("SELECT rowid FROM recording_fts WHERE recording_fts MATCH 'okonomie'").fetchall()
    assert len(hits) == 1


def test_formats_agree_exactly(catalog, tmp_path, archive):
    import_catalog_file(catalog, write_jsonl(tmp_path / "a.jsonl", ROWS), rights="owned")
    first = snapshot(catalog)
    from soundark.catalog import open_catalog

    for i, writer in enumerate((write_csv, write_parquet)):
        other = open_catalog(tmp_path / f"other{i}.sqlite3")
        import_catalog_file(other, writer(tmp_path / f"b{i}{'.csv' if i == 0 else '.parquet'}", ROWS),
                            rights="owned")
        assert snapshot(other) == first
        other.close()


def test_reimport_is_idempotent(catalog, tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", ROWS)
    import_catalog_file(catalog, path, rights="owned")
    before = snapshot(catalog)
    report = import_catalog_file(catalog, path, rights="owned")
    assert (report.new, report.updated, report.unchanged) == (0, 0, 3)
    assert snapshot(catalog) == before
    fts_rows = catalog.scalar("SELECT count(*) FROM recording_fts WHERE recording_fts MATCH 'gold'")
    assert fts_rows == 1


def test_changed_row_counts_as_updated(catalog, tmp_path):
    import_catalog_file(catalog, write_jsonl(tmp_path / "a.jsonl", ROWS), rights="owned")
    changed = [dict(ROWS[0], listens=5000, track_number=7)] + ROWS[1:]
    report = import_catalog_file(catalog, write_jsonl(tmp_path / "b.jsonl", changed), rights="owned")
    # track_number is part of the derived track key, so the changed track is a new one
    assert (report.new, report.updated, report.unchanged) == (1, 0, 2)
    assert catalog.scalar("SELECT listens FROM recording WHERE isrc = 'USRE10000001'") == 5000
    more = [dict(ROWS[0], listens=9000)] + ROWS[1:]
    report = import_catalog_file(catalog, write_jsonl(tmp_path / "c.jsonl", more), rights="owned")
    assert (report.new, report.updated, report.unchanged) == (0, 1, 2)


BAD_LINES = {
    1: '{"title": "no closing brace"',
    2: '["a", "list"]',
    3: json.dumps({"artists": ["X"], "isrc": "USRE10000009"}),
    4: json.dumps({"title": "Bad ISRC", "isrc": "US-RE1-00-0001"}),
    5: json.dumps({"title": "Bad duration", "duration_ms": "3:15"}),
    6: json.dumps({"title": "Fractional duration", "duration_ms": 12.5}),
    7: json.dumps({"title": "Negative listens", "listens": -4}),
    8: json.dumps({"title": "Too popular", "popularity": 101}),
    9: json.dumps({"title": "Bad mbid", "recording_mbid": "not-a-uuid"}),
    10: json.dumps({"title": "Bad country", "isrc": "1SRE10000001"}),
    11: json.dumps({"title": "   "}),
}


def test_bad_rows_are_rejected_with_line_and_reason(catalog, tmp_path):
    # good rows at lines 1, 13, 14; bad ones at lines 2-12; a blank line too
    path = write_jsonl(tmp_path / "mixed.jsonl", ROWS, {**BAD_LINES, 12: ""})
    report = import_catalog_file(catalog, path, rights="owned")
    assert report.new == 3 and report.rejected == 11
    reasons = {r.subject: r.reason for r in report.rejections}
    assert set(reasons) == {f"mixed.jsonl:{n}" for n in range(2, 13)}
    assert reasons["mixed.jsonl:2"].startswith("not valid JSON")
    assert reasons["mixed.jsonl:3"] == "not a JSON object but list"
    assert reasons["mixed.jsonl:4"] == "no title"
    assert reasons["mixed.jsonl:5"] == "US-RE1-00-0001: ISRC must have 12 characters, not 11"  # isrc module
    assert "3:15" in reasons["mixed.jsonl:6"] and "whole number" in reasons["mixed.jsonl:6"]
    assert "12.5" in reasons["mixed.jsonl:7"]
    assert reasons["mixed.jsonl:8"] == "listens -4 is negative"
    assert reasons["mixed.jsonl:9"] == "popularity 101 is outside 0-100"
    assert "not a MusicBrainz ID" in reasons["mixed.jsonl:10"]
    assert reasons["mixed.jsonl:11"] == "1SRE10000001: country code '1S' must be two letters"
    assert reasons["mixed.jsonl:12"] == "no title"
    assert count(catalog, "track") == 3


def test_csv_rejections_name_lines(catalog, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("title,artists,isrc,listens,extra\n"
                    "Song A,A; B,USAAA0000001,5,x\n"
                    "Song B,C,bad,1,x\n"
                    "Song C,D,,1,x,too,many\n"
                    ",E,,1,x\n"
                    "Song D,F,,abc,x\n", encoding="utf-8")
    notes = Notes()
    report = import_catalog_file(catalog, path, rights="owned", progress=notes)
    assert report.new == 1 and report.rejected == 4
    reasons = {r.subject: r.reason for r in report.rejections}
    assert reasons["rows.csv:3"] == "bad: ISRC must have 12 characters, not 3"
    assert reasons["rows.csv:4"] == "7 fields, but the header has 5"
    assert reasons["rows.csv:5"] == "no title"
    assert reasons["rows.csv:6"] == "listens abc is not a whole number"
    assert notes.notes == ["rows.csv: ignoring unknown column(s): extra"]
    assert catalog.scalar("SELECT artist FROM recording") == "A, B"


def test_unknown_jsonl_columns_are_noted_once(catalog, tmp_path):
    rows = [dict(r, mood="happy", bpm=120) for r in ROWS]
    notes = Notes()
    import_catalog_file(catalog, write_jsonl(tmp_path / "r.jsonl", rows), progress=notes)
    assert notes.notes == ["r.jsonl: ignoring unknown column(s): bpm, mood"]
    assert notes.advanced == 3


def test_tracks_sharing_an_isrc_share_one_recording(catalog, tmp_path):
    rows = [
        {"title": "Hit", "artists": ["A"], "album": "Single", "isrc": "GBAAA0000001", "duration_ms": 180000,
         "listens": 10},
        {"title": "Hit", "artists": ["A"], "album": "Best Of", "isrc": "gb-aaa-00-00001", "listens": 30},
        {"title": "Hit (Remastered)", "artists": ["A"], "album": "Box Set", "isrc": "GBAAA0000001"},
    ]
    report = import_catalog_file(catalog, write_jsonl(tmp_path / "r.jsonl", rows))
    assert report.new == 3
    assert count(catalog, "recording") == 1 and count(catalog, "track") == 3 and count(catalog, "album") == 3
    rec = catalog.execute("SELECT title, album, listens FROM recording").fetchone()
    assert tuple(rec) == ("Hit", "Single", 30)  # first title and album seen; the largest count


def test_rows_match_existing_recordings(catalog, tmp_path):
    import_catalog_file(catalog, write_jsonl(tmp_path / "a.jsonl", [
        {"title": "Anonymous", "artists": ["Nobody"], "duration_ms": 100000},
        {"title": "Known", "artists": ["Somebody"], "recording_mbid": MBID, "duration_ms": 150000},
    ]))
    assert count(catalog, "recording") == 2
    rows = [
        # no identifier: match key within 3000 ms joins the anonymous recording
        {"title": "anonymous!", "artists": ["NOBODY"], "duration_ms": 102500, "album": "Later"},
        # 5000 ms away: a different recording
        {"title": "Anonymous", "artists": ["Nobody"], "duration_ms": 105000, "album": "Live"},
        # same MBID, with an ISRC: joins the MBID's recording and gives it the ISRC
        {"title": "Known", "artists": ["Somebody"], "recording_mbid": MBID.upper(), "isrc": "FRZZZ1200001"},
    ]
    report = import_catalog_file(catalog, write_jsonl(tmp_path / "b.jsonl", rows))
    # the MBID row is the track already there (same recording, no album): it gains the ISRC
    assert (report.new, report.updated, report.unchanged) == (2, 1, 0)
    assert count(catalog, "recording") == 3
    assert catalog.scalar("SELECT isrc FROM recording WHERE mbid = ?", (MBID,)) == "FRZZZ1200001"
    anon_tracks = catalog.execute(
        "SELECT count(*) FROM track t JOIN recording r ON r.id = t.recording_id WHERE r.duration_ms = 100000"
    ).fetchone()[0]
    assert anon_tracks == 2
    assert catalog.scalar("SELECT count(*) FROM track t JOIN recording r ON r.id = t.recording_id"
                          " WHERE r.mbid = ?", (MBID,)) == 1
    again = import_catalog_file(catalog, write_jsonl(tmp_path / "b.jsonl", rows))
    assert (again.new, again.unchanged, count(catalog, "recording")) == (0, 3, 3)


def test_isrc_row_adopts_an_anonymous_recording(catalog, tmp_path):
    import_catalog_file(catalog, write_jsonl(tmp_path / "a.jsonl", [
        {"title": "Untagged", "artists": ["Band"], "duration_ms": 200000}]))
    key = catalog.scalar("SELECT key FROM recording")
    rows = [{"title": "Untagged", "artists": ["Band"], "duration_ms": 201000, "isrc": "SEAAA0000001"},
            {"title": "Untagged", "artists": ["Band"], "duration_ms": 199000, "isrc": "SEAAA0000002"}]
    import_catalog_file(catalog, write_jsonl(tmp_path / "b.jsonl", rows))
    # the first ISRC takes the anonymous recording; the second, different ISRC gets its own
    got = {tuple(r) for r in catalog.execute("SELECT key, isrc FROM recording")}
    assert got == {(key, "SEAAA0000001"), ("SEAAA0000002", "SEAAA0000002")}
    again = import_catalog_file(catalog, write_jsonl(tmp_path / "b.jsonl", rows))
    assert (again.new, again.updated, again.unchanged) == (0, 0, 2)
    assert count(catalog, "recording") == 2


def test_batches_give_the_same_result_as_one(catalog, tmp_path, monkeypatch, archive):
    rows = []
    for i in range(300):
        rows.append({"title": f"Song {i % 120}", "artists": [f"Artist {i % 7}"], "album": f"Album {i // 10}",
                     "isrc": None if i % 5 == 0 else f"USXYZ{(i % 200):07d}", "duration_ms": 100000 + i % 120,
                     "track_number": i % 10 + 1, "listens": i})
    rows = [{k: v for k, v in r.items() if v is not None} for r in rows]
    path = write_jsonl(tmp_path / "many.jsonl", rows)
    import_catalog_file(catalog, path)
    whole = snapshot(catalog)
    from soundark.catalog import open_catalog

    monkeypatch.setattr(tabular, "CHUNK_BYTES", 1500)  # ~15 rows per batch
    with open_catalog(tmp_path / "batched.sqlite3") as other:
        notes = Notes()
        report = import_catalog_file(other, path, progress=notes)
        assert report.new + report.updated + report.unchanged == 300 and report.rejected == 0
        assert notes.advanced == 300
        assert snapshot(other) == whole


def test_reading_is_streamed_in_bounded_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(tabular, "CHUNK_BYTES", 64 * 1024)
    path = write_jsonl(tmp_path / "big.jsonl", [dict(ROWS[0], isrc=f"USRE1{i:07d}") for i in range(20_000)])
    size = path.stat().st_size
    with open(path, "rb") as stream:
        frames = tabular.jsonl_frames(stream, ColumnOptions(_rows.FIELDS))
        first = next(frames)
        # only about one block has been read when the first batch is handed out
        assert stream.tell() <= 2 * 64 * 1024 < size
        heights = [first.df.height] + [f.df.height for f in frames]
    assert sum(heights) == 20_000 and max(heights) < 1000
    assert first.df["_line"].to_list()[:3] == [1, 2, 3]


def test_pipeline_keeps_at_most_a_few_batches_in_memory():
    from soundark.catalog.importers._bulk import pipelined

    produced = []

    def batches():
        for i in range(100):
            produced.append(i)
            yield i

    consumed = 0
    for _item in pipelined(batches(), lambda b: b, depth=2):
        consumed += 1
        assert len(produced) - consumed <= 4  # queue depth + one in hand + one being prepared
        if consumed == 10:
            break
    assert len(produced) < 20


def test_compressed_inputs(catalog, tmp_path):
    data = ("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS) + "\n").encode()
    (tmp_path / "r.jsonl.gz").write_bytes(gzip.compress(data))
    (tmp_path / "r.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    assert import_catalog_file(catalog, tmp_path / "r.jsonl.gz").new == 3
    assert import_catalog_file(catalog, tmp_path / "r.jsonl.zst").unchanged == 3


def test_file_errors(catalog, tmp_path):
    with pytest.raises(NotFound, match="no such file"):
        import_catalog_file(catalog, tmp_path / "missing.jsonl")
    (tmp_path / "rows.txt").write_text("x")
    with pytest.raises(BadInput, match="unknown catalog format"):
        import_catalog_file(catalog, tmp_path / "rows.txt")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(BadInput, match="not a readable Parquet file"):
        import_catalog_file(catalog, tmp_path / "bad.parquet")
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(b'{"title": "x"}\n' * 1000)[:60])
    with pytest.raises(BadInput, match="compressed data is damaged"):
        import_catalog_file(catalog, tmp_path / "cut.jsonl.gz")


NORMALISE_CASES = [
    "Heart of Gold", "  Mixed   CASE  ", "Song (feat. Someone Else)", "Track ft. X", "Featuring Nobody",
    "Björk", "Ólafur Arnalds", "Ökonomie der Zeit", "Straße", "ﬁne ligature", "東京の夜", "Москва ночь",
    "naïve déjà vu", "Ⅻ roman", "½ half", "snake_case_title", "tab\tand\nnewline", "emoji 🎵 note",
    "ǅ digraph", "İstanbul", "ΣΊΣΥΦΟΣ", "a\u0301\u0302 stacked", "hangul 한국어", "", "!!!", "ß", "x\x1fy",
    "Arabic العربية", "Hebrew עִבְרִית", "Thai ภาษาไทย", "Devanagari हिन्दी", "Zalgo z̷̢a̶l̸g̵o",
]


@pytest.mark.parametrize("text", NORMALISE_CASES)
def test_fast_normalise_equals_the_model(text):
    assert _rows._normalise(text) == normalise_text(text)


def test_cli_import_catalog(archive, tmp_path):
    from typer.testing import CliRunner

    from soundark.cli import app

    path = write_csv(tmp_path / "rows.csv", ROWS)
    result = CliRunner().invoke(app, ["import", "catalog", str(path), "-a", str(archive.root), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert (out["new"], out["rejected"]) == (3, 0)


def test_mbid_key_for_rows_without_isrc(catalog, tmp_path):
    import_catalog_file(catalog, write_jsonl(tmp_path / "r.jsonl", [
        {"title": "Only MBID", "artists": ["M"], "recording_mbid": MBID}]))
    assert catalog.scalar("SELECT key FROM recording") == mbid_key(MBID)


def test_fts_trigger_still_indexes_ordinary_inserts(catalog, tmp_path):
    import_catalog_file(catalog, write_jsonl(tmp_path / "r.jsonl", ROWS))
    assert catalog.scalar("SELECT count(*) FROM fts_deferred") == 0  # the flag never outlives a batch
    with catalog.transaction() as conn:
        conn.execute("INSERT INTO recording(key, title, artist) VALUES ('x1', 'Zyzzyva Rhapsody', 'Q')")
    assert catalog.scalar("SELECT count(*) FROM recording_fts WHERE recording_fts MATCH 'zyzzyva'") == 1
    # the external-content index agrees with its table (FTS5 integrity check)
    catalog.execute("INSERT INTO recording_fts(recording_fts, rank) VALUES ('integrity-check', 1)")


def test_vectorised_title_normalisation_equals_the_model():
    import polars as pl

    titles = [t for t in NORMALISE_CASES if t] + [
        "Hello, World!!", "Song (feat. X & Y)", "Song ft. Z", "Song featuring Q - Remix", "feat. at start",
        "Soft (Ft.Nobody)", "A  --  B", "___", "It's 5 o'clock", "x ft y", "Tab\there", "trailing ft. ",
    ]
    df = _rows._checks(pl.DataFrame({"title": titles, "_line": list(range(len(titles)))}))
    fast = df["_tnorm"].to_list()
    assert sum(v is not None for v in fast) >= 15  # the fast path is really taken
    for title, got in zip(titles, fast):
        if got is not None:  # titles are stripped before anything else, on both paths
            assert got == normalise_text(title.strip()) == _rows._normalise(title.strip()), title


def test_parquet_float_columns_from_pandas_and_huge_numbers(catalog, tmp_path):
    path = tmp_path / "floats.parquet"
    pq.write_table(pa.table({"title": ["A", "B", "C"], "duration_ms": [185000.0, None, 12.5],
                             "listens": [3.0, 4.0, 5.0], "popularity": [55.5, None, 10.0]}), path)
    report = import_catalog_file(catalog, path)
    assert (report.new, report.rejected) == (2, 1)
    assert report.rejections[0].subject == "floats.parquet:3" and "12.5" in report.rejections[0].reason
    assert catalog.scalar("SELECT duration_ms FROM recording WHERE title = 'A'") == 185000
    huge = write_jsonl(tmp_path / "huge.jsonl", [{"title": "H", "duration_ms": "9" * 25}])
    report = import_catalog_file(catalog, huge)
    assert report.rejected == 1 and "whole number" in report.rejections[0].reason


def test_pipeline_entry_uses_the_archive_settings(archive, tmp_path):
    from soundark.catalog import open_catalog
    from soundark.catalog.importers.tabular import run_import_catalog
    from soundark.config import Settings

    path = write_jsonl(tmp_path / "r.jsonl", ROWS[:1])
    report = run_import_catalog(archive, Settings(rights="public-domain"), file=path)
    assert report.as_dict()["new"] == 1
    with open_catalog(archive.catalog, readonly=True) as cat:
        assert cat.scalar("SELECT rights FROM recording") == "public-domain"


def test_cancel_keeps_finished_batches(catalog, tmp_path, monkeypatch):
    class CancelAfterFirst(Notes):
        def cancelled(self) -> bool:
            return self.advanced > 0

    monkeypatch.setattr(tabular, "CHUNK_BYTES", 2000)
    rows = [{"title": f"Song {i}", "artists": ["A"], "isrc": f"USCAN{i:07d}"} for i in range(400)]
    progress = CancelAfterFirst()
    report = import_catalog_file(catalog, write_jsonl(tmp_path / "r.jsonl", rows), progress=progress)
    assert 0 < report.new < 100 and count(catalog, "recording") == report.new
    assert progress.notes == ["r.jsonl: import cancelled; finished batches are kept"]
    again = import_catalog_file(catalog, tmp_path / "r.jsonl")  # a re-run finishes the job
    assert (again.unchanged, again.new, count(catalog, "recording")) == (report.new, 400 - report.new, 400)


def test_counts_with_a_track_twice_in_one_batch(catalog, tmp_path):
    # the same track key twice: the first row makes it, the second (more listens) is not a new track
    row = dict(ROWS[0])
    twice = [row, dict(row, listens=2000), ROWS[2]]
    report = import_catalog_file(catalog, write_jsonl(tmp_path / "a.jsonl", twice))
    assert (report.new, report.updated, report.unchanged) == (2, 0, 1)
    assert count(catalog, "track") == 2 and count(catalog, "recording") == 2
    assert catalog.scalar("SELECT listens FROM recording WHERE isrc = 'USRE10000001'") == 2000
    again = import_catalog_file(catalog, write_jsonl(tmp_path / "a.jsonl", twice))
    assert (again.new, again.updated, again.unchanged) == (0, 0, 3)
    # an older track whose recording gains something counts as updated, once per track
    more = [dict(row, listens=3000), dict(row, listens=2500)]
    report = import_catalog_file(catalog, write_jsonl(tmp_path / "b.jsonl", more))
    assert (report.new, report.updated, report.unchanged) == (0, 1, 1)
    assert catalog.scalar("SELECT listens FROM recording WHERE isrc = 'USRE10000001'") == 3000


def test_new_rows_join_each_other_by_key_within_a_batch(catalog, tmp_path):
    # two anonymous rows with the same derived recording key: one recording, two tracks
    rows = [{"title": "Same", "artists": ["Duo"], "album": "One", "duration_ms": 100200},
            {"title": "Same", "artists": ["Duo"], "album": "Two", "duration_ms": 100900}]
    report = import_catalog_file(catalog, write_jsonl(tmp_path / "r.jsonl", rows))
    assert report.new == 2 and count(catalog, "recording") == 1 and count(catalog, "track") == 2
    ids = [r[0] for r in catalog.execute("SELECT recording_id FROM track")]
    assert ids[0] == ids[1] == catalog.scalar("SELECT id FROM recording")
