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

from soundark.errors import BadInput

RELEASE_LIST = "torrents.json"
LIST_FORMAT = "soundark-torrents/1"
LIST_FIELDS = ("name", "phase", "infohash_v1", "infohash_v2", "magnet", "bytes", "files", "rank_first",
               "rank_last", "listens", "listens_share", "created", "torrent", "parity_for")
PARITY_SUFFIX = ".parity"
TORRENTS_DIR = "torrents"


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
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        if missing_ok:
            return []
        raise BadInput(path, f"no release list here (releases/{RELEASE_LIST})") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInput(path, f"cannot read the release list: {e}") from e
    if not isinstance(data, dict) or data.get("format") != LIST_FORMAT or not isinstance(data.get("releases"), list):
        raise BadInput(path, f"not a {LIST_FORMAT} release list")
    return [r for r in data["releases"] if isinstance(r, dict)]


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
