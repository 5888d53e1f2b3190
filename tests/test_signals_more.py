"""SIGTERM on the long commands not covered by tests/test_reliability_signals.py (issue 13, item 4):
import catalog, import listens, import musicbrainz, plan, release metadata, verify, repair, fetch.
Real child processes get a real SIGTERM once visibly busy; each exits 143 with
`error: terminated (SIGTERM): …` as its last line, leaves the catalog whole
(`PRAGMA integrity_check`), publishes nothing half-way, and the same command run again finishes
with nothing lost or counted twice.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from soundark.catalog import open_catalog
from soundark.catalog.importers.tabular import import_catalog_file

from helpers.fixity import make_release
from helpers.signals import opens_file_under, signal_when, start

STOPPED = "error: terminated (SIGTERM): work in flight was finished or put back"
# rows per catalog: the signal lands a few ms after the command opens the archive, and the rest
# of the work (~1 s here) keeps it busy past that; the metadata release packs the whole catalog
# before its bag appears in staging, so it gets more to stay busy once there
N = 12_000
N_METADATA = 40_000


def _init(tmp_path: Path) -> Path:
    root = tmp_path / "arc"
    done = subprocess.run([sys.executable, "-m", "soundark", "init", str(root)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return root


def _rows(path: Path, n: int = N) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"title": f"Song {i}", "artists": [f"Artist {i % 997}"], "album": f"Album {i % 101}",
                                "isrc": f"USABC{i:07d}", "listens": i + 1}) + "\n")
    return path


def _filled(tmp_path: Path, n: int = N) -> Path:
    """An archive whose catalog holds *n* recordings with listens (imported in this process: quick)."""
    root = _init(tmp_path)
    with open_catalog(root / "catalog.sqlite3") as cat:
        import_catalog_file(cat, _rows(tmp_path / "rows.jsonl", n), rights="owned")
    return root


def _whole(root: Path, sql: str = "SELECT 1") -> tuple:
    """Integrity checked, then *sql*'s one row."""
    conn = sqlite3.connect(root / "catalog.sqlite3")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return conn.execute(sql).fetchone()
    finally:
        conn.close()


def _stopped(proc, err: str) -> None:
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith(STOPPED), err
    assert "Traceback" not in err


