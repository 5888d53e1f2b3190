"""Searches of a rare and a common word intersected in memory (search._pair, catalog.postings)
answer exactly as FTS5's AND does; the stored ids follow the index (vocabulary.refresh)."""

import numpy as np
import pytest

from soundark.catalog import search as mod
from soundark.catalog import vocabulary
from soundark.catalog.postings import Postings, intersect, rowids
from soundark.catalog.search import find
from soundark.web.queries import ArchiveReader

QUERIES = ["common rare", "rare common", '"common rare"', '"rare common"', "common scarce", '"common scarce"',
           "common rare scarce", '"rare common" scarce', '"common rare scarce"', '"common rare" "rare scarce"',
           "common rare -other", "common", "rare"]
PAIRED = 10  # the first ten go through _pair


def _fill(catalog, n=6000):
    """"common" on every 10th of the first 2,000 rows and on every row after (4,200 rows); "rare" on
    every 2nd row (3,000), in either order with "common"; "scarce" on every 7th (858)."""
    with catalog.transaction() as conn:
        for i in range(n):
            words = (["common"] if i >= 2000 or i % 10 == 0 else []) + (["rare"] if i % 2 == 0 else []) \
                + (["scarce"] if i % 7 == 0 else [])
            if i % 4 == 0:
                words.reverse()
            conn.execute("INSERT INTO recording(key, title, artist, album, listens) VALUES (?, ?, ?, ?, ?)",
                         (f"sa{i:016d}", " ".join(words), f"Band {i % 5}", "Other" if i % 9 else "x", i % 13))
        vocabulary.refresh(conn)


@pytest.fixture
def paired(catalog, monkeypatch):
    for name, value in (("PAIR_RARE", 1), ("PAIR_COMMON", 10**9), ("PAIR_RATIO", 1), ("PAIR_MIN", 0)):
        monkeypatch.setattr(mod, name, value)  # a small catalog: any two words qualify
    _fill(catalog)
    return catalog


def _answer(cat, q, postings=None):
    m = find(cat, q, limit=50, postings=postings)
    return [(h.id, h.title) for h in m.hits], m.total, m.capped


@pytest.mark.parametrize("candidates", [300, 1200, 40])
def test_pairs_answer_as_fts5_does(paired, monkeypatch, candidates):
    """The rare word is read in slices, the first one of at least 1,000 rows, where "common" is sparse:
    two slices for 300 candidates, three for 1200."""
    monkeypatch.setattr(mod, "CANDIDATES", candidates)
    monkeypatch.setattr(mod, "MAX_REJECTS", 2000)
    postings = Postings()
    flat = {q: _answer(paired, q) for q in QUERIES}
    paired_ = {q: _answer(paired, q, postings) for q in QUERIES}
    assert paired_ == flat
    assert [q for q in QUERIES if not flat[q][1]] == []
    assert set(postings._words) == {"common", "rare"}  # the path was taken; "scarce" is always the rarest
    for q in QUERIES[:PAIRED]:  # each of these went through _pair
        assert _paired(paired, q, postings) is not None


def _paired(cat, q, postings):
    cat.execute("BEGIN")
    try:
        return mod._pair(cat, mod.parse(q), postings)
    finally:
        cat.execute("COMMIT")


def test_the_arrays_follow_the_index(paired):
    """A write to the index makes the stored ids stale: FTS5 answers until the next refresh."""
    postings = Postings()
    q = '"common scarce"'
    before = _answer(paired, q, postings)
    assert _paired(paired, q, postings) is not None
    with paired.transaction() as conn:
        conn.execute("INSERT INTO recording(key, title, artist, album, listens) VALUES "
                     "('sa9', 'New', 'Common Scarce', 'x', 10000)")
    assert not vocabulary.postings_current(paired.conn) and _paired(paired, q, postings) is None
    after = _answer(paired, q, postings)
    assert after[1] == before[1] + 1 and after == _answer(paired, q)
    with paired.transaction() as conn:
        assert vocabulary.refresh(conn)
    assert _paired(paired, q, postings) is not None and _answer(paired, q, postings) == after


def test_refresh_stores_the_common_words_ids(paired):
    rows = dict(paired.execute("SELECT word, docs FROM search_word").fetchall())
    stored = {w: np.frombuffer(ids, f"<i{width}") for w, width, ids in
              paired.execute("SELECT word, width, ids FROM search_postings")}
    assert set(stored) == {w for w, d in rows.items() if d * vocabulary.POSTINGS_SHARE >= 6000}
    assert {"common", "rare", "scarce"} <= set(stored)
    assert all(stored[w].tolist() == rowids(paired.conn, w).tolist() for w in stored)
    with paired.transaction() as conn:  # a catalog migrated to 0014 with search_word already current
        conn.execute("UPDATE search_word_state SET postings = 0")
        conn.execute("DELETE FROM search_postings")
        assert not vocabulary.postings_current(conn) and vocabulary.current(conn)
        assert vocabulary.refresh(conn)
        assert not vocabulary.refresh(conn)
    assert vocabulary.postings_current(paired.conn)
    assert paired.execute("SELECT count(*) FROM search_postings").fetchone()[0] == len(stored)


