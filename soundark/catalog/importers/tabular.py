"""Import catalog rows from JSON Lines, CSV (RFC 4180) or Parquet files.

The columns are those of :class:`soundark.model.CatalogRow`, documented with
examples in docs/formats.md. Files are read in batches (about 50k rows), never
whole: JSON Lines (https://jsonlines.org) in byte blocks cut at a newline and
parsed by polars; CSV by the standard ``csv`` module; Parquet one row group
slice at a time through pyarrow. ``.gz``, ``.xz`` and ``.zst`` compressed JSONL
and CSV are read as streams. Bad rows are rejected with ``file:line: reason``
and the import goes on; the rows are merged set-wise by :mod:`._bulk`.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import lzma
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

import polars as pl

from soundark.catalog.importers._bulk import BulkWriter, ImportSource, run_import
from soundark.catalog.importers._rows import FIELDS, RowPreparer, StagedBatch
from soundark.catalog.store import Catalog, open_catalog
from soundark.config import ArchivePaths, Settings
from soundark.errors import BadInput, EnvironmentProblem, NotFound
from soundark.model import NO_PROGRESS, ImportReport, Progress

BATCH_ROWS = 50_000
CHUNK_BYTES = 16 << 20  # ~55k JSONL rows of a typical catalog
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


def _lines_slowly(chunk: bytes, first_line: int, fields: tuple[str, ...]) -> Frame:
    """Line by line with the json module: used only for a block polars refused."""
    columns: dict[str, list] = {f: [] for f in fields}
    lines: list[int] = []
    rejections: list[tuple[int, str]] = []
    for offset, raw in enumerate(chunk.split(b"\n")):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as e:
            rejections.append((first_line + offset, f"not valid JSON ({e})"))
            continue
        if not isinstance(obj, dict):
            rejections.append((first_line + offset, f"not a JSON object but {type(obj).__name__}"))
            continue
        lines.append(first_line + offset)
        for f in fields:
            columns[f].append(_text_value(obj.get(f)))
    schema = {f: pl.String for f in fields}
    df = pl.DataFrame(columns, schema=schema).with_columns(pl.Series("_line", lines, dtype=pl.Int64))
    return Frame(df, rejections)


def _parse_jsonl_block(chunk: bytes, first_line: int, fields: tuple[str, ...]) -> Frame:
    schema = {f: pl.String for f in fields}
    try:
        df = pl.read_ndjson(io.BytesIO(chunk), schema=schema)
    except Exception:  # polars raises several types for malformed input; redo slowly to name lines
        return _lines_slowly(chunk, first_line, fields)
    physical = chunk.split(b"\n")
    if physical and physical[-1] == b"":
        physical.pop()
    if df.height == len(physical):
        lines = pl.int_range(first_line, first_line + df.height, eager=True, dtype=pl.Int64)
    else:  # blank lines were skipped: number the rest
        numbers = [first_line + i for i, raw in enumerate(physical) if raw.strip()]
        if len(numbers) != df.height:
            return _lines_slowly(chunk, first_line, fields)
        lines = pl.Series(numbers, dtype=pl.Int64)
    return Frame(df.with_columns(lines.alias("_line")))


def unknown_keys_jsonl(chunk: bytes, fields: tuple[str, ...], sample: int = 100) -> list[str]:
    seen: set[str] = set()
    for raw in chunk.split(b"\n", sample)[:sample]:
        with contextlib.suppress(ValueError):
            obj = json.loads(raw)
            if isinstance(obj, dict):
                seen.update(obj)
    return sorted(seen - set(fields))


def jsonl_frames(stream: IO[bytes], fields: tuple[str, ...], on_unknown=None) -> Iterator[Frame]:
    """Blocks of whole lines, each parsed into one Frame; memory bounded by CHUNK_BYTES."""
    rest = b""
    line = 1
    first = True
    while True:
        block = stream.read(CHUNK_BYTES)
        data = rest + block
        if not data:
            return
        cut = data.rfind(b"\n") + 1 if block else len(data)
        if cut == 0:  # one line longer than a block: keep reading
            rest = data
            continue
        chunk, rest = data[:cut], data[cut:]
        if first and on_unknown is not None:
            unknown = unknown_keys_jsonl(chunk, fields)
            if unknown:
                on_unknown(unknown)
            first = False
        yield _parse_jsonl_block(chunk, line, fields)
        line += chunk.count(b"\n")
        if not block:
            return


def csv_frames(stream: IO[bytes], fields: tuple[str, ...], on_unknown=None) -> Iterator[Frame]:
    """RFC 4180 CSV with a header row; short rows are padded, long rows rejected."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    try:
        yield from _csv_batches(csv.reader(text), fields, on_unknown)
    finally:
        text.detach()  # the caller closes the file


