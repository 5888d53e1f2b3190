"""`soundark demo`: a synthesised collection through every stage."""

from __future__ import annotations

from pathlib import Path

from soundark.catalog import open_catalog
from soundark.catalog.search import search
from soundark.config import ArchivePaths, Settings
from soundark.model import Progress
from soundark.pipeline import Step, StepFn, catalog_step, init_archive, listens_step, scan_step
from soundark.pipeline.library import build_demo_library


def search_step(query: str) -> StepFn:
    def run(paths: ArchivePaths, settings: Settings, progress: Progress) -> Step:
        with open_catalog(paths.catalog, readonly=True) as catalog:
            hits = search(catalog, query, limit=5)
        lines = [f'search "{query}": {len(hits)} result(s)'] + [
            f"  {h.title} — {h.artist} ({h.album}) [{h.isrc or h.key}]" for h in hits]
        return Step("search", lines, {"query": query, "results": [h.as_dict() for h in hits]},
                    ok=bool(hits))
    return run


def demo_steps(folder: Path, progress: Progress) -> tuple[list[StepFn], ArchivePaths]:
    """Build the demo collection (once) and the list of steps to run over its archive."""
    progress.start(None, "synthesising the demo collection", unit="files")
    library = build_demo_library(folder / "source")
    paths = init_archive(folder / "archive")
    steps: list[StepFn] = [
        catalog_step(library.catalog_file),
        scan_step(library.music),
        listens_step(library.listens_file),
        search_step(library.search_example),
    ]
    return steps, paths
