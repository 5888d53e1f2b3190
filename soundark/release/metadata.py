"""The metadata release: a clean catalog snapshot (SQLite) plus Parquet exports, as a BagIt bag.

* ``data/catalog.sqlite3`` (or ``.sqlite3.zst`` when zstd saves at least a fifth): made with
  ``VACUUM INTO``, then cleaned of operator-only data (local source paths, mtimes, error
  texts, scan and upgrade times, the encode job journal) and vacuumed again so no freed page still holds them;
  journal mode DELETE, so it is one self-contained file. Reproducible: the operator's
  timestamps (plan.planned_at, encoded.created_at) become the release date and every table is
  stored in key order, so two builds from the same sources give the same bytes and infohash.
* ``data/parquet/<table>.parquet``: the main tables, zstd-compressed columns (Apache Parquet).
* ``data/README.txt``: every file and every column, the column notes taken from the schema.

* Parquet files are written in key order, zstd level 10, one row group per 100,000 rows.

A new metadata release is published only when the payload differs from the latest one;
otherwise the run reports it unchanged (releases are immutable, and identical ones useless).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from soundark.catalog import Catalog, open_catalog, vocabulary
from soundark.errors import EnvironmentProblem, os_reason
from soundark.fixity.bagit import read_manifest
from soundark.model import Progress
from soundark.release.bag import BagEntry, BuiltBag, build_bag
from soundark.release.publish import Context, next_name, publish
from soundark.release.readme import metadata_readme
from soundark.release.result import ReleaseResult, bag_info

EXPORTED = ("recording", "artist", "recording_artist", "album", "track", "plan", "encoded", "art",
            "release", "release_file")
TABLE_NOTES = {
    "recording": "one piece of audio, keyed by ISRC when it has one",
    "artist": "a credited artist",
    "recording_artist": "who is credited on a recording, in credit order",
    "album": "an album (a release in MusicBrainz terms)",
    "track": "a recording as it appears on an album",
    "plan": "what the archive keeps of each recording, and its rank by listens",
    "encoded": "the audio file kept for a recording (content-addressed by SHA-256)",
    "art": "cover images (content-addressed by SHA-256)",
    "release": "every published release (BagIt bag + torrent); metadata releases are left out",
    "release_file": "which file of which release holds which recording",
}
COMMON_NOTES = {
    "id": "row number inside this catalog (other tables refer to it)",
    "title": "title as credited",
    "artist": "artist credit as displayed",
    "name": "name",
    "recording_id": "the recording (recording.id)",
    "album_id": "the album (album.id)",
    "artist_id": "the artist (artist.id)",
    "release_id": "the release (release.id)",
    "position": "credit order, 0 first",
    "track_number": "track number on its disc",
    "disc_number": "disc number in the album",
    "label": "record label",
    "upc": "UPC/EAN barcode of the album",
    "mbid": "MusicBrainz ID",
    "date": "release date, ISO 8601 prefix",
    "rights": "rights value: who may copy it (e.g. cc-by-4.0, public-domain, unknown)",
    "duration_ms": "duration in milliseconds",
    "sha256": "SHA-256 of the file's bytes (hex)",
    "bytes": "size in bytes",
    "mime": "media type",
    "ext": "file name extension",
    "width": "pixels",
    "height": "pixels",
    "created_at": "the release date (YYYY-MM-DD): when it was made is the operator's, not the archive's",
    "planned_at": "the release date (YYYY-MM-DD): when it was planned is the operator's, not the archive's",
}
_ARROW = {"INTEGER": pa.int64(), "REAL": pa.float64(), "TEXT": pa.string(), "BLOB": pa.binary(),
          "ANY": pa.string()}
_BATCH = 100_000
_ZSTD_LEVEL = 10
_STRIP = (
    "UPDATE source_file SET path = 'source-file-' || id, mtime_ns = 0, error = NULL, scanned_at = ''",
    # the detail names the operator's other file by its path: the rule (matched_by) stays
    "UPDATE source_file SET match_detail = NULL",
    "UPDATE split_file SET path = 'source-file-' || coalesce("
    "(SELECT min(f.id) FROM source_file f WHERE f.sha256 = split_file.sha256), 0)",
    "DELETE FROM encode_job",
    # The operator's planning history goes; the latest plan's figures stay (soundark report and the
    # web read coverage from them, on a snapshot too), as run 1, without what the run itself wrote.
    "DELETE FROM plan_run WHERE id != (SELECT max(id) FROM plan_run)",
    "UPDATE plan_run SET id = 1, changed = 0, tier_changes = 0",
    "UPDATE schema_migration SET applied_at = ''",  # when this operator upgraded: not the archive's business
    # a metadata release cannot describe itself; leaving them out keeps unchanged catalogs unchanged
    "DELETE FROM release_file WHERE release_id IN (SELECT id FROM release WHERE phase = 'metadata')",
    "DELETE FROM release WHERE phase = 'metadata'",
)


# Timestamps of the operator's runs become the release date: two builds from the same sources match.
_DATED = ("UPDATE plan SET planned_at = ?", "UPDATE encoded SET created_at = ?", "UPDATE plan_run SET created_at = ?",
          "UPDATE source_file SET merged_at = ? WHERE merged_at IS NOT NULL", "UPDATE split_file SET split_at = ?")
_SCHEMA_COOKIE = 1  # the live catalog's counts its own schema changes (plan drops and remakes indexes)


def snapshot(catalog: Catalog, target: Path, date: str) -> list[str]:
    """Write the cleaned snapshot to ``target``; return the tables exported to Parquet.

    The file is the same bytes for the same catalog content, whatever order rows were written
    in and whatever the catalog went through: timestamps become *date*, rows of tables without
    an integer key are written back in key order, the full-text index is rebuilt, indexes and
    triggers are remade by name, the schema cookie is fixed, and a last VACUUM lays the pages
    out afresh. (Integer ids come from import and scan order, which follows the sorted inputs.)
    """
    catalog.execute("VACUUM INTO ?", (str(target),))
    with open_catalog(target) as snap:
        present = {row[0] for row in snap.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        snap.execute("PRAGMA foreign_keys = OFF")  # rows are taken out and put back in key order
        with snap.transaction() as conn:
            for sql in _STRIP + _DATED:
                table = re.search(r"(?:UPDATE|FROM)\s+(\w+)", sql).group(1)
                if table in present:
                    conn.execute(sql, (date,) if "?" in sql else ())
            for table in sorted(present):
                _rewrite_in_key_order(snap, table)
            if "recording_fts" in present:  # its segments reflect the catalog's write history
                conn.execute("INSERT INTO recording_fts(recording_fts) VALUES ('rebuild')")
            _remake_in_name_order(snap)
        if "search_word" in present:
            # the rebuild (written out at its commit) changed the index's structure record: search_word
            # and search_postings are made current for it, so a web over the snapshot uses them
            with snap.transaction() as conn:
                vocabulary.refresh(conn)
        snap.execute("PRAGMA journal_mode = DELETE")
        snap.execute(f"PRAGMA schema_version = {_SCHEMA_COOKIE}")  # nobody else has this file open
        snap.execute("VACUUM")  # freed pages could still hold the removed paths
    return [t for t in EXPORTED if t in present]


def _remake_in_name_order(snap: Catalog) -> None:
    """Indexes and triggers again, by name: a re-plan drops and remakes indexes, which moves
    them in sqlite_master and so in the file."""
    for kind in ("index", "trigger"):
        made = snap.execute("SELECT name, sql FROM sqlite_master WHERE type = ? AND sql IS NOT NULL "
                            "ORDER BY name", (kind,)).fetchall()
        for name, _ in made:
            snap.execute(f'DROP {kind.upper()} "{name}"')
        for _, sql in made:
            snap.execute(sql)


def _key_columns(snap: Catalog, table: str) -> list[str]:
    """The primary key's columns in key order (every column when there is none)."""
    info = list(snap.execute(f"PRAGMA table_info({table})"))
    keyed = sorted((row[5], row[1]) for row in info if row[5])
    return [name for _, name in keyed] or [row[1] for row in info]


