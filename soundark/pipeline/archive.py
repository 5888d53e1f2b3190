"""`soundark archive`: scan -> plan -> encode -> release over one archive."""

from __future__ import annotations

from pathlib import Path

from soundark.pipeline import (
    StepFn,
    catalog_step,
    encode_step,
    list_step,
    listens_step,
    plan_step,
    release_steps,
    scan_step,
)


def archive_steps(source: Path, catalog_file: Path | None, listens_file: Path | None) -> list[StepFn]:
    steps: list[StepFn] = []
    if catalog_file is not None:
        steps.append(catalog_step(catalog_file))
    steps.append(scan_step(source))
    if listens_file is not None:
        steps.append(listens_step(listens_file))
    steps += [plan_step(), encode_step(), *release_steps(), list_step()]
    return steps
