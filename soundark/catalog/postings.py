"""The recordings that hold a common word, as sorted arrays in memory: the web's search of a rare
word and a common one (``search._pair``) intersects them there instead of in FTS5.

FTS5 answers ``rare AND common`` by seeking the common word's doclist once for each row of the
rare word, and a seek into a doclist of a million rows costs ~1.4 us at 50M rows (its page is
read, then its entries walked to the row): ``"heart eljachch"`` (1.66M and 15.6k recordings)
took 21 ms. Read in one string (``group_concat``), a doclist costs ~0.2 us a row, so the rare
word's rows come in ~3 ms and a binary search in the common word's array takes ~0.1 us a row.

The common words' ids are stored in the catalog (search_postings, migration 0014), written with
search_word by :func:`soundark.catalog.vocabulary.refresh` (the end of an import): reading a
word of 1.6M recordings from FTS5 takes ~0.2 s, from there a few ms. :class:`Postings` keeps
those a process read, keyed by the FTS5 structure record (``recording_fts_data`` row 10), which
every write to the index changes, read in the searching transaction. It holds at most
``budget`` bytes, the least recently used word dropped first; a word bigger than a quarter of
that is not kept (None: FTS5 answers).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict

import numpy as np

POSTINGS_BYTES = 160 << 20  # per web process: bench_scale's mix at 50M reads 45 words, 143 MB


def rowids(conn: sqlite3.Connection, word: str, after: int = 0, limit: int = -1) -> np.ndarray:
    """The ids of the recordings holding *word* (a query word, quoted for FTS5), ascending: the
    first *limit* (-1: all) above *after*."""
    return matching(conn, '"' + word.replace('"', '""') + '"', after, limit)


def matching(conn: sqlite3.Connection, query: str, after: int = 0, limit: int = -1) -> np.ndarray:
    """The ids of the recordings matching the FTS5 *query*, ascending: the first *limit* (-1: all)
    above *after*, read in one string."""
    text = conn.execute("SELECT group_concat(rowid) FROM (SELECT rowid FROM recording_fts "
                        "WHERE recording_fts MATCH ? AND rowid > ? LIMIT ?)",
                        (query, after, limit)).fetchone()[0]
    if not text:
        return np.zeros(0, np.int64)
    ids = np.fromstring(text, dtype=np.int64, sep=",")
    if ids.size > 1 and not bool((ids[1:] > ids[:-1]).all()):  # FTS5 yields them ascending; made sure
        ids = np.unique(ids)
    return ids


def intersect(conn: sqlite3.Connection, query: str, held: list[np.ndarray], need: int,
              share: float) -> np.ndarray:
    """The first *need* ids (ascending) of the recordings matching the FTS5 *query* that are in
    every array of *held* (common words' ids, together a *share* of all recordings): the query's
    ids are read in growing slices, the first one enough for *need* hits at that share (a search
    of 300+ hits stops early, as FTS5's does)."""
    slice_ = max(1000, int(need / max(share, 1e-6) * 1.5))
    found: list[np.ndarray] = []
    count = 0
    after = 0
    while True:
        ids = matching(conn, query, after, slice_)
        more = ids.size == slice_
        if ids.size:
            after = int(ids[-1])
        for h in held:
            if not ids.size:
                break
            if not h.size:
                ids = ids[:0]
                break
            ids = ids.astype(h.dtype)  # searchsorted would copy *h* to the wider type
            at = np.minimum(np.searchsorted(h, ids), h.size - 1)
            ids = ids[h[at] == ids]
        found.append(ids)
        count += ids.size
        if not more or count >= need:
            break
        slice_ *= 4
    return np.concatenate(found)[:need].astype(np.int64)


class Postings:
    """Common words' recording ids, kept while the word index is unchanged (module docstring)."""

    def __init__(self, budget: int = POSTINGS_BYTES) -> None:
        self.budget = budget
        self._words: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._structure: bytes | None = None
        self._lock = threading.Lock()

    def get(self, conn: sqlite3.Connection, word: str, structure: bytes) -> np.ndarray | None:
        """The ids of *word* stored in search_postings (the caller checked they are current for the
        index of this *structure* record); None when it has none or it is too big to keep."""
        with self._lock:
            if structure != self._structure:
                self._words.clear()
                self._bytes = 0
                self._structure = structure
            found = self._words.get(word)
            if found is not None:
                self._words.move_to_end(word)
                return found
        row = conn.execute("SELECT width, ids FROM search_postings WHERE word = ?", (word,)).fetchone()
        if row is None or len(row[1]) > self.budget // 4:
            return None
        ids = np.frombuffer(row[1], dtype=f"<i{row[0]}")
        with self._lock:
            if structure == self._structure and word not in self._words:
                self._words[word] = ids
                self._bytes += ids.nbytes
                while self._bytes > self.budget:
                    _, dropped = self._words.popitem(last=False)
                    self._bytes -= dropped.nbytes
        return ids

    @property
    def nbytes(self) -> int:
        return self._bytes
