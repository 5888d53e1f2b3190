"""A folder the scan cannot read is reported as a rejection with the OS's reason, not skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from soundark.catalog import Catalog
from soundark.catalog.importers.scan import scan_directory
from soundark.media.synth import make_file


def _deeper_than_path_max(top: Path) -> Path:
    """Nest folders until the path passes PATH_MAX (4096): the kernel refuses to open it
    by name (ENAMETOOLONG), even for root. Built with dir_fd, one step at a time."""
    name = "d" * 250
    fd = os.open(top, os.O_RDONLY)
    path = top
    try:
        while len(str(path)) <= 4200:
            os.mkdir(name, dir_fd=fd)
            new = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = new
            path = path / name
        with open(os.open("song.wav", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
            f.write(b"RIFF")
    finally:
        os.close(fd)
    return path


def test_a_folder_too_deep_to_open_is_reported(catalog: Catalog, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    make_file(lib / "fine", "flac", 0.3)
    deep = _deeper_than_path_max(lib)
    report = scan_directory(catalog, lib)
    assert report.new == 1 and report.rejected == 1
    (rejection,) = report.rejections
    first_refused = next(p for p in [*reversed(deep.parents), deep] if len(str(p)) >= 4096)
    assert rejection.subject == str(first_refused)
    assert rejection.reason == "cannot be read (File name too long); nothing below it was scanned"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder whatever its mode")
def test_a_folder_without_read_permission_is_reported(catalog: Catalog, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    (lib / "closed").mkdir(parents=True)
    make_file(lib / "closed" / "hidden", "flac", 0.3)
    make_file(lib / "open", "flac", 0.3)
    (lib / "closed").chmod(0)
    try:
        report = scan_directory(catalog, lib)
    finally:
        (lib / "closed").chmod(0o755)
    assert report.new == 1
    assert [(r.subject, r.reason) for r in report.rejections] == [
        (str(lib / "closed"), "cannot be read (Permission denied); nothing below it was scanned")]
