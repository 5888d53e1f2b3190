"""Sending content-addressed files with HTTP range requests (RFC 9110 §14, §13.1.5, §8.8.3).

One ``bytes`` range is honoured (``first-last``, ``first-`` or the suffix form
``-n``), which is what audio players send to seek. Following RFC 9110 §14.2, a
Range header that is malformed, names another unit or asks for several ranges is
ignored and the whole file is sent (200); a well-formed range that starts past
the end, or an empty suffix, is answered 416 with ``Content-Range: bytes */size``.
The ETag is the file's SHA-256, so ``If-Range`` and ``If-None-Match`` are exact,
and the bytes behind a hash never change: ``Cache-Control: immutable``.
"""

from __future__ import annotations

import re
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from soundark.fixity.regular import open_regular

IMMUTABLE = "public, max-age=31536000, immutable"
CHUNK = 256 * 1024

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class RangeNotSatisfiable(Exception):
    """The range is well formed but selects no byte of a file of *size* bytes."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive, or None to send the whole file; raises RangeNotSatisfiable."""
    if not header or len(header) > 200:
        return None
    m = _RANGE.match(header)
    if not m or (not m.group(1) and not m.group(2)):
        return None  # malformed, another unit, or several ranges: ignore (RFC 9110 §14.2)
    first_text, last_text = m.group(1), m.group(2)
    if not first_text:  # suffix: the last n bytes
        n = int(last_text)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - n), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # invalid range-spec: ignored, like a malformed header
    if first >= size:
        raise RangeNotSatisfiable(size)
    return first, min(last, size - 1)


def etag_of(sha256: str) -> str:
    return f'"{sha256}"'


def _matches(header: str, etag: str) -> bool:
    return any(part.strip() in (etag, "*", f"W/{etag}") for part in header.split(","))


class FileSlice(Response):
    """Send bytes [first, first+length) of a file, read in chunks off the event loop."""

    def __init__(self, path: str, first: int, length: int, status_code: int,
                 headers: dict[str, str]) -> None:
        self.path, self.first, self.length = path, first, length
        self.status_code = status_code
        self.background = None
        self.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        send_body = scope.get("method", "GET") != "HEAD" and self.length > 0
        file: Any = None
        if send_body:
            try:  # never through a symlink, never a FIFO: the store file itself or nothing
                file = await anyio.open_file(open_regular(self.path), "rb")
            except OSError:
                await _gone(send)
                return
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            if file is None:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await file.seek(self.first)
            remaining = self.length
            while remaining > 0:
                chunk = await file.read(min(CHUNK, remaining))
                remaining = remaining - len(chunk) if chunk else 0  # a shrunk file ends the body early
                await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        finally:
            if file is not None:
                await file.aclose()


async def _gone(send: Send) -> None:
    """The file changed into something else after it was found: answer 404, send nothing of it."""
    body = b'{"error": {"code": "not_found", "message": "the stored file is gone"}}'
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def file_response(request_headers: Any, path: str, size: int, sha256: str,
                  media_type: str) -> Response | RangeNotSatisfiable:
    """The response for GET/HEAD of a content-addressed file, honouring Range and validators.

    Returns RangeNotSatisfiable (not raised) so the caller can shape the 416 error body.
    """
    etag = etag_of(sha256)
    headers = {"Content-Type": media_type, "ETag": etag, "Cache-Control": IMMUTABLE,
               "Accept-Ranges": "bytes"}
    if_none_match = request_headers.get("if-none-match")
    if if_none_match and _matches(if_none_match, etag):
        return Response(status_code=304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
    wanted = request_headers.get("range")
    if_range = request_headers.get("if-range")
    if wanted and if_range and if_range.strip() != etag:
        wanted = None  # the client holds other bytes than these: send them all
    try:
        span = parse_range(wanted, size)
    except RangeNotSatisfiable as e:
        return e
    if span is None:
        headers["Content-Length"] = str(size)
        return FileSlice(path, 0, size, 200, headers)
    first, last = span
    headers["Content-Length"] = str(last - first + 1)
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return FileSlice(path, first, last - first + 1, 206, headers)
