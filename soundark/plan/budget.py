"""The plan's inputs as a person writes them: a byte budget and a list of tiers.

Sizes follow SI for ``kB``/``MB``/``GB``/``TB``/``PB`` (1 TB = 10^12 bytes) and
IEC for ``KiB``..``PiB`` (1 TiB = 2^40 bytes); the parser is
:func:`soundark.units.parse_bytes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from soundark.config import Settings
from soundark.errors import BadInput
from soundark.model import TIERS
from soundark.units import parse_bytes

PLANNABLE_TIERS = tuple(t for t in TIERS if t != "skip")
_NO_BUDGET = {"", "none", "unlimited", "all"}


def parse_budget(text: str | int | None) -> int | None:
    """Bytes, or None for "no budget" (empty, ``none``, ``unlimited``)."""
    if text is None or (isinstance(text, str) and text.strip().lower() in _NO_BUDGET):
        return None
    return parse_bytes(text, "budget")


def parse_tiers(tiers: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The tiers the plan may choose, checked; ``skip`` is always possible and may be omitted."""
    if isinstance(tiers, str):
        tiers = [t for t in tiers.split(",")]
    names = [t.strip().lower() for t in tiers if t.strip()]
    unknown = [t for t in names if t not in TIERS]
    if unknown:
        raise BadInput("tiers", f"unknown tier {unknown[0]!r}; choose from {', '.join(PLANNABLE_TIERS)}")
    chosen = tuple(t for t in PLANNABLE_TIERS if t in names)
    if not chosen:
        raise BadInput("tiers", f"no tier to keep anything in; choose from {', '.join(PLANNABLE_TIERS)}")
    return chosen


@dataclass(frozen=True)
class PlanSettings:
    """The settings the plan uses, checked once."""

    budget: int | None
    tiers: tuple[str, ...]
    original_max_bitrate: int
    opus_bitrate: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "PlanSettings":
        if settings.opus_bitrate <= 0:
            raise BadInput("opus_bitrate", f"{settings.opus_bitrate} is not a bit rate")
        if settings.original_max_bitrate < 0:
            raise BadInput("original_max_bitrate", f"{settings.original_max_bitrate} is negative")
        return cls(budget=parse_budget(settings.budget), tiers=parse_tiers(settings.tiers),
                   original_max_bitrate=settings.original_max_bitrate,
                   opus_bitrate=settings.opus_bitrate)
