"""`soundark encode --executor ray` on a REAL multi-node Ray cluster on this machine (docs/cluster.md).

Three raylets (``ray.cluster_utils.Cluster``: a head and two workers, one CPU each), loopback
only, no dashboard, no usage stats; one cluster for the module. The driver runs as an operator
runs it, ``python -m soundark encode --executor ray --address ...`` in a child process, so it can
be killed. Real audio: synthetic FLAC of distinct melodies plus two real MP3 excerpts
(tests/data/realmusic). Every store is compared byte for byte with a local-pool run's.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from soundark.catalog.store import open_catalog
from soundark.config import ArchivePaths, Settings, write_settings
from soundark.encode.executors import _MARKER, _SHIP_PREFIX, _sees, sweep_ship_folders
from soundark.encode.stage import EncodeOptions, run_encode
from soundark.encode.worker import EncodeTask
from soundark.media import synth

from helpers.encode import add_source, store_files, tmp_leftovers

# Before Ray is imported: no usage report, and 127.0.0.1 is not swapped for a probed public address.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'soundark[ray]')")

REAL = Path(__file__).parent / "data" / "realmusic"
SYNTH_FILES = 10
# Fast failure detection, so a killed node is declared dead in ~2 s rather than ~30 s.
HEALTH = {"health_check_period_ms": 500, "health_check_failure_threshold": 3,
          "health_check_initial_delay_ms": 0}


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1",
        "_system_config": HEALTH})
    workers = [c.add_node(num_cpus=1, node_ip_address="127.0.0.1") for _ in range(2)]
    try:
        c.wait_for_nodes()
        yield c, workers
    finally:
        c.shutdown()


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("sources")
    paths = []
    for i in range(SYNTH_FILES):
        voice = synth.Voice(notes=tuple(60 + (i * 5 + k) % 24 for k in range(8)), seed=i, noise=0.02)
        paths.append(synth.make_file(folder / f"track{i:02d}", "flac", 4.0, voice=voice))
    paths += sorted(REAL.glob("*.mp3"))
    return paths


def new_archive(root: Path, sources: list[Path], settings: Settings | None = None) -> ArchivePaths:
    paths = ArchivePaths(root)
    root.mkdir()
    write_settings(root, settings or Settings())
    for folder in (paths.store, paths.art, paths.releases):
        folder.mkdir()
    with open_catalog(paths.catalog) as catalog:
        for rank, path in enumerate(sources, start=1):
            add_source(catalog, path, rank=rank, codec="mp3" if path.suffix == ".mp3" else "flac")
    return paths


def store_bytes(paths: ArchivePaths) -> dict[str, bytes]:
    return {str(p.relative_to(paths.store)): p.read_bytes() for p in store_files(paths.store)}


def encoded_rows(paths: ArchivePaths) -> list[tuple]:
    with open_catalog(paths.catalog, create=False) as catalog:
        return [tuple(r) for r in catalog.execute(
            "SELECT r.key, e.tier, e.sha256, e.bytes FROM encoded e "
            "JOIN recording r ON r.id = e.recording_id ORDER BY r.key")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sources):
    """The same sources encoded by the local process pool: what every cluster run must match."""
    paths = new_archive(tmp_path_factory.mktemp("local") / "archive", sources)
    result = run_encode(paths, Settings(), options=EncodeOptions(executor="local", workers=2))
    assert (result.encoded, result.failed) == (len(sources), 0)
    return store_bytes(paths), encoded_rows(paths)


def start_driver(paths: ArchivePaths, address: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "soundark", "encode", "-a", str(paths.root), "--executor", "ray",
         "--address", address, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(driver: subprocess.Popen) -> dict:
    out, errs = driver.communicate(timeout=300)
    assert driver.returncode == 0, errs[-3000:]
    return json.loads(out)


def done_count(paths: ArchivePaths) -> int:
    with open_catalog(paths.catalog, create=False) as catalog:
        return int(catalog.scalar("SELECT count(*) FROM encode_job WHERE status = 'done'") or 0)


def busy_worker(raylet_pid: int) -> int | None:
    """The pid of one of this raylet's worker processes running a soundark task right now."""
    with os.scandir("/proc") as entries:
        pids = [e.path for e in entries if e.name.isdigit()]
    for proc in pids:
        try:
            stat = Path(proc, "stat").read_bytes().rsplit(b")", 1)[1].split()
            if int(stat[1]) == raylet_pid and b"_run_on_node" in Path(proc, "cmdline").read_bytes():
                return int(Path(proc).name)
        except (OSError, IndexError, ValueError):
            continue
    return None


