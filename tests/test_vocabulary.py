"""search_word (migration 0012): the words of the word index, exact or unused (catalog/vocabulary.py)."""

from __future__ import annotations

import json

from soundark.catalog import open_catalog, vocabulary
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.catalog.postings import Postings
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
        assert vocabulary.words(cat.conn, "blu", 10) is not None
        cat.execute("DROP TABLE search_word_state")
    # a catalog read-only opened before migration 0012 (a connection keeps the tables it has
    # seen: migrations only add)
    with open_catalog(tmp_path / "c.sqlite3", readonly=True) as cat:
        assert vocabulary.words(cat.conn, "blu", 10) is None
        assert {h.title for h in find(cat, "bluebi*").hits} == {f"Bluebird Song {i}" for i in range(1, 40, 7)}


def test_the_schema_a_connection_has_seen_is_asked_once(tmp_path):
    with imported(tmp_path) as cat:
        asked: list[str] = []
        cat.conn.set_trace_callback(asked.append)
        assert vocabulary.has(cat.conn, "search_word", "docs") and vocabulary.has(cat.conn, "search_word", "docs")
        assert not vocabulary.has(cat.conn, "search_word", "nope") and not vocabulary.has(cat.conn, "nope")
        assert not vocabulary.has(cat.conn, "nope")  # a no is asked again: a migration may add it
        assert len([s for s in asked if not s.startswith("--")]) == 4  # "--": a virtual table's own
        cat.execute("CREATE TABLE nope (x)")
        assert vocabulary.has(cat.conn, "nope")


def fts_docs(cat) -> dict[str, int]:
    cat.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.t_words USING fts5vocab(main, recording_fts, 'row')")
    return {r[0]: r[1] for r in cat.execute("SELECT term, doc FROM temp.t_words")}


def titled(tmp_path, titles: list[str]):
    """A catalog of recordings with these titles, listens falling with the row order."""
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps({"title": t, "artists": ["Someone"], "album": "Album",
                                       "listens": len(titles) - i}) + "\n" for i, t in enumerate(titles)))
    cat = open_catalog(tmp_path / "c.sqlite3")
    import_catalog_file(cat, src)
    return cat


def every_hit(cat, text: str):
    """All CANDIDATES hits of *text*, in two pages (a page holds at most 200), and the total."""
    first, rest = find(cat, text, limit=200), find(cat, text, limit=100, offset=200)
    return first.hits + rest.hits, first.total, first.capped


def test_each_word_comes_with_the_number_of_recordings_holding_it(tmp_path):
    with imported(tmp_path) as cat:
        counted = {r[0]: r[1] for r in cat.execute("SELECT word, docs FROM search_word")}
        assert counted == fts_docs(cat) and counted["blue"] == 6 and counted["artist"] == 40


def test_a_common_lone_prefix_takes_its_hits_from_its_most_common_words(tmp_path, monkeypatch):
    # 'kalamo' is in 400 recordings, 'kalax' in 250, 'kalb' in 20: the first 300 hits of every
    # word in row order hold all three words; the most common word alone has enough of them
    titles = [f"Kalax {i}" for i in range(250)] + [f"Kalb {i}" for i in range(20)] + \
             [f"Kalamo {i}" for i in range(400)]
    with titled(tmp_path, titles) as cat:
        assert vocabulary.frequent(cat.conn, "kal", CANDIDATES) == ["kalamo"]
        assert vocabulary.frequent(cat.conn, "kal", 700) is None  # not enough in all its words
        hits, total, capped = every_hit(cat, "kal*")
        assert capped and total == CANDIDATES == len(hits)
        assert {h.title.split()[0] for h in hits} == {"Kalamo"}
        monkeypatch.setattr(vocabulary, "frequent", lambda conn, prefix, enough: None)
        hits, total, capped = every_hit(cat, "kal*")  # the OR of every word that starts so
        assert {h.title.split()[0] for h in hits} == {"Kalax", "Kalb", "Kalamo"}
        assert capped and total == CANDIDATES


