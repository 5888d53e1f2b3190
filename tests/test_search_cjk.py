"""1-2 character words of scripts written without spaces: recording_gram (migration 0011).

The index must give exactly what the instr() scan it replaces gave (the older catalogs' path,
still in search.py), whatever wrote the catalog: triggers, the sqlite3 CLI, the bulk import's
deferred build, the migration over an existing catalog.
"""

import json
import re
import sqlite3
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soundark.catalog import deferred, open_catalog
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.catalog.search import CANDIDATES, NOSPACE, _candidates_sql, _gram_counter, find, parse

# ideographs, kana, half-width katakana, Thai, a plane-2 ideograph; Latin in both cases, an
# accented capital (SQLite's lower() leaves it), spaces and punctuation between runs
NOSPACE_LETTERS = "東京北愛の朋友タワーｶกข𠀋"
ALPHABET = NOSPACE_LETTERS + "aAbZÉé -・!"
NOSPACE_CHAR = re.compile(f"[{NOSPACE}]")
TEXT = st.text(ALPHABET, max_size=12)
# what parse() makes a short substring term of: 1-2 word characters, one of them such a script's
WORD = st.builds(lambda a, b, first: a + b if first else b + a, st.sampled_from(NOSPACE_LETTERS),
                 st.sampled_from(["", *NOSPACE_LETTERS, "a", "A", "É"]), st.booleans())


def sql_lower(text: str) -> str:
    """SQLite's built-in lower(): ASCII letters only."""
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in text)


def expected_grams(title: str, artist: str, album: str) -> set[str]:
    s = sql_lower(f"{title} {artist} {album}")
    return {s[i:i + n] for n in (1, 2) for i in range(len(s) - n + 1)
            if NOSPACE_CHAR.search(s[i:i + n]) and " " not in s[i:i + n]}


def grams_table(conn) -> set[tuple[str, int]]:
    return {tuple(r) for r in conn.execute("SELECT gram, recording_id FROM recording_gram")}


def grams_from_text(conn) -> set[tuple[str, int]]:
    rows = conn.execute("SELECT id, title, artist, album FROM recording").fetchall()
    return {(g, rid) for rid, t, a, b in rows for g in expected_grams(t, a, b)}


def add(conn, texts: list[tuple[str, str, str]], start: int = 0) -> None:
    conn.executemany("INSERT INTO recording(key, title, artist, album, listens) VALUES (?, ?, ?, ?, ?)",
                     [(f"sa{start + i:016d}", t, a, b, i % 7) for i, (t, a, b) in enumerate(texts)])


def candidates(cat, query: str, grams: bool) -> list:
    sql, params = _candidates_sql(parse(query), None, _gram_counter(cat) if grams else None)
    return sorted(tuple(r) for r in cat.execute(sql, params).fetchall()) if sql else []


@pytest.fixture
def cjk(tmp_path):
    with open_catalog(tmp_path / "c.sqlite3") as cat:
        yield cat


ROW = st.tuples(TEXT, TEXT, TEXT)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, max_size=12), changes=st.lists(st.tuples(st.integers(0, 11), ROW), max_size=4),
       gone=st.lists(st.integers(0, 11), max_size=3),
       queries=st.lists(st.lists(st.tuples(st.booleans(), WORD), min_size=1, max_size=3), min_size=1, max_size=4))
def test_the_index_finds_what_the_scan_found(cjk, rows, changes, gone, queries):
    with cjk.transaction() as conn:
        conn.execute("DELETE FROM recording")
        add(conn, rows)
        ids = [r[0] for r in conn.execute("SELECT id FROM recording ORDER BY id")]
        for i, (t, a, b) in changes:  # the update trigger
            if i < len(ids):
                conn.execute("UPDATE recording SET title = ?, artist = ?, album = ? WHERE id = ?", (t, a, b, ids[i]))
        for i in gone:  # the delete trigger
            if i < len(ids):
                conn.execute("DELETE FROM recording WHERE id = ?", (ids[i],))
        assert grams_table(conn) == grams_from_text(conn)
    for words in queries:
        query = " ".join(("-" if negative else "") + w for negative, w in words)
        assert candidates(cjk, query, grams=True) == candidates(cjk, query, grams=False), query


def test_a_common_word_is_capped_on_the_same_candidates(cjk):
    with cjk.transaction() as conn:
        add(conn, [(f"愛の歌 {i}", "Band", "") if i % 3 else ("Love", "x", "") for i in range(CANDIDATES * 2)])
    for query in ("愛", "愛の", "愛 の", "の -歌"):
        assert candidates(cjk, query, grams=True) == candidates(cjk, query, grams=False)
    found = find(cjk, "愛の", limit=5)
    assert found.capped and found.total == CANDIDATES


def test_the_rarest_of_several_short_words_drives(cjk):
    with cjk.transaction() as conn:
        add(conn, [(f"愛の歌 {i}", "Band", "北" if i == 7 else "") for i in range(50)])
    sql, params = _candidates_sql(parse("の 北 歌"), None, _gram_counter(cjk))
    assert params[0] == "北"
    assert [h.title for h in find(cjk, "の 北 歌").hits] == ["愛の歌 7"]


