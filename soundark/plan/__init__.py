"""soundark.plan stage: choose a tier for every recording under a byte budget, and report coverage.

Entry functions (imported lazily: the report pulls in matplotlib):
``run_plan(paths, settings, progress) -> PlanResult``,
``run_report(paths, settings, out_dir=None) -> CoverageReport`` and
``coverage_figures(catalog) -> dict`` (the figures, for the web page).
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "run_plan": "soundark.plan.stage",
    "plan_catalog": "soundark.plan.stage",
    "coverage_figures": "soundark.plan.stage",
    "PlanResult": "soundark.plan.stage",
    "run_report": "soundark.plan.report",
    "CoverageReport": "soundark.plan.report",
    "coverage_svg": "soundark.plan.report",
    "render_text": "soundark.plan.report",
    "parse_budget": "soundark.plan.budget",
    "parse_tiers": "soundark.plan.budget",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'soundark.plan' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