def _rewrite_in_key_order(snap: Catalog, table: str) -> None:
    """Give a table's rows rowids in key order when they got them in write order.

    Tables with an INTEGER PRIMARY KEY (its rowid) or WITHOUT ROWID are already stored by key;
    the others (encoded, art, release_file) got rowids in the order rows were written, which
    for encode results is the order jobs happened to finish.
    """
    sql = str(snap.scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)) or "")
    if not _has_rowid(snap, table) or sql.upper().startswith("CREATE VIRTUAL") or table.startswith("sqlite_"):
        return
    info = list(snap.execute(f"PRAGMA table_info({table})"))
    keys = [row for row in info if row[5]]
    if len(keys) == 1 and str(keys[0][2]).upper() == "INTEGER":
        return
    order = ", ".join(f'"{c}"' for c in _key_columns(snap, table))
    snap.execute(f"CREATE TEMP TABLE _key_order AS SELECT * FROM {table} ORDER BY {order}")
    snap.execute(f"DELETE FROM {table}")
    snap.execute(f"INSERT INTO {table} SELECT * FROM temp._key_order ORDER BY {order}")
    snap.execute("DROP TABLE temp._key_order")


def column_notes(catalog: Catalog, table: str) -> list[tuple[str, str, str]]:
    """(column, type, note) from the schema text: the ``-- note`` after each column definition."""
    sql = catalog.scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)) or ""
    notes = {}
    for line in str(sql).splitlines():
        m = re.match(r"\s*(\w+)\s+\w+.*?--\s*(.+)$", line)
        if m:
            notes[m.group(1)] = m.group(2).strip()
    return [(row[1], row[2] or "ANY", notes.get(row[1]) or COMMON_NOTES.get(row[1], ""))
            for row in catalog.execute(f"PRAGMA table_info({table})")]


