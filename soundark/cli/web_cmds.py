"""`soundark serve`: the web face of an archive (search, recordings, coverage, releases, JSON API)."""

from __future__ import annotations

from pathlib import Path

import typer

from soundark.cli.common import ARCHIVE_OPT, archive_paths, console, emit_json, err, load_settings
from soundark.web.server import plan_serve, run_web


def serve(
    old_archive: Path | None = typer.Argument(None, hidden=True, metavar="ARCHIVE",
                                                 help="Deprecated: the archive folder; use -a."),
    archive: Path = ARCHIVE_OPT,
    host: str | None = typer.Option(None, "--host",
                                       help="Address to bind (default: the archive's `host` setting, "
                                            "127.0.0.1). Anything but loopback is reachable by others."),
    port: int | None = typer.Option(None, "--port", help="TCP port (default: the `port` setting, 8080)."),
    workers: int = typer.Option(0, "--workers", help="Server processes; 0 means one per core (at most 4)."),
    as_json: bool = typer.Option(False, "--json",
                                 help="Print where it serves as one JSON object on stdout, then serve."),
) -> None:
    """Serve the archive on the web: search, recording pages with a player, coverage, releases and a
    JSON API (/api/..., OpenAPI at /openapi.json, docs at /docs). Read-only. Stop with Ctrl-C."""
    if old_archive is not None:  # `soundark serve ARCHIVE`, the form before -a: still served
        err.print(f"note: `soundark serve {old_archive}` is deprecated: use `soundark serve -a {old_archive}`",
                  markup=False, highlight=False, soft_wrap=True)
        archive = old_archive
    paths = archive_paths(archive)
    settings = load_settings(paths.root, host=host, port=port)
    plan = plan_serve(paths, settings, workers)
    if as_json:
        emit_json(plan.as_dict())
    else:
        console(False).print(f"serving {paths.root} at {plan.url} ({plan.workers} worker(s); Ctrl-C stops)",
                             markup=False)
    if plan.public:
        err.print(f"warning: bound to {plan.host}: other machines can reach this server", markup=False)
    n = plan.workers
    run_web(paths, settings, workers=n,
            on_ready=lambda: err.print(f"ready: {n} worker{'s' if n > 1 else ''} accepting", markup=False))
    console(as_json).print("stopped", markup=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
