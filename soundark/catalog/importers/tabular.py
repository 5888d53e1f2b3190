"""Import catalog rows from JSON Lines, CSV (RFC 4180) or Parquet files.

The columns are :data:`soundark.catalog.importers._rows.FIELDS`, documented with
examples in docs/formats.md. Files are read in batches (about 50k rows), never
whole: JSON Lines (https://jsonlines.org) in byte blocks cut at a newline and
parsed by polars; CSV by the standard ``csv`` module; Parquet one row group
slice at a time through pyarrow. ``.gz``, ``.xz`` and ``.zst`` compressed JSONL
and CSV are read as streams. Bad rows are rejected with ``file:line: reason``
and the import goes on; the rows are merged set-wise by :mod:`._bulk`.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import csv
import gzip
import io
import json
import lzma
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import polars as pl

from soundark import jsontext
from soundark.catalog.importers import _reader
from soundark.catalog.importers._bulk import BulkWriter, ImportSource, run_import
from soundark.catalog.importers._rows import FIELDS, RowPreparer, StagedBatch
from soundark.catalog.importers.columns import (
    ColumnOptions,
    ColumnPlan,
    parse_map,
    plan_columns,
    shape_artists,
)
from soundark.catalog.store import Catalog, open_catalog
from soundark.config import ArchivePaths, Settings
from soundark.errors import BadInput, EnvironmentProblem, NotFound
from soundark.model import NO_PROGRESS, ImportReport, Progress

BATCH_ROWS = 50_000
CHUNK_BYTES = 16 << 20  # ~55k JSONL rows of a typical catalog
# No catalog row, listen or MusicBrainz entity comes near this; a longer line (a 1 MB .gz can
# inflate to a 1 GiB line) is rejected and skipped rather than held in memory.
MAX_LINE_BYTES = 64 << 20
FORMATS = (".jsonl", ".ndjson", ".csv", ".parquet")
COMPRESSIONS = (".gz", ".xz", ".zst")


@dataclass
class Frame:
    """One batch as read: text columns plus ``_line``, and lines already rejected."""

    df: pl.DataFrame
    rejections: list[tuple[int, str]] = field(default_factory=list)


def file_format(path: Path) -> tuple[str, str]:
    """(format, compression) from the file name, e.g. ('.jsonl', '.zst')."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = suffixes.pop() if suffixes and suffixes[-1] in COMPRESSIONS else ""
    fmt = suffixes[-1] if suffixes else ""
    if fmt not in FORMATS or (compression and fmt == ".parquet"):
        raise BadInput(path, f"unknown catalog format {''.join(path.suffixes) or '(no extension)'!r}: "
                             "use .jsonl/.ndjson, .csv or .parquet (JSONL and CSV may end in .gz, .xz, .zst)")
    return fmt, compression


@contextlib.contextmanager
def open_binary(path: Path, compression: str = "") -> Iterator[IO[bytes]]:
    """The file's bytes, decompressed as a stream; OS errors become soundark errors."""
    try:
        raw = open(path, "rb")
    except FileNotFoundError as e:
        raise NotFound(path, "no such file") from e
    except IsADirectoryError as e:
        raise BadInput(path, "is a folder, not a file") from e
    except OSError as e:
        raise EnvironmentProblem(path, f"cannot read: {e.strerror or e}") from e
    try:
        if compression == ".gz":
            stream: IO[bytes] = gzip.GzipFile(fileobj=raw)
        elif compression == ".xz":
            stream = lzma.LZMAFile(raw)
        elif compression == ".zst":
            import zstandard

            stream = io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw))  # type: ignore[arg-type]
        else:
            stream = raw
        yield stream
    finally:
        raw.close()


