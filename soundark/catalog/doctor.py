"""`soundark doctor`: is the catalog whole, and does it agree with the archive folder?

Checks, reading only (the catalog is opened ``mode=ro``, ``immutable=1`` on read-only media):

* the file itself against its SQLite header (https://www.sqlite.org/fileformat2.html, §1.3):
  the page size (offset 16) times the page count (offset 28, valid when the change counter at
  offset 24 equals the version-valid-for number at offset 92) is the length the file must have;
  a shorter file was truncated;
* ``PRAGMA integrity_check`` over the whole file, then per table (``PRAGMA integrity_check(T)``,
  SQLite >= 3.33) with a full read of each, so the report names the tables that are damaged and
  how many of their rows can still be read: what is lost;
* the archive folder against the catalog: store and art files the catalog lists that are missing,
  content-addressed files it does not know, encode jobs left ``running`` past their lease, and
  staging or temporary leftovers of killed runs.

When the catalog is damaged the report says how to restore it from the newest metadata release
(``releases/<prefix>-metadata-NNNN/data/catalog.sqlite3[.zst]``) and what that snapshot lacks
(the operator's source paths and the encode journal: a rescan brings them back).
"""

from __future__ import annotations

import re
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from soundark.catalog.connection import CatalogConnection
from soundark.catalog.store import connect_readonly
from soundark.config import ArchivePaths
from soundark.errors import SoundarkError

_CONTENT_NAME = re.compile(r"^[0-9a-f]{64}(\.[A-Za-z0-9]{1,8})?$")
_MAX_MESSAGES = 100  # integrity_check stops after this many: enough to see the extent
_MAX_LISTED = 50     # per kind of finding; the count is always whole


@dataclass(frozen=True)
class Finding:
    """One thing wrong: its kind, the file, table or job it is about, and the detail."""

    kind: str
    subject: str
    detail: str = ""


@dataclass
class DoctorReport:
    catalog: str
    integrity: list[str] = field(default_factory=list)  # SQLite's messages; ["ok"] when whole
    tables: dict[str, int | None] = field(default_factory=dict)  # rows readable; None: none
    damaged_tables: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # findings per kind (whole, not capped)
    restore_from: str | None = None
    restore_steps: list[str] = field(default_factory=list)

    @property
    def catalog_ok(self) -> bool:
        return self.integrity == ["ok"] and not self.damaged_tables

    @property
    def ok(self) -> bool:
        return self.catalog_ok and not self.counts

    def add(self, kind: str, subject: str, detail: str = "") -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.counts[kind] <= _MAX_LISTED:
            self.findings.append(Finding(kind, subject, detail))


def examine(root: Path) -> DoctorReport:
    """The doctor's report on the archive at *root* (see the module docstring); writes nothing."""
    paths = ArchivePaths(Path(root))
    report = DoctorReport(str(paths.catalog))
    _check_length(paths.catalog, report)
    conn = _open(paths.catalog, report)
    if conn is not None:
        try:
            _check_integrity(conn, report)
            if report.catalog_ok:
                _check_folder(conn, paths, report)
        finally:
            conn.close()
    _check_leftovers(paths, report)
    if not report.catalog_ok:
        _restore_advice(paths, report)
    return report


def _check_length(path: Path, report: DoctorReport) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(100)
            size = f.seek(0, 2)
    except OSError as e:
        report.integrity = [f"cannot read the catalog: {e.strerror or e}"]
        return
    if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
        report.integrity = ["not an SQLite database (empty, replaced or its header is damaged)"]
        return
    page_size = struct.unpack(">H", head[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    change, pages, valid_for = (struct.unpack(">I", head[o:o + 4])[0] for o in (24, 28, 92))
    if pages and change == valid_for and size < pages * page_size:
        have = size // page_size
        report.add("truncated", str(path), f"{size} of {pages * page_size} bytes: {have} of {pages} "
                                           f"pages ({page_size} bytes each) are there")


def _open(path: Path, report: DoctorReport) -> CatalogConnection | None:
    if report.integrity:  # not SQLite at all: nothing to open
        return None
    try:
        conn = connect_readonly(path)
    except SoundarkError as e:
        report.integrity = [f"SQLite cannot read the schema: {_said(e)}"]
        return None
    return conn


def _check_integrity(conn: CatalogConnection, report: DoctorReport) -> None:
    try:
        report.integrity = [r[0] for r in conn.execute(f"PRAGMA integrity_check({_MAX_MESSAGES})")]
    except SoundarkError as e:
        report.integrity = [f"SQLite could not finish the check: {_said(e)}"]
    if "truncated" in report.counts and report.integrity == ["ok"]:
        report.integrity = ["the file is shorter than its header says"]
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%' "
            "ORDER BY name")]
    except SoundarkError as e:
        report.integrity.append(f"the schema cannot be listed: {_said(e)}")
        return
    for name in names:
        rows, whole = _read_table(conn, name)
        report.tables[name] = rows
        if not whole:
            report.damaged_tables.append(name)


