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


POLICIES = ("value", "popular-originals")


def parse_share(text: str | float | int, name: str = "original_top") -> float:
    """A share of 0..1, written ``50%``, ``50 %`` or ``0.5``."""
    raw = text.strip() if isinstance(text, str) else text
    try:
        value = float(raw[:-1]) / 100 if isinstance(raw, str) and raw.endswith("%") else float(raw)
    except ValueError:
        raise BadInput(name, f"{text!r} is not a share; write 50% or 0.5") from None
    if not 0.0 <= value <= 1.0:
        raise BadInput(name, f"{text!r} is outside 0..100 %")
    return value


def parse_policy(text: str) -> str:
    policy = text.strip().lower()
    if policy not in POLICIES:
        raise BadInput("plan_policy", f"unknown policy {text!r}; choose from {', '.join(POLICIES)}")
    return policy


@dataclass(frozen=True)
class PlanSettings:
    """The settings the plan uses, checked once."""

    budget: int | None
    tiers: tuple[str, ...]
    original_max_bitrate: int
    opus_bitrate: int
    opus_value: float = 0.9
    policy: str = "value"
    original_top: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings) -> PlanSettings:
        if settings.opus_bitrate <= 0:
            raise BadInput("opus_bitrate", f"{settings.opus_bitrate} is not a bit rate")
        if settings.original_max_bitrate < 0:
            raise BadInput("original_max_bitrate", f"{settings.original_max_bitrate} is negative")
        if not 0.0 < settings.opus_listen_value <= 1.0:
            raise BadInput("opus_listen_value", f"{settings.opus_listen_value} is outside (0, 1]: "
                                                "a listen kept as opus75 is worth some, at most all, of the original")
        return cls(budget=parse_budget(settings.budget), tiers=parse_tiers(settings.tiers),
                   original_max_bitrate=settings.original_max_bitrate,
                   opus_bitrate=settings.opus_bitrate, opus_value=settings.opus_listen_value,
                   policy=parse_policy(settings.plan_policy),
                   original_top=parse_share(settings.original_top))
