"""The rules the test suite keeps (issue 12): test modules never import each other, a missing
external tool goes through the one conftest rule (skip locally, fail under CI), and that rule works.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
pytest_plugins = ["pytester"]


def _modules() -> list[Path]:
    return sorted(TESTS.glob("*.py")) + sorted((TESTS / "helpers").glob("*.py"))


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_test_modules_never_import_each_other_or_conftest() -> None:
    local = {p.stem for p in TESTS.glob("*.py")}
    found = {f"{p.relative_to(TESTS)} imports {name}"
             for p in _modules() for name in _imported(ast.parse(p.read_text(encoding="utf-8")))
             if name.split(".")[0] in local}
    assert not found, "move shared code into tests/helpers/ or a conftest fixture: " + "; ".join(sorted(found))


def _which_calls(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "which"
               for n in ast.walk(node))


def test_no_test_skips_a_missing_tool_on_its_own() -> None:
    """``if shutil.which(...)`` or ``skipif(shutil.which(...) ...)`` drops a check silently in CI."""
    found = []
    for path in _modules():
        if path.name == "conftest.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            guarded = (isinstance(node, (ast.If, ast.IfExp)) and _which_calls(node.test)) or (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "skipif" and _which_calls(node))
            if guarded:
                found.append(f"{path.name}:{node.lineno}")
    assert not found, "use @pytest.mark.needs_tool / require_tool (tests/conftest.py): " + ", ".join(found)


MISSING_TOOL_TEST = """
import pytest

@pytest.mark.needs_tool("soundark-no-such-tool")
def test_marked():
    pass

def test_called(require_tool):
    require_tool("soundark-no-such-tool")
"""


@pytest.mark.parametrize("ci, skipped, errors, failed", [("", 2, 0, 0), ("0", 2, 0, 0), ("1", 0, 1, 1),
                                                         ("true", 0, 1, 1)])
def test_a_missing_tool_is_skipped_locally_and_fails_under_ci(pytester: pytest.Pytester, monkeypatch,
                                                              ci: str, skipped: int, errors: int,
                                                              failed: int) -> None:
    monkeypatch.setenv("CI", ci)
    pytester.makeconftest((TESTS / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(MISSING_TOOL_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", "-o", "markers=needs_tool")
    result.assert_outcomes(skipped=skipped, errors=errors, failed=failed)
    if ci not in ("", "0"):
        result.stdout.fnmatch_lines(["*soundark-no-such-tool is not installed*CI is set*"])


def test_a_present_tool_runs_the_test(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("CI", "1")
    pytester.makeconftest((TESTS / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile("""
import pytest

@pytest.mark.needs_tool("python3")
def test_marked(require_tool):
    assert require_tool("python3").endswith("python3")
""")
    pytester.runpytest("-p", "no:cacheprovider", "-o", "markers=needs_tool").assert_outcomes(passed=1)
