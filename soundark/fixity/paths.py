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
import re
import stat
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from soundark.errors import BadInput

MAX_PATH_BYTES = 4096
MAX_COMPONENT_BYTES = 255
MAX_DEPTH = 64
# One C-level match accepts the common safe path: components of anything but "/", "\\" and
# control characters, none "." or "..". A bag of many tiny files spent most of verify in
# the per-character checks below (issue 13); they now run only to word a refusal.
_NAME = r"(?!\.\.?(?:/|$))"  # where a component starts: it is not "." or ".."
_CHAR = r"[^\x00-\x1f\x7f\\/]"  # no control character, no backslash
_SAFE = re.compile(rf"(?:{_NAME}{_CHAR}+/)*{_NAME}{_CHAR}+")
_SAFE_ASCII = re.compile(rf"(?:{_NAME}{_CHAR}{{1,{MAX_COMPONENT_BYTES}}}/)*{_NAME}{_CHAR}{{1,{MAX_COMPONENT_BYTES}}}")


def check_relpath(text: object, subject: object = "path") -> str:
    """Return ``text`` unchanged if it is a safe relative POSIX path, else raise BadInput."""
    if is_safe_relpath(text):
        return text  # type: ignore[return-value]
    return _check_relpath_slowly(text, subject)


def is_safe_relpath(text: object) -> bool:
    """True when :func:`check_relpath` would accept ``text`` (False may also mean "ask it":
    a long non-ASCII path is left to the slow checks)."""
    if type(text) is not str or text[1:2] == ":" or text.count("/") >= MAX_DEPTH:
        return False
    if text.isascii():
        return len(text) <= MAX_PATH_BYTES and _SAFE_ASCII.fullmatch(text) is not None
    try:  # a lone surrogate is not UTF-8: the slow path says so
        short = len(text.encode("utf-8")) <= MAX_COMPONENT_BYTES
    except UnicodeEncodeError:
        return False
    # a path of at most 255 bytes cannot hold a component over the limit
    return short and _SAFE.fullmatch(text) is not None


def _check_relpath_slowly(text: object, subject: object) -> str:
    """Every rule one at a time, so the refusal says which one failed."""
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
    if path.isascii():  # already NFC, and casefold() is lower() on ASCII
        return path.lower()
    return unicodedata.normalize("NFC", path).casefold()


def new_folders(key: str, last: str) -> list[str]:
    """The folders of ``key`` (a folded path) that are not folders of ``last`` (the previous one).

    Lists are sorted or grouped by folder, so a path's folders are almost always those of
    the path before it: each is then looked at once, not once per file under it.
    """
    parent, old = key.rpartition("/")[0], last.rpartition("/")[0]
    if not parent or parent == old:
        return []
    out = []
    old += "/"
    while parent and not old.startswith(parent + "/"):
        out.append(parent)
        parent = parent.rpartition("/")[0]
    return out


def check_unique(paths: Iterable[str], subject: object = "list") -> None:
    """Refuse duplicates, case/normalisation collisions and file-vs-folder clashes."""
    seen: dict[str, str] = {}
    folders: set[str] = set()
    last = ""
    for p in paths:
        key = fold(p)
        if key in seen:
            other = seen[key]
            what = "twice" if other == p else f"and {other!r}, which differ only in case or normalisation"
            raise BadInput(subject, f"path {p!r} is listed {what}")
        seen[key] = p
        folders.update(new_folders(key, last))
        last = key
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
