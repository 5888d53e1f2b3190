"""The release stage: publish the archive as BagIt bags (RFC 8493) with torrents (BEP 3 / BEP 52).

Entry functions, one per phase, each re-runnable (it adds only what is new) and returning a
:class:`ReleaseResult`:

* :func:`run_release_metadata` - a clean catalog snapshot plus Parquet exports (metadata.py);
* :func:`run_release_audio` - encoded recordings in rank order, cut into releases, each with a
  parity sidecar release ``<name>.parity`` (erasure-coded repair data, soundark.fixity.parity);
* :func:`run_release_art` - distinct cover images and the album -> image mapping (art.py).

After each run ``releases/torrents.json`` and ``releases/torrents.html`` list every release.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from soundark.catalog import Catalog, open_catalog
from soundark.config import ArchivePaths, Settings
from soundark.errors import BadInput, SoundarkError
from soundark.fixity.releases import parity_name
from soundark.model import NO_PROGRESS, Progress
from soundark.release.bag import BagEntry, DamagedFile, adopt_bag, build_bag
from soundark.release.layout import (
    LICENCE_CONFLICT_HELD,
    Candidate,
    Group,
    Limits,
    candidates,
    cut,
    held_back_by_licence,
    held_back_by_rights,
    superseded,
)
from soundark.release.listing import load_torrent_list, write_torrent_list
from soundark.release.publish import (
    Context,
    Extra,
    Published,
    make_context,
    next_name,
    prepare_staging,
    publish,
    refuse_if_taken,
)
from soundark.release.readme import audio_readme
from soundark.release.records import tracks_jsonl
from soundark.release.result import ReleaseResult, bag_info
from soundark.release.torrent import piece_length_for
from soundark.units import parse_bytes

__all__ = ["ReleaseResult", "run_release_audio", "run_release_metadata", "run_release_art",
           "load_torrent_list"]


# ---------------------------------------------------------------- audio


@dataclass(frozen=True)
class _Totals:
    listens: int  # all listens in the catalog
    weight: float  # all plan weight (used for the share when no listen counts are known)


def _totals(catalog: Catalog) -> _Totals:
    listens = int(catalog.scalar("SELECT coalesce(sum(listens), 0) FROM recording") or 0)
    weight = float(catalog.scalar("SELECT coalesce(sum(weight), 0) FROM plan") or 0.0)
    return _Totals(listens, weight)


def _present(items: Iterable[Candidate], paths: ArchivePaths, result: ReleaseResult) -> Iterator[Candidate]:
    """Candidates whose store file is there with the recorded size; the others are held back."""
    for item in items:
        path = paths.store_path(item.sha256, item.ext)
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        if size != item.bytes:
            result.hold("store file missing or of the wrong size")
            result.error(path, "missing from the store" if size < 0 else f"{size} bytes, expected {item.bytes}")
            continue
        yield item


OVER_BUDGET = "over the byte budget with real sizes (run `soundark plan` again: it re-plans within it)"
_RELEASED_AUDIO = ("SELECT coalesce(sum(rf.bytes), 0) FROM release_file rf JOIN release rl ON rl.id = rf.release_id "
                   "WHERE rl.phase = 'audio' AND rf.recording_id IS NOT NULL")


def _within_budget(catalog: Catalog, items: Iterable[Candidate], settings: Settings,
                   result: ReleaseResult) -> Iterator[Candidate]:
    """Candidates, in rank order, while released audio bytes stay within the budget.

    The plan fits the budget with its estimates; an encode larger than its estimate could
    push the releases past it before the next re-plan. Published releases never change, so
    the line is drawn here: the first candidate that would pass the budget and all after it
    wait (a re-plan with real sizes drops or re-queues them)."""
    text = str(settings.budget).strip()
    if text.lower() in ("", "none", "unlimited", "all"):  # the plan's spellings of "no budget"
        yield from items
        return
    budget = parse_bytes(text, "budget")
    spent = int(catalog.scalar(_RELEASED_AUDIO) or 0)
    over = False
    for item in items:
        if over or spent + item.bytes > budget:
            over = True
            result.hold(OVER_BUDGET)
            continue
        spent += item.bytes
        yield item


def _extra(catalog: Catalog, group: Group, totals: _Totals) -> Extra:
    ranks = [p.item.rank for p in group.items]
    listens = sum(p.item.listens or 0 for p in group.items)
    if totals.listens > 0:
        share = listens / totals.listens
    elif totals.weight > 0:
        ids = [p.item.recording_id for p in group.items]
        weight = 0.0
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            weight += float(catalog.scalar(f"SELECT coalesce(sum(weight), 0) FROM plan WHERE recording_id IN "
                                           f"({', '.join('?' for _ in chunk)})", tuple(chunk)) or 0.0)
        share = weight / totals.weight
    else:
        share = None
    return Extra(min(ranks), max(ranks), listens, None if share is None else round(share, 9))


def _audio_entries(catalog: Catalog, ctx: Context, name: str, group: Group) -> list[BagEntry]:
    items = group.items
    entries = [BagEntry(p.rel, p.item.bytes, ctx.paths.store_path(p.item.sha256, p.item.ext), p.item.sha256,
                        key=p.item.recording_id) for p in items]
    ranks = [p.item.rank for p in items]
    readme = audio_readme(name, ctx.date, len(items), min(ranks), max(ranks)).encode("utf-8")
    tracks = tracks_jsonl(catalog, items)
    entries.append(BagEntry("data/README.txt", len(readme), content=readme))
    entries.append(BagEntry("data/tracks.jsonl", len(tracks), content=tracks))
    return entries


def _publish_group(catalog: Catalog, ctx: Context, group: Group, totals: _Totals,
                   result: ReleaseResult, progress: Progress) -> Published | None:
    """Build and publish one audio release; a damaged store file is dropped and the bag rebuilt."""
    while group.items:
        name = next_name(catalog, ctx, "audio")
        refuse_if_taken(catalog, ctx, name)
        folder = ctx.staging / name
        try:
            built = build_bag(folder, _audio_entries(catalog, ctx, name, group),
                              bag_info(ctx, name, f"Audio recordings ranked {group.items[0].item.rank} "
                                       f"and on, of a music preservation archive; see data/README.txt"),
                              one_pass=not ctx.hybrid, progress=progress)
        except DamagedFile as e:
            shutil.rmtree(folder, ignore_errors=True)
            if e.key is None:  # not a store file: nothing to hold back, a real failure
                raise
            result.hold("store file damaged (SHA-256 mismatch) or missing")
            result.error(e.subject, e.reason)
            group = Group([p for p in group.items if p.item.recording_id != e.key], group.full)
            continue
        recording_of = {p.rel: p.item.recording_id for p in group.items}
        files = [(recording_of.get(rel), rel, sha, size) for rel, sha, size in built.payload]
        return publish(catalog, ctx, built, "audio", files, _extra(catalog, group, totals))
    return None


def _publish_parity(catalog: Catalog, ctx: Context, audio_name: str, result: ReleaseResult,
                    progress: Progress) -> None:
    """The parity sidecar ``<audio>.parity`` (its own bag and torrent); errors are recorded, not raised."""
    from soundark.fixity.parity import write_parity

    name = parity_name(audio_name)
    out = ctx.staging / name
    try:
        refuse_if_taken(catalog, ctx, name)
        progress.start(None, f"parity {name}", unit="releases")
        write_parity(ctx.paths.releases / audio_name, out, ctx.settings.parity_overhead)
        built = adopt_bag(out)
        files = [(None, rel, sha, size) for rel, sha, size in built.payload]
        result.published.append(publish(catalog, ctx, built, "parity", files, Extra(parity_for=audio_name)))
        progress.advance(1, name)
    except SoundarkError as e:
        shutil.rmtree(out, ignore_errors=True)
        result.error(e.subject, f"parity not written: {e.reason} (re-run to retry)")


def _missing_parity(catalog: Catalog) -> list[str]:
    return [row[0] for row in catalog.execute(
        "SELECT a.name FROM release a WHERE a.phase = 'audio' AND NOT EXISTS "
        "(SELECT 1 FROM release p WHERE p.phase = 'parity' AND p.parity_for = a.name) ORDER BY a.id")]


def audio_limits(settings: Settings, hybrid: bool, target_size: object = None,
                 max_files: int | None = None) -> Limits:
    target = parse_bytes(target_size if target_size is not None else settings.target_size, "target_size")
    files = max_files if max_files is not None else settings.max_files
    if target <= 0:
        raise BadInput("target_size", "must be more than 0 bytes")
    if files < 1 or files > 100_000:
        raise BadInput("max_files", f"{files} is outside 1..100000 (clients struggle past ~100k files)")
    return Limits(target, files, hybrid)


def run_release_audio(paths: ArchivePaths, settings: Settings, progress: Progress = NO_PROGRESS, *,
                      date: str | None = None, target_size: object = None, max_files: int | None = None,
                      full_only: bool = False) -> ReleaseResult:
    """Publish every encoded, redistributable, not yet released recording, in rank order.

    ``target_size`` (bytes or a size like ``"100GiB"``) and ``max_files`` override the settings;
    ``full_only`` keeps back a last release that reaches neither limit, for a later run.
    """
    ctx = make_context(paths, settings, date)
    limits = audio_limits(settings, ctx.hybrid, target_size, max_files)
    result = ReleaseResult("audio", ctx.date, str(paths.releases))
    with open_catalog(paths.catalog, create=False) as catalog:
        for name in prepare_staging(ctx, catalog):
            progress.note(f"{name}: a run was killed while publishing it; taken back, built again")
        for reason, n in held_back_by_rights(catalog, tuple(settings.redistributable)).items():
            result.hold(reason, n)
        redistributable = tuple(settings.redistributable)
        if not settings.release_rights_conflicts and (n := held_back_by_licence(catalog, redistributable)):
            result.hold(LICENCE_CONFLICT_HELD, n)
        if n_changed := superseded(catalog):
            result.hold("re-encoded after publication (published releases never change)", n_changed)
        totals = _totals(catalog)
        wanted = _within_budget(catalog, _present(candidates(catalog, redistributable,
                                                             settings.release_rights_conflicts), paths, result),
                                settings, result)
        for group in cut(wanted, limits, piece_length_for):
            if progress.cancelled():
                break
            if full_only and not group.full:
                result.waiting = len(group.items)
                break
            published = _publish_group(catalog, ctx, group, totals, result, progress)
            if published is not None:
                result.published.append(published)
        if settings.parity_overhead > 0:
            for name in _missing_parity(catalog):
                if progress.cancelled():
                    break
                _publish_parity(catalog, ctx, name, result, progress)
        write_torrent_list(catalog, paths)
        shutil.rmtree(ctx.staging, ignore_errors=True)
    return result


def _run_phase(phase: str, publish: Any, paths: ArchivePaths, settings: Settings, progress: Progress,
               date: str | None) -> ReleaseResult:
    """One single-bag phase (metadata, art): build in staging, publish, refresh the release list."""
    ctx = make_context(paths, settings, date)
    result = ReleaseResult(phase, ctx.date, str(paths.releases))
    with open_catalog(paths.catalog, create=False) as catalog:
        for name in prepare_staging(ctx, catalog):
            progress.note(f"{name}: a run was killed while publishing it; taken back, built again")
        publish(catalog, ctx, result, progress)
        write_torrent_list(catalog, paths)
        shutil.rmtree(ctx.staging, ignore_errors=True)
    return result


def run_release_metadata(paths: ArchivePaths, settings: Settings, progress: Progress = NO_PROGRESS, *,
                         date: str | None = None) -> ReleaseResult:
    """Publish a clean catalog snapshot with Parquet exports, unless the latest one holds the same."""
    from soundark.release.metadata import publish_metadata  # late: pyarrow costs ~0.5 s to import

    return _run_phase("metadata", publish_metadata, paths, settings, progress, date)


def run_release_art(paths: ArchivePaths, settings: Settings, progress: Progress = NO_PROGRESS, *,
                    date: str | None = None) -> ReleaseResult:
    """Publish the cover images not yet released (content-addressed) and their album mapping."""
    from soundark.release.art import publish_art

    return _run_phase("art", publish_art, paths, settings, progress, date)
