"""What every command module shares: consoles, --json output, settings, a rich progress bar."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress as RichProgress, SpinnerColumn, TextColumn,
    TimeElapsedColumn, TimeRemainingColumn,
)

from soundark.catalog.store import check_catalog
from soundark.config import ArchivePaths, Settings
from soundark.lock import ArchiveLock
from soundark.model import Progress
from soundark.units import format_bytes

# Progress bars, warnings and tables for people go to stderr when --json is given,
# so stdout carries exactly one JSON object.
out = Console(highlight=False)
ARCHIVE_OPT = typer.Option(Path("."), "--archive", "-a", help="The archive folder.")
JSON_OPT = typer.Option(False, "--json", help="Print one JSON object on stdout instead of text.")

err = Console(stderr=True, highlight=False)


class CliState:
    debug: bool = False
    signal: int = 0  # the SIGINT or SIGTERM that is stopping this command (soundark.cli.main)


STATE = CliState()


def console(as_json: bool) -> Console:
    return err if as_json else out


def emit_json(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def archive_paths(archive: Path, must_exist: bool = True) -> ArchivePaths:
    """The archive's paths; with *must_exist*, refuse a missing, empty or foreign catalog.

    Only `init` (and `archive`/`demo`, which init) may make a catalog: any other
    command that found none would otherwise start a fresh one over an archive whose
    store and releases it knows nothing about (see docs/reliability.md).
    """
    paths = ArchivePaths(Path(archive).expanduser().absolute())
    if must_exist:
        check_catalog(paths)
    return paths


def load_settings(archive: Path, **overrides: Any) -> Settings:
    return Settings.load(Path(archive)).with_overrides(**overrides)


def writer_root(path: Path) -> Path:
    """Whose lock a command over *path* takes: the archive that holds it, else its folder.

    `repair` accepts an archive, its releases folder, one bag, or bags downloaded
    anywhere; two repairs of the same bags must meet on the same lock file, so a bag
    outside an archive locks the folder that holds it (never a file inside the bag).
    """
    path = Path(path).expanduser().absolute()
    for folder in (path, *path.parents):
        if (folder / "catalog.sqlite3").is_file() or (folder / "soundark.toml").is_file():
            return folder
    if (path / "bagit.txt").is_file() or not path.is_dir():
        return path.parent
    return path


def stop_if_signalled() -> None:
    """After a stage returned early on a signal (its summary printed): exit 130/143 as the boundary does."""
    if STATE.signal:
        raise KeyboardInterrupt


_HELD_LOCKS: list[ArchiveLock] = []


def hold_writer_lock(root: Path, settings: Settings) -> ArchiveLock:
    """Take the archive's writer lock for the rest of this command (docs/reliability.md).

    Waits up to the `lock_wait_seconds` setting for another writer, then refuses with
    one line naming it. Released when the command ends, however it ends (:func:`main`
    calls :func:`release_writer_locks`; a killed process loses its flock to the kernel).
    """
    lock = ArchiveLock(Path(root), " ".join(["soundark", *_command_words()]))
    lock.acquire(settings.lock_wait_seconds)
    _HELD_LOCKS.append(lock)
    return lock


def release_writer_locks() -> None:
    """Release every lock this command took (also when soundark runs in-process, as in tests)."""
    while _HELD_LOCKS:
        _HELD_LOCKS.pop().release()


def _command_words() -> list[str]:
    """The subcommand's words, e.g. ['release', 'audio'], from Typer's own click context."""
    from typer.main import get_current_context  # Typer vendors its click: not click's own

    try:
        ctx = get_current_context(silent=True)
    except Exception:  # noqa: BLE001 - only a label for the lock holder's note
        ctx = None
    words = []
    while ctx is not None and ctx.parent is not None:  # the root's name is however Python was started
        words.append(ctx.info_name or "")
        ctx = ctx.parent
    return list(reversed(words))


class BarProgress(Progress):
    """A rich progress bar on stderr; one-line notes above it; Ctrl-C cancels cleanly."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar = RichProgress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
            MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            TimeRemainingColumn(), console=err, transient=False, disable=quiet,
        )
        self.task: Any = None
        self.nbytes = 0
        self.audio_seconds = 0.0
        self.unit = "items"
        self.notes = 0

    def __enter__(self) -> "BarProgress":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def start(self, total: int | None, description: str = "", unit: str = "items") -> None:
        if self.task is not None:  # one bar at a time: the finished stage has printed its summary
            self.bar.remove_task(self.task)
        self.nbytes = 0
        self.audio_seconds = 0.0
        self.unit = unit
        self.task = self.bar.add_task(description or "working", total=total, rate="")

    def add_audio(self, seconds: float) -> None:
        """Stages that handle audio report its duration; the bar then shows audio-hours/s."""
        self.audio_seconds += seconds

    def advance(self, n: int = 1, item: str = "", nbytes: int = 0) -> None:
        if self.task is None:
            self.start(None)
        self.nbytes += nbytes
        task = self.bar.tasks[-1]
        elapsed = task.elapsed or 0.0
        rate = ""
        if elapsed > 0.5:
            rate = f"{(task.completed + n) / elapsed:,.1f} {self.unit}/s"
            if self.audio_seconds:
                hours = self.audio_seconds / 3600 / elapsed
                rate += f"  {hours:,.3f} audio-h/s ({hours * 3600:,.0f}x realtime)"
            elif self.nbytes:
                rate += f" {format_bytes(self.nbytes / elapsed)}/s"
        self.bar.update(self.task, advance=n, rate=rate)

    def cancelled(self) -> bool:
        """True once SIGINT or SIGTERM arrived: stages that poll this stop at a clean point."""
        return bool(STATE.signal)

    def note(self, message: str) -> None:
        self.notes += 1
        if not self.quiet:
            self.bar.console.print(f"[yellow]{escape(message)}[/yellow]", markup=True, highlight=False,
                                   soft_wrap=True)
