"""Shared fixtures and the one rule for external tools.

Fixtures: a fresh archive with a real catalog. Helpers that several test modules use live in
``tests/helpers/`` (a package, not test modules); test modules never import each other.

External tools (ffmpeg, opusinfo, aria2c, transmission, chromium, sha256sum, ...) are independent
checkers, never soundark's own dependencies. A test that needs one says so with
``@pytest.mark.needs_tool("opusinfo")`` or calls the ``require_tool`` fixture. When the tool is
missing the test is skipped on a developer's machine but *fails* when the ``CI`` environment variable
is set (as CI services set it), so a check can never drop out silently where it matters.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths, Settings, write_settings

# command -> the Debian package that provides it (scripts/test installs these)
TOOL_PACKAGES = {
    "ffmpeg": "ffmpeg", "ffprobe": "ffmpeg", "opusinfo": "opus-tools", "opusdec": "opus-tools",
    "mktorrent": "mktorrent", "sqlite3": "sqlite3", "transmission-cli": "transmission-cli",
    "transmission-show": "transmission-cli", "aria2c": "aria2", "chromium": "chromium", "wrk": "wrk",
    "sha256sum": "coreutils",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def tool_path(name: str) -> str:
    """The full path of command ``name``; skip the test without it, or fail it under CI."""
    found = shutil.which(name)
    if found:
        return found
    why = f"{name} is not installed (Debian package: {TOOL_PACKAGES.get(name, name)})"
    if in_ci():
        pytest.fail(f"{why}; CI is set, so a missing checker is a failure (scripts/test installs it)",
                    pytrace=False)
    pytest.skip(why)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Children see the environment the tests were started with. pytest imports pdb, pdb imports
    readline, and with TERM set ncurses then exports COLUMNS and LINES (80 x 24) into the C
    environment, which every child inherits but ``os.environ`` does not show: a CLI run by a test
    would wrap its piped messages at 80 columns, as no user's pipe does (cli/common._make_console)."""
    for name in ("COLUMNS", "LINES"):
        if name not in os.environ:
            os.unsetenv(name)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers(name="needs_tool"):
        for name in marker.args:
            tool_path(name)


@pytest.fixture(scope="session")
def require_tool() -> Callable[[str], str]:
    """``require_tool("opusinfo")`` -> its path, with the same skip/fail rule as the marker."""
    return tool_path


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
