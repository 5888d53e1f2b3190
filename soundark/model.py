"""Plain value objects shared by every layer. Standard library only.

A **recording** is one piece of audio, keyed by its normalised ISRC when it has
one; a **track** is a recording on an album (many tracks share a recording);
a **source file** is audio on disk that was matched to a recording.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from soundark.errors import BadInput

TIERS = ("original", "opus75", "skip")
LOSSLESS_CODECS = frozenset(
    {"flac", "alac", "wavpack", "ape", "tta", "mlp", "truehd", "shorten", "als"}
)
LOSSY_KEEPABLE_CODECS = frozenset({"mp3", "mp3float", "vorbis", "opus", "libopus", "aac", "aac_latm"})


def is_lossless(codec: str | None) -> bool:
    """PCM in any form, and the lossless compressors, are lossless."""
    if not codec:
        return False
    return codec.startswith("pcm_") or codec in LOSSLESS_CODECS


_WORD_JUNK = re.compile(r"[^\w]+", re.UNICODE)
_FEAT = re.compile(r"\s+(feat\.?|ft\.?|featuring)\s+.*$", re.IGNORECASE)


def normalise_text(text: str | None) -> str:
    """Case-, accent- and punctuation-blind form used to match artist and title."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = _FEAT.sub("", text.casefold())
    return " ".join(_WORD_JUNK.sub(" ", text).split())


def match_key(artist: str | None, title: str | None) -> str:
    """The key under which recordings are matched by artist + title."""
    a, t = normalise_text(artist), normalise_text(title)
    return f"{a}\x1f{t}" if (a or t) else ""


def derived_key(*parts: object) -> str:
    """A stable recording/track key for things without ISRC or MBID: ``sa`` + 16 hex."""
    h = hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode("utf-8"))
    return "sa" + h.hexdigest()[:16]


def mbid_key(mbid: str) -> str:
    return "mb" + mbid.replace("-", "").lower()


_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def normalise_mbid(text: object) -> str | None:
    """MusicBrainz IDs are UUIDs; return the canonical lower-case dashed form or None."""
    if not isinstance(text, str):
        return None
    t = text.strip()
    if not _UUID.match(t):
        return None
    h = t.replace("-", "").lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class AudioFacts:
    """What the decoder says about a file's first audio stream."""

    container: str
    codec: str
    bitrate: int | None
    sample_rate: int
    channels: int
    duration_ms: int
    encrypted: bool = False
    decoder: str = "ffmpeg"      # which library read it: 'ffmpeg' or 'libsndfile' (media/fallback.py)

    @property
    def lossless(self) -> bool:
        return is_lossless(self.codec)


@dataclass(frozen=True)
class TagSet:
    """Tags read from a file, in soundark's names. ``extra`` holds every other text tag."""

    title: str | None = None
    artists: tuple[str, ...] = ()
    album: str | None = None
    album_artist: str | None = None
    track_number: int | None = None
    disc_number: int | None = None
    date: str | None = None
    isrc: str | None = None
    label: str | None = None
    mb_recording_id: str | None = None
    mb_release_id: str | None = None
    mb_artist_id: str | None = None
    mb_album_artist_id: str | None = None
    mb_release_group_id: str | None = None
    replaygain_track_gain: float | None = None
    replaygain_album_gain: float | None = None
    replaygain_track_peak: float | None = None
    replaygain_album_peak: float | None = None
    license: str | None = None
    copyright: str | None = None
    has_art: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CatalogRow:
    """One track as the catalog importers understand it (docs/formats.md)."""

    title: str
    artists: tuple[str, ...] = ()
    album: str | None = None
    isrc: str | None = None
    recording_mbid: str | None = None
    release_mbid: str | None = None
    track_id: str | None = None
    duration_ms: int | None = None
    date: str | None = None
    label: str | None = None
    upc: str | None = None
    track_number: int | None = None
    disc_number: int | None = None
    listens: int | None = None
    popularity: float | None = None
    rights: str | None = None


@dataclass
class Rejection:
    subject: str
    reason: str


@dataclass
class Merge:
    """One input that joined a recording the catalog already had, and by which rule."""

    subject: str        # the file or row that joined
    recording: str      # the recording's key
    rule: str           # 'isrc', 'mbid', 'name+duration+audio', 'name+duration', ...
    detail: str = ""    # e.g. the audio distance, or the other file


