"""The coverage report of a plan: terminal text, ``coverage.png`` and a standalone ``coverage.html``.

Reads the figures stored with the latest plan (:func:`soundark.plan.stage.coverage_figures`);
the charts are drawn with matplotlib's object API (no pyplot global state, so
the web app can call :func:`coverage_svg` from any thread). The HTML file
embeds its chart as inline SVG and needs nothing else to display.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from soundark.catalog import open_catalog
from soundark.config import ArchivePaths, Settings
from soundark.durable import write_durably
from soundark.errors import EnvironmentProblem
from soundark.plan.actual import check_budget
from soundark.plan.signals import signal_mode, signal_note
from soundark.plan.stage import coverage_figures
from soundark.units import format_bytes, si_unit


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _hours(f: dict[str, Any]) -> str:
    return f"{f.get('hours_kept', 0):,.1f} of {f.get('hours_total', 0):,.1f} hours"


def headline(f: dict[str, Any]) -> str:
    """One sentence: what the budget buys (never a listen share without listen data)."""
    budget = f"budget {format_bytes(f['budget'])}" if f["budget"] is not None else "no budget"
    kept = f"{budget}: {f['kept']:,} of {f['recordings']:,} recordings kept in {format_bytes(f['bytes'])}"
    if signal_mode(f) == "none":
        return f"{kept}, {_hours(f)} (no listen data)"
    return f"{kept}, {_pct(f['share_covered'])} of listens ({_pct(f.get('share_value', 0))} of value)"


_WHY = {
    "value": {"original": "its extra bytes buy more listen value than keeping more of the tail",
              "opus75": "kept at the best value per byte; the original would cost more than it adds",
              "skip": "the budget ran out before its value per byte"},
    "popular-originals": {"original": "among the recordings holding the top {top} of listens",
                          "opus75": "outside the top {top} of listens, or no keepable lossy source",
                          "skip": "the budget ran out before its listens per byte"},
}


def tier_lines(f: dict[str, Any]) -> list[str]:
    """The tier table: what each tier holds and why."""
    none = signal_mode(f) == "none"
    lines = [f"{'tier':<10}{'recordings':>12}{'bytes':>12}{'hours' if none else 'listens':>10}  "
             f"{'' if none else 'listens range  '}why"]
    why = _WHY.get(f.get("policy", "value"), _WHY["value"])
    top = _pct(f.get("original_top", 0.5))
    for name, row in f["tiers"].items():
        share = (f"{row.get('hours', 0):,.1f}" if none else
                 _pct(row["listens"] / f["listens_total"] if f["listens_total"] else 0))
        span = "" if none else (f"{row.get('listens_min', 0):,.0f}-{row.get('listens_max', 0):,.0f}"
                                if row["recordings"] else "-")
        reason = "scan order, whole albums" if none and name != "skip" else why[name].format(top=top)
        lines.append(f"{name:<10}{row['recordings']:>12,}{format_bytes(row['bytes']):>12}{share:>10}  "
                     f"{'' if none else f'{span:<15}'}{reason}")
    return lines


def render_text(f: dict[str, Any], check: dict[str, Any] | None = None) -> str:
    """The report as plain text for a terminal."""
    lines = [f"plan #{f.get('run_id', '?')} of {f.get('planned_at', '?')}, tiers "
             f"{', '.join(f.get('tiers_allowed', []))}, policy {f.get('policy', 'value')}"
             + (f" (opus75 listens worth {f['opus_listen_value']:g})" if "opus_listen_value" in f else ""),
             headline(f)]
    if note := signal_note(f):
        lines.append(note)
    if check is not None:
        lines.append(check_line(check))
    lines += [""] + tier_lines(f)
    missing = sum(row.get("without_audio", 0) for row in f["tiers"].values())
    if missing:
        lines.append(f"({missing:,} kept recordings have no audio in the catalog yet: "
                     "they are planned from their duration and wait for a source)")
    if signal_mode(f) == "none":
        return "\n".join(lines)
    lines.append("")
    for row in f["top"]:
        lines.append(f"the top {row['recordings']:,} recordings ({_pct(row['share_of_recordings'])}) "
                     f"hold {_pct(row['share'])} of listens")
    lines.append("")
    lines.append("share of listens a budget buys (the plan's buying order):")
    for budget, share in _budget_points(f):
        lines.append(f"  {format_bytes(budget):>12}  {_pct(share):>8}")
    return "\n".join(lines)


def check_line(c: dict[str, Any]) -> str:
    """`plan --check` in one sentence: how far the archive is from its budget."""
    if c["budget"] is None:
        return (f"no budget: the plan takes {format_bytes(c['actual'])} with real sizes where encoded, "
                f"{format_bytes(c['released'])} released")
    state = (f"{format_bytes(-c['over_by'])} under" if c["fits"] else f"{format_bytes(c['over_by'])} OVER")
    return (f"budget {format_bytes(c['budget'])}: {state} with real sizes ({format_bytes(c['encoded'])} "
            f"encoded in {c['encoded_recordings']:,} recordings, {format_bytes(c['pending'])} estimated for "
            f"{c['pending_recordings']:,} still to encode); {format_bytes(c['released'])} released")


def _budget_points(f: dict[str, Any]) -> list[tuple[int, float]]:
    """The bytes curve read at a few round shares of the whole catalog's bytes."""
    curve = f["curve_bytes"]
    total = f.get("bytes_best_all") or f["bytes_cheapest_all"]
    out = []
    for frac in (0.01, 0.05, 0.1, 0.25, 0.5, 1.0):
        target = total * frac
        share = 0.0
        for b, s in zip(curve["bytes"], curve["share"]):
            if b > target:
                break
            share = s
        out.append((int(target), share))
    return out


