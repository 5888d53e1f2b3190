"""Publish a built bag: make its torrent, record it in the catalog, move it into ``releases/``.

Releases are immutable. A bag is built in ``releases/.staging/<name>/`` and only becomes a
release in one step: inside one catalog transaction the ``release`` and ``release_file`` rows
are inserted, the folder is renamed to ``releases/<name>/`` and the torrent written to
``releases/torrents/<name>.torrent`` (never overwriting); any failure rolls the catalog back
and moves the folder back to staging. A name that is already published is refused.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from soundark.catalog import Catalog
from soundark.config import ArchivePaths, Settings
from soundark.durable import rename_durably
from soundark.errors import BadInput, Conflict, EnvironmentProblem, os_reason
from soundark.fixity.releases import torrent_name, torrent_relpath
from soundark.release.bag import BuiltBag
from soundark.release.names import check_prefix
from soundark.release.torrent import TorrentSpec, magnet_link, make_torrent, piece_length_for, write_torrent

STAGING = ".staging"
PHASES = ("metadata", "audio", "art", "parity")


@dataclass(frozen=True)
class Context:
    """What every phase of one run shares."""

    paths: ArchivePaths
    settings: Settings
    date: str  # YYYY-MM-DD
    prefix: str

    @property
    def hybrid(self) -> bool:
        return self.settings.torrent_format == "hybrid"

    @property
    def staging(self) -> Path:
        return self.paths.releases / STAGING


def make_context(paths: ArchivePaths, settings: Settings, date: str | None) -> Context:
    """Check the settings a release depends on and fix the release date (default: today, UTC)."""
    if settings.torrent_format not in ("v1", "hybrid"):
        raise BadInput("torrent_format", f"{settings.torrent_format!r} must be v1 or hybrid")
    date = date or settings.release_date or dt.datetime.now(dt.UTC).date().isoformat()
    try:
        day = dt.date.fromisoformat(date)
    except ValueError as e:
        raise BadInput("date", f"{date!r} is not a date in the form YYYY-MM-DD") from e
    if len(date) != 10 or day.year < 1970:
        raise BadInput("date", f"{date!r} must be YYYY-MM-DD, 1970 or later")
    prefix = check_prefix(settings.release_prefix)
    return Context(paths, settings, date, prefix)


@dataclass
class Published:
    """One published release: the row of ``release`` (and of torrents.json)."""

    name: str
    phase: str
    created: str
    infohash_v1: str
    infohash_v2: str | None
    bytes: int
    files: int
    torrent: str
    magnet: str
    rank_first: int | None = None
    rank_last: int | None = None
    listens: int | None = None
    listens_share: float | None = None
    parity_for: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Extra:
    """Facts of an audio release (rank range and listens); parity link for a parity release."""

    rank_first: int | None = None
    rank_last: int | None = None
    listens: int | None = None
    listens_share: float | None = None
    parity_for: str | None = None


PUBLISHING = ".publishing"  # marker in staging while a bag is moved into place and committed


def prepare_staging(ctx: Context, catalog: Catalog | None = None) -> list[str]:
    """Empty ``releases/.staging`` (what a killed run left there was never published).

    A run killed in the instant between moving a bag into ``releases/`` and committing its
    catalog row leaves a marker here: that half-published bag (and its torrent) is taken
    back, to be built again. Returns the names taken back.
    """
    taken_back = []
    if catalog is not None and ctx.staging.is_dir():
        for marker in sorted(ctx.staging.glob(f"*{PUBLISHING}")):
            name = marker.name[:-len(PUBLISHING)]
            if name and not is_published(catalog, name):
                folder, torrent = ctx.paths.releases / name, ctx.paths.torrents / torrent_name(name)
                try:
                    if folder.is_dir() and not folder.is_symlink():
                        shutil.rmtree(folder)
                    torrent.unlink(missing_ok=True)
                except OSError as e:
                    raise EnvironmentProblem(folder, f"cannot take back a half-published bag: "
                                                     f"{os_reason(e)}") from e
                taken_back.append(name)
    try:
        shutil.rmtree(ctx.staging, ignore_errors=True)
        ctx.staging.mkdir(parents=True, exist_ok=True)
        ctx.paths.torrents.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EnvironmentProblem(ctx.paths.releases, f"cannot prepare: {os_reason(e)}") from e
    return taken_back


def next_name(catalog: Catalog, ctx: Context, phase: str) -> str:
    """``<prefix>-<phase>-NNNN``, one past the highest number published with this prefix."""
    pattern = re.compile(rf"^{re.escape(ctx.prefix)}-{phase}-(\d+)$")
    numbers = [int(m.group(1)) for (name,) in catalog.execute("SELECT name FROM release WHERE phase = ?", (phase,))
               if (m := pattern.match(name))]
    return f"{ctx.prefix}-{phase}-{max(numbers, default=0) + 1:04d}"


def is_published(catalog: Catalog, name: str) -> bool:
    return catalog.scalar("SELECT 1 FROM release WHERE name = ?", (name,)) is not None


def refuse_if_taken(catalog: Catalog, ctx: Context, name: str) -> None:
    if is_published(catalog, name):
        raise Conflict(name, "already published; a published release is never rewritten "
                       "(new material goes into new releases)")
    if (ctx.paths.releases / name).exists():
        raise Conflict(ctx.paths.releases / name, "exists but is not in the catalog (left by an "
                       "interrupted run?): move it out of releases/ and re-run")


def torrent_spec(ctx: Context, built: BuiltBag, piece_length: int) -> TorrentSpec:
    s = ctx.settings
    return TorrentSpec(built.folder.name, tuple(built.files), piece_length, ctx.date, ctx.hybrid,
                       tuple(s.trackers), tuple(s.web_seeds))


def publish(catalog: Catalog, ctx: Context, built: BuiltBag, phase: str,
            files: list[tuple[int | None, str, str, int]], extra: Extra = Extra()) -> Published:
    """Make the torrent of a staged bag and publish both (see the module docstring).

    ``files``: (recording id or None, path in the bag, sha256, bytes) for ``release_file``.
    """
    name = built.folder.name
    refuse_if_taken(catalog, ctx, name)
    piece = built.piece_length or piece_length_for(sum(size for _, _, _, size in files))
    made = make_torrent(torrent_spec(ctx, built, piece), built.folder.parent,
                        built.pieces if not ctx.hybrid else None)
    s = ctx.settings
    rel = Published(name, phase, ctx.date, made.infohash_v1, made.infohash_v2, built.bytes,
                    len(built.files), torrent_relpath(name),
                    magnet_link(name, made.infohash_v1, made.infohash_v2, tuple(s.trackers), tuple(s.web_seeds)),
                    extra.rank_first, extra.rank_last, extra.listens, extra.listens_share, extra.parity_for)
    final = ctx.paths.releases / name
    marker = ctx.staging / f"{name}{PUBLISHING}"
    marker.touch()
    with catalog.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO release (name, phase, created, infohash_v1, infohash_v2, bytes, files, rank_first,"
            " rank_last, listens, listens_share, torrent, magnet, parity_for)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rel.name, rel.phase, rel.created, rel.infohash_v1, rel.infohash_v2, rel.bytes, rel.files,
             rel.rank_first, rel.rank_last, rel.listens, rel.listens_share, rel.torrent, rel.magnet,
             rel.parity_for))
        conn.executemany("INSERT INTO release_file (release_id, recording_id, path, sha256, bytes)"
                         " VALUES (?, ?, ?, ?, ?)", [(cur.lastrowid, *f) for f in files])
        _move_into_place(built.folder, final)
        try:
            write_torrent(ctx.paths.releases / rel.torrent, made.data)
        except BaseException:
            os.rename(final, built.folder)
            raise
    marker.unlink(missing_ok=True)
    return rel


def _move_into_place(staged: Path, final: Path) -> None:
    if final.exists():
        raise Conflict(final, "appeared while the release was built; not touched")
    try:
        rename_durably(staged, final)
    except EnvironmentProblem as e:
        raise EnvironmentProblem(final, f"cannot move the bag into place: {e.reason}") from e
    except OSError as e:
        raise EnvironmentProblem(final, f"cannot move the bag into place: {os_reason(e)}") from e
