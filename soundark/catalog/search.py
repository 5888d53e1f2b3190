"""Search over recordings (SQLite FTS5): the one search of the CLI and the web (docs/catalog.md).

User text never reaches ``MATCH`` as it is: :func:`parse` turns it into terms of
quoted words, so FTS5 syntax in the input (``NEAR(``, ``AND``, ``:``, ``^``,
unbalanced quotes or parentheses) is searched for as words. What the user may use
on purpose: ``"a phrase"`` in double quotes, a trailing ``*`` on a word for a prefix
search, and ``-word`` to exclude a word. An ISRC (with or without dashes) finds
the recording that carries it, as its own ISRC or as an alias (``isrc_alias``).

Three indexes answer: words go to ``recording_fts`` (unicode61: case and accents
ignored). A word in a script written without spaces (CJK, kana, Thai...) is one
token there for a whole run of text, so such a word is searched as a substring:
through ``recording_trigram`` (migration 0010) when it has 3 characters or more,
else through ``recording_gram`` (migration 0011: every 1-2 character substring of
such a script, lower-cased as ``lower()`` does, per recording): one B-tree seek, in
recording id order. When another term drives, a short word filters its rows by
``instr``, which finds the same recordings.

Cost is bounded whatever the catalog's size: the first CANDIDATES hits are read
with their rows and ranked here, by where the words occur (title, then artists,
then album; shorter fields first), then by listens. bm25() is not used: it needs
statistics over every hit of every term (~15 ms for a term in half of 1M rows).
A query with CANDIDATES hits or more is *common*: its candidates are ordered by
listens and its total is a lower bound ("300+ matches: add a word"). A lone prefix*
that common takes its candidates from its most common words (:func:`_common_prefix`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from soundark import isrc as isrc_codes
from soundark.catalog import phrases, vocabulary
from soundark.catalog.postings import Postings, intersect
from soundark.catalog.store import Catalog
from soundark.errors import BadInput

MAX_QUERY_CHARS = 1000
MAX_TERMS = 32
MAX_PAGE_SIZE = 200
MAX_OFFSET = 100_000
CANDIDATES = 300
FIELD_WEIGHTS = (10.0, 5.0, 2.0)  # title, artist, album
MIN_PREFIX = 3  # a shorter prefix* merges the doclists of thousands of terms
MAX_EXPANSION = 1024  # a prefix* is rewritten as an OR of at most this many words (at 50M rows 580
# words: 10.6 ms, FTS5's own prefix query 27.5 ms; each word is a seek in every segment)
CHAIN_WORDS = 3  # an AND of this many distinct words or more is nested rarest first (_chained)
MAX_REJECTS = 600  # rows holding a phrase's words but not the phrase read before FTS5 is asked instead
RARE_SHARE = 250  # ...and checks a phrase's word order itself when its rarest word is held by at most
# 1/RARE_SHARE of the recordings (when every word is common, FTS5's phrase search is the faster)
PAIR_RARE = 1000  # _pair: a word in at most 1/PAIR_RARE of the recordings (and PAIR_MIN or more)
PAIR_COMMON = vocabulary.POSTINGS_SHARE  # and one in at least 1/PAIR_COMMON of them (ids stored)
PAIR_RATIO = 48  # and PAIR_RATIO times as many are intersected in memory: below, FTS5's seeks are
# cheap enough (measured at 50M)
PAIR_MIN = 500
MIN_TRIGRAM = 3  # FTS5's trigram tokenizer cannot match fewer characters
GRAM_PEEK = 5000  # enough recordings of a 1-2 character word counted to tell the rarest of several
# Scripts written without spaces: kana + CJK (U+3040-9FFF: ideographs, ext. A, symbols; planes 2-3),
# half-width katakana, Thai + Lao, Myanmar, Khmer. The GLOB classes of migrations 0010, 0011 list the same.
NOSPACE = "぀-鿿豈-﫿ｦ-ﾟ฀-໿က-႟ក-៿𠀀-𯿿"

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)
_NOSPACE = re.compile(f"[{NOSPACE}]")
_PREFIX = re.compile(r'"(\w+)"\*')
_COLUMNS = "r.id, r.key, r.title, r.artist, r.album, r.date, r.duration_ms, r.isrc, r.listens, r.rights"
_RANKED = "r.id, coalesce(r.listens, 0)"  # a candidate when most are not shown: its row is read for the page only


@dataclass(frozen=True)
class SearchHit:
    id: int
    key: str
    title: str
    artist: str
    album: str
    date: str | None
    duration_ms: int | None
    isrc: str | None
    listens: int | None
    rights: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Matches:
    hits: list[SearchHit]  # the page asked for
    total: int             # exact unless capped
    capped: bool           # at least CANDIDATES recordings match: total is a lower bound


@dataclass(frozen=True)
class Term:
    """Words to find together (a phrase when more than one); *substring*: one no-space word."""

    words: tuple[str, ...]
    negative: bool = False
    prefix: bool = False
    substring: bool = False

    @property
    def fts(self) -> str:
        return '"' + " ".join(self.words) + '"' + ("*" if self.prefix else "")


def _terms_of(words: list[str], negative: bool, prefix: bool) -> list[Term]:
    """Words of a script without spaces become substring terms of their own; the rest one term."""
    spaced = [w for w in words if not _NOSPACE.search(w)]
    terms = [Term(tuple(spaced), negative, prefix and len(spaced) == 1 == len(words))] if spaced else []
    return terms + [Term((w,), negative, substring=True) for w in words if _NOSPACE.search(w)]


def parse(text: str) -> list[Term]:
    """The terms of user text; raises BadInput when it is too long or has too many terms."""
    if len(text) > MAX_QUERY_CHARS:
        raise BadInput("query", f"too long ({len(text)} characters; at most {MAX_QUERY_CHARS})")
    terms: list[Term] = []
    for m in _TOKEN.finditer(text):
        if m.group(2) is not None:  # a quoted phrase
            terms += _terms_of(_WORD.findall(m.group(2).lower()), bool(m.group(1)), False)
            continue
        raw = m.group(3)
        terms += _terms_of(_WORD.findall(raw.lower()), raw.startswith("-") and len(raw) > 1, raw.endswith("*"))
    if len(terms) > MAX_TERMS:
        raise BadInput("query", f"too many terms (at most {MAX_TERMS})")
    return terms


def _fts_expression(positive: list[Term], negative: list[Term]) -> str:
    if not positive:
        return ""
    query = " AND ".join(t.fts for t in positive)
    return query + "".join(f" NOT {t.fts}" for t in negative)


def fts_query(text: str) -> str:
    """The word-index part of *text* as a safe FTS5 query; '' when no wanted word remains."""
    terms = [t for t in parse(text) if not t.substring]
    return _fts_expression(_wanted(terms), _excluded(terms))


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise BadInput("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
    if not 0 <= offset <= MAX_OFFSET:
        raise BadInput("offset", f"must be between 0 and {MAX_OFFSET}")


def find(catalog: Catalog, text: str, *, limit: int = 20, offset: int = 0,
         terms_of: Callable[[str], list[str] | None] | None = None,
         postings: Postings | None = None) -> Matches:
    """Recordings matching *text*, best first: the page [offset, offset + limit) and the count.

    *terms_of(prefix)* lists the indexed words that start with a lower-case *prefix* (up to
    MAX_EXPANSION + 1 of them), or None when it cannot tell: a prefix* is then searched as an OR
    of whole words, which FTS5 evaluates lazily, instead of merging every matching doclist. By
    default the words come from search_word (soundark.catalog.vocabulary) while it is current;
    the web adds a cache of FTS5's own word lists for when it is not. *postings* (the web's)
    keeps common words' recordings in memory for searches of a rare and a common word
    (:func:`_pair`). Raises BadInput for unusable queries.
    """
    _check_page(limit, offset)
    code = isrc_codes.normalise_or_none(text) if len(text) < 40 else None
    if code:
        rows = _by_isrc(catalog, code)
        return Matches([SearchHit(*row) for row in rows[offset:offset + limit]], len(rows), False)
    terms = parse(text)
    short = [t.words[0] for t in terms if t.prefix and len(t.words[0]) < MIN_PREFIX]
    if short:
        raise BadInput("query", f"{short[0]}*: a prefix needs at least {MIN_PREFIX} letters before the *")
    shorts = any(t.substring and len(t.words[0]) < MIN_TRIGRAM for t in terms)
    if terms_of is None:
        def terms_of(prefix: str) -> list[str] | None:
            return vocabulary.words(catalog.conn, prefix, MAX_EXPANSION + 1)
    # Every statement below reads one snapshot: a writer's commit between them changes nothing.
    own = not catalog.conn.in_transaction
    if own:
        catalog.execute("BEGIN")
    try:
        ranked = _common_prefix(catalog, terms)
        if ranked is None and postings is not None:
            ranked = _pair(catalog, terms, postings)
        if ranked is None:
            ranked = _chained(catalog, terms, terms_of)
        if ranked is None:
            # the candidates' ids and listens only, when the query is common: its whole rows are
            # read for the page alone, not for all CANDIDATES (at 10M rows 0.6 ms, not 1.35); whole
            # rows at once when the word counts tell it has fewer hits (all are then scored)
            sql, params = _candidates_sql(terms, terms_of, _gram_counter(catalog) if shorts else None,
                                          whole=_few(catalog, terms))
            if not sql:
                return Matches([], 0, False)
            ranked = catalog.execute(sql, params).fetchall()
        # each path gives (id, listens) pairs or whole rows (_COLUMNS), which hold more
        whole = bool(ranked) and len(ranked[0]) > 2
        common = len(ranked) >= CANDIDATES
        if common:
            # most listened first, then by id: two stable sorts with C keys, not a Python key a row
            ranked.sort(key=itemgetter(0))
            if whole:
                ranked.sort(key=lambda r: r[8] or 0, reverse=True)
                return Matches([SearchHit(*row) for row in ranked[offset:offset + limit]], len(ranked), True)
            ranked.sort(key=itemgetter(1), reverse=True)
            page = _rows_by_id(catalog, [r[0] for r in ranked[offset:offset + limit]])
            return Matches([SearchHit(*row) for row in page], len(ranked), True)
        rows = ranked if whole else _rows_by_id(catalog, [r[0] for r in ranked])
    finally:
        if own and catalog.conn.in_transaction:
            catalog.execute("COMMIT")
    # rows are (id, key, title, artist, album, date, duration_ms, isrc, listens, rights)
    score = _Scorer.of(_wanted(terms))
    rows.sort(key=lambda r: (-score(r[2], r[3], r[4]), -(r[8] or 0), r[0]))
    return Matches([SearchHit(*row) for row in rows[offset:offset + limit]], len(rows), False)


def _common_prefix(catalog: Catalog, terms: list[Term]) -> list[Any] | None:
    """The candidates of a lone ASCII prefix* with CANDIDATES hits or more, from its most common
    words (vocabulary.frequent: one word, or a few): an OR of every word that starts so costs a
    seek a word (~20 us at 10M rows, 100-500 words), however few hits are read. None when the
    query is anything else, the counts are unknown, or the common words' hits are fewer than
    CANDIDATES recordings (they share some): the caller then reads every word's."""
    if len(terms) != 1 or not terms[0].prefix or terms[0].negative or terms[0].substring:
        return None
    prefix = terms[0].words[-1]
    if len(terms[0].words) != 1 or not prefix.isascii():
        return None
    few = vocabulary.frequent(catalog.conn, prefix, CANDIDATES)
    if few is None:
        return None
    sql, params = _candidates_sql(terms, lambda _: few)
    ranked = catalog.execute(sql, params).fetchall()
    return ranked if len(ranked) >= CANDIDATES else None


