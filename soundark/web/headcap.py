"""A cap on the size of an HTTP/1.1 request head (request line + header fields; RFC 9112 §2).

uvicorn's httptools protocol accumulates a header of any length (a 100 MB ``Cookie`` was
accepted). :class:`CappedHttpTools` counts the bytes of each request's head as they arrive
and answers ``431 Request Header Fields Too Large`` (RFC 6585 §5), then closes the connection,
once they pass :data:`MAX_HEAD_BYTES`. Browsers and clients send a few KiB; 64 KiB is far
above any real request and far below anything that costs memory.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
SLICE = 8 * 1024  # the head is fed in slices so the cap is checked every 8 KiB, not per TCP read
_BODY = b"request header fields too large\n"
_431 = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_BODY), _BODY))


class CappedHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol that refuses a request head over MAX_HEAD_BYTES with 431."""

    _head_bytes = 0
    _in_head = True

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        view = memoryview(data)
        while self._in_head and len(view):
            part, view = view[:SLICE], view[SLICE:]
            self._head_bytes += len(part)
            if self._head_bytes > MAX_HEAD_BYTES:
                self.transport.write(_431)
                self.transport.close()
                return
            super().data_received(bytes(part))
            if self.transport.is_closing():
                return
        if len(view):
            super().data_received(bytes(view))
