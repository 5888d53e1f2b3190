"""Durable renames (soundark/durable.py): the folder is fsynced, and fsync errors are not ignored."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from soundark import durable
from soundark.config import Settings, write_settings
from soundark.errors import EnvironmentProblem


class _Syncs:
    """Records which descriptors are fsynced (by the path they name); can fail on folders."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_folders: int | None = None) -> None:
        self.synced: list[str] = []
        real = os.fsync

        def fsync(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            if fail_folders is not None and os.path.isdir(path):
                raise OSError(fail_folders, os.strerror(fail_folders))
            self.synced.append(path)
            real(fd)
        monkeypatch.setattr(durable.os, "fsync", fsync)


def test_replace_syncs_both_folders_it_touched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"x")
    syncs = _Syncs(monkeypatch)
    durable.replace_durably(tmp_path / "a" / "f", tmp_path / "b" / "f")
    assert (tmp_path / "b" / "f").read_bytes() == b"x"
    assert syncs.synced == [str(tmp_path / "b"), str(tmp_path / "a")]


def test_settings_are_written_durably(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    syncs = _Syncs(monkeypatch)
    path = write_settings(tmp_path, Settings())
    assert syncs.synced == [str(tmp_path / ".soundark.toml.tmp"), str(tmp_path)]
    assert Settings.load(tmp_path) == Settings() and not (tmp_path / ".soundark.toml.tmp").exists()
    assert path.name == "soundark.toml"


def test_an_fsync_error_is_not_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _Syncs(monkeypatch, fail_folders=errno.EIO)
    with pytest.raises(EnvironmentProblem) as e:
        durable.write_durably(tmp_path / "list.json", b"{}")
    assert str(e.value) == f"{tmp_path}: cannot sync the folder to disk: Input/output error"


def test_a_file_system_that_cannot_sync_folders_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _Syncs(monkeypatch, fail_folders=errno.EINVAL)
    durable.write_durably(tmp_path / "list.json", b"{}")
    assert (tmp_path / "list.json").read_bytes() == b"{}"


def test_a_full_disk_while_writing_says_so(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)],
                      capture_output=True, check=False).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with pytest.raises(EnvironmentProblem, match="disk full: free space and re-run"):
            durable.write_durably(small / "big", b"x" * 200_000)
        assert sorted(os.listdir(small)) == []  # no temporary file left behind
    finally:
        subprocess.run(["umount", str(small)], check=True)