def _few(catalog: Catalog, terms: list[Term]) -> bool:
    """True when a whole word the query wants is held by fewer than CANDIDATES recordings
    (search_word's counts, current or not: they decide what is read, never the hits): every
    hit is then ranked by its words, so the candidates' whole rows are read at once."""
    words = {w for t in _wanted(terms) if not t.substring
             for i, w in enumerate(t.words) if not (t.prefix and i == len(t.words) - 1)}
    if not words:
        return False
    docs = vocabulary.counts(catalog.conn, sorted(words))
    return docs is not None and min(docs.get(w, 0) for w in words) < CANDIDATES


_WORD_DRIVER = "SELECT rowid AS rid FROM recording_fts WHERE recording_fts MATCH ?"


def _nested(words: list[str]) -> str:
    """An FTS5 AND of *words* that FTS5 evaluates in this order, the first two words, then each
    next word on the rows of those before it: ``("a" AND "b" OR "") AND "c"``. The empty phrase
    matches nothing, so the OR changes no hit; it keeps FTS5 from flattening the ANDs into one."""
    expr = f'"{words[0]}"'
    for i, w in enumerate(words[1:]):
        expr = f'{expr} AND "{w}"' if i == 0 else f'({expr} OR "") AND "{w}"'
    return expr


def _chained(catalog: Catalog, terms: list[Term], terms_of: Callable[[str], list[str] | None]) -> list[Any] | None:
    """The (id, listens) candidates of a query of CHAIN_WORDS or more distinct words (in phrases
    or not) with FTS5 walking its words rarest first; None when the query is not such, the word
    counts are missing, or a phrase could not be checked here (the caller then asks FTS5 as usual).

    FTS5 runs ``a AND b AND c`` as one node that seeks every word's doclist at each step, and a
    seek in a common word's doclist costs ~1-2 us at 50M rows, whether the other words are rare
    or not: ``"best orjaur shadow dance viraka"`` took 15.5 ms, its two rarest words alone 0.8 ms.
    Nested (:func:`_nested`), the common words are sought only on the rows of the rare ones:
    0.6 ms, the same hits in the same order. A quoted phrase is no faster than the AND of its
    words in FTS5 (its words are walked the same way), so a phrase's words join the AND and the
    order of the words is checked on the rows it yields (soundark.catalog.phrases); a row that
    module cannot judge exactly, or more than MAX_REJECTS rows with the words out of order,
    send the query back to FTS5's own phrase search; so does a phrase of common words only
    (RARE_SHARE), whose AND has to be walked to its end as FTS5's phrase search does. At 50M
    rows, over the web step's queries of 3+ words: 2,309 ms in FTS5, 949 ms nested.
    """
    if any(t.substring for t in terms):
        return None
    wanted = _wanted(terms)
    plain = [t for t in wanted if not t.prefix]
    quoted = [t.words for t in plain if len(t.words) > 1]
    words = sorted({w for t in plain for w in t.words})
    if len(words) < CHAIN_WORDS or not all(phrases.decidable(p) for p in quoted):
        return None
    docs = vocabulary.counts(catalog.conn, words)
    if docs is None:
        return None
    order = sorted(words, key=lambda w: (docs.get(w, 0), w))
    if quoted and docs.get(order[0], 0) * RARE_SHARE > vocabulary.recordings(catalog.conn):
        return None
    query = " AND ".join([_nested(order)]
                         + [_PREFIX.sub(lambda m: _expanded(m, terms_of), t.fts) for t in wanted if t.prefix])
    query += "".join(f" NOT {t.fts}" for t in _excluded(terms))
    if not quoted:
        columns = _COLUMNS if docs.get(order[0], 0) < CANDIDATES else _RANKED
        return catalog.execute(f"SELECT {columns} FROM ({_WORD_DRIVER}) AS h "
                               "JOIN recording r ON r.id = h.rid LIMIT ?", (query, CANDIDATES)).fetchall()
    cursor = catalog.execute(f"SELECT {_COLUMNS} FROM ({_WORD_DRIVER}) AS h JOIN recording r ON r.id = h.rid LIMIT ?",
                             (query, CANDIDATES + MAX_REJECTS))
    try:
        return _phrase_hits(iter(lambda: cursor.fetchmany(100), []), quoted)
    finally:
        cursor.close()


