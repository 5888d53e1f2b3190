"""Commands that keep copies alive: verify, repair, seed, fetch, mirror plan, catalog diff."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from soundark.cli.common import (
    ARCHIVE_ENV,
    ARCHIVE_HELP,
    BarProgress,
    console,
    emit_json,
    err,
    hold_writer_lock,
    load_settings,
    stop_if_signalled,
    writer_root,
)
from soundark.config import ArchivePaths
from soundark.units import format_bytes, parse_bytes, parse_host_port

if TYPE_CHECKING:  # each command imports its stage when it runs (libtorrent, parity): a fast start
    from soundark.preserve.swarm import SwarmConfig
    from soundark.preserve.verify import VerifyReport

ARCHIVE_OPT = typer.Option(Path("."), "--archive", "-a", envvar=ARCHIVE_ENV, show_default=False,
                           show_envvar=False,
                           help=ARCHIVE_HELP + " Its soundark.toml gives the network settings.")
# verify and repair take the path they check as their object; inside an archive, `verify` alone does.
PATH_HELP = " Default: $SOUNDARK_ARCHIVE, else the current folder."
JSON_OPT = typer.Option(False, "--json", help="Print one JSON object on stdout instead of text.")
PEER_OPT = typer.Option(None, "--peer", help="Connect to this peer directly (host:port); repeatable.")

mirror_app = typer.Typer(help="Plan what a mirror should hold.", no_args_is_help=True)
catalog_app = typer.Typer(help="Compare catalog snapshots; list merges of scanned files, split a wrong one.",
                          no_args_is_help=True)


def _print_problems(report: VerifyReport, limit: int = 50) -> None:
    con = console(False)
    for p in report.problems[:limit]:
        con.print(f"  {p.kind:9} {p.path}" + (f"  ({p.detail})" if p.detail else ""), markup=False)
    more = sum(report.more.values())
    if len(report.problems) > limit:
        where = f"the first {len(report.problems)} are in --json" if more else "all are in --json"
        con.print(f"  ... and {len(report.problems) - limit + more} more ({where})", markup=False)


def verify_cmd(
    path: Path = typer.Argument(Path("."), envvar=ARCHIVE_ENV, show_default=False, show_envvar=False,
                                help="An archive, a releases folder, a release folder or a downloaded bag."
                                     + PATH_HELP),
    fast: bool = typer.Option(False, "--fast", help="Check only presence, sizes and Payload-Oxum."),
    torrent: Path | None = typer.Option(None, "--torrent", help="The bag's .torrent, if not found beside it."),
    as_json: bool = JSON_OPT,
) -> None:
    """Check every file against the bag manifest and the torrent's pieces; exit 0 only when intact.

    The first 100,000 findings are listed (--json: "problems"); the rest are counted ("counts",
    "truncated", "not_listed").
    """
    from soundark.preserve.verify import verify_path

    path = path.expanduser().absolute()  # `verify .` names the folder, not an empty name
    with BarProgress(quiet=as_json) as bar:
        report = verify_path(path, fast=fast, progress=bar, torrent=torrent)
    if as_json:
        emit_json(report.as_dict())
    else:
        c = report.counts()
        state = "intact" if report.ok else "DAMAGED"
        console(False).print(
            f"{state}: {len(report.bags)} bag(s), {report.files} files, {format_bytes(report.bytes)} checked "
            f"({', '.join(sorted(set(report.checks)))})"
            + "".join(f"; {n} {k}" for k, n in c.items() if n), markup=False)
        _print_problems(report)
    if not report.ok:
        raise typer.Exit(1)


def repair_cmd(
    path: Path = typer.Argument(Path("."), envvar=ARCHIVE_ENV, show_default=False, show_envvar=False,
                                help="An archive, a releases folder or one bag with its .parity sidecar "
                                     "beside it." + PATH_HELP),
    as_json: bool = JSON_OPT,
) -> None:
    """Restore damaged or missing files byte-exact from parity (no network), then verify again.

    A release inside an archive heals with its store: the store copy of every file
    restored is hard-linked to it again, whether PATH is the archive or that release.
    Paths printed are from the current folder (absolute when outside it).

    One repair at a time: it takes the writer lock of the archive holding PATH (or of
    the folder holding a bag outside any archive), as the other writing commands do.
    """
    from soundark.preserve.repair import repair_path

    path = path.expanduser().absolute()  # `repair .` names the folder, not an empty name
    root = writer_root(path)
    hold_writer_lock(root, load_settings(root))
    with BarProgress(quiet=as_json) as bar:
        report = repair_path(path, progress=bar)
    if as_json:
        emit_json(report.as_dict())
    else:
        con = console(False)
        d = report.as_dict()
        con.print(f"{'repaired' if report.ok else 'NOT fully repaired'}: {d['repaired']} file(s) restored, "
                  f"{d['unrecoverable']} beyond reach", markup=False)
        for b in report.bags:
            _print_bag_repair(con, b)
    if not report.ok:
        raise typer.Exit(1)


def _shown(path: Path) -> str:
    """A file's path as the operator can type it here: from the current folder when below it,
    else absolute (a bag's paths are relative to the bag, the store's to the archive)."""
    here = os.getcwd()
    inside = os.path.commonpath([here, str(path)]) == here
    return os.path.relpath(path, here) if inside else str(path)


def _print_bag_repair(con, b) -> None:
    for what, path, why in b.lines():
        con.print(f"  {what:13} {_shown(path)}" + (f": {why}" if why else ""), markup=False)


def _peers(values: list[str] | None) -> tuple[tuple[str, int], ...]:
    return tuple(parse_host_port(v, "--peer") for v in values or [])


def _swarm_config(archive: Path, listen: str | None, up: int | None, down: int | None) -> SwarmConfig:
    from soundark.preserve.swarm import SwarmConfig

    settings = load_settings(archive, listen_interfaces=listen, upload_rate_limit=up, download_rate_limit=down)
    return SwarmConfig.from_settings(settings)


def seed_cmd(
    releases: list[str] = typer.Argument(
        ..., help="Release names (in ARCHIVE/releases), bag folders or .torrent files."),
    archive: Path = ARCHIVE_OPT,
    listen: str | None = typer.Option(
        None, "--listen", help="host:port to listen on (default: the listen_interfaces setting)."),
    upload_limit: int | None = typer.Option(None, "--upload-limit", help="Bytes/s; 0 is unlimited."),
    duration: float | None = typer.Option(
        None, "--duration", help="Stop after this many seconds (default: until Ctrl-C)."),
    peer: list[str] | None = PEER_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Seed releases over BitTorrent (DHT, LSD, UPnP and NAT-PMP only if the settings enable them).

    All releases share one session. Each is checked first (one at a time), unless resume data
    saved after an earlier check (in .soundark-seed/ beside the bags) shows that none of its
    files changed since. A release that is not complete and intact is left out and named; the
    others seed. Ctrl-C stops seeding and prints what was uploaded, and to how many peers.
    Exit 1 when a release was left out.
    """
    from soundark.preserve.swarm import resolve_release, seed

    cfg = _swarm_config(archive, listen, upload_limit, None)
    pairs = [resolve_release(r, ArchivePaths(Path(archive)).releases) for r in releases]
    con = console(as_json)

    def ready(rep) -> None:
        if cfg.loopback_only:  # said before "seeding": whoever waits for that line has read it too
            err.print(f"note: listening on {cfg.listen_interfaces} only: nobody outside this machine can "
                      "connect. To seed to others, set listen_interfaces = \"0.0.0.0:6881\" in "
                      "soundark.toml, or pass --listen 0.0.0.0:6881", markup=False, highlight=False)
        for r in rep.refused[:20]:
            err.print(f"note: not seeded: {r['reason']}", markup=False, highlight=False)
        if len(rep.refused) > 20:
            err.print(f"note: ... and {len(rep.refused) - 20} more not seeded (all are in --json)", markup=False)
        con.print(f"seeding {len(rep.torrents)} release(s) on port {rep.listen_port} "
                  f"({rep.count('resumed')} from resume data, {rep.count('checked')} checked); Ctrl-C stops",
                  markup=False)

    with BarProgress(quiet=as_json) as bar:
        report = seed(pairs, cfg, duration=duration, peers=_peers(peer), progress=bar, on_ready=ready)
    if as_json:
        emit_json(report.as_dict())
    else:
        how = "stopped" if report.interrupted else "done"
        con.print(f"{how} after {report.seconds:,.0f} s: uploaded {report.uploaded:,} bytes to "
                  f"{report.peers_served} peer(s)", markup=False)
        for t in report.torrents:
            if t["uploaded"] or len(report.torrents) <= 20:  # 1,000 idle releases need no line each
                con.print(f"  {t['name']}: uploaded {t['uploaded']:,} bytes to {t['peers_served']} peer(s)",
                          markup=False)
        if report.refused:
            con.print(f"{len(report.refused)} release(s) not seeded", markup=False)
    stop_if_signalled()
    if report.refused:
        raise typer.Exit(1)


