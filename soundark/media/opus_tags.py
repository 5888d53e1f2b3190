"""Vorbis comments for Ogg Opus outputs (RFC 7845 section 5.2), written with mutagen.

Field names follow the Vorbis comment conventions players read (TITLE, ARTIST,
ALBUM, ALBUMARTIST, TRACKNUMBER, DISCNUMBER, DATE, ISRC, LABEL, MUSICBRAINZ_*).
ReplayGain values are never copied into an Opus file: RFC 7845 section 5.2.1 says
gain lives in ``R128_TRACK_GAIN`` / ``R128_ALBUM_GAIN``, Q7.8 fixed point dB
relative to the header's output gain, at the EBU R128 reference of -23 LUFS
(ReplayGain 2 uses -18 LUFS, hence 5 dB less).

Values are cleaned before writing: a NUL separates values (as in ID3v2.4), other
control characters are dropped, and one value is capped at :data:`MAX_VALUE_CHARS`
so a 1 MB junk tag cannot bloat every copy of an archive. Cover art is never
embedded here; it goes to the content-addressed art store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from soundark.errors import BadInput
from soundark.model import TagSet

MAX_VALUE_CHARS = 16_384
MAX_VALUES_PER_FIELD = 64
MAX_FIELDS = 256
RG_TO_R128_DB = -5.0  # ReplayGain 2 reference -18 LUFS -> R128 -23 LUFS

# Never carried from a source: gain is recomputed, art goes to the art store, and the
# source's own encoder/vendor fields would be false about the new file.
DROPPED_FIELDS = frozenset({
    "REPLAYGAIN_TRACK_GAIN", "REPLAYGAIN_ALBUM_GAIN", "REPLAYGAIN_TRACK_PEAK",
    "REPLAYGAIN_ALBUM_PEAK", "REPLAYGAIN_REFERENCE_LOUDNESS", "R128_TRACK_GAIN", "R128_ALBUM_GAIN",
    "METADATA_BLOCK_PICTURE", "COVERART", "COVERARTMIME", "COVER", "APIC", "PICTURE",
    "ENCODER", "ENCODED_BY", "ENCODEDBY", "ENCODER_OPTIONS", "ENCODING", "ITUNSMPB", "ITUNNORM",
    "ITUNES_CDDB_1", "SOUNDARK_SOURCE_SHA256", "SOUNDARK_SOURCE_CODEC", "SOUNDARK_SOURCE_BITRATE",
})

_CONTROL = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
_GAIN = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(?:dB)?\s*$", re.IGNORECASE)


def r128_gain(replaygain_db: float) -> str:
    """A ReplayGain gain in dB as an R128_*_GAIN value: Q7.8 integer at -23 LUFS."""
    q = int(round((replaygain_db + RG_TO_R128_DB) * 256))
    return str(max(-32768, min(32767, q)))


def parse_gain(value: object) -> float | None:
    """``-6.5``, ``"-6.50 dB"`` -> -6.5; anything else -> None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if abs(value) < 128 else None
    if isinstance(value, str):
        m = _GAIN.match(value)
        if m and abs(float(m.group(1))) < 128:
            return float(m.group(1))
    return None


def clean_key(key: str) -> str:
    """Field names are ASCII 0x20-0x7D without '=' (Vorbis I comment spec); upper case by habit."""
    return "".join(c for c in str(key) if 0x20 <= ord(c) <= 0x7D and c != "=").strip().upper()


def clean_values(value: Any) -> list[str]:
    """A tag value (string, number or list) as clean, non-empty strings."""
    items = value if isinstance(value, (list, tuple)) else [value]
    out: list[str] = []
    for item in items:
        if item is None or isinstance(item, (bytes, bytearray, dict)):
            continue
        text = str(item).encode("utf-8", "replace").decode("utf-8")
        for part in text.split("\x00"):
            part = _CONTROL.sub("", part).strip()
            if len(part) > MAX_VALUE_CHARS:
                part = part[: MAX_VALUE_CHARS - 1] + "\u2026"
            if part and part not in out:
                out.append(part)
        if len(out) >= MAX_VALUES_PER_FIELD:
            break
    return out[:MAX_VALUES_PER_FIELD]


