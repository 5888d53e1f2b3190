"""Checks that keep issue 12's rules: no runtime asserts, no bare catch-alls in the faces' SQL paths."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "soundark"


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(PACKAGE.rglob("*.py"))]


def test_no_runtime_asserts() -> None:
    """`python -O` drops asserts: a check that matters must be an error a user can read."""
    found = [f"{p.relative_to(PACKAGE.parent)}:{n.lineno}" for p, tree in _modules()
             for n in ast.walk(tree) if isinstance(n, ast.Assert)]
    assert found == []


def test_sqlite_errors_are_caught_only_inside_the_catalog() -> None:
    """Outside soundark/catalog nobody names sqlite3 errors: the connection converts them."""
    found = [f"{p.relative_to(PACKAGE.parent)}:{n.lineno}" for p, tree in _modules()
             if "catalog" not in p.relative_to(PACKAGE).parts[:1]
             for n in ast.walk(tree)
             if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "sqlite3"]
    assert found == []
