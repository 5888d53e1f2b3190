"""Which encoded recordings go into audio releases, and where the releases are cut.

Candidates are the encoded outputs of each recording's *planned* tier that no audio release
holds yet and whose rights are redistributable, in plan rank order (1 = most listened).
They are cut into consecutive groups, each closed before it would pass the target size, the
file cap, or the torrent metadata budget (clients refuse torrents with over ~100k files or
~8 MiB of metadata). A single recording larger than the target gets a release of its own.
Reading is keyset-paged by (rank, recording id), so memory stays flat on huge catalogs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from soundark.catalog import Catalog
from soundark.release.names import NameSet, portable_name

AUDIO_DIR = "data/audio"
METADATA_BUDGET = 6 << 20  # bytes of info dictionary we allow ourselves (clients: ~8 MiB)
_PAGE = 2000


@dataclass(frozen=True)
class Candidate:
    """One encoded recording ready to publish."""

    recording_id: int
    key: str
    title: str
    artist: str
    rights: str
    listens: int | None
    rank: int
    tier: str
    sha256: str
    bytes: int
    ext: str


@dataclass(frozen=True)
class Placed:
    """A candidate with its path inside the bag."""

    item: Candidate
    rel: str


@dataclass(frozen=True)
class Limits:
    target_size: int
    max_files: int
    hybrid: bool = False
    metadata_budget: int = METADATA_BUDGET


@dataclass
class Group:
    """The recordings of one audio release; ``full`` when closed by a limit (not by running out)."""

    items: list[Placed]
    full: bool = False

    @property
    def bytes(self) -> int:
        return sum(p.item.bytes for p in self.items)


_SELECT = """
SELECT r.id, r.key, r.title, r.artist, r.rights, r.listens, p.rank, e.tier, e.sha256, e.bytes, e.ext
FROM plan p
JOIN recording r ON r.id = p.recording_id
JOIN encoded e ON e.recording_id = p.recording_id AND e.tier = p.tier
WHERE p.tier != 'skip' AND (p.rank, p.recording_id) > (?, ?)
  AND r.rights IN ({rights})
  AND (? OR NOT EXISTS (SELECT 1 FROM source_file sf WHERE sf.recording_id = r.id
                        AND sf.status = 'ok' AND sf.licence_conflict IS NOT NULL))
  AND NOT EXISTS (SELECT 1 FROM release_file rf JOIN release rl ON rl.id = rf.release_id
                  WHERE rf.recording_id = p.recording_id AND rl.phase = 'audio')
ORDER BY p.rank, p.recording_id
LIMIT ?
"""


def candidates(catalog: Catalog, redistributable: tuple[str, ...],
               conflicts_ok: bool = False) -> Iterator[Candidate]:
    """Unreleased, redistributable encodes of the planned tier, in rank order (paged).

    A recording whose source file has a licence tag contradicting its rights (scan's
    ``licence_conflict``) is left out unless *conflicts_ok* (``release_rights_conflicts``).
    """
    if not redistributable:
        return
    sql = _SELECT.format(rights=", ".join("?" for _ in redistributable))
    after: tuple[int, int] = (-(1 << 62), -1)
    while True:
        rows = catalog.execute(sql, (*after, *redistributable, int(conflicts_ok), _PAGE)).fetchall()
        for row in rows:
            yield Candidate(*row)
        if len(rows) < _PAGE:
            return
        after = (rows[-1]["rank"], rows[-1]["id"])


_WAITING = """
SELECT r.rights AS why, count(*) AS n
FROM plan p
JOIN recording r ON r.id = p.recording_id
JOIN encoded e ON e.recording_id = p.recording_id AND e.tier = p.tier
WHERE p.tier != 'skip' AND r.rights NOT IN ({rights})
  AND NOT EXISTS (SELECT 1 FROM release_file rf JOIN release rl ON rl.id = rf.release_id
                  WHERE rf.recording_id = p.recording_id AND rl.phase = 'audio')
GROUP BY r.rights ORDER BY r.rights
"""

_SUPERSEDED = """
SELECT count(DISTINCT p.recording_id)
FROM plan p
JOIN encoded e ON e.recording_id = p.recording_id AND e.tier = p.tier
JOIN release_file rf ON rf.recording_id = p.recording_id
JOIN release rl ON rl.id = rf.release_id AND rl.phase = 'audio'
WHERE p.tier != 'skip'
  AND NOT EXISTS (SELECT 1 FROM release_file rf2 JOIN release rl2 ON rl2.id = rf2.release_id
                  WHERE rf2.recording_id = p.recording_id AND rl2.phase = 'audio'
                    AND rf2.sha256 = e.sha256)
