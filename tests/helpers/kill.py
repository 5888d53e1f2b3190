"""The kill-anywhere harness (issue 13): SIGKILL a real `python -m soundark ...` at seeded points.

Two kinds of kill point, both seeded so a CI run always tries the same ones:

- ``tick``: the command kills itself (its whole process group) at its N-th durable step, through
  the test hook in soundark/durable.py (SOUNDARK_KILL_AT; a step is a catalog COMMIT or a move
  into place, each counted just before and just after). An uninterrupted run with
  SOUNDARK_KILL_LOG first counts the steps, so every N lands inside the work.
- ``time``: the harness kills the process group a seeded fraction of the uninterrupted run's
  working time after the command has visibly started (it holds a file under the archive open):
  this lands between steps, inside a transaction, a decode or a hash.

After a kill the same command runs again until it exits 0 (at most three times) and the archive
is compared with an uninterrupted run's (:func:`snapshot`) and checked (:func:`problems`).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from helpers.signals import opens_file_under

LONG = os.environ.get("SOUNDARK_KILL", "").strip().lower() == "long"
# kill points per stage; SOUNDARK_KILL_POINTS=N tries N on the default library (a quick deep run)
POINTS = int(os.environ.get("SOUNDARK_KILL_POINTS") or (20 if LONG else 3))
SEED = int(os.environ.get("SOUNDARK_KILL_SEED", "0") or 0)

# Catalog columns whose values legitimately depend on when (or how often) a run happened: run
# timestamps, the encode journal's lease bookkeeping and attempt count (a killed attempt counts).
TIME_COLUMNS = {"applied_at", "scanned_at", "planned_at", "created_at", "updated_at", "imported_at",
                "merged_at", "attempts", "lease_owner", "lease_expires", "started_at", "finished_at",
                "elapsed_seconds", "encode_seconds",
                "fts_structure"}  # search_word_state: the FTS5 segment history, not its words
# FTS5 shadow tables: compared through their own integrity check instead (problems()).
_FTS_SHADOW = ("_data", "_idx", "_docsize", "_config", "_content")


@dataclass(frozen=True)
class Point:
    kind: str      # "tick" or "time"
    value: float   # the tick number, or the share of the working time

    def __str__(self) -> str:
        return f"tick {int(self.value)}" if self.kind == "tick" else f"{self.value:.0%} of the run"


@dataclass(frozen=True)
class Run:
    returncode: int
    seconds: float        # from start to exit
    started: float        # seconds until it held a file under the watched folder open
    stdout: str
    stderr: str


def run(args: list[str], watch: Path | None = None, *, kill_at: int = 0, kill_after: float | None = None,
        log: Path | None = None, timeout: float = 300, term: bool = False) -> Run:
    """Run `soundark ARGS` in a session of its own; kill its group as told; return how it ended.

    With *term*, the command sends itself SIGTERM at tick *kill_at* instead of SIGKILL to its group.
    With *watch*, note when the command first holds a file below it open (``started``) and, with
    *kill_after*, kill it that many seconds later. Without, just wait: polling /proc costs the
    CPU the command needs on a loaded machine.
    """
    env = dict(os.environ, SOUNDARK_KILL_AT=str(kill_at), SOUNDARK_KILL_LOG=str(log or ""),
               SOUNDARK_KILL_SIGNAL="TERM" if term else "")
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "soundark", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    started = None
    try:
        if watch is not None:
            started = _watch(proc, watch, t0, kill_after, timeout)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.monotonic() - t0
    return Run(proc.returncode, seconds, seconds if started is None else started, out, err)


def _watch(proc: subprocess.Popen, watch: Path, t0: float, kill_after: float | None,
           timeout: float) -> float | None:
    """Poll until the command has started (then kill it after *kill_after* s, if given) or ended."""
    while proc.poll() is None and time.monotonic() - t0 < timeout:
        if opens_file_under(proc.pid, watch):
            started = time.monotonic() - t0
            if kill_after is not None:
                try:
                    proc.wait(timeout=kill_after)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            return started
        time.sleep(0.01)
    return None


def count_ticks(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def points(stage: str, ticks: int, n: int = POINTS) -> list[Point]:
    """*n* seeded kill points: about two thirds at durable steps (every one when there are fewer
    steps than that), the rest at a share of the working time."""
    rng = random.Random(f"{stage}:{SEED}")
    n_ticks = min(ticks, (2 * n + 2) // 3)
    chosen = sorted(rng.sample(range(1, ticks + 1), n_ticks)) if n_ticks else []
    out = [Point("tick", t) for t in chosen]
    # the working time measured includes the exit: past ~85 % a kill often finds the run gone
    out += [Point("time", round(rng.uniform(0.03, 0.85), 3)) for _ in range(n - len(out))]
    return out


def copy_archive(src: Path, dst: Path) -> None:
    """``cp -a``: keeps the hard links between releases/ and store/, the modes and the times."""
    if dst.exists():
        shutil.rmtree(dst)
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file (and '->target' of every link) below *folder*."""
    if not folder.exists():
        return {}
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            out[rel] = "->" + os.readlink(p)
        elif p.is_file():
            out[rel] = _sha(p)
    return out