def _draw_bytes(ax: Any, f: dict[str, Any]) -> None:
    curve = f["curve_bytes"]
    budget = f["budget"]
    right = max([f.get("bytes_best_all", 0), f["bytes_cheapest_all"], budget or 0, f["bytes"], 1])
    scale, unit = si_unit(right)
    xs = [0.0] + [b / scale for b in curve["bytes"]]
    ys = [0.0] + list(curve["share"])
    ax.plot(xs, ys, color="#1f5fa8", linewidth=2, label="listens kept")
    if curve.get("value"):
        ax.plot(xs, [0.0] + list(curve["value"]), color="#8e44ad", linewidth=1.5, linestyle="-.",
                label="value kept (opus75 listens x worth)")
    if budget is not None:
        ax.axvspan(0, min(budget, right) / scale, color="#1f5fa8", alpha=0.08)
        ax.axvline(budget / scale, color="#c0392b", linestyle="--", linewidth=1.5,
                   label=f"budget {format_bytes(budget)}")
        ax.axhline(f["share_covered"], color="#c0392b", linestyle=":", linewidth=1)
        ax.annotate(f"{_pct(f['share_covered'])} of listens\n{f['kept']:,} recordings",
                    xy=(min(budget, right) / scale, f["share_covered"]), xytext=(10, -40),
                    textcoords="offset points", color="#c0392b", fontsize=10,
                    arrowprops={"arrowstyle": "->", "color": "#c0392b"})
    else:
        ax.axvline(f["bytes"] / scale, color="#555555", linestyle="--", linewidth=1.2,
                   label=f"the plan: {format_bytes(f['bytes'])} (originals kept where allowed)")
    ax.set_xlim(0, right / scale * 1.02)
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(f"bytes ({unit}; keeps and upgrades in the plan's buying order, by value per byte)")
    ax.set_ylabel("share of all listens")
    ax.set_title("What a budget buys")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")


