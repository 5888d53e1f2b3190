"""HTML pages (Jinja2 templates, no JavaScript framework): home, search, recording, album, artist,
coverage, releases.

Pages work without JavaScript; ``static/app.js`` only adds "copy" buttons for
magnet links and the play queue (play the next track of an album or a list).
Templates autoescape everything they print.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from soundark.errors import BadInput
from soundark.units import format_bytes
from soundark.web.queries import ArchiveReader

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _duration(ms: Any) -> str:
    if not ms:
        return ""
    s = round(int(ms) / 1000)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _percent(x: Any) -> str:
    return "" if x is None else f"{float(x) * 100:.1f} %"


def _number(x: Any) -> str:
    if x is None:
        return ""
    return f"{x:,.0f}" if isinstance(x, (int, float)) else str(x)


def _tier_label(tier: Any) -> str:
    """Tier names for people: "skip" is a planner's word, not a listener's."""
    return {"skip": "not kept under the current plan", "original": "original kept",
            "opus75": "opus 75 kbit/s"}.get(str(tier), str(tier))


def _plural(n: Any, word: str) -> str:
    return f"{_number(n)} {word}{'' if n == 1 else 's'}"


templates.env.filters.update(duration=_duration, size=format_bytes, percent=_percent, number=_number,
                             tier_label=_tier_label, plural=_plural)


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200,
            headers: dict[str, str] | None = None) -> HTMLResponse:
    static = request.app.state.static
    context = {"static": lambda f: f"/static/{f}?v={static[f].digest}" if f in static else f"/static/{f}",
               **context}
    return templates.TemplateResponse(request, name, context, status_code=status, headers=headers)


def error_page(request: Request, status: int, message: str,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    return _render(request, "error.html", {"status": status, "message": message}, status, headers)


def _reader(request: Request) -> ArchiveReader:
    return request.app.state.reader


@router.get("/", response_class=HTMLResponse)
def search_page(request: Request, q: str = "", page: int = 1) -> Response:
    reader = _reader(request)
    try:
        result = reader.search(q, page, 20)
    except BadInput as e:
        return _render(request, "search.html", {"q": q, "result": None, "problem": str(e),
                                                "stats": None}, 400)
    if not q.strip():
        albums = reader.albums(1, 12)["albums"]
        return _render(request, "home.html", {"q": q, "stats": reader.stats(), "home": reader.home(),
                                              "albums": albums})
    return _render(request, "search.html", {"q": q, "result": result, "problem": None})


@router.get("/albums", response_class=HTMLResponse)
def albums_page(request: Request, page: int = 1) -> Response:
    return _render(request, "albums.html", {"listing": _reader(request).albums(page, 60)})


@router.get("/album/{key:path}", response_class=HTMLResponse)
def album_page(request: Request, key: str) -> Response:
    return _render(request, "album.html", {"album": _reader(request).album(key)})


@router.get("/artists", response_class=HTMLResponse)
def artists_page(request: Request, page: int = 1) -> Response:
    return _render(request, "artists.html", {"listing": _reader(request).artists(page, 100)})


@router.get("/artist/{key:path}", response_class=HTMLResponse)
def artist_page(request: Request, key: str) -> Response:
    return _render(request, "artist.html", {"artist": _reader(request).artist(key)})


@router.get("/recording/{key}", response_class=HTMLResponse)
def recording_page(request: Request, key: str) -> Response:
    rec = _reader(request).recording(key)
    return _render(request, "recording.html", {"rec": rec})


def _polyline(curve: list[dict[str, Any]], xkey: str, width: int = 600, height: int = 300) -> str:
    """SVG points of the listens share (y) against *xkey* scaled to its last value (x)."""
    if not curve:
        return ""
    xmax = float(curve[-1][xkey]) or 1.0
    pts = [f"0,{height}"]
    for p in curve:
        x = float(p[xkey]) / xmax * width
        y = height - float(p["share"]) * height
        pts.append(f"{x:.1f},{y:.1f}")
    return " ".join(pts)


def _chart(title: str, curve: list[dict[str, Any]], xkey: str, shown: Any, xlabel: str,
           mark: float | None = None, label: str = "") -> dict[str, Any]:
    """A chart for the template; *mark* draws a dashed line at that x (the budget, the kept count)."""
    xmax = float(curve[-1][xkey]) if curve else 0.0
    line = None
    if mark is not None and xmax > 0:
        line = {"x": round(min(float(mark), xmax) / xmax * 600, 1), "label": label}
    # labelled ticks at a quarter, half and three quarters of the x axis, as on the y axis
    ticks = [{"x": 600 * f, "label": shown(xmax * f)} for f in (0.25, 0.5, 0.75)] if xmax > 0 else []
    return {"title": title, "xlabel": xlabel, "points": _polyline(curve, xkey),
            "xmax": shown(curve[-1][xkey]) if curve else "", "mark": line, "xticks": ticks}


def _percent_text(x: float) -> str:
    return f"{100 * x:.1f} %"


@router.get("/coverage", response_class=HTMLResponse)
def coverage_page(request: Request) -> Response:
    cov = _reader(request).coverage()
    summary = cov.get("summary", {})
    budget, kept = summary.get("budget"), summary.get("kept")
    share = _percent_text(summary.get("listens_share") or 0.0)
    budget_note = f"budget {format_bytes(budget)}: {share} of listens" if budget else ""
    charts = [_chart("Share of listens against bytes kept (each at its cheapest tier)", cov["curve_bytes"],
                     "bytes", format_bytes, "", budget, budget_note),
              _chart("Share of listens against recordings, most listened first", cov["curve_recordings"],
                     "recordings", _number, "recordings", kept,
                     f"{_number(kept)} recordings kept" if kept is not None else "")]
    return _render(request, "coverage.html", {"cov": cov, "charts": charts})


@router.get("/releases", response_class=HTMLResponse)
def releases_page(request: Request) -> Response:
    reader = _reader(request)
    releases = reader.releases()
    listed = reader.release_list.is_file()
    return _render(request, "releases.html", {"releases": releases, "listed": listed})
