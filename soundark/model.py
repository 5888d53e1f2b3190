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
from typing import Any

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


