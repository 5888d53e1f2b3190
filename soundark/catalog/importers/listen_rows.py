"""Rows of a listen file, checked and summed per batch (docs/formats.md, "Listen files").

:func:`flatten_listen` turns one ListenBrainz listen (the JSON of a user export or
of the API, https://listenbrainz.readthedocs.io "JSON documentation") into flat
keys; :func:`stage_frame` checks a batch and sums it per distinct
(MBID, ISRC, artist, title, album, user), so the database sees one row per
recording-ish key and batch, not one per listen.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import polars as pl

from soundark import isrc as isrc_codes
from soundark.catalog.importers.columns import ColumnOptions, plan_columns
from soundark.catalog.importers.tabular import BATCH_ROWS, Frame, _text_value
from soundark.errors import BadInput
from soundark.model import match_key, normalise_mbid

FIELDS = ("recording_mbid", "isrc", "listens", "users", "popularity", "artist", "title", "album", "user",
          "listened_at")
_WHOLE = r"^\s*[+-]?[0-9]+(\.0*)?\s*$"  # 2069050.0 is a whole number (exports written by float tools)


def flatten_listen(obj: object) -> object:
    """A ListenBrainz listen -> flat keys; any other object is returned as it is."""
    if not isinstance(obj, dict) or not isinstance(obj.get("track_metadata"), dict):
        return obj
    meta = obj["track_metadata"]
    info = meta.get("additional_info") if isinstance(meta.get("additional_info"), dict) else {}
    mapping = meta.get("mbid_mapping") if isinstance(meta.get("mbid_mapping"), dict) else {}
    # the MBID the listener's player sent wins over ListenBrainz's own mapping of the listen
    return {
        "listened_at": obj.get("listened_at"),
        "user_name": obj.get("user_name"),
        "artist_name": meta.get("artist_name"),
        "track_name": meta.get("track_name"),
        "release_name": meta.get("release_name"),
        "recording_mbid": info.get("recording_mbid") or mapping.get("recording_mbid"),
        "isrc": info.get("isrc"),
    }


def listen_frames(objects: Iterable[tuple[int, object]], options: ColumnOptions, on_plan,
                  subject: object) -> Iterator[Frame]:
    """Frames of BATCH_ROWS objects; the columns are planned from the first batch's keys."""
    sources: dict[str, str] | None = None
    batch: list[tuple[int, object]] = []
    it = iter(objects)
    while True:
        for item in it:
            batch.append(item)
            if len(batch) >= BATCH_ROWS:
                break
        if not batch:
            return
        if sources is None:
            sources = _plan(batch, options, on_plan, subject)
        yield _frame(batch, sources)
        if len(batch) < BATCH_ROWS:
            return
        batch = []


def _plan(batch: list[tuple[int, object]], options: ColumnOptions, on_plan, subject) -> dict[str, str]:
    if options.headerless:
        raise BadInput(subject, "column numbers in --map are for CSV files without a header row")
    names: dict[str, None] = {}
    for _, obj in batch[:100]:
        if isinstance(obj, dict):
            names.update(dict.fromkeys(obj))
    if not names:
        return {f: f for f in options.fields}
    keys = list(names)
    plan = plan_columns(keys, options, subject)
    if on_plan is not None:
        on_plan(plan)
    return {keys[i]: f for i, f in plan.picks}


def _frame(batch: list[tuple[int, object]], sources: dict[str, str]) -> Frame:
    columns: dict[str, list] = {f: [] for f in sources.values()}
    lines: list[int] = []
    rejections: list[tuple[int, str]] = []
    for line, obj in batch:
        if isinstance(obj, str):  # a reason the line could not be read
            rejections.append((line, obj))
            continue
        if not isinstance(obj, dict):
            rejections.append((line, f"not a JSON object but {type(obj).__name__}"))
            continue
        lines.append(line)
        for src, f in sources.items():
            columns[f].append(_text_value(obj.get(src)))
    df = pl.DataFrame(columns, schema={f: pl.String for f in columns})
    return Frame(df.with_columns(pl.Series("_line", lines, dtype=pl.Int64)), rejections)