def test_common_words_that_share_their_recordings_fall_back_to_every_word(tmp_path, monkeypatch):
    # 'kalam' and 'kalamo' are counted 200 times each, in the same 200 recordings: fewer than
    # CANDIDATES recordings, so the search reads every word's hits, as it did without the counts
    titles = [f"Kalam Kalamo {i}" for i in range(200)] + [f"Kalax {i}" for i in range(150)]
    with titled(tmp_path, titles) as cat:
        assert vocabulary.frequent(cat.conn, "kal", CANDIDATES) == ["kalam", "kalamo"]
        found = every_hit(cat, "kal*")
        monkeypatch.setattr(vocabulary, "frequent", lambda conn, prefix, enough: None)
        every_word = every_hit(cat, "kal*")
        assert [h.id for h in found[0]] == [h.id for h in every_word[0]] and found[1:] == every_word[1:]
        assert {h.title.split()[0] for h in found[0]} == {"Kalam", "Kalax"} and found[1:] == (CANDIDATES, True)


def test_an_uncommon_prefix_finds_what_fts5_finds_whatever_the_counts(tmp_path):
    titles = [f"Kalax {i}" for i in range(150)] + [f"Kalb {i}" for i in range(100)]
    with titled(tmp_path, titles) as cat:
        assert vocabulary.frequent(cat.conn, "kal", CANDIDATES) is None
        ours, native = find(cat, "kal*", limit=200), find(cat, "kal*", limit=200, terms_of=lambda p: None)
        assert not ours.capped and ours.total == native.total == 250
        assert [h.id for h in ours.hits] == [h.id for h in native.hits]
        # with another word, or excluding one, every word is read: the counts say nothing of the pair
        assert find(cat, "kal* -kalb", limit=200).total == 150
        assert {h.title for h in find(cat, "kal* 7", limit=200).hits} == {"Kalax 7", "Kalb 7"}


def test_the_migration_counts_the_words_of_an_older_catalog(tmp_path, monkeypatch):
    from soundark.catalog import store

    every = store.migrations()
    assert [m.name for m in every if m.version >= 13] == ["search_word_docs", "search_postings"]
    path = tmp_path / "c.sqlite3"
    monkeypatch.setattr(store, "migrations", lambda: every[:-2])  # the soundark before 0013
    with open_catalog(path) as cat, cat.transaction() as conn:
        conn.executemany("INSERT INTO recording(key, title) VALUES (?, ?)",
                         [(f"sa{i:016x}", f"Moon {'Blue' if i % 3 else 'Bluebird'}") for i in range(30)])
        conn.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, recording_fts, 'row')")
        conn.execute("INSERT INTO search_word(word) SELECT term FROM temp.v")  # 0012's refresh
        conn.execute("INSERT INTO search_word_state(id, fts_structure) SELECT 1, block FROM recording_fts_data "
                     "WHERE id = 10")
    with open_catalog(path, readonly=True) as old:  # read by this soundark before the migration
        assert vocabulary.words(old.conn, "blu", 10) == ["blue", "bluebird"]
        assert vocabulary.frequent(old.conn, "blu", 5) is None
        assert find(old, "blu*").total == 30
    monkeypatch.setattr(store, "migrations", lambda: every[:-1])  # to 0013
    with open_catalog(path):
        pass
    with open_catalog(path, readonly=True) as old:  # read by this soundark before 0014: no stored ids
        assert not vocabulary.postings_current(old.conn)
        assert find(old, "moon blue", postings=Postings()).total == 20
    monkeypatch.setattr(store, "migrations", lambda: every)
    with open_catalog(path) as cat:
        assert vocabulary.current(cat.conn) and not vocabulary.postings_current(cat.conn)  # until a refresh
        assert {r[0]: r[1] for r in cat.execute("SELECT word, docs FROM search_word")} == \
            {"moon": 30, "blue": 20, "bluebird": 10}
        assert vocabulary.frequent(cat.conn, "blu", 25) == ["blue", "bluebird"]
