"""Repair bags without any peer: from their parity sidecar (docs/parity.md), then verify again.

For each bag at the path (as :func:`soundark.preserve.verify.find_bags` finds them):
verify; a missing file whose bytes turn up under another name in the bag (same SHA-256) is
moved back; everything else missing, truncated or altered is rebuilt from
``<bag>.parity/`` when the damage is within the parity's reach; then the bag is verified again.
Extra files are never deleted: they are named and left for the operator.

A bag inside an archive (its ``releases/`` folder, found by walking up to the folder with
the store and catalog) shares its audio with the store by hard links: a rebuilt bag file
is a new file, so the store copies of every file restored are re-linked to it, whether
the repair was asked of the archive or of that one release; and a bag file whose store
copy is intact is linked back to that copy first, with no parity needed. On a whole archive, store
files damaged apart from any bag repair are then re-linked to an intact release copy with
the same SHA-256 (:mod:`soundark.preserve.store`).

Paths in a :class:`BagRepair` are relative to its ``folder`` (the bag, or the archive for
the store entry), which is absolute, so a front end can show them from wherever it runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from soundark.durable import replace_durably
from soundark.errors import NotFound, SoundarkError
from soundark.fixity.bagit import read_manifest
from soundark.fixity.digest import sha256_file
from soundark.fixity.parity import INDEX as PARITY_INDEX
from soundark.fixity.parity_repair import repair_bag
from soundark.fixity.paths import resolve_inside
from soundark.fixity.releases import parity_dir, parity_name
from soundark.model import NO_PROGRESS, Progress
from soundark.preserve.store import FOLDERS as STORE_FOLDERS
from soundark.preserve.store import archive_holding, is_archive, link_from_store, relink_copies, restore_store
from soundark.preserve.verify import VerifyReport, find_bags, verify_path


@dataclass
class BagRepair:
    bag: str
    parity: str | None
    folder: str = ""   # absolute; renamed_back, repaired, unrecoverable, extras_left are relative to it
    archive: str | None = None  # absolute; relinked is relative to it
    problems_before: int = 0
    renamed_back: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    relinked: list[str] = field(default_factory=list)  # store copies linked to restored files again
    from_store: list[str] = field(default_factory=list)  # bag files linked back to an intact store copy
    unrecoverable: dict[str, str] = field(default_factory=dict)
    extras_left: list[str] = field(default_factory=list)
    ok_after: bool = False

    @property
    def restored(self) -> int:
        return len(self.repaired) + len(self.renamed_back) + len(self.relinked) + len(self.from_store)

    def lines(self) -> list[tuple[str, Path, str]]:
        """(what, absolute path, why) for every file named: restored ones, then the rest."""
        bag, archive = Path(self.folder), Path(self.archive or self.folder)
        out = [("renamed back", bag / r, "") for r in self.renamed_back]
        out += [("restored", bag / r, "") for r in self.repaired]
        out += [("from store", bag / r, "") for r in self.from_store]
        out += [("re-linked", archive / r, "") for r in self.relinked]
        out += [("CANNOT", bag / r, why) for r, why in self.unrecoverable.items()]
        out += [("extra (left)", bag / r, "") for r in self.extras_left]
        return [(what, Path(os.path.normpath(path)), why) for what, path, why in out]

    def as_dict(self) -> dict:
        return {"bag": self.bag, "parity": self.parity, "folder": self.folder, "archive": self.archive,
                "problems_before": self.problems_before, "renamed_back": self.renamed_back,
                "repaired": self.repaired, "relinked": self.relinked, "from_store": self.from_store,
                "unrecoverable": [{"path": p, "reason": r} for p, r in self.unrecoverable.items()],
                "extras_left": self.extras_left, "ok_after": self.ok_after}


@dataclass
class RepairReport:
    target: str
    bags: list[BagRepair] = field(default_factory=list)
    after: VerifyReport | None = None

    @property
    def ok(self) -> bool:
        """Every listed file is intact again (extra files may remain; they are named)."""
        return all(not b.unrecoverable and b.ok_after for b in self.bags)

    def as_dict(self) -> dict:
        return {"target": self.target, "ok": self.ok,
                "repaired": sum(b.restored for b in self.bags),
                "unrecoverable": sum(len(b.unrecoverable) for b in self.bags),
                "bags": [b.as_dict() for b in self.bags if b.problems_before],
                "after": self.after.as_dict() if self.after else None}


def find_parity(bag: Path) -> Path | None:
    """``<bag>.parity`` beside the bag (the archive layout), if it holds a parity index."""
    candidate = parity_dir(bag)
    return candidate if (candidate / PARITY_INDEX).is_file() else None


def repair_path(path: Path, progress: Progress = NO_PROGRESS) -> RepairReport:
    """Repair every bag at ``path`` from parity, then verify; see the module docstring."""
    path = Path(path)
    bags = find_bags(path)
    if not bags:
        raise NotFound(path, "no BagIt bag here (a folder with bagit.txt), nor in releases/")
    report = RepairReport(str(path))
    for bag in bags:
        root = archive_holding(bag)
        result = _repair_one(bag, root, progress)
        if root is not None:
            _heal_store(result, bag, root)
        report.bags.append(result)
    if is_archive(path):
        report.bags.append(_repair_store(path, bags, progress))
    report.after = verify_path(path, progress=progress)
    return report


def _repair_store(root: Path, bags: list[Path], progress: Progress) -> BagRepair:
    """Store files damaged with (or apart from) their hard-linked bag copies: re-link intact copies."""
    check = verify_path(root, progress=progress)
    damaged = [p.path for p in check.problems if p.path.split("/", 1)[0] in STORE_FOLDERS]
    result = BagRepair("store", None, str(root.absolute()), str(root.absolute()), len(damaged))
    result.repaired, result.unrecoverable = restore_store(root, bags, damaged)
    result.ok_after = not result.unrecoverable
    return result


def _heal_store(result: BagRepair, bag: Path, root: Path) -> None:
    """Re-link the archive's store copies of the files this bag's repair restored."""
    result.archive = str(root)
    if not result.repaired:
        return
    restored = [rel for rel in result.repaired if rel not in result.unrecoverable]
    result.relinked, failed = relink_copies(root, bag, restored)
    for rel, why in failed.items():  # kept relative to the bag folder like the other paths
        result.unrecoverable[os.path.relpath(root / rel, bag)] = why
    result.ok_after = result.ok_after and not failed


def _repair_one(bag: Path, root: Path | None, progress: Progress) -> BagRepair:
    before = verify_path(bag, progress=progress)
    result = BagRepair(bag.name, None, str(bag.absolute()), None, len(before.problems))
    result.extras_left = [p.path for p in before.problems if p.kind == "extra"]
    damaged = [p for p in before.problems if p.kind in ("missing", "truncated", "altered")]
    if not damaged:
        result.ok_after = not [p for p in before.problems if p.kind != "extra"]
        _refused(before, result)
        return result
    _rename_back(bag, before, result)
    parity = find_parity(bag)
    result.parity = str(parity) if parity else None
    suspects = {p.path for p in damaged if p.path not in result.renamed_back}
    if root is not None and suspects:  # an intact store copy is the cheapest source
        result.from_store = link_from_store(root, bag, sorted(suspects))
        suspects -= set(result.from_store)
    if suspects and parity is None:
        for rel in sorted(suspects):
            result.unrecoverable[rel] = f"no parity ({parity_name(bag.name)}) beside the bag; fetch it from a peer"
    elif suspects:
        try:
            fixed = repair_bag(bag, parity, suspects, progress)
        except SoundarkError as e:
            for rel in sorted(suspects):
                result.unrecoverable[rel] = f"parity unusable: {e}"
        else:
            result.repaired = fixed.repaired
            result.unrecoverable.update(fixed.unrecoverable)
    after = verify_path(bag, progress=progress)
    result.extras_left = [p.path for p in after.problems if p.kind == "extra"]
    remaining = [p for p in after.problems if p.kind != "extra"]
    for p in remaining:
        result.unrecoverable.setdefault(p.path, f"still {p.kind} after repair: {p.detail}")
    result.ok_after = not remaining
    return result


def _refused(report: VerifyReport, result: BagRepair) -> None:
    for p in report.problems:
        if p.kind == "refused":
            result.unrecoverable[p.path] = p.detail


def _rename_back(bag: Path, before: VerifyReport, result: BagRepair) -> None:
    """A missing file found under another name (verify says 'renamed to X?'): move it back."""
    try:
        manifest = read_manifest(bag)
    except SoundarkError:
        return
    for p in before.problems:
        if p.kind != "missing" or not p.detail.startswith("renamed to "):
            continue
        new = p.detail[len("renamed to "):].rstrip("?")
        try:
            src, dst = resolve_inside(bag, new), resolve_inside(bag, p.path)
            if sha256_file(src, regular_only=True)[0] != manifest.get(p.path):
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            replace_durably(src, dst)
        except (OSError, SoundarkError):
            continue
        result.renamed_back.append(p.path)