def comments_from_tagset(tags: TagSet) -> dict[str, list[str]]:
    """Map a source's :class:`TagSet` to standard Vorbis comment fields (gain converted)."""
    fields: dict[str, Any] = {}
    for key, value in (tags.extra or {}).items():
        name = clean_key(key)
        if name and name not in DROPPED_FIELDS and not name.startswith("REPLAYGAIN_"):
            fields[name] = value
    named = {
        "TITLE": tags.title, "ARTIST": list(tags.artists), "ALBUM": tags.album,
        "ALBUMARTIST": tags.album_artist, "TRACKNUMBER": tags.track_number,
        "DISCNUMBER": tags.disc_number, "DATE": tags.date, "ISRC": tags.isrc, "LABEL": tags.label,
        "MUSICBRAINZ_TRACKID": tags.mb_recording_id, "MUSICBRAINZ_ALBUMID": tags.mb_release_id,
        "MUSICBRAINZ_ARTISTID": tags.mb_artist_id,
        "MUSICBRAINZ_ALBUMARTISTID": tags.mb_album_artist_id,
        "MUSICBRAINZ_RELEASEGROUPID": tags.mb_release_group_id,
        "LICENSE": tags.license, "COPYRIGHT": tags.copyright,
    }
    for name, value in named.items():
        if value not in (None, "", []):
            fields[name] = value
    fields.update(gain_fields(tags.replaygain_track_gain, tags.replaygain_album_gain,
                              tags.extra or {}))
    return normalise_comments(fields)


def gain_fields(track_rg: object, album_rg: object, extra: Mapping[str, Any]) -> dict[str, str]:
    """R128 gains from ReplayGain values, or from a source's own valid R128 fields."""
    out: dict[str, str] = {}
    upper = {clean_key(k): v for k, v in extra.items()}
    for name, rg in (("R128_TRACK_GAIN", track_rg), ("R128_ALBUM_GAIN", album_rg)):
        gain = parse_gain(rg)
        if gain is None:
            gain = parse_gain(upper.get(name.replace("R128", "REPLAYGAIN")))
        if gain is not None:
            out[name] = r128_gain(gain)
            continue
        own = clean_values(upper.get(name))  # an Opus source's R128 gain is already right
        if own and re.fullmatch(r"[+-]?\d{1,5}", own[0]) and -32768 <= int(own[0]) <= 32767:
            out[name] = str(int(own[0]))
    return out


def normalise_comments(fields: Mapping[str, Any]) -> dict[str, list[str]]:
    """Clean every key and value; drop empty fields; cap the number of fields."""
    out: dict[str, list[str]] = {}
    for key, value in fields.items():
        name = clean_key(key)
        values = clean_values(value)
        if name and values:
            out[name] = values
        if len(out) >= MAX_FIELDS:
            break
    return out


def merge_comments(*layers: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Later layers win field by field (e.g. file tags, then catalog values, then provenance)."""
    out: dict[str, list[str]] = {}
    for layer in layers:
        for key, values in normalise_comments(dict(layer)).items():
            out[key] = values
    return out


def write_opus_comments(path: Path, comments: Mapping[str, Iterable[str]]) -> None:
    """Replace the Vorbis comments of the Ogg Opus file *path* (audio pages are untouched)."""
    from mutagen import MutagenError
    from mutagen.oggopus import OggOpus

    try:
        f = OggOpus(str(path))
        if f.tags is None:  # pragma: no cover - libopus output always has OpusTags
            raise BadInput(path, "no OpusTags packet")
        f.tags.clear()
        for key, values in normalise_comments(dict(comments)).items():
            f.tags[key] = values
        f.save()
    except MutagenError as e:
        raise BadInput(path, f"cannot write tags ({e})") from e


def read_opus_comments(path: Path) -> dict[str, list[str]]:
    """The Vorbis comments of an Ogg Opus file, upper-case keys."""
    from mutagen import MutagenError
    from mutagen.oggopus import OggOpus

    try:
        f = OggOpus(str(path))
    except MutagenError as e:
        raise BadInput(path, f"cannot read tags ({e})") from e
    out: dict[str, list[str]] = {}
    for key, values in (f.tags.items() if f.tags is not None else []):
        out.setdefault(key.upper(), []).extend(values)
    return out
