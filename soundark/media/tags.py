"""Read tags and cover art from audio files into soundark's names (mutagen).

Every tag family is first flattened into Vorbis-comment style names (upper
case, a list of strings per name, as MusicBrainz Picard maps them), then one
function turns that into a :class:`~soundark.model.TagSet`:

- Vorbis comments (FLAC, Ogg Vorbis, Ogg Opus: RFC 7845 §5.2, the Xiph
  comment spec); art in FLAC ``PICTURE`` blocks or base64
  ``METADATA_BLOCK_PICTURE``.
- ID3v2 (MP3, and ID3 chunks in WAV and AIFF): ``TSRC`` is the ISRC, ``UFID``
  owned by ``http://musicbrainz.org`` the MusicBrainz recording ID, ``TXXX``
  user frames by description; art in ``APIC``.
- MP4/M4A atoms: ``----:com.apple.iTunes:<NAME>`` freeform atoms carry ISRC,
  MusicBrainz IDs and ReplayGain; art in ``covr``.
- APEv2 (WavPack, Monkey's Audio) and ASF (WMA) by their common names.

Reading never decides whether a file is audio (that is :func:`soundark.media.probe.probe`):
a file mutagen cannot parse simply has no tags. Two exceptions are refusals, each one line: tags
nested so deeply that the parser recurses without end (ID3 frames inside CHAP/CTOC frames), and,
when the caller sets a limit, more tag entries than it allows.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import mutagen
from mutagen.flac import Picture

from soundark.errors import BadInput
from soundark.isrc import normalise_or_none
from soundark.model import TagSet, normalise_mbid

MAX_VALUE_BYTES = 64 * 1024
# Several TITLE values (Vorbis comments, ID3v2.4 null-separated TIT2, several MP4 \xa9nam) are
# one title in parts (e.g. a medley, or "Title" + a translation): joined, none dropped.
# Several ARTIST values are several credited artists, in order (TagSet.artists).
TITLE_JOIN = " / "

# ID3 frame -> Vorbis name (Picard's mapping).
_ID3_NAMES = {
    "TIT2": "TITLE", "TPE1": "ARTIST", "TALB": "ALBUM", "TPE2": "ALBUMARTIST", "TRCK": "TRACKNUMBER",
    "TPOS": "DISCNUMBER", "TDRC": "DATE", "TYER": "DATE", "TDOR": "ORIGINALDATE", "TSRC": "ISRC",
    "TPUB": "LABEL", "TCOP": "COPYRIGHT", "TCON": "GENRE", "TCOM": "COMPOSER", "TEXT": "LYRICIST",
    "TIT1": "GROUPING", "TIT3": "SUBTITLE", "TPE3": "CONDUCTOR", "TPE4": "REMIXER", "TBPM": "BPM",
    "TSOP": "ARTISTSORT", "TSO2": "ALBUMARTISTSORT", "TSOA": "ALBUMSORT", "TSOT": "TITLESORT",
    "TMED": "MEDIA", "TLAN": "LANGUAGE", "TKEY": "KEY", "TENC": "ENCODEDBY", "TSSE": "ENCODER",
    "TSST": "DISCSUBTITLE", "TMOO": "MOOD", "TCMP": "COMPILATION", "WCOP": "LICENSE",
}
# MP4 atom -> Vorbis name.
_MP4_NAMES = {
    "\xa9nam": "TITLE", "\xa9ART": "ARTIST", "\xa9alb": "ALBUM", "aART": "ALBUMARTIST",
    "trkn": "TRACKNUMBER", "disk": "DISCNUMBER", "\xa9day": "DATE", "cprt": "COPYRIGHT",
    "\xa9gen": "GENRE", "\xa9wrt": "COMPOSER", "\xa9cmt": "COMMENT", "\xa9lyr": "LYRICS",
    "\xa9grp": "GROUPING", "\xa9too": "ENCODER", "tmpo": "BPM", "cpil": "COMPILATION",
    "soar": "ARTISTSORT", "soaa": "ALBUMARTISTSORT", "soal": "ALBUMSORT", "sonm": "TITLESORT",
}
# Other spellings found in Vorbis comments, APEv2 and ASF -> the Vorbis name.
_ALIASES = {
    "ALBUM ARTIST": "ALBUMARTIST", "ALBUM_ARTIST": "ALBUMARTIST", "TRACK": "TRACKNUMBER",
    "DISC": "DISCNUMBER", "DISCNUMBER": "DISCNUMBER", "YEAR": "DATE", "AUTHOR": "ARTIST",
    "WM/ALBUMTITLE": "ALBUM", "WM/ALBUMARTIST": "ALBUMARTIST", "WM/TRACKNUMBER": "TRACKNUMBER",
    "WM/PARTOFSET": "DISCNUMBER", "WM/YEAR": "DATE", "WM/ISRC": "ISRC", "WM/PUBLISHER": "LABEL",
    "WM/GENRE": "GENRE", "WM/COMPOSER": "COMPOSER", "ORGANIZATION": "LABEL", "PUBLISHER": "LABEL",
    "MUSICBRAINZ_RELEASEID": "MUSICBRAINZ_ALBUMID", "MUSICBRAINZ_RECORDINGID": "MUSICBRAINZ_TRACKID",
}
_ART_KEYS = {"METADATA_BLOCK_PICTURE", "COVERART", "COVERARTMIME", "COVER ART (FRONT)",
             "COVER ART (BACK)", "WM/PICTURE"}
_CONSUMED = {
    "TITLE", "ARTIST", "ALBUM", "ALBUMARTIST", "TRACKNUMBER", "DISCNUMBER", "DATE", "ISRC", "LABEL",
    "MUSICBRAINZ_TRACKID", "MUSICBRAINZ_ALBUMID", "MUSICBRAINZ_ARTISTID", "MUSICBRAINZ_ALBUMARTISTID",
    "MUSICBRAINZ_RELEASEGROUPID", "REPLAYGAIN_TRACK_GAIN", "REPLAYGAIN_ALBUM_GAIN",
    "REPLAYGAIN_TRACK_PEAK", "REPLAYGAIN_ALBUM_PEAK", "LICENSE", "COPYRIGHT",
}
_MUTAGEN_JUNK = (mutagen.MutagenError, ValueError, struct.error, IndexError, KeyError, EOFError,
                 OverflowError, TypeError, UnicodeDecodeError)
_NUMBER = re.compile(r"^\s*(\d+)")
_ISO_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T[\d:]+Z?)?)?)?")
_GAIN = re.compile(r"^\s*([+-]?\d+(?:[.,]\d+)?)")


def read_tags(path: Path, max_entries: int = 0) -> TagSet:
    """The tags of *path* in soundark's names; an empty :class:`TagSet` when there are none.

    With *max_entries* (> 0), a file holding more tag entries than that is refused
    (:class:`BadInput`) before anything else reads it: FFmpeg's own tag parsing, which every
    decode goes through, slows down with the square of the count (100,000 Vorbis comments
    took minutes). mutagen's parse, which counts them, is linear.
    """
    audio = _open(path)
    if max_entries > 0 and audio is not None:
        n = tag_entries(audio)
        if n > max_entries:
            raise BadInput(path, f"{n:,} tag entries, over the limit of {max_entries:,} (setting "
                                 f"max_tag_entries): refused before decoding")
    if audio is None or audio.tags is None:
        return TagSet(has_art=bool(audio is not None and getattr(audio, "pictures", None)))
    flat, has_art = _flatten(audio)
    return _tagset(flat, has_art or bool(getattr(audio, "pictures", None)))


def read_art(path: Path) -> tuple[bytes, str] | None:
    """The front cover (else the first picture) as ``(bytes, mime type)``, or None."""
    audio = _open(path)
    if audio is None:
        return None
    pictures = list(_pictures(audio))
    if not pictures:
        return None
    front = [p for p in pictures if p[0] == 3]
    _, data, mime = (front or pictures)[0]
    return data, _mime_of(data, mime)


def _open(path: Path) -> Any:
    try:
        return mutagen.File(str(path))
    except FileNotFoundError as e:
        raise BadInput(path, "no such file") from e
    except PermissionError as e:
        raise BadInput(path, "cannot read: permission denied") from e
    except RecursionError as e:
        # ID3 CHAP/CTOC frames may hold frames, which mutagen parses recursively
        raise BadInput(path, "tags nested too deeply (frames inside frames); refused") from e
    except _MUTAGEN_JUNK:
        # junk, truncated or a format mutagen does not know: no tags (probe decides if it is audio)
        return None


def tag_entries(audio: Any) -> int:
    """How many tag entries (comments, frames, atoms, items) and embedded pictures *audio* holds."""
    tags = audio.tags
    n = len(getattr(audio, "pictures", None) or ())
    if tags is not None:
        try:
            n += len(tags)
        except TypeError:  # a tag class without a length: count what it lists
            n += sum(1 for _ in (tags.keys() if hasattr(tags, "keys") else ()))
    return n


# --- flattening each tag family into Vorbis names -----------------------------------------------

def _flatten(audio: Any) -> tuple[dict[str, list[str]], bool]:
    tags = audio.tags
    kind = type(tags).__name__
    if "ID3" in kind:
        return _flatten_id3(tags)
    if kind == "MP4Tags":
        return _flatten_mp4(tags)
    return _flatten_named(tags)


def _add(flat: dict[str, list[str]], key: str, values: Iterable[Any]) -> None:
    for value in values:
        text = _clean(value)
        if text:
            flat.setdefault(key, []).append(text)


def _clean(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return ""  # binary data is not a text tag
    text = str(value).replace("\x00", "").strip()
    if len(text) > MAX_VALUE_BYTES // 4:
        text = text.encode("utf-8")[:MAX_VALUE_BYTES].decode("utf-8", errors="ignore")
    return text


def _user_key(name: str) -> str:
    """TXXX descriptions and MP4 freeform names: 'MusicBrainz Album Id' -> MUSICBRAINZ_ALBUMID."""
    key = name.strip().upper()
    if key.startswith("MUSICBRAINZ ") or key.startswith("MUSICBRAINZ/"):
        key = "MUSICBRAINZ_" + key[12:].replace(" ", "")
    return _ALIASES.get(key, key)


def _flatten_id3(tags: Any) -> tuple[dict[str, list[str]], bool]:
    flat: dict[str, list[str]] = {}
    has_art = False
    for frame in tags.values():
        fid = frame.FrameID
        if fid == "APIC":
            has_art = True
        elif fid == "UFID":
            if frame.owner == "http://musicbrainz.org":
                _add(flat, "MUSICBRAINZ_TRACKID", [frame.data])
        elif fid == "TXXX":
            _add(flat, _user_key(frame.desc), frame.text)
        elif fid in ("COMM", "USLT"):
            key = "COMMENT" if fid == "COMM" else "LYRICS"
            if frame.desc and fid == "COMM":
                key = f"COMMENT:{frame.desc.upper()}"
            _add(flat, key, frame.text if fid == "COMM" else [frame.text])
        elif fid == "WXXX":
            _add(flat, _user_key(frame.desc) or "WWW", [frame.url])
        elif fid.startswith("W") and hasattr(frame, "url"):
            _add(flat, _ID3_NAMES.get(fid, fid), [frame.url])
        elif fid.startswith("T") and hasattr(frame, "text"):
            _add(flat, _ID3_NAMES.get(fid, fid), [str(t) for t in frame.text])
    return flat, has_art


def _flatten_mp4(tags: Any) -> tuple[dict[str, list[str]], bool]:
    flat: dict[str, list[str]] = {}
    has_art = False
    for atom, values in tags.items():
        if atom == "covr":
            has_art = bool(values)
        elif atom.startswith("----:"):
            name = atom.split(":", 2)[-1]
            _add(flat, _user_key(name), [bytes(v) for v in values if getattr(v, "dataformat", 1) != 0])
        elif atom in ("trkn", "disk"):
            _add(flat, _MP4_NAMES[atom], [f"{n}/{of}" if of else str(n) for n, of in values])
        else:
            if not isinstance(values, list):
                values = [values]
            _add(flat, _MP4_NAMES.get(atom, atom.upper()), [v for v in values if not isinstance(v, bytes)])
    return flat, has_art


def _flatten_named(tags: Any) -> tuple[dict[str, list[str]], bool]:
    """Vorbis comments, APEv2 and ASF: name -> value(s), names case-insensitive."""
    flat: dict[str, list[str]] = {}
    has_art = False
    items = tags.items() if hasattr(tags, "items") else []
    for name, values in items:
        key = _user_key(str(name))
        if key in _ART_KEYS:
            has_art = True
            continue
        if not isinstance(values, list):
            values = [values]
        texts = []
        for v in values:
            if getattr(v, "kind", None) == 1:  # APEv2 binary item
                continue
            if hasattr(v, "value") and not isinstance(v, str):  # ASF attribute
                v = v.value
            texts.extend(str(v).split("\x00") if not isinstance(v, bytes) else [v])
        _add(flat, key, texts)
    return flat, has_art


# --- the TagSet ----------------------------------------------------------------------------------

def _tagset(flat: dict[str, list[str]], has_art: bool) -> TagSet:
    first = {k: v[0] for k, v in flat.items() if v}
    extra: dict[str, Any] = {k: (v[0] if len(v) == 1 else v) for k, v in flat.items()
                             if v and k not in _CONSUMED}
    isrc = normalise_or_none(first.get("ISRC"))
    if first.get("ISRC") and not isrc:
        extra["ISRC"] = first["ISRC"]  # keep what the file says, even when it is not a valid ISRC
    mbids = {}
    for name in ("MUSICBRAINZ_TRACKID", "MUSICBRAINZ_ALBUMID", "MUSICBRAINZ_ARTISTID",
                 "MUSICBRAINZ_ALBUMARTISTID", "MUSICBRAINZ_RELEASEGROUPID"):
        mbids[name] = normalise_mbid(first.get(name))
        if len(flat.get(name, [])) > 1:
            extra[name] = flat[name]  # several artist IDs: the TagSet keeps the first
    titles = flat.get("TITLE", [])
    if len(titles) > 1:
        extra["TITLE"] = titles  # every value as written; the title joins them
    return TagSet(
        title=TITLE_JOIN.join(titles) if titles else None,
        artists=tuple(flat.get("ARTIST", ())),
        album=first.get("ALBUM"),
        album_artist=first.get("ALBUMARTIST"),
        track_number=_number(first.get("TRACKNUMBER")),
        disc_number=_number(first.get("DISCNUMBER")),
        date=_date(first.get("DATE")),
        isrc=isrc,
        label=first.get("LABEL"),
        mb_recording_id=mbids["MUSICBRAINZ_TRACKID"],
        mb_release_id=mbids["MUSICBRAINZ_ALBUMID"],
        mb_artist_id=mbids["MUSICBRAINZ_ARTISTID"],
        mb_album_artist_id=mbids["MUSICBRAINZ_ALBUMARTISTID"],
        mb_release_group_id=mbids["MUSICBRAINZ_RELEASEGROUPID"],
        replaygain_track_gain=_float(first.get("REPLAYGAIN_TRACK_GAIN")),
        replaygain_album_gain=_float(first.get("REPLAYGAIN_ALBUM_GAIN")),
        replaygain_track_peak=_float(first.get("REPLAYGAIN_TRACK_PEAK")),
        replaygain_album_peak=_float(first.get("REPLAYGAIN_ALBUM_PEAK")),
        license=first.get("LICENSE"),
        copyright=first.get("COPYRIGHT"),
        has_art=has_art,
        extra=extra,
    )


def _number(text: str | None) -> int | None:
    """'3', '03', '3/12' -> 3."""
    m = _NUMBER.match(text or "")
    return int(m.group(1)) if m else None


def _date(text: str | None) -> str | None:
    """The ISO 8601 prefix when there is one ('2001-03-04 12:00' -> '2001-03-04'), else as given."""
    if not text:
        return None
    m = _ISO_DATE.match(text.strip())
    return m.group(0) if m else text.strip()


def _float(text: str | None) -> float | None:
    """'-6.50 dB' -> -6.5; '0,98' -> 0.98."""
    m = _GAIN.match(text or "")
    return float(m.group(1).replace(",", ".")) if m else None


# --- pictures -----------------------------------------------------------------------------------

def _pictures(audio: Any) -> Iterable[tuple[int, bytes, str]]:
    """Every embedded picture as (APIC/FLAC picture type, bytes, mime)."""
    for pic in getattr(audio, "pictures", None) or []:  # FLAC PICTURE blocks
        yield pic.type, pic.data, pic.mime
    tags = audio.tags
    if tags is None:
        return
    kind = type(tags).__name__
    if "ID3" in kind:
        for frame in tags.getall("APIC"):
            yield int(frame.type), frame.data, frame.mime
    elif kind == "MP4Tags":
        for cover in tags.get("covr", []):
            yield 3, bytes(cover), "image/png" if cover.imageformat == cover.FORMAT_PNG else "image/jpeg"
    else:
        yield from _named_pictures(tags)


def _named_pictures(tags: Any) -> Iterable[tuple[int, bytes, str]]:
    for name, values in (tags.items() if hasattr(tags, "items") else []):
        key = str(name).upper()
        if not isinstance(values, list):
            values = [values]
        for v in values:
            if key == "METADATA_BLOCK_PICTURE":
                try:
                    pic = Picture(base64.b64decode(str(v)))
                except (binascii.Error, ValueError, *_MUTAGEN_JUNK):
                    continue
                yield pic.type, pic.data, pic.mime
            elif key == "COVERART":
                try:
                    yield 3, base64.b64decode(str(v)), ""
                except (binascii.Error, ValueError):
                    continue
            elif key.startswith("COVER ART (") and getattr(v, "kind", None) == 1:
                # APEv2: "<file name>\0<image bytes>"
                data = bytes(v.value)
                yield (3 if "FRONT" in key else 4), data.split(b"\x00", 1)[-1], ""


def _mime_of(data: bytes, declared: str) -> str:
    """Sniff the image type: taggers often leave the declared mime type empty or wrong."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return declared or "application/octet-stream"


__all__ = ["read_tags", "read_art", "tag_entries", "MAX_VALUE_BYTES", "TITLE_JOIN"]
