"""`soundark archive` and `soundark demo`: every stage, in order, over one archive.

Each stage reads what the previous one wrote into the catalog and the archive
folder, so the pipeline is only the order of calls; every stage can be stopped
and re-run on its own. A step returns a :class:`Step` (what it did, as data and
as a few lines for people); the CLI prints them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths, Settings
from soundark.fixity.releases import release_list_path
from soundark.model import NO_PROGRESS, ImportReport, Progress
from soundark.units import format_bytes


@dataclass
class Step:
    name: str
    lines: list[str]
    data: dict[str, Any] = field(default_factory=dict)
    ok: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.name, "ok": self.ok, **self.data}


StepFn = Callable[[ArchivePaths, Settings, Progress], Step]


def import_step(name: str, report: ImportReport) -> Step:
    line = (f"{name} {report.source}: {report.new} new, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.rejected} rejected")
    lines = [line] + [f"  rejected {r.subject}: {r.reason}" for r in report.rejections[:5]]
    return Step(name, lines, report.as_dict())


def scan_step(folder: Path) -> StepFn:
    def run(paths: ArchivePaths, settings: Settings, progress: Progress) -> Step:
        from soundark.catalog.importers.scan import ReadLimits, scan_directory

        with open_catalog(paths.catalog) as catalog:
            report = scan_directory(catalog, folder, rights=settings.rights, progress=progress,
                                    limits=ReadLimits(settings.max_tag_entries, settings.scan_file_seconds))
        return import_step("scan", report)
    return run


def catalog_step(file: Path) -> StepFn:
    def run(paths: ArchivePaths, settings: Settings, progress: Progress) -> Step:
        from soundark.catalog.importers.tabular import import_catalog_file

        with open_catalog(paths.catalog) as catalog:
            report = import_catalog_file(catalog, file, rights=settings.rights, progress=progress)
        return import_step("import catalog", report)
    return run


def listens_step(file: Path) -> StepFn:
    def run(paths: ArchivePaths, settings: Settings, progress: Progress) -> Step:
        from soundark.catalog.importers.listens import import_listens

        with open_catalog(paths.catalog) as catalog:
            report = import_listens(catalog, file, progress=progress)
        return import_step("import listens", report)
    return run


def plan_step() -> StepFn:
    def run(paths: ArchivePaths, settings: Settings, progress: Progress) -> Step:
        from soundark.plan.report import run_report
        from soundark.plan.stage import run_plan

        result = run_plan(paths, settings, progress)
        report = run_report(paths, settings)
        t = result.by_tier
        budget = f" of a {format_bytes(result.budget)} budget" if result.budget is not None else " (no budget)"
        mode = result.signal.get("mode", "full")
        share = (f"{result.hours_kept:,.1f} of {result.hours_total:,.1f} hours kept (no listen data)"
                 if mode == "none" else f"{100 * result.share_covered:.1f} % of listens kept, "
                 f"{100 * result.share_value:.1f} % of their value")
        lines = [f"{result.recordings:,} recordings: {t['original']['recordings']:,} original, "
                 f"{t['opus75']['recordings']:,} opus75, {t['skip']['recordings']:,} skipped; "
                 f"{format_bytes(result.bytes)}{budget}",
                 share + f" ({result.tier_changes:,} tier changes since the last plan)"]
        if t["original"]["recordings"] and mode != "none":
            lines.append(f"originals: the {t['original']['recordings']:,} most-listened lossy sources, kept byte "
                         f"for byte ({100 * t['original']['listens'] / result.listens_total:.1f} % of listens); "
                         "the tail is re-encoded to opus75")
        lines += ["  " + line for line in report.text.splitlines() if line.strip()][:18]
        lines.append(f"coverage curve: {report.png}")
        return Step("plan", lines, {"plan": result.as_dict(), "report": report.as_dict()})
    return run


def replan_step() -> StepFn:
    """After encode and the audio release the plan learns the real sizes and what is released (the
    budget is a promise: docs/plan.md); doing it in the same run keeps what the metadata snapshot
    says of the plan what a re-run would say."""
    def run(paths: ArchivePaths, settings: Settings, progress: Progress) -> Step:
        from soundark.plan.stage import run_plan

        result = run_plan(paths, settings, progress)
        lines = [f"{format_bytes(result.bytes)} with the real sizes of what was encoded; "
                 f"{result.tier_changes:,} tier changes"]
        return Step("plan (real sizes)", lines, {"plan": result.as_dict()})
    return run


def encode_step() -> StepFn:
    def run(paths: ArchivePaths, settings: Settings, progress: Progress) -> Step:
        from soundark.encode.stage import run_encode

        result = run_encode(paths, settings, progress)
        lines = [f"encoded {result.encoded}, kept {result.kept} original(s), failed {result.failed}, "
                 f"{result.remaining} left; {result.audio_seconds / 60:,.1f} min of audio, "
                 f"{format_bytes(result.bytes_in)} in -> {format_bytes(result.bytes_out)} out"]
        lines += [f"  failed {f.path or f.recording_id}: {f.reason}" for f in result.failures[:10]]
        with open_catalog(paths.catalog, readonly=True) as catalog:
            refused = catalog.execute("SELECT path, error FROM source_file WHERE status = 'rejected' "
                                      "ORDER BY path LIMIT 10").fetchall()
        lines += [f"  refused {path}: {error}" for path, error in refused]
        if result.stopped:
            lines.append(f"stopped early, {result.stopped}: unfinished jobs stay pending; re-run when fixed")
        lines.append(f"store: {result.store}")
        return Step("encode", lines, result.as_dict(), ok=result.remaining == 0 and not result.failed)
    return run


def release_step(phase: str) -> StepFn:
    def run(paths: ArchivePaths, settings: Settings, progress: Progress) -> Step:
        from soundark.release import stage

        fn = {"metadata": stage.run_release_metadata, "audio": stage.run_release_audio,
              "art": stage.run_release_art}[phase]
        result = fn(paths, settings, progress)
        lines = [f"published {p.name}: {p.files:,} files, {format_bytes(p.bytes)}, infohash {p.infohash_v1}"
                 for p in result.published]
        lines += [f"unchanged: {name} already holds this content" for name in result.unchanged]
        if not lines:
            lines.append("nothing new to publish")
        lines += [f"held back {n:,}: {reason}" for reason, n in sorted(result.held_back.items())]
        lines += [f"  error {e['subject']}: {e['reason']}" for e in result.errors[:10]]
        return Step(f"release {phase}", lines, result.as_dict(), ok=not result.errors)
    return run


# The metadata snapshot goes last in a run: its `release` and `release_file` tables then name
# the audio and art releases of the same run (which torrent holds which recording), and a
# re-run with nothing new builds the same snapshot and publishes nothing. Published first, it
# could not know them, and the next run had to publish a second snapshot that did. Mirrors
# still take metadata releases before any audio (mirror plan ranks by phase, not by date).
RELEASE_ORDER = ("audio", "art", "metadata")


def release_steps() -> list[StepFn]:
    """The release phases, with the re-plan on real sizes just before the metadata snapshot: the
    plan then already counts this run's releases, and a re-run writes the same plan figures."""
    steps: list[StepFn] = []
    for phase in RELEASE_ORDER:
        if phase == "metadata":
            steps.append(replan_step())
        steps.append(release_step(phase))
    return steps


def list_step() -> StepFn:
    def run(paths: ArchivePaths, settings: Settings, progress: Progress) -> Step:
        from soundark.release.listing import load_torrent_list

        listing = load_torrent_list(paths)
        lines = []
        for r in listing["releases"]:
            share = f", {100 * r['listens_share']:.1f} % of listens" if r.get("listens_share") is not None else ""
            lines.append(f"{r['name']:<32} {r['phase']:<8} {r['files']:>4} files "
                         f"{format_bytes(r['bytes']):>10}{share}")
            lines.append(f"  {r['magnet']}")
        lines.append(f"list: {release_list_path(paths.releases)} and torrents.html")
        return Step("releases", lines, {"releases": listing["releases"]}, ok=bool(listing["releases"]))
    return run


def run_steps(paths: ArchivePaths, settings: Settings, steps: list[StepFn],
              progress: Progress = NO_PROGRESS,
              on_step: Callable[[Step], None] = lambda step: None) -> list[Step]:
    done = []
    for fn in steps:
        if progress.cancelled():
            break
        step = fn(paths, settings, progress)
        on_step(step)
        done.append(step)
    return done
