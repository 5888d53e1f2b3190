"""Kill anywhere (issue 13): every long command SIGKILLed at seeded points, then re-run.

One module-scoped chain of uninterrupted runs builds the archive stage by stage (import catalog,
import musicbrainz, scan, import listens, plan, encode, release metadata/audio/art, verify,
repair), keeping a copy of the archive before and after each stage and the number of durable
steps each took. Each kill point copies the "before" archive to a folder of its own (nothing in
an archive names its own path: the sources are outside it, everything inside is relative), kills
the command at that point (tests/helpers/kill.py), re-runs it until it exits 0 and requires the
archive to equal the uninterrupted run's "after" copy, with a sound catalog, no job left running,
no temporary file in store/, art/ or releases/, and the published bags verifying. The points run
side by side, one per core (each is a chain of child processes), a stage's as soon as its
uninterrupted run is done, beside the chain's next stages; the suite's time grows with
points / cores. `SOUNDARK_KILL=long` tries 20 points per stage instead of 3.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from soundark.preserve.verify import verify_path

from helpers import kill
from helpers.kill_library import SETTINGS, build_library


@dataclass(frozen=True)
class Stage:
    name: str
    args: tuple[str, ...]   # {lib} and {root} are filled in
    reader: bool = False    # writes nothing: the archive stays as it was


STAGES = (
    Stage("import-catalog", ("import", "catalog", "{lib}/rows.jsonl", "-a", "{root}")),
    Stage("import-musicbrainz", ("import", "musicbrainz", "{lib}/mb.jsonl", "-a", "{root}")),
    Stage("scan", ("scan", "{lib}/music", "-a", "{root}")),
    Stage("import-listens", ("import", "listens", "{lib}/listens.csv", "-a", "{root}")),
    Stage("plan", ("plan", "-a", "{root}")),
    Stage("encode", ("encode", "-a", "{root}")),
    Stage("release-metadata", ("release", "metadata", "-a", "{root}")),
    Stage("release-audio", ("release", "audio", "-a", "{root}")),
    Stage("release-art", ("release", "art", "-a", "{root}")),
    Stage("verify", ("verify", "{root}"), reader=True),
    Stage("repair", ("repair", "{root}")),
)


@dataclass(frozen=True)
class Baseline:
    before: Path
    after: dict          # kill.snapshot of the uninterrupted run
    ticks: int
    seconds: float       # working time: from visibly started to exit


@dataclass
class Chain:
    lib: Path
    root: Path           # the one path every run uses
    baselines: dict[str, Baseline]
    pool: ThreadPoolExecutor | None = None   # where the kill and SIGTERM points run
    jobs: dict[str, tuple[list, list]] = field(default_factory=dict)  # stage -> (kill, SIGTERM) futures

    def args(self, stage: Stage, root: Path | None = None) -> list[str]:
        return [a.format(lib=self.lib, root=root or self.root) for a in stage.args]

    def submit(self, stage: Stage) -> None:
        """Start *stage*'s kill and SIGTERM points (once): each needs only its own stage's baseline."""
        if stage.name in self.jobs or self.pool is None:
            return
        ticks = self.baselines[stage.name].ticks
        kills = [(point, self.pool.submit(_outcome, try_point, self, stage, point,
                                          self.root.parent / f"{stage.name}-point-{i}"))
                 for i, point in enumerate(kill.points(stage.name, ticks))]
        chosen = random.Random(f"term:{stage.name}:{kill.SEED}").sample(range(1, ticks + 1), min(ticks, TERM_POINTS))
        terms = [(tick, self.pool.submit(_outcome, term_point, self, stage, tick)) for tick in sorted(chosen)]
        self.jobs[stage.name] = (kills, terms)


def damage(root: Path) -> None:
    """Bit rot in the first audio bag: one byte flipped (its store copy is the same file)."""
    bag = sorted(p for p in (root / "releases").glob("*-audio-0001") if p.is_dir())[0]
    victim = sorted(p for p in (bag / "data").rglob("*") if p.suffix in (".opus", ".mp3", ".ogg"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Chain]:
    """The uninterrupted runs, stage by stage. When the kill points are wanted, each stage's points
    start as soon as its baseline is there, beside the next stages' runs (the chain is one process
    at a time: alone it would leave the other cores idle for its ~20 s)."""
    base = tmp_path_factory.mktemp("kill")
    lib, root = base / "lib", base / "archive"
    build_library(lib)
    r = subprocess.run([sys.executable, "-m", "soundark", "init", str(root)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (root / "soundark.toml").write_text(SETTINGS)
    pool = ThreadPoolExecutor(SIDE_BY_SIDE) if "outcomes" in request.fixturenames else None
    out = Chain(lib, root, {}, pool)
    try:
        for stage in STAGES:
            if stage.name == "repair":
                damage(root)
            before = base / f"before-{stage.name}"
            kill.copy_archive(root, before)
            log = base / f"ticks-{stage.name}.log"
            done = kill.run(out.args(stage), root, log=log)
            assert done.returncode == 0, f"{stage.name}: {done.stderr}"
            out.baselines[stage.name] = Baseline(before, kill.snapshot(root), kill.count_ticks(log),
                                                 done.seconds - done.started)
            print(f"{stage.name}: {kill.count_ticks(log)} ticks, {done.seconds:.1f} s "
                  f"(working {done.seconds - done.started:.1f} s)")
            out.submit(stage)
        yield out
    finally:
        if out.pool is not None:
            out.pool.shutdown(wait=True, cancel_futures=True)


def rerun_until_done(args: list[str], root: Path) -> int:
    """The same command again until it exits 0 (a killed run's leftovers may cost one more)."""
    for attempt in range(1, 4):
        r = kill.run(args)
        if r.returncode == 0:
            return attempt
    raise AssertionError(f"soundark {' '.join(args)} still fails after a kill: {r.stderr}")


# kill points tried at once: each is a chain of child processes on its own copy of the archive
SIDE_BY_SIDE = max(1, min(4, os.cpu_count() or 1))


def try_point(chain: Chain, stage: Stage, point: kill.Point, root: Path) -> int:
    """Kill *stage* at *point* on a copy of its "before" archive at *root*, re-run it, check the
    outcome (AssertionError when anything differs); the kill's exit status (-9, or 0: missed)."""
    base = chain.baselines[stage.name]
    args = chain.args(stage, root)
    kill.copy_archive(base.before, root)
    if point.kind == "tick":
        r = kill.run(args, kill_at=int(point.value))
    else:
        r = kill.run(args, root, kill_after=point.value * base.seconds)
    where = f"{stage.name} killed at {point}"
    # a point can miss: a timed kill a run that finished early, a tick a run that took fewer
    # steps (encode commits as its workers finish); the run must then have succeeded
    assert r.returncode in (-9, 0), f"{where}: exit {r.returncode}: {r.stderr}"
    if stage.name != "repair":  # repair's input is a damaged bag
        assert not kill.torn(root), f"{where}: {kill.torn(root)}"
    reruns = rerun_until_done(args, root)
    print(f"kill {stage.name} at {point}: {'killed' if r.returncode == -9 else 'missed'}, {reruns} rerun(s)")
    got = kill.snapshot(root)
    assert got == base.after, f"{where}:\n{kill.diff(base.after, got)}"
    assert not kill.problems(root), f"{where}: {kill.problems(root)}"
    if any((root / "releases").glob("*/bagit.txt")) and not stage.reader:
        verified = verify_path(root)  # in this process: one start-up less per kill
        assert verified.ok, f"{where}: verify after the rerun: {verified.problems[:5]}"
    shutil.rmtree(root)
    return r.returncode


@dataclass
class Outcomes:
    """What every kill and SIGTERM point did: an exit status, or the AssertionError it raised."""

    kills: dict[str, list[tuple[kill.Point, int | BaseException]]]
    terms: list[tuple[str, int, int | BaseException]]


def _outcome(job, *args):
    try:
        return job(*args)
    except Exception as e:  # kept for the stage's own test to raise
        return e


@pytest.fixture(scope="module")
def outcomes(chain: Chain) -> Outcomes:
    """Every stage's kill points and SIGTERM points, from one pool: with 3 points a stage on 2 cores
    a pool per stage leaves a core idle while each stage's third point runs alone."""
    if chain.pool is None:  # the chain was built for another test first
        chain.pool = ThreadPoolExecutor(SIDE_BY_SIDE)
    for stage in STAGES:
        chain.submit(stage)
    out = Outcomes({s.name: [] for s in STAGES}, [])
    for stage in STAGES:
        kills, terms = chain.jobs[stage.name]
        out.kills[stage.name] = [(point, future.result()) for point, future in kills]
        out.terms += [(stage.name, tick, future.result()) for tick, future in terms]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES, ids=[s.name for s in STAGES])