def _rerun(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "soundark", *args, "--json"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_import_catalog_on_sigterm(tmp_path):
    root, rows = _init(tmp_path), _rows(tmp_path / "rows.jsonl")
    proc = start("import", "catalog", str(rows), "-a", str(root), "--json")
    # the rows are read by a child process: the lock file under the archive says the run has begun
    _out, err = signal_when(proc, lambda: opens_file_under(proc.pid, root), signal.SIGTERM)
    _stopped(proc, err)
    _whole(root)
    _rerun("import", "catalog", str(rows), "-a", str(root))
    assert _whole(root, "SELECT count(*), count(DISTINCT isrc), sum(listens) FROM recording") == (
        N, N, N * (N + 1) // 2)


@pytest.mark.slow
def test_import_listens_on_sigterm(tmp_path):
    root = _filled(tmp_path)
    listens = tmp_path / "listens.jsonl"
    with listens.open("w", encoding="utf-8") as f:
        for i in range(N):
            f.write(json.dumps({"isrc": f"USABC{i:07d}", "listen_count": 2 * i}) + "\n")
    proc = start("import", "listens", str(listens), "-a", str(root), "--json")
    _out, err = signal_when(proc, lambda: opens_file_under(proc.pid, listens.parent), signal.SIGTERM)
    _stopped(proc, err)
    _whole(root)
    _rerun("import", "listens", str(listens), "-a", str(root))
    # every count set once to the file's value: none kept from before, none added twice
    assert _whole(root, "SELECT sum(listens), count(*) FROM recording") == (N * (N - 1), N)


@pytest.mark.slow
def test_plan_on_sigterm(tmp_path):
    root = _filled(tmp_path)
    proc = start("plan", "-a", str(root), "--json")
    _out, err = signal_when(proc, lambda: opens_file_under(proc.pid, root), signal.SIGTERM)
    _stopped(proc, err)
    _whole(root)
    result = _rerun("plan", "-a", str(root))
    assert result["recordings"] == N
    assert _whole(root, "SELECT count(*), count(DISTINCT recording_id) FROM plan") == (N, N)


@pytest.mark.slow
def test_release_metadata_on_sigterm(tmp_path):
    root = _filled(tmp_path, N_METADATA)
    staging = root / "releases" / ".staging"
    proc = start("release", "metadata", "-a", str(root), "--json")
    _out, err = signal_when(proc, lambda: staging.is_dir() and any(staging.iterdir()), signal.SIGTERM)
    _stopped(proc, err)
    assert not [p for p in (root / "releases").iterdir() if "-metadata-" in p.name]  # nothing published
    _whole(root)
    _rerun("release", "metadata", "-a", str(root))
    listed = json.loads((root / "releases" / "torrents.json").read_text())["releases"]
    assert [r["name"].split("-")[-2] for r in listed] == ["metadata"]
    assert not staging.exists() or not any(staging.iterdir())
    assert _rerun("verify", str(root / "releases"))["ok"] is True


@pytest.mark.slow
def test_verify_on_sigterm(tmp_path):
    make_release(tmp_path / "releases", "rel-0001", n=40, parity=None, max_size=4_000_000)
    data = tmp_path / "releases" / "rel-0001" / "data"
    proc = start("verify", str(tmp_path / "releases"), "--json")
    _out, err = signal_when(proc, lambda: opens_file_under(proc.pid, data), signal.SIGTERM)
    _stopped(proc, err)
    assert _rerun("verify", str(tmp_path / "releases"))["ok"] is True


@pytest.mark.slow
def test_repair_on_sigterm(tmp_path):
    bag, files = make_release(tmp_path / "releases", "rel-0001", n=40, parity=0.05, max_size=4_000_000)
    victim = max((p for p in files if p.startswith("data/audio/")), key=lambda p: len(files[p]))
    with open(bag / victim, "r+b") as f:
        f.seek(1000)
        f.write(b"\xff" * 100)
    proc = start("repair", str(tmp_path / "releases"), "--json")
    _out, err = signal_when(proc, lambda: opens_file_under(proc.pid, bag / "data"), signal.SIGTERM)
    _stopped(proc, err)
    assert not list(tmp_path.rglob("*.restore"))  # no half-restored file left beside the bags
    result = _rerun("repair", str(tmp_path / "releases"))
    assert result["ok"] is True
    assert (bag / victim).read_bytes() == files[victim]


@pytest.mark.slow
def test_import_musicbrainz_on_sigterm(tmp_path):
    """Real MusicBrainz recording lines (tests/data/musicbrainz, CC0) under their own ids."""
    root = _init(tmp_path)
    real = json.loads((Path(__file__).parent / "data" / "musicbrainz" / "recording_trimmed.json").read_text())
    dump = tmp_path / "recording.jsonl"
    with dump.open("w", encoding="utf-8") as f:
        for i in range(N):
            f.write(json.dumps(dict(real, id=f"00000000-0000-4000-8000-{i:012d}", title=f"Song {i}",
                                    isrcs=[f"USABC{i:07d}"])) + "\n")
    proc = start("import", "musicbrainz", str(dump), "-a", str(root), "--json")
    _out, err = signal_when(proc, lambda: opens_file_under(proc.pid, root), signal.SIGTERM)
    _stopped(proc, err)
    _whole(root)
    _rerun("import", "musicbrainz", str(dump), "-a", str(root))
    assert _whole(root, "SELECT count(*), count(DISTINCT isrc), count(DISTINCT mbid) FROM recording") == (N, N, N)


@pytest.mark.slow
def test_fetch_on_sigterm(tmp_path):
    """A fetch from a rate-limited seeder on 127.0.0.1 stopped mid-download; the rerun completes it."""
    from soundark.preserve.swarm import Seeder, SwarmConfig

    bag, files = make_release(tmp_path / "releases", "rel-0001", n=30, parity=None, max_size=80_000)
    torrent = tmp_path / "releases" / "torrents" / "rel-0001.torrent"
    dl = tmp_path / "dl"
    dl.mkdir()
    with Seeder(SwarmConfig(listen_interfaces="127.0.0.1:0", upload_rate_limit=800_000)) as seeder:
        seeder.add(torrent, bag.parent)
        seeder.wait_ready()
        args = ("fetch", str(torrent), "--peer", f"127.0.0.1:{seeder.port}", "--listen", "127.0.0.1:0",
                "--timeout", "60", "--to", str(dl), "-a", str(tmp_path))
        proc = start(*args, "--json")
        _out, err = signal_when(proc, lambda: opens_file_under(proc.pid, dl / "rel-0001"), signal.SIGTERM)
        _stopped(proc, err)
        assert _rerun(*args)["ok"] is True
    for rel, data in files.items():
        assert (dl / "rel-0001" / rel).read_bytes() == data
    assert _rerun("verify", str(dl / "rel-0001"))["ok"] is True
