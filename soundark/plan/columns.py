"""Catalog rows into numpy columns, and positions of ids among ids: what every plan module reads with."""

from __future__ import annotations

import numpy as np

from soundark.catalog import Catalog

_FETCH = 200_000


def read_columns(catalog: Catalog, sql: str, dtype: np.dtype, params: tuple = ()) -> np.ndarray:
    """One SELECT into a structured numpy array, fetched in chunks (NULLs must be coalesced)."""
    cursor = catalog.execute(sql, params)
    cursor.row_factory = None  # plain tuples: numpy reads them without a per-row Python step
    parts = []
    while True:
        rows = cursor.fetchmany(_FETCH)
        if not rows:
            break
        parts.append(np.fromiter(rows, dtype=dtype, count=len(rows)))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def locate(ids: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Position in *ids* (unique) of each of *query*, -1 where absent. Row ids are nearly always
    dense, so a direct table (8 bytes per id) replaces a binary search per query."""
    if ids.size == 0:
        return np.full(query.size, -1, dtype=np.int64)
    low, top = int(ids.min()), int(ids.max())
    if low >= 0 and top <= 4 * ids.size + 1024:
        table = np.full(top + 1, -1, dtype=np.int64)
        table[ids] = np.arange(ids.size)
        out = table[np.clip(query, 0, top)]
        out[(query < 0) | (query > top)] = -1
        return out
    order = np.argsort(ids, kind="stable")
    out = order[np.minimum(np.searchsorted(ids, query, sorter=order), ids.size - 1)]
    out[ids[out] != query] = -1
    return out
