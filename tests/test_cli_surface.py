"""The CLI as a new user meets it (issue 14): one way to name the archive, output that fits
80 columns and stays whole in a pipe, help in plain words, each refusal said once."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from rich.console import Console

import soundark.cli.common as common
from soundark.cli import app
from soundark.cli.catalog_cmds import search_headline
from soundark.cli.helptext import plain_help

from helpers.fixity import make_release

TRACKERS = Path(__file__).parent / "data" / "trackers"
LONG = "A very long title that goes on well past the edge of any terminal, number "


def run(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "SOUNDARK_ARCHIVE")}
    return subprocess.run([sys.executable, "-m", "soundark", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env={**environ, **env})


def commands(group=None, words=()):
    """Every command's words, e.g. ('release', 'audio'), walking the click tree."""
    group = group or plain_help(typer.main.get_command(app))
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from commands(cmd, (*words, name))
        else:
            yield (*words, name)


ALL = sorted(commands())
PYTHON_TYPES = re.compile(r"<[a-z]|\b(list|tuple|dict|Optional)\[|\{|\}|\[x[<>=]|\b(int|float|str) range")


@pytest.mark.parametrize("words", ALL, ids=" ".join)
def test_help_names_values_in_plain_words(words):
    r = run(*words, "--help", COLUMNS="100")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"Usage: soundark {' '.join(words)}")
    found = [line for line in r.stdout.splitlines() if PYTHON_TYPES.search(line)]
    assert found == [], f"soundark {' '.join(words)} --help shows Python types or braces"


def test_every_command_is_walked():
    assert {("verify",), ("release", "list"), ("mirror", "plan"), ("import", "listens")} <= set(ALL)


@pytest.fixture
def catalogued(tmp_path: Path) -> Path:
    """An archive with 45 long-titled recordings (one ISRC each)."""
    root = tmp_path / "arc"
    assert run("init", "-a", str(root)).returncode == 0
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"title": f"{LONG}{i}", "artists": "An Artist With A Long Name",
                                        "album": "An Album Whose Name Is Long Too",
                                        "isrc": f"USABC24{i:05d}"}) + "\n" for i in range(45)))
    r = run("import", "catalog", str(rows), "-a", str(root))
    assert r.returncode == 0, r.stderr
    return root


def test_the_archive_comes_from_a_the_environment_or_the_current_folder(catalogued: Path, tmp_path):
    by_option = json.loads(run("stats", "-a", str(catalogued), "--json").stdout)
    assert json.loads(run("stats", "--json", SOUNDARK_ARCHIVE=str(catalogued)).stdout) == by_option
    assert json.loads(run("stats", "--json", cwd=catalogued).stdout) == by_option
    r = run("stats", "--json", cwd=tmp_path)
    assert r.returncode == 1 and "not a soundark archive" in r.stderr


def test_init_takes_a_folder_or_dash_a(tmp_path: Path):
    assert json.loads(run("init", "-a", str(tmp_path / "x"), "--json").stdout)["settings_created"]
    assert json.loads(run("init", str(tmp_path / "y"), "--json").stdout)["settings_created"]
    (tmp_path / "z").mkdir()
    info = json.loads(run("init", "--json", cwd=tmp_path / "z").stdout)
    assert info["archive"] == str(tmp_path / "z")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_before_or_after_the_subcommand(tmp_path: Path, where: str):
    args = ["--debug", "stats", "-a", str(tmp_path)] if where == "before" else ["stats", "-a", str(tmp_path),
                                                                                "--debug"]
    r = run(*args)
    assert r.returncode == 1 and "Traceback" in r.stderr


def test_search_says_how_many_and_how_to_page(catalogued: Path):
    r = run("search", "title", "-a", str(catalogued))
    assert r.stdout.splitlines()[0] == "45 matches, showing 1–20 (--offset 20 for more)"
    r = run("search", "title", "-a", str(catalogued), "--offset", "40")
    assert r.stdout.splitlines()[0] == "45 matches, showing 41–45"
    r = run("search", "USABC2400007", "-a", str(catalogued))  # an ISRC: one recording, counted once
    assert r.stdout.splitlines()[0] == "1 match"


def test_headline_of_a_lower_bound():
    assert search_headline(300, True, 0, 20) == "300+ matches, showing 1–20 (--offset 20 for more)"
    assert search_headline(3, False, 0, 3) == "3 matches"


