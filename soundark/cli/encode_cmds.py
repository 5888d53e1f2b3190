"""`soundark encode`: planned recordings -> Ogg Opus or kept originals in the store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from soundark.cli.common import (
    ARCHIVE_OPT,
    JSON_OPT,
    BarProgress,
    archive_paths,
    console,
    emit_json,
    err,
    load_settings,
)
from soundark.units import format_bytes

if TYPE_CHECKING:  # the stage (PyAV, numpy) is imported when the command runs: a fast start for the rest
    from soundark.encode.stage import EncodeResult


def encode(
    archive: Path = ARCHIVE_OPT,
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Put failed jobs back in the queue first."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be encoded or kept; change nothing."),
    limit: int | None = typer.Option(None, "--limit", "-n", min=0,
                                        help="Encode at most this many recordings in this run."),
    workers: int | None = typer.Option(None, "--workers", "-j", min=0,
                                          help="Parallel workers; 0 = one per core (setting: workers)."),
    executor: str | None = typer.Option(None, "--executor",
                                           help="local (process pool) or ray (setting: executor)."),
    address: str | None = typer.Option(None, "--address",
                                          help="Ray cluster address (head:port) for --executor ray; empty "
                                               "starts a private local Ray (setting: ray_address). How "
                                               "nodes reach the files: setting ray_storage; see "
                                               "docs/cluster.md."),
    as_json: bool = JSON_OPT,
) -> None:
    """Encode every planned recording to Ogg Opus (or keep its original), checked, into the store.

    Resumable: a killed run loses at most the files in flight and the next run
    finishes the rest; two runs on one archive never encode the same recording.
    SIGTERM or Ctrl-C puts the jobs in flight back, prints the summary and exits 143/130.
    On a Ray cluster a task lost with its node is sent again (counted as a retry), and
    the summary says how many files each node did.
    A stored output missing from the store (deleted on repair's advice) is encoded again.
    """
    from soundark.encode.stage import EncodeOptions, run_encode

    paths = archive_paths(archive)
    settings = load_settings(paths.root)
    options = EncodeOptions(retry_failed=retry_failed, dry_run=dry_run, limit=limit, workers=workers,
                            executor=executor, ray_address=address)
    with BarProgress(quiet=as_json or dry_run) as progress:
        result = run_encode(paths, settings, progress, options=options)
    if as_json:
        emit_json(result.as_dict())
    elif dry_run:
        _print_dry_run(result)
    else:
        _print_summary(result)
    if result.interrupted:  # the summary is out: now exit as the boundary does (130, 143)
        raise KeyboardInterrupt
    if result.stopped:
        err.print(f"error: stopped early, {result.stopped}; unfinished jobs stay pending: "
                  "fix it and run `soundark encode` again", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if result.failed:  # the batch went on; the operator still has to act on each failure
        err.print(f"error: {result.failed} recording(s) failed (reasons above, or in --json); fix them, "
                  "then `soundark encode --retry-failed`", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _print_dry_run(result: EncodeResult) -> None:
    con = console(False)
    items = result.would_encode
    if result.sync.get("missing"):
        con.print(f"{result.sync['missing']} stored output(s) are missing from the store: "
                  "they would be encoded again", markup=False)
    if not items:
        con.print("nothing to encode: every planned recording is stored (or none is planned: "
                  "run `soundark plan`)", markup=False)
        return
    con.print(f"would encode or keep {len(items)} recording(s), in plan rank order:", markup=False)
    for job in items[:50]:
        action = "keep" if job["tier"] == "original" else "encode"
        con.print(f"  #{job['rank']:<6} {action:6} {job['tier']:8} {job['path']}", markup=False)
    if len(items) > 50:
        con.print(f"  ... and {len(items) - 50} more (--json lists all)", markup=False)


def _print_summary(result: EncodeResult) -> None:
    con = console(False)
    ran = f" in {result.seconds:,.1f} s with {result.executor}" if result.executor else ""
    if result.sync.get("missing"):
        con.print(f"{result.sync['missing']} stored output(s) were missing from the store: "
                  "their recordings are encoded again", markup=False)
    con.print(f"encoded {result.encoded}, kept {result.kept} original(s), failed {result.failed}"
              f"{ran}", markup=False)
    if result.encoded or result.kept:
        ratio = f" (ratio {result.ratio:,.1f}x)" if result.ratio else ""
        con.print(f"audio {result.audio_seconds / 3600:,.2f} h; bytes in {format_bytes(result.bytes_in)}, "
                  f"out {format_bytes(result.bytes_out)}{ratio}; already stored {result.deduplicated}; "
                  f"new covers {result.art_stored}", markup=False)
    if result.seconds and (result.encoded or result.kept):
        done = result.encoded + result.kept + result.failed
        con.print(f"speed {done / result.seconds:,.2f} files/s, "
                  f"{result.audio_seconds / 3600 / result.seconds:,.4f} audio-h/s", markup=False)
    if result.executor.startswith("ray"):
        per_node = ", ".join(f"{node} {n}" for node, n in sorted(result.nodes.items()))
        con.print(f"files per node: {per_node or 'none'}; retries after lost tasks {result.retries}; "
                  f"shipped {result.shipped}", markup=False, soft_wrap=True)
    for f in result.failures[:20]:
        con.print(f"  failed {f.path or f.recording_id}: {f.reason}", markup=False, soft_wrap=True)
    if result.failed > 20:
        con.print(f"  ... and {result.failed - 20} more (all reasons: --json, or the catalog's "
                  "encode_job.error)", markup=False)
    tail = f"; {result.remaining} still pending" if result.remaining else ""
    hint = " (re-run with --retry-failed to try the failed ones again)" if result.failed else ""
    con.print(f"output in {result.store}{tail}{hint}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("encode")(encode)
