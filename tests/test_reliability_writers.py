"""One writer per archive (issue 13): a second writer refuses with one line; a killed holder frees
the lock; two real `release audio` runs at once publish each release once, with real bytes.

Every writer here is a real child process (`python -m soundark ...`); the lock holder in the
refusal tests is a small real process holding the same lock file through soundark.lock.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import bagit
import pytest

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths, Settings, write_settings
from soundark.lock import LOCK_FILE, ArchiveLock

from helpers.release import Rec, add, sized

REFUSAL = re.compile(r"^error: (?P<root>.+): another soundark process \(pid (?P<pid>\d+), "
                     r"`soundark release audio`, since \d\d:\d\d:\d\d\) is writing this archive; "
                     r"wait for it or stop it$")


def soundark(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soundark", *args], capture_output=True, text=True,
                          timeout=timeout)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "soundark", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture
def ready(tmp_path: Path) -> ArchivePaths:
    """An archive with three encoded recordings waiting for `release audio` (parity on)."""
    paths = ArchivePaths(tmp_path / "a")
    paths.root.mkdir()
    write_settings(paths.root, Settings(lock_wait_seconds=0.3, release_date="2024-05-01"))
    for folder in (paths.store, paths.art, paths.releases):
        folder.mkdir()
    open_catalog(paths.catalog).close()
    with open_catalog(paths.catalog) as cat:
        for i in range(3):
            add(cat, paths, Rec(key=f"USABC2400{i:03d}", rank=i + 1, data=sized(i, 200_000), title=f"T{i}"))
    return paths


def hold_lock(root: Path, command: str = "soundark release audio") -> subprocess.Popen:
    """A real process that takes the archive's lock, says so, and keeps it until killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from soundark.lock import ArchiveLock
        ArchiveLock({str(root)!r}, {command!r}).acquire()
        print("locked", flush=True)
        time.sleep(300)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def kill(holder: subprocess.Popen) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    if holder.stdout is not None:
        holder.stdout.close()


def test_second_writer_refuses_with_one_line_then_a_killed_holder_frees_the_lock(ready: ArchivePaths) -> None:
    holder = hold_lock(ready.root)
    try:
        r = soundark("release", "audio", "-a", str(ready.root), "--json")
        assert r.returncode == 1 and r.stdout == ""
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        m = REFUSAL.match(lines[0])
        assert m and int(m["pid"]) == holder.pid and m["root"] == str(ready.root), lines[0]
        assert not list(ready.releases.glob("soundark-audio-*")), "the refused run wrote a release"
    finally:
        kill(holder)
    # the kernel dropped the dead holder's lock: no stale lock, no manual clean-up
    r = soundark("release", "audio", "-a", str(ready.root), "--json")
    assert r.returncode == 0, r.stderr
    assert [p["name"] for p in json.loads(r.stdout)["published"]] == ["soundark-audio-0001",
                                                                      "soundark-audio-0001.parity"]


@pytest.mark.parametrize("command", [
    ("repair", "{root}/releases"),
    ("repair", "{root}"),
    ("plan", "-a", "{root}"),
    ("scan", "{root}/store", "-a", "{root}"),
    ("import", "listens", "{root}/none.csv", "-a", "{root}"),
    ("init", "{root}"),
    ("catalog", "split", "0" * 64, "-a", "{root}"),
])
def test_every_writer_refuses_while_another_writes(ready: ArchivePaths, command: tuple[str, ...]) -> None:
    holder = hold_lock(ready.root)
    try:
        r = soundark(*[part.format(root=ready.root) for part in command])
    finally:
        kill(holder)
    assert r.returncode == 1
    assert REFUSAL.match(r.stderr.strip()), r.stderr


def test_two_repairs_of_a_downloaded_bag_meet_on_its_folder_lock(ready: ArchivePaths, tmp_path: Path) -> None:
    assert soundark("release", "audio", "-a", str(ready.root)).returncode == 0
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for name in ("soundark-audio-0001", "soundark-audio-0001.parity"):
        subprocess.run(["cp", "-r", str(ready.releases / name), str(downloads)], check=True)
    holder = hold_lock(downloads)  # what a first `repair downloads/soundark-audio-0001` holds
    try:
        r = soundark("repair", str(downloads / "soundark-audio-0001"))
    finally:
        kill(holder)
    assert r.returncode == 1 and REFUSAL.match(r.stderr.strip()), r.stderr
    assert not (downloads / "soundark-audio-0001" / LOCK_FILE).exists()  # the bag itself stays untouched
    assert not list(downloads.rglob("*.restore"))


def test_a_waiting_writer_goes_on_when_the_holder_finishes(tmp_path: Path) -> None:
    code = (f"import time\nfrom soundark.lock import ArchiveLock\nArchiveLock({str(tmp_path)!r}).acquire()\n"
            "print('locked', flush=True)\ntime.sleep(0.5)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    lock = ArchiveLock(tmp_path, "soundark test").acquire(wait_seconds=60)  # waits for the exit
    try:
        assert holder.wait() == 0
        holder.stdout.close()
        note = json.loads((tmp_path / LOCK_FILE).read_text())
        assert note["pid"] == os.getpid() and note["command"] == "soundark test"
    finally:
        lock.release()
    assert (tmp_path / LOCK_FILE).read_text() == ""  # no holder named once released


def test_two_release_runs_at_once_publish_each_release_once_with_real_bytes(ready: ArchivePaths) -> None:
    settings = Settings(lock_wait_seconds=120.0, release_date="2024-05-01")
    write_settings(ready.root, settings)
    runs = [start("release", "audio", "-a", str(ready.root), "--json") for _ in range(2)]
    outs = [run.communicate(timeout=180) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outs]
    published = sorted(p["name"] for out, _ in outs for p in json.loads(out)["published"])
    assert published == ["soundark-audio-0001", "soundark-audio-0001.parity"]  # once, by one of them
    with open_catalog(ready.catalog, readonly=True) as cat:
        assert cat.scalar("SELECT count(*) FROM release") == 2
        assert cat.scalar("SELECT count(*) FROM release_file WHERE bytes = 0") == 0
    listing = json.loads((ready.releases / "torrents.json").read_text())
    assert all(r["bytes"] > 0 for r in listing["releases"]) and len(listing["releases"]) == 2
    for name in published:
        bagit.Bag(str(ready.releases / name)).validate()
    assert soundark("verify", str(ready.root)).returncode == 0