def test_a_word_bigger_than_a_quarter_of_the_budget_is_left_to_fts5(paired):
    postings = Postings(budget=4200 * 4 * 4 - 4)  # "common" has 4,200 rows of 4 bytes
    structure = vocabulary.structure(paired.conn)
    assert postings.get(paired.conn, "common", structure) is None
    assert _answer(paired, "common rare", postings) == _answer(paired, "common rare")
    roomy = Postings(budget=4200 * 4 * 4)
    ids = roomy.get(paired.conn, "common", structure)
    assert ids is not None and ids.size == 4200 and roomy.nbytes == ids.nbytes


def test_the_least_recently_used_word_goes_first(paired):
    structure = vocabulary.structure(paired.conn)
    postings = Postings(budget=4 * 1200 * 4)  # four of the words "0".."4" (1,200 rows each, in "Band N")
    for word in "01234":
        postings.get(paired.conn, word, structure)
    assert list(postings._words) == ["1", "2", "3", "4"]
    postings.get(paired.conn, "1", structure)
    postings.get(paired.conn, "scarce", structure)
    assert list(postings._words) == ["3", "4", "1", "scarce"] and postings.nbytes == (3 * 1200 + 858) * 4


def test_rowids_and_intersect(paired):
    common = rowids(paired.conn, "common").astype(np.int32)
    rare = rowids(paired.conn, "rare")
    assert common.size == 4200 and rare.size == 3000 and (np.diff(rare) > 0).all()
    assert rowids(paired.conn, "rare", after=int(rare[9]), limit=5).tolist() == rare[10:15].tolist()
    both = np.intersect1d(rare, common)
    assert intersect(paired.conn, '"rare"', [common], 1200, 0.7).tolist() == both[:1200].tolist()
    assert intersect(paired.conn, '"rare"', [common], 5000, 0.7).tolist() == both.tolist()
    assert intersect(paired.conn, '"rare"', [common[:0]], 10, 1.0).size == 0
    scarce = rowids(paired.conn, "scarce").astype(np.int32)
    three = np.intersect1d(both, scarce)
    assert intersect(paired.conn, '"rare"', [common, scarce], 5000, 0.1).tolist() == three.tolist()
    assert intersect(paired.conn, '"rare" AND "scarce"', [common], 5000, 0.7).tolist() == three.tolist()
    assert rowids(paired.conn, "absent").size == 0


def test_the_web_keeps_common_words_and_answers_as_the_cli(archive, paired):
    reader = ArchiveReader(archive.root)
    try:
        for q in QUERIES:
            page = reader.search(q, 1, 50)
            hits, total, capped = _answer(paired, q)
            assert [r["title"] for r in page.results] == [t for _, t in hits] and page.total == total
        assert reader.postings.nbytes > 0
    finally:
        reader.close()


def test_the_web_can_keep_none(archive, paired, monkeypatch):
    """SOUNDARK_WEB_POSTINGS_MB=0: no ids kept, FTS5 answers, the same pages."""
    from soundark.web.server import POSTINGS_ENV, app_from_env

    none = ArchiveReader(archive.root, 0, 0)
    try:
        assert none.postings is None
        assert [r["title"] for r in none.search('"common rare"', 1, 50).results] == \
            [t for _, t in _answer(paired, '"common rare"')[0]]
    finally:
        none.close()
    monkeypatch.setenv("SOUNDARK_WEB_ARCHIVE", str(archive.root))
    monkeypatch.setenv(POSTINGS_ENV, "0")
    assert app_from_env().state.reader.postings is None
    monkeypatch.setenv(POSTINGS_ENV, "8")
    assert app_from_env().state.reader.postings.budget == 8 << 20


def test_the_ids_are_stored_slice_by_slice_and_checked_against_the_counts(paired, monkeypatch):
    monkeypatch.setattr(vocabulary, "POSTINGS_SLICE", 7)
    with paired.transaction() as conn:
        conn.execute("UPDATE search_word_state SET postings = 0")
        assert vocabulary.refresh(conn)
    stored = {w: np.frombuffer(ids, f"<i{width}").tolist() for w, width, ids in
              paired.execute("SELECT word, width, ids FROM search_postings")}
    assert stored["common"] == rowids(paired.conn, "common").tolist() and len(stored["common"]) == 4200
    with paired.transaction() as conn:  # a count that disagrees with the index: that word gets no ids
        conn.execute("UPDATE search_word SET docs = docs - 1 WHERE word = 'rare'")
        conn.execute("UPDATE search_word_state SET postings = 0")
        assert vocabulary.refresh(conn)
    assert "rare" not in {r[0] for r in paired.execute("SELECT word FROM search_postings")}
    assert "common" in {r[0] for r in paired.execute("SELECT word FROM search_postings")}
    assert _answer(paired, "rare common", Postings()) == _answer(paired, "rare common")