def _csv_batches(reader, fields: tuple[str, ...], on_unknown=None) -> Iterator[Frame]:
    header = next(reader, None)
    if header is None:
        return
    names = [h.strip() for h in header]
    wanted = [(i, n) for i, n in enumerate(names) if n in fields]
    unknown = sorted(set(names) - set(fields))
    if unknown and on_unknown is not None:
        on_unknown(unknown)
    width = len(names)
    while True:
        columns: dict[str, list] = {n: [] for _, n in wanted}
        lines: list[int] = []
        rejections: list[tuple[int, str]] = []
        try:
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) > width:
                    rejections.append((reader.line_num, f"{len(row)} fields, but the header has {width}"))
                    continue
                lines.append(reader.line_num)
                for i, n in wanted:
                    columns[n].append(row[i] if i < len(row) else None)
                if len(lines) >= BATCH_ROWS:
                    break
        except csv.Error as e:
            rejections.append((reader.line_num, f"not valid CSV ({e}); the rest of the file is skipped"))
            yield _csv_frame(columns, lines, rejections)
            return
        if not lines and not rejections:
            return
        yield _csv_frame(columns, lines, rejections)
        if len(lines) < BATCH_ROWS:
            return


def _csv_frame(columns: dict[str, list], lines: list[int], rejections: list[tuple[int, str]]) -> Frame:
    df = pl.DataFrame(columns, schema={n: pl.String for n in columns})
    df = df.with_columns(pl.Series("_line", lines, dtype=pl.Int64))
    return Frame(df, rejections)


def parquet_frames(path: Path, fields: tuple[str, ...], on_unknown=None) -> Iterator[Frame]:
    """Parquet in slices of BATCH_ROWS rows; ``_line`` is the 1-based row number."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except FileNotFoundError as e:
        raise NotFound(path, "no such file") from e
    except Exception as e:  # pyarrow raises ArrowInvalid/OSError for non-Parquet bytes
        raise BadInput(path, f"not a readable Parquet file ({e})") from e
    names = pf.schema_arrow.names
    unknown = sorted(set(names) - set(fields))
    if unknown and on_unknown is not None:
        on_unknown(unknown)
    present = [n for n in names if n in fields]
    row = 1
    batches = pf.iter_batches(batch_size=BATCH_ROWS, columns=present)
    while True:
        try:
            rb = next(batches, None)
        except Exception as e:  # a damaged row group: rows before it are in
            raise BadInput(path, f"damaged Parquet data after row {row - 1} ({e})") from e
        if rb is None:
            return
        df = pl.from_arrow(rb)
        assert isinstance(df, pl.DataFrame)
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
        df = df.with_columns(casts).with_columns(
            pl.int_range(row, row + df.height, dtype=pl.Int64).alias("_line"))
        row += df.height
        yield Frame(df)


def read_frames(path: Path, fields: tuple[str, ...], on_unknown=None) -> Iterator[Frame]:
    """Frames of any supported tabular file, by extension."""
    path = Path(path)
    fmt, compression = file_format(path)
    if fmt == ".parquet":
        yield from parquet_frames(path, fields, on_unknown)
        return
    with open_binary(path, compression) as stream:
        try:
            if fmt == ".csv":
                yield from csv_frames(stream, fields, on_unknown)
            else:
                yield from jsonl_frames(stream, fields, on_unknown)
        except (EOFError, lzma.LZMAError, gzip.BadGzipFile) as e:
            raise BadInput(path, f"compressed data is damaged ({e}); rows before the damage were imported") from e
        except OSError as e:
            raise EnvironmentProblem(path, f"cannot read: {e.strerror or e}") from e


def prepare_frame(preparer: RowPreparer, frame: Frame) -> StagedBatch:
    staged = preparer.prepare(frame.df) if frame.df.height else StagedBatch()
    staged.rejections[:0] = frame.rejections
    staged.total += len(frame.rejections)
    return staged


def import_catalog_file(catalog: Catalog, path: Path, *, rights: str = "unknown",
                        progress: Progress = NO_PROGRESS) -> ImportReport:
    """Import catalog rows from *path* (.jsonl/.ndjson, .csv, .parquet; docs/formats.md).

    *rights* applies to rows without a ``rights`` value of their own. Returns
    counts of new, updated and unchanged rows (tracks) and every rejected row
    with ``file:line`` and the reason. Re-importing a file changes nothing.
    """
    path = Path(path)
    file_format(path)
    if not path.exists():
        raise NotFound(path, "no such file")
    report = ImportReport(source=str(path))
    writer = BulkWriter(catalog, report, ImportSource(path.name))
    preparer = RowPreparer(rights, writer.turn)

    def on_unknown(names: list[str]) -> None:
        progress.note(f"{path.name}: ignoring unknown column(s): {', '.join(names)}")

    frames = read_frames(path, FIELDS, on_unknown)
    return run_import(writer, frames, lambda f: prepare_frame(preparer, f), progress)


def run_import_catalog(paths: ArchivePaths, settings: Settings, progress: Progress = NO_PROGRESS, *,
                       file: Path) -> ImportReport:
    """Pipeline entry (``soundark archive`` / ``demo``): import *file* into the archive's catalog.

    Rows without their own ``rights`` get ``settings.rights``.
    """
    with open_catalog(paths.catalog) as catalog:
        return import_catalog_file(catalog, file, rights=settings.rights, progress=progress)
