"""Audit findings on the preserve side (issue 13): work bounded by what is on disk, regular
files only.

verify and repair run in a thread (or a child process) with a time limit, so a finding that
hangs (a FIFO inside a bag) fails its test instead of hanging the suite; the memory findings run under
RLIMIT_AS or tracemalloc so that, before the fix, they failed without taking gigabytes from the
machine. Every test here failed on the code before its fix (docs/reliability.md, "Audit:
preserve, fetch and web").
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest

from soundark.errors import BadInput
from soundark.fixity.bagit import MANIFEST, read_manifest
from soundark.fixity.parity import read_index
from soundark.preserve.repair import repair_path
from soundark.preserve.verify import verify_path

from helpers.fixity import make_release, snapshot

HANG = 60  # seconds: far above the second these take, far below "hung"


def soundark(*args: str, limit_as: int | None = None) -> subprocess.CompletedProcess:
    def cap() -> None:
        if limit_as:
            resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))

    try:
        return subprocess.run([sys.executable, "-m", "soundark", *args], capture_output=True, text=True,
                              timeout=HANG, preexec_fn=cap if limit_as else None)
    except subprocess.TimeoutExpired:
        pytest.fail(f"soundark {' '.join(args)} hung (no answer in {HANG} s)")


@pytest.fixture
def rel(tmp_path: Path):
    bag, original = make_release(tmp_path / "releases", n=8, max_size=20_000)
    return bag, original


def _victim(bag: Path) -> str:
    return sorted(p for p in read_manifest(bag) if p.startswith("data/audio/"))[1]


def bounded(fn, *fifos: Path):
    """``fn()`` in a thread; a run still going after HANG seconds fails the test (a reader blocked
    on a FIFO is let go by opening the FIFO for writing once, so the thread ends)."""
    got: dict = {}

    def run() -> None:
        try:
            got["value"] = fn()
        except BaseException as e:  # handed to the test below
            got["error"] = e

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG)
    if worker.is_alive():
        for fifo in fifos:
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"hung: no answer in {HANG} s")
    if "error" in got:
        raise got["error"]
    return got["value"]


def _replace(path: Path, kind: str) -> None:
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        os.symlink("/dev/zero", path)


def _kinds(report) -> dict[str, str]:
    return {p.path: p.kind for p in report.problems}


@pytest.mark.parametrize("kind", ["fifo", "devzero"])
def test_verify_names_a_fifo_or_a_dev_zero_link_in_place_of_a_file(rel, kind):
    bag, _ = rel
    victim = _victim(bag)
    _replace(bag / victim, kind)
    for fast in (False, True):
        report = bounded(lambda fast=fast: verify_path(bag, fast=fast), bag / victim)
        assert _kinds(report).get(victim) == "altered", report.problems


@pytest.mark.parametrize("kind", ["fifo", "devzero"])
def test_verify_with_a_missing_file_and_a_fifo_or_dev_zero_extra(rel, kind):
    """A missing file makes verify hash the extras to spot a rename: that read hung on a FIFO."""
    bag, _ = rel
    victim = _victim(bag)
    (bag / victim).unlink()
    extra = bag / "data" / "audio" / "zz-extra.bin"
    _replace(extra, kind)
    found = _kinds(bounded(lambda: verify_path(bag), extra))
    assert found[victim] == "missing" and found["data/audio/zz-extra.bin"] == "extra"


@pytest.mark.parametrize("name", [MANIFEST, "data/tracks.jsonl", "bag-info.txt"])
@pytest.mark.parametrize("kind", ["fifo", "devzero"])
def test_verify_refuses_a_fifo_or_dev_zero_tag_file_without_reading_it(rel, name, kind):
    bag, _ = rel
    _replace(bag / name, kind)
    report = bounded(lambda: verify_path(bag), bag / name)
    assert name in _kinds(report), report.problems


@pytest.mark.parametrize("kind", ["fifo", "devzero"])
def test_repair_rebuilds_a_file_replaced_by_a_fifo_or_a_dev_zero_link(rel, kind):
    bag, original = rel
    victim = _victim(bag)
    _replace(bag / victim, kind)
    report = bounded(lambda: repair_path(bag), bag / victim)
    assert report.ok, report.as_dict()
    assert not (bag / victim).is_symlink() and (bag / victim).is_file()
    assert snapshot(bag) == original


def test_repair_cli_with_a_fifo_in_the_bag_answers(rel):
    """The same through the command line, as the audit ran it (a child process, a time limit)."""
    bag, original = rel
    victim = _victim(bag)
    _replace(bag / victim, "fifo")
    got = soundark("repair", str(bag), "--json")
    assert got.returncode == 0, got.stdout[-800:] + got.stderr
    assert snapshot(bag) == original


def _craft_index(parity: Path, **changes: int) -> None:
    index_path = parity / "data" / "parity.json"
    index = json.loads(index_path.read_text())
    index.update(changes)
    index_path.write_text(json.dumps(index))


def test_repair_with_a_crafted_parity_json_is_refused_in_bounded_memory(rel):
    """block_size 16 MiB with k=255: decoding one column took 4 GiB before; now refused at once."""
    bag, _ = rel
    parity = bag.parent / f"{bag.name}.parity"
    stream = read_index(parity).layout.stream_bytes
    _craft_index(parity, k=255, m=1, columns=1, block_size=16 << 20, stream_bytes=stream)
    (parity / "data" / "blocks.sha256").write_bytes(bytes(256 * 32))
    (bag / _victim(bag)).write_bytes(b"damaged")
    got = soundark("repair", str(bag), "--json", limit_as=1536 << 20)
    assert "MemoryError" not in got.stdout + got.stderr and "internal error" not in got.stderr
    assert got.returncode == 1
    report = json.loads(got.stdout)
    reasons = " ".join(u["reason"] for b in report["bags"] for u in b["unrecoverable"])
    assert "block_size 16777216" in reasons


@pytest.mark.parametrize("change, why", [
    ({"columns": 1 << 20}, "not the layout of"),           # columns with no data behind them
    ({"block_size": 65536 + 1}, "not a power of two"),
])
def test_parity_index_layout_must_be_the_one_its_stream_gets(rel, change, why):
    bag, _ = rel
    parity = bag.parent / f"{bag.name}.parity"
    _craft_index(parity, **change)
    with pytest.raises(BadInput, match=why):
        read_index(parity)


def test_parity_file_of_the_wrong_size_is_refused_before_reading(rel):
    bag, _ = rel
    parity = bag.parent / f"{bag.name}.parity"
    with open(parity / "data" / "parity-000.bin", "ab") as f:
        f.truncate(1 << 30)  # sparse: a declared gigabyte costs nothing on disk
    with pytest.raises(BadInput, match="one row of"):
        read_index(parity)


def test_block_hashes_longer_than_the_layout_are_not_read(rel):
    bag, _ = rel
    parity = bag.parent / f"{bag.name}.parity"
    with open(parity / "data" / "blocks.sha256", "ab") as f:
        f.truncate(1 << 30)
    tracemalloc.start()
    try:
        with pytest.raises(BadInput):
            read_index(parity)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak


def test_a_manifest_with_an_endless_line_is_refused_in_bounded_memory(tmp_path):
    """One 64 MiB line (sparse zeros would be a NUL; this is a path of 'a's): refused at the cap."""
    bag = tmp_path / "bag"
    (bag / "data").mkdir(parents=True)
    with open(bag / MANIFEST, "wb") as f:
        f.write(b"0" * 64 + b"  data/")
        block = b"a" * (1 << 20)
        for _ in range(64):
            f.write(block)
        f.write(b"\n")
    tracemalloc.start()
    try:
        with pytest.raises(BadInput, match="line longer than"):
            read_manifest(bag)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak  # before: the whole file several times over (> 200 MiB)

