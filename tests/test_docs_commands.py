"""Every command of the CLI is documented, and the README's commands work in a fresh shell.

A command counts as documented when README.md or a page of docs/ names it as
``soundark <words>`` (the Typer app is walked, so a new command fails here until it is written up).
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

from soundark.cli import app

ROOT = Path(__file__).resolve().parent.parent


def commands(group=None, words=()):
    group = group or typer.main.get_command(app)
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from commands(cmd, (*words, name))
        else:
            yield (*words, name)


def documentation() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def test_every_command_is_documented():
    text = re.sub(r"[ \t]+", " ", documentation())
    missing = [" ".join(w) for w in sorted(commands())
               if not re.search(rf"soundark {re.escape(' '.join(w))}\b", text)]
    assert missing == [], f"commands named nowhere in README.md or docs/*.md: {missing}"


def test_the_walk_sees_groups_and_leaves():
    found = set(commands())
    assert {("serve",), ("release", "audio"), ("import", "listens"), ("catalog", "diff")} <= found


def test_readme_says_how_to_run_soundark_in_a_fresh_shell():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    top = readme.split("## A five-minute tour")[0]
    # the two commands stay exactly as they were: they work in a fresh shell as printed
    assert "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/soundark demo" in top
    assert "./scripts/test" in top
    assert ". .venv/bin/activate" in top  # the tour's bare `soundark ...` then works too