def _text_value(value: object) -> str | None:
    """A JSON value as polars' all-text schema renders it (lists stay JSON text)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _lines_slowly(chunk: bytes, first_line: int, sources: dict[str, str]) -> Frame:
    """Line by line with the json module: used only for a block polars refused."""
    columns: dict[str, list] = {f: [] for f in sources.values()}
    lines: list[int] = []
    rejections: list[tuple[int, str]] = []
    for offset, raw in enumerate(chunk.split(b"\n")):
        if not raw.strip():
            continue
        try:
            obj = jsontext.loads(raw)
        except ValueError as e:
            rejections.append((first_line + offset, f"not valid JSON ({e})"))
            continue
        if not isinstance(obj, dict):
            rejections.append((first_line + offset, f"not a JSON object but {type(obj).__name__}"))
            continue
        lines.append(first_line + offset)
        for src, f in sources.items():
            columns[f].append(_text_value(obj.get(src)))
    schema = {f: pl.String for f in columns}
    df = pl.DataFrame(columns, schema=schema).with_columns(pl.Series("_line", lines, dtype=pl.Int64))
    return Frame(df, rejections)


def _parse_jsonl_block(chunk: bytes, first_line: int, sources: dict[str, str]) -> Frame:
    schema = {src: pl.String for src in sources}
    try:
        df = pl.read_ndjson(io.BytesIO(chunk), schema=schema)
    except Exception:  # polars raises several types for malformed input; redo slowly to name lines
        return _lines_slowly(chunk, first_line, sources)
    renames = {src: f for src, f in sources.items() if src != f}
    if renames:
        df = df.rename(renames)
    physical = chunk.split(b"\n")
    if physical and physical[-1] == b"":
        physical.pop()
    if df.height == len(physical):
        lines = pl.int_range(first_line, first_line + df.height, eager=True, dtype=pl.Int64)
    else:  # blank lines were skipped: number the rest
        numbers = [first_line + i for i, raw in enumerate(physical) if raw.strip()]
        if len(numbers) != df.height:
            return _lines_slowly(chunk, first_line, sources)
        lines = pl.Series(numbers, dtype=pl.Int64)
    return Frame(df.with_columns(lines.alias("_line")))


def keys_jsonl(chunk: bytes, sample: int = 100) -> list[str]:
    """Keys of the JSON objects among the first *sample* lines, in first-seen order."""
    seen: dict[str, None] = {}
    for raw in chunk.split(b"\n", sample)[:sample]:
        with contextlib.suppress(ValueError):
            obj = jsontext.loads(raw)
            if isinstance(obj, dict):
                seen.update(dict.fromkeys(obj))
    return list(seen)


def _sources(names: list[str], options: ColumnOptions, on_plan, subject) -> dict[str, str]:
    """{key or column name: field} for a file whose columns have names (JSONL, Parquet)."""
    if options.headerless:
        raise BadInput(subject, "column numbers in --map are for CSV files without a header row")
    if not names:  # no object to learn from (every sampled line is bad): the fields' own names
        return {f: f for f in options.fields}
    plan = plan_columns(names, options, subject)
    if on_plan is not None:
        on_plan(plan)
    return {names[i]: f for i, f in plan.picks}


LONG_LINE = f"line longer than {MAX_LINE_BYTES >> 20} MiB; skipped"


def _past_newline(stream: IO[bytes]) -> bytes:
    """Read and drop the rest of the current line; return what follows its newline."""
    while block := stream.read(CHUNK_BYTES):
        nl = block.find(b"\n")
        if nl >= 0:
            return block[nl + 1:]
    return b""


def bounded_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) per line, None for a line over MAX_LINE_BYTES (its bytes are dropped)."""
    number = 0
    while raw := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (more := stream.readline(CHUNK_BYTES)) and not more.endswith(b"\n"):
                pass
            yield number, None
        else:
            yield number, raw


def json_lines(stream: IO[bytes]) -> Iterator[tuple[int, object, str | None]]:
    """(line number, parsed JSON, None) per non-blank line, or (number, None, why) for a line too
    long or not JSON: the line-by-line readers (listens, MusicBrainz) reject such a line and go on."""
    for number, raw in bounded_lines(stream):
        if raw is None:
            yield number, None, LONG_LINE
            continue
        if not raw.strip():
            continue
        try:
            yield number, jsontext.loads(raw), None
        except ValueError as e:
            yield number, None, f"not valid JSON ({e})"


