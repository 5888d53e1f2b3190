"""SIGTERM stops a long command as cleanly as Ctrl-C (issue 13): work in flight finished or put
back, a summary or one line, exit 128 + signal (143, 130); the rerun finishes the rest.

Real child processes (`python -m soundark ...`) receive real signals once they are visibly busy:
an output in the store (encode), a source file open (scan), a bag in staging (release).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import bagit
import pytest

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths, Settings, write_settings
from soundark.encode import jobs
from soundark.media import synth

from helpers.encode import make_sources, store_files, tmp_leftovers
from helpers.release import Rec, add, sized
from helpers.signals import opens_file_under, signal_when, start

STOPPED = {signal.SIGTERM: "error: terminated (SIGTERM): work in flight was finished or put back",
           signal.SIGINT: "error: interrupted: work in flight was finished or put back"}


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_encode_stops_on_a_signal_with_a_summary_and_puts_work_back(archive, catalog, tmp_path, signum):
    ids = make_sources(catalog, tmp_path / "src", 8, seconds=4.0)
    proc = start("encode", "-a", str(archive.root), "--workers", "1", "--json")
    out, err = signal_when(proc, lambda: archive.store.exists() and bool(store_files(archive.store)), signum)
    assert proc.returncode == 128 + signum, err
    summary = json.loads(out)  # the summary still comes, as one JSON object
    assert summary["interrupted"] is True and summary["remaining"] > 0
    assert err.strip().splitlines()[-1].startswith(STOPPED[signum]), err
    assert catalog.scalar("SELECT count(*) FROM encode_job WHERE status = 'running'") == 0
    assert tmp_leftovers(archive.root) == []
    done = catalog.scalar("SELECT count(*) FROM encoded")

    rerun = start("encode", "-a", str(archive.root), "--json")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    result = json.loads(out)
    assert result["reclaimed"] == 0 and result["failed"] == 0  # nothing was left leased
    assert result["encoded"] == len(ids) - done
    assert jobs.status_counts(catalog)["done"] == len(ids)


@pytest.mark.slow
def test_scan_stops_on_sigterm_and_the_rescan_finishes(archive, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    for i in range(60):
        synth.make_file(lib / f"t{i:02d}", "wav", 0.5, voice=synth.Voice(notes=(60 + i % 12,), seed=i))
    proc = start("scan", str(lib), "-a", str(archive.root), "--json")
    out, err = signal_when(proc, lambda: opens_file_under(proc.pid, lib), signal.SIGTERM)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith(STOPPED[signal.SIGTERM]), err
    with open_catalog(archive.catalog, readonly=True) as cat:
        assert cat.scalar("PRAGMA integrity_check") == "ok"
        before = cat.scalar("SELECT count(*) FROM source_file")
    assert before < 60

    rerun = start("scan", str(lib), "-a", str(archive.root), "--json")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    report = json.loads(out)
    assert report["new"] == 60 - before and report["rejected"] == 0
    with open_catalog(archive.catalog, readonly=True) as cat:
        assert cat.scalar("SELECT count(*) FROM source_file") == 60
        assert cat.scalar("SELECT count(DISTINCT path) FROM source_file") == 60


@pytest.mark.slow
def test_release_audio_stops_on_sigterm_and_the_rerun_publishes_cleanly(tmp_path: Path) -> None:
    paths = ArchivePaths(tmp_path / "a")
    paths.root.mkdir()
    write_settings(paths.root, Settings(release_date="2024-05-01", target_size="30MB"))
    for folder in (paths.store, paths.art, paths.releases):
        folder.mkdir()
    open_catalog(paths.catalog).close()
    with open_catalog(paths.catalog) as cat:
        for i in range(40):
            add(cat, paths, Rec(key=f"USABC2400{i:03d}", rank=i + 1, data=sized(i, 1_500_000), title=f"T{i}"))
    staging = paths.releases / ".staging"
    proc = start("release", "audio", "-a", str(paths.root), "--json")
    out, err = signal_when(proc, lambda: staging.is_dir() and any(staging.iterdir()), signal.SIGTERM)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith(STOPPED[signal.SIGTERM]), err
    visible = sorted(p.name for p in paths.releases.iterdir() if not p.name.startswith("."))
    with open_catalog(paths.catalog, readonly=True) as cat:
        committed = sorted(r[0] for r in cat.execute("SELECT name FROM release"))
    assert [v for v in visible if v not in ("torrents", "torrents.json", "torrents.html")] == committed

    rerun = start("release", "audio", "-a", str(paths.root), "--json")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    with open_catalog(paths.catalog, readonly=True) as cat:
        names = sorted(r[0] for r in cat.execute("SELECT name FROM release"))
        assert cat.scalar("SELECT count(*) FROM release_file WHERE bytes = 0") == 0
    assert names == ["soundark-audio-0001", "soundark-audio-0001.parity",
                     "soundark-audio-0002", "soundark-audio-0002.parity"]
    for name in names:
        bagit.Bag(str(paths.releases / name)).validate()
    assert not staging.exists() or not any(staging.iterdir())
