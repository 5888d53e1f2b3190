"""End to end in headless Chromium (Debian's chromium, driven by Playwright): search, open, play,
seek, coverage, releases, the home/album/artist pages at a desktop and a phone size, the play queue,
keyboard-only use, and axe-core's accessibility rules on every page. Also `soundark serve` as a real
process.

The server is real uvicorn on 127.0.0.1 with a free port; Chromium is told to make no
other connection. Screenshots go to the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import uvicorn

from soundark.web.app import create_app

from helpers.web import (  # the same real archive as test_web_api
    ISRC,
    add_album_tracks,
    free_port,
    make_web_archive,
    wait_for,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio"]

pytestmark = pytest.mark.slow


def poll(page, script: str, seconds: float = 15.0) -> None:
    """Wait until *script* is true in the page. (page.wait_for_function evaluates a string,
    which the app's Content-Security-Policy rightly forbids; page.evaluate is not affected.)"""
    deadline = time.monotonic() + seconds
    while not page.evaluate(script):
        if time.monotonic() > deadline:
            raise TimeoutError(f"never true: {script}")
        page.wait_for_timeout(50)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    web = make_web_archive(tmp_path_factory.mktemp("browser") / "archive", seconds=8.0)
    add_album_tracks(web)  # an album of three tracks, two of them playable: the queue
    port = free_port()
    config = uvicorn.Config(create_app(web.paths.root), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_for(base + "/api/stats")
    yield web, base
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser(require_tool):
    if not os.path.exists(CHROMIUM):
        require_tool("chromium")  # skips here, fails under CI
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, server, tmp_path):
    _, base = server
    context = browser.new_context(base_url=base, viewport={"width": 390, "height": 844})  # a phone
    # nothing but the server under test: any other request is refused before it leaves
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                  else route.abort())
    pg = context.new_page()
    yield pg
    context.close()


def test_search_open_play_and_seek(page, server, tmp_path):
    web, _ = server
    page.goto("/")
    page.fill("input[name=q]", "morning tide")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("li.result")
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)
    assert "Morning Tide" in page.inner_text("ol.results")
    page.click(f'a[href="/recording/{ISRC}"]')
    page.wait_for_selector("audio#player")
    page.screenshot(path=str(tmp_path / "recording.png"), full_page=True)

    page.eval_on_selector("audio#player", "a => a.play()")
    poll(page, "document.querySelector('audio#player').currentTime > 0.5")
    duration = page.eval_on_selector("audio#player", "a => a.duration")
    assert 7.0 < duration < 9.0
    # seeking needs range requests: jump near the end and play on from there
    page.eval_on_selector("audio#player", "a => { a.currentTime = 6.0; }")
    poll(page, "document.querySelector('audio#player').currentTime > 6.2")
    assert page.eval_on_selector("audio#player", "a => a.error") is None
    assert page.eval_on_selector("audio#player", "a => a.seekable.length") >= 1
    assert (tmp_path / "recording.png").stat().st_size > 1000


def test_coverage_page_draws_the_curve(page, tmp_path):
    page.goto("/coverage")
    assert page.locator("table#tiers tbody tr").count() >= 2
    assert page.locator("svg polyline.curve").count() == 2
    page.screenshot(path=str(tmp_path / "coverage.png"), full_page=True)


def test_releases_page_magnet_link(page, server, tmp_path):
    web, _ = server
    page.goto("/releases")
    link = page.locator("a.magnet-link").first
    assert link.get_attribute("href") == web.magnet
    assert page.locator(".magnet input").first.input_value() == web.magnet
    page.locator("button.copy").first.click()  # shown only when app.js ran
    poll(page, "document.querySelector('button.copy').textContent === 'Copied'")
    href = page.locator("a.torrent").first.get_attribute("href")
    body = page.request.get(href).body()
    assert body == (web.paths.torrents / f"{web.torrent_name}.torrent").read_bytes()
    page.screenshot(path=str(tmp_path / "releases.png"), full_page=True)


