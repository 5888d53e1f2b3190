"""Commands over the catalog: init, scan, import, search, stats, catalog merges / split."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from soundark.catalog import open_catalog
from soundark.catalog.archive import init_archive
from soundark.catalog.search import find
from soundark.catalog.snapshot import open_snapshot
from soundark.catalog.stats import catalog_stats
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
from soundark.config import Settings
from soundark.errors import BadInput
from soundark.model import ImportReport

RIGHTS_OPT = typer.Option(None, "--rights",
                          help="Rights of what is imported: owned, cc-by-4.0, public-domain, ... "
                               "(default: the archive's `rights` setting, itself 'unknown' by default).")

MAP_OPT = typer.Option(None, "--map",
                       help="Name columns the importer does not know: field=column[,field=column...], e.g. "
                            "title=track_name,artists=artist_name; for a CSV without a header row give column "
                            "numbers: artists=1,album=2,title=3.")
ENCODING_OPT = typer.Option(None, "--encoding",
                            help="Text encoding of a CSV file (default utf-8; e.g. latin-1, cp1252). Without "
                                 "it, a row with bytes that are not UTF-8 is rejected with its line.")

import_app = typer.Typer(help="Import catalog rows, MusicBrainz dumps or listen counts.",
                         no_args_is_help=True)


def init(
    folder: Path | None = typer.Argument(None, help="Folder to create or adopt as an archive "
                                                       "(default: the -a folder)."),
    archive: Path = ARCHIVE_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Create an archive folder: soundark.toml with every setting, and an empty catalog.

    `soundark init DIR` and `soundark init -a DIR` do the same; `soundark init` alone
    makes the current folder (or $SOUNDARK_ARCHIVE) an archive.

    An existing catalog is kept. Refused where store/ or releases/ hold data but the catalog
    is missing or empty: restore it from the last metadata release instead (docs/reliability.md).
    """
    paths = archive_paths(folder if folder is not None else archive, must_exist=False)
    paths.root.mkdir(parents=True, exist_ok=True)
    settings = Settings.load(paths.root)  # validates an existing file
    hold_writer_lock(paths.root, settings)
    done = init_archive(paths.root, settings)
    created, version = done.settings_created, done.schema_version
    result = {"archive": str(paths.root), "settings": str(paths.settings),
              "catalog": str(paths.catalog), "schema_version": version,
              "settings_created": created}
    if as_json:
        emit_json(result)
        return
    word = "created" if created else "kept existing"
    console(False).print(f"archive ready at {paths.root} ({word} soundark.toml, schema v{version})",
                         markup=False)


def print_report(report: ImportReport, as_json: bool, title: str, noted: frozenset[str] = frozenset()) -> None:
    """The summary; rejections already printed live (*noted*, as ``subject: reason``) are not repeated."""
    if as_json:
        emit_json(report.as_dict())
        return
    con = console(False)
    live = sum(1 for r in report.rejections if f"{r.subject}: {r.reason}" in noted)
    above = f" ({live} shown above)" if live else ""
    con.print(f"{title} {report.source}: {report.new} new, {report.updated} updated, "
              f"{report.unchanged} unchanged, {report.rejected} rejected{above}", markup=False)
    unseen = [r for r in report.rejections if f"{r.subject}: {r.reason}" not in noted]
    for r in unseen[:20]:
        con.print(f"  rejected {r.subject}: {r.reason}", markup=False, soft_wrap=True)
    more = report.rejected - live - min(20, len(unseen))
    if more > 0:
        con.print(f"  ... and {more} more rejected (all reasons are in the catalog / --json)", markup=False)
    for name, value in sorted(report.counts.items()):
        con.print(f"  {name.replace('_', ' ')}: {value}", markup=False)
    merges = report.merges[:20]
    if report.merged:
        con.print(f"  {report.merged} joined a recording the catalog already had:", markup=False)
    for m in merges:
        detail = f" ({m.detail})" if m.detail else ""
        con.print(f"  merged {m.subject} -> {m.recording} by {m.rule}{detail}", markup=False, soft_wrap=True)
    if report.merged > len(merges):
        con.print(f"  ... and {report.merged - len(merges)} more merges (--json lists them)", markup=False)
    for w in report.warnings[:20]:
        con.print(f"  warning {w.subject}: {w.reason}", markup=False, soft_wrap=True)
    if len(report.warnings) > 20:
        con.print(f"  ... and {len(report.warnings) - 20} more warnings (--json lists them)", markup=False)