"""


def held_back_by_rights(catalog: Catalog, redistributable: tuple[str, ...]) -> dict[str, int]:
    """Encoded but unpublishable recordings, counted by their rights value."""
    sql = _WAITING.format(rights=", ".join("?" for _ in redistributable) or "NULL")
    return {f"rights {row['why']!r} not redistributable": row["n"]
            for row in catalog.execute(sql, tuple(redistributable))}


_CONFLICTED = """
SELECT count(*)
FROM plan p
JOIN recording r ON r.id = p.recording_id
JOIN encoded e ON e.recording_id = p.recording_id AND e.tier = p.tier
WHERE p.tier != 'skip' AND r.rights IN ({rights})
  AND EXISTS (SELECT 1 FROM source_file sf WHERE sf.recording_id = r.id
              AND sf.status = 'ok' AND sf.licence_conflict IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM release_file rf JOIN release rl ON rl.id = rf.release_id
                  WHERE rf.recording_id = p.recording_id AND rl.phase = 'audio')
"""
LICENCE_CONFLICT_HELD = ("a licence tag of the source contradicts its rights "
                         "(see `soundark scan`; release_rights_conflicts = true publishes them)")


def held_back_by_licence(catalog: Catalog, redistributable: tuple[str, ...]) -> int:
    """Encoded, redistributable recordings held back because a source's licence tag disagrees."""
    if not redistributable:
        return 0
    sql = _CONFLICTED.format(rights=", ".join("?" for _ in redistributable))
    return int(catalog.execute(sql, tuple(redistributable)).fetchone()[0])


def superseded(catalog: Catalog) -> int:
    """Released recordings whose planned encode has changed since (published releases never change)."""
    return int(catalog.scalar(_SUPERSEDED) or 0)


def entry_metadata_bytes(rel: str, size: int, hybrid: bool) -> int:
    """Bytes one file adds to the bencoded info dictionary (v1 list entry; v2 tree + pad entry)."""
    parts = rel.split("/")
    path = sum(len(str(len(p.encode()))) + 1 + len(p.encode()) for p in parts)
    v1 = len("d6:lengthi") + len(str(size)) + len("e4:pathl") + path + 2
    if not hybrid:
        return v1
    v2 = len(parts[-1].encode()) + 80  # d0:d6:length..11:pieces root32:...ee in the file tree
    pad = 60  # d4:attr1:p6:length..4:pathl4:.pad..ee
    return v1 + v2 + pad


def _pieces_bytes(total: int, files: int, piece_length: int, hybrid: bool) -> int:
    pieces = -(-total // piece_length) + (files if hybrid else 0)  # hybrids pad every file
    return 20 * pieces


def cut(items: Iterable[Candidate], limits: Limits, piece_length_for) -> Iterator[Group]:
    """Group candidates, in the given order, into releases within ``limits``.

    ``piece_length_for(total_bytes)`` gives the piece length, to budget the piece hashes.
    Names are unique within a group, also on case-insensitive file systems.
    """
    group: list[Placed] = []
    names = NameSet()
    size = meta = 0
    for item in items:
        rel = f"{AUDIO_DIR}/" + portable_name(item.key, item.artist, item.title, item.ext)
        entry_meta = entry_metadata_bytes(rel, item.bytes, limits.hybrid)
        if group and _over(limits, size + item.bytes, len(group) + 1, meta + entry_meta, piece_length_for):
            yield Group(group, full=True)
            group, names, size, meta = [], NameSet(), 0, 0
        group.append(Placed(item, names.add(rel)))
        size += item.bytes
        meta += entry_meta
    if group:
        yield Group(group, full=size >= limits.target_size or len(group) >= limits.max_files)


def _over(limits: Limits, size: int, files: int, meta: int, piece_length_for) -> bool:
    if size > limits.target_size or files > limits.max_files:
        return True
    pieces = _pieces_bytes(size, files, piece_length_for(size), limits.hybrid)
    return meta + pieces > limits.metadata_budget