def test_tables_fit_80_columns_and_keep_keys_whole(catalogued: Path):
    r = run("search", "title", "-a", str(catalogued), COLUMNS="80")
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "USABC2400000" in r.stdout and "…" in r.stdout  # the key whole, the title shortened
    r = run("stats", "-a", str(catalogued), COLUMNS="80")
    assert max(len(line) for line in r.stdout.splitlines()) <= 80


def test_piped_output_is_not_wrapped(catalogued: Path):
    r = run("search", "title", "-a", str(catalogued), "-n", "3")  # stdout is a pipe, COLUMNS unset
    assert f"{LONG}0 " in r.stdout and "…" not in r.stdout


def test_the_progress_bar_keeps_count_and_time_left_at_80_columns(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(common, "err", Console(file=buf, width=80, force_terminal=True, color_system=None))
    bar = common.BarProgress()
    with bar:
        bar.start(1_234_567, "encoding a long description", "files")
        bar.add_audio(3600 * 40)
        bar.bar.tasks[-1].start_time -= 100  # a hundred seconds in
        bar.advance(123_456, nbytes=10**10)
    last = [line for line in buf.getvalue().replace("\r", "\n").splitlines() if "123456/1234567" in line][-1]
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", last)
    assert len(text) <= 80 and "0:01:40" in text and re.search(r"[0-9-]:[0-9-]{2}:[0-9-]{2}$", text.rstrip()), text


@pytest.fixture
def bags(tmp_path: Path) -> Path:
    releases = tmp_path / "releases"
    make_release(releases, "rel-0001", parity=0.05)
    return releases


@pytest.mark.parametrize("command", ["verify", "repair"])
def test_verify_and_repair_dot_inside_a_bag_or_releases_folder(bags: Path, command: str):
    for cwd in (bags, bags / "rel-0001"):
        r = run(command, ".", "--json", cwd=cwd)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["ok"] is True
        r = run(command, cwd=cwd)  # PATH defaults to the current folder
        assert r.returncode == 0, r.stderr


def test_release_list_fits_and_shows_whole_infohashes_and_magnets(tmp_path: Path):
    root = tmp_path / "arc"
    assert run("init", "-a", str(root)).returncode == 0
    listing = {"format": "soundark-torrents/1", "releases": [
        {"name": f"soundark-audio-{i:04d}.parity", "phase": "parity", "infohash_v1": f"{i:040x}",
         "infohash_v2": None, "magnet": f"magnet:?xt=urn:btih:{i:040x}&dn=soundark-audio-{i:04d}.parity",
         "bytes": 123_456_789_012, "files": 99_999, "rank_first": 100_000, "rank_last": 199_999,
         "listens_share": 0.1234, "created": "2024-05-01T00:00:00Z"} for i in range(1, 4)]}
    (root / "releases" / "torrents.json").write_text(json.dumps(listing))
    r = run("release", "list", "-a", str(root), COLUMNS="80")
    assert r.returncode == 0, r.stderr
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    assert "soundark-audio-0001.parity" in r.stdout and f"{1:040x}" in r.stdout
    r = run("release", "list", "--magnets", "-a", str(root), COLUMNS="80")
    assert r.stdout.splitlines() == [rel["magnet"] for rel in listing["releases"]]


def test_mirror_plan_writes_a_magnets_file_only_when_asked(tmp_path: Path):
    listing = {"format": "soundark-torrents/1", "releases": [
        {"name": "a", "phase": "audio", "infohash_v1": "a" * 40, "magnet": "magnet:?xt=urn:btih:" + "a" * 40,
         "bytes": 100, "files": 1, "listens_share": 0.5}]}
    (tmp_path / "torrents.json").write_text(json.dumps(listing))
    r = run("mirror", "plan", "--budget", "1KB", "--torrents", str(tmp_path / "torrents.json"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "torrents.json"]
    assert "--magnets FILE" in r.stdout


def test_a_refused_file_is_named_once_with_its_reason(tmp_path: Path):
    root = tmp_path / "arc"
    assert run("init", "-a", str(root)).returncode == 0
    lib = tmp_path / "lib"
    shutil.copytree(TRACKERS, lib, ignore=shutil.ignore_patterns("*.md"))
    r = run("scan", str(lib), "-a", str(root))
    assert r.returncode == 0, r.stderr
    both = r.stdout + r.stderr
    for name in ("openmpt-test.mod", "openmpt-test.s3m", "openmpt-test.xm"):
        assert both.count(f"{lib / name}: unsupported format: tracker module") == 1, both
    assert "3 rejected (3 shown above)" in r.stdout
