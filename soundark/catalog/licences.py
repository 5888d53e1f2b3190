"""Does a file's own LICENSE/COPYRIGHT tag contradict the rights the operator gave the scan?

A licence is read as a family and, for Creative Commons, its elements (by, sa, nc, nd:
https://creativecommons.org/licenses/). docs/scan.md ("Licence tags") has the table;
in short, a tag conflicts with the rights given when publishing under those rights would
do something the tag forbids or skip a condition it sets:

- "all rights reserved" conflicts with every open licence given (CC, public domain, GPL);
- a CC tag conflicts when it carries an element the given CC licence lacks (nc or nd
  forbid what cc-by allows; sa and by set conditions public domain / cc-by do not);
- GPL conflicts with CC and public domain; LGPL with CC and public domain (LGPL code may
  become GPL, so LGPL under GPL is fine, GPL under LGPL is not);
- a public-domain/CC0 tag, a tag naming the same licence (versions are not compared) and a
  tag we cannot read never conflict. Rights ``owned*`` and ``unknown`` are never checked:
  the operator's claim of ownership stands, and unknown rights are never published anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CC_URL = re.compile(r"creativecommons\.org/licenses/([a-z-]+)")
_CC_SHORT = re.compile(r"\bcc[\s_-]*(by(?:[\s_-]*(?:nc|sa|nd))*)\b")
_CC_WORDS = {"attribution": "by", "noncommercial": "nc", "non-commercial": "nc", "sharealike": "sa",
             "share-alike": "sa", "noderivatives": "nd", "noderivs": "nd", "no-derivatives": "nd"}
_PUBLIC = re.compile(r"\bcc0\b|publicdomain/(?:zero|mark)|\bpublic[\s_-]*domain\b|\bunlicense\b")
_LGPL = re.compile(r"\blgpl|lesser general public")
_GPL = re.compile(r"\ba?gpl|general public licen[cs]e")
_RESERVED = re.compile(r"all\s+rights\s+reserved")


@dataclass(frozen=True)
class Terms:
    """A licence as far as conflicts go: family ('cc', 'pd', 'gpl', 'lgpl', 'arr') and CC elements."""

    family: str
    elements: frozenset[str] = frozenset()

    def describe(self) -> str:
        if self.family == "cc":
            return "cc-" + "-".join(e for e in ("by", "nc", "sa", "nd") if e in self.elements)
        return {"pd": "public domain", "arr": "all rights reserved"}.get(self.family, self.family)


def read_terms(text: str | None) -> Terms | None:
    """The licence a tag or a rights value names, or None when it names none we know."""
    if not text:
        return None
    t = text.casefold()
    if _PUBLIC.search(t):
        return Terms("pd")
    if m := (_CC_URL.search(t) or _CC_SHORT.search(t)):
        return Terms("cc", frozenset(re.findall(r"by|nc|sa|nd", m.group(1))))
    words = {e for w, e in _CC_WORDS.items() if w in t}
    if "creative commons" in t and words:
        return Terms("cc", frozenset(words))
    if _LGPL.search(t):
        return Terms("lgpl")
    if _GPL.search(t):
        return Terms("gpl")
    if _RESERVED.search(t):
        return Terms("arr")
    return None


def conflict(given: Terms, tag: Terms) -> str | None:
    """Why publishing under *given* breaks *tag*, or None when it does not."""
    if tag.family == "pd" or tag == given:
        return None
    if tag.family == "arr":
        return "all rights reserved forbids the redistribution it allows"
    if tag.family == "cc" and given.family == "cc":
        extra = sorted(tag.elements - given.elements, key=("by", "nc", "sa", "nd").index)
        reasons = {"nc": "nc forbids the commercial use it allows",
                   "nd": "nd forbids the derivatives it allows",
                   "sa": "sa requires share-alike, it does not",
                   "by": "by requires attribution, it does not"}
        return "; ".join(reasons[e] for e in extra) or None
    if tag.family == "lgpl" and given.family == "gpl":
        return None
    if tag.family == "cc":
        return f"{tag.describe()} sets conditions it does not"
    return f"{tag.describe()} terms differ from it"


def licence_conflict(rights: str, licence: str | None, copyright: str | None) -> str | None:
    """One line naming the tag and why it contradicts *rights*, or None."""
    given = read_terms(rights)
    if given is None or given.family == "arr":
        return None  # owned*, unknown, or a private value: nothing to contradict
    for name, text in (("LICENSE", licence), ("COPYRIGHT", copyright)):
        tag = read_terms(text)
        why = conflict(given, tag) if tag is not None else None
        if why:
            return f"{name} tag says {tag.describe()!r}, rights given {rights!r}: {why}"
    return None


__all__ = ["Terms", "read_terms", "conflict", "licence_conflict"]
