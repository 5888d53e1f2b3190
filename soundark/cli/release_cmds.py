"""Commands of the release stage: `soundark release metadata|audio|art|list`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.table import Table

from soundark.cli.common import (
    ARCHIVE_OPT,
    JSON_OPT,
    BarProgress,
    archive_paths,
    console,
    cut,
    emit_json,
    hold_writer_lock,
    load_settings,
)
from soundark.units import format_bytes

DATE_OPT = typer.Option(None, "--date",
                        help="Release date YYYY-MM-DD written into bags and torrents (default: the "
                             "`release_date` setting, else today in UTC). Same input + same date = same bytes.")

release_app = typer.Typer(help="Publish the archive: BagIt bags with torrents, and the release list.",
                          no_args_is_help=True)


def print_result(result: Any, as_json: bool) -> None:
    """The short summary: what was published, what was held back and why, where it is."""
    if as_json:
        emit_json(result.as_dict())
        return
    con = console(False)
    shown = [p for p in result.published]
    for p in shown:
        ranks = f", ranks {p.rank_first}-{p.rank_last}" if p.rank_first is not None else ""
        con.print(f"published {p.name} ({p.phase}): {p.files:,} files, {format_bytes(p.bytes)}{ranks}, "
                  f"infohash {p.infohash_v1}", markup=False, soft_wrap=True)
    for name in result.unchanged:
        con.print(f"unchanged: {name} already holds this content; nothing new published", markup=False)
    if not shown and not result.unchanged:
        con.print(f"nothing new to publish ({result.phase})", markup=False)
    for reason, n in sorted(result.held_back.items()):
        con.print(f"held back {n:,}: {reason}", markup=False, soft_wrap=True)
    if result.waiting:
        con.print(f"waiting {result.waiting:,} recordings: not enough for a full release yet (--full-only)",
                  markup=False)
    for e in result.errors[:20]:
        con.print(f"  error {e['subject']}: {e['reason']}", markup=False, soft_wrap=True)
    if len(result.errors) > 20:
        con.print(f"  ... and {len(result.errors) - 20} more errors (see --json)", markup=False)
    con.print(f"releases are in {result.releases_dir} (list: torrents.json, torrents.html)", markup=False)


@release_app.command("metadata")
def metadata(archive: Path = ARCHIVE_OPT, date: str | None = DATE_OPT, as_json: bool = JSON_OPT) -> None:
    """Publish a clean catalog snapshot (SQLite, no local paths) and Parquet exports, as a bag + torrent.

    Nothing is published when the latest metadata release already holds the same data.
    """
    from soundark.release.stage import run_release_metadata

    paths = archive_paths(archive)
    settings = load_settings(paths.root)
    hold_writer_lock(paths.root, settings)
    with BarProgress(quiet=as_json) as progress:
        result = run_release_metadata(paths, settings, progress, date=date)
    print_result(result, as_json)


@release_app.command("audio")
def audio(
    archive: Path = ARCHIVE_OPT,
    target_size: str | None = typer.Option(None, "--target-size",
                                               help="Payload size of one release, e.g. 100GiB, 50GB "
                                                    "(default: the `target_size` setting)."),
    max_files: int | None = typer.Option(None, "--max-files",
                                            help="Most audio files in one release (default: the "
                                                 "`max_files` setting; at most 100000)."),
    full_only: bool = typer.Option(False, "--full-only",
                                   help="Publish only releases that reach the target size or file cap; "
                                        "keep the rest for a later run."),
    date: str | None = DATE_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Publish encoded recordings not yet released, in rank order, cut into bags + torrents.

    Only recordings whose rights are in the `redistributable` setting are published;
    the rest are counted as held back. Each audio release also gets a parity sidecar
    release (NAME.parity) unless `parity_overhead` is 0. Published releases never change.
    """
    from soundark.release.stage import run_release_audio

    paths = archive_paths(archive)
    settings = load_settings(paths.root)
    hold_writer_lock(paths.root, settings)
    with BarProgress(quiet=as_json) as progress:
        result = run_release_audio(paths, settings, progress, date=date, target_size=target_size,
                                   max_files=max_files, full_only=full_only)
    print_result(result, as_json)


@release_app.command("art")
def art(archive: Path = ARCHIVE_OPT, date: str | None = DATE_OPT, as_json: bool = JSON_OPT) -> None:
    """Publish cover images not yet released (content-addressed) and the album -> image mapping."""
    from soundark.release.stage import run_release_art

    paths = archive_paths(archive)
    settings = load_settings(paths.root)
    hold_writer_lock(paths.root, settings)
    with BarProgress(quiet=as_json) as progress:
        result = run_release_art(paths, settings, progress, date=date)
    print_result(result, as_json)


def print_list(listing: dict[str, Any], as_json: bool, magnets: bool = False) -> None:
    """The release list: a table that fits the terminal, then every infohash in full.

    With *magnets*, only the magnet links, one a line (for a file or another client).
    Infohashes and magnets are printed on lines of their own, never in a table cell, so
    they are neither cut nor wrapped (docs/release.md).
    """
    if as_json:
        emit_json(listing)
        return
    con = console(False)
    releases = listing["releases"]
    if magnets:
        for r in releases:
            con.print(r["magnet"], markup=False, highlight=False, soft_wrap=True)
        return
    if not releases:
        con.print("no releases yet: run `soundark release audio` (or `metadata`, `art`)", markup=False)
        return
    # The phase is in the name (soundark-audio-0001); it and the full timestamp are in --json.
    table = Table(title=f"{len(releases)} releases", title_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False)
    table.add_column("name", no_wrap=True)
    table.add_column("created")
    for col in ("size", "files", "ranks", "listens"):
        table.add_column(col, no_wrap=True, justify="right")
    for r in releases:
        ranks = f"{r['rank_first']}-{r['rank_last']}" if r.get("rank_first") is not None else ""
        share = f"{100 * r['listens_share']:.2f} %" if r.get("listens_share") is not None else ""
        table.add_row(r["name"], cut((r["created"] or "")[:10]), format_bytes(r["bytes"]),
                      f"{r['files']:,}" if r["files"] is not None else "",
                      ranks, share)
    con.print(table)
    con.print("infohash (v1)                             release", markup=False)
    for r in releases:
        con.print(f"{r['infohash_v1']}  {r['name']}", markup=False, highlight=False, soft_wrap=True)
    con.print("magnet links: soundark release list --magnets", markup=False)


@release_app.command("list")
def list_cmd(
    archive: Path = ARCHIVE_OPT,
    magnets: bool = typer.Option(False, "--magnets", help="Print only the magnet links, one a line."),
    as_json: bool = JSON_OPT,
) -> None:
    """List every release: phase, size, files, rank range, share of listens, infohash (torrents.json)."""
    from soundark.release.stage import load_torrent_list

    paths = archive_paths(archive)
    print_list(load_torrent_list(paths), as_json, magnets)


def register(app: typer.Typer) -> None:
    app.add_typer(release_app, name="release")
