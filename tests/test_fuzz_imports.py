"""Fuzzing the catalog importers end to end into a real catalog (hypothesis; tests/helpers/fuzz.py).

Catalog rows as JSON Lines, CSV (RFC 4180) and Parquet, MusicBrainz JSON lines (the dump's
and the web service's shape) and listens (ListenBrainz JSONL, CSV). Each example writes a
file, imports it into one real SQLite catalog shared by the module and checks:

* only SoundarkError escapes (a bad row is a rejection, never a crash);
* nothing is dropped silently: every non-blank data row is counted as new, updated,
  unchanged or rejected;
* nothing is written outside the archive but the input file itself;
* ``PRAGMA integrity_check`` stays ok.
"""

from __future__ import annotations

import csv
import io
import json
import os
import string
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from soundark.catalog import open_catalog
from soundark.catalog.importers._rows import FIELDS
from soundark.catalog.importers.listens import import_listens
from soundark.catalog.importers.musicbrainz import import_musicbrainz
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.config import ArchivePaths, Settings, write_settings

from helpers.fuzz import examples, only_soundark_errors

DATA = Path(__file__).parent / "data"
DEEP = "[" * 100_000 + "]" * 100_000

cell = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=30),
    st.sampled_from(["USRC17607839", "us-rc1-76-07839", "2019-04-12", "99999999999999999999999", "-1",
                     "[\"A\", \"B\"]", "[[[[", "cc-by-4.0", "d8d6f5b0-8e9e-4b16-9b3b-6b2a8b0c7f11", ""]),
    st.lists(st.text(max_size=10), max_size=3))
rows = st.lists(st.dictionaries(st.sampled_from(FIELDS + ("extra", "Track Name", "ISRC")), cell, max_size=8),
                max_size=8)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzzimport")
    paths = ArchivePaths(root / "archive")
    paths.root.mkdir()
    write_settings(paths.root, Settings())
    with open_catalog(paths.catalog) as catalog:
        yield root, catalog


def _tree(root: Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def _import(sandbox, name: str, data: bytes, importer, data_rows: int | None):
    root, catalog = sandbox
    source = root / "in" / name
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(data)
    before = _tree(root)
    report = only_soundark_errors(importer, catalog, source)
    after = _tree(root)
    outside = {p for p in after - before if not p.startswith("archive" + os.sep)}
    assert not outside, f"written outside the archive: {sorted(outside)}"
    if report is not None and data_rows is not None:
        counted = report.new + report.updated + report.unchanged + report.rejected
        assert counted == data_rows, f"{data_rows} rows in, {counted} counted: {report}"
    assert catalog.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    source.unlink()
    return report


def _jsonl(items: list[object], junk: list[str]) -> tuple[bytes, int]:
    lines = [json.dumps(r, ensure_ascii=False) for r in items] + junk
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    # counted as the importer counts: physical lines (junk may hold newlines), blank ones skipped
    return data, sum(1 for x in data.split(b"\n") if x.strip())


@examples(40)
@given(rows, st.lists(st.one_of(st.text(max_size=20), st.just(DEEP)), max_size=2))
@example([{"title": "a", "artists": ["x"]}], [DEEP])  # the deep line crashed the import and lost "a"
def test_catalog_jsonl(sandbox, items, junk) -> None:
    data, n = _jsonl(items, junk)
    _import(sandbox, "rows.jsonl", data, import_catalog_file, n)


# found by fuzzing: an artists text starting with '[' nested 5000 deep let RecursionError out
def test_catalog_artists_text_nested_deep(sandbox) -> None:
    data, n = _jsonl([{"title": "a", "artists": "[" * 5000}], [])
    _import(sandbox, "rows.jsonl", data, import_catalog_file, n)


def _csv(items: list[dict]) -> tuple[bytes, int]:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(FIELDS)
    for r in items:
        w.writerow(["" if r.get(f) is None else str(r.get(f)) for f in FIELDS])
    return out.getvalue().encode("utf-8", "surrogatepass"), len(items)


@examples(40)
@given(rows)
def test_catalog_csv_well_formed(sandbox, items) -> None:
    items = [r for r in items if any(r.get(f) not in (None, "") for f in FIELDS)]  # blank rows are skipped
    data, n = _csv(items)
    if any(ch in data for ch in (b"\r",)):  # a bare CR inside a cell is its own line ending in text mode
        n = None
    _import(sandbox, "rows.csv", data, import_catalog_file, n)


@examples(60)
@given(st.binary(max_size=400) | st.text(alphabet=string.printable + "é\"", max_size=400).map(str.encode),
       st.sampled_from(["", "title,artists,isrc\n"]))
@example(b'"unterminated,a,b\n' + b"t,x,USRC17607839\n" * 100, "title,artists,isrc\n")
@example(b"a," + b"x" * 200_000 + b"\n" + b"t,x,USRC17607839\n" * 10, "title,artists,isrc\n")
@example(b"caf\xe9,x,USRC17607839\n", "title,artists,isrc\n")
def test_catalog_csv_bytes(sandbox, body: bytes, header: str) -> None:
    _import(sandbox, "raw.csv", header.encode() + body, import_catalog_file, None)


@examples(25)
@given(rows)
def test_catalog_parquet(sandbox, items) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {f: [None if r.get(f) is None else str(r.get(f)) for r in items] for f in FIELDS}
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink)
    _import(sandbox, "rows.parquet", sink.getvalue().to_pybytes(), import_catalog_file, None)


MB_RECORDING = json.loads((DATA / "musicbrainz" / "recording_trimmed.json").read_text())
MB_RELEASE = json.loads((DATA / "musicbrainz" / "release_trimmed.json").read_text())


def _mutate(doc: object, data) -> object:
    """The real document with some values replaced by fuzz: same shape, hostile contents."""
    if isinstance(doc, dict):
        return {k: (data.draw(cell) if data.draw(st.integers(0, 9)) == 0 else _mutate(v, data))
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [_mutate(v, data) for v in doc]
    return doc


@examples(40)
@given(st.data())
def test_musicbrainz_lines(sandbox, data) -> None:
    docs = [_mutate(data.draw(st.sampled_from([MB_RECORDING, MB_RELEASE])), data)
            for _ in range(data.draw(st.integers(1, 3)))]
    body, _ = _jsonl(docs, data.draw(st.lists(st.one_of(st.text(max_size=20), st.just(DEEP)), max_size=1)))
    _import(sandbox, "mb.jsonl", body, lambda c, p: import_musicbrainz(c, p), None)


LISTENS = [json.loads(x) for x in (DATA / "listens" / "listenbrainz_listens.jsonl").read_text().splitlines() if x]


@examples(40)
@given(st.data())
@example(None)
def test_listens_jsonl(sandbox, data) -> None:
    if data is None:  # the whole first line nested 100,000 deep
        body, _ = _jsonl([], ['{"listened_at": 1, "track_metadata": ' + DEEP + "}"])
    else:
        docs = [_mutate(data.draw(st.sampled_from(LISTENS)), data) for _ in range(data.draw(st.integers(1, 3)))]
        body, _ = _jsonl(docs, data.draw(st.lists(st.one_of(st.text(max_size=20), st.just(DEEP)), max_size=1)))
    _import(sandbox, "listens.jsonl", body, lambda c, p: import_listens(c, p), None)


@examples(40)
@given(st.binary(max_size=300), st.sampled_from(["listens.csv", "listens.json", "listens.jsonl"]))
def test_listens_bytes(sandbox, body: bytes, name: str) -> None:
    _import(sandbox, name, body, lambda c, p: import_listens(c, p), None)