def scan(
    folder: Path = typer.Argument(..., help="Folder of audio files to scan (recursively)."),
    archive: Path = ARCHIVE_OPT,
    rights: str | None = RIGHTS_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Scan audio files into the catalog: tags, stream facts and SHA-256 of each file.

    Unchanged files (same size and mtime) are skipped on a rescan; bad files are
    recorded as rejected with the reason, and the scan goes on. A file FFmpeg cannot
    read is tried with libsndfile (a warning names it). Names missing from the tags are
    guessed from the folders (never from generic ones like "Music" or "CD 1"). A
    soundark archive inside FOLDER is skipped. A LICENSE/COPYRIGHT tag that contradicts
    --rights is a warning, and release holds that recording back (docs/scan.md).
    A file with more tag entries than max_tag_entries, or still decoding after
    scan_file_seconds, is refused. A file found at a new path with the SHA-256 of one
    whose old path is gone is the same file, moved: the catalog follows it and its
    failed encode job is pending again.
    """
    paths = archive_paths(archive)
    settings = load_settings(paths.root, rights=rights)
    if not folder.is_dir():
        raise BadInput(folder, "not a folder")
    hold_writer_lock(paths.root, settings)
    from soundark.catalog.importers.scan import ReadLimits, scan_directory

    with open_catalog(paths.catalog) as catalog, BarProgress(quiet=as_json) as progress:
        report = scan_directory(catalog, folder, rights=settings.rights, progress=progress,
                                limits=ReadLimits(settings.max_tag_entries, settings.scan_file_seconds))
    print_report(report, as_json, "scanned", frozenset(progress.noted))


@import_app.command("catalog")
def import_catalog(
    file: Path = typer.Argument(..., help="Catalog rows: .jsonl, .csv or .parquet (docs/formats.md)."),
    archive: Path = ARCHIVE_OPT,
    rights: str | None = RIGHTS_OPT,
    column_map: str | None = MAP_OPT,
    encoding: str | None = ENCODING_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Import catalog rows (tracks with title, artists, album, ISRC, ...).

    Headers are matched case-insensitively; Exportify exports and the public Spotify
    tracks data sets are recognised by their header (the summary says which). Into an
    empty or near-empty catalog, batches are committed in groups of up to 1M rows and a
    file of 32 MB or more is read by a second Python process (docs/catalog.md).
    """
    from soundark.catalog.importers.tabular import import_catalog_file

    paths = archive_paths(archive)
    settings = load_settings(paths.root, rights=rights)
    hold_writer_lock(paths.root, settings)
    with open_catalog(paths.catalog) as catalog, BarProgress(quiet=as_json) as progress:
        report = import_catalog_file(catalog, file, rights=settings.rights, progress=progress,
                                     column_map=column_map, separator=settings.artist_separator,
                                     encoding=encoding)
    print_report(report, as_json, "imported")


@import_app.command("musicbrainz")
def import_musicbrainz_cmd(
    files: list[Path] = typer.Argument(..., help="MusicBrainz JSON: the dump's release.tar.xz and/or "
                                                 "recording.tar.xz, JSON Lines of releases/recordings "
                                                 "(.json/.jsonl, also .xz/.gz/.zst), or a /ws/2 lookup or "
                                                 "search response."),
    archive: Path = ARCHIVE_OPT,
    rights: str | None = RIGHTS_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Import recordings and releases (albums, tracks, ISRCs, credits) from MusicBrainz JSON.

    The entity of each line is detected: releases give albums, track and disc
    numbers, dates, labels and barcodes; other entities are rejected with a reason.
    Further ISRCs of a recording, and MusicBrainz recordings that share an ISRC,
    are kept as aliases and reported. One summary (one JSON object) for all files.
    """
    from soundark.catalog.importers.musicbrainz import import_musicbrainz

    paths = archive_paths(archive)
    settings = load_settings(paths.root, rights=rights)
    hold_writer_lock(paths.root, settings)
    with open_catalog(paths.catalog) as catalog, BarProgress(quiet=as_json) as progress:
        report = import_musicbrainz(catalog, files, rights=settings.rights, progress=progress)
    print_report(report, as_json, "imported")


@import_app.command("listens")
def import_listens_cmd(
    file: Path = typer.Argument(..., help="CSV, JSONL, Parquet or JSON: counts per recording_mbid/isrc "
                                          "(or popularity 0-100), raw listens (ListenBrainz export or "
                                          "dump, Last.fm scrobbles), or artist + title (+ album)."),
    archive: Path = ARCHIVE_OPT,
    column_map: str | None = MAP_OPT,
    encoding: str | None = ENCODING_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Import listen counts or popularity per recording (docs/formats.md, "Listen files").

    A file without a count column is raw listens: one row is one listen, summed per
    recording. Counts replace what the catalog held (the file is a snapshot). Rows
    without IDs match by artist + title (+ album); the summary counts matched,
    ambiguous and unmatched rows.
    """
    from soundark.catalog.importers.listens import import_listens

    paths = archive_paths(archive)
    hold_writer_lock(paths.root, load_settings(paths.root))
    with open_catalog(paths.catalog) as catalog, BarProgress(quiet=as_json) as progress:
        report = import_listens(catalog, file, progress=progress, column_map=column_map, encoding=encoding)
    print_report(report, as_json, "imported listens from")


def _fmt_duration(ms: int | None) -> str:
    if not ms:
        return ""
    s = round(ms / 1000)
    return f"{s // 60}:{s % 60:02d}"


def search_cmd(
    query: str = typer.Argument(..., help='Words to find in title, artists or album; "a phrase", '
                                          "prefix*, -excluded, or an ISRC. Words in scripts written "
                                          "without spaces (Japanese, Chinese, Thai) also match inside "
                                          "longer text."),
    archive: Path = ARCHIVE_OPT,
    limit: int = typer.Option(20, "--limit", "-n", help="Most results to show (1-200)."),
    offset: int = typer.Option(0, "--offset", help="Skip this many results (paging)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Search the catalog by title, artist, album or ISRC (the same search and ranking as the web)."""
    paths = archive_paths(archive)
    with open_catalog(paths.catalog, readonly=True) as catalog:
        found = find(catalog, query, limit=limit, offset=offset)
    hits = found.hits
    if as_json:
        emit_json({"query": query, "total": found.total, "total_is_lower_bound": found.capped,
                   "offset": offset, "results": [h.as_dict() for h in hits]})
        return
    con = console(False)
    if not hits:
        beyond = f" beyond the first {offset}" if offset and found.total else ""
        con.print(f"no recording matches {query!r}{beyond}", markup=False)
        return
    table = Table(title=search_headline(found.total, found.capped, offset, len(hits)), title_justify="left")
    table.add_column("key", no_wrap=True)  # keys stay whole: the other columns give way
    for col in ("title", "artist", "album"):
        table.add_column(col)
    for col in ("year", "time", "listens"):
        table.add_column(col, no_wrap=True, justify="right")
    for h in hits:  # long names end in … rather than wrap
        table.add_row(h.key, cut(h.title), cut(h.artist), cut(h.album), (h.date or "")[:4],
                      _fmt_duration(h.duration_ms), f"{h.listens:,}" if h.listens is not None else "")
    con.print(table)


def search_headline(total: int, lower_bound: bool, offset: int, shown: int) -> str:
    """'40 matches, showing 1–20 (--offset 20 for more)'; '300+ matches' when the count is a floor."""
    count = f"{total:,}+" if lower_bound else f"{total:,}"
    noun = "match" if total == 1 and not lower_bound else "matches"
    if offset == 0 and shown >= total and not lower_bound:
        return f"{count} {noun}"
    line = f"{count} {noun}, showing {offset + 1}–{offset + shown}"
    if lower_bound or offset + shown < total:
        line += f" (--offset {offset + shown} for more)"
    return line


def stats(
    snapshot: Path | None = typer.Argument(
        None, show_default=False,
        help="A catalog snapshot instead of the archive's catalog: a catalog.sqlite3, a metadata "
             "release's catalog.sqlite3.zst, or the release folder itself."),
    archive: Path = ARCHIVE_OPT, as_json: bool = JSON_OPT,
) -> None:
    """Counts of recordings, tracks, files, listens, rights and plan tiers.

    Of the archive's catalog, or of a published snapshot (checked against its release's
    manifest, opened read-only, refused if its schema holds views or triggers soundark never makes).
    """
    if snapshot is not None:
        with open_snapshot(snapshot) as catalog:
            result = catalog_stats(catalog)
        title = f"catalog snapshot {snapshot}"
    else:
        paths = archive_paths(archive)
        with open_catalog(paths.catalog, readonly=True) as catalog:
            result = catalog_stats(catalog)
        title = f"catalog {paths.catalog}"
    if as_json:
        emit_json(result)
        return
    table = Table(show_header=False, title=title, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key == "catalog":
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v:,}" for k, v in value.items()) or "-"
        elif isinstance(value, int):
            value = f"{value:,}"
        table.add_row(key.replace("_", " "), str(value))
    console(False).print(table)


def merges_cmd(archive: Path = ARCHIVE_OPT, as_json: bool = JSON_OPT) -> None:
    """List every scanned file that joined a recording another file or a catalog row had created
    (with the rule: isrc, mbid, name+duration+audio, name+duration), and every file split off."""
    from soundark.catalog.merges import list_merges

    paths = archive_paths(archive)
    with open_catalog(paths.catalog, readonly=True) as catalog:
        result = list_merges(catalog)
    if as_json:
        emit_json(result)
        return
    con = console(False)
    con.print(f"{result['merged']} merged file(s), {result['split']} split off", markup=False)
    for m in result["merges"]:
        detail = f" ({m['detail']})" if m["detail"] else ""
        con.print(f"  merged {m['path']} -> {m['recording']} by {m['rule']}{detail}", markup=False,
                  soft_wrap=True)
    for s in result["splits"]:
        con.print(f"  split {s['path']} -> {s['recording']} (from {s['from_recording']})", markup=False,
                  soft_wrap=True)


def split_cmd(
    file: str = typer.Argument(..., help="The scanned file: its path as scanned, or its SHA-256."),
    undo: bool = typer.Option(False, "--undo", help="Forget an earlier split: the file goes back to the "
                                                    "recording it was split from and may merge again."),
    archive: Path = ARCHIVE_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Undo a wrong merge: give FILE its own recording (with its own track and tags).

    The split is remembered by the file's SHA-256: no later scan merges it again, even after its
    mtime changed. The recording it left keeps its other files.
    """
    from soundark.catalog.merges import split_file, undo_split

    paths = archive_paths(archive)
    hold_writer_lock(paths.root, load_settings(paths.root))
    with open_catalog(paths.catalog) as catalog:
        result = undo_split(catalog, file) if undo else split_file(catalog, file)
    if as_json:
        emit_json(result.as_dict())
        return
    console(False).print(result.message, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    from soundark.cli.preserve_cmds import catalog_app

    catalog_app.command("merges")(merges_cmd)
    catalog_app.command("split")(split_cmd)
    app.command("init")(init)
    app.command("scan")(scan)
    app.add_typer(import_app, name="import")
    app.command("search")(search_cmd)
    app.command("stats")(stats)
