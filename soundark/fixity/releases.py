"""The releases folder's own formats, read and written here only (DESIGN.md, "The archive folder"):

* the release list ``releases/torrents.json``, format ``soundark-torrents/1``::

      {"format": "soundark-torrents/1",
       "releases": [{"name", "phase", "infohash_v1", "infohash_v2", "magnet", "bytes", "files",
                     "rank_first", "rank_last", "listens", "listens_share", "created",
                     "torrent", "parity_for"}, ...]}

  written by the release stage, read by mirrors (``mirror plan``), the CLI and the web face;
* a bag's parity sidecar: the folder ``<bag>.parity`` beside it (soundark.fixity.parity);
* a bag's torrent: ``torrents/<bag>.torrent`` in the archive layout, or beside the bag (or in it)
  where a copy was fetched or moved by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from soundark import jsontext
from soundark.errors import BadInput
from soundark.fixity.paths import check_size

RELEASE_LIST = "torrents.json"
LIST_FORMAT = "soundark-torrents/1"
LIST_FIELDS = ("name", "phase", "infohash_v1", "infohash_v2", "magnet", "bytes", "files", "rank_first",
               "rank_last", "listens", "listens_share", "created", "torrent", "parity_for")
PARITY_SUFFIX = ".parity"
TORRENTS_DIR = "torrents"
MAX_RELEASE_BYTES = 1 << 60  # 1 EiB: any real release; a larger number is a damaged or hostile list


# ---------------------------------------------------------------- the release list

def release_list_path(releases: Path) -> Path:
    """Where the list lives in a releases folder."""
    return Path(releases) / RELEASE_LIST


def release_list_text(releases: list[dict[str, Any]]) -> str:
    """The list's bytes (as text) for these rows, in the order given: the one writer."""
    listing = {"format": LIST_FORMAT, "releases": [{k: r.get(k) for k in LIST_FIELDS} for r in releases]}
    return json.dumps(listing, ensure_ascii=False, indent=1) + "\n"


def read_release_list(path: Path, *, missing_ok: bool = False) -> list[dict[str, Any]]:
    """The rows of a release list file: the one reader. BadInput for anything but the format;
    a missing file is BadInput too unless ``missing_ok`` (an archive that has released nothing)."""
    path = Path(path)
    try:
        data = jsontext.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        if missing_ok:
            return []
        raise BadInput(path, f"no release list here (releases/{RELEASE_LIST})") from e
    except (OSError, ValueError) as e:  # ValueError: BadInput, UnicodeDecodeError
        raise BadInput(path, f"cannot read the release list: {e}") from e
    if not isinstance(data, dict) or data.get("format") != LIST_FORMAT or not isinstance(data.get("releases"), list):
        raise BadInput(path, f"not a {LIST_FORMAT} release list")
    return [_checked_row(r, f"{path} releases[{n}]") for n, r in enumerate(data["releases"])]


_TEXT = ("name",)
_OPTIONAL_TEXT = ("phase", "created", "infohash_v1", "infohash_v2", "magnet", "torrent", "parity_for")
_OPTIONAL_INT = ("files", "rank_first", "rank_last", "listens")


def _checked_row(row: object, subject: str) -> dict[str, Any]:
    """One row with every field present and of its type, so readers index it without care.

    A list may come from a mirror, not from this archive: a size of 10**400 or a missing
    ``created`` must be one line naming the row, not a crash in whoever prints it.
    """
    if not isinstance(row, dict):
        raise BadInput(subject, f"a release is a JSON object, not {type(row).__name__}")
    out = {k: row.get(k) for k in LIST_FIELDS}
    for k in _TEXT:
        if not isinstance(out[k], str) or not out[k]:
            raise BadInput(subject, f"{k!r} must be text, not {out[k]!r:.40}")
    for k in _OPTIONAL_TEXT:
        if out[k] is not None and not isinstance(out[k], str):
            raise BadInput(subject, f"{k!r} must be text or null, not {out[k]!r:.40}")
    out["bytes"] = check_size(out["bytes"], f"{subject} bytes", MAX_RELEASE_BYTES)
    for k in _OPTIONAL_INT:
        v = out[k]
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 1 << 63):
            raise BadInput(subject, f"{k!r} must be a whole number or null, not {v!r:.40}")
    share = out["listens_share"]
    if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float))
                              or not 0 <= share <= 1):
        raise BadInput(subject, f"'listens_share' must be a number in 0..1 or null, not {share!r:.40}")
    return out


# ---------------------------------------------------------------- beside a bag

def parity_name(bag_name: str) -> str:
    """The release name of a bag's parity sidecar."""
    return bag_name + PARITY_SUFFIX


def is_parity_name(name: str) -> bool:
    return name.endswith(PARITY_SUFFIX)


def parity_dir(bag: Path) -> Path:
    """The sidecar folder beside ``bag`` (it may not exist)."""
    bag = Path(bag)
    return bag.with_name(parity_name(bag.name))


def torrent_name(bag_name: str) -> str:
    return f"{bag_name}.torrent"


def torrent_relpath(bag_name: str) -> str:
    """The torrent's path relative to the releases folder, as the release list records it."""
    return f"{TORRENTS_DIR}/{torrent_name(bag_name)}"


def find_torrent(bag: Path) -> Path | None:
    """A bag's .torrent: in ``torrents/`` beside it (the archive layout), beside it, or inside it."""
    bag = Path(bag)
    name = torrent_name(bag.name)
    for candidate in (bag.parent / TORRENTS_DIR / name, bag.parent / name, bag / name):
        if candidate.is_file():
            return candidate
    return None
