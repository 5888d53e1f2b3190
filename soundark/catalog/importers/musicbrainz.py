"""Import MusicBrainz JSON: the official dumps and web-service responses.

The JSON dump (https://musicbrainz.org/doc/MusicBrainz_Database/Download) ships each
entity type as JSON Lines in its own tarball, beside COPYING, README, TIMESTAMP,
JSON_DUMPS_SCHEMA_NUMBER and REPLICATION_SEQUENCE members:

- ``recording.tar.xz`` → ``mbdump/recording``: standalone recordings, one per line;
- ``release.tar.xz`` → ``mbdump/release``: releases with ``media[].tracks[].recording``,
  where nearly all recordings with ISRCs live.

Both tarballs are streamed (``tarfile`` mode ``r|xz``), never extracted to disk; plain
``.json``/``.jsonl`` files of the same lines (optionally ``.xz``/``.gz``/``.zst``) are
read too. The entity of each line is detected (:mod:`._mb_entities`): a release read
where recordings were expected is imported as a release, and any other entity is
rejected with its name. A file that is not JSON Lines but one JSON document (a
pretty-printed ``/ws/2/recording/<mbid>`` or ``/ws/2/release/<mbid>`` response, or a
search response ``{"recordings": [...]}`` / ``{"releases": [...]}``) is read whole;
its rejections are numbered by entity (``file:N`` is its N-th entity), not by line.

Rows are merged by the set-based path of :mod:`._bulk` (the same matching as every
importer); :mod:`._mb_aliases` then records further ISRCs and shared-ISRC MBIDs.
"""

from __future__ import annotations

import functools
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import polars as pl
import pyarrow as pa

from soundark import jsontext
from soundark.catalog.importers._bulk import BulkWriter, ImportSource, run_import
from soundark.catalog.importers._mb_aliases import AliasRecorder, MusicBrainzExtra
from soundark.catalog.importers._mb_entities import (
    Parsed,
    Rejected,
    entity_of,
    rows_of,
    search_items,
)
from soundark.catalog.importers._rows import (
    FIELDS,
    INT_FIELDS,
    RowPreparer,
    StagedBatch,
)
from soundark.catalog.importers.tabular import (
    Frame,
    bounded_lines,
    json_lines,
    open_binary,
    prepare_frame,
)
from soundark.catalog.store import Catalog
from soundark.errors import BadInput, NotFound
from soundark.model import NO_PROGRESS, ImportReport, Progress

BATCH_ROWS = 20_000
DUMP_MEMBERS = ("recording", "release")  # mbdump/<entity> inside <entity>.tar.xz
MAX_DOCUMENT_BYTES = 256 << 20  # a single web-service response is read whole
_LIST_COLUMNS = ("artists", "_artist_mbids")
_TEXT_COLUMNS = tuple(f for f in FIELDS if f != "artists" and f not in INT_FIELDS) + ("_artist_display",)


def _list_column(name: str, values: list[list]) -> pl.Series:
    """A list-of-text column built in one piece (polars converts nested Python lists one by one)."""
    offsets = [0]
    flat: list = []
    for v in values:
        flat.extend(v)
        offsets.append(len(flat))
    array = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(flat, pa.string()))
    return pl.Series(name, pl.from_arrow(array))


@dataclass
class Batch:
    frame: Frame
    extra: MusicBrainzExtra