def jsonl_frames(stream: IO[bytes], options: ColumnOptions, on_plan=None, subject: object = "") -> Iterator[Frame]:
    """Blocks of whole lines, each parsed into one Frame; memory bounded by CHUNK_BYTES."""
    rest = b""
    line = 1
    sources: dict[str, str] | None = None
    while True:
        block = stream.read(CHUNK_BYTES)
        data = rest + block
        if not data:
            return
        cut = data.rfind(b"\n") + 1 if block else len(data)
        if cut == 0 and len(data) > MAX_LINE_BYTES:
            rest = _past_newline(stream)
            yield Frame(pl.DataFrame(), [(line, LONG_LINE)])
            line += 1
            continue
        if cut == 0:  # one line longer than a block: keep reading
            rest = data
            continue
        chunk, rest = data[:cut], data[cut:]
        if sources is None:
            sources = _sources(keys_jsonl(chunk), options, on_plan, subject)
        yield _parse_jsonl_block(chunk, line, sources)
        line += chunk.count(b"\n")
        if not block:
            return


def _encoding(options: ColumnOptions) -> str:
    name = options.encoding or "utf-8"
    try:
        canonical = codecs.lookup(name).name
    except LookupError as e:
        raise BadInput("--encoding", f"unknown text encoding {name!r} (e.g. utf-8, latin-1, cp1252)") from e
    return "utf-8-sig" if canonical in ("utf-8", "utf-8-sig") else canonical


def csv_frames(stream: IO[bytes], options: ColumnOptions, on_plan=None, subject: object = "") -> Iterator[Frame]:
    """RFC 4180 CSV with a header row; short rows are padded, long rows rejected.

    Bytes that are not text in the file's encoding (UTF-8 unless --encoding) reject their
    row with the line and column; a stray quote rejects its line and the lines it swallowed
    are read again (see :class:`_Lines`).
    """
    # surrogateescape keeps undecodable bytes visible, so each bad row is named, not the file
    text = io.TextIOWrapper(stream, encoding=_encoding(options), errors="surrogateescape", newline="")
    try:
        yield from _csv_batches(_Lines(text), options, on_plan, subject)
    finally:
        text.detach()  # the caller closes the file


class _Lines:
    """Physical lines with their numbers, for csv.reader; lines handed back are read again.

    A quote that opens a field and never closes makes the csv module swallow the lines
    after it into one field. A row that spans several lines and has the wrong number of
    fields (or more than MAX_ROW_LINES lines) is such a row: its first line is rejected
    and the rest are handed back, so one stray quote costs one row, not the file.
    """

    def __init__(self, text: IO[str]) -> None:
        self.lines = iter(text)
        self.back: collections.deque[tuple[int, str]] = collections.deque()
        self.taken: list[tuple[int, str]] = []
        self.number = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.back:
            item = self.back.popleft()
        else:
            self.number += 1
            item = (self.number, next(self.lines))
        self.taken.append(item)
        return item[1]

    def stray_quote(self) -> tuple[int, str]:
        """Reject the first line taken for the current row; read the others again."""
        first, rest = self.taken[0], self.taken[1:]
        self.back.extendleft(reversed(rest))
        self.taken = []
        return first[0], (f"unbalanced quote: a quoted field opened here is not closed on this line "
                          f"(it ran on over {len(rest) + 1} lines); the line is skipped and the lines "
                          "after it are read again")


MAX_ROW_LINES = 100
_BAD_BYTE = re.compile("[\udc80-\udcff]")


def _not_text(row: list[str], picks: tuple[tuple[int, str], ...], encoding: str) -> str | None:
    for i, name in picks:
        value = row[i] if i < len(row) else ""
        if value.isascii():
            continue
        m = _BAD_BYTE.search(value)
        if m:
            byte = ord(m.group()) - 0xDC00
            hint = "; use --encoding latin-1 if the file is Latin-1" if encoding == "utf-8-sig" else ""
            return (f"not {encoding.replace('-sig', '').upper()} text: byte 0x{byte:02X} in column "
                    f"{i + 1} ({name}) at character {m.start() + 1}{hint}")
    return None


