"""soundark.catalog.archive.init_archive: the one archive initialisation (init, archive, demo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from soundark.catalog.archive import init_archive
from soundark.config import Settings
from soundark.errors import SoundarkError


def test_init_creates_then_keeps(tmp_path: Path) -> None:
    first = init_archive(tmp_path / "a", Settings(budget="6MB"))
    assert first.settings_created and first.schema_version > 0
    assert all(p.is_dir() for p in (first.paths.store, first.paths.art, first.paths.releases))
    assert Settings.load(first.paths.root).budget == "6MB"
    again = init_archive(tmp_path / "a", Settings(budget="1TB"))  # existing settings are kept
    assert not again.settings_created and Settings.load(again.paths.root).budget == "6MB"
    assert again.schema_version == first.schema_version


def test_a_lost_catalog_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    root = tmp_path / "a"
    (root / "store" / "ab").mkdir(parents=True)
    (root / "store" / "ab" / ("ab" * 32 + ".opus")).write_bytes(b"OggS")
    with pytest.raises(SoundarkError):
        init_archive(root)
    assert not (root / "soundark.toml").exists() and not (root / "catalog.sqlite3").exists()
