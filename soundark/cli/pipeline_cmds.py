"""`soundark demo` and `soundark archive`: every stage in order, with a summary."""

from __future__ import annotations

from pathlib import Path

import typer

from soundark.catalog.archive import init_archive
from soundark.cli.common import (
    ARCHIVE_ENV,
    ARCHIVE_HELP,
    BarProgress,
    console,
    emit_json,
    hold_writer_lock,
    load_settings,
    stop_if_signalled,
)
from soundark.errors import BadInput
from soundark.pipeline import Step, run_steps


def _printer(as_json: bool):
    con = console(as_json)

    def show(step: Step) -> None:
        mark = "[green]✓[/green]" if step.ok else "[red]✗[/red]"
        con.print(f"{mark} [bold]{step.name}[/bold]")
        for line in step.lines:
            con.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    return show


def demo(
    folder: Path = typer.Argument(Path("demo-archive"), help="Where to build the demo (created)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout instead of text."),
) -> None:
    """Synthesise a small music collection and run every stage on it.

    Builds FOLDER/source (28 tracks of real audio in FLAC, MP3, Ogg Vorbis and WAV with a
    catalog and listen counts, plus one corrupt file) and the archive FOLDER/archive, then
    imports, scans, plans under a budget, encodes, releases, verifies, damages, repairs
    and searches. Re-running it carries on from what is there.
    """
    from soundark.pipeline.demo import demo_steps

    root = folder.absolute() / "archive"  # where demo_steps builds the archive
    root.mkdir(parents=True, exist_ok=True)
    hold_writer_lock(root, load_settings(root))
    with BarProgress(quiet=as_json) as progress:
        steps, paths = demo_steps(folder.absolute(), progress)
        done = run_steps(paths, load_settings(paths.root), steps, progress, _printer(as_json))
    ok = all(s.ok for s in done)
    stop_if_signalled()  # a step returned early on SIGINT/SIGTERM: the later steps did not run
    if as_json:
        emit_json({"archive": str(paths.root), "ok": ok, "steps": [s.as_dict() for s in done]})
    else:
        con = console(False)
        con.print(f"\ndemo archive: {paths.root}", markup=False)
        con.print(f"browse it:    soundark serve -a {paths.root}", markup=False)
    if not ok:
        raise typer.Exit(1)


def archive(
    source: Path = typer.Argument(..., help="Folder of audio files to scan."),
    archive_dir: Path = typer.Option(Path("."), "--archive", "-a", envvar=ARCHIVE_ENV, show_default=False,
                                     show_envvar=False, help=ARCHIVE_HELP + " Created if missing."),
    catalog_file: Path | None = typer.Option(None, "--catalog", help="Catalog rows to import first."),
    listens_file: Path | None = typer.Option(None, "--listens", help="Listen counts to import."),
    rights: str | None = typer.Option(None, "--rights", help="Rights of the scanned files."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout instead of text."),
) -> None:
    """Scan -> plan -> encode -> release, with the settings of ARCHIVE/soundark.toml."""
    from soundark.pipeline.archive import archive_steps

    if not source.is_dir():
        raise BadInput(source, "not a folder")
    archive_dir = archive_dir.absolute()
    archive_dir.mkdir(parents=True, exist_ok=True)
    hold_writer_lock(archive_dir, load_settings(archive_dir))
    paths = init_archive(archive_dir).paths
    settings = load_settings(paths.root, rights=rights)
    with BarProgress(quiet=as_json) as progress:
        steps = archive_steps(source.absolute(), catalog_file, listens_file)
        done = run_steps(paths, settings, steps, progress, _printer(as_json))
    ok = all(s.ok for s in done)
    stop_if_signalled()  # a step returned early on SIGINT/SIGTERM: the later steps did not run
    if as_json:
        emit_json({"archive": str(paths.root), "ok": ok, "steps": [s.as_dict() for s in done]})
    else:
        con = console(False)
        con.print(f"\narchive:  {paths.root}", markup=False)
        con.print(f"releases: {paths.releases / 'torrents.html'}", markup=False)
        con.print(f"browse:   soundark serve -a {paths.root}", markup=False)
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("archive")(archive)