def _phrase_hits(chunks: Iterator[list[Any]], quoted: list[tuple[str, ...]]) -> list[Any] | None:
    """The first CANDIDATES rows (_COLUMNS) that hold every phrase of *quoted*, from *chunks* of
    at most CANDIDATES + MAX_REJECTS rows in id order; None when a row cannot be judged here, or
    all those rows were read with fewer hits."""
    ranked: list[Any] = []
    read = 0
    for rows in chunks:
        read += len(rows)
        for row in rows:
            fields = row[2:5]  # title, artist, album
            for phrase in quoted:
                held = phrases.holds(phrase, fields)
                if held is None:
                    return None
                if not held:
                    break
            else:
                ranked.append(row)
                if len(ranked) == CANDIDATES:
                    return ranked
    return ranked if read < CANDIDATES + MAX_REJECTS else None


def _pair(catalog: Catalog, terms: list[Term], postings: Postings) -> list[Any] | None:
    """The (id, listens) candidates of words (some perhaps in phrases) of which some are common
    (each held by 1/PAIR_COMMON of the recordings or more, and PAIR_RATIO times as many as the
    rarest word; their ids are stored in search_postings and kept in memory by *postings*:
    soundark.catalog.postings) and the others rare (the rarest in at most 1/PAIR_RARE of the
    recordings): the rare words' recordings, read from FTS5 in one string (their nested AND when
    there are several), looked up in the common words'. None for any other query, and when the
    stored ids are not current, a common word has none or is too big to keep, a phrase cannot be
    checked here (:func:`_phrase_hits`) or a hit has no row: FTS5 then answers. The same hits, in
    the same order, as FTS5's AND.
    FTS5 seeks each common word once per row of the rare ones, which costs more the more rows of
    the common word lie between two of the rare one; reading the rare words' rows costs ~0.2 us
    a row and each binary search ~0.1 us. At 50M rows, the 188 two-word searches of bench_scale's
    web mix (6,000) that qualify took 1,215 ms in FTS5 and 726 ms here; below PAIR_RATIO this was
    slower."""
    if any(t.negative or t.prefix or t.substring for t in terms):
        return None
    words = sorted({w for t in terms for w in t.words})
    quoted = [t.words for t in terms if len(t.words) > 1]
    if len(words) < 2 or not all(phrases.decidable(p) for p in quoted):
        return None
    docs = vocabulary.counts(catalog.conn, words)
    if docs is None or len(docs) != len(words):  # a word search_word lacks as it stands (FTS5 folds it)
        return None
    order = sorted(words, key=lambda w: (docs[w], w))
    rarest = docs[order[0]]
    recordings = vocabulary.recordings(catalog.conn)
    common = [w for w in order[1:] if docs[w] * PAIR_COMMON >= recordings and docs[w] >= PAIR_RATIO * rarest]
    rare = [w for w in order if w not in common]
    if (not common or rarest * PAIR_RARE > recordings or rarest < PAIR_MIN
            or not vocabulary.postings_current(catalog.conn)):
        return None
    structure = vocabulary.structure(catalog.conn)
    held = [None if structure is None else postings.get(catalog.conn, w, structure) for w in common]
    if any(h is None for h in held):
        return None
    share = 1.0
    for w in common:
        share *= docs[w] / max(recordings, 1)
    ids = intersect(catalog.conn, _nested(rare), [h for h in held if h is not None],
                    CANDIDATES + (MAX_REJECTS if quoted else 0), share)
    sql = "SELECT {} FROM json_each(?) AS j JOIN recording r ON r.id = j.value ORDER BY j.key"
    if not quoted:
        first = ids[:CANDIDATES].tolist()
        columns = _RANKED if len(first) == CANDIDATES else _COLUMNS  # fewer: all of them are scored
        ranked = catalog.execute(sql.format(columns), (json.dumps(first),)).fetchall()
        return ranked if len(ranked) == len(first) else None
    sql = sql.format(_COLUMNS)
    wanted = ids[:CANDIDATES + MAX_REJECTS].tolist()
    missing: list[int] = []

    def read() -> Iterator[list[Any]]:
        for i in range(0, len(wanted), 200):
            part = wanted[i:i + 200]
            rows = catalog.execute(sql, (json.dumps(part),)).fetchall()
            if len(rows) != len(part):  # a hit without its row: given up below
                missing.append(i)
                return
            yield rows
    ranked = _phrase_hits(read(), quoted)
    return None if missing else ranked


