"""What the web pages and the JSON API read: one read-only catalog connection per thread.

The catalog is opened with ``mode=ro`` (soundark.catalog.open_catalog(readonly=True)):
the web face can never write it. Files are found only by content hash: a request's
hash is looked up in the catalog, and the path is built from the catalog's own row
(``ArchivePaths.store_path``), so no part of a request ever becomes a filesystem path.
Costly whole-catalog figures (stats, coverage) are cached until the catalog files
change on disk.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson

from soundark import isrc as isrc_codes
from soundark.catalog import Catalog, browse, open_catalog, vocabulary
from soundark.catalog import queries as q
from soundark.catalog.postings import POSTINGS_BYTES, Postings
from soundark.catalog.search import MAX_EXPANSION, MIN_PREFIX, find
from soundark.catalog.stats import catalog_stats
from soundark.config import ArchivePaths
from soundark.errors import BadInput, NotFound, QueryInterrupted, SoundarkError
from soundark.fixity.regular import regular_size
from soundark.fixity.releases import read_release_list, release_list_path, torrent_name
from soundark.plan.signals import signal_mode, signal_note
from soundark.plan.stage import coverage_figures as plan_figures

MAX_QUERY_CHARS = 256
MAX_PAGE_SIZE = 100
MAX_PAGE = 100
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_-.")
SEARCH_CACHE_SIZE = 4096
BUCKETS = 2048  # FTS5 word lists by 3-letter start kept, for catalogs whose search_word is not current
# SQLite's own cache of each connection, for the pages past the mapping (a catalog over its cap)
PAGE_CACHE_BYTES = 64 << 20
SEARCH_SECONDS = 2.0  # a search still running after this is stopped: "add a word"
PROGRESS_STEPS = 20_000  # SQLite VM steps between deadline checks (~0.1 ms of work)

MEDIA_TYPES = {
    ".opus": "audio/ogg", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4", ".mp4": "audio/mp4", ".aac": "audio/aac", ".flac": "audio/flac",
    ".wav": "audio/wav",
}


@dataclass(frozen=True)
class StoredFile:
    """A content-addressed file to send: where it is, its type and its hash (the ETag)."""

    path: Path
    media_type: str
    sha256: str
    size: int


@dataclass(frozen=True)
class SearchPage:
    query: str
    page: int
    size: int
    total: int
    total_is_lower_bound: bool
    has_next: bool
    results: list[dict[str, Any]]

    @cached_property
    def json_bytes(self) -> bytes:
        """The API's body, encoded once per cached page: compact UTF-8 JSON (orjson writes what
        ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` does, five times faster)."""
        return orjson.dumps(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        return {"query": self.query, "page": self.page, "size": self.size, "total": self.total,
                "total_is_lower_bound": self.total_is_lower_bound, "has_next": self.has_next,
                "results": self.results}


class ArchiveReader:
    """Read access to one archive for the web face; safe to share between threads."""

    def __init__(self, archive: Path, search_cache_size: int = SEARCH_CACHE_SIZE,
                 postings_bytes: int = POSTINGS_BYTES, page_cache_bytes: int = PAGE_CACHE_BYTES) -> None:
        self.paths = ArchivePaths(Path(archive).expanduser().absolute())
        if not self.paths.catalog.is_file():
            raise NotFound(self.paths.root, "not a soundark archive (no catalog.sqlite3)")
        self._local = threading.local()
        self._opened: list[Catalog] = []
        self._cache: dict[str, tuple[tuple[int, ...], Any]] = {}
        self._cache_lock = threading.Lock()
        # Recent search pages: popular searches repeat, and a page stays right until a writer
        # commits (then the whole cache is dropped). Bounded, so memory stays small.
        self._pages: OrderedDict[tuple[str, int, int], SearchPage] = OrderedDict()
        self._pages_version: tuple[int, ...] = ()
        self.search_cache_size = search_cache_size
        self._buckets: OrderedDict[str, list[str]] = OrderedDict()
        self._buckets_version: tuple[int, ...] = ()
        self._version_files = (str(self.paths.catalog), f"{self.paths.catalog}-wal")
        # common words' recordings, for searches of a rare and a common word (0 bytes: none kept)
        self.postings = Postings(postings_bytes) if postings_bytes > 0 else None
        self.page_cache_bytes = page_cache_bytes
        self.catalog().execute("SELECT 1 FROM recording LIMIT 1")  # fail now, not on the first request

    def catalog(self) -> Catalog:
        cat = getattr(self._local, "catalog", None)
        if cat is None:
            # the catalog mapped read-only: pages come from the OS page cache without a read() and
            # a copy each, shared by every connection. SQLite caps the mapping when it is built: 2
            # GiB in the usual builds, 1 TiB in sqlean.py's, which this opens when installed
            # (soundark.catalog.engine). Searches at 10M rows (3.6 GB) took 3.9 ms on average mapped
            # to 2 GiB against 5.4 ms to 1 GiB; at 50M (21.7 GB) the whole file mapped took 7-11 %
            # less CPU a search than 2 GiB of it (bench_scale's query mix)
            cat = open_catalog(self.paths.catalog, readonly=True, mapped=True)
            cat.execute(f"PRAGMA cache_size = -{max(self.page_cache_bytes >> 10, 1)}")  # in KiB
            cat.conn.set_progress_handler(self._overdue, PROGRESS_STEPS)
            self._local.catalog = cat
            with self._cache_lock:
                self._opened.append(cat)
        return cat

    def close(self) -> None:
        """Close every connection this reader opened (on app shutdown)."""
        with self._cache_lock:
            opened, self._opened = self._opened, []
        for cat in opened:
            cat.close()

    # -- caching of whole-catalog figures -------------------------------------------------
    def _version(self) -> tuple[int, ...]:
        """Changes whenever a writer commits (WAL file) or checkpoints (main file)."""
        parts: list[int] = []
        for name in self._version_files:
            try:
                st = os.stat(name)
                parts += [st.st_mtime_ns, st.st_size]
            except OSError:
                parts += [0, 0]
        return tuple(parts)

    def _cached(self, name: str, compute: Callable[[], Any], version: tuple[int, ...] | None = None) -> Any:
        version = self._version() if version is None else version
        with self._cache_lock:
            hit = self._cache.get(name)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = compute()
        with self._cache_lock:
            self._cache[name] = (version, value)
        return value

    # -- search ---------------------------------------------------------------------------
    def cached_search(self, text: str, page: int = 1, size: int = 20,
                      version: tuple[int, ...] | None = None) -> SearchPage | None:
        """The page if it is cached and the catalog has not changed since; cheap, never blocks on SQL."""
        text = text.strip()
        version = self._version() if version is None else version
        with self._cache_lock:
            if version != self._pages_version:
                self._pages.clear()
                self._pages_version = version
            cached = self._pages.get((text, page, size))
            if cached is not None:
                self._pages.move_to_end((text, page, size))
            return cached

    def search(self, text: str, page: int = 1, size: int = 20) -> SearchPage:
        text = text.strip()
        if len(text) > MAX_QUERY_CHARS:
            raise BadInput("q", f"query too long ({len(text)} characters; at most {MAX_QUERY_CHARS})")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise BadInput("size", f"must be between 1 and {MAX_PAGE_SIZE}")
        if not 1 <= page <= MAX_PAGE:
            raise BadInput("page", f"must be between 1 and {MAX_PAGE}")
        if not text:
            return SearchPage(text, page, size, 0, False, False, [])
        version = self._version()  # once a request: two stat() calls
        cached = self.cached_search(text, page, size, version)
        if cached is not None:
            return cached
        found_page = self._search(text, page, size, version)
        if self.search_cache_size:
            with self._cache_lock:
                if version == self._pages_version:
                    self._pages[(text, page, size)] = found_page
                    while len(self._pages) > self.search_cache_size:
                        self._pages.popitem(last=False)
        return found_page

    def _terms_of(self, prefix: str, version: tuple[int, ...]) -> list[str] | None:
        """Indexed words starting with *prefix* (prefix* searches): from search_word when it is
        current (one B-tree range), else from FTS5's word list of the prefix's 3-letter bucket,
        kept until the catalog changes (BUCKETS of them, the least recently used dropped)."""
        words = vocabulary.words(self.catalog().conn, prefix, MAX_EXPANSION + 1)
        if words is not None:
            return words
        bucket = prefix[:MIN_PREFIX]
        with self._cache_lock:
            if version != self._buckets_version:
                self._buckets.clear()
                self._buckets_version = version
            listed = self._buckets.get(bucket)
            if listed is not None:
                self._buckets.move_to_end(bucket)
        if listed is None:
            listed = q.terms_in_bucket(self.catalog(), bucket)
            with self._cache_lock:
                if version == self._buckets_version:
                    self._buckets[bucket] = listed
                    while len(self._buckets) > BUCKETS:
                        self._buckets.popitem(last=False)
        return [w for w in listed if w.startswith(prefix)]

    def _overdue(self) -> int:
        """SQLite progress handler: non-zero stops the running statement (a search past its time)."""
        deadline = getattr(self._local, "deadline", None)
        return int(deadline is not None and time.monotonic() > deadline)

    def _search(self, text: str, page: int, size: int, version: tuple[int, ...]) -> SearchPage:
        self._local.deadline = time.monotonic() + SEARCH_SECONDS
        try:
            return self._run_search(text, page, size, version)
        except QueryInterrupted as e:  # the progress handler stopped it: past the deadline
            if time.monotonic() > self._local.deadline:
                raise BadInput("q", f"this search takes too long (over {SEARCH_SECONDS:g} s); "
                                    "add a word or lengthen the prefix") from e
            raise
        finally:
            self._local.deadline = None

    def _run_search(self, text: str, page: int, size: int, version: tuple[int, ...]) -> SearchPage:
        cat = self.catalog()
        # the tables that hold rows, as of this version: a catalog before its plan and its encodes
        # (metadata first) decorates nothing, and its pages skip that statement
        have = self._cached("filled", lambda: q.filled_tables(cat, browse.DECORATED_BY), version)
        cat.execute("BEGIN")  # the hits and their decorations from one snapshot (and one read lock)
        try:
            found = find(cat, text, limit=size, offset=(page - 1) * size,
                         terms_of=lambda bucket: self._terms_of(bucket, version), postings=self.postings)
            hits = found.hits
            shown = browse.search_decorations(cat, [h.id for h in hits], have)
        finally:
            if cat.conn.in_transaction:
                cat.execute("COMMIT")
        has_next = (page - 1) * size + len(hits) < found.total and page < MAX_PAGE
        results = []
        for h in hits:
            row = h.as_dict()
            row.pop("id")
            extra = shown[h.id]
            row.update(tier=extra["tier"], release=extra["release"], magnet=extra["magnet"])
            row["art_url"] = _art_url(extra["art"])
            play = extra["play"]
            row["audio_url"] = f"/audio/{play['sha256']}{_safe_ext(play['ext'])}" if play else None
            results.append(row)
        return SearchPage(text, page, size, found.total, found.capped, has_next, results)

    # -- recordings -----------------------------------------------------------------------
    def recording(self, key: str) -> dict[str, Any]:
        if not key or len(key) > 64 or not set(key) <= _KEY_CHARS:
            raise NotFound(_shown(key), "no such recording")
        detail = q.recording_detail(self.catalog(), key)
        if detail is None:
            raise NotFound(key, "no such recording")
        have = set(self.torrent_files())
        for rel in detail["releases"]:
            _decorate_release(rel, have)
        for enc in detail["encoded"]:
            enc["url"] = f"/audio/{enc['sha256']}{_safe_ext(enc['ext'])}"
            enc["media_type"] = MEDIA_TYPES.get(enc["ext"].lower(), "application/octet-stream")
        if detail["art"]:
            detail["art"]["url"] = f"/art/{detail['art']['sha256']}{_safe_ext(detail['art']['ext'])}"
        detail["play"] = _playable(detail)
        return detail

    def recording_by_isrc(self, text: str) -> dict[str, Any]:
        code = isrc_codes.normalise(text)  # BadInput says which part is wrong
        key = q.key_of_isrc(self.catalog(), code)
        if key is None:
            raise NotFound(code, "no recording has this ISRC")
        return self.recording(key)

    # -- browsing -------------------------------------------------------------------------
    def home(self) -> dict[str, Any]:
        """The home page's figures: headline, most listened preserved recordings, recent releases."""
        def compute() -> dict[str, Any]:
            cat = self.catalog()
            head = browse.headline(cat)
            # a plan without listen data has no share of listens to claim (plan/signals.py)
            summary = self.coverage().get("summary", {})
            if (summary.get("signal_mode") or ("full" if summary.get("listens_total") else "none")) == "none":
                head["listens_share"] = None
            top = [_with_urls(r) for r in browse.most_listened(cat)]
            return {"headline": head, "most_listened": top, "recent_releases": browse.recent_releases(cat)}
        return self._cached("home", compute)

    def albums(self, page: int = 1, size: int = 60) -> dict[str, Any]:
        _check_page(page, size)
        total, rows = browse.albums(self.catalog(), (page - 1) * size, size)
        for row in rows:
            row["art_url"] = _art_url(row.pop("art"))
        return {"page": page, "size": size, "total": total, "has_next": page * size < total, "albums": rows}

    def artists(self, page: int = 1, size: int = 100) -> dict[str, Any]:
        _check_page(page, size)
        total, rows = browse.artists(self.catalog(), (page - 1) * size, size)
        return {"page": page, "size": size, "total": total, "has_next": page * size < total, "artists": rows}

    def album(self, key: str) -> dict[str, Any]:
        album = browse.album_detail(self.catalog(), _checked_key(key, "album")) if key else None
        if album is None:
            raise NotFound(_shown(key), "no such album")
        album["art_url"] = _art_url(album["art"])
        album["tracks"] = [_with_urls(t) for t in album["tracks"]]
        have = set(self.torrent_files())
        for rel in album["releases"]:
            _decorate_release(rel, have)
        return album

    def artist(self, key: str) -> dict[str, Any]:
        artist = browse.artist_detail(self.catalog(), _checked_key(key, "artist")) if key else None
        if artist is None:
            raise NotFound(_shown(key), "no such artist")
        for al in artist["albums"]:
            al["art_url"] = _art_url(al.pop("art"))
        artist["recordings"] = [_with_urls(r) for r in artist["recordings"]]
        return artist

    # -- content-addressed files ----------------------------------------------------------
    def audio(self, name: str) -> StoredFile:
        sha, ext = _split_hash_name(name)
        row = q.encoded_file(self.catalog(), sha)
        if row is None or (ext and ext != row["ext"].lower()):
            raise NotFound(_shown(name), "no stored audio with this hash")
        path = self.paths.store_path(row["sha256"], _safe_ext(row["ext"]))
        media = MEDIA_TYPES.get(row["ext"].lower(), "application/octet-stream")
        return _existing(path, media, row["sha256"])

    def art(self, name: str) -> StoredFile:
        sha, ext = _split_hash_name(name)
        row = q.art_file(self.catalog(), sha)
        if row is None or (ext and ext != row["ext"].lower()):
            raise NotFound(_shown(name), "no stored image with this hash")
        mime = row["mime"] if row["mime"].startswith("image/") else "application/octet-stream"
        return _existing(self.paths.art_path(row["sha256"], _safe_ext(row["ext"])), mime, row["sha256"])

    # -- releases -------------------------------------------------------------------------
    def torrent_files(self) -> dict[str, Path]:
        """The .torrent files on disk by file name: a request's name is only ever a key here."""
        try:
            with os.scandir(self.paths.torrents) as it:
                return {e.name: Path(e.path) for e in it
                        if e.name.endswith(".torrent") and e.is_file(follow_symlinks=False)}
        except OSError:
            return {}

    @property
    def release_list(self) -> Path:
        """The published release list (torrents.json)."""
        return release_list_path(self.paths.releases)

    def listed_releases(self) -> list[dict[str, Any]]:
        """The release list's rows; none when it is missing or unreadable (the page says so)."""
        try:
            return read_release_list(self.release_list, missing_ok=True)
        except SoundarkError:
            return []

    def releases(self) -> list[dict[str, Any]]:
        rows = q.release_rows(self.catalog())
        if not rows:  # a mirror may hold only the published list
            rows = [dict(r) for r in self.listed_releases()]
        have = set(self.torrent_files())
        for rel in rows:
            _decorate_release(rel, have)
        return rows

    # -- figures --------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        def compute() -> dict[str, Any]:
            stats = catalog_stats(self.catalog())
            stats.pop("catalog", None)  # the operator's path stays private
            stats["releases"] = len(q.release_rows(self.catalog()))
            return stats
        return self._cached("stats", compute)

    def coverage(self) -> dict[str, Any]:
        return self._cached("coverage", lambda: coverage_figures(self.catalog()))


def coverage_figures(catalog: Catalog) -> dict[str, Any]:
    """The plan's tier table and coverage curves: the figures of `soundark report`.

    They come from the latest plan run (stored by the plan stage); a catalog whose
    plan rows predate stored figures gets the same table and rank-order curves
    computed from the ``plan`` table.
    """
    try:
        figures = plan_figures(catalog)
    except NotFound:
        return _figures_from_plan_rows(catalog)
    tiers = []
    total = float(figures.get("listens_total") or 0.0)
    n = int(figures.get("recordings") or 0)
    for name, row in figures.get("tiers", {}).items():
        tiers.append({"tier": name, **row, "recordings_share": row["recordings"] / n if n else 0.0,
                      "listens_share": row["listens"] / total if total else 0.0})
    cb, cr = figures.get("curve_bytes", {}), figures.get("curve_recordings", {})
    summary = {k: figures.get(k) for k in ("recordings", "kept", "bytes", "budget", "listens_total",
                                           "listens_covered", "planned_at")}
    summary["listens_share"] = figures.get("share_covered", 0.0)
    summary.update(signal_mode=signal_mode(figures), signal_note=signal_note(figures),
                   hours_kept=figures.get("hours_kept"), hours_total=figures.get("hours_total"))
    return {"planned": True, "summary": summary, "tiers": tiers, "top": figures.get("top", []),
            "curve_bytes": [{"bytes": b, "share": s} for b, s in zip(cb.get("bytes", []), cb.get("share", []))],
            "curve_recordings": [{"recordings": r, "share": s}
                                 for r, s in zip(cr.get("recordings", []), cr.get("share", []))]}


def _figures_from_plan_rows(catalog: Catalog) -> dict[str, Any]:
    tiers = q.plan_tiers(catalog)
    curve = q.coverage_curve(catalog)
    total = sum(t["listens"] for t in tiers)
    kept = [t for t in tiers if t["tier"] != "skip"]
    covered = sum(t["listens"] for t in kept)
    summary = {"recordings": sum(t["recordings"] for t in tiers), "kept": sum(t["recordings"] for t in kept),
               "bytes": sum(t["bytes"] for t in kept), "budget": None, "listens_total": total,
               "listens_covered": covered, "planned_at": None,
               "listens_share": (covered / total) if total else 0.0}
    return {"planned": bool(tiers), "summary": summary, "tiers": tiers, "top": [],
            "curve_bytes": [{"bytes": p["bytes"], "share": p["listens_share"]} for p in curve],
            "curve_recordings": [{"recordings": p["recordings"], "share": p["listens_share"]} for p in curve]}


def _decorate_release(rel: dict[str, Any], have: set[str]) -> None:
    """Add the download URL of the release's .torrent when that file is on disk."""
    name = Path(str(rel.get("torrent") or torrent_name(str(rel.get('name', ''))))).name
    rel["torrent_url"] = f"/torrents/{name}" if name in have else None


def _art_url(art: dict[str, Any] | None) -> str | None:
    return f"/art/{art['sha256']}{_safe_ext(art['ext'])}" if art else None


def _with_urls(row: dict[str, Any]) -> dict[str, Any]:
    """A browse row's cover and audio as URLs of the content-addressed routes."""
    row["art_url"] = _art_url(row.pop("art", None))
    play = row.pop("play", None)
    row["audio_url"] = f"/audio/{play['sha256']}{_safe_ext(play['ext'])}" if play else None
    return row


def _check_page(page: int, size: int) -> None:
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise BadInput("size", f"must be between 1 and {MAX_PAGE_SIZE}")
    if not 1 <= page <= 10_000:
        raise BadInput("page", "must be between 1 and 10000")


def _checked_key(key: str, what: str) -> str:
    if len(key) > 200 or "\x00" in key:
        raise NotFound(_shown(key), f"no such {what}")
    return key


def _playable(detail: dict[str, Any]) -> dict[str, Any] | None:
    """The file the player plays: the planned tier when stored, else the first stored one."""
    files = detail["encoded"]
    if not files:
        return None
    tier = (detail.get("plan") or {}).get("tier")
    return next((e for e in files if e["tier"] == tier), files[0])


def _split_hash_name(name: str) -> tuple[str, str]:
    """``<sha256>`` or ``<sha256><.ext>`` -> (sha256, ext); anything else is not found."""
    sha, dot, ext = name.partition(".")
    if not q.SHA256_HEX.match(sha) or (dot and not _is_ext(dot + ext)):
        raise NotFound(_shown(name), "not a content hash")
    return sha, (dot + ext).lower()


def _is_ext(ext: str) -> bool:
    return 2 <= len(ext) <= 9 and ext[0] == "." and ext[1:].isascii() and ext[1:].isalnum()


def _safe_ext(ext: str) -> str:
    """Extensions come from the catalog; still, one that could name a folder is refused."""
    if ext and not _is_ext(ext):
        raise NotFound(ext, "stored file has an unusable extension")
    return ext


def _existing(path: Path, media_type: str, sha256: str) -> StoredFile:
    # lstat: a store file swapped for a symlink (to /etc/passwd, say) is not the stored file
    size = regular_size(path)
    if size is None:
        raise NotFound(sha256, "listed in the catalog but missing from the store")
    return StoredFile(path, media_type, sha256, size)


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."
