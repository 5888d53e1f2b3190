"""Choose the releases a mirror with a given amount of space should hold.

Input: a release list (``releases/torrents.json``, format ``soundark-torrents/1``) and,
optionally, how many peers seed each release. A release's **listens at risk** is
``listens_share / (1 + seeders)``: a release nobody seeds loses its whole share if the last
copy goes; one with nine seeders is ten times safer. The plan takes every ``metadata``
release first (small, and nothing can be found without them), then audio releases greedily by
listens at risk per byte, then the parity release of each chosen audio release, then ``art``,
while they fit. The greedy choice is compared with the best single release that fits (the
classic guard that keeps greedy knapsack within half of the optimum).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundark import jsontext
from soundark.errors import BadInput
from soundark.fixity.releases import read_release_list


@dataclass(frozen=True)
class Candidate:
    name: str
    phase: str
    bytes: int
    listens_share: float
    seeders: int
    magnet: str
    infohash_v1: str
    parity_for: str | None

    @property
    def at_risk(self) -> float:
        return self.listens_share / (1 + self.seeders)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "phase": self.phase, "bytes": self.bytes,
                "listens_share": self.listens_share, "seeders": self.seeders,
                "at_risk": self.at_risk, "magnet": self.magnet, "infohash_v1": self.infohash_v1}


@dataclass
class MirrorPlan:
    budget: int
    chosen: list[Candidate] = field(default_factory=list)
    left_out: int = 0

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.chosen)

    def as_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "bytes": self.bytes, "releases": len(self.chosen),
                "left_out": self.left_out,
                "listens_share": sum(c.listens_share for c in self.chosen),
                "at_risk_covered": sum(c.at_risk for c in self.chosen),
                "chosen": [c.as_dict() for c in self.chosen]}

    def magnets(self) -> str:
        return "".join(f"{c.magnet}\n" for c in self.chosen if c.magnet)


def load_releases(path: Path) -> list[dict[str, Any]]:
    """The rows of a release list (soundark.fixity.releases reads it)."""
    return read_release_list(path)


def load_seeders(path: Path) -> dict[str, int]:
    """Seeder counts by release name or v1 infohash: a JSON object, or lines ``key,count``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(path, f"cannot read: {e}") from e
    pairs: list[tuple[Any, Any]]
    if text.lstrip().startswith("{"):
        try:
            pairs = list(jsontext.loads(text).items())  # type: ignore[union-attr]  # '{' starts an object
        except BadInput as e:
            raise BadInput(path, f"not valid JSON: {e}") from e
    else:
        rows = [r for r in csv.reader(io.StringIO(text.replace("\t", ",").replace(" ", ","))) if r]
        pairs = [(r[0], r[-1]) for r in rows if not r[0].startswith("#")]
        if pairs and not str(pairs[0][1]).strip().lstrip("-").isdigit():
            pairs = pairs[1:]  # a header line
    out = {}
    for key, value in pairs:
        try:  # a JSON float (3.5, Infinity) is not a count: int() would cut it or overflow
            if isinstance(value, (bool, float)):
                raise TypeError(value)
            count = int(value)
        except (TypeError, ValueError, OverflowError) as e:
            raise BadInput(path, f"seeders of {key!r} is not a whole number: {value!r}") from e
        if count < 0:
            raise BadInput(path, f"seeders of {key!r} is negative")
        out[str(key).strip().lower() if len(str(key).strip()) == 40 else str(key).strip()] = count
    return out


def candidates(releases: list[dict[str, Any]], seeders: dict[str, int]) -> list[Candidate]:
    out = []
    for n, r in enumerate(releases):
        if not isinstance(r, dict) or not isinstance(r.get("name"), str):
            raise BadInput(f"releases[{n}]", "needs a name")
        size = r.get("bytes")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise BadInput(r["name"], f"bytes {size!r} is not a size")
        ih = str(r.get("infohash_v1") or "").lower()
        count = seeders.get(r["name"], seeders.get(ih, 0))
        share = r.get("listens_share") or 0.0
        out.append(Candidate(r["name"], str(r.get("phase") or "audio"), size, float(share), count,
                             str(r.get("magnet") or ""), ih, r.get("parity_for")))
    return out


def plan_mirror(releases: list[dict[str, Any]], budget: int, seeders: dict[str, int] | None = None) -> MirrorPlan:
    """The releases to hold within ``budget`` bytes (see the module docstring)."""
    cands = candidates(releases, seeders or {})
    plan = MirrorPlan(budget)
    left = budget

    def take(c: Candidate) -> None:
        nonlocal left
        if c.bytes <= left and c not in plan.chosen:
            plan.chosen.append(c)
            left -= c.bytes

    for c in cands:
        if c.phase == "metadata":
            take(c)
    audio = [c for c in cands if c.phase == "audio"]
    # at risk per byte; ties: more at risk first, then name (a stable, explainable order)
    audio.sort(key=lambda c: (-(c.at_risk / max(c.bytes, 1)), -c.at_risk, c.name))
    greedy = [c for c in audio if c.bytes <= budget]
    base = list(plan.chosen)
    for c in greedy:
        take(c)
    chosen_audio = [c for c in plan.chosen if c.phase == "audio"]
    best_single = max((c for c in greedy if c.bytes <= budget - sum(b.bytes for b in base)),
                      key=lambda c: c.at_risk, default=None)
    if best_single is not None and best_single.at_risk > sum(c.at_risk for c in chosen_audio):
        plan.chosen = base + [best_single]
        left = budget - sum(c.bytes for c in plan.chosen)
    held = {c.name for c in plan.chosen}
    for c in cands:
        if c.phase == "parity" and c.parity_for in held:
            take(c)
    for c in cands:
        if c.phase == "art":
            take(c)
    plan.left_out = len(cands) - len(plan.chosen)
    return plan
