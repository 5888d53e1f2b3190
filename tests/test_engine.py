"""The web's readers run on the SQLite build that maps a whole catalog (soundark/catalog/engine.py).

sqlean.py is a dependency: its SQLite maps up to 1 TiB of a file where the usual builds map
2 GiB. These tests hold that the web really opens its connections with it, that it answers
every search exactly as the standard library's sqlite3 does on the same catalog, that its
errors reach the user as the usual one-line SoundarkErrors, and that the web still works
without it.
"""

from __future__ import annotations

import json
import random
import sqlite3

import pytest

from soundark.catalog import engine, open_catalog
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.catalog.search import find
from soundark.errors import EnvironmentProblem, QueryInterrupted, SoundarkError
from soundark.web.queries import ArchiveReader

WORDS = ("love", "night", "dream", "river", "blue", "moon", "fire", "song", "rain", "home",
         "zoë", "café", "ночь", "звезда", "東京", "夢の中", "さくら", "雨", "luribe", "mirastvi")


def _rows(path, n: int, seed: int):
    rng = random.Random(seed)

    def words(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"title": words(rng.randint(1, 4)).title(), "artists": [words(rng.randint(1, 2))],
                                "album": words(rng.randint(1, 3)), "isrc": f"USAAA{i:07d}",
                                "listens": rng.choice([None, rng.randint(0, 10_000)])}) + "\n")
    return path


@pytest.fixture
def filled(archive, tmp_path):
    with open_catalog(archive.catalog) as cat:
        report = import_catalog_file(cat, _rows(tmp_path / "rows.jsonl", 2_500, 7))
        assert report.rejected == 0 and report.new == 2_500
    return archive


def test_sqlean_is_installed_and_maps_far_more_than_2_gib():
    mapped = engine.mapped()
    assert mapped is not None, "sqlean.py is a dependency of soundark (pyproject.toml)"
    conn = mapped.connect(":memory:")
    try:
        assert engine.mapping_cap(conn) >= engine.MAPPED_CAP
    finally:
        conn.close()
    plain = sqlite3.connect(":memory:")
    try:
        assert engine.mapping_cap(plain) >= 0x7FFF0000  # whatever this Python was built with
    finally:
        plain.close()


def test_the_web_reads_the_catalog_through_the_mapping_sqlite(filled):
    reader = ArchiveReader(filled.root)
    try:
        conn = reader.catalog().conn
        assert isinstance(conn, engine.mapped().Connection)
        assert not isinstance(conn, sqlite3.Connection)
        # what SQLite will map of this connection's file: the web's ask, not the usual 2 GiB
        assert reader.catalog().scalar("PRAGMA mmap_size") == engine.MAPPED_CAP > 1 << 32
        assert reader.search("love").total > 0
    finally:
        reader.close()


def test_both_sqlites_find_the_same_recordings_in_the_same_order(filled):
    rng = random.Random(11)
    queries = ["love", "night dream", '"blue moon"', "riv*", "東京", "雨", "zoe cafe", "-love night",
               "USAAA0000042", "звезда ночь", '"fire song" rain', "さくら 夢"]
    queries += [" ".join(rng.sample(WORDS, rng.randint(1, 3))) for _ in range(150)]
    plain = open_catalog(filled.catalog, readonly=True)
    mapped = open_catalog(filled.catalog, readonly=True, mapped=True)
    try:
        assert type(mapped.conn).__mro__[2].__module__.startswith("sqlean")
        assert isinstance(plain.conn, sqlite3.Connection)
        found = 0
        for q in queries:
            for offset in (0, 20):
                a = find(plain, q, limit=20, offset=offset)
                b = find(mapped, q, limit=20, offset=offset)
                assert a == b, q
                found += len(a.hits)
        assert found > 1000  # the queries do find things
    finally:
        plain.close()
        mapped.close()


def test_the_mapping_sqlites_errors_are_one_line_soundark_errors(filled):
    with open_catalog(filled.catalog, readonly=True, mapped=True) as cat:
        assert cat.scalar("PRAGMA mmap_size") == engine.MAPPED_CAP  # a mapped open maps, whoever asks
        with pytest.raises(SoundarkError, match="no such table") as e:
            cat.execute("SELECT * FROM no_such_table")
        assert e.value.subject == str(filled.catalog)
        with pytest.raises(EnvironmentProblem, match="read-only"):
            cat.execute("DELETE FROM recording")
        cat.conn.set_progress_handler(lambda: 1, 1000)  # the web's deadline stops a search so
        with pytest.raises(QueryInterrupted, match="stopped"):
            cat.execute("SELECT count(*) FROM recording a, recording b").fetchall()
        cat.conn.set_progress_handler(None, 1)
        assert cat.scalar("SELECT count(*) FROM recording") == 2_500


def test_only_readers_take_the_mapping_sqlite(archive):
    with pytest.raises(ValueError, match="read-only"):
        open_catalog(archive.catalog, mapped=True)


def test_the_web_works_on_the_standard_library_alone(filled, monkeypatch):
    before = ArchiveReader(filled.root)
    try:
        expected = before.search("night dream").as_dict()
    finally:
        before.close()
    monkeypatch.setattr(engine, "mapped", lambda: None)  # sqlean.py not installed
    reader = ArchiveReader(filled.root)
    try:
        assert isinstance(reader.catalog().conn, sqlite3.Connection)
        assert reader.catalog().scalar("PRAGMA mmap_size") <= engine.MAPPED_CAP
        assert reader.search("night dream").as_dict() == expected
    finally:
        reader.close()
