"""Validate a batch of catalog rows and derive every key, column by column.

Input is a polars DataFrame whose columns are the :data:`FIELDS` below (docs/formats.md)
as text (``artists`` may also be a list column), plus ``_line`` (where the
row came from) and, for MusicBrainz, ``_artist_mbids`` and ``_artist_display`` (the
credited names with their join phrases; otherwise the display is ``A, B``). Output is a
:class:`StagedBatch`: tuples ready for ``executemany`` into the staging table of
:mod:`._bulk`, new artists, and a reason for every rejected row.

Cheap checks (missing title, non-integer numbers, ranges, well-formed ISRCs and
MBIDs) run vectorised in polars; Python touches each row once, to build the
match key (``model.match_key``: Unicode normalisation is not vectorisable
exactly) and the SHA-256 derived keys. Keys follow docs/formats.md:

- recording: normalised ISRC (ISO 3901), else ``model.mbid_key``, else
  ``derived_key("cat", match_key, duration_ms // 1000)``;
- album: ``'mb'`` + release MBID hex, ``'upc:'`` + UPC, else
  ``derived_key("album", first artist, album title)``;
- track: the row's ``track_id``, else ``derived_key("track", recording key,
  album key, disc, track number)``;
- artist: the artist MBID when known, else ``'n:'`` + ``normalise_text(name)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
import unicodedata
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

import polars as pl

from soundark import isrc as isrc_codes
from soundark import jsontext
from soundark.errors import BadInput
from soundark.model import mbid_key, normalise_mbid

FIELDS = (
    "title", "artists", "album", "isrc", "recording_mbid", "release_mbid", "track_id",
    "duration_ms", "date", "label", "upc", "track_number", "disc_number", "listens",
    "popularity", "rights",
)
INT_FIELDS = ("duration_ms", "track_number", "disc_number", "listens")
ARTIST_SEPARATOR = ";"  # the artist_separator setting's default
_CACHE_LIMIT = 200_000
_NO_ALBUM: tuple[None, None] = (None, None)
TURN_ROWS = 8192

_CLEAN_ISRC = r"^[A-Za-z]{2}[A-Za-z0-9]{3}[0-9]{7}$"
_CLEAN_MBID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_INTEGER = r"^\s*[+-]?[0-9]+\s*$"
_PLAIN_ASCII = r"^[\x20-\x7E]*$"

# Exact twins of model.normalise_text's regular expressions (see _normalise).
_WORD_JUNK = re.compile(r"[^\w]+", re.UNICODE)
_FEAT = re.compile(r"(?i)\s+(feat\.?|ft\.?|featuring)\s+.*$")


class _CombiningMarks(dict):
    """str.translate table deleting every code point with a non-zero combining class.

    Filled on demand, one code point the first time it is seen: building it for all 1.1M code
    points up front cost ~0.8 s per process (4 us/row on a 200k-row import).
    """

    def __missing__(self, cp: int) -> int | None:
        value = None if unicodedata.combining(chr(cp)) else cp
        self[cp] = value
        return value


_MARKS = _CombiningMarks()


def _normalise(text: str) -> str:
    """Exactly ``model.normalise_text``, about three times faster.

    The model drops combining marks one character at a time in a generator;
    here one ``str.translate`` does it, and ASCII text skips NFKD (the identity
    for ASCII). Runs of non-word characters become one space, so stripping the
    ends equals splitting and joining. tests/test_import_catalog.py checks the
    two agree on ASCII, accented, CJK, Cyrillic and symbol-laden text.
    """
    if not text:
        return ""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).translate(_MARKS)
    text = _FEAT.sub("", text.casefold())
    return _WORD_JUNK.sub(" ", text).strip(" ")


def _derived_key(*parts: object) -> str:
    """``model.derived_key``, inlined: it runs twice per row."""
    text = "\x1f".join(["" if p is None else str(p) for p in parts])
    return "sa" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Credit:
    """One artist credit, parsed once and cached by its raw text."""

    display: str          # "A, B": recording.artist / track.artist
    keys_json: str        # JSON list of artist keys in credit order
    first: str            # first artist name as given (album key)
    norm: str             # normalise_text(display): the artist half of the match key
    artists: tuple[tuple[str, str, str | None], ...]  # (key, name, mbid)


@dataclass
class StagedBatch:
    rows: list[tuple] = field(default_factory=list)
    artists: list[tuple[str, str, str | None]] = field(default_factory=list)
    rejections: list[tuple[int, str]] = field(default_factory=list)
    total: int = 0
    extra: Any = None  # importer-specific facts for BulkWriter.after_merge hooks


def _text(name: str) -> pl.Expr:
    """A text column, stripped, with empty strings as null."""
    c = pl.col(name).cast(pl.String).str.strip_chars()
    return pl.when(c == "").then(None).otherwise(c)


def _checks(df: pl.DataFrame) -> pl.DataFrame:
    """Add typed columns and ``_reason`` (null for a good row), vectorised."""
    for name in FIELDS:
        if name not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.String).alias(name))
    texts = [_text(n).alias(n) for n in FIELDS if n != "artists"]
    df = df.with_columns(texts)
    ints = {n: pl.col(n).cast(pl.Int64, strict=False) for n in INT_FIELDS}
    # not an integer literal, or one too large for 64 bits
    not_int = {n: pl.col(n).is_not_null() & (~pl.col(n).str.contains(_INTEGER) | ints[n].is_null())
               for n in INT_FIELDS}
    pop = pl.col("popularity").cast(pl.Float64, strict=False)
    reason = (
        pl.when(pl.col("title").is_null()).then(pl.lit("no title"))
        .when(not_int["duration_ms"]).then(pl.format("duration_ms {} is not a whole number of milliseconds",
                                                     pl.col("duration_ms")))
        .when(ints["duration_ms"] < 0).then(pl.format("duration_ms {} is negative", pl.col("duration_ms")))
        .when(not_int["track_number"]).then(pl.format("track_number {} is not a whole number",
                                                      pl.col("track_number")))
        .when(not_int["disc_number"]).then(pl.format("disc_number {} is not a whole number",
                                                     pl.col("disc_number")))
        .when(not_int["listens"]).then(pl.format("listens {} is not a whole number", pl.col("listens")))
        .when(ints["listens"] < 0).then(pl.format("listens {} is negative", pl.col("listens")))
        .when(pl.col("popularity").is_not_null() & pop.is_null())
        .then(pl.format("popularity {} is not a number", pl.col("popularity")))
        .when((pop < 0) | (pop > 100) | pop.is_nan())
        .then(pl.format("popularity {} is outside 0-100", pl.col("popularity")))
        .otherwise(None)
    )
    isrc = pl.col("isrc")
    title = pl.col("title")
    return df.with_columns(
        reason.alias("_reason"),
        # _normalise for plain printable ASCII, vectorised (for these characters Rust's regex
        # classes \s and \w equal Python's); every other title goes through Python
        pl.when(title.str.contains(_PLAIN_ASCII)).then(
            title.str.to_lowercase().str.replace(_FEAT.pattern, "").str.replace_all(_WORD_JUNK.pattern, " ")
            .str.strip_chars(" ")).alias("_tnorm"),
        *[v.alias(n) for n, v in ints.items()],
        pop.alias("popularity"),
        pl.when(isrc.str.contains(_CLEAN_ISRC)).then(isrc.str.to_uppercase()).alias("_isrc"),
        pl.when(pl.col("recording_mbid").str.contains(_CLEAN_MBID)).then(pl.col("recording_mbid"))
        .alias("_mbid"),
        pl.when(pl.col("release_mbid").str.contains(_CLEAN_MBID)).then(pl.col("release_mbid"))
        .alias("_rel"),
    )


_NO_TURN: AbstractContextManager = contextlib.nullcontext()  # reusable: nullcontext holds no state


class RowPreparer:
    """Turns DataFrame batches into staged tuples; remembers artists across batches."""

    def __init__(self, rights: str, turn: AbstractContextManager = _NO_TURN,
                 separator: str = ARTIST_SEPARATOR) -> None:
        self.rights = rights
        self.separator = separator or ARTIST_SEPARATOR
        # Held while this thread runs Python row by row (see _bulk.BulkWriter.turn).
        self.turn = turn
        self.credits: dict[Any, Credit] = {}
        self.sent_artists: set[str] = set()

    def prepare(self, df: pl.DataFrame) -> StagedBatch:
        batch = StagedBatch(total=df.height)
        df = _checks(df)
        bad = df.filter(pl.col("_reason").is_not_null())
        for line, reason in zip(bad["_line"].to_list(), bad["_reason"].to_list()):
            batch.rejections.append((line, reason))
        good = df.filter(pl.col("_reason").is_null())
        self._rows(good, batch)
        return batch

    def _credit(self, raw: Any, mbids: Any, batch: StagedBatch, shown: str | None = None) -> Credit:
        listed = tuple(raw) if isinstance(raw, list) else raw
        cache_key = listed if mbids is None and shown is None else (listed, tuple(mbids or ()), shown)
        hit = self.credits.get(cache_key)
        if hit is not None:
            return hit
        names = _artist_names(raw, self.separator)
        ids = list(mbids or ())
        artists = []
        for i, name in enumerate(names):
            mbid = normalise_mbid(ids[i]) if i < len(ids) else None
            key = mbid if mbid else "n:" + (_normalise(name) or name.casefold())  # as catalog/match.py
            artists.append((key, name, mbid))
            if key not in self.sent_artists:
                self.sent_artists.add(key)
                batch.artists.append((key, name, mbid))
        display = shown or ", ".join(names)
        credit = Credit(display, json.dumps([a[0] for a in artists], ensure_ascii=False),
                        names[0] if names else "", _normalise(display), tuple(artists))
        if len(self.credits) > _CACHE_LIMIT:  # bounded memory on dumps with millions of artists
            self.credits.clear()
        if len(self.sent_artists) > _CACHE_LIMIT:  # forgotten artists are staged again: harmless
            self.sent_artists.clear()
        self.credits[cache_key] = credit
        return credit

    def _identifiers(self, line: int, isrc_raw: Any, mbid_raw: Any, rel_raw: Any,
                     rejections: list[tuple[int, str]]) -> tuple[str | None, str | None, str | None] | None:
        """The slow path for identifiers polars did not find clean: normalise or reject."""
        isrc = mbid = rel = None
        if isrc_raw is not None:
            try:
                isrc = isrc_codes.normalise(isrc_raw)
            except ValueError as e:
                rejections.append((line, str(e)))
                return None
        for name, raw in (("recording_mbid", mbid_raw), ("release_mbid", rel_raw)):
            if raw is None:
                continue
            value = normalise_mbid(raw)
            if value is None:
                rejections.append((line, f"{name} {raw!r} is not a MusicBrainz ID (a UUID)"))
                return None
            if name == "recording_mbid":
                mbid = value
            else:
                rel = value
        return isrc, mbid, rel

    def _rows(self, df: pl.DataFrame, batch: StagedBatch) -> None:
        names = ("_line", "title", "_tnorm", "artists", "album", "isrc", "_isrc", "recording_mbid", "_mbid",
                 "release_mbid", "_rel", "track_id", "duration_ms", "date", "label", "upc",
                 "track_number", "disc_number", "listens", "popularity", "rights")
        state: tuple = ({}, {}, set())  # leaders by identifier, album keys, track keys
        with self.turn:
            columns = [df[n].to_list() for n in names]
            for extra in ("_artist_mbids", "_artist_display"):
                columns.append(df[extra].to_list() if extra in df.columns else [None] * df.height)
        rest = zip(*columns)
        while True:
            with self.turn:  # in slices, so the writer never waits long for its turn
                if not self._rows_slice(itertools.islice(rest, TURN_ROWS), batch, state):
                    return

    def _rows_slice(self, part: Iterable[tuple], batch: StagedBatch, state: tuple) -> bool:
        """Stage rows of one slice; False when the slice was empty."""
        leaders, albums, tracks = state
        seen = False
        rows, rejections, credits, default_rights = batch.rows, batch.rejections, self.credits, self.rights
        for (line, title, tnorm, raw_artists, album, isrc_raw, isrc, mbid_raw, mbid, rel_raw, rel, tid, dur,
             date, label, upc, tno, disc, listens, pop, rights, artist_mbids, shown) in part:
            seen = True
            if (isrc is None and isrc_raw is not None) or (mbid is None and mbid_raw is not None) or (
                    rel is None and rel_raw is not None):
                fixed = self._identifiers(line, isrc_raw, mbid_raw, rel_raw, rejections)
                if fixed is None:
                    continue
                isrc, mbid, rel = fixed
            credit = (credits.get(raw_artists) if artist_mbids is None and shown is None
                      and not isinstance(raw_artists, list) else None) or self._credit(
                raw_artists, artist_mbids, batch, shown)
            if tnorm is None:
                tnorm = _normalise(title)
            mkey = f"{credit.norm}\x1f{tnorm}" if (credit.norm or tnorm) else ""
            rec_key = isrc or (mbid_key(mbid) if mbid else
                               _derived_key("cat", mkey, None if dur is None else dur // 1000))
            seq = len(rows)
            akey = (rel, upc, credit.first, album)
            album_key, album_seq = albums.get(akey, _NO_ALBUM)
            album_first = album_seq is None
            if album_first:
                album_key = ("mb" + rel.replace("-", "") if rel else f"upc:{upc}" if upc else
                             _derived_key("album", credit.first, album) if album else None)
                album_seq = seq if album_key is not None else None
                albums[akey] = (album_key, album_seq)
            album_first = album_first and album_key is not None
            track_key = tid or "sa" + sha256(  # _derived_key("track", rec_key, album_key, disc, tno)
                f"track\x1f{rec_key}\x1f{album_key or ''}\x1f{'' if disc is None else disc}"
                f"\x1f{'' if tno is None else tno}".encode()).hexdigest()[:16]
            ident = isrc or (("m" + mbid) if mbid else None)
            leader = leaders.setdefault(ident, seq) if ident else seq
            track_first = track_key not in tracks
            tracks.add(track_key)
            rows.append((
                seq, title, credit.display, credit.keys_json, album, album_key, album_first, rel, upc, date,
                label, isrc, mbid, dur, tno, disc, listens, pop, rights or default_rights, mkey, rec_key,
                track_key, tid is None, leader, track_first, album_seq,
            ))
        return seen


def _artist_names(raw: Any, separator: str = ARTIST_SEPARATOR) -> list[str]:
    """Artists as a list: a list column, a JSON list in text, or text split on *separator*."""
    if raw is None:
        return []
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                value = jsontext.loads(text)
            except BadInput:  # not JSON (or nested absurdly deep): plain text with separators
                value = None
            if isinstance(value, list):
                raw = value
            else:
                raw = text.split(separator)
        else:
            raw = text.split(separator)
    names = [str(a).strip() for a in raw if a is not None]
    return [n for n in names if n]
