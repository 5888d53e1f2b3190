"""Kill anywhere (issue 13): every long command SIGKILLed at seeded points, then re-run.

One module-scoped chain of uninterrupted runs builds the archive stage by stage (import catalog,
import musicbrainz, scan, import listens, plan, encode, release metadata/audio/art, verify,
repair), keeping a copy of the archive before and after each stage and the number of durable
steps each took. Each kill test copies the "before" archive to the same path the chain used
(catalog rows name it), kills the command at its seeded points (tests/helpers/kill.py), re-runs it
until it exits 0 and requires the archive to equal the uninterrupted run's "after" copy, with a
sound catalog, no job left running, no temporary file in store/, art/ or releases/, and the
published bags verifying. `SOUNDARK_KILL=long` tries 20 points per stage instead of 3.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from soundark.media.synth import SourceTags, Voice, make_file, tiny_jpeg

from helpers import kill

DATA = Path(__file__).parent / "data" / "musicbrainz"
CATALOG_ROWS = 200_000 if kill.LONG else 20_000
HELD = 8  # real audio files, 1 s each
FORMATS = ("flac", "mp3", "ogg", "wav")
SETTINGS = """\
release_date = "2024-05-01"
target_size = "40KB"
parity_overhead = 0.2
workers = 2
lock_wait_seconds = 0.5
"""


def isrc(i: int) -> str:
    return f"QZKIL26{i:05d}"


def build_library(folder: Path) -> None:
    """Tagged audio on two albums with covers, catalog rows, MusicBrainz lines and listens."""
    music = folder / "music"
    for i in range(HELD):
        album = f"Album {i % 2}"
        tags = SourceTags(title=f"Song {i}", artists=[f"Artist {i % 3}"], album=album,
                          album_artist="Kill Test", track_number=i // 2 + 1, date="2020-01-01",
                          isrc=isrc(i), license="cc-by-4.0",
                          art=tiny_jpeg((40 + 100 * (i % 2), 80, 160), 32))
        (music / album).mkdir(parents=True, exist_ok=True)
        make_file(music / album / f"{i:02d}", FORMATS[i % 4], 1.0, tags=tags,
                  voice=Voice(notes=tuple(55 + (i * 5 + k * 3) % 24 for k in range(4)), seed=i, noise=0.01))
    with open(folder / "rows.jsonl", "w", encoding="utf-8") as f:
        for i in range(CATALOG_ROWS):
            f.write(json.dumps({"title": f"Song {i}", "artists": [f"Artist {i % 3}" if i < HELD else f"Band {i % 997}"],
                                "album": f"Album {i % 2}" if i < HELD else f"Record {i // 12}",
                                "isrc": isrc(i), "duration_ms": 1000 if i < HELD else 180_000 + i,
                                "rights": "cc-by-4.0"}) + "\n")
    # the real MusicBrainz recording (tests/data/musicbrainz), as dump lines with their own ids
    real = json.loads((DATA / "recording_trimmed.json").read_text())
    with open(folder / "mb.jsonl", "w", encoding="utf-8") as f:
        for i in range(3000):
            line = dict(real, id=f"00000000-0000-4000-8000-{i:012d}", title=f"Song {i}", isrcs=[isrc(i)])
            f.write(json.dumps(line) + "\n")
    with open(folder / "listens.csv", "w", encoding="utf-8") as f:
        f.write("isrc,total_listen_count,total_user_count\n")
        for i in range(5000):
            f.write(f"{isrc(i)},{100_000 // (i + 1) + 1},{i % 50 + 1}\n")


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

    def args(self, stage: Stage) -> list[str]:
        return [a.format(lib=self.lib, root=self.root) for a in stage.args]


def damage(root: Path) -> None:
    """Bit rot in the first audio bag: one byte flipped (its store copy is the same file)."""
    bag = sorted(p for p in (root / "releases").glob("*-audio-0001") if p.is_dir())[0]
    victim = sorted(p for p in (bag / "data").rglob("*") if p.suffix in (".opus", ".mp3", ".ogg"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    base = tmp_path_factory.mktemp("kill")
    lib, root = base / "lib", base / "archive"
    build_library(lib)
    r = subprocess.run([sys.executable, "-m", "soundark", "init", str(root)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (root / "soundark.toml").write_text(SETTINGS)
    out = Chain(lib, root, {})
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
    return out


def rerun_until_done(args: list[str], root: Path) -> int:
    """The same command again until it exits 0 (a killed run's leftovers may cost one more)."""
    for attempt in range(1, 4):
        r = kill.run(args, root)
        if r.returncode == 0:
            return attempt
    raise AssertionError(f"soundark {' '.join(args)} still fails after a kill: {r.stderr}")


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES, ids=[s.name for s in STAGES])
def test_killed_anywhere_the_rerun_ends_as_an_uninterrupted_run(chain: Chain, stage: Stage) -> None:
    base = chain.baselines[stage.name]
    args = chain.args(stage)
    killed = 0
    for point in kill.points(stage.name, base.ticks):
        kill.copy_archive(base.before, chain.root)
        if point.kind == "tick":
            r = kill.run(args, chain.root, kill_at=int(point.value))
        else:
            r = kill.run(args, chain.root, kill_after=point.value * base.seconds)
        where = f"{stage.name} killed at {point}"
        if r.returncode == -9:
            killed += 1
        else:  # a timed kill can miss a run that finished early; it must then have succeeded
            assert point.kind == "time" and r.returncode == 0, f"{where}: exit {r.returncode}: {r.stderr}"
        rerun_until_done(args, chain.root)
        got = kill.snapshot(chain.root)
        assert got == base.after, f"{where}:\n{kill.diff(base.after, got)}"
        assert not kill.problems(chain.root), f"{where}: {kill.problems(chain.root)}"
        if any((chain.root / "releases").glob("*/bagit.txt")) and not stage.reader:
            v = kill.run(["verify", str(chain.root), "--json"], chain.root)
            assert v.returncode == 0, f"{where}: verify after the rerun: {v.stdout[-2000:]}"
    assert killed >= len(kill.points(stage.name, base.ticks)) - 1, "the kills missed the work"
