"""Find recordings by any of their identifiers: primary ISRC/MBID or an alias (migration 0006).

``recording.isrc`` and ``recording.mbid`` hold one identifier each; ``isrc_alias`` holds a
recording's further ISRCs (MusicBrainz lists several per recording) and ``mbid_alias`` the
MusicBrainz recordings that share an ISRC with it (duplicates MusicBrainz has not merged).
Every lookup by ISRC or MBID goes through here, so an alias finds its recording
everywhere: scan matching, search, listen imports. Functions take a plain DB-API
connection and run in the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from soundark.isrc import normalise_or_none
from soundark.model import normalise_mbid

_CHUNK = 500  # bound parameters per statement (SQLite's default limit is 32766)


def find_by_alias(conn: sqlite3.Connection, *, isrc: str | None = None,
                  mbid: str | None = None) -> tuple[int, str, str] | None:
    """(id, key, rule) of the recording an alias ISRC or MBID names; rule is 'isrc' or 'mbid'."""
    code = normalise_or_none(isrc) if isrc else None
    if code:
        row = conn.execute("SELECT r.id, r.key FROM isrc_alias a JOIN recording r ON r.id = a.recording_id"
                           " WHERE a.isrc = ?", (code,)).fetchone()
        if row:
            return row[0], row[1], "isrc"
    canonical = normalise_mbid(mbid) if mbid else None
    if canonical:
        row = conn.execute("SELECT r.id, r.key FROM mbid_alias a JOIN recording r ON r.id = a.recording_id"
                           " WHERE a.mbid = ?", (canonical,)).fetchone()
        if row:
            return row[0], row[1], "mbid"
    return None


def _lookup(conn: sqlite3.Connection, values: list[str], primary: str, alias: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(values), _CHUNK):
        chunk = values[start: start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        # alias first, so a primary identifier wins when (wrongly) both exist
        for sql in (f"SELECT {alias}, recording_id FROM {alias}_alias WHERE {alias} IN ({marks})",
                    f"SELECT {primary}, id FROM recording WHERE {primary} IN ({marks})"):
            found.update(conn.execute(sql, chunk).fetchall())
    return found


def resolve_recording_ids(conn: sqlite3.Connection, *, mbids: Iterable[str] = (),
                          isrcs: Iterable[str] = ()) -> dict[str, int]:
    """Recording id of each identifier the catalog knows, primary or alias.

    Keys are the identifiers in canonical form (MBIDs dashed lower case, ISRCs 12
    characters upper case); identifiers that are malformed or unknown are left out.
    """
    canon_mbids = sorted({m for m in (normalise_mbid(x) for x in mbids) if m})
    canon_isrcs = sorted({c for c in (normalise_or_none(x) for x in isrcs) if c})
    found = _lookup(conn, canon_mbids, "mbid", "mbid")
    found.update(_lookup(conn, canon_isrcs, "isrc", "isrc"))
    return found


__all__ = ["find_by_alias", "resolve_recording_ids"]
