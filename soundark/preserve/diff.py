"""Compare two catalog snapshots: recordings that vanished, appeared or changed.

Recordings are matched by their catalog key (ISRC, MusicBrainz ID or derived key; see
docs/catalog.md). A recording *changed* when its title, ISRC or duration (by more than
``DURATION_TOLERANCE_MS``) differs. Rows come out vanished first, then changed, then appeared,
each by listens (most first), so what is disappearing from a source is seen first. Each side
may be a catalog file, a metadata release's ``catalog.sqlite3.zst`` or its bag, or an archive
(:mod:`soundark.catalog.snapshot`: read-only, schema-checked). Both catalogs are walked in
key order side by side (a merge join), so memory grows with the differences, not with the
catalogs.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from soundark.catalog.snapshot import locate, open_snapshot
from soundark.errors import BadInput

DURATION_TOLERANCE_MS = 1000
KIND_ORDER = {"vanished": 0, "changed": 1, "appeared": 2}
_SQL = "SELECT key, title, artist, isrc, duration_ms, listens FROM recording ORDER BY key"


@dataclass(frozen=True)
class Change:
    kind: str            # vanished | appeared | changed
    key: str
    title: str
    artist: str
    listens: int | None
    fields: tuple[str, ...] = ()   # what changed
    old: tuple = ()
    new: tuple = ()

    def as_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "title": self.title, "artist": self.artist,
                "listens": self.listens, "fields": list(self.fields),
                "old": dict(zip(self.fields, self.old)), "new": dict(zip(self.fields, self.new))}


@dataclass
class CatalogDiff:
    old: str
    new: str
    old_count: int = 0
    new_count: int = 0
    changes: list[Change] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: sum(1 for c in self.changes if c.kind == k) for k in KIND_ORDER}

    def as_dict(self, limit: int | None = None) -> dict:
        rows = self.changes if limit is None else self.changes[:limit]
        lost = sum(c.listens or 0 for c in self.changes if c.kind == "vanished")
        return {"old": self.old, "new": self.new, "old_recordings": self.old_count,
                "new_recordings": self.new_count, "counts": self.counts(),
                "listens_vanished": lost, "changes": [c.as_dict() for c in rows]}

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["kind", "key", "title", "artist", "listens", "fields", "old", "new"])
        for c in self.changes:
            w.writerow([c.kind, c.key, c.title, c.artist, "" if c.listens is None else c.listens,
                        " ".join(c.fields), "; ".join(map(_cell, c.old)), "; ".join(map(_cell, c.new))])
        return buf.getvalue()


def _cell(v: object) -> str:
    return "" if v is None else str(v)


def _rows(path: Path) -> Iterator[tuple]:
    with open_snapshot(path) as catalog:
        yield from catalog.execute(_SQL)


def _changed_fields(a: tuple, b: tuple) -> tuple[str, ...]:
    out = []
    if (a[1] or "") != (b[1] or ""):
        out.append("title")
    if (a[3] or None) != (b[3] or None):
        out.append("isrc")
    da, db = a[4], b[4]
    if (da is None) != (db is None) or (da is not None and abs(da - db) > DURATION_TOLERANCE_MS):
        out.append("duration_ms")
    return tuple(out)


_COL = {"title": 1, "isrc": 3, "duration_ms": 4}


def diff_catalogs(old: Path, new: Path) -> CatalogDiff:
    """Vanished, appeared and changed recordings between two catalog files."""
    if locate(old)[0].resolve() == locate(new)[0].resolve():
        raise BadInput(new, "is the same catalog as the old one")
    result = CatalogDiff(str(old), str(new))
    a_iter, b_iter = _rows(old), _rows(new)
    a, b = next(a_iter, None), next(b_iter, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            result.changes.append(Change("vanished", a[0], a[1], a[2], a[5]))
            result.old_count += 1
            a = next(a_iter, None)
        elif a is None or b[0] < a[0]:
            result.changes.append(Change("appeared", b[0], b[1], b[2], b[5]))
            result.new_count += 1
            b = next(b_iter, None)
        else:
            fields = _changed_fields(tuple(a), tuple(b))
            if fields:
                listens = a[5] if a[5] is not None else b[5]
                result.changes.append(Change("changed", a[0], b[1], b[2], listens, fields,
                                             tuple(a[_COL[f]] for f in fields),
                                             tuple(b[_COL[f]] for f in fields)))
            result.old_count += 1
            result.new_count += 1
            a, b = next(a_iter, None), next(b_iter, None)
    result.changes.sort(key=lambda c: (KIND_ORDER[c.kind], -(c.listens or 0), c.key))
    return result
