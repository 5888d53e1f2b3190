"""MusicBrainz JSON entities (JSON dump lines, web service /ws/2 responses) as catalog rows.

The JSON dump (https://musicbrainz.org/doc/MusicBrainz_Database/Download, "JSON Data
Dumps") and the web service (https://musicbrainz.org/doc/MusicBrainz_API) write the
same entity shapes. Two of them carry audio:

- a **recording** (``recording.tar.xz``, member ``mbdump/recording``; ``/ws/2/recording``):
  ``id``, ``title``, ``length`` (ms), ``video``, ``isrcs``, ``artist-credit``,
  ``first-release-date``, and in web-service responses ``releases``;
- a **release** (``release.tar.xz``, member ``mbdump/release``; ``/ws/2/release``):
  ``id``, ``title``, ``date``, ``barcode``, ``label-info``, ``artist-credit``,
  ``release-group`` and ``media[].tracks[]``, each track with ``position``, ``title``,
  ``artist-credit`` and its ``recording`` (ISRCs included). Nearly all recordings with
  ISRCs are in this dump, not the recording dump (which holds standalone recordings).

:func:`entity_of` tells them apart (and names any other entity, which is rejected);
:func:`rows_of` turns one entity into catalog rows (one per recording, or one per track)
with every field's type checked: a wrong type rejects that row with its reason, it is
never stored as Python text. Credits: artist names come from the artist entity; the
display text (``recording.artist``, ``track.artist``) is the credited names joined by
their join phrases, as MusicBrainz shows them ("Ed Sheeran feat. Meek Mill & A Boogie
wit da Hoodie").
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field
from typing import Any

from soundark import isrc as isrc_codes
from soundark.model import normalise_mbid

_DATE = re.compile(r"^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?$")
# The forms the dumps use; anything else takes the slow, general path.
_CANONICAL_MBID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CANONICAL_ISRC = re.compile(r"[A-Z]{2}[A-Z0-9]{3}[0-9]{7}")


class Rejected(ValueError):
    """One entity (or one track of it) cannot be imported; the message is the reason."""


@dataclass
class Parsed:
    """What one entity gave: rows for the frame, their recording extras, rejections."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    extras: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # mbid, isrcs, title
    albums: list[tuple[str, str]] = field(default_factory=list)  # release mbid, credit display
    rejections: list[str] = field(default_factory=list)


def entity_of(obj: dict) -> str:
    """'recording', 'release', 'search' (a search response) or the name of another entity."""
    if "media" in obj or "release-group" in obj:
        return "release"
    if "id" not in obj and isinstance(obj.get("recordings", obj.get("releases")), list):
        return "search"
    if "length" in obj or "isrcs" in obj or "video" in obj:
        return "recording"
    for key, name in (("label-code", "label"), ("primary-type", "release-group"),
                      ("secondary-types", "release-group"), ("iswcs", "work"), ("languages", "work"),
                      ("iso-3166-1-codes", "area"), ("coordinates", "place"), ("setlist", "event"),
                      ("sort-name", "artist"), ("resource", "url")):
        if key in obj:
            return name
    return "unknown entity"


def search_items(obj: dict) -> list:
    """The entities of a search response (``{"recordings": [...]}`` / ``{"releases": [...]}``)."""
    items = obj.get("recordings") if isinstance(obj.get("recordings"), list) else obj.get("releases")
    return items if isinstance(items, list) else []


# --- field checks: each returns the clean value or raises Rejected with the reason ---------------

def _uuid(value: Any, name: str) -> str:
    if isinstance(value, str) and _CANONICAL_MBID.fullmatch(value):
        return value
    mbid = normalise_mbid(value)
    if mbid is None:
        raise Rejected(f"{name} {value!r} is not a MusicBrainz ID (a UUID)")
    return mbid


def _title(value: Any, name: str = "title") -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Rejected("no title" if name == "title" else f"no {name}")
    if not isinstance(value, str):
        raise Rejected(f"{name} {value!r} is not text")
    return value


