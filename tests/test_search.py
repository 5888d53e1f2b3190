"""FTS5 search: user text never reaches MATCH unescaped."""

import pytest

from soundark.catalog.search import MAX_QUERY_CHARS, find, fts_query, search
from soundark.errors import BadInput

ROWS = [
    ("USRC17607839", "Blue Moon Rising", "Ann Artist", "Night Songs", 5),
    ("GBA1B0200001", "Blue Sky", "Bob Player", "Day Songs", 50),
    ("sa0000000000000001", "Sky (Remix) \"Live\"", "Zoë Ünïcode", "NEAR(the end)", 1),
    ("sa0000000000000002", "AND OR NOT", "Operators", "Syntax*", None),
]


@pytest.fixture
def filled(catalog):
    with catalog.transaction() as conn:
        for key, title, artist, album, listens in ROWS:
            isrc = key if not key.startswith("sa") else None
            conn.execute("INSERT INTO recording(key, isrc, title, artist, album, listens) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (key, isrc, title, artist, album, listens))
    return catalog


def titles(cat, q, **kw):
    return [h.title for h in search(cat, q, **kw)]


def test_words_match_title_artist_and_album(filled):
    assert titles(filled, "moon") == ["Blue Moon Rising"]
    assert titles(filled, "ann") == ["Blue Moon Rising"]
    assert titles(filled, "night songs") == ["Blue Moon Rising"]
    assert set(titles(filled, "blue")) == {"Blue Moon Rising", "Blue Sky"}


def test_phrase_prefix_and_exclusion(filled):
    assert titles(filled, '"blue moon"') == ["Blue Moon Rising"]
    assert titles(filled, '"moon blue"') == []
    assert set(titles(filled, "blu*")) == {"Blue Moon Rising", "Blue Sky"}
    assert titles(filled, "blue -moon") == ["Blue Sky"]
    assert titles(filled, 'blue -"moon rising"') == ["Blue Sky"]


def test_accents_are_ignored(filled):
    assert titles(filled, "zoe unicode") == ['Sky (Remix) "Live"']


def test_isrc_finds_its_recording_in_any_spelling(filled):
    assert titles(filled, "US-RC1-76-07839") == ["Blue Moon Rising"]
    assert titles(filled, "usrc17607839") == ["Blue Moon Rising"]


@pytest.mark.parametrize("hostile", [
    '"', '""', '"unbalanced', "(((", ")", "NEAR(", "NEAR(the end)", "*", "**", "a*b*",
    "AND", "OR", "NOT", "title:blue", "^blue", "{title}: x", "blue AND", "- -", "'; DROP TABLE recording; --",
    "\x00", "\u202e", "🎵", "a" * 500, " ".join(["x"] * 32),
])
def test_hostile_queries_never_crash(filled, hostile):
    hits = search(filled, hostile)
    assert isinstance(hits, list)
    assert find(filled, hostile).total >= len(hits)


def test_fts_syntax_in_data_is_found_as_words(filled):
    assert titles(filled, "NEAR(the end)") == ['Sky (Remix) "Live"']
    assert titles(filled, "AND OR NOT") == ["AND OR NOT"]
    assert titles(filled, 'remix "live"') == ['Sky (Remix) "Live"']


def test_a_10kB_query_gets_a_clear_message(filled):
    with pytest.raises(BadInput) as e:
        search(filled, "blue " * 2000)
    assert "too long" in str(e.value) and str(MAX_QUERY_CHARS) in str(e.value)


def test_too_many_terms_gets_a_clear_message(filled):
    with pytest.raises(BadInput) as e:
        search(filled, " ".join(f"w{i}" for i in range(40)))
    assert "too many terms" in str(e.value)


def test_nothing_searchable_gives_no_results(filled):
    assert fts_query("!!! ((( ") == ""
    assert search(filled, "!!! (((") == []
    assert search(filled, "-blue") == []  # only exclusions: nothing to search for


def test_paging_and_limits(filled):
    both = titles(filled, "blue", limit=2)
    assert titles(filled, "blue", limit=1) + titles(filled, "blue", limit=1, offset=1) == both
    for bad in (dict(limit=0), dict(limit=201), dict(offset=-1)):
        with pytest.raises(BadInput):
            search(filled, "blue", **bad)


def test_equal_relevance_ranks_by_listens(filled):
    # "songs" is in both albums with equal weight; Day Songs has more listens
    assert titles(filled, "songs") == ["Blue Sky", "Blue Moon Rising"]


# -- scripts written without spaces, ISRC counts, one search for both faces -----------------

NOSPACE_ROWS = [
    ("sa00000000000000a1", "東京タワー", "山田太郎", "夜景", 10),
    ("sa00000000000000a2", "我爱北京天安门", "少年合唱团", "红歌", 20),
    ("sa00000000000000a3", "สวัสดีครับ", "Thai Band", "", 5),
    ("sa00000000000000a4", "Tokyo Nights", "東京スカパラダイスオーケストラ", "Live", 1),
]


@pytest.fixture
def nospace(filled):
    with filled.transaction() as conn:
        for key, title, artist, album, listens in NOSPACE_ROWS:
            conn.execute("INSERT INTO recording(key, title, artist, album, listens) VALUES (?, ?, ?, ?, ?)",
                         (key, title, artist, album, listens))
    return filled


@pytest.mark.parametrize("query, expected", [
    ("東京", {"東京タワー", "Tokyo Nights"}),          # 2 characters: the start of a run
    ("タワー", {"東京タワー"}),                          # 3+: the trigram index, inside a run
    ("京タ", {"東京タワー"}),                            # 2 characters inside a run
    ("北京", {"我爱北京天安门"}),                         # Chinese: a word inside a sentence
    ("天安门", {"我爱北京天安门"}),
    ("合唱", {"我爱北京天安门"}),                         # in the artist
    ("วัสดี", {"สวัสดีครับ"}),                           # Thai
    ("tokyo 東京", {"Tokyo Nights"}),                  # a word and a substring together
    ("東京 -tokyo", {"東京タワー"}),
    ("東京 -タワー", {"Tokyo Nights"}),
    ('"スカパラダイス"', {"Tokyo Nights"}),
    ("大阪", set()),
    ("ワーX", set()),
])
def test_substrings_of_scripts_without_spaces_are_found(nospace, query, expected):
    found = find(nospace, query, limit=50)
    assert {h.title for h in found.hits} == expected
    assert found.total == len(expected) and not found.capped


def test_a_substring_in_the_title_ranks_above_one_in_the_artist(nospace):
    assert titles(nospace, "東京") == ["東京タワー", "Tokyo Nights"]


def test_an_isrc_query_counts_exactly_its_recording(filled):
    assert find(filled, "US-RC1-76-07839").total == 1
    assert [h.title for h in find(filled, "US-RC1-76-07839").hits] == ["Blue Moon Rising"]
    assert find(filled, "GBXXX9999999").total == 0 and find(filled, "GBXXX9999999").hits == []
    with filled.transaction() as conn:  # a second ISRC of the same recording (migration 0006)
        rid = conn.execute("SELECT id FROM recording WHERE isrc = 'GBA1B0200001'").fetchone()[0]
        conn.execute("INSERT INTO isrc_alias(isrc, recording_id, source) VALUES ('FRZ039800212', ?, 'test')",
                     (rid,))
    found = find(filled, "FR-Z03-98-00212")
    assert found.total == 1 and [h.title for h in found.hits] == ["Blue Sky"]


def test_the_cli_and_the_web_answer_alike(archive, nospace):
    import json
    import subprocess
    import sys

    from soundark.web.queries import ArchiveReader

    reader = ArchiveReader(archive.root)
    try:
        for query in ("blue", "songs", "東京", "US-RC1-76-07839", "blu* -moon"):
            out = subprocess.run([sys.executable, "-m", "soundark", "search", query, "--archive",
                                  str(archive.root), "--json"], capture_output=True, text=True, check=True)
            cli = json.loads(out.stdout)
            web = reader.search(query).as_dict()
            assert [r["key"] for r in cli["results"]] == [r["key"] for r in web["results"]], query
            assert cli["total"] == web["total"] and cli["total_is_lower_bound"] == web["total_is_lower_bound"]
    finally:
        reader.close()


def test_the_nospace_ranges_agree_with_migration_0010():
    from soundark.catalog.search import NOSPACE
    from soundark.catalog.store import migrations

    sql = next(m.sql for m in migrations() if m.version == 10)
    assert sql.count(f"GLOB '*[{NOSPACE}]*'") == 5


def test_a_common_query_pages_through_its_candidates_by_listens_with_whole_rows(catalog, monkeypatch):
    """find() reads the candidates' (id, listens), then the page's whole rows: the same page, field
    for field, as ranking the candidates' whole rows (the first CANDIDATES in id order)."""
    from soundark.catalog import search as mod

    monkeypatch.setattr(mod, "CANDIDATES", 12)
    with catalog.transaction() as conn:
        for i in range(40):
            conn.execute("INSERT INTO recording(key, title, artist, album, listens, duration_ms) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (f"sa{i:016d}", f"Common Song {i}", f"Artist {i % 3}",
                                                       f"Album {i % 5}", (i * 7) % 11 if i % 4 else None, 1000 + i))
    rows = catalog.execute(f"SELECT {mod._COLUMNS} FROM recording r ORDER BY r.id LIMIT 12").fetchall()
    expected = [tuple(r) for r in sorted(rows, key=lambda r: (-(r[8] or 0), r[0]))]
    pages = [find(catalog, "common", limit=5, offset=o) for o in (0, 5, 10)]
    assert all(p.capped and p.total == 12 for p in pages)
    assert [tuple(h.__dict__.values()) for p in pages for h in p.hits] == expected
    few = find(catalog, "song 7", limit=50)  # under CANDIDATES: scored on the whole rows
    assert not few.capped and few.hits[0].title == "Common Song 7"


