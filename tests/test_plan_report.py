"""`soundark plan` and `soundark report` from the command line, and the report files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from soundark.catalog import open_catalog
from soundark.cli import main
from soundark.config import ArchivePaths, Settings
from soundark.plan.report import build_figure, coverage_svg, render_text, run_report

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plan.md"


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.fixture
def planned(archive: ArchivePaths) -> ArchivePaths:
    """Four recordings with 600, 300, 100 and 0 listens, 101000/101000/202000/101000 opus bytes."""
    (archive.root / "soundark.toml").write_text('opus_bitrate = 8000\n', encoding="utf-8")
    with open_catalog(archive.catalog) as cat:
        for key, listens, duration in (("A", 600, 100_000), ("B", 300, 100_000), ("C", 100, 200_000),
                                       ("D", 0, 100_000)):
            cat.execute("INSERT INTO recording(key, title, listens, duration_ms) VALUES (?, ?, ?, ?)",
                        (key, key, listens, duration))
    return archive


def test_plan_and_report_give_the_hand_computed_coverage(planned: ArchivePaths,
                                                         capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "plan", "-a", str(planned.root), "--budget", "403999", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["kept"] == 2 and result["budget"] == 403_999 and result["bytes"] == 202_000
    assert result["share_covered"] == pytest.approx(0.9)
    assert result["by_tier"]["skip"]["recordings"] == 2

    code, out, _ = run(capsys, "report", "-a", str(planned.root), "--json")
    assert code == 0
    report = json.loads(out)
    f = report["figures"]
    assert f["curve_bytes"]["share"] == pytest.approx([0.6, 0.9, 1.0, 1.0])
    assert f["curve_bytes"]["bytes"] == [101_000, 202_000, 404_000, 505_000]
    assert Path(report["png"]) == planned.root / "reports" / "coverage.png"

    code, out, _ = run(capsys, "report", "-a", str(planned.root))
    assert code == 0
    assert "budget 404.0 kB: 2 of 4 recordings kept in 202.0 kB, 90.0 % of listens" in out
    assert "the top 1 recordings (25.0 %) hold 60.0 % of listens" in out
    assert "the top 2 recordings (50.0 %) hold 90.0 % of listens" in out


def test_plan_text_summary(planned: ArchivePaths, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "plan", "-a", str(planned.root), "--budget", "none", "--tiers", "opus75")
    assert code == 0
    assert "planned 4 recordings: 0 original, 4 opus75, 0 skipped" in out
    assert "100.0 % of listens covered" in out
    assert "4 kept recordings have no audio yet" in out
    code, out, _ = run(capsys, "plan", "-a", str(planned.root), "--budget", "none", "--tiers", "opus75")
    assert "0 plan rows written, 0 tier changes" in out


@pytest.mark.parametrize("argv, message", [
    (("--budget", "4XB"), "error: budget: '4XB' is not a size"),
    (("--budget", "-1"), "error: budget: '-1' is not a size"),
    (("--budget", "abc"), "error: budget: 'abc' is not a size"),
    (("--tiers", "flac"), "error: tiers: unknown tier 'flac'"),
])
def test_plan_refuses_bad_input(planned: ArchivePaths, capsys: pytest.CaptureFixture,
                                argv: tuple[str, ...], message: str) -> None:
    code, out, err = run(capsys, "plan", "-a", str(planned.root), *argv)
    assert code == 1 and out == ""
    assert message in err
    with open_catalog(planned.catalog) as cat:
        assert cat.scalar("SELECT count(*) FROM plan_run") == 0


def test_report_before_any_plan(archive: ArchivePaths, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(capsys, "report", "-a", str(archive.root))
    assert code == 1 and "no plan yet: run `soundark plan` first" in err


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_report_files(planned: ArchivePaths, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    run(capsys, "plan", "-a", str(planned.root), "--budget", "250kB")
    report = run_report(planned, Settings(), tmp_path / "out")
    assert report.png == tmp_path / "out" / "coverage.png"
    assert _png_size(report.png.read_bytes()) == (1200, 520)
    page = report.html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "</svg>" in page
    for external in ("<script", "<link", 'src="http', "href=\"http", "@import"):
        assert external not in page  # standalone: opens from a USB stick, offline
    assert "budget 250.0 kB" in page and "What a budget buys" in page
    assert "<td>opus75</td><td>2</td><td>202.0 kB</td><td>90.0 %</td>" in page
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_report_renders_without_budget_and_without_listens() -> None:
    figures = {
        "recordings": 3, "kept": 3, "keepable": 3, "budget": None, "bytes": 30, "bytes_cheapest_all": 30,
        "listens_total": 0.0, "listens_covered": 0.0, "share_covered": 0.0,
        "tiers": {"original": {"recordings": 0, "bytes": 0, "listens": 0.0},
                  "opus75": {"recordings": 3, "bytes": 30, "listens": 0.0},
                  "skip": {"recordings": 0, "bytes": 0, "listens": 0.0}},
        "top": [{"recordings": 1, "share_of_recordings": 1 / 3, "share": 0.0}],
        "curve_bytes": {"recordings": [1, 2, 3], "bytes": [10, 20, 30], "share": [0.0, 0.0, 0.0]},
        "curve_recordings": {"recordings": [1, 2, 3], "share": [0.0, 0.0, 0.0]},
    }
    text = render_text(figures)
    assert "no budget: 3 of 3 recordings kept in 30 B" in text
    assert "no listen data: every recording weighs the same" in text and "% of listens" not in text
    assert coverage_svg(figures).startswith("<svg")
    # the headline: above the stand-alone PNG's charts, but said once on the HTML page (its own text)
    assert build_figure(figures)._suptitle is not None and build_figure(figures, titled=False)._suptitle is None


def test_docs_name_every_option() -> None:
    import typer.main

    from soundark.cli import app

    docs = DOCS.read_text(encoding="utf-8")
    commands = {c.name: c for c in typer.main.get_command(app).commands.values()}
    for name in ("plan", "report"):
        assert f"soundark {name}" in docs
        for param in commands[name].params:
            for opt in param.opts:
                assert opt in docs, f"{name} {opt} is not documented in docs/plan.md"


def test_report_of_an_empty_catalog(archive: ArchivePaths, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "plan", "-a", str(archive.root), "--budget", "1TB")
    assert code == 0 and "planned 0 recordings" in out
    code, out, _ = run(capsys, "report", "-a", str(archive.root))
    assert code == 0 and "budget 1.0 TB: 0 of 0 recordings kept in 0 B, 0.0 of 0.0 hours" in out
    assert _png_size((archive.root / "reports" / "coverage.png").read_bytes()) == (1200, 520)


def test_report_html_escapes_text_but_not_its_chart(planned: ArchivePaths, capsys: pytest.CaptureFixture) -> None:
    """coverage.html comes from a Jinja2 template with autoescape: figures are text, the SVG is markup."""
    from soundark.plan.report import render_html
    from soundark.plan.stage import coverage_figures

    run(capsys, "plan", "-a", str(planned.root), "--budget", "250kB")
    with open_catalog(planned.catalog, readonly=True) as cat:
        figures = coverage_figures(cat)
    figures = {**figures, "planned_at": "<b>&now</b>", "tiers_allowed": ['opus75', '"x"<y>']}
    page = render_html(figures)
    assert "of &lt;b&gt;&amp;now&lt;/b&gt;; tiers allowed: opus75, &#34;x&#34;&lt;y&gt;. Made by" in page
    assert "<b>" not in page and page.count("<svg") == 1 and "&lt;svg" not in page
    rows = [line for line in page.splitlines() if line.startswith("<tr><td>")]
    assert len(rows) == len(figures["tiers"]) + len(figures["top"])  # one line per table row
    assert page.endswith("</body></html>\n")
