"""Portable, stable file names for released audio.

A released file is named from its recording: ``<key> - <artist> - <title><ext>``. The
recording key (ISRC per ISO 3901, ``mb`` + MusicBrainz ID, or a derived ``sa`` key) makes
the name unique and stable; artist and title make it readable. The name must survive every
file system a mirror may use, and every BitTorrent client:

* Windows: none of ``< > : " / \\ | ? *`` or control characters, no trailing dot or space,
  no reserved device name (``CON``, ``PRN``, ``AUX``, ``NUL``, ``COM1``-``COM9``,
  ``LPT1``-``LPT9``, with or without an extension);
* macOS: no ``:`` or ``/``; names are stored decomposed (NFD), so we write NFC and keep
  well under the 255-unit limit so the decomposed form fits too;
* Linux and torrents: at most 255 bytes of UTF-8 per path component, no NUL, no ``/``;
* people: no leading dot (hidden), no bidirectional overrides or other invisible format
  characters (a title could otherwise make ``evil.exe`` look like ``exe.opus``).

Two names that differ only in case or Unicode normalisation collide on case-insensitive
file systems; :class:`NameSet` gives the second one a ``~2`` suffix.
"""

from __future__ import annotations

import re
import unicodedata

from soundark.config import RELEASE_PREFIX
from soundark.errors import BadInput

MAX_NAME_BYTES = 180  # well under 255: room for NFD expansion on macOS and a ~N suffix
_ILLEGAL = set('<>:"/\\|?*')
_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
             *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10)),
             "COM¹", "COM²", "COM³", "LPT¹", "LPT²", "LPT³"}
_EXT = re.compile(r"^\.[a-z0-9]{1,8}$")
_PREFIX = RELEASE_PREFIX  # one rule, also checked where settings load


def clean_text(text: str | None) -> str:
    """Text with every character that is unsafe in a file name replaced, spaces collapsed."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text)
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in _ILLEGAL:
            out.append("_")
        elif cat in ("Cc", "Zl", "Zp", "Zs"):
            out.append(" ")
        elif cat in ("Cf", "Cs", "Co", "Cn"):
            continue  # invisible, unpaired surrogate, private or unassigned: drop
        else:
            out.append(ch)
    return " ".join("".join(out).split())


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def _trim(text: str) -> str:
    # Windows drops trailing dots and spaces; Unix hides names that start with a dot;
    # a leading dash reads as an option to command-line tools.
    previous = None
    while previous != text:
        previous, text = text, text.strip(" .").lstrip("-")
    return text


def safe_ext(ext: str | None) -> str:
    """A lower-case extension like ``.opus``; anything odd becomes ``.bin``."""
    ext = (ext or "").lower()
    if ext and not ext.startswith("."):
        ext = "." + ext
    return ext if _EXT.match(ext) else ".bin"


def portable_name(key: str, artist: str | None, title: str | None, ext: str | None,
                  max_bytes: int = MAX_NAME_BYTES) -> str:
    """``<key> - <artist> - <title><ext>``, made safe for every file system (see module doc)."""
    ext = safe_ext(ext)
    parts = [p for p in (clean_text(key), clean_text(artist), clean_text(title)) if p]
    stem = _trim(" - ".join(parts)) or "_"
    stem = _trim(_truncate_utf8(stem, max_bytes - len(ext))) or "_"
    if stem.split(".")[0].rstrip(" ").upper() in _RESERVED:
        stem = "_" + stem
    return stem + ext


def check_prefix(prefix: str) -> str:
    """A release name prefix: ASCII letters, digits, ``.``, ``_``, ``-``; starts with a letter or digit."""
    if not _PREFIX.match(prefix or ""):
        raise BadInput("release_prefix", f"{prefix!r} must be 1-64 of A-Z a-z 0-9 . _ - "
                       "(starting with a letter or digit)")
    return prefix


class NameSet:
    """Names already used in one folder; a name that would collide gets ``~2``, ``~3`` ..."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def add(self, name: str) -> str:
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        candidate, n = name, 1
        while _fold(candidate) in self._seen:
            n += 1
            candidate = f"{stem}~{n}{dot}{ext}"
        self._seen.add(_fold(candidate))
        return candidate


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()