# ---------------------------------------------------------------- ranking: the scorer and its definition

def _reference_score(title: str, artist: str, album: str, terms: list) -> float:
    """The ranking as first written, word by word: for each field, each query word against each
    field word (the scorer compares a set of the field's words instead)."""
    def found(term, text: str, words: list[str]) -> int:
        if term.substring:
            return int(term.words[0] in text)
        last = len(term.words) - 1
        return sum(1 for i, t in enumerate(term.words)
                   if any(w.startswith(t) if term.prefix and i == last else w.strip(".,;:!?()[]\"'") == t
                          for w in words))
    total = 0.0
    n_words = sum(len(t.words) for t in terms) or 1
    for text, weight in zip((title, artist, album), (10.0, 5.0, 2.0)):
        text = text.lower()
        words = text.split()
        if not words:
            continue
        total += weight * sum(found(t, text, words) for t in terms) / n_words * (1.0 + 1.0 / len(words))
    return total


def test_the_scorer_ranks_exactly_as_its_word_by_word_definition() -> None:
    import random

    from soundark.catalog.search import _Scorer, _wanted, parse

    vocab = ["rain", "Rain,", "(rain)", "rainbow", "the", "The", "night", "night!", "blue", "love", "Señor",
             "señor", "москва", "東京", "東京タワー", "夜", "a", "'love'", "rain-man", "", "RAIN", "Москва",
             "NIGHT.", "brain", "sunrain"]  # upper case: the field is lowered before a word is looked for
    queries = ["rain", "rain rain", "rain*", "the night", '"blue night"', "rain -love", "señor", "москва",
               "東京", "夜 rain", "rai*", "love the rain*", '"the rain" blue', "night night night", "東京 夜"]
    rng = random.Random(5)
    compared = 0
    for q in queries:
        terms = _wanted(parse(q))
        score = _Scorer.of(terms)
        for _ in range(300):
            fields = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 5))) for _ in range(3)]
            assert score(*fields) == _reference_score(*fields, terms), (q, fields)
            compared += score(*fields) > 0
    assert compared > 1000  # most cases hold some query word: the comparison is not of zeros


