"""The command line's faces: one error boundary, --json, python -m soundark, init."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soundark", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_python_dash_m_and_version():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("soundark ")
    assert "init" in run("--help").stdout


def test_init_creates_an_archive_and_keeps_existing_settings(tmp_path):
    r = run("init", str(tmp_path / "a"), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["settings_created"] is True
    assert (tmp_path / "a" / "catalog.sqlite3").exists()
    settings = tmp_path / "a" / "soundark.toml"
    settings.write_text(settings.read_text().replace('budget = ""', 'budget = "4TB"'))
    info = json.loads(run("init", str(tmp_path / "a"), "--json").stdout)
    assert info["settings_created"] is False
    assert 'budget = "4TB"' in settings.read_text()


def test_errors_are_one_line_with_exit_1(tmp_path):
    r = run("stats", "-a", str(tmp_path / "missing"))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing'}: not a soundark archive (no catalog.sqlite3): run `soundark init` first"]
    assert "Traceback" not in r.stderr


def test_debug_shows_the_traceback(tmp_path):
    r = run("--debug", "stats", "-a", str(tmp_path / "missing"))
    assert r.returncode == 1
    assert "Traceback" in r.stderr and r.stderr.strip().endswith("first")


def test_a_bad_settings_file_is_named(tmp_path):
    assert run("init", str(tmp_path)).returncode == 0
    (tmp_path / "soundark.toml").write_text("no_such = 1\n")
    r = run("scan", str(tmp_path), "-a", str(tmp_path))
    assert r.returncode == 1
    assert "soundark.toml: unknown setting 'no_such'" in r.stderr


def test_usage_errors_keep_click_messages(tmp_path):
    r = run("search")
    assert r.returncode == 2
    assert "Missing argument" in r.stderr


def test_bad_query_is_a_clear_message(tmp_path):
    run("init", str(tmp_path))
    r = run("search", "x" * 10_000, "-a", str(tmp_path))
    assert r.returncode == 1
    assert r.stderr.startswith("error: query: too long")


@pytest.mark.parametrize("command", [["stats"], ["search", "anything"]])
def test_json_output_is_one_object(tmp_path, command):
    run("init", str(tmp_path))
    r = run(*command, "-a", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    assert isinstance(json.loads(lines[0]), dict)
