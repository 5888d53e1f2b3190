"""Which input column is which field (docs/formats.md, "CSV shapes and --map").

A header is matched case-insensitively, trimmed, with a byte-order mark tolerated.
In order of precedence a column is named by

1. ``--map field=column`` (a column name, or a 1-based column number for a file
   without a header row: ``--map artists=1,album=2,title=3``);
2. a known export, recognised by the columns it always writes (:data:`KNOWN`):
   Exportify (github.com/watsonbox/exportify, ``TracksBaseData.ts``: artists
   joined by ``", "`` with commas inside names written ``\\,``), the Spotify
   tracks data sets (maharshipandya/spotify-tracks-dataset: ``artists``
   separated by ``;``; the 600k and 1.2M tracks data sets on Kaggle: artists
   as Python-list text ``['A', 'B']``), and Last.fm / Libre.fm scrobble exports;
3. the field's own name, then the importer's aliases (``playcount`` is ``listens``).

A file in which no column is known is one clear error naming the columns seen
and the fields expected; a batch never reaches the row checks without a column.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from soundark.errors import BadInput


@dataclass(frozen=True)
class Shape:
    """A well-known export: the header names that identify it and what each column is."""

    name: str
    signature: frozenset[str]          # lower-case header names it always has
    columns: Mapping[str, str]         # lower-case header name -> field
    artists: str = "text"              # text | escaped-comma | list-text | split:<separator>


KNOWN: tuple[Shape, ...] = (
    Shape("Exportify export", frozenset({"track uri", "track name", "artist name(s)"}), {
        "track name": "title", "artist name(s)": "artists", "album name": "album",
        "album release date": "date", "disc number": "disc_number", "track number": "track_number",
        "track duration (ms)": "duration_ms", "duration (ms)": "duration_ms", "popularity": "popularity",
        "isrc": "isrc", "track uri": "track_id", "record label": "label", "label": "label",
    }, artists="escaped-comma"),
    Shape("Spotify tracks dataset (maharshipandya)", frozenset({"track_id", "artists", "track_name", "album_name"}), {
        "track_id": "track_id", "artists": "artists", "album_name": "album", "track_name": "title",
        "popularity": "popularity", "duration_ms": "duration_ms",
    }, artists="split:;"),
    Shape("Spotify 1.2M songs dataset", frozenset({"id", "name", "album", "album_id", "artists", "artist_ids"}), {
        "id": "track_id", "name": "title", "album": "album", "artists": "artists", "track_number": "track_number",
        "disc_number": "disc_number", "duration_ms": "duration_ms", "release_date": "date",
    }, artists="list-text"),
    Shape("Spotify 600k tracks dataset", frozenset({"id", "name", "artists", "id_artists", "popularity"}), {
        "id": "track_id", "name": "title", "artists": "artists", "popularity": "popularity",
        "duration_ms": "duration_ms", "release_date": "date",
    }, artists="list-text"),
    Shape("Last.fm/Libre.fm scrobble export", frozenset({"artist", "track"}), {
        "artist": "artists", "track": "title", "album": "album",
    }),
)


@dataclass(frozen=True)
class ColumnOptions:
    """How an importer names its columns, and what the operator said (--map, --encoding)."""

    fields: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)   # lower-case name -> field
    shapes: tuple[Shape, ...] = KNOWN
    user_map: Mapping[str, str] = field(default_factory=dict)  # field -> column name or number
    separator: str = ";"
    encoding: str | None = None
    rename: Mapping[str, str] = field(default_factory=dict)    # a shape's field -> this importer's field

    @property
    def headerless(self) -> bool:
        return bool(self.user_map) and all(v.isdigit() for v in self.user_map.values())


@dataclass(frozen=True)
class ColumnPlan:
    """Which column index holds which field, the export recognised, the columns ignored."""

    picks: tuple[tuple[int, str], ...]
    shape: Shape | None = None
    unknown: tuple[str, ...] = ()
    headerless: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f for _, f in self.picks)


def clean_header(name: object) -> str:
    return str(name).replace("\ufeff", "").strip().casefold()


def parse_map(text: str | None, fields: tuple[str, ...]) -> dict[str, str]:
    """``title=track_name,artists=artist_name`` -> {field: column}; unknown fields are an error."""
    if not text or not text.strip():
        return {}
    out: dict[str, str] = {}
    for part in text.split(","):
        target, sep, source = part.partition("=")
        target, source = target.strip().casefold(), source.strip()
        if not sep or not target or not source:
            raise BadInput("--map", f"{part.strip()!r} is not field=column (e.g. title=track_name)")
        if target not in fields:
            raise BadInput("--map", f"unknown field {target!r}; fields are: {', '.join(fields)}")
        if source.isdigit() and int(source) < 1:
            raise BadInput("--map", f"column numbers start at 1, not {source}")
        out[target] = source
    numbers = [v.isdigit() for v in out.values()]
    if any(numbers) and not all(numbers):
        raise BadInput("--map", "give every column by name (a header row) or every one by number (no header)")
    return out


def plan_columns(names: list[str], options: ColumnOptions, subject: object) -> ColumnPlan:
    """Map a header (or the first row of a headerless file) to fields; BadInput if nothing maps."""
    if options.headerless:
        picks = tuple(sorted((int(v) - 1, f) for f, v in options.user_map.items()))
        return ColumnPlan(picks, headerless=True)
    clean = [clean_header(n) for n in names]
    taken: dict[str, int] = {}
    for f, source in options.user_map.items():
        want = clean_header(source)
        if want not in clean:
            raise BadInput(subject, f"--map {f}={source}: no column {source!r}; the columns are: "
                                    f"{', '.join(map(str, names))}")
        taken[f] = clean.index(want)
    shape = next((s for s in options.shapes if s.signature <= set(clean)), None)
    passes: list[Mapping[str, str]] = []
    if shape is not None:
        passes.append({k: options.rename.get(v, v) for k, v in shape.columns.items()})
    passes += [{f: f for f in options.fields}, options.aliases]
    for names_to_fields in passes:
        for i, name in enumerate(clean):
            f = names_to_fields.get(name)
            if f in options.fields and f not in taken and i not in taken.values():
                taken[f] = i
    if not taken:
        raise BadInput(subject, f"no known column; the columns are: {', '.join(map(str, names)) or '(none)'}; "
                                f"expected some of: {', '.join(options.fields)}. Name them with "
                                "--map field=column, or by number if the file has no header row "
                                "(--map artists=1,title=3)")
    used = set(taken.values())
    unknown = tuple(sorted(str(n).strip() for i, n in enumerate(names) if i not in used))
    return ColumnPlan(tuple(sorted((i, f) for f, i in taken.items())), shape, unknown)


def _list_text(value: str | None) -> list[str] | None:
    """``"['A', 'B']"`` (Python's repr of a list, as pandas writes it) -> ['A', 'B']."""
    if value is None:
        return None
    text = value.strip()
    if not text.startswith("["):
        return [text] if text else []
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        parsed = None
    if isinstance(parsed, (list, tuple)):
        return [str(a) for a in parsed if a is not None]
    inner = text.strip("[]")  # not a literal (an unescaped quote inside a name): split on the joins
    return [p.strip().strip("'\"") for p in inner.split("', '")]


def shape_artists(df: pl.DataFrame, plan: ColumnPlan, column: str = "artists") -> pl.DataFrame:
    """Turn a known export's artist cell into a list column; plain text is left to the row checks."""
    if plan.shape is None or column not in df.columns or df.schema[column] != pl.String:
        return df
    how = plan.shape.artists
    col = pl.col(column)
    if how == "escaped-comma":  # Exportify: names joined by ", ", a comma inside a name written "\,"
        expr = (col.str.replace_all("\\,", "\x00", literal=True).str.split(",")
                .list.eval(pl.element().str.replace_all("\x00", ",", literal=True).str.strip_chars()))
    elif how.startswith("split:"):
        expr = col.str.split(how[len("split:"):]).list.eval(pl.element().str.strip_chars())
    elif how == "list-text":
        expr = col.map_elements(_list_text, return_dtype=pl.List(pl.String))
    else:
        return df
    return df.with_columns(expr.alias(column))