def stopped_busy_worker(raylet_pid: int) -> int | None:
    """A worker of this raylet stopped (SIGSTOP) in the middle of a soundark task, or None: a pid
    seen busy may finish its task before a signal lands, so it is stopped first and looked at again;
    a stopped task cannot finish before the test kills it or its node."""
    worker = busy_worker(raylet_pid)
    if worker is None:
        return None
    os.kill(worker, signal.SIGSTOP)
    try:
        if b"_run_on_node" in Path(f"/proc/{worker}/cmdline").read_bytes():
            return worker
    except OSError:
        return None
    os.kill(worker, signal.SIGCONT)  # it had finished: idle again, let it take the next task
    return None


def stop_a_task_on(node, what: str, driver: subprocess.Popen) -> int:
    """Wait for a worker of *node* busy with a soundark task, stop it mid-task; its pid."""
    found: list[int] = []

    def check() -> bool:
        pid = stopped_busy_worker(raylet_pid(node))
        if pid is not None:
            found.append(pid)
        return pid is not None

    wait_for(check, what, driver=driver)
    return found[-1]


def wait_for(check, what: str, timeout: float = 180.0, driver: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if driver is not None and driver.poll() is not None:
            pytest.fail(f"the driver ended before {what}: {driver.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def assert_complete_and_identical(paths: ArchivePaths, reference) -> None:
    ref_store, ref_rows = reference
    assert encoded_rows(paths) == ref_rows              # one row per recording, same bytes
    assert store_bytes(paths) == ref_store              # the store is byte-identical
    for f in store_files(paths.store):                  # nothing partial: every name is its digest
        assert hashlib.sha256(f.read_bytes()).hexdigest() == f.name.split(".")[0]
    with open_catalog(paths.catalog, create=False) as catalog:
        assert catalog.scalar("SELECT count(*) FROM encode_job WHERE status != 'done'") == 0
    assert tmp_leftovers(paths.root) == []
    assert not paths.tmp.exists() or not any(paths.tmp.iterdir())


def raylet_pid(node) -> int:
    return node.all_processes["raylet"][0].process.pid


@pytest.mark.slow
def test_a_node_killed_mid_encode_loses_only_its_tasks(cluster, sources, reference, tmp_path):
    """Shared storage (auto finds every node sees the files): kill one worker process while it
    encodes, then a whole worker node (its raylet); their tasks are sent again, each recording is
    stored once, like a local run."""
    c, workers = cluster
    paths = new_archive(tmp_path / "archive", sources)  # ray_storage = "auto"
    driver = start_driver(paths, c.address)
    # each kill lands on a task in flight: a worker is stopped in the middle of its task first
    os.kill(stop_a_task_on(workers[1], "a task on node 3", driver), signal.SIGKILL)  # its node lives on
    victim = workers[0]
    frozen = stop_a_task_on(victim, "a task on the victim node", driver)
    c.remove_node(victim, allow_graceful=False)  # SIGKILL: raylet, object store
    os.kill(frozen, signal.SIGKILL)  # a stopped worker cannot see its raylet die: it goes with its node
    summary = finish(driver)
    n = len(sources)
    assert (summary["encoded"], summary["failed"], summary["remaining"]) == (n, 0, 0)
    assert summary["retries"] >= 2 and summary["shipped"] == 0, summary["retried"]
    assert all("Error" in why for why in summary["retried"])  # Ray's own error names
    assert sum(summary["nodes"].values()) == n          # each recording landed exactly once
    # the tasks ran on three nodes (the waits above saw them busy on both worker nodes); where the
    # recordings landed may be one node: a loaded machine can leave the head node to finish them all
    assert "3 node(s)" in summary["executor"]
    assert summary["files_per_second"] > 0 and summary["audio_hours_per_second"] > 0
    assert 1 <= summary["inflight_peak"] <= 2 * 3   # at most two tasks per cluster CPU
    assert_complete_and_identical(paths, reference)


@pytest.mark.slow
def test_shipped_sources_and_a_killed_driver(cluster, sources, reference, tmp_path):
    """ray_storage = "ship": sources travel through the object store and outputs come back as
    bytes. The driver is killed mid-run: nothing half-written; the next run finishes the rest."""
    c, _ = cluster
    largest = max(p.stat().st_size for p in sources)
    cap = 2 * largest  # back-pressure: about two sources in the object store at a time
    paths = new_archive(tmp_path / "archive", sources, Settings(ray_storage="ship",
                                                                ray_ship_bytes=str(cap)))
    first = start_driver(paths, c.address)
    # the first output in the store, not a recorded job: the journal records in batches (up to
    # 1 s), and on a fast machine all 12 were done before two were recorded
    wait_for(lambda: len(store_files(paths.store)) >= 1, "a first output stored", driver=first)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)  # reaps it and closes its pipes
    stored = store_files(paths.store)
    assert 1 <= len(stored) < len(sources)
    for f in stored:  # whatever is in the store is whole
        assert hashlib.sha256(f.read_bytes()).hexdigest() == f.name.split(".")[0]
    before = done_count(paths)  # recorded; a stored file not yet recorded is found again
    summary = finish(start_driver(paths, c.address))
    n = len(sources)
    assert summary["reclaimed"] >= 1                      # the dead driver's leases came back
    assert summary["encoded"] == n - before               # the rest, and nothing twice
    assert summary["shipped"] == summary["encoded"] and summary["failed"] == 0
    assert "storage ship" in summary["executor"]
    assert 0 < summary["shipped_peak_bytes"] < cap + largest  # the cap, passed by one file at most
    assert_complete_and_identical(paths, reference)
    dead = [name for name in os.listdir(tempfile.gettempdir()) if name.startswith(_SHIP_PREFIX)]
    assert sweep_ship_folders() == 0, dead  # the killed workers' folders were swept by later tasks


def test_a_node_sees_the_run_only_with_its_marker_and_the_source_at_its_size(tmp_path):
    """ray_storage = "auto": the check a task runs on its node before it reads shared paths."""
    run = tmp_path / "tmp" / "encode-1-abc"
    run.mkdir(parents=True)
    source = tmp_path / "a.flac"
    source.write_bytes(b"x" * 100)
    task = EncodeTask(recording_id=1, tier="opus75", source_path=str(source), source_sha256=None,
                      tmp_dir=str(run))
    assert not _sees(task, "token", 100)                 # no marker: another machine's folder
    (run / _MARKER).write_text("other", encoding="ascii")
    assert not _sees(task, "token", 100)                 # a folder of the same name, another run
    (run / _MARKER).write_text("token", encoding="ascii")
    assert _sees(task, "token", 100)
    assert not _sees(task, "token", 99)                  # a different file at the same path
    source.unlink()
    assert not _sees(task, "token", 100)


def test_ship_folders_of_dead_workers_are_swept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / f"{_SHIP_PREFIX}{dead}-x1" / "src").mkdir(parents=True)
    (tmp_path / f"{_SHIP_PREFIX}{os.getpid()}-x2").mkdir()
    (tmp_path / "unrelated-1").mkdir()
    assert sweep_ship_folders(str(tmp_path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{_SHIP_PREFIX}{os.getpid()}-x2", "unrelated-1"]
