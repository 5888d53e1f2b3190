"""Where a seeder keeps libtorrent's resume data, and when that data may still be trusted.

A seeder that restarts with 1,000 releases should not read every byte again before it serves
one: libtorrent's resume data (a bencoded record of the pieces it has, libtorrent's
``write_resume_data``) lets it skip the check. libtorrent 2.1 itself only notices a *missing*
file when it loads resume data (measured: a truncated or rewritten file was served as if
intact), so soundark decides first whether the data on disk is still what was checked:

* the resume file is written only after libtorrent has checked every piece of that release,
  and its mtime is set to a time taken (from the file system's own clock, so the two compare)
  *before* that check began;
* at the next start it is trusted only when every file of the release is still there, a
  regular file of the size the torrent says, with an inode change time (ctime, which a writer
  cannot set back) older than that stamp. A repaired, replaced, truncated, re-linked or
  chmod-ed file means a full check of that release.

A bit flipped on disk with nothing else changing passes this test (nor would the check it saves
find it sooner): ``soundark verify`` is what finds that, and a peer rejects the bad piece by its
SHA-1 anyway.

Layout: ``<save path>/.soundark-seed/<infohash v1>.resume`` (for an archive, the save path is
``ARCHIVE/releases``, beside the bags and the release list). Best effort throughout: a folder
that cannot be written to only means the next start checks again. Standard library only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from soundark.fixity.torrent import TorrentInfo

SEED_RESUME_DIR = ".soundark-seed"
_CLOCK = ".clock"


def resume_path(save_path: Path, infohash_v1: str) -> Path:
    return Path(save_path) / SEED_RESUME_DIR / f"{infohash_v1}.resume"


def fs_clock(save_path: Path) -> int | None:
    """The file system's time now (ns), read back from a file written there; None if read-only."""
    folder = Path(save_path) / SEED_RESUME_DIR
    try:
        folder.mkdir(exist_ok=True)
        marker = folder / _CLOCK
        marker.write_bytes(b"")
        os.utime(marker)  # an empty rewrite may leave the mtime alone on some file systems
        return marker.stat().st_mtime_ns
    except OSError:
        return None


def is_fresh(resume: Path, info: TorrentInfo, save_path: Path) -> bool:
    """True when nothing of the release changed since the check that ``resume`` records."""
    try:
        stamp = resume.stat().st_mtime_ns
    except OSError:
        return False
    root = Path(save_path) / info.name if info.multi_file else Path(save_path)
    for f in info.real_files:
        try:
            st = os.lstat(root / f.path if info.multi_file else root / info.name)
        except OSError:
            return False
        # ctime >= stamp: changed in the same clock tick as the check began counts as changed
        if not stat.S_ISREG(st.st_mode) or st.st_size != f.size or st.st_ctime_ns >= stamp:
            return False
    return True


def write_resume(path: Path, data: bytes, stamp: int) -> bool:
    """Write ``data`` to ``path`` whole (a temporary file renamed over it), dated ``stamp``.

    Not fsynced: a file torn by a power cut fails libtorrent's parse, and that release is
    checked again, which is all the loss there can be.
    """
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.utime(tmp, ns=(stamp, stamp))
        os.replace(tmp, path)
        return True
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