def test_killed_anywhere_the_rerun_ends_as_an_uninterrupted_run(outcomes: Outcomes, stage: Stage) -> None:
    results = outcomes.kills[stage.name]
    for _, result in results:
        if isinstance(result, BaseException):
            raise result
    killed = sum(code == -9 for _, code in results)
    missed_ticks = sum(p.kind == "tick" and code == 0 for p, code in results)
    # a timed point may find a short run finished; a durable step is reached (encode's count
    # varies by one or two with its workers' timing)
    assert killed >= 1 and missed_ticks <= 1, f"the kills missed the work: {killed} landed"


# SIGTERM points per stage: one in the default run, as many as the kill points when asked for more
TERM_POINTS = kill.POINTS if kill.LONG or os.environ.get("SOUNDARK_KILL_POINTS") else 1


def term_point(chain: Chain, stage: Stage, tick: int) -> int:
    """SIGTERM at durable step *tick* of *stage*, on a copy of its "before" archive: the command
    stops there through its own handler (exit 143, one line), and the rerun ends as the
    uninterrupted run."""
    base = chain.baselines[stage.name]
    root = chain.root.parent / f"{stage.name}-term-{tick}"
    args = chain.args(stage, root)
    kill.copy_archive(base.before, root)
    log = root.parent / f"{root.name}.ticks"
    r = kill.run(args, kill_at=tick, term=True, log=log)
    where = f"{stage.name} sent SIGTERM at tick {tick} of {base.ticks}"
    lines = r.stderr.strip().splitlines()
    if kill.count_ticks(log) < tick:  # encode's step count varies by one or two with its workers
        assert r.returncode == 0, f"{where}: never reached, yet exit {r.returncode}: {r.stderr}"
    else:
        assert r.returncode == 143, f"{where}: exit {r.returncode}: {r.stderr}"
        assert lines and lines[-1].startswith("error: terminated (SIGTERM): "), f"{where}: {r.stderr}"
    assert "Traceback" not in r.stderr, f"{where}: {r.stderr}"
    if stage.name != "repair":
        assert not kill.torn(root), f"{where}: {kill.torn(root)}"
    rerun_until_done(args, root)
    got = kill.snapshot(root)
    assert got == base.after, f"{where}:\n{kill.diff(base.after, got)}"
    assert not kill.problems(root), f"{where}: {kill.problems(root)}"
    if any((root / "releases").glob("*/bagit.txt")):
        verified = verify_path(root)
        assert verified.ok, f"{where}: verify after the rerun: {verified.problems[:5]}"
    shutil.rmtree(root)
    return r.returncode