def _rows_by_id(catalog: Catalog, ids: list[int]) -> list[Any]:
    """The search columns of these recordings, in the order given (one statement, cached: the ids
    travel as one JSON array)."""
    if not ids:
        return []
    rows = catalog.execute(f"SELECT {_COLUMNS} FROM json_each(?1) AS j JOIN recording r ON r.id = j.value "
                           "ORDER BY j.key", (json.dumps(ids),)).fetchall()
    return rows


def search(catalog: Catalog, text: str, *, limit: int = 20, offset: int = 0) -> list[SearchHit]:
    """The hits of :func:`find` alone."""
    return find(catalog, text, limit=limit, offset=offset).hits


def _by_isrc(catalog: Catalog, code: str) -> list[Any]:
    """The recording carrying *code*, as its ISRC or an alias (an alias never repeats a primary)."""
    return catalog.execute(
        f"SELECT {_COLUMNS} FROM recording r WHERE r.isrc = ?1 UNION "
        f"SELECT {_COLUMNS} FROM isrc_alias a JOIN recording r ON r.id = a.recording_id WHERE a.isrc = ?1",
        (code,)).fetchall()


def _gram_counter(catalog: Catalog) -> Callable[[str], int] | None:
    """How many recordings hold a 1-2 character word, counted up to GRAM_PEEK (an index range:
    ~0.1 ms); None for a catalog read-only opened before migration 0011 made recording_gram."""
    if not vocabulary.has(catalog.conn, "recording_gram"):
        return None
    return lambda gram: catalog.execute(
        "SELECT count(*) FROM (SELECT 1 FROM recording_gram WHERE gram = ? LIMIT ?)", (gram, GRAM_PEEK)
    ).fetchone()[0]