def test_a_short_word_is_one_index_seek(cjk):
    sql, params = _candidates_sql(parse("北京"), None, _gram_counter(cjk))
    plan = " ".join(r[3] for r in cjk.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    assert "SEARCH recording_gram USING PRIMARY KEY (gram=?)" in plan and "SCAN" not in plan


def test_the_gram_class_is_the_search_class():
    from soundark.catalog.store import migrations

    sql = next(m.sql for m in migrations() if m.name == "cjk_grams")
    assert sql.count(f"GLOB '*[{NOSPACE}]*'") == 3
    assert deferred._INDEX_GRAMS.count(f"GLOB '*[{NOSPACE}]*'") == 1
    assert deferred.INSERT_TRIGGERS["recording_gram_ai"] in sql


SAMPLE = [("我爱北京天安门", "少年合唱团", "红歌"), ("東京タワー", "山田太郎", "夜景"),
          ("Tokyo Nights", "東京スカパラダイスオーケストラ", "Live"), ("愛", "A", "B"),
          ("สวัสดีครับ", "Thai Band", ""), ("Plain", "Latin", "Only")]


@pytest.mark.needs_tool("sqlite3")
def test_the_sqlite3_cli_keeps_the_index_right(cjk):
    cjk.close()
    script = ("INSERT INTO recording(key, title, artist, album) VALUES ('k1', '朋友 北京', 'X', ''),"
              " ('k2', 'ありがとう', 'Y', 'Z'), ('k3', '愛', '', '');"
              " UPDATE recording SET title = '友達' WHERE key = 'k1';"
              " DELETE FROM recording WHERE key = 'k2';")
    subprocess.run(["sqlite3", str(cjk.path)], input=script, text=True, check=True, capture_output=True)
    with open_catalog(cjk.path) as cat:
        assert grams_table(cat.conn) == grams_from_text(cat.conn) != set()
        assert [h.title for h in find(cat, "友").hits] == ["友達"] and find(cat, "北京").total == 0


def test_the_migration_indexes_an_existing_catalog(tmp_path, monkeypatch):
    from soundark.catalog import store

    every = store.migrations()
    monkeypatch.setattr(store, "migrations", lambda: [m for m in every if m.name != "cjk_grams"])
    with open_catalog(tmp_path / "c.sqlite3") as cat:
        with cat.transaction() as conn:
            add(conn, SAMPLE)
        assert cat.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'recording_gram'") == 0
        assert find(cat, "北京").total == 1  # the scan of older catalogs
    monkeypatch.setattr(store, "migrations", lambda: every)
    with open_catalog(tmp_path / "c.sqlite3") as cat:
        assert grams_table(cat.conn) == grams_from_text(cat.conn)
        assert {h.title for h in find(cat, "東京").hits} == {"東京タワー", "Tokyo Nights"}


def test_a_fresh_bulk_import_builds_the_index_once(tmp_path):
    rows = [{"title": t, "artists": [a], "album": b, "duration_ms": 200000 + i, "listens": i}
            for i, (t, a, b) in enumerate(SAMPLE * 40)]
    rows += [{"title": f"{t} {i}", "artists": [a], "album": b, "duration_ms": 1000 + i}
             for i, (t, a, b) in enumerate(SAMPLE * 30)]
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    with open_catalog(tmp_path / "c.sqlite3") as cat:
        import_catalog_file(cat, source)
        assert cat.scalar("SELECT count(*) FROM fts_deferred") == 0
        assert grams_table(cat.conn) == grams_from_text(cat.conn) != set()
        assert find(cat, "合唱").total == find(cat, "北京").total > 1


def test_finishing_a_killed_import_indexes_what_it_left(cjk):
    with cjk.transaction() as conn:
        add(conn, SAMPLE[:3])
        deferred.begin_fresh_load(conn)
        add(conn, SAMPLE[3:] + SAMPLE, start=10)
        assert grams_table(conn) != grams_from_text(conn)
    assert deferred.finish(cjk.conn)
    assert grams_table(cjk.conn) == grams_from_text(cjk.conn)


def test_an_older_read_only_catalog_is_still_searched(tmp_path):
    with open_catalog(tmp_path / "c.sqlite3") as cat:
        with cat.transaction() as conn:
            add(conn, SAMPLE)
    raw = sqlite3.connect(tmp_path / "c.sqlite3")
    raw.execute("DROP TABLE recording_gram")  # as a catalog made before migration 0011
    raw.commit()
    raw.close()
    with open_catalog(tmp_path / "c.sqlite3", readonly=True) as cat:
        assert {h.title for h in find(cat, "北京 -東京").hits} == {"我爱北京天安门"}


def test_the_migration_leaves_a_killed_imports_rows_to_its_finish(tmp_path, monkeypatch):
    from soundark.catalog import store

    every = store.migrations()
    monkeypatch.setattr(store, "migrations", lambda: [m for m in every if m.name != "cjk_grams"])
    with open_catalog(tmp_path / "c.sqlite3") as cat:
        with cat.transaction() as conn:
            add(conn, SAMPLE[:3])
            deferred.begin_fresh_load(conn)  # an import killed after this batch: its row stays
            add(conn, SAMPLE[3:] + SAMPLE, start=10)
    monkeypatch.setattr(store, "migrations", lambda: every)
    with open_catalog(tmp_path / "c.sqlite3") as cat:  # migrates, then finishes the import's indexing
        assert cat.scalar("SELECT count(*) FROM fts_deferred") == 0
        assert grams_table(cat.conn) == grams_from_text(cat.conn)
