"""`soundark demo`: a synthesised collection through every stage."""

from __future__ import annotations

import os
from pathlib import Path

from soundark.catalog import open_catalog
from soundark.catalog.archive import init_archive
from soundark.catalog.search import search
from soundark.config import ArchivePaths, Settings
from soundark.errors import NotFound
from soundark.fixity.releases import is_parity_name
from soundark.model import Progress
from soundark.pipeline import (
    Step,
    StepFn,
    catalog_step,
    encode_step,
    list_step,
    listens_step,
    plan_step,
    release_steps,
    scan_step,
)
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


# A budget that keeps the popular head and part of the tail but not all of it: the demo's
# 28 held recordings encode to ~7 MB of Opus, and the 14 catalog-only ones would take more.
DEMO_SETTINGS = Settings(budget="6MB", organisation="soundark demo", parity_overhead=0.10)


def _first_audio_file(paths: ArchivePaths) -> tuple[Path, str]:
    """An audio file inside the first audio release: (bag folder, path inside the bag)."""
    for bag in sorted(paths.releases.glob("*-audio-*")):
        if bag.is_dir() and not is_parity_name(bag.name):
            for f in sorted((bag / "data").rglob("*")):
                if f.is_file() and f.suffix in (".opus", ".ogg", ".mp3", ".m4a", ".flac"):
                    return bag, f.relative_to(bag).as_posix()
    raise NotFound(paths.releases, "no audio release to check")


def flip_byte(path: Path, offset: int) -> None:
    """Bit rot: one byte inverted in place (the store's hard link to this file rots with it)."""
    with open(path, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(offset % size)
        byte = f.read(1)[0]
        f.seek(offset % size)
        f.write(bytes([byte ^ 0xFF]))


def damage_step() -> StepFn:
    """verify (intact) -> flip one byte -> verify names it -> repair -> verify clean."""
    def run(paths: ArchivePaths, settings: Settings, progress: Progress) -> Step:
        from soundark.preserve.repair import repair_path
        from soundark.preserve.verify import verify_path

        bag, rel = _first_audio_file(paths)
        lines = []
        before = verify_path(paths.root, progress=progress)
        lines.append(f"verify {paths.root}: {before.files} files in {len(before.bags)} bags and the store, "
                     + ("intact" if before.ok else f"{len(before.problems)} problem(s)"))
        if not before.ok:  # a demo stopped mid-cycle: repair first
            repair_path(paths.root, progress)
        flip_byte(bag / rel, offset=4096)
        lines.append(f"flipped one byte of {bag.name}/{rel} (bit rot: its store copy is the same file)")
        damaged = verify_path(paths.root, progress=progress)
        lines += [f"verify: {p.kind} {p.path}" + (f" ({p.detail})" if p.detail else "")
                  for p in damaged.problems]
        fixed = repair_path(paths.root, progress)
        lines += [f"{what} {os.path.relpath(path, paths.root)}" + (f": {why}" if why else "")
                  for b in fixed.bags for what, path, why in b.lines()]
        lines.append("from the parity sidecar and the repaired release copy, no network used")
        after = fixed.after
        lines.append(f"verify again: {'intact' if after.ok else f'{len(after.problems)} problem(s)'}")
        ok = before.ok and not damaged.ok and fixed.ok and after.ok
        return Step("verify, damage, repair", lines,
                    {"before": before.as_dict(), "damaged": damaged.as_dict(),
                     "repair": fixed.as_dict(), "after": after.as_dict()}, ok=ok)
    return run


def demo_steps(folder: Path, progress: Progress) -> tuple[list[StepFn], ArchivePaths]:
    """Build the demo collection (once) and the list of steps to run over its archive."""
    progress.start(None, "synthesising the demo collection", unit="files")
    library = build_demo_library(folder / "source")
    paths = init_archive(folder / "archive", DEMO_SETTINGS).paths
    steps: list[StepFn] = [
        catalog_step(library.catalog_file),
        scan_step(library.music),
        listens_step(library.listens_file),
        plan_step(),
        encode_step(),
        *release_steps(),
        damage_step(),
        search_step(library.search_example),
        list_step(),
    ]
    return steps, paths
