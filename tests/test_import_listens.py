"""Listen counts (ListenBrainz popularity shape) and popularity per recording."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from soundark.catalog.importers.listens import import_listens
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.errors import BadInput

MBID_A = "11111111-1111-4111-8111-111111111111"
MBID_B = "22222222-2222-4222-8222-222222222222"
UNKNOWN = "33333333-3333-4333-8333-333333333333"


@pytest.fixture
def filled(catalog, tmp_path: Path):
    rows = [
        {"title": "A", "artists": ["X"], "recording_mbid": MBID_A, "isrc": "USAAA0000001", "listens": 5},
        {"title": "B", "artists": ["Y"], "recording_mbid": MBID_B},
        {"title": "C", "artists": ["Z"], "isrc": "USAAA0000003"},
    ]
    path = tmp_path / "cat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert import_catalog_file(catalog, path).new == 3
    return catalog


def values(catalog) -> dict[str, tuple]:
    return {r[0]: (r[1], r[2], r[3]) for r in catalog.execute(
        "SELECT title, listens, users, popularity FROM recording")}


def test_listenbrainz_csv_by_mbid_replaces_counts(filled, tmp_path):
    path = tmp_path / "popularity.csv"
    path.write_text("recording_mbid,total_listen_count,total_user_count\n"
                    f"{MBID_A},1200,300\n{MBID_B.upper()},7,2\n{UNKNOWN},5,5\n")
    report = import_listens(filled, path)
    assert (report.updated, report.unchanged, report.rejected) == (2, 0, 1)
    assert report.rejections[0].subject == "popularity.csv:4"
    assert report.rejections[0].reason == f"no recording with MBID {UNKNOWN} in the catalog"
    assert values(filled) == {"A": (1200, 300, None), "B": (7, 2, None), "C": (None, None, None)}
    again = import_listens(filled, path)
    assert (again.updated, again.unchanged, again.rejected) == (0, 2, 1)
    assert values(filled)["A"] == (1200, 300, None)
    # a lower count replaces a higher one: the file is a snapshot, not an increment
    path.write_text(f"recording_mbid,total_listen_count,total_user_count\n{MBID_A},10,1\n")
    assert import_listens(filled, path).updated == 1
    assert values(filled)["A"] == (10, 1, None)


def test_jsonl_by_isrc_and_popularity(filled, tmp_path):
    path = tmp_path / "pop.jsonl"
    path.write_text(json.dumps({"isrc": "US-AAA-00-00003", "popularity": 87.5}) + "\n"
                    + json.dumps({"isrc": "USAAA0000009", "popularity": 1}) + "\n"
                    + json.dumps({"isrc": "USAAA0000001", "popularity": 20}) + "\n")
    report = import_listens(filled, path)
    assert (report.updated, report.rejected) == (2, 1)
    assert report.rejections[0].reason == "no recording with ISRC USAAA0000009 in the catalog"
    got = values(filled)
    assert got["C"] == (None, None, 87.5)
    assert got["A"] == (5, None, 20.0)  # popularity alone leaves the counts alone


def test_bad_listen_rows(filled, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("recording_mbid,isrc,listens,popularity\n"
                    f"{MBID_A},,-1,\n"
                    f"{MBID_A},,many,\n"
                    f"{MBID_A},,,150\n"
                    ",,5,\n"
                    f"{MBID_A},,,\n"
                    "nope,,5,\n"
                    ",XX,5,\n"
                    f"{MBID_B},,42,\n")
    report = import_listens(filled, path)
    assert (report.updated, report.rejected) == (1, 7)
    reasons = [(r.subject, r.reason) for r in report.rejections]
    assert reasons == [
        ("bad.csv:2", "listens -1 is negative"),
        ("bad.csv:3", "listens many is not a whole number"),
        ("bad.csv:4", "popularity 150 is outside 0-100"),
        ("bad.csv:5", "no recording_mbid, isrc or artist+title"),
        ("bad.csv:6", "no total_listen_count, total_user_count or popularity"),
        ("bad.csv:7", "recording_mbid 'nope' is not a MusicBrainz ID (a UUID)"),
        ("bad.csv:8", "XX: ISRC must have 12 characters, not 2"),
    ]
    assert values(filled)["B"] == (42, None, None)


def test_parquet_listens(filled, tmp_path):
    path = tmp_path / "pop.parquet"
    pq.write_table(pa.table({"recording_mbid": [MBID_A, MBID_B], "total_listen_count": [3, 4],
                             "total_user_count": [1, None]}), path)
    assert import_listens(filled, path).updated == 2
    assert values(filled)["B"] == (4, None, None)


def test_listens_file_errors(filled, tmp_path):
    with pytest.raises(BadInput, match="unknown catalog format"):
        import_listens(filled, tmp_path / "x.txt")