def _candidates_sql(terms: list[Term], terms_of: Callable[[str], list[str] | None] | None,
                    gram_count: Callable[[str], int] | None = None, *, whole: bool = False) -> tuple[str, list]:
    """One SELECT of the (id, listens) of at most CANDIDATES matching rows (their _COLUMNS if
    *whole*), or ('', []) when nothing is wanted.

    The first index with a wanted term drives (words, else trigrams, else the 1-2 character
    substrings of recording_gram, the rarest by *gram_count*; without it the rows holding such
    a script are scanned); the other terms filter the rows it yields, so LIMIT stops the whole
    statement early.
    """
    words = [t for t in terms if not t.substring]
    tri = [t for t in terms if t.substring and len(t.words[0]) >= MIN_TRIGRAM]
    short = [t for t in terms if t.substring and len(t.words[0]) < MIN_TRIGRAM]
    if not (_wanted(words) or _wanted(tri) or _wanted(short)):
        return "", []
    word_query = _fts_expression(_wanted(words), _excluded(words))
    if word_query and terms_of is not None:
        word_query = _PREFIX.sub(lambda m: _expanded(m, terms_of), word_query)
    tri_query = _fts_expression(_wanted(tri), _excluded(tri))
    params: list = []
    where: list[str] = []
    if word_query:
        driver = "SELECT rowid AS rid FROM recording_fts WHERE recording_fts MATCH ?"
        params.append(word_query)
    elif tri_query:
        driver, tri_query = "SELECT rowid AS rid FROM recording_trigram WHERE recording_trigram MATCH ?", ""
        params.append(_fts_expression(_wanted(tri), _excluded(tri)))
    elif gram_count is None:  # an older catalog: scan the rows the trigram index holds (few percent)
        driver = "SELECT id AS rid FROM recording_trigram_docsize"
    else:  # only 1-2 character substrings: the rarest drives, instr() checks the others on its rows
        wanted = _wanted(short)
        lead = wanted[0] if len(wanted) == 1 else min(wanted, key=lambda t: gram_count(t.words[0]))
        short = [t for t in short if t is not lead]
        driver = "SELECT recording_id AS rid FROM recording_gram WHERE gram = ?"
        params.append(lead.words[0])
    if tri_query:
        where.append("r.id IN (SELECT rowid FROM recording_trigram WHERE recording_trigram MATCH ?)")
        params.append(tri_query)
    elif _excluded(tri) and not _wanted(tri):
        where.append("r.id NOT IN (SELECT rowid FROM recording_trigram WHERE recording_trigram MATCH ?)")
        params.append(" OR ".join(t.fts for t in _excluded(tri)))
    if _excluded(words) and not _wanted(words):
        where.append("r.id NOT IN (SELECT rowid FROM recording_fts WHERE recording_fts MATCH ?)")
        params.append(" OR ".join(t.fts for t in _excluded(words)))
    for t in short:
        if gram_count is not None:  # one seek in recording_gram: the same test as instr() below, ~5x cheaper
            where.append(f"{'NOT ' if t.negative else ''}EXISTS (SELECT 1 FROM recording_gram g "
                         "WHERE g.gram = ? AND g.recording_id = r.id)")
        else:  # lower(): ASCII only, enough beside these scripts
            where.append("instr(lower(r.title || ' ' || r.artist || ' ' || r.album), ?) "
                         + ("= 0" if t.negative else "> 0"))
        params.append(t.words[0])
    sql = (f"SELECT {_COLUMNS if whole else _RANKED} FROM ({driver}) AS h JOIN recording r ON r.id = h.rid"
           + (" WHERE " + " AND ".join(where) if where else "") + " LIMIT ?")
    return sql, params + [CANDIDATES]


