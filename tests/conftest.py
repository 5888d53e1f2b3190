"""Shared fixtures: a fresh archive with a real catalog, and real tiny audio files."""

from __future__ import annotations

from pathlib import Path

import pytest

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths, Settings, write_settings


@pytest.fixture
def archive(tmp_path: Path) -> ArchivePaths:
    """An initialised archive folder (settings + empty migrated catalog)."""
    paths = ArchivePaths(tmp_path / "archive")
    paths.root.mkdir()
    write_settings(paths.root, Settings())
    for folder in (paths.store, paths.art, paths.releases):
        folder.mkdir()
    open_catalog(paths.catalog).close()
    return paths


@pytest.fixture
def catalog(archive: ArchivePaths):
    with open_catalog(archive.catalog) as cat:
        yield cat
