"""FTS5 search: user text never reaches MATCH unescaped."""

import pytest

from soundark.catalog.search import MAX_QUERY_CHARS, count_matches, fts_query, search
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
    count_matches(filled, hostile)


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
