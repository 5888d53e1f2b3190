"""`soundark archive` and `soundark demo`: every stage, in order, over one archive.

Each stage reads what the previous one wrote into the catalog and the archive
folder, so the pipeline is only the order of calls; every stage can be stopped
and re-run on its own. A step returns a :class:`Step` (what it did, as data and
as a few lines for people); the CLI prints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths, Settings, write_settings
from soundark.model import NO_PROGRESS, ImportReport, Progress


@dataclass
class Step:
    name: str
    lines: list[str]
    data: dict[str, Any] = field(default_factory=dict)
    ok: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.name, "ok": self.ok, **self.data}


StepFn = Callable[[ArchivePaths, Settings, Progress], Step]


def init_archive(root: Path, settings: Settings | None = None) -> ArchivePaths:
    """Create the archive folder, its settings file (if missing) and catalog."""
    paths = ArchivePaths(Path(root).absolute())
    paths.root.mkdir(parents=True, exist_ok=True)
    if not paths.settings.exists():
        write_settings(paths.root, settings or Settings())
    for folder in (paths.store, paths.art, paths.releases):
        folder.mkdir(exist_ok=True)
    open_catalog(paths.catalog).close()
    return paths


def import_step(name: str, report: ImportReport) -> Step:
    line = (f"{name} {report.source}: {report.new} new, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.rejected} rejected")
    lines = [line] + [f"  rejected {r.subject}: {r.reason}" for r in report.rejections[:5]]
    return Step(name, lines, report.as_dict())


def scan_step(folder: Path) -> StepFn:
    def run(paths: ArchivePaths, settings: Settings, progress: Progress) -> Step:
        from soundark.catalog.importers.scan import scan_directory

        with open_catalog(paths.catalog) as catalog:
            report = scan_directory(catalog, folder, rights=settings.rights, progress=progress)
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
