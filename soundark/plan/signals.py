"""Weights when listen counts are missing: the documented fallback chain (docs/plan.md).

1. ``listens``: the recording's own listen count;
2. ``popularity``: its popularity (0-100), mapped to a listen-like weight
   ``10 ** (popularity / 20) - 1`` (0 -> 0, 60 -> 999, 100 -> 99 999);
3. ``album``: ``ALBUM_DAMPING`` x the weight of the most-listened recording
   with a signal of its own on any album it appears on (album mates of a hit
   are played, but far less than the hit);
4. ``artist``: ``ARTIST_DAMPING`` x the same over its credited artists;
5. ``none``: weight 0.

When no recording has a weight (level 5 everywhere), there is nothing to rank
by: the plan keeps whole albums in scan order (the order their first file was
scanned, which walks the collection folder by folder), and says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from soundark.catalog import Catalog
from soundark.plan.columns import locate, read_columns

SIGNALS = ("listens", "popularity", "album", "artist", "none")
LISTENS, POPULARITY, ALBUM, ARTIST, NONE = range(5)
ALBUM_DAMPING = 0.1
ARTIST_DAMPING = 0.01
_NO_SID = np.iinfo(np.int64).max


def popularity_weight(popularity: np.ndarray) -> np.ndarray:
    """The documented monotone map of popularity (0-100) to a listen-like weight."""
    p = np.clip(np.asarray(popularity, dtype=np.float64), 0.0, 100.0)
    return np.power(10.0, p / 20.0) - 1.0


def direct_weights(listens: np.ndarray, popularity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weight, signal level) from the recording's own listens (< 0: unknown) or popularity."""
    weight = np.zeros(listens.size, dtype=np.float64)
    level = np.full(listens.size, NONE, dtype=np.int8)
    has_pop = popularity >= 0
    weight[has_pop] = popularity_weight(popularity[has_pop])
    level[has_pop] = POPULARITY
    has_listens = listens >= 0
    weight[has_listens] = listens[has_listens]
    level[has_listens] = LISTENS
    return weight, level


def _from_groups(weight: np.ndarray, level: np.ndarray, pos: np.ndarray, group: np.ndarray,
                 damping: float, code: int) -> None:
    """Recordings without a signal take *damping* x the best direct weight of their groups."""
    ok = pos >= 0
    pos, group = pos[ok], group[ok]
    if pos.size == 0:
        return
    direct = level[pos] <= POPULARITY
    uniq, inv = np.unique(group, return_inverse=True)
    best = np.full(uniq.size, -1.0)
    np.maximum.at(best, inv[direct], weight[pos[direct]])
    gain = best[inv] * damping
    target = (level[pos] == NONE) & (best[inv] >= 0)
    got = np.full(weight.size, -1.0)
    np.maximum.at(got, pos[target], gain[target])
    fill = got >= 0
    weight[fill] = got[fill]
    level[fill] = code


def fallback_weights(catalog: Catalog, ids: np.ndarray, weight: np.ndarray, level: np.ndarray) -> None:
    """Fill album- then artist-derived weights in place (only reads tracks when some need it)."""
    has = level <= POPULARITY
    if has.all() or not has.any():
        return
    links = read_columns(catalog, "SELECT recording_id, album_id FROM track WHERE album_id IS NOT NULL",
                         np.dtype([("rid", "i8"), ("g", "i8")]))
    _from_groups(weight, level, locate(ids, links["rid"]), links["g"], ALBUM_DAMPING, ALBUM)
    credits = read_columns(catalog, "SELECT recording_id, artist_id FROM recording_artist",
                           np.dtype([("rid", "i8"), ("g", "i8")]))
    _from_groups(weight, level, locate(ids, credits["rid"]), credits["g"], ARTIST_DAMPING, ARTIST)


def signal_counts(level: np.ndarray) -> dict[str, int]:
    counts = np.bincount(level, minlength=len(SIGNALS))
    return {name: int(counts[i]) for i, name in enumerate(SIGNALS)}


def scan_order(catalog: Catalog, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions of *ids* in album-by-album scan order, album group of each position).

    Albums in the order their first file was scanned, tracks by disc and number
    within one; a recording on no album is a group of its own; recordings
    without audio come last. *ids* is in key order, the final tie-break.
    """
    n = ids.size
    first_sid = np.full(n, _NO_SID, dtype=np.int64)
    src = read_columns(catalog, "SELECT recording_id, min(id) FROM source_file WHERE status = 'ok' "
                                "AND recording_id IS NOT NULL GROUP BY recording_id",
                       np.dtype([("rid", "i8"), ("sid", "i8")]))
    pos = locate(ids, src["rid"])
    first_sid[pos[pos >= 0]] = src["sid"][pos >= 0]
    tracks = read_columns(catalog, "SELECT recording_id, coalesce(album_id, -1), coalesce(disc_number, 0), "
                                   "coalesce(track_number, 0) FROM track ORDER BY id DESC",
                          np.dtype([("rid", "i8"), ("album", "i8"), ("disc", "i8"), ("no", "i8")]))
    top = int(tracks["album"].max()) + 1 if tracks.size else 0
    group = np.arange(top, top + n, dtype=np.int64)  # its own group unless on an album
    disc, number = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    pos = locate(ids, tracks["rid"])
    on_album = (pos >= 0) & (tracks["album"] >= 0)
    # ORDER BY id DESC: the first track of each recording is written last, so it wins
    group[pos[on_album]] = tracks["album"][on_album]
    disc[pos[on_album]] = tracks["disc"][on_album]
    number[pos[on_album]] = tracks["no"][on_album]
    uniq, inv = np.unique(group, return_inverse=True)
    album_sid = np.full(uniq.size, _NO_SID, dtype=np.int64)
    np.minimum.at(album_sid, inv, first_sid)
    order = np.lexsort((np.arange(n), first_sid, number, disc, group, album_sid[inv]))
    return order, group[order]


NO_SIGNAL = ("no listen data: every recording weighs the same, so the budget keeps whole albums "
             "in scan order (the order their first file was scanned)")


def signal_mode(f: dict[str, Any]) -> str:
    """``full``, ``partial`` or ``none`` (figures of older plans: from the listens total)."""
    return f.get("signal", {}).get("mode") or ("full" if f.get("listens_total") else "none")


def signal_note(f: dict[str, Any]) -> str | None:
    """What the weights rest on, when it is not every recording's own listens or popularity."""
    mode = signal_mode(f)
    if mode == "none":
        return NO_SIGNAL
    if mode != "partial":
        return None
    c = f["signal"]["counts"]
    own = c["listens"] + c["popularity"]
    return (f"partial listen data: {own:,} of {f['recordings']:,} recordings have listens or popularity; "
            f"{c['album']:,} are weighted from their album's best track (x0.1), {c['artist']:,} from "
            f"their artist's (x0.01), {c['none']:,} have no signal (weight 0, kept last)")