def catalog_dump(catalog: Path) -> dict[str, tuple]:
    """Every user table as (row count, sha256 of its rows sorted by SQLite, the first rows),
    without TIME_COLUMNS; FTS shadow tables left out (problems() checks the FTS indexes)."""
    conn = sqlite3.connect(f"{catalog.as_uri()}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        out: dict[str, tuple] = {}
        for name in names:
            if name.endswith(_FTS_SHADOW) or name == "schema_migration":
                continue
            cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')
                    if r[1] not in TIME_COLUMNS]
            listed = ", ".join(f'"{c}"' for c in cols)
            out[name] = _digest(conn.execute(f'SELECT {listed} FROM "{name}" ORDER BY {listed}'))
        out["schema_migration"] = _digest(conn.execute("SELECT version, name FROM schema_migration ORDER BY 1"))
        # plan_run logs every plan run: a run killed after its commit has done its work, so the
        # rerun logs one more. What must match is the latest plan (changed counts differ with it)
        out["plan_run"] = _digest(conn.execute(
            "SELECT budget, tiers, recordings, kept, bytes, listens_total, listens_covered, figures"
            " FROM plan_run ORDER BY id DESC LIMIT 1"))
        return out
    finally:
        conn.close()


def _digest(rows: Iterable[tuple]) -> tuple:
    h = hashlib.sha256()
    n, first = 0, []
    for row in rows:
        h.update(repr(row).encode())
        if n < 3:
            first.append(row)
        n += 1
    return n, h.hexdigest(), tuple(first)


def snapshot(root: Path) -> dict:
    """What an uninterrupted run and a killed-then-rerun one must agree on."""
    releases = tree(root / "releases")
    # torrents.json's per-release `created` is the run's wall clock; the rest must match
    if "torrents.json" in releases:
        listing = json.loads((root / "releases" / "torrents.json").read_text())
        for rel in listing.get("releases", []):
            rel.pop("created", None)
        listing.pop("generated", None)
        releases["torrents.json"] = json.dumps(listing, sort_keys=True)
    catalog = root / "catalog.sqlite3"
    return {"catalog": catalog_dump(catalog) if catalog.exists() else None,
            "store": tree(root / "store"), "art": tree(root / "art"), "releases": releases}


def leftovers(root: Path) -> list[str]:
    """Partial or temporary files in store/, art/, releases/ or tmp/ (dot-named ones included:
    after a run that finished, `releases/.staging` holds nothing)."""
    bad = []
    for name in ("store", "art", "releases"):
        folder = root / name
        for p in folder.rglob("*") if folder.exists() else ():
            if p.is_file() and (p.name.startswith(".") or p.suffix in (".tmp", ".part", ".restore")
                                or any(part.startswith(".") for part in p.relative_to(folder).parts)):
                bad.append(p.relative_to(root).as_posix())
    # ARCHIVE/tmp is encode's scratch (docs/encode.md): a finished run leaves nothing in it
    bad += [p.relative_to(root).as_posix() for p in (root / "tmp").rglob("*") if p.is_file()]
    return sorted(bad)


def problems(root: Path) -> list[str]:
    """integrity_check, FTS integrity, encode jobs left running, leftovers."""
    found = []
    catalog = root / "catalog.sqlite3"
    conn = sqlite3.connect(catalog)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchall()
        if check != [("ok",)]:
            found.append(f"integrity_check: {check[:5]}")
        for fts in ("recording_fts", "recording_trigram"):
            try:
                conn.execute(f"INSERT INTO {fts}({fts}) VALUES ('integrity-check')")
            except sqlite3.DatabaseError as e:
                found.append(f"{fts}: {e}")
        running = conn.execute("SELECT count(*) FROM encode_job WHERE status = 'running'").fetchone()[0]
        if running:
            found.append(f"{running} encode job(s) still running")
        conn.rollback()
    finally:
        conn.close()
    found += [f"leftover {p}" for p in leftovers(root)]
    return found


def diff(expected: dict, got: dict) -> str:
    """A short description of where two snapshots differ ('' when equal)."""
    lines = []
    for part in ("store", "art", "releases"):
        a, b = expected[part], got[part]
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                lines.append(f"{part}/{k}: {'missing' if k not in b else 'extra' if k not in a else 'differs'}")
    ea, ga = expected["catalog"] or {}, got["catalog"] or {}
    for table in sorted(set(ea) | set(ga)):
        if ea.get(table) != ga.get(table):
            lines.append(f"catalog {table}: expected {ea.get(table)}, got {ga.get(table)}"[:600])
    return "\n".join(lines[:20])


def torn(root: Path) -> list[str]:
    """What a kill must never leave visible, even before the rerun: a store or art file whose
    bytes are not the sha256 its name promises, or a bag in releases/ (not dot-named) that is
    incomplete: no bagit.txt, or a manifest line whose file is missing or differs."""
    bad = []
    for name in ("store", "art"):
        folder = root / name
        for p in folder.rglob("*") if folder.exists() else ():
            if p.is_file() and not p.name.startswith(".") and p.name.split(".")[0] != _sha(p):
                bad.append(f"{p.relative_to(root)}: bytes differ from the name")
    releases = root / "releases"
    for bag in sorted(releases.iterdir()) if releases.exists() else ():
        if not bag.is_dir() or bag.name.startswith(".") or bag.name == "torrents":
            continue
        manifest = bag / "manifest-sha256.txt"
        if not (bag / "bagit.txt").is_file() or not manifest.is_file():
            bad.append(f"releases/{bag.name}: an incomplete bag")
            continue
        for line in manifest.read_text(encoding="utf-8").splitlines():
            digest, _, rel = line.partition("  ")
            f = bag / rel
            if not f.is_file() or _sha(f) != digest:
                bad.append(f"releases/{bag.name}/{rel}: missing or differs from the manifest")
    return bad
