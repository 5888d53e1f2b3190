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
    as_json: bool = JSON_OPT,
) -> None:
    """Choose a tier (original, opus75 or skip) for every recording under a byte budget.

    Recordings are bought by listens per byte until the budget is spent; what is
    left upgrades the most listened to `original` (lossy sources at or under
    `original_max_bitrate`, 192 kbit/s by default, kept as they are). Re-running
    is cheap: only changed plan rows are written, encoded files are never deleted,
    and recordings whose tier changed are re-encoded by the next `soundark encode`.
    """
    from soundark.plan.budget import parse_budget, parse_tiers
    from soundark.plan.stage import run_plan

    paths = archive_paths(archive)
    overrides = {}
    if budget is not None:
        # a bad budget fails here, before the catalog is opened
        overrides["budget"] = "" if parse_budget(budget) is None else budget
    if tiers is not None:
        overrides["tiers"] = parse_tiers(tiers)
    settings = load_settings(paths.root, **overrides)
    hold_writer_lock(paths.root, settings)
    with BarProgress(quiet=as_json) as progress:
        result = run_plan(paths, settings, progress)
    if as_json:
        emit_json(result.as_dict())
        return
    t = result.by_tier
    spent = format_bytes(result.bytes)
    limit = f" of a {format_bytes(result.budget)} budget" if result.budget is not None else " (no budget)"
    con = console(False)
    con.print(f"planned {result.recordings:,} recordings: {t['original']['recordings']:,} original, "
              f"{t['opus75']['recordings']:,} opus75, {t['skip']['recordings']:,} skipped; "
              f"{spent}{limit}; {100 * result.share_covered:.1f} % of listens covered", markup=False)
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
