"""Helpers for the encode tests: catalog rows for real synthesised files (no mocks)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from soundark.catalog.store import Catalog, utc_now
from soundark.media import synth
from soundark.model import derived_key


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def add_source(catalog: Catalog, path: Path, *, rank: int, tier: str = "opus75",
               title: str | None = None, artist: str = "Test Artist", isrc: str | None = None,
               mbid: str | None = None, sha256: str | None = "auto", codec: str = "flac",
               rights: str = "owned") -> int:
    """Insert recording + source_file + plan rows for *path*; return the recording id."""
    path = Path(path)
    title = title or path.stem
    st = path.stat() if path.exists() else None
    digest = sha256_of(path) if sha256 == "auto" else sha256
    with catalog.transaction() as conn:
        rid = conn.execute(
            "INSERT INTO recording(key, isrc, mbid, title, artist, rights) VALUES (?, ?, ?, ?, ?, ?) "
            "RETURNING id", (isrc or derived_key(str(path)), isrc, mbid, title, artist, rights)
        ).fetchone()[0]
        sid = conn.execute(
            "INSERT INTO source_file(path, size, mtime_ns, sha256, status, codec, recording_id, "
            "rights, scanned_at) VALUES (?, ?, ?, ?, 'ok', ?, ?, ?, ?) RETURNING id",
            (str(path), st.st_size if st else 0, st.st_mtime_ns if st else 0, digest, codec, rid,
             rights, utc_now())).fetchone()[0]
        conn.execute(
            "INSERT INTO plan(recording_id, tier, est_bytes, rank, weight, source_id, planned_at) "
            "VALUES (?, ?, 0, ?, 1.0, ?, ?)", (rid, tier, rank, sid, utc_now()))
    return rid


def make_sources(catalog: Catalog, folder: Path, n: int, seconds: float = 1.0,
                 fmt: str = "flac") -> list[int]:
    """*n* distinct real files (different melodies), planned opus75 in rank order."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(n):
        voice = synth.Voice(notes=tuple(60 + (i * 3 + k) % 24 for k in range(6)), seed=i, noise=0.02)
        p = synth.make_file(folder / f"track{i:02d}", fmt, seconds, voice=voice)
        ids.append(add_source(catalog, p, rank=i + 1))
    return ids


def store_files(store: Path) -> list[Path]:
    return sorted(p for p in store.rglob("*") if p.is_file())


def tmp_leftovers(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and (
        p.suffix in (".part", ".tmp") or p.name.startswith(".")))


def chmod_unreadable(path: Path) -> None:
    os.chmod(path, 0)
