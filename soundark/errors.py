"""The errors a soundark user reads.

One root, :class:`SoundarkError`, and a handful of subclasses. Every error keeps
its *subject* (the file, row, setting or query it is about) as a field and
formats as ``subject: reason``, so a front end prints ``error: <subject>: <reason>``
on one line. Subclasses also inherit the builtin they resemble, so callers that
only know ``ValueError`` or ``FileNotFoundError`` still catch them.
"""

from __future__ import annotations

import errno


class SoundarkError(Exception):
    """Root of every error soundark raises on purpose."""

    def __init__(self, subject: object, reason: str) -> None:
        # A subject or reason quoting its input (a file name, a magnet, a CSV cell) may carry line
        # breaks and terminal escapes: shown escaped, the error stays one line that cannot repaint
        # the terminal.
        self.subject = _one_line(str(subject))
        self.reason = _one_line(str(reason))
        super().__init__(self.subject, self.reason)

    def __str__(self) -> str:
        if not self.subject:
            return self.reason
        return f"{self.subject}: {self.reason}"


def _one_line(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


class BadInput(SoundarkError, ValueError):
    """Input that cannot be used: a malformed row, file, query or setting."""


class EncryptedInput(BadInput):
    """DRM-protected audio. soundark never decrypts; such input is refused."""


class NotFound(SoundarkError, LookupError):
    """Something asked for by name does not exist."""


class Conflict(SoundarkError, RuntimeError):
    """The request contradicts what is already there (e.g. a published release)."""


class EnvironmentProblem(SoundarkError, OSError):
    """The machine, not the input: disk full, permissions, a missing library."""


class QueryInterrupted(SoundarkError):
    """A catalog query stopped before it finished (a deadline's progress handler, a cancel)."""


def os_reason(e: OSError) -> str:
    """The reason a user reads for an OSError met while writing: a full disk says what to do."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk full: free space and re-run"
    return str(e.strerror or e)
