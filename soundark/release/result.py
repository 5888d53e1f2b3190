"""What one run of a release phase did (:class:`ReleaseResult`) and the bag-info.txt every phase writes.

Kept apart from stage.py so the phase modules (metadata.py, art.py) that fill a result need not
import the stage that calls them (no import cycle; see the acyclic_siblings contract).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from soundark.release.publish import Context, Published

MAX_KEPT_ERRORS = 1000


@dataclass
class ReleaseResult:
    """What one run of a phase did: releases published, items held back and why, errors."""

    phase: str
    date: str
    releases_dir: str
    published: list[Published] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # releases that already hold this content
    held_back: dict[str, int] = field(default_factory=dict)  # reason -> count
    waiting: int = 0  # recordings left for a later run (--full-only: not enough for a full release)
    errors: list[dict[str, str]] = field(default_factory=list)

    def hold(self, reason: str, n: int = 1) -> None:
        self.held_back[reason] = self.held_back.get(reason, 0) + n

    def error(self, subject: object, reason: str) -> None:
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append({"subject": str(subject), "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase, "date": self.date, "releases_dir": self.releases_dir,
            "published": [p.as_dict() for p in self.published],
            "unchanged": self.unchanged,
            "held_back": dict(sorted(self.held_back.items())),
            "held_back_total": sum(self.held_back.values()),
            "waiting": self.waiting, "errors": self.errors,
        }


def bag_info(ctx: Context, name: str, description: str) -> dict[str, str]:
    """bag-info.txt fields (RFC 8493 §2.2.2), in this order; Payload-Oxum is added by fixity."""
    info: dict[str, str] = {}
    if ctx.settings.organisation:
        info["Source-Organization"] = ctx.settings.organisation
    if ctx.settings.contact:
        info["Contact-Email"] = ctx.settings.contact
    info["External-Identifier"] = name
    info["External-Description"] = description
    info["Bagging-Date"] = ctx.date
    info["Bag-Group-Identifier"] = ctx.prefix
    info["Bag-Software-Agent"] = "soundark"
    return info
