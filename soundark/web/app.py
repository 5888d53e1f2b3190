"""The web face of an archive: FastAPI app, HTML pages and a JSON API (docs/web.md).

:func:`create_app` builds the app for one archive folder. It only reads: the
catalog is opened read-only, audio and art are served by content hash from the
store (RFC 9110 range requests, immutable caching), and every error a client
sees has one JSON shape, ``{"error": {"code": ..., "message": ...}}`` (pages
asked for by a browser get the same message as an HTML page). No stack trace
ever reaches a client: unexpected errors are logged here and answered 500.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from soundark import __version__
from soundark.catalog.postings import POSTINGS_BYTES
from soundark.errors import BadInput, Conflict, EnvironmentProblem, NotFound, QueryInterrupted, SoundarkError
from soundark.fixity.regular import read_regular
from soundark.web import api, pages
from soundark.web.queries import MAX_PAGE, MAX_PAGE_SIZE, PAGE_CACHE_BYTES, SEARCH_CACHE_SIZE, ArchiveReader
from soundark.web.ranges import IMMUTABLE, RangeNotSatisfiable, file_response

log = logging.getLogger("soundark.web")

LISTED_FILE_LIMIT = 64 << 20  # a .torrent or torrents.json larger than this is not one soundark wrote

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
                 413: "too_large", 414: "uri_too_long", 416: "range_not_satisfiable",
                 422: "invalid_request", 429: "too_many_requests", 500: "internal",
                 503: "unavailable"}

# The API docs page (/docs) loads Swagger UI from a CDN, so it alone gets no CSP.
_CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self'; script-src 'self'; "
        "style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

_SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                     (b"content-security-policy", _CSP.encode())]
# what SecurityHeaders adds to a JSON Response: the search fast path sends these as they are
_JSON_HEADERS = [(b"content-type", b"application/json"), *_SECURITY_HEADERS, (b"cache-control", b"no-cache")]


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str
    digest: str


def _file_route(app: FastAPI, path: str, summary: str, endpoint: Any) -> None:
    """GET and HEAD for a file: HEAD answers like GET without the body (Starlette drops it), for
    the download tools and link checkers that ask HEAD first; it is registered apart so the
    OpenAPI document lists each operation once."""
    app.get(path, tags=["files"], summary=summary, response_class=Response)(endpoint)
    app.head(path, include_in_schema=False)(endpoint)


def create_app(archive: Path, *, search_cache: int = SEARCH_CACHE_SIZE,
               postings_bytes: int = POSTINGS_BYTES, page_cache_bytes: int = PAGE_CACHE_BYTES) -> FastAPI:
    """The web app over the archive folder *archive* (raises NotFound without a catalog).

    *search_cache* is how many recent search pages each process keeps (0: none); *postings_bytes*
    how much of the common words' stored recording ids (soundark.catalog.postings; 0: none);
    *page_cache_bytes* SQLite's page cache of each catalog connection.
    """
    reader = ArchiveReader(archive, search_cache, postings_bytes, page_cache_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        reader.close()

    app = _ArchiveApp(
        lifespan=lifespan,
        title="soundark archive",
        version=__version__,
        description="Search and browse a soundark music preservation archive: recordings, "
                    "coverage of the plan, releases (torrents). Read-only. Every error is "
                    '`{"error": {"code": ..., "message": ...}}`.',
        redoc_url=None,
    )
    app.state.reader = reader
    app.state.static = _load_static()
    _register_errors(app)
    _register_files(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.add_middleware(SecurityHeaders)
    return app


# -- errors ---------------------------------------------------------------------------------

def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/audio/", "/art/", "/torrents/", "/releases/", "/static/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_response(request: Request, status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> Response:
    if _wants_html(request):
        return pages.error_page(request, status, message, headers)
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _soundark_status(e: SoundarkError) -> tuple[int, str]:
    if isinstance(e, NotFound):
        return 404, "not_found"
    if isinstance(e, BadInput):
        return 400, "bad_input"
    if isinstance(e, Conflict):
        return 409, "conflict"
    return 503, "unavailable"


def _unavailable_message(e: SoundarkError) -> str:
    """What a client may read of a server-side problem: its kind, never a server path."""
    # the catalog's connection words a malformed file "... damaged ..." (catalog/connection.py)
    if isinstance(e, EnvironmentProblem) and "damaged" in e.reason:
        return ("the archive's catalog is damaged; its operator can check it with `soundark verify` "
                "and restore it from the last metadata release")
    return "the archive cannot be read right now"


def soundark_error_response(request: Request, e: SoundarkError) -> Response:
    status, code = _soundark_status(e)
    if isinstance(e, (EnvironmentProblem, QueryInterrupted)):  # their subject is a server path
        log.error("%s %s: %s", request.method, request.url.path, e)
        return error_response(request, status, code, _unavailable_message(e))
    return error_response(request, status, code, str(e))


def _register_errors(app: FastAPI) -> None:
    @app.exception_handler(SoundarkError)
    async def on_soundark(request: Request, e: SoundarkError) -> Response:
        return soundark_error_response(request, e)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, e: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(e.status_code, "error")
        message = e.detail if isinstance(e.detail, str) else code.replace("_", " ")
        if e.status_code == 404 and message == "Not Found":
            message = f"{request.url.path[:80]}: no such page"
        return error_response(request, e.status_code, code, message, getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, e: RequestValidationError) -> Response:
        first = (e.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        return error_response(request, 422, "invalid_request",
                              f"{where or 'request'}: {first.get('msg', 'invalid')}")

    @app.exception_handler(Exception)
    async def on_bug(request: Request, e: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal", "internal error (logged on the server)"), status_code=500)


# -- content-addressed and listed files -----------------------------------------------------

def _send_stored(request: Request, stored: Any) -> Response:
    resp = file_response(request.headers, str(stored.path), stored.size, stored.sha256, stored.media_type)
    if isinstance(resp, RangeNotSatisfiable):
        return error_response(request, 416, "range_not_satisfiable",
                              f"range: not within the file's {resp.size} bytes",
                              {"Content-Range": f"bytes */{resp.size}", "Accept-Ranges": "bytes"})
    return resp


def _register_files(app: FastAPI) -> None:
    reader: ArchiveReader = app.state.reader

    def audio(name: str, request: Request) -> Response:
        return _send_stored(request, reader.audio(name))

    def art(name: str, request: Request) -> Response:
        return _send_stored(request, reader.art(name))

    _file_route(app, "/audio/{name}", "Stored audio by SHA-256 (range requests, immutable)", audio)
    _file_route(app, "/art/{name}", "Cover image by SHA-256 (immutable)", art)

    def torrents_json() -> Response:
        try:
            body = read_regular(reader.release_list, LISTED_FILE_LIMIT)
        except OSError as e:  # missing, a symlink, a FIFO: never followed or waited on
            raise NotFound("torrents.json", "no releases published yet") from e
        return Response(body, media_type="application/json", headers={"Cache-Control": "no-cache"})

    def torrent(name: str) -> Response:
        path = reader.torrent_files().get(name)  # the name is a key, never a path
        if path is None:
            raise NotFound(name[:80], "no such torrent")
        try:
            body = read_regular(path, LISTED_FILE_LIMIT)
        except OSError as e:
            raise NotFound(name, "no such torrent") from e
        etag = '"' + hashlib.sha256(body).hexdigest() + '"'
        return Response(body, media_type="application/x-bittorrent",
                        headers={"Cache-Control": "public, max-age=3600", "ETag": etag,
                                 "Content-Disposition": f'attachment; filename="{name}"'})

    _file_route(app, "/releases/torrents.json", "The published list of releases", torrents_json)
    _file_route(app, "/torrents/{name}", "A release's .torrent file", torrent)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str, request: Request) -> Response:
        item: StaticFile | None = app.state.static.get(name)
        if item is None:
            raise NotFound(name[:80], "no such file")
        # URLs carry ?v=<digest>, so the bytes behind a URL never change
        cache = IMMUTABLE if request.query_params.get("v") == item.digest else "no-cache"
        return Response(item.body, media_type=item.media_type,
                        headers={"Cache-Control": cache, "ETag": f'"{item.digest}"'})


def _load_static() -> dict[str, StaticFile]:
    """The package's static files, read once: served from memory by name, never from a path."""
    types = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
             ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon"}
    found: dict[str, StaticFile] = {}
    for entry in resources.files("soundark.web").joinpath("static").iterdir():
        suffix = Path(entry.name).suffix
        if suffix in types and entry.is_file():
            body = entry.read_bytes()
            found[entry.name] = StaticFile(body, types[suffix], hashlib.sha256(body).hexdigest()[:16])
    return found


