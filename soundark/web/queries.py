"""What the web pages and the JSON API read: one read-only catalog connection per thread.

The catalog is opened with ``mode=ro`` (soundark.catalog.open_catalog(readonly=True)):
the web face can never write it. Files are found only by content hash: a request's
hash is looked up in the catalog, and the path is built from the catalog's own row
(``ArchivePaths.store_path``), so no part of a request ever becomes a filesystem path.
Costly whole-catalog figures (stats, coverage) are cached until the catalog files
change on disk.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from soundark import isrc as isrc_codes
from soundark.catalog import Catalog, open_catalog
from soundark.catalog import queries as q
from soundark.catalog.search import count_matches, search
from soundark.catalog.stats import catalog_stats
from soundark.config import ArchivePaths
from soundark.errors import BadInput, NotFound

MAX_QUERY_CHARS = 256
MAX_PAGE_SIZE = 100
MAX_PAGE = 100
COUNT_CAP = 1000  # "1000+ matches" is all a person needs; counting further costs time on huge catalogs
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_-.")
TORRENTS_JSON = "torrents.json"

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

    def as_dict(self) -> dict[str, Any]:
        return {"query": self.query, "page": self.page, "size": self.size, "total": self.total,
                "total_is_lower_bound": self.total_is_lower_bound, "has_next": self.has_next,
                "results": self.results}


class ArchiveReader:
    """Read access to one archive for the web face; safe to share between threads."""

    def __init__(self, archive: Path) -> None:
        self.paths = ArchivePaths(Path(archive).expanduser().absolute())
        if not self.paths.catalog.is_file():
            raise NotFound(self.paths.root, "not a soundark archive (no catalog.sqlite3)")
        self._local = threading.local()
        self._cache: dict[str, tuple[tuple[int, ...], Any]] = {}
        self._cache_lock = threading.Lock()
        self.catalog().execute("SELECT 1 FROM recording LIMIT 1")  # fail now, not on the first request

    def catalog(self) -> Catalog:
        cat = getattr(self._local, "catalog", None)
        if cat is None:
            cat = open_catalog(self.paths.catalog, readonly=True)
            self._local.catalog = cat
        return cat

    # -- caching of whole-catalog figures -------------------------------------------------
    def _version(self) -> tuple[int, ...]:
        """Changes whenever a writer commits (WAL file) or checkpoints (main file)."""
        parts: list[int] = []
        for suffix in ("", "-wal"):
            try:
                st = os.stat(f"{self.paths.catalog}{suffix}")
                parts += [st.st_mtime_ns, st.st_size]
            except OSError:
                parts += [0, 0]
        return tuple(parts)

    def _cached(self, name: str, compute: Callable[[], Any]) -> Any:
        version = self._version()
        with self._cache_lock:
            hit = self._cache.get(name)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = compute()
        with self._cache_lock:
            self._cache[name] = (version, value)
        return value

    # -- search ---------------------------------------------------------------------------
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
        cat = self.catalog()
        hits = search(cat, text, limit=size, offset=(page - 1) * size)
        total = (page - 1) * size + len(hits)
        capped = False
        if len(hits) == size:  # a full page: there may be more, so count (up to a cap)
            counted = count_matches(cat, text, cap=COUNT_CAP)
            capped = counted >= COUNT_CAP
            total = max(total, counted)
        has_next = len(hits) == size and page < MAX_PAGE and (page * size < total or capped)
        extras = q.search_extras(cat, [h.id for h in hits])
        results = []
        for h in hits:
            row = h.as_dict()
            row.pop("id")
            row.update(extras[h.id])
            results.append(row)
        return SearchPage(text, page, size, total, capped, has_next, results)

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
                return {e.name: Path(e.path) for e in it if e.name.endswith(".torrent") and e.is_file()}
        except OSError:
            return {}

    def torrents_json(self) -> dict[str, Any] | None:
        path = self.paths.releases / TORRENTS_JSON
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def releases(self) -> list[dict[str, Any]]:
        rows = q.release_rows(self.catalog())
        if not rows:  # a mirror may hold only the published list
            listed = (self.torrents_json() or {}).get("releases")
            rows = [dict(r) for r in listed if isinstance(r, dict)] if isinstance(listed, list) else []
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
    """The plan's tier table and coverage curve (the figures of `soundark report`)."""
    tiers = q.plan_tiers(catalog)
    curve = q.coverage_curve(catalog)
    run = q.last_plan_run(catalog)
    total = sum(t["listens"] for t in tiers)
    kept = [t for t in tiers if t["tier"] != "skip"]
    summary = {
        "recordings": sum(t["recordings"] for t in tiers),
        "kept": sum(t["recordings"] for t in kept),
        "bytes": sum(t["bytes"] for t in kept),
        "listens_total": total,
        "listens_covered": sum(t["listens"] for t in kept),
        "listens_share": (sum(t["listens"] for t in kept) / total) if total else 0.0,
        "budget": run.get("budget") if run else None,
        "planned_at": run.get("created_at") if run else None,
    }
    return {"planned": bool(tiers), "summary": summary, "tiers": tiers, "curve": curve}


def _decorate_release(rel: dict[str, Any], have: set[str]) -> None:
    """Add the download URL of the release's .torrent when that file is on disk."""
    name = Path(str(rel.get("torrent") or f"{rel.get('name', '')}.torrent")).name
    rel["torrent_url"] = f"/torrents/{name}" if name in have else None


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
    try:
        size = path.stat().st_size
    except OSError as e:
        raise NotFound(sha256, "listed in the catalog but missing from the store") from e
    return StoredFile(path, media_type, sha256, size)


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."
