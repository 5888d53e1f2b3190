"""The list of every release: ``releases/torrents.json`` and a static ``releases/torrents.html``.

``torrents.json`` (format ``soundark-torrents/1``) is what mirrors, the preserve stage and the
web face read; its one reader and writer is :mod:`soundark.fixity.releases`. Both files are
rewritten from the catalog's ``release`` table after every run (atomically: temp file +
rename), in publication order; they are derived data, the bags are the record.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2

from soundark.catalog import Catalog
from soundark.config import ArchivePaths
from soundark.durable import write_durably
from soundark.errors import EnvironmentProblem, os_reason
from soundark.fixity.releases import LIST_FIELDS, LIST_FORMAT, read_release_list, release_list_path, release_list_text
from soundark.units import format_bytes


def release_rows(catalog: Catalog) -> list[dict[str, Any]]:
    sql = f"SELECT {', '.join(LIST_FIELDS)} FROM release ORDER BY id"
    return [dict(row) for row in catalog.execute(sql)]


def torrent_list(catalog: Catalog) -> dict[str, Any]:
    return {"format": LIST_FORMAT, "releases": release_rows(catalog)}


def write_torrent_list(catalog: Catalog, paths: ArchivePaths) -> dict[str, Any]:
    """Rewrite torrents.json and torrents.html from the catalog; return the list."""
    listing = torrent_list(catalog)
    _write(release_list_path(paths.releases), release_list_text(listing["releases"]))
    _write(paths.releases / "torrents.html", render_html(listing))
    return listing


def load_torrent_list(paths: ArchivePaths) -> dict[str, Any]:
    """``releases/torrents.json`` as a dict; an archive without releases gets an empty list."""
    return {"format": LIST_FORMAT, "releases": read_release_list(release_list_path(paths.releases), missing_ok=True)}


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EnvironmentProblem(path, f"cannot write: {os_reason(e)}") from e
    write_durably(path, text.encode("utf-8"))


@functools.cache
def _page() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.PackageLoader("soundark.release", "templates"), autoescape=True,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters.update(bytes=format_bytes, thousands=lambda n: f"{n:,}")
    return env.get_template("torrents.html")


def render_html(listing: dict[str, Any]) -> str:
    """The static page of the release list (templates/torrents.html, autoescaped)."""
    return _page().render(releases=listing["releases"])