def fetch_cmd(
    source: str = typer.Argument(..., help="A .torrent file or a magnet link."),
    to: Path = typer.Option(..., "--to", help="Folder to download into (the release lands in TO/NAME/)."),
    archive: Path = ARCHIVE_OPT,
    listen: str | None = typer.Option(None, "--listen", help="host:port to listen on."),
    download_limit: int | None = typer.Option(None, "--download-limit", help="Bytes/s; 0 is unlimited."),
    peer: list[str] | None = PEER_OPT,
    timeout: float = typer.Option(120.0, "--timeout", help="Give up after this many seconds without progress."),
    as_json: bool = JSON_OPT,
) -> None:
    """Download a release (resuming what is already there), then verify it."""
    from soundark.preserve.swarm import FetchRequest, fetch
    from soundark.preserve.verify import verify_path

    cfg = _swarm_config(archive, listen, None, download_limit)
    with BarProgress(quiet=as_json) as bar:
        got = fetch(FetchRequest(source, to, _peers(peer), timeout), cfg, progress=bar)
        report = verify_path(Path(got.folder), progress=bar, torrent=Path(got.torrent)) if got.complete else None
    ok = got.complete and report is not None and report.ok
    if as_json:
        emit_json({**got.as_dict(), "ok": ok, "verify": report.as_dict() if report else None})
    else:
        con = console(False)
        if not got.complete:
            con.print(f"incomplete: {got.name}: {got.reason}", markup=False)
        else:
            con.print(f"{'fetched and verified' if ok else 'fetched but DAMAGED'}: {got.folder} "
                      f"({got.bytes_downloaded:,} bytes downloaded, {got.bytes_already_had:,} already there)",
                      markup=False)
            if report and not report.ok:
                _print_problems(report)
    if not ok:
        raise typer.Exit(1)


