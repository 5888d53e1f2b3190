"""Matching is written twice: in Python (catalog/match.py, the scan) and in SQL (importers/_bulk.py,
the bulk imports). A property test (hypothesis) feeds both the same rows, one at a time, and checks
they group the rows into the same recordings: ISRC, then MusicBrainz ID, then artist + title with the
nearest duration within 3000 ms, else a new recording.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from soundark.catalog import open_catalog
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.catalog.match import RecordingFacts, match_recording
from soundark.model import derived_key, match_key

ISRCS = ("GBAYE0601498", "USRC17607839", "QZSDA1900001")
MBIDS = ("b1a9c0e9-d987-4042-ae91-78d6a3267d69", "0b382a13-32f0-4743-9248-ba5536a6115e")
ARTISTS = ("Queen", "Björk", "The Tidewater Ensemble")
TITLES = ("Under Pressure", "Jóga", "Morning Tide")

row = st.fixed_dictionaries({
    "artists": st.sampled_from(ARTISTS),
    "title": st.sampled_from(TITLES),
    "isrc": st.none() | st.sampled_from(ISRCS),
    "recording_mbid": st.none() | st.sampled_from(MBIDS),
    "duration_ms": st.none() | st.sampled_from((200_000, 201_500, 202_900, 204_000, 210_000)),
})


def _python_groups(path: Path, rows: list[dict]) -> list[int]:
    """Each row matched by catalog/match.py in order: the recording id it went to."""
    out = []
    with open_catalog(path) as catalog, catalog.transaction() as conn:
        for r in rows:
            facts = RecordingFacts(title=r["title"], artists=(r["artists"],), isrc=r["isrc"], mbid=r["recording_mbid"],
                                   duration_ms=r["duration_ms"])
            seconds = None if r["duration_ms"] is None else r["duration_ms"] // 1000
            fallback = derived_key("cat", match_key(r["artists"], r["title"]), seconds)
            out.append(match_recording(conn, facts, fallback).recording_id)
    return out


def _sql_groups(path: Path, tmp: Path, rows: list[dict]) -> list[int]:
    """Each row imported by the bulk path on its own (a batch of one): the recording of its track."""
    out = []
    with open_catalog(path) as catalog:
        for i, r in enumerate(rows):
            file = tmp / f"row{i}.jsonl"
            file.write_text(json.dumps({**{k: v for k, v in r.items() if v is not None},
                                        "artists": [r["artists"]], "track_id": f"t{i}"}) + "\n")
            report = import_catalog_file(catalog, file)
            assert report.rejected == 0, report.rejections
            out.append(int(catalog.scalar("SELECT recording_id FROM track WHERE key = ?", (f"t{i}",))))
    return out


def _partition(ids: list[int]) -> list[int]:
    """Ids renamed by first appearance: two groupings agree when their partitions are equal."""
    seen: dict[int, int] = {}
    return [seen.setdefault(i, len(seen)) for i in ids]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row, min_size=1, max_size=6))
@example(rows=[  # a name match picks the nearest duration, not the first recording
    {"artists": "Queen", "title": "Under Pressure", "isrc": "GBAYE0601498", "recording_mbid": None,
     "duration_ms": 200_000},
    {"artists": "Queen", "title": "Under Pressure", "isrc": "USRC17607839", "recording_mbid": None,
     "duration_ms": 204_000},
    {"artists": "Queen", "title": "Under Pressure", "isrc": None, "recording_mbid": None, "duration_ms": 202_900},
])
@example(rows=[  # an identified row never joins a recording that has another ISRC
    {"artists": "Björk", "title": "Jóga", "isrc": "GBAYE0601498", "recording_mbid": None, "duration_ms": 200_000},
    {"artists": "Björk", "title": "Jóga", "isrc": "USRC17607839", "recording_mbid": None, "duration_ms": 200_000},
])
def test_python_and_sql_matching_group_rows_alike(tmp_path_factory, rows: list[dict]) -> None:
    tmp = tmp_path_factory.mktemp("agree")
    py = _python_groups(tmp / "py.sqlite3", rows)
    sql = _sql_groups(tmp / "sql.sqlite3", tmp, rows)
    assert _partition(py) == _partition(sql), rows
