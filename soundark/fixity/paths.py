"""Relative paths that come from untrusted files: manifests, torrents, magnets, tracks.jsonl.

Every path a bag, a torrent or a parity index names is checked here before soundark
opens, creates or deletes anything under it. A path is refused when it is empty, absolute
(``/x``, ``C:x``, ``\\\\host``), has an empty, ``.`` or ``..`` component, a NUL or other
control character, a backslash (a separator on Windows: ``a\\..\\b``), or is absurdly long.
A list of paths is refused when two are equal, when two differ only in case or Unicode
normalisation (they collide on case-insensitive file systems), or when one is a folder
prefix of another (a file cannot also be a folder). Writing goes through
:func:`resolve_inside`, which also refuses symlinks on the way, so nothing is ever written
outside the target folder.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from soundark.errors import BadInput

MAX_PATH_BYTES = 4096
MAX_COMPONENT_BYTES = 255
MAX_DEPTH = 64


def check_relpath(text: object, subject: object = "path") -> str:
    """Return ``text`` unchanged if it is a safe relative POSIX path, else raise BadInput."""
    if not isinstance(text, str):
        raise BadInput(subject, f"path {text!r} is not text")
    if not text:
        raise BadInput(subject, "empty path")
    shown = repr(text) if len(text) < 200 else repr(text[:200] + "...")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise BadInput(subject, f"path {shown} contains a NUL or control character")
    if "\\" in text:
        raise BadInput(subject, f"path {shown} contains a backslash")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise BadInput(subject, f"path {shown} is absolute")
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise BadInput(subject, f"path {shown} is not valid UTF-8") from e
    if len(encoded) > MAX_PATH_BYTES:
        raise BadInput(subject, f"path {shown} is longer than {MAX_PATH_BYTES} bytes")
    parts = text.split("/")
    if len(parts) > MAX_DEPTH:
        raise BadInput(subject, f"path {shown} is nested deeper than {MAX_DEPTH} folders")
    for part in parts:
        if part in ("", ".", ".."):
            raise BadInput(subject, f"path {shown} has an empty, '.' or '..' component")
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise BadInput(subject, f"path {shown} has a name longer than {MAX_COMPONENT_BYTES} bytes")
    return text


def fold(path: str) -> str:
    """The form under which two names collide on a case-insensitive, normalising file system."""
    return unicodedata.normalize("NFC", path).casefold()


def check_unique(paths: Iterable[str], subject: object = "list") -> None:
    """Refuse duplicates, case/normalisation collisions and file-vs-folder clashes."""
    seen: dict[str, str] = {}
    for p in paths:
        key = fold(p)
        if key in seen:
            other = seen[key]
            what = "twice" if other == p else f"and {other!r}, which differ only in case or normalisation"
            raise BadInput(subject, f"path {p!r} is listed {what}")
        seen[key] = p
    folders: set[str] = set()
    for key in seen:
        parts = key.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    clash = folders.intersection(seen)
    if clash:
        name = seen[sorted(clash)[0]]
        raise BadInput(subject, f"path {name!r} is listed as a file and also used as a folder")


def check_size(size: object, subject: object, limit: int = 1 << 50) -> int:
    """A file size from an untrusted file: a non-negative int under ``limit`` (1 PiB)."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise BadInput(subject, f"size {size!r} is not an integer")
    if size < 0 or size > limit:
        shown = str(size) if len(str(size)) <= 24 else f"{str(size)[:12]}... ({len(str(size))} digits)"
        raise BadInput(subject, f"size {shown} is absurd (allowed 0..{limit})")
    return size


def resolve_inside(root: Path, rel: str, subject: object = None) -> Path:
    """``root/rel`` after checking ``rel`` and that no existing component on the way is a symlink.

    Raises BadInput when the path would leave ``root`` (``..``, absolute, a symlinked folder).
    """
    check_relpath(rel, subject or root)
    current = Path(root)
    for part in rel.split("/"):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise BadInput(current, f"cannot inspect: {e.strerror or e}") from e
        if stat.S_ISLNK(st.st_mode):
            raise BadInput(subject or current, f"{rel!r} goes through a symlink; refused")
    return current


def is_symlink(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False
