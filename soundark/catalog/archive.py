"""Archive initialisation, once for every face: ``soundark init``, ``archive`` and ``demo``.

An archive folder (DESIGN.md, "The archive folder") is ``soundark.toml``, ``catalog.sqlite3``,
``store/``, ``art/`` and ``releases/``. Initialising is idempotent: existing settings and an
existing catalog are kept. A catalog that is missing while store/ or releases/ hold data is
refused before anything is written (docs/reliability.md): it was lost, and a fresh one would not
know that data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from soundark.catalog.store import check_new_catalog, open_catalog
from soundark.config import ArchivePaths, Settings, write_settings


@dataclass(frozen=True)
class ArchiveInit:
    paths: ArchivePaths
    settings_created: bool
    schema_version: int


def init_archive(root: Path, settings: Settings | None = None) -> ArchiveInit:
    """Create or adopt the archive at *root*; *settings* are written only where none exist yet."""
    paths = ArchivePaths(Path(root).expanduser().absolute())
    paths.root.mkdir(parents=True, exist_ok=True)
    created = not paths.settings.exists()
    check_new_catalog(paths)  # refuse before writing anything
    if created:
        write_settings(paths.root, settings or Settings())
    for folder in (paths.store, paths.art, paths.releases):
        folder.mkdir(exist_ok=True)
    with open_catalog(paths.catalog) as catalog:
        version = catalog.schema_version()
    return ArchiveInit(paths, created, version)
