"""Real faults for the fault tests: a small tmpfs that fills up, a read-only remount, a filler file.

Mounting needs root (or CAP_SYS_ADMIN). Where it cannot be done the test is skipped with the
reason (pytest -rs lists them). Unlike a missing checker tool this is not a failure under CI: a
container may forbid mounts whatever is installed, and nothing the project installs can change
that. ``SOUNDARK_REQUIRE_MOUNTS=1`` turns the skip into a failure, for a machine known to allow them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SOUNDARK = [sys.executable, "-m", "soundark"]


def _cannot_mount(why: str) -> None:
    if os.environ.get("SOUNDARK_REQUIRE_MOUNTS") == "1":
        pytest.fail(f"{why}; SOUNDARK_REQUIRE_MOUNTS=1 asks for the mount tests: run them as root",
                    pytrace=False)
    pytest.skip(why)


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "3m") -> Iterator[Path]:
    """A fresh tmpfs of *size* mounted on *folder* (created), unmounted afterwards."""
    if os.geteuid() != 0:
        _cannot_mount("mounting a small tmpfs needs root")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        _cannot_mount(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


def remount(folder: Path, mode: str) -> None:
    """``mode`` is "ro" or "rw": a read-only mount refuses root too, unlike chmod."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True, capture_output=True)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill the filesystem holding *folder* with one file, leaving about *leave* bytes; return it."""
    filler = folder / "filler.bin"
    chunk = b"\0" * 65536
    with open(filler, "wb") as f:
        try:
            while True:
                free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
                if free <= leave:
                    break
                f.write(chunk[:max(1, min(len(chunk), free - leave))])
                f.flush()
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    return filler


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*SOUNDARK, *args], capture_output=True, text=True, check=False, timeout=timeout)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The only line on stderr that starts with ``error:`` (progress bars may print others)."""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]
