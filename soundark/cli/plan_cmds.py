"""Commands of the plan stage: plan (choose tiers under a budget) and report (coverage)."""

from __future__ import annotations

from pathlib import Path

import typer

from soundark.cli.common import (
    ARCHIVE_OPT,
    JSON_OPT,
    BarProgress,
    archive_paths,
    console,
    emit_json,
    hold_writer_lock,
    load_settings,
)
from soundark.units import format_bytes


def plan(
    archive: Path = ARCHIVE_OPT,
    budget: str | None = typer.Option(
        None, "--budget", "-b",
        help="Byte budget: 500GB, 4TB, 4TiB, '4 TB', 1.5PB or plain bytes; 'none' keeps everything "
             "(default: the archive's `budget` setting)."),
    tiers: str | None = typer.Option(
        None, "--tiers", help="Tiers the plan may choose, comma separated: original,opus75 "
                              "(default: the archive's `tiers` setting)."),
    policy: str | None = typer.Option(
        None, "--policy", help="value (most listens x worth per byte, the default) or popular-originals "
                               "(the top --original-top of listens keep their original) "
                               "(default: the archive's `plan_policy` setting)."),
    original_top: str | None = typer.Option(
        None, "--original-top", help="For --policy popular-originals: the share of listens whose "
                                     "recordings keep their original, e.g. 50% or 0.5."),
    opus_value: float | None = typer.Option(
        None, "--opus-value", help="Worth of a listen kept as opus75 relative to the original, "
                                   "0 < v <= 1 (default: `opus_listen_value`, 0.9)."),
    check: bool = typer.Option(
        False, "--check", help="Change nothing: say how far the archive (real sizes where encoded, "
                               "released bytes) is from the budget; exit 1 when over it."),
    as_json: bool = JSON_OPT,
) -> None:
    """Choose a tier (original, opus75 or skip) for every recording under a byte budget.

    A listen kept as opus75 is worth `opus_listen_value` (0.9) of one kept as the
    original; the plan buys keeps and upgrades by value per byte until the budget
    is spent, so a generous budget keeps the most-listened lossy sources (at or
    under `original_max_bitrate`) as they are and re-encodes the tail. Without
    listen counts it falls back to popularity, then album and artist signals,
    and says so. After encode, real sizes replace estimates and released
    recordings count as spent. Re-running is cheap: only changed plan rows are
    written, encoded files are never deleted, and recordings whose tier changed
    are re-encoded by the next `soundark encode`.
    """
    from soundark.plan.budget import parse_budget, parse_policy, parse_share, parse_tiers
    from soundark.plan.stage import run_check, run_plan

    paths = archive_paths(archive)
    overrides: dict[str, object] = {}
    if budget is not None:
        # a bad budget fails here, before the catalog is opened
        overrides["budget"] = "" if parse_budget(budget) is None else budget
    if tiers is not None:
        overrides["tiers"] = parse_tiers(tiers)
    if policy is not None:
        overrides["plan_policy"] = parse_policy(policy)
    if original_top is not None:
        overrides["original_top"] = parse_share(original_top)
    if opus_value is not None:
        overrides["opus_listen_value"] = opus_value
    settings = load_settings(paths.root, **overrides)
    if check:
        _check(run_check(paths, settings), as_json)
        return
    hold_writer_lock(paths.root, settings)
    with BarProgress(quiet=as_json) as progress:
        result = run_plan(paths, settings, progress)
    if as_json:
        emit_json(result.as_dict())
        return
    _summary(result, archive)


def _check(result, as_json: bool) -> None:
    from soundark.plan.report import check_line

    if as_json:
        emit_json(result.as_dict())
    else:
        console(False).print(check_line(result.as_dict()), markup=False)
    if not result.fits:
        raise typer.Exit(1)


def _summary(result, archive: Path) -> None:
    from soundark.plan.signals import NO_SIGNAL

    mode = result.signal.get("mode", "full")
    t = result.by_tier
    spent = format_bytes(result.bytes)
    limit = f" of a {format_bytes(result.budget)} budget" if result.budget is not None else " (no budget)"
    con = console(False)
    kept = (f"{result.hours_kept:,.1f} of {result.hours_total:,.1f} hours kept" if mode == "none" else
            f"{100 * result.share_covered:.1f} % of listens covered "
            f"({100 * result.share_value:.1f} % of value)")
    con.print(f"planned {result.recordings:,} recordings: {t['original']['recordings']:,} "
              f"original, {t['opus75']['recordings']:,} opus75, {t['skip']['recordings']:,} skipped; "
              f"{spent}{limit}; {kept}; policy {result.policy}", markup=False)
    if mode == "none":
        con.print(NO_SIGNAL, markup=False)
    elif mode == "partial":
        c = result.signal["counts"]
        con.print(f"partial listen data: {c['listens'] + c['popularity']:,} of {result.recordings:,} recordings "
                  f"have listens or popularity; {c['album']:,} weighted by album, {c['artist']:,} by artist, "
                  f"{c['none']:,} with none", markup=False)
    if result.bytes_released:
        con.print(f"{format_bytes(result.bytes_released)} already released: counted as spent", markup=False)
    missing = t["original"].get("without_audio", 0) + t["opus75"].get("without_audio", 0)
    if missing:
        con.print(f"{missing:,} kept recordings have no audio yet (planned from their duration)",
                  markup=False)
    con.print(f"{result.changed:,} plan rows written, {result.tier_changes:,} tier changes "
              f"(the next `soundark encode` picks them up); see `soundark report -a {archive}`",
              markup=False)


def report(
    archive: Path = ARCHIVE_OPT,
    out: Path | None = typer.Option(None, "--out", "-o",
                                       help="Folder for coverage.png and coverage.html "
                                            "(default: ARCHIVE/reports)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Coverage of the latest plan: listens vs bytes and vs recordings, tiers, budget line.

    Prints the figures, and writes coverage.png and a standalone coverage.html.
    """
    from soundark.plan.report import run_report

    paths = archive_paths(archive)
    settings = load_settings(paths.root)
    result = run_report(paths, settings, out)
    if as_json:
        emit_json(result.as_dict())
        return
    con = console(False)
    con.print(result.text, markup=False, highlight=False)
    con.print(f"\nwrote {result.png} and {result.html}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("report")(report)