class _BatchBuilder:
    """Accumulates parsed entities until a batch is full."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.lines: list[int] = []
        self.rejections: list[tuple[int, str]] = []
        self.extra = MusicBrainzExtra()

    def add(self, number: int, obj: object) -> None:
        if not isinstance(obj, dict):
            self.rejections.append((number, f"not a JSON object but {type(obj).__name__}"))
            return
        if entity_of(obj) == "search":
            for item in search_items(obj):
                self.add(number, item)
            return
        try:
            parsed = rows_of(obj)
        except Rejected as e:
            self.rejections.append((number, str(e)))
            return
        self._take(number, parsed)

    def _take(self, number: int, parsed: Parsed) -> None:
        self.rejections.extend((number, reason) for reason in parsed.rejections)
        self.rows.extend(parsed.rows)
        self.lines.extend([number] * len(parsed.rows))
        lines = self.extra.lines
        for mbid, isrcs, title in parsed.extras:
            lines.setdefault(mbid, number)
            if isrcs is not None or title is not None:
                self.extra.recordings.append((mbid, number, isrcs, title))
        self.extra.albums.extend(parsed.albums)

    def full(self) -> bool:
        return len(self.rows) >= BATCH_ROWS

    def take(self) -> Batch:
        rows = self.rows
        # every value was type-checked by _mb_entities: text is str, numbers are int
        columns = [pl.Series(n, [r.get(n) for r in rows], dtype=pl.String) for n in _TEXT_COLUMNS]
        columns += [pl.Series(n, [r.get(n) for r in rows], dtype=pl.Int64) for n in INT_FIELDS]
        columns += [_list_column(n, [r[n] for r in rows]) for n in _LIST_COLUMNS]
        df = pl.DataFrame(columns + [pl.Series("_line", self.lines, dtype=pl.Int64)])
        batch = Batch(Frame(df, self.rejections), self.extra)
        self.__init__()  # type: ignore[misc]
        return batch


def _entities(lines: Iterable[tuple[int, object, str | None]]) -> Iterator[Batch]:
    builder = _BatchBuilder()
    for number, obj, why in lines:
        if why is not None:
            builder.rejections.append((number, why))
            continue
        builder.add(number, obj)
        if builder.full():
            yield builder.take()
    if builder.rows or builder.rejections:
        yield builder.take()


def dump_batches(stream: IO[bytes]) -> Iterator[Batch]:
    """Batches of dump lines; bad lines are rejected with their line number."""
    return _entities(json_lines(stream))


def _is_tarball(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".tar.xz", ".tar.gz", ".tar.bz2", ".tar", ".tar.zst"))


def _tar_batches(path: Path) -> Iterator[Batch]:
    """Stream a dump tarball and read its ``mbdump/recording`` or ``mbdump/release`` member."""
    if path.name.lower().endswith(".tar.zst"):
        raise BadInput(path, "zstd tarballs are not supported: use the dump's .tar.xz")
    mode = "r|xz" if path.name.lower().endswith(".xz") else "r|*"
    found = False
    with open_binary(path) as raw:
        try:
            with tarfile.open(fileobj=raw, mode=mode) as tar:
                for member in tar:
                    parts = Path(member.name).parts
                    if member.isfile() and len(parts) >= 2 and parts[-2:] in [("mbdump", m) for m in DUMP_MEMBERS]:
                        found = True
                        stream = tar.extractfile(member)
                        if stream is None:  # isfile() says it is a regular member: a damaged header
                            raise BadInput(path, f"{member.name}: cannot be read from the tarball")
                        yield from dump_batches(stream)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise BadInput(path, f"not a readable tarball ({e}); rows read before the damage were imported") from e
    if not found:
        raise BadInput(path, "no mbdump/recording or mbdump/release inside: is this the JSON dump's "
                             "recording.tar.xz or release.tar.xz?")


def _document(path: Path, compression: str) -> object | None:
    """The file as one JSON document, when it is one and not JSON Lines."""
    with open_binary(path, compression) as stream:
        first: bytes | None = b""
        for _, first in bounded_lines(stream):
            if first is None or first.strip():
                break
        try:
            if first is not None:  # None: one line over MAX_LINE_BYTES, perhaps a compact document
                jsontext.loads(first)
                return None  # the first line is a whole JSON value: JSON Lines
        except ValueError:
            pass
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        return None
    with open_binary(path, compression) as stream:
        data = stream.read(MAX_DOCUMENT_BYTES + 1)  # inflated size counts: a .gz bomb stays bounded
    if len(data) > MAX_DOCUMENT_BYTES:
        return None
    try:
        return jsontext.loads(data)
    except ValueError:
        return None  # not a document either: read as lines, each bad line rejected with its number


def _plain_batches(path: Path) -> Iterator[Batch]:
    suffix = path.suffix.lower()
    compression = suffix if suffix in (".xz", ".gz", ".zst") else ""
    document = _document(path, compression)
    if isinstance(document, dict):
        items = search_items(document) if entity_of(document) == "search" else [document]
        yield from _entities((n, item, None) for n, item in enumerate(items, start=1))
        return
    with open_binary(path, compression) as stream:
        yield from dump_batches(stream)


def _prepare(preparer: RowPreparer, batch: Batch) -> StagedBatch:
    staged = prepare_frame(preparer, batch.frame)
    staged.extra = batch.extra
    return staged


def import_musicbrainz(catalog: Catalog, paths: Path | Iterable[Path], *, rights: str = "unknown",
                       progress: Progress = NO_PROGRESS) -> ImportReport:
    """Import MusicBrainz recordings and releases from one or more files (docs/formats.md).

    Each file may be a dump tarball, JSON Lines of recordings and/or releases, or one
    web-service or search response. Returns one report for all files: counts of new,
    updated and unchanged rows (one per recording line, one per release track), every
    rejected line with ``file:line`` and the reason, and the aliases recorded.
    Re-importing changes nothing.
    """
    files = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    for path in files:
        if not path.exists():
            raise NotFound(path, "no such file")
    report = ImportReport(source=", ".join(str(p) for p in files))
    for path in files:
        writer = BulkWriter(catalog, report, ImportSource(path.name, "rows"))
        writer.after_merge.append(AliasRecorder(catalog.conn, report, path.name))
        preparer = RowPreparer(rights, writer.turn)
        batches = _tar_batches(path) if _is_tarball(path) else _plain_batches(path)
        run_import(writer, batches, functools.partial(_prepare, preparer), progress)
    return report
