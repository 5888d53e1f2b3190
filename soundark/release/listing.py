"""The list of every release: ``releases/torrents.json`` and a static ``releases/torrents.html``.

``torrents.json`` (format ``soundark-torrents/1``) is what mirrors, the preserve stage and the
web face read::

    {"format": "soundark-torrents/1",
     "releases": [{"name", "phase", "infohash_v1", "infohash_v2", "magnet", "bytes", "files",
                   "rank_first", "rank_last", "listens", "listens_share", "created",
                   "torrent", "parity_for"}, ...]}

Both files are rewritten from the catalog's ``release`` table after every run (atomically:
temp file + rename), in publication order; they are derived data, the bags are the record.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from soundark.catalog import Catalog
from soundark.config import ArchivePaths
from soundark.durable import write_durably
from soundark.errors import BadInput, EnvironmentProblem

FORMAT = "soundark-torrents/1"
FIELDS = ("name", "phase", "infohash_v1", "infohash_v2", "magnet", "bytes", "files", "rank_first",
          "rank_last", "listens", "listens_share", "created", "torrent", "parity_for")


def release_rows(catalog: Catalog) -> list[dict[str, Any]]:
    sql = f"SELECT {', '.join(FIELDS)} FROM release ORDER BY id"
    return [dict(row) for row in catalog.execute(sql)]


def torrent_list(catalog: Catalog) -> dict[str, Any]:
    return {"format": FORMAT, "releases": release_rows(catalog)}


def write_torrent_list(catalog: Catalog, paths: ArchivePaths) -> dict[str, Any]:
    """Rewrite torrents.json and torrents.html from the catalog; return the list."""
    listing = torrent_list(catalog)
    text = json.dumps(listing, ensure_ascii=False, indent=1) + "\n"
    _write(paths.releases / "torrents.json", text)
    _write(paths.releases / "torrents.html", render_html(listing))
    return listing


def load_torrent_list(paths: ArchivePaths) -> dict[str, Any]:
    """``releases/torrents.json`` as a dict; an archive without releases gets an empty list."""
    path = paths.releases / "torrents.json"
    if not path.exists():
        return {"format": FORMAT, "releases": []}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInput(path, f"cannot read the release list: {e}") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("releases"), list):
        raise BadInput(path, f"not a {FORMAT} release list")
    return data


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EnvironmentProblem(path, f"cannot write: {e.strerror or e}") from e
    write_durably(path, text.encode("utf-8"))


def human_bytes(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{n} B"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Releases</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
code {{ font-size: .85em; word-break: break-all; }}
</style></head>
<body>
<h1>Releases</h1>
<p>{count} releases. Every release is a BagIt bag (RFC 8493) shared as a BitTorrent torrent:
download the .torrent file or open the magnet link in any BitTorrent client, then check the
files with <code>sha256sum -c manifest-sha256.txt</code> inside the folder. The same list as
JSON: <a href="torrents.json">torrents.json</a>.</p>
<table>
<thead><tr><th>name</th><th>phase</th><th>created</th><th>size</th><th>files</th><th>ranks</th>
<th>share of listens</th><th>infohash</th><th>get</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""


def _row(r: dict[str, Any]) -> str:
    e = html.escape
    ranks = f"{r['rank_first']}–{r['rank_last']}" if r.get("rank_first") is not None else ""
    share = f"{r['listens_share'] * 100:.2f} %" if r.get("listens_share") is not None else ""
    hashes = f"<code>{e(r['infohash_v1'])}</code>"
    if r.get("infohash_v2"):
        hashes += f"<br><code>v2 {e(r['infohash_v2'])}</code>"
    phase = e(r["phase"]) + (f" for {e(r['parity_for'])}" if r.get("parity_for") else "")
    links = f"<a href=\"{e(r['torrent'])}\">torrent</a> · <a href=\"{e(r['magnet'])}\">magnet</a>"
    return (f"<tr><td>{e(r['name'])}</td><td>{phase}</td><td>{e(r['created'])}</td>"
            f"<td class=\"n\">{human_bytes(r['bytes'])}</td><td class=\"n\">{r['files']:,}</td>"
            f"<td class=\"n\">{ranks}</td><td class=\"n\">{share}</td><td>{hashes}</td><td>{links}</td></tr>")


def render_html(listing: dict[str, Any]) -> str:
    releases = listing["releases"]
    return _PAGE.format(count=len(releases), rows="\n".join(_row(r) for r in releases))