def _header(lines: _Lines, reader, options: ColumnOptions, on_plan, subject) -> tuple[ColumnPlan, int] | None:
    """The column plan, and the width of a full row; None for an empty file."""
    for row in reader:
        # blank lines, and comment lines before the header ('#'; Libre.fm writes it in UTF-7: '+ACM-')
        if not row or (len(row) == 1 and not row[0].strip()) or row[0].lstrip().startswith(("#", "+ACM-")):
            lines.taken = []
            continue
        plan = plan_columns(row, options, subject)
        if plan.headerless:
            lines.back.extendleft(reversed(lines.taken))  # the first line is data
        lines.taken = []
        if on_plan is not None:
            on_plan(plan)
        return plan, len(row)
    return None


def _csv_batches(lines: _Lines, options: ColumnOptions, on_plan, subject) -> Iterator[Frame]:
    reader = csv.reader(lines)
    first = _header(lines, reader, options, on_plan, subject)
    if first is None:
        return
    plan, width = first
    encoding = _encoding(options)
    while True:
        columns: dict[str, list] = {n: [] for _, n in plan.picks}
        numbers: list[int] = []
        rejections: list[tuple[int, str]] = []
        while len(numbers) < BATCH_ROWS:
            try:
                row = next(reader, None)
            except csv.Error:  # e.g. a field past the csv module's size limit: a stray quote
                rejections.append(lines.stray_quote())
                reader = csv.reader(lines)
                continue
            if row is None:
                break
            taken, lines.taken = lines.taken, []
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            line = taken[0][0]
            if len(taken) > 1 and (len(row) != width or len(taken) > MAX_ROW_LINES):
                lines.taken = taken
                rejections.append(lines.stray_quote())
                continue
            if len(row) > width:
                rejections.append((line, f"{len(row)} fields, but the header has {width}"))
                continue
            bad = _not_text(row, plan.picks, encoding)
            if bad:
                rejections.append((line, bad))
                continue
            numbers.append(line)
            for i, n in plan.picks:
                columns[n].append(row[i] if i < len(row) else None)
        if not numbers and not rejections:
            return
        yield Frame(shape_artists(_csv_frame(columns, numbers), plan), rejections)
        if len(numbers) < BATCH_ROWS:
            return


def _csv_frame(columns: dict[str, list], lines: list[int]) -> pl.DataFrame:
    df = pl.DataFrame(columns, schema={n: pl.String for n in columns})
    return df.with_columns(pl.Series("_line", lines, dtype=pl.Int64))