def _wanted(terms: list[Term]) -> list[Term]:
    return [t for t in terms if not t.negative]


def _excluded(terms: list[Term]) -> list[Term]:
    return [t for t in terms if t.negative]


def _expanded(m: re.Match[str], terms_of: Callable[[str], list[str] | None]) -> str:
    """``"abc"*`` as ``("abc" OR "abcd" OR ...)``, or unchanged when that would not be cheaper
    (more than MAX_EXPANSION words) or the words are unknown (*terms_of* gave None)."""
    prefix = m.group(1)
    if not prefix.isascii():  # the tokenizer folds non-ASCII letters; leave those to FTS5
        return m.group(0)
    words = terms_of(prefix.lower())
    if not words or len(words) > MAX_EXPANSION:
        return m.group(0)
    return "(" + " OR ".join(f'"{w}"' for w in words) + ")"


_PUNCT = ".,;:!?()[]\"'"  # stripped from a field's word before it is compared with a query word


@dataclass(frozen=True)
class _Scorer:
    """The rank of a row among a query's candidates: per field (title, artist, album), the share
    of the query's words it holds, weighted by FIELD_WEIGHTS, a short field counting more.

    A word of the query counts when a word of the field equals it (punctuation around the field's
    word aside), a prefix* when a word of the field starts with it, a no-space word when the
    field holds it anywhere. Built once per query: each field's words are compared as a set,
    not word by word against every query word (half the time; tests/test_search.py holds the
    two equal). A field that holds none of them even as a substring (most fields of most rows:
    a title word is seldom in the album too) adds nothing and is not split at all (a third of
    the scoring's time at 2M rows)."""

    plain: tuple[str, ...]     # whole words, repeated as often as the query repeats them
    prefixes: tuple[str, ...]  # the last word of a prefix* term
    substrings: tuple[str, ...]
    n_words: int
    needles: tuple[str, ...] = ()  # all of the above: a field counts only if it holds one of them

    @classmethod
    def of(cls, terms: list[Term]) -> _Scorer:
        plain = tuple(w for t in terms if not t.substring
                      for i, w in enumerate(t.words) if not (t.prefix and i == len(t.words) - 1))
        prefixes = tuple(t.words[-1] for t in terms if not t.substring and t.prefix)
        substrings = tuple(t.words[0] for t in terms if t.substring)
        return cls(plain, prefixes, substrings, sum(len(t.words) for t in terms) or 1,
                   tuple(set(plain + prefixes + substrings)))

    def __call__(self, title: str, artist: str, album: str) -> float:
        total = 0.0
        for text, weight in zip((title, artist, album), FIELD_WEIGHTS):
            text = text.lower()
            for needle in self.needles:  # a word equal to t, or starting with it, holds t
                if needle in text:
                    break
            else:
                continue
            words = text.split()
            if not words:
                continue
            found = 0
            if self.plain:
                bare = {w.strip(_PUNCT) for w in words}
                for t in self.plain:
                    found += t in bare
            for p in self.prefixes:
                found += any(w.startswith(p) for w in words)
            for sub in self.substrings:
                found += sub in text
            total += weight * found / self.n_words * (1.0 + 1.0 / len(words))
        return total
