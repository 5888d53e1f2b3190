"""Full-text search over recordings (SQLite FTS5).

User text never reaches ``MATCH`` as it is: :func:`fts_query` turns it into a
query of quoted terms, so FTS5 syntax in the input (``NEAR(``, ``AND``, ``:``,
``^``, unbalanced quotes or parentheses) is searched for as words. What the
user may use on purpose: ``"a phrase"`` in double quotes, a trailing ``*`` on a
word for a prefix search, and ``-word`` to exclude a word. An ISRC (with or
without dashes) finds its recording directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from soundark import isrc as isrc_codes
from soundark.catalog.store import Catalog
from soundark.errors import BadInput

MAX_QUERY_CHARS = 1000
MAX_TERMS = 32
MAX_PAGE_SIZE = 200
# Ranking every hit of a very common term is slow (bm25 over millions of rows);
# rank only the first RANK_CAP hits, which keeps p95 flat on 10M+ rows.
RANK_CAP = 2000

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)


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


def _quote(words: list[str]) -> str:
    return '"' + " ".join(words) + '"'


def fts_query(text: str) -> str:
    """Translate user text into a safe FTS5 query; '' when nothing searchable remains."""
    if len(text) > MAX_QUERY_CHARS:
        raise BadInput("query", f"too long ({len(text)} characters; at most {MAX_QUERY_CHARS})")
    positive: list[str] = []
    negative: list[str] = []
    for m in _TOKEN.finditer(text):
        if m.group(2) is not None:  # a quoted phrase
            words = _WORD.findall(m.group(2))
            if words:
                (negative if m.group(1) else positive).append(_quote(words))
            continue
        raw = m.group(3)
        neg = raw.startswith("-") and len(raw) > 1
        prefix = raw.endswith("*")
        words = _WORD.findall(raw)
        if not words:
            continue
        term = _quote(words)
        if prefix and len(words) == 1:
            term += "*"
        (negative if neg else positive).append(term)
    if len(positive) + len(negative) > MAX_TERMS:
        raise BadInput("query", f"too many terms (at most {MAX_TERMS})")
    if not positive:
        return ""
    query = " AND ".join(positive)
    for term in negative:
        query += f" NOT {term}"
    return query


_COLUMNS = "r.id, r.key, r.title, r.artist, r.album, r.date, r.duration_ms, r.isrc, r.listens, r.rights"


def search(catalog: Catalog, text: str, *, limit: int = 20, offset: int = 0) -> list[SearchHit]:
    """Recordings matching *text*, best first. Raises BadInput for unusable queries."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise BadInput("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
    if offset < 0 or offset > 100_000:
        raise BadInput("offset", "must be between 0 and 100000")
    code = isrc_codes.normalise_or_none(text) if len(text) < 40 else None
    if code:
        rows = catalog.execute(f"SELECT {_COLUMNS} FROM recording r WHERE r.isrc = ? UNION ALL"
                               f" SELECT {_COLUMNS} FROM isrc_alias a JOIN recording r ON r.id = a.recording_id"
                               " WHERE a.isrc = ?", (code, code)).fetchall()
        if rows:
            return [SearchHit(*row) for row in rows][offset: offset + limit]
    query = fts_query(text)
    if not query:
        return []
    sql = (
        f"SELECT {_COLUMNS} FROM ("
        "  SELECT rowid AS rid, bm25(recording_fts, 10.0, 5.0, 2.0) AS score"
        "  FROM recording_fts WHERE recording_fts MATCH ? LIMIT ?"
        f") AS hits JOIN recording r ON r.id = hits.rid "
        "ORDER BY hits.score, coalesce(r.listens, 0) DESC, r.id LIMIT ? OFFSET ?"
    )
    rows = catalog.execute(sql, (query, RANK_CAP + offset, limit, offset)).fetchall()
    return [SearchHit(*row) for row in rows]


def count_matches(catalog: Catalog, text: str, cap: int = 10_000) -> int:
    """How many recordings match, counted up to *cap*."""
    query = fts_query(text)
    if not query:
        return 0
    return int(catalog.scalar(
        "SELECT count(*) FROM (SELECT 1 FROM recording_fts WHERE recording_fts MATCH ? LIMIT ?)",
        (query, cap)) or 0)