def _draw_recordings(ax: Any, f: dict[str, Any]) -> None:
    curve = f["curve_recordings"]
    ax.plot(curve["recordings"], curve["share"], color="#27864a", linewidth=2)
    ax.set_xscale("log")
    if f["kept"] and f["budget"] is not None:
        ax.axvline(max(f["kept"], 1), color="#c0392b", linestyle="--", linewidth=1.2,
                   label=f"{f['kept']:,} recordings kept")
        ax.legend(loc="lower right")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(1, max(f["recordings"], 2))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("top N recordings (by listens, log scale)")
    ax.set_ylabel("share of all listens")
    ax.set_title("How concentrated listening is")
    ax.grid(True, which="both", alpha=0.3)


def build_figure(f: dict[str, Any], titled: bool = True) -> Figure:
    """Both charts; *titled* puts the headline above them (coverage.png stands alone; the HTML
    page says its headline once, in its own text)."""
    fig = Figure(figsize=(12, 5.2), dpi=100)
    left, right = fig.subplots(1, 2)
    _draw_bytes(left, f)
    _draw_recordings(right, f)
    if titled:
        fig.suptitle(headline(f), fontsize=13, fontweight="bold")
    fig.tight_layout(rect=(0, 0, 1, 0.95) if titled else (0, 0, 1, 1))
    return fig


def coverage_png(f: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(build_figure(f)).print_png(buf)
    return buf.getvalue()


def coverage_svg(f: dict[str, Any]) -> str:
    """The chart as an SVG document (for the web page and coverage.html)."""
    buf = io.StringIO()
    FigureCanvasSVG(build_figure(f, titled=False)).print_svg(buf)
    text = buf.getvalue()
    return text[text.index("<svg"):]


@functools.cache
def _page() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.PackageLoader("soundark.plan", "templates"), autoescape=True,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters.update(bytes=format_bytes, pct=_pct, thousands=lambda n: f"{n:,}")
    return env.get_template("coverage_report.html")


def _cell(r: dict[str, Any], total: float, none: bool) -> str:
    return f"{r.get('hours', 0):,.1f} h" if none else _pct(r["listens"] / total)


def render_html(f: dict[str, Any]) -> str:
    """The standalone coverage.html (templates/coverage_report.html, autoescaped but the SVG)."""
    total = f["listens_total"] or 1.0
    none = signal_mode(f) == "none"
    tiers = [{"name": n, "recordings": r["recordings"], "bytes": r["bytes"], "cell": _cell(r, total, none)}
             for n, r in f["tiers"].items()]
    return _page().render(headline=headline(f), svg=coverage_svg(f), tiers=tiers, top=f["top"],
                          note=signal_note(f) or "", share_head="hours" if none else "share of listens",
                          run_id=f.get("run_id", "?"), planned_at=str(f.get("planned_at", "?")),
                          allowed=", ".join(f.get("tiers_allowed", [])))


@dataclass
class CoverageReport:
    """The figures of the latest plan and where the report files were written."""

    figures: dict[str, Any]
    text: str
    png: Path | None
    html: Path | None
    check: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"figures": self.figures, "png": str(self.png) if self.png else None,
                "html": str(self.html) if self.html else None, "check": self.check}


def _write_atomic(path: Path, data: bytes) -> None:
    write_durably(path, data)


def run_report(paths: ArchivePaths, settings: Settings, out_dir: Path | None = None) -> CoverageReport:
    """Entry of the report: figures of the latest plan, written as coverage.png and
    coverage.html into *out_dir* (default ARCHIVE/reports/)."""
    del settings  # the report describes the stored plan, whatever the settings say now
    with open_catalog(paths.catalog, readonly=True) as catalog:
        figures = coverage_figures(catalog)
        check = check_budget(catalog, figures["budget"]).as_dict()
    out = Path(out_dir) if out_dir is not None else paths.root / "reports"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EnvironmentProblem(out, f"cannot create the report folder: {e.strerror or e}") from e
    png, page = out / "coverage.png", out / "coverage.html"
    _write_atomic(png, coverage_png(figures))
    _write_atomic(page, render_html(figures).encode("utf-8"))
    return CoverageReport(figures=figures, text=render_text(figures, check), png=png, html=page, check=check)