# ---------------------------------------------------------------- 3+ words: nested rarest first (_chained)

CHAINED_TITLES = ["Blue Moon Rising", "Rising Blue Moon", "Blue Rising Moon", "Moon Blue Rising Again",
                  "Blue Moon Rising Ünïcode", "Blue Moon Rising Again", "Old Blue Moon Rising Sun", "Sun Moon Blue"]
CHAINED_QUERIES = ["blue moon rising", '"blue moon rising"', '"rising blue" moon', '"blue moon" ris*',
                   "blue moon rising -again", '"blue moon" rising -"rising again"', '"moon rising" sun blue',
                   '"blue moon rising" "rising sun"', "sun moon blue", '"moon blue rising" again',
                   '"blue moon" sun ris*']  # the fourth has 2 words besides its prefix: left to FTS5


@pytest.fixture
def chained(catalog, monkeypatch):
    from soundark.catalog import search as mod
    from soundark.catalog import vocabulary

    monkeypatch.setattr(mod, "RARE_SHARE", 0)  # a tiny catalog: every word is common
    with catalog.transaction() as conn:
        for i in range(60):
            title = CHAINED_TITLES[i % len(CHAINED_TITLES)]
            conn.execute("INSERT INTO recording(key, title, artist, album, listens) VALUES (?, ?, ?, ?, ?)",
                         (f"sa{i:016d}", title, f"Band {i % 4}", "Blue Album" if i % 5 == 0 else "Other", i % 9))
        vocabulary.refresh(conn)
    return catalog