def _length(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Rejected(f"length {value!r} is not a whole number of milliseconds")
    return value


def _date(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    m = _DATE.match(value) if isinstance(value, str) else None
    try:
        if m is None:
            raise ValueError
        year, month, day = int(m[1]), int(m[2] or 1), int(m[3] or 1)
        datetime.date(year, month, day)
    except ValueError:
        raise Rejected(f"{name} {value!r} is not a date (YYYY, YYYY-MM or YYYY-MM-DD)") from None
    return value


def _isrcs(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Rejected(f"isrcs {value!r} is not a list of ISRCs")
    codes: list[str] = []
    for raw in value:
        if _CANONICAL_ISRC.fullmatch(raw):
            if raw not in codes:
                codes.append(raw)
            continue
        try:
            code = isrc_codes.normalise(raw)
        except ValueError as e:
            raise Rejected(str(e)) from None
        if code not in codes:
            codes.append(code)
    return codes


def _whole(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Rejected(f"{name} {value!r} is not a whole number")
    return value


def _optional_text(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Rejected(f"{name} {value!r} is not text")
    return value


@dataclass(frozen=True)
class Credits:
    names: list[str]          # artist entity names, credit order
    mbids: list[str | None]
    display: str              # credited names + join phrases


def _credits(value: Any) -> Credits:
    if value is None:
        return Credits([], [], "")
    if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
        raise Rejected("artist-credit is not a list of credits")
    names, mbids, shown = [], [], []
    for credit in value:
        artist = credit.get("artist")
        artist = artist if isinstance(artist, dict) else {}
        credited = _optional_text(credit.get("name"), "artist-credit name")
        name = _optional_text(artist.get("name"), "artist name") or credited
        if not name:
            raise Rejected("an artist credit has no name")
        names.append(name)
        mbids.append(None if artist.get("id") is None else _uuid(artist.get("id"), "artist id"))
        shown.append((credited or name) + (_optional_text(credit.get("joinphrase"), "joinphrase") or ""))
    return Credits(names, mbids, "".join(shown).strip())


def _recording_row(rec: dict, credits: Credits) -> tuple[dict[str, Any], tuple[str, str | None, str | None]]:
    """The recording half of a row, and its extras (MBID, further ISRCs as JSON, title)."""
    mbid = _uuid(rec.get("id"), "recording id")
    title = _title(rec.get("title"))
    length = _length(rec.get("length"))
    isrcs = _isrcs(rec.get("isrcs"))
    row = {
        "title": title, "artists": credits.names, "_artist_mbids": credits.mbids,
        "_artist_display": credits.display, "recording_mbid": mbid,
        "isrc": isrcs[0] if isrcs else None, "duration_ms": length,
    }
    return row, (mbid, json.dumps(isrcs[1:]) if len(isrcs) > 1 else None, None)


def recording_rows(obj: dict) -> Parsed:
    """A recording line: one row; its first release (web-service responses) is the album."""
    out = Parsed()
    row, extra = _recording_row(obj, _credits(obj.get("artist-credit")))
    date = _date(obj.get("first-release-date"), "first-release-date")
    releases = obj.get("releases")
    release = releases[0] if isinstance(releases, list) and releases and isinstance(releases[0], dict) else {}
    if release:
        row["release_mbid"] = _uuid(release.get("id"), "release id")
        row["album"] = _title(release.get("title"), "release title")
        date = date or _date(release.get("date"), "release date")
    row["date"] = date
    out.rows.append(row)
    out.extras.append(extra)
    return out


def _label(release: dict) -> str | None:
    infos = release.get("label-info")
    for info in infos if isinstance(infos, list) else []:
        label = info.get("label") if isinstance(info, dict) else None
        if isinstance(label, dict) and label.get("name") is not None:
            return _optional_text(label.get("name"), "label name")
    return None


def release_rows(obj: dict) -> Parsed:
    """A release line: one row per track; a bad track is rejected alone, a bad release whole."""
    out = Parsed()
    album = {
        "release_mbid": _uuid(obj.get("id"), "release id"),
        "album": _title(obj.get("title"), "release title"),
        "date": _date(obj.get("date"), "date"),
        "upc": _optional_text(obj.get("barcode"), "barcode"),
        "label": _label(obj),
    }
    album_credits = _credits(obj.get("artist-credit"))
    out.albums.append((album["release_mbid"], album_credits.display))
    media = obj.get("media")
    if not isinstance(media, list) or not all(isinstance(m, dict) for m in media):
        raise Rejected("media is not a list of media")
    for medium_index, medium in enumerate(media, start=1):
        tracks = medium.get("tracks") or []
        if not isinstance(tracks, list):
            raise Rejected(f"medium {medium_index}: tracks is not a list")
        for track_index, track in enumerate(tracks, start=1):
            try:
                _track_row(out, album, album_credits, medium, track)
            except Rejected as e:
                out.rejections.append(f"medium {medium_index} track {track_index}: {e}")
    return out


def _track_row(out: Parsed, album: dict, album_credits: Credits, medium: dict, track: Any) -> None:
    if not isinstance(track, dict) or not isinstance(track.get("recording"), dict):
        raise Rejected("a track without its recording")
    rec = track["recording"]
    credit_source = track.get("artist-credit") or rec.get("artist-credit")
    credits = _credits(credit_source) if credit_source else album_credits
    row, (mbid, isrcs, _) = _recording_row(rec, credits)
    shown_title = _optional_text(track.get("title"), "track title")
    if shown_title and shown_title.strip() and shown_title != row["title"]:
        # the row carries the title as on the release (the track's); the recording keeps its own
        out.extras.append((mbid, isrcs, row["title"]))
        row["title"] = shown_title
    else:
        out.extras.append((mbid, isrcs, None))
    row.update(album)
    row["track_number"] = _whole(track.get("position"), "track position")
    row["disc_number"] = _whole(medium.get("position"), "medium position")
    if row["duration_ms"] is None:
        row["duration_ms"] = _length(track.get("length"))
    out.rows.append(row)


def rows_of(obj: dict) -> Parsed:
    """Catalog rows of one recording or release entity; raises Rejected for anything else."""
    kind = entity_of(obj)
    if kind == "recording":
        return recording_rows(obj)
    if kind == "release":
        return release_rows(obj)
    article = "an" if kind[0] in "aeiou" else "a"
    raise Rejected(f"{article} {kind} line, not a recording or release")