def mirror_plan_cmd(
    budget: str = typer.Option(..., "--budget", help="Space the mirror has, e.g. 2TB, 500GB, 4TiB."),
    torrents: Path | None = typer.Option(
        None, "--torrents", help="Release list (default: ARCHIVE/releases/torrents.json)."),
    seeders: Path | None = typer.Option(None, "--seeders",
                                           help="Seeders per release: a JSON object mapping release name or "
                                                "infohash to a count, or lines 'name,n'."),
    magnets: Path | None = typer.Option(None, "--magnets",
                                           help="Also write the chosen magnet links to this file, one a line."),
    archive: Path = ARCHIVE_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Choose the releases that preserve the most listens at risk within a budget."""
    from soundark.fixity.releases import release_list_path
    from soundark.preserve.mirror import load_releases, load_seeders, plan_mirror

    source = torrents or release_list_path(ArchivePaths(Path(archive)).releases)
    plan = plan_mirror(load_releases(source), parse_bytes(budget, "--budget"),
                       load_seeders(seeders) if seeders else None)
    if magnets is not None:
        magnets.write_text(plan.magnets(), encoding="utf-8")
    if as_json:
        emit_json({**plan.as_dict(), "magnets_file": str(magnets) if magnets else None})
        return

    table = Table(title=f"mirror plan: {format_bytes(plan.bytes)} of {format_bytes(plan.budget)}", title_justify="left")
    for col in ("release", "phase", "size", "listens %", "seeders", "at risk %"):
        table.add_column(col, justify="left" if col in ("release", "phase") else "right")
    for c in plan.chosen:
        table.add_row(c.name, c.phase, format_bytes(c.bytes), f"{100 * c.listens_share:.2f}",
                      str(c.seeders), f"{100 * c.at_risk:.2f}")
    con = console(False)
    con.print(table)
    where = f"magnet links in {magnets}" if magnets else "--magnets FILE writes their magnet links"
    con.print(f"{len(plan.chosen)} release(s) chosen, {plan.left_out} left out; {where}", markup=False)


def catalog_diff_cmd(
    old: Path = typer.Argument(..., help="The older catalog: a catalog.sqlite3, a metadata release's "
                                         "catalog.sqlite3.zst, the release folder itself, or an archive."),
    new: Path = typer.Argument(..., help="The newer catalog, in any of the same forms."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Also write every change to this CSV file."),
    limit: int = typer.Option(30, "--limit", "-n", help="Rows in the table (all go to --csv and --json)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Recordings that vanished, appeared or changed (title, ISRC, duration), by listens.

    A file inside a release is checked against its manifest first; a snapshot from elsewhere
    is opened read-only and refused if its schema holds views or triggers soundark never makes.
    """
    from soundark.preserve.diff import diff_catalogs

    diff = diff_catalogs(old, new)
    if csv_out:
        csv_out.write_text(diff.to_csv(), encoding="utf-8")
    if as_json:
        emit_json(diff.as_dict())
        return
    c = diff.counts()
    table = Table(title=f"{c['vanished']} vanished, {c['changed']} changed, {c['appeared']} appeared",
                  title_justify="left")
    for col in ("kind", "key", "title", "artist", "listens", "what changed"):
        table.add_column(col, overflow="fold")
    for ch in diff.changes[:limit]:
        what = ", ".join(f"{f}: {o} -> {n}" for f, o, n in zip(ch.fields, ch.old, ch.new))
        table.add_row(ch.kind, ch.key, ch.title, ch.artist, "" if ch.listens is None else f"{ch.listens:,}", what)
    console(False).print(table)


def register(app: typer.Typer) -> None:
    app.command("verify")(verify_cmd)
    app.command("repair")(repair_cmd)
    app.command("seed")(seed_cmd)
    app.command("fetch")(fetch_cmd)
    mirror_app.command("plan")(mirror_plan_cmd)
    app.add_typer(mirror_app, name="mirror")
    catalog_app.command("diff")(catalog_diff_cmd)
    app.add_typer(catalog_app, name="catalog")
