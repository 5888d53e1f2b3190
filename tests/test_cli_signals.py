"""Ctrl-C on every long command (issue 14): the first press stops cleanly with exit 130 and
'run the command again to continue'; a second press ends at once. Real SIGINTs to real child
processes, sent once each is visibly busy (a file of its input open, or its first line out)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soundark.media import synth

from helpers.fixity import make_release
from helpers.signals import opens_file_under, signal_when, start

AGAIN = "run the command again to continue"


def wav_library(folder: Path, n: int, seconds: float) -> Path:
    folder.mkdir()
    for i in range(n):
        synth.make_file(folder / f"t{i:02d}", "wav", seconds, voice=synth.Voice(notes=(60 + i % 12,), seed=i))
    return folder


def catalog_rows(folder: Path, n: int) -> Path:
    folder.mkdir()
    rows = folder / "rows.jsonl"
    with rows.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"title": f"Song {i}", "artists": f"Artist {i % 997}", "album": f"Album {i % 101}",
                                "isrc": f"USABC{i:07d}"}) + "\n")
    return rows


def init(tmp_path: Path) -> Path:
    root = tmp_path / "arc"
    assert subprocess.run([sys.executable, "-m", "soundark", "init", "-a", str(root)],
                          capture_output=True).returncode == 0
    return root


def scan_case(tmp_path: Path):
    lib = wav_library(tmp_path / "lib", 40, 0.5)
    return ["scan", str(lib), "-a", str(init(tmp_path))], lib


def import_case(tmp_path: Path):
    rows = catalog_rows(tmp_path / "rows", 300_000)
    return ["import", "catalog", str(rows), "-a", str(init(tmp_path))], rows.parent


def verify_case(tmp_path: Path):
    make_release(tmp_path / "releases", "rel-0001", n=40, parity=None, max_size=4_000_000)
    return ["verify", str(tmp_path / "releases")], tmp_path / "releases" / "rel-0001" / "data"


@pytest.mark.slow
@pytest.mark.parametrize("case", [scan_case, import_case, verify_case], ids=["scan", "import", "verify"])
def test_the_first_ctrl_c_stops_cleanly_with_130(tmp_path: Path, case) -> None:
    args, busy_under = case(tmp_path)
    proc = start(*args, "--json")
    out, err = signal_when(proc, lambda: opens_file_under(proc.pid, busy_under), signal.SIGINT)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted: ") and last.endswith(AGAIN), err
    assert "Traceback" not in err


@pytest.mark.slow
def test_ctrl_c_on_seed_says_what_was_uploaded(tmp_path: Path) -> None:
    bag, _ = make_release(tmp_path / "releases", "rel-0001", parity=None)
    log = tmp_path / "out.txt"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "soundark", "seed", str(bag), "-a", str(tmp_path),
                                 "--listen", "127.0.0.1:0"], stdout=out, stderr=subprocess.PIPE, text=True)
        _, err = signal_when(proc, lambda: "seeding 1 release(s)" in log.read_text(), signal.SIGINT)
    assert proc.returncode == 130, err
    text = log.read_text()
    assert "stopped after" in text and "uploaded 0 bytes to 0 peer(s)" in text, text
    assert "nobody outside this machine can connect" in err and "listen_interfaces" in err


@pytest.mark.slow
def test_a_second_ctrl_c_ends_at_once(tmp_path: Path) -> None:
    # long files: the first press lets the reads in flight finish, which takes a while
    lib = wav_library(tmp_path / "lib", 24, 20.0)
    proc = start("scan", str(lib), "-a", str(init(tmp_path)), "--json")
    deadline = time.monotonic() + 120
    while not opens_file_under(proc.pid, lib):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)  # let the first press reach Python's handler before the second one
    out, err = signal_when(proc, lambda: True, signal.SIGINT)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == f"error: interrupted again: stopped at once; {AGAIN}", err
    assert out == ""  # no summary: it ended at once
