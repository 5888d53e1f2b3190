"""A release run killed (SIGKILL) between moving a bag into place and committing its row."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import bagit
import pytest

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths, Settings, write_settings
from soundark.release.stage import run_release_audio

from helpers.release import Rec, add, sized

NO_PARITY = Settings(parity_overhead=0.0)


@pytest.mark.slow
def test_killed_mid_publish_then_rerun_publishes_cleanly(tmp_path: Path) -> None:
    paths = ArchivePaths(tmp_path / "a")
    paths.root.mkdir()
    write_settings(paths.root, NO_PARITY)
    open_catalog(paths.catalog).close()
    with open_catalog(paths.catalog) as cat:
        for i in range(3):
            add(cat, paths, Rec(key=f"USABC2400{i:03d}", rank=i + 1, data=sized(i, 50_000), title=f"T{i}"))
    # a real process, really killed: right after the torrent is written, before the catalog commit
    child = textwrap.dedent(f"""
        import os, signal
        from soundark.config import ArchivePaths, Settings
        from soundark.release import publish
        from soundark.release.stage import run_release_audio
        real = publish.write_torrent
        def write_then_die(path, data):
            real(path, data)
            os.kill(os.getpid(), signal.SIGKILL)
        publish.write_torrent = write_then_die
        from pathlib import Path
        run_release_audio(ArchivePaths(Path({str(paths.root)!r})), Settings(parity_overhead=0.0), date="2024-05-01")
    """)
    r = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).parent)
    assert r.returncode == -9, r.stderr
    assert (paths.releases / "soundark-audio-0001").is_dir()  # moved into place, never committed
    with open_catalog(paths.catalog, readonly=True) as cat:
        assert cat.scalar("SELECT count(*) FROM release") == 0

    result = run_release_audio(paths, NO_PARITY, date="2024-05-01")
    assert [p.name for p in result.published] == ["soundark-audio-0001"] and not result.errors
    bagit.Bag(str(paths.releases / "soundark-audio-0001")).validate()
    listing = json.loads((paths.releases / "torrents.json").read_text())
    assert [r["name"] for r in listing["releases"]] == ["soundark-audio-0001"]
    assert not list(paths.releases.glob(".staging/*"))
