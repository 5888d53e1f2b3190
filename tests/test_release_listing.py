"""releases/torrents.html: the static release list rendered from its Jinja2 template."""

from __future__ import annotations

import tomllib
from pathlib import Path

from soundark.release.listing import render_html

ROOT = Path(__file__).resolve().parent.parent

AUDIO = {"name": "sa-audio-0001", "phase": "audio", "created": "2024-01-01", "infohash_v1": "ab" * 20,
         "infohash_v2": None, "magnet": "magnet:?xt=urn:btih:abab&dn=sa-audio-0001", "bytes": 123_456_789,
         "files": 1234, "rank_first": 1, "rank_last": 1234, "listens": 5, "listens_share": 0.123456,
         "torrent": "torrents/sa-audio-0001.torrent", "parity_for": None}
PARITY = {**AUDIO, "name": "sa-audio-0001.parity", "phase": "parity", "infohash_v2": "ef" * 32,
          "magnet": 'magnet:?dn="><script>x</script>', "bytes": 900, "files": 3, "rank_first": None,
          "rank_last": None, "listens": None, "listens_share": None, "torrent": "torrents/p.torrent",
          "parity_for": "sa-audio-0001"}


def test_one_line_per_release_with_its_figures() -> None:
    page = render_html({"releases": [AUDIO, PARITY]})
    rows = [line for line in page.splitlines() if line.startswith("<tr><td>")]
    assert len(rows) == 2 and page.count("<tr>") == 3  # the header row and one per release
    assert rows[0] == ('<tr><td>sa-audio-0001</td><td>audio</td><td>2024-01-01</td>'
                       '<td class="n">123.5 MB</td><td class="n">1,234</td><td class="n">1–1234</td>'
                       f'<td class="n">12.35 %</td><td><code>{"ab" * 20}</code></td>'
                       '<td><a href="torrents/sa-audio-0001.torrent">torrent</a> · '
                       '<a href="magnet:?xt=urn:btih:abab&amp;dn=sa-audio-0001">magnet</a></td></tr>')
    assert "<td>parity for sa-audio-0001</td>" in rows[1] and f"<br><code>v2 {'ef' * 32}</code>" in rows[1]
    assert '<td class="n"></td><td class="n"></td>' in rows[1]  # no ranks, no share
    assert "<p>2 releases." in page and page.endswith("</body></html>\n")


def test_values_are_escaped() -> None:
    page = render_html({"releases": [PARITY]})
    assert "<script>" not in page
    assert 'href="magnet:?dn=&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in page


def test_an_empty_list() -> None:
    page = render_html({"releases": []})
    assert "<p>0 releases." in page and "<tbody>\n\n</tbody>" in page


def test_every_template_is_package_data() -> None:
    """A template missing from [tool.setuptools.package-data] works here but not once installed."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["soundark"]
    package = ROOT / "soundark"
    templates = sorted(p.relative_to(package).as_posix() for p in package.rglob("templates/*.html"))
    assert len(templates) >= 3
    missing = [t for t in templates if not any(Path(t).match(g) and t.count("/") == g.count("/") for g in globs)]
    assert not missing
