"""What every command module shares: consoles, --json output, settings, a rich progress bar.

Output fits the terminal it is shown on (tables and bars at 80 columns too) and is never
wrapped when piped: keys, infohashes and magnet links reach a pipe or a file whole.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import (
    Progress as RichProgress,
)
from rich.text import Text

from soundark.catalog.store import check_catalog
from soundark.config import ArchivePaths, Settings
from soundark.lock import ArchiveLock
from soundark.model import Progress
from soundark.units import format_bytes

ARCHIVE_ENV = "SOUNDARK_ARCHIVE"
ARCHIVE_HELP = f"The archive folder (default: ${ARCHIVE_ENV}, else the current folder)."
ARCHIVE_OPT = typer.Option(Path("."), "--archive", "-a", envvar=ARCHIVE_ENV, show_default=False,
                           show_envvar=False,
                           help=ARCHIVE_HELP)
JSON_OPT = typer.Option(False, "--json", help="Print one JSON object on stdout instead of text.")

# Wide enough that no line of a table or a message is ever wrapped in a pipe or a file.
UNWRAPPED = 100_000


def _make_console(stream: Any, stderr: bool) -> Console:
    """A console as wide as the terminal (or COLUMNS); unbounded when the stream is not a terminal.

    rich would otherwise wrap piped output at 80 columns, or at the width of whatever
    terminal stdin happens to be, cutting keys and infohashes in two.
    """
    tty = hasattr(stream, "isatty") and stream.isatty()
    width = None if tty or os.environ.get("COLUMNS", "").isdigit() else UNWRAPPED
    return Console(stderr=stderr, highlight=False, width=width, soft_wrap=width == UNWRAPPED)


# Progress bars, warnings and tables for people go to stderr when --json is given,
# so stdout carries exactly one JSON object.
out = _make_console(sys.stdout, stderr=False)
err = _make_console(sys.stderr, stderr=True)


def cut(value: str) -> Text:
    """A table cell that ends in … when its column is narrowed to fit, instead of wrapping."""
    return Text(value, no_wrap=True, overflow="ellipsis")


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
        # Below 100 columns the bar, the labels and the rate shrink so that the count and the
        # time left stay whole (at 80 columns too): what a bar is for.
        self.narrow = err.width < 100
        self.bar = RichProgress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=max(10, min(40, err.width - 68)) if self.narrow else 40),
            MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            TimeRemainingColumn(), console=err, transient=False, disable=quiet,
        )
        self.task: Any = None
        self.nbytes = 0
        self.audio_seconds = 0.0
        self.unit = "items"
        self.notes = 0
        self.noted: set[str] = set()  # messages already shown live: summaries skip them

    def __enter__(self) -> BarProgress:
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
        description = description or "working"
        if self.narrow and len(description) > 14:
            description = description[:13] + "…"
        self.task = self.bar.add_task(description, total=total, rate="")

    def add_audio(self, seconds: float) -> None:
        """Stages that handle audio report its duration; the bar then shows audio-hours/s."""
        self.audio_seconds += seconds

    def advance(self, n: int = 1, item: str = "", nbytes: int = 0) -> None:
        if self.task is None:
            self.start(None)
        self.nbytes += nbytes
        task = self.bar.tasks[-1]
        elapsed = task.elapsed or 0.0
        rate = self._rate((task.completed + n) / elapsed, elapsed) if elapsed > 0.5 else ""
        self.bar.update(self.task, advance=n, rate=rate)

    def _rate(self, per_second: float, elapsed: float) -> str:
        if self.narrow:  # "1,234/s 1,800x" or "1,234/s 95 MB/s"
            rate = f"{per_second:,.0f}/s" if per_second >= 10 else f"{per_second:,.1f}/s"
            if self.audio_seconds:
                return rate + f" {self.audio_seconds / elapsed:,.0f}x"
            return rate + (f" {format_bytes(self.nbytes / elapsed)}/s" if self.nbytes else "")
        rate = f"{per_second:,.1f} {self.unit}/s"
        if self.audio_seconds:
            hours = self.audio_seconds / 3600 / elapsed
            rate += f"  {hours:,.3f} audio-h/s ({hours * 3600:,.0f}x realtime)"
        elif self.nbytes:
            rate += f" {format_bytes(self.nbytes / elapsed)}/s"
        return rate

    def cancelled(self) -> bool:
        """True once SIGINT or SIGTERM arrived: stages that poll this stop at a clean point."""
        return bool(STATE.signal)

    def note(self, message: str) -> None:
        self.notes += 1
        self.noted.add(message)
        if not self.quiet:
            self.bar.console.print(f"[yellow]{escape(message)}[/yellow]", markup=True, highlight=False,
                                   soft_wrap=True)
