"""An archive with three released recordings in its store, and bit rot (verify/repair of the store)."""

from __future__ import annotations

from pathlib import Path

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths, Settings, write_settings
from soundark.release.stage import run_release_audio

from helpers.release import Rec, add, sized


def archive(root: Path) -> tuple[ArchivePaths, list[Path]]:
    paths = ArchivePaths(root)
    root.mkdir(parents=True)
    write_settings(root, Settings())
    open_catalog(paths.catalog).close()
    with open_catalog(paths.catalog) as cat:
        for i in range(3):
            add(cat, paths, Rec(key=f"USABC2400{i:03d}", rank=i + 1, data=sized(i, 300_000 + i), title=f"T{i}"))
    run_release_audio(paths, Settings(), date="2024-05-01")
    stored = sorted(p for p in paths.store.glob("??/??/*") if p.is_file())
    assert len(stored) == 3
    return paths, stored


def rot(path: Path, offset: int = 1000) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([b ^ 0x01]))