def _checks(df: pl.DataFrame, raw: bool) -> pl.DataFrame:
    for name in FIELDS:
        if name not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.String).alias(name))
    stripped = {n: pl.col(n).cast(pl.String).str.strip_chars() for n in FIELDS}
    df = df.with_columns([pl.when(c == "").then(None).otherwise(c).alias(n) for n, c in stripped.items()])
    if raw:  # one row is one listen
        df = df.with_columns(pl.lit("1").alias("listens"))
    ints = {n: pl.col(n).str.replace(r"\.0*\s*$", "").cast(pl.Int64, strict=False) for n in ("listens", "users")}
    pop = pl.col("popularity").cast(pl.Float64, strict=False)
    named = pl.col("artist").is_not_null() & pl.col("title").is_not_null()
    reason = (
        pl.when(pl.col("recording_mbid").is_null() & pl.col("isrc").is_null() & ~named)
        .then(pl.lit("no recording_mbid, isrc or artist+title"))
        .when(pl.col("listens").is_null() & pl.col("users").is_null() & pl.col("popularity").is_null())
        .then(pl.lit("no total_listen_count, total_user_count or popularity"))
    )
    for n in ("listens", "users"):
        bad = pl.col(n).is_not_null() & (~pl.col(n).str.contains(_WHOLE) | ints[n].is_null())
        reason = (reason.when(bad).then(pl.format(f"{n} {{}} is not a whole number", pl.col(n)))
                  .when(ints[n] < 0).then(pl.format(f"{n} {{}} is negative", pl.col(n))))
    reason = (reason.when(pl.col("popularity").is_not_null() & pop.is_null())
              .then(pl.format("popularity {} is not a number", pl.col("popularity")))
              .when((pop < 0) | (pop > 100) | pop.is_nan())
              .then(pl.format("popularity {} is outside 0-100", pl.col("popularity")))
              .otherwise(None))
    return df.with_columns(reason.alias("_reason"), ints["listens"].alias("listens"),
                           ints["users"].alias("users"), pop.alias("popularity"))


_KEYS = ["recording_mbid", "isrc", "artist", "title", "album", "user"]


def stage_frame(frame: Frame, raw: bool) -> tuple[list[tuple], list[tuple[int, str, int]], int]:
    """listen_stage rows (summed per key), rejections (line, reason, rows) and input rows."""
    rejections = [(line, reason, 1) for line, reason in frame.rejections]
    total = frame.df.height + len(frame.rejections)
    if not frame.df.height:
        return [], rejections, total
    df = _checks(frame.df, raw)
    bad = df.filter(pl.col("_reason").is_not_null())
    rejections += [(line, reason, 1) for line, reason in zip(bad["_line"].to_list(), bad["_reason"].to_list())]
    good = (df.filter(pl.col("_reason").is_null())
            .with_columns(pl.col("listens").is_not_null().or_(pl.col("users").is_not_null()).alias("_counts"))
            .group_by(_KEYS, maintain_order=True)
            .agg(pl.col("_line").min(), pl.len().alias("_rows"), pl.col("listens").sum().alias("listens"),
                 pl.col("users").sum().alias("users"), pl.col("popularity").max(),
                 pl.col("_counts").any(), pl.col("listens").is_not_null().any().alias("_has_l"),
                 pl.col("users").is_not_null().any().alias("_has_u"))
            .sort("_line"))
    rows: list[tuple] = []
    for (line, n, mbid_text, isrc_text, artist, title, album, user, listens, users, pop, counts, has_l,
         has_u) in good.select("_line", "_rows", *_KEYS[:5], "user", "listens", "users", "popularity",
                               "_counts", "_has_l", "_has_u").iter_rows():
        mbid = normalise_mbid(mbid_text) if mbid_text is not None else None
        if mbid_text is not None and mbid is None:
            rejections.append((line, f"recording_mbid {mbid_text!r} is not a MusicBrainz ID (a UUID)", n))
            continue
        code = None
        if isrc_text is not None:
            try:
                code = isrc_codes.normalise(isrc_text)
            except ValueError as e:
                rejections.append((line, str(e), n))
                continue
        mkey = match_key(artist, title) if artist and title else None
        rows.append((len(rows), line, n, mbid, code, mkey or None, artist, title, album, int(counts),
                     listens if has_l else None, users if has_u else None, pop, user))
    rejections.sort(key=lambda r: r[0])
    return rows, rejections, total