@pytest.mark.slow
def test_sigterm_at_a_durable_step_stops_every_stage_cleanly(outcomes: Outcomes) -> None:
    """SIGTERM (what systemd, Kubernetes or Slurm send) at one seeded durable step of every stage
    that has one, release art included: the same path as Ctrl-C, exact to the step."""
    assert outcomes.terms
    for _, _, result in outcomes.terms:
        if isinstance(result, BaseException):
            raise result


# Two runs of one stage at once (encode's two runs sharing by leases: tests/test_encode_jobs.py).
CONCURRENT = ("import-catalog", "plan", "release-art")


@pytest.mark.slow
@pytest.mark.parametrize("name", CONCURRENT)
def test_two_runs_at_once_the_second_waits_and_nothing_doubles(chain: Chain, name: str) -> None:
    stage = next(s for s in STAGES if s.name == name)
    base = chain.baselines[name]
    kill.copy_archive(base.before, chain.root)
    runs = [subprocess.Popen([sys.executable, "-m", "soundark", *chain.args(stage)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [r.communicate(timeout=300) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [err for _, err in outs]
    got = kill.snapshot(chain.root)
    assert got == base.after, kill.diff(base.after, got)
    assert not kill.problems(chain.root)


REFUSAL = re.compile(r"^error: (?P<root>.+): another soundark process \(pid (?P<pid>\d+), "
                     r"`soundark test`, since \d\d:\d\d:\d\d\) is writing this archive; "
                     r"wait for it or stop it$")


REFUSED = (("import", "catalog", "{lib}/rows.jsonl"), ("import", "musicbrainz", "{lib}/mb.jsonl"),
           ("import", "listens", "{lib}/listens.csv"), ("release", "metadata"), ("release", "art"),
           ("release", "audio"))


@pytest.mark.slow
def test_a_second_writer_refuses_with_one_line(tmp_path: Path) -> None:
    """The writers tests/test_reliability_writers.py does not try, all at once against one holder."""
    root = tmp_path / "a"
    assert subprocess.run([sys.executable, "-m", "soundark", "init", str(root)], capture_output=True).returncode == 0
    (root / "soundark.toml").write_text("lock_wait_seconds = 0.2\n")
    (tmp_path / "rows.jsonl").write_text('{"title": "A", "artists": ["B"], "isrc": "QZKIL2600001"}\n')
    (tmp_path / "mb.jsonl").write_text("")
    (tmp_path / "listens.csv").write_text("isrc,total_listen_count\nQZKIL2600001,5\n")
    code = (f"import time\nfrom soundark.lock import ArchiveLock\nArchiveLock({str(root)!r}, 'soundark test')"
            ".acquire()\nprint('locked', flush=True)\ntime.sleep(300)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = kill.snapshot(root)
        runs = [subprocess.Popen([sys.executable, "-m", "soundark", *[c.format(lib=tmp_path) for c in command],
                                  "-a", str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for command in REFUSED]
        outs = [run.communicate(timeout=120) for run in runs]
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    for command, run, (_, err) in zip(REFUSED, runs, outs, strict=True):
        assert run.returncode == 1 and REFUSAL.match(err.strip()), (command, err)
    assert kill.snapshot(root) == before  # the refused runs changed nothing
