"""Run the web app under uvicorn (ASGI); the CLI's `soundark serve` calls :func:`run_web`.

Several worker processes serve one archive (each with its own read-only catalog
connections), so searches use every core; on Linux each has a listening socket of its own
(soundark.web.workers), elsewhere uvicorn's multi-process mode starts them. Workers build the
app from an import string, hence the archive travels in an environment variable.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundark.config import ArchivePaths, Settings, cpu_count
from soundark.errors import BadInput, EnvironmentProblem
from soundark.model import NO_PROGRESS, Progress
from soundark.web import workers as workers_mod

ARCHIVE_ENV = "SOUNDARK_WEB_ARCHIVE"
SEARCH_CACHE_ENV = "SOUNDARK_WEB_SEARCH_CACHE"  # recent search pages kept per process (benchmarks set 0)
POSTINGS_ENV = "SOUNDARK_WEB_POSTINGS_MB"  # common words' stored ids kept per process, in MB (0: none)
PAGE_CACHE_ENV = "SOUNDARK_WEB_PAGE_CACHE_MB"  # SQLite's page cache per catalog connection, in MB
MAX_WORKERS = 8


@dataclass(frozen=True)
class ServeResult:
    url: str
    host: str
    port: int
    workers: int
    public: bool  # bound to an address other machines can reach

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve_command(paths: ArchivePaths, settings: Settings) -> str:
    """The command that serves *paths* (the demo prints it), as it works in the shell that ran us."""
    cmd = f"{soundark_program()} serve -a {shlex.quote(str(paths.root))}"
    if settings.host != "127.0.0.1":
        cmd += f" --host {settings.host}"
    if settings.port != 8080:
        cmd += f" --port {settings.port}"
    return cmd


def soundark_program() -> str:
    """How to call soundark here: plain ``soundark`` when that name finds this installation, else
    the full path of this environment's script (a venv not activated), else ``python -m soundark``."""
    here = Path(sys.executable).parent / "soundark"
    found = shutil.which("soundark")
    if found and (not here.is_file() or Path(found).resolve() == here.resolve()):
        return "soundark"
    if here.is_file() and os.access(here, os.X_OK):
        return shlex.quote(str(here.absolute()))
    return f"{shlex.quote(sys.executable)} -m soundark"


def app_from_env() -> Any:
    """uvicorn factory for worker processes: the app over $SOUNDARK_WEB_ARCHIVE."""
    from soundark.catalog.postings import POSTINGS_BYTES
    from soundark.web.app import create_app
    from soundark.web.queries import PAGE_CACHE_BYTES, SEARCH_CACHE_SIZE

    cache = os.environ.get(SEARCH_CACHE_ENV, "")
    postings = os.environ.get(POSTINGS_ENV, "")
    pages = os.environ.get(PAGE_CACHE_ENV, "")
    return create_app(Path(os.environ[ARCHIVE_ENV]),
                      search_cache=int(cache) if cache.isdigit() else SEARCH_CACHE_SIZE,
                      postings_bytes=int(postings) << 20 if postings.isdigit() else POSTINGS_BYTES,
                      page_cache_bytes=int(pages) << 20 if pages.isdigit() and int(pages) else PAGE_CACHE_BYTES)


def plan_serve(paths: ArchivePaths, settings: Settings, workers: int = 0) -> ServeResult:
    """Check the address and choose the worker count, without starting anything."""
    if not 0 <= settings.port <= 65535:
        raise BadInput("port", f"{settings.port} is not a TCP port")
    if workers < 0 or workers > MAX_WORKERS:
        raise BadInput("workers", f"must be between 0 and {MAX_WORKERS}")
    count = workers or min(cpu_count(), 4)
    return ServeResult(url_of(settings.host, settings.port), settings.host, settings.port, count,
                       not is_loopback(settings.host))


def _check_free(host: str, port: int) -> None:
    """A clear error now rather than uvicorn's log line after the workers started."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as e:
        raise EnvironmentProblem(f"{host}:{port}", f"cannot listen here: {e.strerror or e}") from e


def _ignore(signum: int, frame: object) -> None:
    return None


def run_web(paths: ArchivePaths, settings: Settings, progress: Progress = NO_PROGRESS, *,
            workers: int = 0, log_level: str = "warning",
            on_ready: Callable[[], None] | None = None) -> ServeResult:
    """Serve the archive until interrupted (Ctrl-C); returns what was served. *on_ready* is called
    once every worker accepts (not in uvicorn's own multi-process mode, used where
    :func:`workers_mod.balanced` is False)."""
    import uvicorn

    from soundark.web.queries import ArchiveReader

    plan = plan_serve(paths, settings, workers)
    ArchiveReader(paths.root).close()  # fail here, in the parent, if the archive cannot be read
    _check_free(plan.host, plan.port)
    os.environ[ARCHIVE_ENV] = str(paths.root)
    progress.note(f"serving {paths.root} at {plan.url}")
    # http=: a request head over 64 KiB is answered 431, not accumulated (soundark.web.headcap)
    config: dict[str, Any] = dict(app="soundark.web.server:app_from_env", factory=True, log_level=log_level,
                                  access_log=False, server_header=False, timeout_graceful_shutdown=3,
                                  proxy_headers=False, http="soundark.web.headcap:CappedHttpTools")
    if plan.workers > 1 and workers_mod.balanced():
        # one listening socket, each worker accepting only while it is the least loaded
        try:
            sock = workers_mod.bind_socket(plan.host, plan.port)
        except OSError as e:
            raise EnvironmentProblem(f"{plan.host}:{plan.port}", f"cannot listen here: {e.strerror or e}") from e
        if workers_mod.Workers(config, sock, plan.workers, on_ready).run():
            raise EnvironmentProblem(str(paths.root), "the server processes could not start (their log is above)")
        return plan
    if plan.workers > 1:  # where the balanced workers cannot run (Windows): uvicorn's own
        uvicorn.run(host=plan.host, port=plan.port, workers=plan.workers, **config)
        return plan
    server = uvicorn.Server(uvicorn.Config(host=plan.host, port=plan.port, **config))
    if on_ready is not None:
        workers_mod.call_when_started(server, on_ready)
    # Ctrl-C and SIGTERM are how a server stops, not an interruption: uvicorn shuts down gracefully,
    # then raises the signal it caught again, which meets a handler that does nothing and the command
    # ends as with several workers ("stopped", exit 0), not as an interrupted stage (130, 143)
    main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, _ignore) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        server.run()
    except KeyboardInterrupt:  # as uvicorn.run
        pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if not server.started and not server.should_exit:  # the app could not load, the port was taken, ...
        raise EnvironmentProblem(str(paths.root), "the server could not start (its log is above)")
    return plan