# -- the search API without the framework's routing -----------------------------------------

_SEARCH_INTS = {"page": MAX_PAGE, "size": MAX_PAGE_SIZE}


def plain_search_args(query_string: bytes) -> tuple[str, int, int] | None:
    """(q, page, size) of a query string the /api/search route would take as it is: known
    parameters, each at most once, page and size plain decimals in range; else None."""
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, strict_parsing=False)
    except ValueError:
        return None
    args: dict[str, str] = {}
    for name, value in pairs:
        if name in args or name not in ("q", "page", "size"):
            return None
        args[name] = value
    ints = {"page": 1, "size": 20}
    for name, top in _SEARCH_INTS.items():
        if name in args:
            text = args[name]
            if not (text.isascii() and text.isdigit() and len(text) <= 6 and 1 <= int(text) <= top):
                return None
            ints[name] = int(text)
    return args.get("q", ""), ints["page"], ints["size"]


class _ArchiveApp(FastAPI):
    """FastAPI with :class:`SearchFastPath` in front of its whole middleware stack."""

    def build_middleware_stack(self) -> ASGIApp:
        return SearchFastPath(super().build_middleware_stack(), self.state.reader)


class SearchFastPath:
    """``GET /api/search`` with plain parameters, answered straight from the reader: the documented
    route's answer byte for byte, headers included, without FastAPI's routing, parameter handling
    and middleware layers (~20 % of the server's CPU per search). It sits in front of the whole
    stack; anything else (other parameters, a value the route would refuse, an unexpected error)
    goes on to the app."""

    def __init__(self, app: ASGIApp, reader: ArchiveReader) -> None:
        self.app = app
        self.reader = reader

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/api/search":
            args = plain_search_args(scope.get("query_string", b""))
            if args is not None:
                try:
                    body = self.reader.search(*args).json_bytes  # on the loop, as the route does
                except SoundarkError as e:
                    await SecurityHeaders(soundark_error_response(Request(scope), e))(scope, receive, send)
                    return
                except Exception:  # noqa: BLE001 - the app's own handling answers it (500, logged)
                    pass
                else:
                    await send({"type": "http.response.start", "status": 200,
                                "headers": [(b"content-length", str(len(body)).encode()), *_JSON_HEADERS]})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


# -- headers on every response --------------------------------------------------------------

class SecurityHeaders:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot search path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope.get("path", "") in ("/docs", "/docs/oauth2-redirect")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += _SECURITY_HEADERS if not docs else _SECURITY_HEADERS[:2]
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-cache"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)

