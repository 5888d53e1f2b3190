"""A bag's files read as one byte stream, as BitTorrent v1 (BEP 3) and soundark parity see it.

Files are concatenated in a fixed order with no gaps; a missing, short, unreadable or
symlinked file reads as zeros where its bytes should be (the hashes over those bytes then
fail, which is how damage is found), and a longer file is read only up to its expected size.
Nothing here writes.
"""

from __future__ import annotations

import bisect
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from soundark.fixity.paths import check_relpath, resolve_inside
from soundark.fixity.regular import open_regular


@dataclass(frozen=True)
class Segment:
    """The part of one file that lies inside a stream range."""

    index: int        # file index in the stream
    file_offset: int  # where in the file
    buf_offset: int   # where in the range
    length: int


class ByteStream:
    """Files under ``root`` (paths relative to it, checked) with their expected sizes, end to end.

    ``None`` as a path is a BEP 47 pad file: zeros that exist only in the stream.
    """

    def __init__(self, root: Path, files: Sequence[tuple[str | None, int]]) -> None:
        self.root = Path(root)
        self.paths: list[str | None] = []
        self.sizes: list[int] = []
        self.starts: list[int] = []
        offset = 0
        for rel, size in files:
            if rel is not None:
                check_relpath(rel, root)
            self.paths.append(rel)
            self.sizes.append(size)
            self.starts.append(offset)
            offset += size
        self.total = offset

    def path_of(self, index: int) -> Path | None:
        rel = self.paths[index]
        return None if rel is None else resolve_inside(self.root, rel)

    def segments(self, offset: int, length: int) -> Iterator[Segment]:
        """The file pieces covering stream bytes [offset, offset+length) (not past the end)."""
        end = min(offset + length, self.total)
        i = max(0, bisect.bisect_right(self.starts, offset) - 1)
        pos = offset
        while pos < end and i < len(self.sizes):
            start, size = self.starts[i], self.sizes[i]
            if size and pos < start + size:
                n = min(start + size, end) - pos
                yield Segment(i, pos - start, pos - offset, n)
                pos += n
            i += 1

    def file_range(self, index: int) -> tuple[int, int]:
        return self.starts[index], self.starts[index] + self.sizes[index]

    def read(self, offset: int, length: int) -> bytearray:
        """Stream bytes [offset, offset+length); zeros past the end and wherever a file is bad."""
        buf = bytearray(length)
        view = memoryview(buf)
        for seg in self.segments(offset, length):
            if self.paths[seg.index] is not None:
                self._read_into(seg, view[seg.buf_offset:seg.buf_offset + seg.length])
        return buf

    def _read_into(self, seg: Segment, out: memoryview) -> None:
        try:
            path = self.path_of(seg.index)
            if path is None:
                return  # no safe name in the index: stays zero, the hash check says so
            fd = open_regular(path)  # never a symlink, never a FIFO that would block the read
        except (OSError, ValueError):
            return  # missing, symlinked, not a file or unreadable: stays zero, the hash check says so
        try:
            done = 0
            while done < seg.length:
                n = os.preadv(fd, [out[done:]], seg.file_offset + done)
                if n <= 0:
                    break
                done += n
        except OSError:
            return
        finally:
            os.close(fd)

    def actual_size(self, index: int) -> int | None:
        """The size on disk of a regular file, or None when missing, a symlink or not a file."""
        try:
            path = self.path_of(index)
            if path is None:
                return self.sizes[index]
            st = os.lstat(path)
        except (OSError, ValueError):
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None
