"""Names guessed from a file's path when its tags lack them (docs/scan.md, "Names from the path").

The layout read is the common ``Artist/Album/[CD 1/]NN - Title.ext``: the album is the
folder holding the file (or the one above a disc folder such as ``CD 1``, ``Disc 2``,
``disk2``, ``CD 1 of 2``, which gives the disc number), the artist the folder above the
album when it lies inside the scanned root, else an ``Artist - Title`` file name. A generic
folder name (``music``, ``albums``, ``mp3``, ``flac``, ``320``, ``soundtrack``, ``various
artists``, ``downloads``...; case, spacing and brackets ignored) is never an artist or album.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# Folder names that say what is inside, not who or which album; compared casefolded,
# with brackets, punctuation and repeated spaces removed.
GENERIC_FOLDERS = frozenset({
    "music", "my music", "musik", "musique", "musica", "audio", "sounds", "itunes",
    "itunes media", "itunes music", "music library", "my collection", "albums", "songs", "tracks",
    "singles", "eps", "compilations", "mixes", "mixtapes", "playlists", "bonus tracks",
    "soundtrack", "soundtracks", "ost", "osts", "game music", "various", "various artists", "va",
    "v a", "misc", "miscellaneous", "unknown", "unknown artist", "unknown album", "untitled",
    "no name", "new folder", "downloads", "download", "incoming", "torrents", "rips", "unsorted",
    "to sort", "mp3", "mp3s", "flac", "ogg", "vorbis", "opus", "wav", "wave", "aac", "m4a",
    "alac", "aiff", "aif", "wma", "ape", "wv", "wavpack", "dsd", "lossless", "lossy", "hi res",
    "hires", "cbr", "vbr", "v0", "v2", "320", "320k", "320kbps", "256", "256k", "256kbps", "192",
    "192k", "192kbps", "128", "128k", "128kbps", "16bit", "24bit", "16 bit", "24 bit", "16 44",
    "24 96", "24 192", "16 44 1",
})
# A name made only of these (and figures with a unit, like 24bit or 96khz) describes a format:
# "FLAC 24-96", "[MP3 320]", "Vinyl rip (flac)". Figures alone are not: "1999", "1" are albums.
_FORMAT_WORDS = frozenset({"mp3", "flac", "ogg", "opus", "wav", "aac", "m4a", "alac", "lossless",
                           "v0", "v2", "cbr", "vbr", "web", "cd", "vinyl", "rip", "kbps", "bit",
                           "khz", "hires", "hi", "res"})
_FIGURE = re.compile(r"\d+(?:bit|khz|hz|k|kbps)?")
_DISC = re.compile(r"^\s*[\[(]?\s*(?:cd|disc|disk|disque|dvd)\s*[-_.#]?\s*(\d{1,2})"
                   r"(?:\s*(?:of|/)\s*\d{1,2})?\s*[\])]?\s*(?:$|[-:–]\s*\S)", re.IGNORECASE)
_TRACK_PREFIX = re.compile(r"^\s*(?:(\d{1,2})[-.](?=\d))?(\d{1,3})(?:\s*[-.)]\s*|\s+)(?=\S)")


@dataclass(frozen=True)
class PathGuess:
    """What the path says; None where it says nothing usable."""

    title: str
    track_number: int | None
    album: str | None
    artist: str | None
    disc_number: int | None


def is_generic(name: str) -> bool:
    """True for a folder name that names a kind of content, not an artist or album."""
    words = re.findall(r"[^\W_]+", name.casefold())
    if not words:
        return True
    if " ".join(words) in GENERIC_FOLDERS:
        return True
    return (all(w in _FORMAT_WORDS or _FIGURE.fullmatch(w) for w in words)
            and any(not w.isdigit() for w in words))


def disc_of(name: str) -> int | None:
    """The disc number a folder named like ``CD 1``, ``Disc 2 of 3``, ``disk02`` gives."""
    m = _DISC.match(name)
    return int(m.group(1)) if m else None


def guess_from_path(path: Path, depth: int) -> PathGuess:
    """Guess title, track, album, artist and disc from ``Artist/Album/[Disc/]NN - Title.ext``.

    *depth* is how many folders lie between the scanned root and the file: folders up to
    the root itself may name the album, only folders inside the root name the artist.
    """
    stem = path.stem.replace("_", " ")
    number = None
    m = _TRACK_PREFIX.match(stem)
    if m and m.end() < len(stem):
        number = int(m.group(2))
        stem = stem[m.end():]
    title = " ".join(stem.split()) or path.name
    folders = [p.name.replace("_", " ").strip() for p in path.parents][: depth + 1]
    level = 0
    disc = disc_of(folders[0]) if depth >= 1 and folders and folders[0] else None
    if disc is not None:
        level = 1
    album = folders[level] if level < len(folders) and not is_generic(folders[level]) else None
    artist = None
    if level + 1 < depth and not is_generic(folders[level + 1]):
        artist = folders[level + 1]
    if not artist and " - " in title:
        artist, title = (part.strip() for part in title.split(" - ", 1))
    return PathGuess(title, number, album, artist or None, disc)


def names_from_path(path: Path, depth: int) -> tuple[str, int | None, str | None, str | None]:
    """(title, track number, album, artist): :func:`guess_from_path` without the disc."""
    g = guess_from_path(path, depth)
    return g.title, g.track_number, g.album, g.artist


__all__ = ["PathGuess", "guess_from_path", "names_from_path", "is_generic", "disc_of",
           "GENERIC_FOLDERS"]
