"""Scan a folder of audio files into the catalog (``soundark scan``).

Each file is hashed (SHA-256), decoded in full (:func:`soundark.media.probe.probe`)
and its tags read (:func:`soundark.media.tags.read_tags`); the result is one
``source_file`` row, matched to a recording by :mod:`soundark.catalog.match`
(ISRC, then MusicBrainz ID, then artist + title + duration), with its album,
track and artist credits. docs/scan.md describes the rules in full.

- The walk is sorted per directory (deterministic), skips hidden entries, never
  follows symlinked directories (a link inside the tree would scan files twice,
  one outside it would leave the tree), and silently skips known sidecar files
  (images, text, cue sheets, rip logs, playlists, PDFs, JSON, torrents, SQLite
  files and their -wal/-shm/-journal). Every other file is tried; what is not
  audio is recorded as rejected with the reason. A folder that is a soundark
  archive (``soundark.toml`` beside ``catalog.sqlite3``) is not entered: its store
  and bags are the archive's output, not sources; the summary says so once.
- Names missing from the tags are guessed from the path (:func:`guess_from_path`):
  generic folder names (music, albums, mp3, cd 1, soundtrack ...) never become an
  artist or album, a disc folder gives the disc number, and ``source_file.guessed``
  lists every field so taken.
- A LICENSE/COPYRIGHT tag that contradicts ``--rights`` (:mod:`soundark.catalog.licences`)
  is a warning in the summary and kept in ``source_file.licence_conflict``.
- A file whose path, size and mtime are unchanged since the last scan is not
  read again: ``unchanged`` when it was accepted, ``rejected`` (with the stored
  reason) when it was not, so the report always describes the whole folder.
- Reading runs on a small thread pool (hashing and decoding release the GIL);
  writes are batched: one transaction per 200 files or 2 seconds, so a killed
  scan keeps what it committed and a re-run carries on.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundark.catalog.importers.pathnames import guess_from_path, names_from_path
from soundark.catalog.licences import licence_conflict
from soundark.catalog.match import (
    AlbumFacts,
    AudioEvidence,
    Match,
    RecordingFacts,
    TrackFacts,
    match_recording,
    own_recording,
    upsert_album,
    upsert_track,
)
from soundark.catalog.store import Catalog, utc_now
from soundark.config import CATALOG_FILE, SETTINGS_FILE, cpu_count
from soundark.errors import BadInput, SoundarkError
from soundark.fixity.digest import sha256_file
from soundark.media.fingerprint import SignatureBuilder
from soundark.media.probe import Deadline, probe
from soundark.media.tags import read_tags
from soundark.model import NO_PROGRESS, AudioFacts, ImportReport, Progress, TagSet, derived_key

AUDIO_EXTENSIONS = frozenset({
    ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac", ".wav", ".aiff", ".aif",
    ".aifc", ".wv", ".ape",
})
SIDECAR_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".txt", ".md", ".cue",
    ".log", ".nfo", ".m3u", ".m3u8", ".pls", ".pdf", ".sfv", ".md5", ".ffp", ".accurip", ".url",
    ".json", ".jsonl", ".torrent", ".sqlite3", ".sqlite", ".toml",
})
SIDECAR_NAMES = frozenset({"thumbs.db", "desktop.ini"})
SIDECAR_SUFFIXES = ("-wal", "-shm", "-journal")  # SQLite's companions of any database file
ARCHIVE_SKIPPED = "a soundark archive: not scanned (its store and releases are its output, not sources)"
BATCH_FILES = 200
BATCH_SECONDS = 2.0


@dataclass(frozen=True)
class ScannedFile:
    """Everything read from one file, before it is written to the catalog."""

    path: str
    size: int
    mtime_ns: int
    sha256: str | None = None
    facts: AudioFacts | None = None
    tags: TagSet | None = None
    error: str | None = None
    signature: bytes | None = None  # soundark.media.fingerprint, from the same full decode


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on the work one file may cost (settings ``max_tag_entries``, ``scan_file_seconds``)."""

    max_tag_entries: int = 10_000   # 0: no limit
    file_seconds: float = 900.0     # decoding time per file; 0: no limit


@dataclass(frozen=True)
class _Seen:
    """A file found by the walk: path, stat, and where it sits below the root."""

    path: Path
    size: int
    mtime_ns: int
    depth: int


