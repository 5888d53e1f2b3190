"""Import recordings from a MusicBrainz JSON dump (https://musicbrainz.org/doc/MusicBrainz_Database/Download).

The JSON dump ships each entity type as JSON Lines inside a tarball:
``recording.tar.xz`` holds ``mbdump/recording``, one recording per line::

    {"id": "<uuid>", "title": "...", "length": 215000, "isrcs": ["USRC17607839"],
     "first-release-date": "1976-05-01",
     "artist-credit": [{"name": "...", "joinphrase": " & ", "artist": {"id": "<uuid>", "name": "..."}}],
     "releases": [{"id": "<uuid>", "title": "...", "date": "1976-05-01"}]}

The tarball is streamed (``tarfile`` mode ``r|xz``), never extracted to disk;
plain ``.json``/``.jsonl`` files (optionally ``.xz``/``.gz``/``.zst``) of the same
lines are read too. Each line becomes one catalog row (docs/formats.md): the
recording MBID, its first ISRC, the credited artists with their MBIDs (artist
keys are MBIDs), and the first release as the album. Rows are merged by the same
set-based path as :mod:`.tabular`, so matching and idempotence are the same.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import IO, Iterator

import polars as pl

from soundark.catalog.importers._bulk import BulkWriter, ImportSource, run_import
from soundark.catalog.importers._rows import FIELDS, RowPreparer
from soundark.catalog.importers.tabular import Frame, open_binary, prepare_frame
from soundark.catalog.store import Catalog
from soundark.errors import BadInput, NotFound
from soundark.model import NO_PROGRESS, ImportReport, Progress

BATCH_LINES = 20_000
DUMP_MEMBER = "recording"  # mbdump/recording inside recording.tar.xz


def _row(obj: dict) -> dict[str, object]:
    """One dump line as catalog-row text columns plus the artist MBIDs."""
    credits = obj.get("artist-credit") or []
    names, ids = [], []
    for credit in credits if isinstance(credits, list) else []:
        if not isinstance(credit, dict):
            continue
        artist = credit.get("artist") if isinstance(credit.get("artist"), dict) else {}
        name = credit.get("name") or artist.get("name")
        if name:
            names.append(str(name))
            ids.append(artist.get("id"))
    releases = obj.get("releases") or []
    release = releases[0] if isinstance(releases, list) and releases and isinstance(releases[0], dict) else {}
    isrcs = obj.get("isrcs") or []
    length = obj.get("length")
    return {
        "title": obj.get("title"),
        "artists": names,
        "_artist_mbids": ids,
        "album": release.get("title"),
        "release_mbid": release.get("id"),
        "isrc": isrcs[0] if isinstance(isrcs, list) and isrcs else None,
        "recording_mbid": obj.get("id"),
        "duration_ms": None if length is None else str(length),
        "date": obj.get("first-release-date") or release.get("date") or None,
    }


def _frame(rows: list[dict], lines: list[int], rejections: list[tuple[int, str]]) -> Frame:
    columns: dict[str, list] = {f: [] for f in FIELDS if f != "artists"}
    artists: list[list[str]] = []
    mbids: list[list[str | None]] = []
    for row in rows:
        for f in columns:
            v = row.get(f)
            columns[f].append(None if v is None else str(v))
        artists.append(row["artists"])
        mbids.append(row["_artist_mbids"])
    df = pl.DataFrame(columns, schema={f: pl.String for f in columns}).with_columns(
        pl.Series("artists", artists, dtype=pl.List(pl.String)),
        pl.Series("_artist_mbids", mbids, dtype=pl.List(pl.String)),
        pl.Series("_line", lines, dtype=pl.Int64),
    )
    return Frame(df, rejections)


def dump_frames(stream: IO[bytes]) -> Iterator[Frame]:
    """Batches of dump lines; bad lines are rejected with their line number."""
    rows: list[dict] = []
    lines: list[int] = []
    rejections: list[tuple[int, str]] = []
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as e:
            rejections.append((number, f"not valid JSON ({e})"))
            continue
        if not isinstance(obj, dict):
            rejections.append((number, f"not a JSON object but {type(obj).__name__}"))
            continue
        if not obj.get("id"):
            rejections.append((number, "no recording id"))
            continue
        rows.append(_row(obj))
        lines.append(number)
        if len(rows) >= BATCH_LINES:
            yield _frame(rows, lines, rejections)
            rows, lines, rejections = [], [], []
    if rows or rejections:
        yield _frame(rows, lines, rejections)


def _is_tarball(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".tar.xz", ".tar.gz", ".tar.bz2", ".tar", ".tar.zst"))


def _tar_frames(path: Path) -> Iterator[Frame]:
    """Stream the dump tarball and read its ``mbdump/recording`` member."""
    if path.name.lower().endswith(".tar.zst"):
        raise BadInput(path, "zstd tarballs are not supported: use the dump's .tar.xz")
    mode = "r|xz" if path.name.lower().endswith(".xz") else "r|*"
    with open_binary(path) as raw:
        try:
            with tarfile.open(fileobj=raw, mode=mode) as tar:
                for member in tar:
                    if member.isfile() and Path(member.name).name == DUMP_MEMBER:
                        stream = tar.extractfile(member)
                        assert stream is not None
                        yield from dump_frames(stream)
                        return
        except (tarfile.TarError, EOFError, OSError) as e:
            raise BadInput(path, f"not a readable tarball ({e}); rows read before the damage were imported") from e
    raise BadInput(path, f"no mbdump/{DUMP_MEMBER} inside: is this the recording dump (recording.tar.xz)?")


def _plain_frames(path: Path) -> Iterator[Frame]:
    suffix = path.suffix.lower()
    compression = suffix if suffix in (".xz", ".gz", ".zst") else ""
    with open_binary(path, compression) as stream:
        yield from dump_frames(stream)


def import_musicbrainz(catalog: Catalog, path: Path, *, rights: str = "unknown",
                       progress: Progress = NO_PROGRESS) -> ImportReport:
    """Import the recordings of a MusicBrainz JSON dump (lines, or the dump's ``.tar.xz``).

    Returns counts of new, updated and unchanged recordings (as rows) and every
    rejected line with ``file:line`` and the reason. Re-importing changes nothing.
    """
    path = Path(path)
    if not path.exists():
        raise NotFound(path, "no such file")
    report = ImportReport(source=str(path))
    writer = BulkWriter(catalog, report, ImportSource(path.name, "recordings"))
    preparer = RowPreparer(rights, writer.turn)
    frames = _tar_frames(path) if _is_tarball(path) else _plain_frames(path)
    return run_import(writer, frames, lambda f: prepare_frame(preparer, f), progress)