def _read_table(conn: CatalogConnection, name: str) -> tuple[int | None, bool]:
    """(rows readable, whether the table and its indexes pass the check)."""
    quoted = '"' + name.replace('"', '""') + '"'
    rows: int | None = None
    try:
        rows = 0
        for _ in conn.execute(f"SELECT * FROM {quoted}"):  # every row, as a restore would read them
            rows += 1
        whole = [r[0] for r in conn.execute(f"PRAGMA integrity_check({quoted})")] == ["ok"]
    except SoundarkError:
        whole = False
    return rows, whole


def _check_folder(conn: CatalogConnection, paths: ArchivePaths, report: DoctorReport) -> None:
    """Store and art files against the ``encoded`` and ``art`` rows; encode jobs past their lease."""
    tables = set(report.tables)
    known: set[str] = set()
    for table, folder, place in (("encoded", paths.store, paths.store_path), ("art", paths.art, paths.art_path)):
        if table not in tables:
            continue
        for sha, ext in conn.execute(f"SELECT DISTINCT sha256, ext FROM {table}"):
            path = place(sha, ext or "")
            known.add(str(path))
            if not path.is_file():
                report.add("missing-file", _rel(path, paths), f"listed in the catalog's {table} table")
        if folder.is_dir():
            for path in sorted(folder.glob("??/??/*")):
                if _CONTENT_NAME.match(path.name) and str(path) not in known:
                    report.add("unknown-file", _rel(path, paths), "not in the catalog")
    if "encode_job" in tables:
        now = time.time()
        for rid, owner in conn.execute(
                "SELECT recording_id, lease_owner FROM encode_job "
                "WHERE status = 'running' AND coalesce(lease_expires, 0) < ?", (now,)):
            report.add("stuck-job", f"recording {rid}",
                       f"running past its lease (owner {owner}); the next `soundark encode` takes it back")


def _check_leftovers(paths: ArchivePaths, report: DoctorReport) -> None:
    """Temporary files a killed run left: the next run of that stage removes or rebuilds them."""
    staging = paths.releases / ".staging"
    if staging.is_dir():
        for entry in sorted(staging.iterdir()):
            report.add("leftover", _rel(entry, paths), "unpublished bag of a stopped release run; "
                                                       "the next `soundark release` rebuilds it")
    if paths.tmp.is_dir():
        for entry in sorted(paths.tmp.iterdir()):
            report.add("leftover", _rel(entry, paths), "temporary folder of a stopped run; "
                                                       "the next `soundark encode` removes it")
    for folder in (paths.store, paths.art):
        if folder.is_dir():
            for path in sorted(folder.glob("??/??/*")):
                if not _CONTENT_NAME.match(path.name):
                    report.add("leftover", _rel(path, paths), "not a content-addressed name "
                                                              "(a partial write?)")


def _restore_advice(paths: ArchivePaths, report: DoctorReport) -> None:
    found = sorted(paths.releases.glob("*-metadata-*/data/catalog.sqlite3*"))
    catalog = paths.catalog
    damaged = catalog.with_name(catalog.name + ".damaged")
    steps = [f"mv {catalog} {damaged}   # keep the damaged file; remove its -wal and -shm too"]
    if found:
        snap = found[-1]
        report.restore_from = str(snap)
        if snap.name.endswith(".zst"):
            steps.append(f"zstd -d {snap} -o {catalog}")
        else:
            steps.append(f"cp {snap} {catalog}")
    else:
        steps.append("no metadata release here: copy catalog.sqlite3 from another mirror's newest "
                     "<prefix>-metadata-NNNN release (or `soundark fetch` it), or `soundark init` a new archive")
    steps += [f"soundark scan SOURCE_FOLDER... -a {paths.root}   # the snapshot has no local paths or encode journal",
              f"soundark doctor -a {paths.root}"]
    report.restore_steps = steps


def _said(e: SoundarkError) -> str:
    """SQLite's own words ("database disk image is malformed"), not the hint meant for other commands."""
    return str(e.__cause__) if e.__cause__ is not None else e.reason


def _rel(path: Path, paths: ArchivePaths) -> str:
    try:
        return path.relative_to(paths.root).as_posix()
    except ValueError:
        return str(path)