def scan_directory(catalog: Catalog, root: Path, *, rights: str = "unknown",
                   progress: Progress = NO_PROGRESS, limits: ReadLimits = ReadLimits()) -> ImportReport:
    """Scan *root* recursively into *catalog*; return what was new, updated, unchanged, rejected."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise BadInput(root, "not a folder")
    report = ImportReport(source=str(root))
    archives: set[str] = set()
    unreadable: dict[str, str] = {}
    progress.start(sum(1 for _ in _walk(root, archives, unreadable)), f"scanning {root.name or root}", "files")
    for archive in sorted(archives):
        report.warn(archive, ARCHIVE_SKIPPED)
    for folder, why in sorted(unreadable.items()):
        reason = f"cannot be read ({why}); nothing below it was scanned"
        report.reject(folder, reason)
        progress.note(f"{folder}: {reason}")  # the same words as the summary, which then skips it
    writer = _Writer(catalog, root, rights, report, progress)
    to_read = _changed(catalog, _walk(root), writer, progress)
    with cf.ThreadPoolExecutor(max_workers=max(1, cpu_count()), thread_name_prefix="scan") as pool:
        try:
            for scanned, seen in _read_ahead(pool, to_read, limits, window=4 * max(1, cpu_count())):
                writer.add(scanned, seen)
                progress.advance(1, item=scanned.path, nbytes=scanned.size)
                if progress.cancelled():
                    break
        except KeyboardInterrupt:
            writer.flush()  # keep what was read: a re-run then starts after it
            raise
    writer.flush()
    return report


# --- walking ---------------------------------------------------------------------------------

def _walk(root: Path, archives: set[str] | None = None,
          unreadable: dict[str, str] | None = None) -> Iterator[tuple[os.DirEntry[str], int]]:
    """Candidate files below *root* with their depth, sorted per directory.

    Soundark archives met on the way are added to *archives* and not entered; folders
    (and entries) that cannot be read go into *unreadable* with the OS's reason.
    Memory grows with the depth of the tree, not with the number of files.
    """
    stack: list[tuple[str, int]] = [(str(root), 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError as e:  # nothing below it can be scanned: the caller reports it
            if unreadable is not None:
                unreadable[folder] = e.strerror or str(e)
            continue
        if {SETTINGS_FILE, CATALOG_FILE} <= {e.name for e in entries}:
            if archives is not None:
                archives.add(folder)
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
                elif entry.is_file() and not _is_sidecar(entry.name):
                    yield entry, depth
            except OSError as e:
                if unreadable is not None:
                    unreadable[entry.path] = e.strerror or str(e)
        stack.extend((d, depth + 1) for d in reversed(subdirs))


def _is_sidecar(name: str) -> bool:
    lower = name.lower()
    return (lower in SIDECAR_NAMES or os.path.splitext(lower)[1] in SIDECAR_EXTENSIONS
            or lower.endswith(SIDECAR_SUFFIXES))


def _changed(catalog: Catalog, found: Iterator[tuple[os.DirEntry[str], int]], writer: _Writer,
             progress: Progress) -> Iterator[_Seen]:
    """Files that need reading; unchanged ones are counted here and go no further."""
    for entry, depth in found:
        try:
            st = entry.stat()
        except OSError as e:
            writer.reject_unreadable(entry.path, f"cannot read: {e.strerror or e}")
            progress.advance(1, item=entry.path)
            continue
        item = _Seen(Path(entry.path), st.st_size, st.st_mtime_ns, depth)
        row = catalog.execute("SELECT size, mtime_ns, status, error FROM source_file WHERE path = ?",
                              (str(item.path),)).fetchone()
        if row is not None and row[0] == item.size and row[1] == item.mtime_ns:
            writer.count_unchanged(str(item.path), row[2], row[3])
            progress.advance(1, item=str(item.path))
            continue
        yield item


def _read_ahead(pool: cf.Executor, items: Iterator[_Seen], limits: ReadLimits,
                window: int) -> Iterator[tuple[ScannedFile, _Seen]]:
    """Read files on *pool*, at most *window* in flight, results in walk order."""
    pending: deque[tuple[cf.Future[ScannedFile], _Seen]] = deque()
    for item in items:
        pending.append((pool.submit(read_file, item.path, item.size, item.mtime_ns, limits), item))
        if len(pending) >= window:
            future, seen = pending.popleft()
            yield future.result(), seen
    while pending:
        future, seen = pending.popleft()
        yield future.result(), seen


# --- reading one file ------------------------------------------------------------------------

def read_file(path: Path, size: int, mtime_ns: int, limits: ReadLimits = ReadLimits()) -> ScannedFile:
    """Hash, read the tags of, and probe one file; any failure becomes ``error``.

    Tags are read first: a file with more entries than *limits* allows is refused before
    FFmpeg, whose tag parsing is quadratic, opens it. Decoding stops at the time limit.
    """
    base = ScannedFile(str(path), size, mtime_ns)
    try:
        digest = sha256_file(path)[0]
    except OSError as e:
        return dataclasses.replace(base, error=f"cannot read: {e.strerror or e}")
    base = dataclasses.replace(base, sha256=digest)
    try:
        tags = read_tags(path, max_entries=limits.max_tag_entries)
        builder = SignatureBuilder()
        facts = probe(path, signature=builder, deadline=Deadline.after(limits.file_seconds))
        signature = builder.finish()
    except SoundarkError as e:
        return dataclasses.replace(base, error=e.reason)
    except Exception as e:  # noqa: BLE001 - a library bug on one file must not stop the scan
        return dataclasses.replace(base, error=f"unreadable ({type(e).__name__}: {e})")
    return dataclasses.replace(base, facts=facts, tags=tags, signature=signature)


# --- writing ---------------------------------------------------------------------------------

class _Writer:
    """Buffers scanned files and writes them in batches, one transaction each."""

    def __init__(self, catalog: Catalog, root: Path, rights: str, report: ImportReport,
                 progress: Progress) -> None:
        self.catalog, self.root, self.rights = catalog, root, rights
        self.report, self.progress = report, progress
        self.buffer: list[tuple[ScannedFile, _Seen]] = []
        self.last_flush = time.monotonic()

    def count_unchanged(self, path: str, status: str, error: str | None) -> None:
        if status == "ok":
            self.report.unchanged += 1
        else:
            self._reject(path, error or "rejected")

    def reject_unreadable(self, path: str, reason: str) -> None:
        self._reject(path, reason)

    def add(self, scanned: ScannedFile, seen: _Seen) -> None:
        self.buffer.append((scanned, seen))
        if len(self.buffer) >= BATCH_FILES or time.monotonic() - self.last_flush >= BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            with self.catalog.transaction() as conn:
                for scanned, seen in self.buffer:
                    self._write(conn, scanned, seen)
            self.buffer.clear()
        self.last_flush = time.monotonic()

    def _reject(self, path: str, reason: str) -> None:
        self.report.reject(path, reason)
        self.progress.note(f"{path}: {reason}")

    def _write(self, conn: Any, scanned: ScannedFile, seen: _Seen) -> None:
        before = conn.execute("SELECT recording_id, matched_by, match_detail, merged_at FROM source_file"
                              " WHERE path = ?", (scanned.path,)).fetchone()
        if before is None and scanned.error is None and scanned.sha256:
            before = self._moved(conn, scanned)
        if scanned.error or scanned.facts is None or scanned.tags is None:
            _store_file(conn, scanned, _Found(), self.rights)
            self._reject(scanned.path, scanned.error or "not audio")
            return
        found = _catalogue(conn, scanned, seen, self.rights)
        _store_file(conn, scanned, found, self.rights)
        self._record_match(conn, scanned.path, found.match, before)
        if found.licence_conflict:
            self.report.warn(scanned.path, found.licence_conflict)
            self.report.count("licence conflicts")
        replaced = _replaced_tags(scanned.tags)
        if replaced:
            self.report.warn(scanned.path, f"tags not valid UTF-8 ({', '.join(replaced)}): kept with U+FFFD "
                                           "in place of the bad bytes; the source file is unchanged")
            self.report.count("tags not valid UTF-8")
        if scanned.facts.decoder != "ffmpeg":
            self.report.warn(scanned.path, f"FFmpeg cannot read it; decoded by {scanned.facts.decoder}")
            self.report.count(f"decoded by {scanned.facts.decoder}")
        if before:
            self.report.updated += 1
        else:
            self.report.new += 1

    def _moved(self, conn: Any, scanned: ScannedFile) -> tuple | None:
        """The row of the same file (same SHA-256) at a path that no longer exists, moved here.

        Moving the row keeps its id, so the plan and the encode journal that point to it follow
        the file; a job that failed because the file was gone is pending again. Said in the
        summary: the catalog's record of where a source lives never changes silently.
        """
        for row in conn.execute("SELECT id, path FROM source_file WHERE sha256 = ? AND path != ?"
                                " AND status = 'ok' ORDER BY id", (scanned.sha256, scanned.path)).fetchall():
            if os.path.lexists(row[1]):
                continue  # a copy, not a move: both stay
            conn.execute("UPDATE source_file SET path = ? WHERE id = ?", (scanned.path, row[0]))
            retried = conn.execute(
                "UPDATE encode_job SET status = 'pending', error = NULL, attempts = 0, updated_at = ?"
                " WHERE recording_id = (SELECT recording_id FROM source_file WHERE id = ?)"  # its key: no scan
                " AND source_id = ? AND status = 'failed'", (utc_now(), row[0], row[0])).rowcount
            self.report.count("moved")
            note = f"moved from {row[1]} (the same file by SHA-256): the catalog follows it"
            if retried:
                self.report.count("failed encode jobs made pending again", retried)
                note += "; its failed encode job is pending again"
            self.report.warn(scanned.path, note)
            return conn.execute("SELECT recording_id, matched_by, match_detail, merged_at FROM source_file"
                                " WHERE id = ?", (row[0],)).fetchone()
        return None

    def _record_match(self, conn: Any, path: str, match: Match, before: tuple | None) -> None:
        """Keep how the file joined its recording; report it when it joined one it did not create.

        A changed file that stays in the recording it was already in keeps its first record:
        it is no new merge (and the first file of a recording is none at all).
        """
        if match is None:
            return
        if before and before[0] == match.recording_id and before[1]:
            matched_by, detail, merged_at = before[1], before[2], before[3]
        elif match.created or match.matched_by == "split":
            matched_by, detail, merged_at = match.matched_by, match.detail or None, None
            if match.detail:
                self.report.count("kept_apart_by_audio")
                self.report.warn(path, f"not merged: {match.detail}")
        else:
            matched_by, detail, merged_at = match.matched_by, match.detail or None, utc_now()
            self.report.merge(path, match.key, match.matched_by, match.detail)
        conn.execute("UPDATE source_file SET matched_by = ?, match_detail = ?, merged_at = ? WHERE path = ?",
                     (matched_by, detail, merged_at, path))


@dataclass(frozen=True)
class _Found:
    """Where an accepted file went in the catalog, and the evidence kept beside it."""

    match: Match | None = None
    track_id: int | None = None
    guessed: tuple[str, ...] = ()       # fields taken from the path, not the tags
    licence_conflict: str | None = None

    @property
    def recording_id(self) -> int | None:
        return self.match.recording_id if self.match else None


def _catalogue(conn: Any, scanned: ScannedFile, seen: _Seen, rights: str) -> _Found:
    """Match the file to a recording (creating it if new), its album and track.

    A file the operator split off (``soundark catalog split``) goes to its own recording, whatever
    its names and identifiers say.
    """
    tags, facts = scanned.tags, scanned.facts
    if tags is None or facts is None:  # the reader rejects such a file before it gets here
        raise BadInput(scanned.path, "read without tags or audio facts")
    path = guess_from_path(Path(scanned.path), seen.depth)
    artists = tags.artists or ((path.artist,) if path.artist else ())
    album = tags.album or path.album
    rec = RecordingFacts(
        title=tags.title or path.title, artists=artists, album=album, isrc=tags.isrc,
        mbid=tags.mb_recording_id, duration_ms=facts.duration_ms, date=tags.date, rights=rights,
        artist_mbids=(tags.mb_artist_id,) if tags.mb_artist_id else (),
    )
    split = conn.execute("SELECT recording_key FROM split_file WHERE sha256 = ?", (scanned.sha256,)).fetchone()
    if split:
        match = own_recording(conn, rec, split[0])
    else:
        match = match_recording(conn, rec, derived_key("file", scanned.sha256),
                                AudioEvidence(scanned.signature, scanned.path))
    album_id = album_key = None
    if album:
        key_artist = tags.album_artist or (artists[0] if artists else "")
        if not tags.album and path.artist:
            key_artist = path.artist  # an album named after its folder: one album per folder
        album_id, album_key = upsert_album(conn, AlbumFacts(
            title=album, artist=tags.album_artist or rec.artist_display, mbid=tags.mb_release_id,
            date=tags.date, label=tags.label), key_artist)
    track_id = upsert_track(conn, TrackFacts(
        recording_id=match.recording_id, recording_key=match.key, album_id=album_id,
        album_key=album_key, title=rec.title, artist=rec.artist_display,
        track_number=tags.track_number if tags.track_number is not None else path.track_number,
        disc_number=tags.disc_number if tags.disc_number is not None else path.disc_number))
    guessed = tuple(name for name, from_tags, from_path in (
        ("title", tags.title, path.title), ("artist", tags.artists, path.artist),
        ("album", tags.album, path.album), ("track_number", tags.track_number, path.track_number),
        ("disc_number", tags.disc_number, path.disc_number),
    ) if from_tags in (None, (), "") and from_path not in (None, ""))
    return _Found(match, track_id, guessed, licence_conflict(rights, tags.license, tags.copyright))


_UPSERT = (
    "INSERT INTO source_file (path, size, mtime_ns, sha256, status, error, container, codec, bitrate,"
    " sample_rate, channels, duration_ms, lossless, recording_id, track_id, tags, license, copyright,"
    " has_art, rights, scanned_at, decoder, guessed, licence_conflict, signature)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
    " sha256 = excluded.sha256, status = excluded.status, error = excluded.error,"
    " container = excluded.container, codec = excluded.codec, bitrate = excluded.bitrate,"
    " sample_rate = excluded.sample_rate, channels = excluded.channels,"
    " duration_ms = excluded.duration_ms, lossless = excluded.lossless,"
    " recording_id = excluded.recording_id, track_id = excluded.track_id, tags = excluded.tags,"
    " license = excluded.license, copyright = excluded.copyright, has_art = excluded.has_art,"
    " rights = excluded.rights, scanned_at = excluded.scanned_at, decoder = excluded.decoder,"
    " guessed = excluded.guessed, licence_conflict = excluded.licence_conflict,"
    " signature = excluded.signature"
)


def _store_file(conn: Any, scanned: ScannedFile, found: _Found, rights: str) -> None:
    facts, tags = scanned.facts, scanned.tags
    ok = scanned.error is None and facts is not None
    conn.execute(_UPSERT, (
        scanned.path, scanned.size, scanned.mtime_ns, scanned.sha256, "ok" if ok else "rejected",
        scanned.error if not ok else None,
        facts.container if ok else None, facts.codec if ok else None, facts.bitrate if ok else None,
        facts.sample_rate if ok else None, facts.channels if ok else None,
        facts.duration_ms if ok else None, int(facts.lossless) if ok else None,
        found.recording_id, found.track_id, _tags_json(tags) if ok else None,
        tags.license if ok and tags else None, tags.copyright if ok and tags else None,
        int(bool(ok and tags and tags.has_art)), rights, utc_now(),
        facts.decoder if ok else None, json.dumps(list(found.guessed)) if found.guessed else None,
        found.licence_conflict, scanned.signature if ok else None))


def _replaced_tags(tags: TagSet) -> list[str]:
    """Names of the tags whose text holds U+FFFD: mutagen's stand-in for bytes that are not UTF-8."""
    names = [f.name.upper() for f in dataclasses.fields(tags)
             if isinstance(getattr(tags, f.name), str) and "\ufffd" in getattr(tags, f.name)]
    if any("\ufffd" in a for a in tags.artists):
        names.append("ARTIST")
    names += [k for k, v in tags.extra.items() if "\ufffd" in str(v)]
    return sorted(set(names))


def _tags_json(tags: TagSet | None) -> str | None:
    """Every tag in soundark's names; empty fields left out, ``extra`` as read."""
    if tags is None:
        return None
    data = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(tags).items()
            if v not in (None, (), {}, False)}
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


__all__ = ["scan_directory", "read_file", "ReadLimits", "names_from_path", "AUDIO_EXTENSIONS",
           "SIDECAR_EXTENSIONS", "ScannedFile"]
