"""search_word (migration 0012): the words of the word index, exact or unused (catalog/vocabulary.py)."""

from __future__ import annotations

import json

from soundark.catalog import open_catalog, vocabulary
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.catalog.search import CANDIDATES, MAX_EXPANSION, _candidates_sql, find, parse

TITLES = ["Blue Moon", "Bluebird Song", "Blues for Ann", "Blunt Edge", "Café Blü", "Moonlight", "Morning"]


def fts_words(cat) -> list[str]:
    cat.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.t_words USING fts5vocab(main, recording_fts, 'row')")
    return [r[0] for r in cat.execute("SELECT term FROM temp.t_words ORDER BY term")]


def imported(tmp_path, n: int = 40):
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps({"title": f"{TITLES[i % len(TITLES)]} {i}", "artists": [f"Artist {i % 3}"],
                                       "album": "Album", "isrc": f"USXYZ{i:07d}"}) + "\n" for i in range(n)))
    cat = open_catalog(tmp_path / "c.sqlite3")
    import_catalog_file(cat, src)
    return cat


def test_an_import_leaves_every_indexed_word_and_only_those(tmp_path):
    with imported(tmp_path) as cat:
        assert vocabulary.current(cat.conn)
        listed = [r[0] for r in cat.execute("SELECT word FROM search_word ORDER BY word")]
        assert listed == fts_words(cat) and "bluebird" in listed and "cafe" in listed  # as FTS5 folds it
        assert vocabulary.words(cat.conn, "blu", 10) == ["blu", "blue", "bluebird", "blues", "blunt"]
        assert vocabulary.words(cat.conn, "blue", 2) == ["blue", "bluebird"]


def test_any_write_to_the_index_makes_it_unused_until_refreshed(tmp_path):
    with imported(tmp_path) as cat:
        with cat.transaction() as conn:  # the triggers index it: a word search_word does not hold
            conn.execute("INSERT INTO recording(key, title) VALUES ('sa00000000000000fe', 'Bluegrass')")
        assert not vocabulary.current(cat.conn) and vocabulary.words(cat.conn, "blu", 10) is None
        assert {h.title for h in find(cat, "bluegr*").hits} == {"Bluegrass"}  # FTS5's own prefix query
        with cat.transaction() as conn:
            assert vocabulary.refresh(conn) is True
            assert vocabulary.refresh(conn) is False  # current: nothing to do
        assert "bluegrass" in vocabulary.words(cat.conn, "blu", 10)
        with cat.transaction() as conn:  # a deletion changes the index too
            conn.execute("DELETE FROM recording WHERE key = 'sa00000000000000fe'")
        assert not vocabulary.current(cat.conn)


def test_prefix_searches_through_search_word_find_what_fts5_finds(tmp_path):
    with imported(tmp_path, 120) as cat:
        asked = []

        def spy(conn, prefix, limit):
            asked.append(prefix)
            return real(conn, prefix, limit)

        real = vocabulary.words
        vocabulary.words = spy
        try:
            for text in ("blu*", "blue*", "Mor*", "moo* -blue", "art* 7", "zzz*", "caf*"):
                native = find(cat, text, limit=200, terms_of=lambda p: None)
                ours = find(cat, text, limit=200)
                assert [h.id for h in ours.hits] == [h.id for h in native.hits] and ours.total == native.total, text
        finally:
            vocabulary.words = real
        assert "blu" in asked and "mor" in asked and len(asked) == 7


def test_a_prefix_of_too_many_words_is_left_to_fts5(tmp_path):
    with imported(tmp_path, 10) as cat:
        with cat.transaction() as conn:
            conn.executemany("INSERT INTO recording(key, title) VALUES (?, ?)",
                             [(f"sa{i:016x}", f"zqx{i:05d}") for i in range(MAX_EXPANSION + 5)])
            vocabulary.refresh(conn)
        assert len(vocabulary.words(cat.conn, "zqx", MAX_EXPANSION + 1)) == MAX_EXPANSION + 1
        _, params = _candidates_sql(parse("zqx*"), lambda p: vocabulary.words(cat.conn, p, MAX_EXPANSION + 1))
        assert params[0] == '"zqx"*'  # FTS5's own prefix query, not an OR of MAX_EXPANSION + 5 words
        _, params = _candidates_sql(parse("zqx0000*"), lambda p: vocabulary.words(cat.conn, p, MAX_EXPANSION + 1))
        assert params[0] == "(" + " OR ".join(f'"zqx{i:05d}"' for i in range(10)) + ")"
        found = find(cat, "zqx*", limit=5)
        assert found.capped and found.total == CANDIDATES


def test_a_catalog_before_the_migration_is_searched_without_it(tmp_path):
    with imported(tmp_path) as cat:
        cat.execute("DROP TABLE search_word_state")
        assert vocabulary.words(cat.conn, "blu", 10) is None
        assert {h.title for h in find(cat, "bluebi*").hits} == {f"Bluebird Song {i}" for i in range(1, 40, 7)}
