"""`soundark doctor`: check the catalog's integrity and the archive folder against it (read only)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from soundark.catalog.doctor import DoctorReport, examine
from soundark.cli.common import ARCHIVE_OPT, JSON_OPT, archive_paths, console, emit_json
from soundark.errors import NotFound

_KIND_TITLES = {
    "truncated": "catalog file truncated", "missing-file": "missing from the store",
    "unknown-file": "in the store, not in the catalog", "stuck-job": "encode jobs past their lease",
    "leftover": "leftovers of stopped runs",
}


def doctor(archive: Path = ARCHIVE_OPT, as_json: bool = JSON_OPT) -> None:
    """Check the catalog (SQLite integrity_check, every table read through) and the archive folder
    against it: store files missing or unknown, encode jobs stuck running, leftovers of stopped
    runs. When the catalog is damaged, names the tables that lost rows and says how to restore it
    from the newest metadata release. Reads only; works on read-only media. Exit 1 when anything
    is wrong."""
    paths = archive_paths(archive, must_exist=False)
    if not paths.catalog.exists() and not paths.settings.exists():
        raise NotFound(paths.root, "not a soundark archive (no catalog.sqlite3, no soundark.toml)")
    report = examine(paths.root)
    if as_json:
        data = asdict(report)
        data["ok"], data["catalog_ok"] = report.ok, report.catalog_ok
        emit_json(data)
    else:
        _print(report)
    if not report.ok:
        raise typer.Exit(1)


def _print(report: DoctorReport) -> None:
    con = console(False)
    say = lambda text: con.print(text, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    if report.catalog_ok:
        say(f"catalog {report.catalog}: integrity ok ({len(report.tables)} tables, "
            f"{sum(n or 0 for n in report.tables.values()):,} rows)")
    else:
        say(f"catalog {report.catalog}: DAMAGED")
        if not report.tables:
            say("  no table can be read: the whole catalog must be restored")
        for line in report.integrity[:10]:
            say(f"  sqlite: {line}")
        if len(report.integrity) > 10:
            say(f"  ... and {len(report.integrity) - 10} more messages (all are in --json)")
        for name in report.damaged_tables:
            rows = report.tables.get(name)
            readable = "no row readable" if rows is None else f"{rows:,} rows readable"
            say(f"  damaged table {name}: {readable}; its other rows are lost from this file")
    for kind, count in report.counts.items():
        say(f"{_KIND_TITLES.get(kind, kind)}: {count}")
        for f in (f for f in report.findings if f.kind == kind):
            say(f"  {f.subject}" + (f"  ({f.detail})" if f.detail else ""))
        shown = sum(1 for f in report.findings if f.kind == kind)
        if count > shown:
            say(f"  ... and {count - shown} more")
    if report.restore_steps:
        source = report.restore_from or "no metadata release in this archive"
        say(f"restore from the last metadata release ({source}):")
        for step in report.restore_steps:
            say(f"  {step}")
    if report.ok:
        say("nothing wrong found")


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