def _answer(cat, q, **kw):
    m = find(cat, q, **kw)
    return [(h.id, h.title) for h in m.hits], m.total, m.capped


@pytest.mark.parametrize("candidates", [300, 7])
def test_nested_words_and_checked_phrases_give_fts5s_answer(chained, monkeypatch, candidates):
    """Every 3+ word query answers as FTS5's flat query does (hits, order, total), below and above
    CANDIDATES; the nested path did answer them (it is not silently skipped)."""
    from soundark.catalog import search as mod

    monkeypatch.setattr(mod, "CANDIDATES", candidates)
    nested = {q: _answer(chained, q, limit=50) for q in CHAINED_QUERIES}
    used = [q for q in CHAINED_QUERIES if mod._chained(chained, mod.parse(q), lambda p: None) is not None]
    monkeypatch.setattr(mod, "_chained", lambda *a: None)
    flat = {q: _answer(chained, q, limit=50) for q in CHAINED_QUERIES}
    assert nested == flat
    assert sum(t for _, t, _ in flat.values()) > 0
    assert used == [q for q in CHAINED_QUERIES if q != '"blue moon" ris*']


def test_a_row_the_phrase_check_cannot_judge_goes_back_to_fts5(chained):
    from soundark.catalog import search as mod

    with chained.transaction() as conn:
        conn.execute("INSERT INTO recording(key, title, artist, album) VALUES ('sa9', 'Rising', 'Blüe Moon', 'x'), "
                     "('sa10', 'Blüe Moon Rising', '', '')")
    q = '"blue moon rising"'
    assert mod._chained(chained, mod.parse(q), lambda p: None) is None  # "blüe" folds to "blue"
    keys = [h.key for h in find(chained, q, limit=100).hits]
    assert "sa10" in keys and "sa9" not in keys


def test_too_many_rows_out_of_order_go_back_to_fts5(chained, monkeypatch):
    from soundark.catalog import search as mod

    q = '"rising moon blue"'  # its words are on most rows, in this order on none
    assert mod._chained(chained, mod.parse(q), lambda p: None) == []
    monkeypatch.setattr(mod, "MAX_REJECTS", 3)  # all its AND's rows were read: no fewer hits than that
    assert mod._chained(chained, mod.parse(q), lambda p: None) == []
    monkeypatch.setattr(mod, "CANDIDATES", 5)  # 8 rows read, 5 + 3 out of order: more may follow
    assert mod._chained(chained, mod.parse(q), lambda p: None) is None
    assert find(chained, q).total == 0


def test_a_phrase_of_common_words_is_left_to_fts5(chained, monkeypatch):
    from soundark.catalog import search as mod

    monkeypatch.setattr(mod, "RARE_SHARE", 250)
    assert mod._chained(chained, mod.parse('"blue moon rising"'), lambda p: None) is None
    assert mod._chained(chained, mod.parse("blue moon rising"), lambda p: None) is not None  # no phrase


def test_nested_words_go_rarest_first():
    from soundark.catalog.search import _nested

    assert _nested(["a", "b"]) == '"a" AND "b"'
    assert _nested(["a", "b", "c", "d"]) == '(("a" AND "b" OR "") AND "c" OR "") AND "d"'