@dataclass
class ImportReport:
    """Counts of one import run, with a reason for every rejected input.

    ``merges`` lists every input that joined an existing recording (a preservation
    tool never merges silently); ``warnings`` are accepted inputs with something the
    operator should know (a licence tag that contradicts --rights, say); ``counts``
    holds importer-specific figures (e.g. listens matched / ambiguous / unmatched).
    """

    source: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    max_kept_rejections: int = 1000
    merges: list[Merge] = field(default_factory=list)
    merged: int = 0
    warnings: list[Rejection] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def reject(self, subject: object, reason: str) -> None:
        self.rejected += 1
        if len(self.rejections) < self.max_kept_rejections:
            self.rejections.append(Rejection(str(subject), reason))

    def merge(self, subject: object, recording: str, rule: str, detail: str = "") -> None:
        self.merged += 1
        if len(self.merges) < self.max_kept_rejections:
            self.merges.append(Merge(str(subject), recording, rule, detail))

    def warn(self, subject: object, reason: str) -> None:
        if len(self.warnings) < self.max_kept_rejections:
            self.warnings.append(Rejection(str(subject), reason))

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "rejections": [{"subject": r.subject, "reason": r.reason} for r in self.rejections],
            "merged": self.merged,
            "merges": [dataclasses.asdict(m) for m in self.merges],
            "warnings": [{"subject": w.subject, "reason": w.reason} for w in self.warnings],
            "counts": dict(sorted(self.counts.items())),
        }


class Progress:
    """How a long job reports progress and learns it should stop (the CLI draws a bar).

    Stage functions take a ``Progress`` and call :meth:`start`, :meth:`advance`
    and check :meth:`cancelled`; this base class does nothing, so library callers
    and tests need not care.
    """

    def start(self, total: int | None, description: str = "", unit: str = "items") -> None:
        pass

    def advance(self, n: int = 1, item: str = "", nbytes: int = 0) -> None:
        pass

    def note(self, message: str) -> None:
        """A one-line message about one item (e.g. a rejected file); the job goes on."""

    def cancelled(self) -> bool:
        return False


NO_PROGRESS = Progress()


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpPeE]i?[bB]?|[bB])?\s*$", re.ASCII)
_UNITS = {"": 1, "b": 1}
for _i, _p in enumerate("kmgtpe", start=1):
    _UNITS[_p] = _UNITS[_p + "b"] = 1000**_i
    _UNITS[_p + "i"] = _UNITS[_p + "ib"] = 1024**_i


def parse_bytes(text: object, subject: str = "size") -> int:
    """``500GB``, ``4TB``, ``4 TB``, ``4TiB``, ``1.5PB`` or plain bytes -> bytes (SI: 1 TB = 10^12).

    Raises BadInput for anything else (negative, unknown unit, empty).
    """
    if isinstance(text, bool):
        raise BadInput(subject, f"{text!r} is not a size")
    if isinstance(text, int):
        if text < 0:
            raise BadInput(subject, f"{text} is negative")
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise BadInput(subject, f"{text!r} is not a size; use e.g. 500GB, 4TB, 4TiB, 1.5PB or plain bytes")
    number, unit = m.group(1), (m.group(2) or "").lower()
    # Fraction, not float: plain byte counts past 2**53 must stay exact
    value = Fraction(number) * _UNITS[unit]
    if value > 2**63 - 1:
        raise BadInput(subject, f"{text!r} is too large")
    return int(round(value))


_SI_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def si_unit(n: float) -> tuple[float, str]:
    """The largest SI unit not above ``n`` bytes, as (bytes per unit, name): a chart axis's unit."""
    scale, name = 1.0, "B"
    for i, unit in enumerate(_SI_UNITS):
        if abs(n) >= 1000.0**i:
            scale, name = 1000.0**i, unit
    return scale, name


def format_bytes(n: float | None) -> str:
    """Bytes for people, in SI units (1 kB = 1000 B, 1 TB = 10^12 B), everywhere a size is shown.

    One unit system across the CLI, reports, torrents.html and the web (docs/settings.md, "Units"):
    SI, as budgets and disks are sold. JSON keeps integer bytes. None reads as "".
    """
    if n is None:
        return ""
    # round first, so 999,950 B reads "1.0 MB", not "1,000.0 kB"
    scale, unit = si_unit(float(f"{float(n):.4g}") if abs(n) >= 1000 else n)
    return f"{n:,.0f} {unit}" if unit == "B" else f"{n / scale:,.1f} {unit}"


def split_host_port(text: str) -> tuple[str, str]:
    """``host:port`` -> (host, port text), IPv6 brackets removed (``[::1]:6881`` -> ``::1``).

    Lenient: the port is not checked (libtorrent's listen_interfaces allows suffixes such as
    ``6881s``); :func:`parse_host_port` is the strict form.
    """
    host, _, port = text.strip().rpartition(":")
    return host.strip().removeprefix("[").removesuffix("]"), port.strip()


def parse_host_port(text: str, subject: object = None) -> tuple[str, int]:
    """``host:port`` (a peer, a magnet's ``x.pe``) -> (host, port 1..65535); BadInput otherwise."""
    host, port = split_host_port(text)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInput(subject if subject is not None else text,
                       f"{text!r} is not host:port (e.g. 127.0.0.1:6881 or [::1]:6881)")
    return host, int(port)