def export_parquet(snap: Catalog, table: str, target: Path) -> None:
    columns = column_notes(snap, table)
    schema = pa.schema([(name, _ARROW.get(kind.upper(), pa.string())) for name, kind, _ in columns])
    order = ", ".join(f'"{c}"' for c in _key_columns(snap, table))
    cur = snap.execute(f"SELECT * FROM {table} ORDER BY {order}")  # by key: the same rows, the same file
    with pq.ParquetWriter(target, schema, compression="zstd", compression_level=_ZSTD_LEVEL) as writer:
        while rows := cur.fetchmany(_BATCH):
            arrays = [pa.array([r[i] for r in rows], type=schema.field(i).type) for i in range(len(columns))]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))


def _has_rowid(snap: Catalog, table: str) -> bool:
    sql = str(snap.scalar("SELECT sql FROM sqlite_master WHERE name = ?", (table,)) or "")
    return "WITHOUT ROWID" not in sql.upper()


def _maybe_compress(path: Path) -> Path:
    """``path.zst`` if zstd saves at least a fifth, else ``path`` (both deterministic)."""
    raw = path.read_bytes()
    packed = zstandard.ZstdCompressor(level=_ZSTD_LEVEL, write_checksum=True).compress(raw)
    if len(packed) > 0.8 * len(raw):
        return path
    out = path.with_name(path.name + ".zst")
    out.write_bytes(packed)
    path.unlink()
    return out


def _files_text(db_name: str, tables: list[str]) -> list[tuple[str, str]]:
    how = ("zstd-compressed SQLite database: unpack with `zstd -d " + db_name + "`, then open with sqlite3"
           if db_name.endswith(".zst") else "SQLite database (open with sqlite3 or any SQLite browser)")
    files = [(f"data/{db_name}", how)]
    files += [(f"data/parquet/{t}.parquet", f"table {t} as Apache Parquet (zstd columns; pandas, polars, "
               "DuckDB, Spark read it)") for t in tables]
    files.append(("data/README.txt", "this file"))
    return files


def _build_payload(catalog: Catalog, ctx: Context, work: Path, name: str, stamp: str) -> list[BagEntry]:
    db = work / "catalog.sqlite3"
    tables = snapshot(catalog, db, stamp)
    (work / "parquet").mkdir()
    with open_catalog(db, readonly=True) as snap:
        for table in tables:
            export_parquet(snap, table, work / "parquet" / f"{table}.parquet")
        described = [(t, TABLE_NOTES.get(t, ""), column_notes(snap, t)) for t in tables]
    db = _maybe_compress(db)
    readme = metadata_readme(name, ctx.date, _files_text(db.name, tables), described).encode("utf-8")
    entries = [BagEntry(f"data/{db.name}", db.stat().st_size, source=db)]
    entries += [BagEntry(f"data/parquet/{t}.parquet", (work / "parquet" / f"{t}.parquet").stat().st_size,
                         source=work / "parquet" / f"{t}.parquet") for t in tables]
    entries.append(BagEntry("data/README.txt", len(readme), content=readme))
    return entries


def _latest(catalog: Catalog) -> tuple[str, str] | None:
    row = catalog.execute(
        "SELECT name, created FROM release WHERE phase = 'metadata' ORDER BY id DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else None


def _same_payload(a: Path, b: Path) -> bool:
    def content(bag: Path) -> dict[str, str]:
        return {k: v for k, v in read_manifest(bag).items() if k != "data/README.txt"}  # README has the date
    return content(a) == content(b)


def _build(catalog: Catalog, ctx: Context, name: str, stamp: str, progress: Progress) -> BuiltBag:
    """The metadata bag in staging, its timestamps set to *stamp*."""
    work = ctx.staging / "metadata-work"
    shutil.rmtree(ctx.staging / name, ignore_errors=True)
    try:
        work.mkdir(parents=True)
    except OSError as e:
        raise EnvironmentProblem(work, f"cannot create: {os_reason(e)}") from e
    entries = _build_payload(catalog, ctx, work, name, stamp)
    built = build_bag(ctx.staging / name, entries, bag_info(ctx, name, "Catalog metadata of a music "
                      "preservation archive: SQLite snapshot and Parquet tables; see data/README.txt"),
                      one_pass=not ctx.hybrid, progress=progress)
    shutil.rmtree(work, ignore_errors=True)
    return built


def publish_metadata(catalog: Catalog, ctx: Context, result: ReleaseResult, progress: Progress) -> None:
    """Build the metadata bag in staging; publish it unless the latest metadata release holds the same.

    Timestamps in the snapshot are the release date, so the comparison is made with a build
    stamped with the latest release's date; only a changed catalog is built again with today's.
    """
    name = next_name(catalog, ctx, "metadata")
    latest = _latest(catalog)
    built = None
    if latest and (ctx.paths.releases / latest[0]).is_dir():
        built = _build(catalog, ctx, name, latest[1], progress)
        if _same_payload(ctx.paths.releases / latest[0], built.folder):
            result.unchanged.append(latest[0])
            return
        if latest[1] != ctx.date:
            built = None
    if built is None:
        built = _build(catalog, ctx, name, ctx.date, progress)
    files = [(None, rel, sha, size) for rel, sha, size in built.payload]
    result.published.append(publish(catalog, ctx, built, "metadata", files))
