"""The command line: a thin Typer face over the stage functions.

One error boundary (:func:`main`): a :class:`~soundark.errors.SoundarkError`
prints ``error: <subject>: <reason>`` on one line and exits 1; the traceback is
shown only with ``--debug``. Each stage's commands live in their own module
here and register themselves on :data:`app`.

Ctrl-C (SIGINT) and SIGTERM (what a service manager or a cluster scheduler sends)
take the same path: the first one raises ``KeyboardInterrupt`` in the running
stage, which finishes or gives back the work in flight, and the process exits
128 + the signal number (130, 143) after one line (and a long command's summary).
A second one ends the process at once with the same code: what is already
committed (the catalog's transactions, renames into the store and releases) stays;
what was in flight is left as a killed run leaves it, for the next run to take
back. docs/reliability.md.

``--debug`` works before or after the subcommand; help texts name values in plain
words (no Python types, no braces): :func:`plain_help`.
"""

from __future__ import annotations

import errno
import importlib
import os
import signal
import sys
import threading
import traceback

import typer

from soundark import __version__
from soundark.cli.common import STATE, err, release_writer_locks
from soundark.cli.helptext import plain_help
from soundark.errors import SoundarkError

app = typer.Typer(
    name="soundark",
    help="Build, publish and mirror music preservation archives.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Each module defines register(app). Listed here, in the order `--help` shows them.
COMMAND_MODULES = (
    "soundark.cli.catalog_cmds",
    "soundark.cli.plan_cmds",
    "soundark.cli.encode_cmds",
    "soundark.cli.release_cmds",
    "soundark.cli.preserve_cmds",
    "soundark.cli.web_cmds",
    "soundark.cli.pipeline_cmds",
    "soundark.cli.doctor_cmds",
)


def _version(value: bool) -> None:
    if value:
        print(f"soundark {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    STATE.debug = debug


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # a stage whose commands are not written yet
                continue
            raise
        module.register(app)


_register()


def _on_signal(signum: int, frame: object) -> None:
    if STATE.signal:  # a second press: the user wants out now, not after the clean-up
        os.write(2, f"error: {_stopped_by(STATE.signal)} again: stopped at once; "
                    "run the command again to continue\n".encode())
        os._exit(128 + STATE.signal)  # the kernel drops the writer lock; SQLite rolls back
    STATE.signal = signum
    raise KeyboardInterrupt


def _install_signal_handlers() -> None:
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _on_signal)


def _hoist_debug(args: list[str]) -> list[str]:
    """``--debug`` anywhere before a ``--`` means the root's ``--debug``."""
    end = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:end]:
        return args
    return ["--debug", *[a for a in args[:end] if a != "--debug"], *args[end:]]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `soundark` console script: the one error boundary."""
    argv = _hoist_debug(list(argv if argv is not None else sys.argv[1:]))
    STATE.debug = argv[:1] == ["--debug"]
    STATE.signal = 0
    _install_signal_handlers()
    try:
        _run(argv)
    finally:
        release_writer_locks()


def _run(argv: list[str] | None) -> None:
    """Run the app; every outcome becomes one line and an exit code (SystemExit)."""
    try:
        code = plain_help(typer.main.get_command(app)).main(args=argv, prog_name="soundark",
                                                             standalone_mode=False)
        if STATE.signal:  # Typer turns KeyboardInterrupt into a bare return code 130
            _interrupted()
        if isinstance(code, int) and code:  # click returns typer.Exit(n)'s code when not standalone
            sys.exit(code)
    except SoundarkError as e:
        _fail(str(e), 1)
    except KeyboardInterrupt:
        _interrupted()
    except typer.Abort as e:
        if isinstance(e.__cause__, KeyboardInterrupt):  # click turns an interrupt into Abort
            _interrupted()
        _fail("aborted", 1)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except SystemExit:
        raise
    except Exception as e:  # click usage errors and genuine bugs
        # Typer may vendor its own click: recognise usage errors by class name, not identity
        if any(cls.__name__ == "ClickException" for cls in type(e).__mro__):
            e.show()  # type: ignore[attr-defined]
            sys.exit(e.exit_code)  # type: ignore[attr-defined]
        if isinstance(e, OSError):
            subject = getattr(e, "filename", None) or "system"
            if e.errno in (errno.ENOSPC, errno.EDQUOT):  # met outside a stage's own conversion
                _fail(f"{subject}: disk full: free space and re-run", 1)
            _fail(f"{subject}: {e.strerror or e}", 1)
        _fail(f"internal error: {type(e).__name__}: {e} (re-run with --debug for the traceback)", 1)
    sys.exit(0)


def _stopped_by(signum: int) -> str:
    return "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"


def _interrupted() -> None:
    signum = STATE.signal or signal.SIGINT
    _fail(f"{_stopped_by(signum)}: work in flight was finished or put back, nothing half-written was "
          "kept; run the command again to continue", 128 + signum)


def _fail(message: str, code: int) -> None:
    if STATE.debug:
        traceback.print_exc()
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)
