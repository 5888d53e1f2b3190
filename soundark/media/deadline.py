"""A per-file time limit for reading audio (the scan's ``scan_file_seconds`` setting).

Decoding is stopped by the reader itself, between packets (FFmpeg) or blocks (libsndfile), not
by killing a thread: a file that decodes slowly (a crafted one, or a stalled network mount)
costs at most the limit plus one packet. Standard library only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from soundark.errors import BadInput


class TooSlow(BadInput):
    """The file was still being read when its deadline passed (not a verdict on its bytes)."""


@dataclass(frozen=True)
class Deadline:
    """The moment a file still being read is refused."""

    at: float          # time.monotonic() when the file is refused
    seconds: float     # the limit, as the operator set it

    @classmethod
    def after(cls, seconds: float) -> Deadline | None:
        """A deadline *seconds* from now; None (no limit) for 0."""
        return cls(time.monotonic() + seconds, seconds) if seconds > 0 else None

    def check(self, subject: object) -> None:
        if time.monotonic() > self.at:
            raise TooSlow(subject, f"still decoding after {self.seconds:g} s (setting "
                                    "scan_file_seconds); refused")


__all__ = ["Deadline", "TooSlow"]