def parquet_frames(path: Path, options: ColumnOptions, on_plan=None) -> Iterator[Frame]:
    """Parquet in slices of BATCH_ROWS rows; ``_line`` is the 1-based row number."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except FileNotFoundError as e:
        raise NotFound(path, "no such file") from e
    except Exception as e:  # pyarrow raises ArrowInvalid/OSError for non-Parquet bytes
        raise BadInput(path, f"not a readable Parquet file ({e})") from e
    sources = _sources(pf.schema_arrow.names, options, on_plan, path)
    renames = {src: f for src, f in sources.items() if src != f}
    row = 1
    batches = pf.iter_batches(batch_size=BATCH_ROWS, columns=list(sources))
    while True:
        try:
            rb = next(batches, None)
        except Exception as e:  # a damaged row group: rows before it are in
            raise BadInput(path, f"damaged Parquet data after row {row - 1} ({e})") from e
        if rb is None:
            return
        df = pl.from_arrow(rb)
        if not isinstance(df, pl.DataFrame):  # a record batch is a table; anything else is not rows
            raise BadInput(path, f"Parquet data after row {row - 1} is not a table of rows")
        casts = []
        for n in df.columns:
            dtype, col = df.schema[n], pl.col(n)
            if isinstance(dtype, pl.List):
                casts.append(col.cast(pl.List(pl.String)))
            elif dtype.is_float():  # pandas writes integer columns with gaps as float64
                whole = col.is_finite() & (col == col.floor()) & (col.abs() < 2**62)
                casts.append(pl.when(whole).then(col.cast(pl.Int64, strict=False).cast(pl.String))
                             .otherwise(col.cast(pl.String)).alias(n))
            else:
                casts.append(col.cast(pl.String))
        df = df.with_columns(casts).rename(renames).with_columns(
            pl.int_range(row, row + df.height, dtype=pl.Int64).alias("_line"))
        row += df.height
        yield Frame(df)


def read_frames(path: Path, options: ColumnOptions, on_plan=None) -> Iterator[Frame]:
    """Frames of any supported tabular file, by extension, with columns named as fields.

    *on_plan* is called once with the :class:`ColumnPlan` (the export recognised, the
    columns ignored) before the first frame.
    """
    path = Path(path)
    fmt, compression = file_format(path)
    if fmt == ".parquet":
        yield from parquet_frames(path, options, on_plan)
        return
    with open_binary(path, compression) as stream:
        try:
            if fmt == ".csv":
                yield from csv_frames(stream, options, on_plan, path)
            else:
                yield from jsonl_frames(stream, options, on_plan, path)
        except (EOFError, lzma.LZMAError, gzip.BadGzipFile) as e:
            raise BadInput(path, f"compressed data is damaged ({e}); rows before the damage were imported") from e
        except OSError as e:
            raise EnvironmentProblem(path, f"cannot read: {e.strerror or e}") from e


def describe_plan(name: str, plan: ColumnPlan, progress: Progress, report: ImportReport) -> None:
    """Say which export was recognised (in the summary) and which columns are ignored."""
    if plan.shape is not None:
        report.warn(name, f"recognised: {plan.shape.name}; columns mapped: "
                          + ", ".join(f"{f}" for f in plan.fields))
        progress.note(f"{name}: recognised: {plan.shape.name}")
    if plan.unknown:
        progress.note(f"{name}: ignoring unknown column(s): {', '.join(plan.unknown)}")


def prepare_frame(preparer: RowPreparer, frame: Frame) -> StagedBatch:
    staged = preparer.prepare(frame.df) if frame.df.height else StagedBatch()
    staged.rejections[:0] = frame.rejections
    staged.total += len(frame.rejections)
    return staged


def import_catalog_file(catalog: Catalog, path: Path, *, rights: str = "unknown",
                        progress: Progress = NO_PROGRESS, column_map: str | None = None,
                        separator: str = ";", encoding: str | None = None) -> ImportReport:
    """Import catalog rows from *path* (.jsonl/.ndjson, .csv, .parquet; docs/formats.md).

    *rights* applies to rows without a ``rights`` value of their own. *column_map* is
    ``--map`` (``title=track_name,artists=artist_name``), *separator* splits a text
    artist cell, *encoding* is the CSV's text encoding (default UTF-8). Returns
    counts of new, updated and unchanged rows (tracks) and every rejected row
    with ``file:line`` and the reason. Re-importing a file changes nothing.
    """
    path = Path(path)
    file_format(path)
    if not path.exists():
        raise NotFound(path, "no such file")
    report = ImportReport(source=str(path))
    writer = BulkWriter(catalog, report, ImportSource(path.name))
    preparer = RowPreparer(rights, writer.turn, separator=separator)
    options = ColumnOptions(FIELDS, user_map=parse_map(column_map, FIELDS), separator=separator,
                            encoding=encoding)
    def on_plan(plan: ColumnPlan) -> None:
        describe_plan(path.name, plan, progress, report)

    if writer.matches_in_memory and path.stat().st_size >= _reader.PROCESS_READER_BYTES:
        # matching in memory is Python too: reading moves to a process of its own (_reader.py)
        batches = _reader.prepared_batches(path, options, rights, separator, on_plan)
        return run_import(writer, batches, lambda staged: staged, progress)
    frames = read_frames(path, options, on_plan)
    return run_import(writer, frames, lambda f: prepare_frame(preparer, f), progress)


def run_import_catalog(paths: ArchivePaths, settings: Settings, progress: Progress = NO_PROGRESS, *,
                       file: Path) -> ImportReport:
    """Pipeline entry (``soundark archive`` / ``demo``): import *file* into the archive's catalog.

    Rows without their own ``rights`` get ``settings.rights``.
    """
    with open_catalog(paths.catalog) as catalog:
        return import_catalog_file(catalog, file, rights=settings.rights, progress=progress,
                                   separator=settings.artist_separator)
