"""Import listen counts or popularity per recording (docs/formats.md, "Listen files").

The shape is ListenBrainz's popularity data set: ``recording_mbid,
total_listen_count, total_user_count`` (https://listenbrainz.readthedocs.io, "Popularity
data"), as CSV, JSON Lines or Parquet. A row may name its recording by ``isrc``
(ISO 3901) instead of ``recording_mbid``, and may give ``popularity`` (0-100)
instead of, or beside, the counts. ``listens`` and ``users`` are accepted as
short names of the two counts.

Counts *replace* what the catalog held (an import is a snapshot, not an
increment), so importing the same file twice changes nothing the second time.
A row naming a recording the catalog does not have is rejected with the reason.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import polars as pl

from soundark import isrc as isrc_codes
from soundark.catalog.importers._bulk import ImportSource, pipelined
from soundark.catalog.importers.tabular import Frame, file_format, read_frames
from soundark.catalog.store import Catalog
from soundark.errors import NotFound
from soundark.model import NO_PROGRESS, ImportReport, Progress, normalise_mbid

FIELDS = ("recording_mbid", "isrc", "total_listen_count", "total_user_count", "listens", "users",
          "popularity")
_INTEGER = r"^\s*[+-]?[0-9]+\s*$"

_CREATE = (
    "CREATE TEMP TABLE IF NOT EXISTS listen_stage (seq INTEGER PRIMARY KEY, line INTEGER, mbid TEXT,"
    " isrc TEXT, counts INTEGER, listens INTEGER, users INTEGER, popularity REAL, rec_id INTEGER)"
)
_RESOLVE = (
    "UPDATE listen_stage SET rec_id = (SELECT id FROM recording WHERE mbid = listen_stage.mbid)"
    " WHERE mbid IS NOT NULL",
    "UPDATE listen_stage SET rec_id = (SELECT id FROM recording WHERE isrc = listen_stage.isrc)"
    " WHERE rec_id IS NULL AND isrc IS NOT NULL",
)
# The last row for a recording wins; 'counts' says whether the row carried counts at all.
_LATEST = (
    "SELECT rec_id, max(seq) AS seq, counts, listens, users, popularity FROM listen_stage"
    " WHERE rec_id IS NOT NULL GROUP BY rec_id"
)
_NEW_VALUES = (
    "CASE WHEN s.counts THEN s.listens ELSE r.listens END",
    "CASE WHEN s.counts THEN s.users ELSE r.users END",
    "coalesce(s.popularity, r.popularity)",
)
_DIFFERS = (f"({_NEW_VALUES[0]}) IS NOT r.listens OR ({_NEW_VALUES[1]}) IS NOT r.users"
            f" OR ({_NEW_VALUES[2]}) IS NOT r.popularity")
_COUNT = f"SELECT count(*), coalesce(sum({_DIFFERS}), 0) FROM ({_LATEST}) AS s JOIN recording r ON r.id = s.rec_id"
_UPDATE = (
    "UPDATE recording AS r SET listens = " + _NEW_VALUES[0] + ", users = " + _NEW_VALUES[1]
    + ", popularity = " + _NEW_VALUES[2] + f" FROM ({_LATEST}) AS s WHERE r.id = s.rec_id AND ({_DIFFERS})"
)


def _checks(df: pl.DataFrame) -> pl.DataFrame:
    for name in FIELDS:
        if name not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.String).alias(name))
    stripped = {n: pl.col(n).cast(pl.String).str.strip_chars() for n in FIELDS}
    df = df.with_columns([pl.when(c == "").then(None).otherwise(c).alias(n) for n, c in stripped.items()])
    df = df.with_columns(pl.coalesce("total_listen_count", "listens").alias("listens"),
                         pl.coalesce("total_user_count", "users").alias("users"))
    ints = {n: pl.col(n).cast(pl.Int64, strict=False) for n in ("listens", "users")}
    pop = pl.col("popularity").cast(pl.Float64, strict=False)
    reason = (
        pl.when(pl.col("recording_mbid").is_null() & pl.col("isrc").is_null())
        .then(pl.lit("no recording_mbid or isrc"))
        .when(pl.col("listens").is_null() & pl.col("users").is_null() & pl.col("popularity").is_null())
        .then(pl.lit("no total_listen_count, total_user_count or popularity"))
    )
    for n in ("listens", "users"):
        bad = pl.col(n).is_not_null() & (~pl.col(n).str.contains(_INTEGER) | ints[n].is_null())
        reason = (reason.when(bad).then(pl.format(f"{n} {{}} is not a whole number", pl.col(n)))
                  .when(ints[n] < 0).then(pl.format(f"{n} {{}} is negative", pl.col(n))))
    reason = (reason.when(pl.col("popularity").is_not_null() & pop.is_null())
              .then(pl.format("popularity {} is not a number", pl.col("popularity")))
              .when((pop < 0) | (pop > 100) | pop.is_nan())
              .then(pl.format("popularity {} is outside 0-100", pl.col("popularity")))
              .otherwise(None))
    return df.with_columns(reason.alias("_reason"), ints["listens"].alias("listens"),
                           ints["users"].alias("users"), pop.alias("popularity"))


def _stage(frame: Frame) -> tuple[list[tuple], list[tuple[int, str]], int]:
    """Rows for listen_stage, rejections, and how many input rows the frame held."""
    rejections = list(frame.rejections)
    total = frame.df.height + len(frame.rejections)
    if not frame.df.height:
        return [], rejections, total
    df = _checks(frame.df)
    bad = df.filter(pl.col("_reason").is_not_null())
    rejections += zip(bad["_line"].to_list(), bad["_reason"].to_list())
    good = df.filter(pl.col("_reason").is_null())
    rows = []
    for line, mbid_text, isrc_text, listens, users, pop in good.select(
            "_line", "recording_mbid", "isrc", "listens", "users", "popularity").iter_rows():
        mbid = normalise_mbid(mbid_text) if mbid_text is not None else None
        if mbid_text is not None and mbid is None:
            rejections.append((line, f"recording_mbid {mbid_text!r} is not a MusicBrainz ID (a UUID)"))
            continue
        code = None
        if isrc_text is not None:
            try:
                code = isrc_codes.normalise(isrc_text)
            except ValueError as e:
                rejections.append((line, str(e)))
                continue
        counts = int(listens is not None or users is not None)
        rows.append((len(rows), line, mbid, code, counts, listens, users, pop))
    return rows, rejections, total


def _write(catalog: Catalog, rows: list[tuple], report: ImportReport, source: ImportSource) -> None:
    with catalog.transaction() as conn:
        conn.execute("DELETE FROM listen_stage")
        conn.executemany("INSERT INTO listen_stage(seq, line, mbid, isrc, counts, listens, users, popularity)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        for sql in _RESOLVE:
            conn.execute(sql)
        for line, mbid, code in conn.execute(
                "SELECT line, mbid, isrc FROM listen_stage WHERE rec_id IS NULL ORDER BY seq"):
            what = f"MBID {mbid}" if mbid else f"ISRC {code}"
            report.reject(f"{source.name}:{line}", f"no recording with {what} in the catalog")
        recordings, changed = conn.execute(_COUNT).fetchone()
        conn.execute(_UPDATE)
        resolved = conn.execute("SELECT count(*) FROM listen_stage WHERE rec_id IS NOT NULL").fetchone()[0]
        conn.execute("DELETE FROM listen_stage")
    # a recording named twice counts once as updated/unchanged; the extra rows are unchanged
    report.updated += changed
    report.unchanged += resolved - changed


def import_listens(catalog: Catalog, path: Path, *, progress: Progress = NO_PROGRESS) -> ImportReport:
    """Set recording.listens / users / popularity from a listen file (CSV, JSONL or Parquet).

    Returns how many rows updated a recording, how many changed nothing, and every
    rejected row (``file:line: reason``), including rows naming unknown recordings.
    """
    path = Path(path)
    file_format(path)
    if not path.exists():
        raise NotFound(path, "no such file")
    report = ImportReport(source=str(path))
    source = ImportSource(path.name)
    with catalog.transaction() as conn:
        conn.execute(_CREATE)

    def on_unknown(names: list[str]) -> None:
        progress.note(f"{path.name}: ignoring unknown column(s): {', '.join(names)}")

    progress.start(None, f"importing listens from {path.name}", "rows")
    with contextlib.closing(pipelined(read_frames(path, FIELDS, on_unknown), _stage)) as batches:
        for rows, rejections, total in batches:
            for line, reason in rejections:
                report.reject(f"{source.name}:{line}", reason)
            if rows:
                _write(catalog, rows, report, source)
            progress.advance(total)
            if progress.cancelled():
                progress.note(f"{path.name}: import cancelled; finished batches are kept")
                break
    return report