PAGES = ("/", "/?q=harbour", "/albums", "/album/a1", "/artists", "/artist/n:tidewater", f"/recording/{ISRC}",
         "/coverage", "/releases", "/recording/nope")
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def serious_violations(page) -> list[str]:
    """axe-core (bundled by axe-playwright-python) on the page as shown: serious and critical rules."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in found if v["impact"] in ("serious", "critical")]


def test_every_page_passes_axe_at_both_sizes(page, tmp_path):
    problems = []
    for size, viewport in VIEWPORTS.items():
        page.set_viewport_size(viewport)
        for path in PAGES:
            page.goto(path)
            problems += [f"{path} {size}: {v}" for v in serious_violations(page)]
    assert problems == []


def test_home_and_album_pages_look_right_at_both_sizes(page, server, tmp_path):
    web, _ = server
    shots = []
    for size, viewport in VIEWPORTS.items():
        page.set_viewport_size(viewport)
        page.goto("/")
        assert "2 recordings preserved" in page.inner_text("#headline")
        assert page.locator("ul.albums img.thumb").count() == 1  # Harbour Lights' cover
        assert page.locator("#top button.play:visible").count() == 2
        shots.append(tmp_path / f"home-{size}.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        page.goto("/album/a1")
        assert page.eval_on_selector("img.cover", "i => i.naturalWidth") > 0  # the image really loaded
        titles = page.locator("#album-tracks .title").all_inner_texts()
        assert titles[:2] == ["Morning Tide", "Salt Wind"] and titles[2].startswith("Low Water")
        # the long title is clamped to two lines, not spilling the row
        line = page.eval_on_selector("#album-tracks li:nth-child(3) .title",
                                     "e => parseFloat(getComputedStyle(e).lineHeight)")
        height = page.eval_on_selector("#album-tracks li:nth-child(3) .title", "e => e.clientHeight")
        assert height <= 2 * line + 1
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        shots.append(tmp_path / f"album-{size}.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        page.goto("/artist/n:tidewater")
        shots.append(tmp_path / f"artist-{size}.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
    for shot in shots:
        assert shot.stat().st_size > 1000
        print(f"screenshot: {shot}")


def test_album_queue_plays_the_next_track(page, server):
    web, _ = server
    page.goto("/album/a1")
    page.click("button.play-all")
    poll(page, "document.querySelector('#queue-audio').currentTime > 0.3")
    assert "1 of 2: Morning Tide" in page.inner_text("#nowplaying-title")
    assert page.get_attribute("#album-tracks li:nth-child(1)", "aria-current") == "true"
    # near the end: when it ends the queue goes on to track 3 (Salt Wind is not preserved: passed over)
    page.eval_on_selector("#queue-audio", "a => { a.currentTime = a.duration - 0.3; }")
    poll(page, "document.querySelector('#nowplaying-title').textContent.includes('2 of 2')")
    poll(page, "document.querySelector('#queue-audio').currentTime > 0.3")
    assert page.get_attribute("#album-tracks li:nth-child(3)", "aria-current") == "true"
    assert page.get_attribute("#album-tracks li:nth-child(1)", "aria-current") is None
    assert page.is_disabled("#queue-next")


def test_keyboard_only_search_and_player(page, server):
    page.goto("/")

    def tab_to(script: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(f"(() => {{ const e = document.activeElement; return {script}; }})()"):
                return
        raise AssertionError(f"Tab never reached {script}")

    tab_to("e.id === 'q'")
    page.keyboard.type("harbour")
    page.keyboard.press("Enter")
    page.wait_for_selector("li.result")
    tab_to("e.classList.contains('play')")
    page.keyboard.press("Enter")
    poll(page, "document.querySelector('#queue-audio').currentTime > 0.3")
    tab_to("e.id === 'queue-next'", 80)
    page.keyboard.press("Enter")  # the next preserved result
    poll(page, "document.querySelector('#nowplaying-title').textContent.includes('2 of 2')")


def test_serve_command_serves_the_api(tmp_path):
    web = make_web_archive(tmp_path / "archive", with_releases=False, seconds=0.5)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "soundark", "serve", "-a", str(web.paths.root),
                             "--port", str(port), "--workers", "1", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/api/stats")
        assert httpx.get(f"http://127.0.0.1:{port}/api/stats").json()["recordings"] == 47
        spec = httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()
        assert "/api/search" in spec["paths"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    first = out.splitlines()[0]
    assert '"host": "127.0.0.1"' in first and f'"port": {port}' in first and '"public": false' in first


def test_serve_refuses_a_busy_port_with_one_line(tmp_path):
    web = make_web_archive(tmp_path / "archive", with_releases=False, seconds=0.5)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        serve = [sys.executable, "-m", "soundark", "serve", "-a", str(web.paths.root), "--port", str(port)]
        done = subprocess.run(serve, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"error: 127.0.0.1:{port}: cannot listen here" in done.stderr and "Traceback" not in done.stderr
