"""Does a row hold a phrase? Decided here, the way the word index (FTS5 ``unicode61
remove_diacritics 2``) would, or left undecided.

:mod:`soundark.catalog.search` answers a quoted phrase of 3+ words without FTS5's own phrase
evaluation when that is slow: FTS5 finds the rows holding every word (an AND, rarest words
first), and this module checks the order of the words on those rows. It decides only what it
can decide exactly, else it says so (None) and the search asks FTS5 the whole query instead:

- The phrase's words are ASCII letters and digits (``[a-z0-9]+``): the query's words are then
  the tokens FTS5 makes of them.
- A field's tokens are its runs of letters and digits (Unicode categories L and N), as unicode61
  splits them. A field holding a combining mark, a private-use, unassigned or surrogate
  character is undecided: unicode61 may join or fold those differently.
- An ASCII token is lower-cased, as unicode61 does. A token with other letters is folded the
  way unicode61 folds diacritics (NFKD, marks dropped, lower case) only to ask whether it could
  be one of the phrase's words: when its folded form is one, or when it is still not ASCII
  but holds letters of the Latin script (which unicode61 may fold to ASCII where NFKD does
  not: ``ø``, ``đ``), the field is undecided; otherwise the token is none of the words.

tests/test_phrases.py holds the answers equal to FTS5's on fields built to hit each case.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

PHRASE_WORD = re.compile(r"[a-z0-9]+\Z")
_ASCII_TOKEN = re.compile(r"[a-z0-9]+")
_UNSURE_CATEGORIES = frozenset(("Mn", "Mc", "Me", "Co", "Cn", "Cs"))
_ASCII_SEPARATORS = {c: " " for c in range(128) if not chr(c).isalnum()}
OTHER = "\x00"  # a token that is none of the phrase's words


def decidable(words: Iterable[str]) -> bool:
    """True when every word is one FTS5 token as it stands (ASCII letters and digits)."""
    return all(PHRASE_WORD.match(w) for w in words)


def _latin(ch: str) -> bool:
    o = ord(ch)
    return (0x80 <= o < 0x370 or 0x1D00 <= o < 0x1F00 or 0x2C60 <= o < 0x2C80 or 0xA720 <= o < 0xA800
            or 0xAB30 <= o < 0xAB70 or 0xFB00 <= o < 0xFB07 or 0xFF00 <= o < 0xFFF0 or 0x2100 <= o < 0x2150)


def tokens(field: str, words: frozenset[str]) -> list[str] | None:
    """The field's tokens as FTS5 indexes them, each either an ASCII token or OTHER (a token that
    cannot be any of *words*); None when that cannot be told exactly (module docstring)."""
    if field.isascii():
        return _ASCII_TOKEN.findall(field.lower())
    separators = dict(_ASCII_SEPARATORS)
    for ch in set(field):
        if ord(ch) > 127:
            category = unicodedata.category(ch)
            if category in _UNSURE_CATEGORIES:
                return None
            if category[0] not in "LN":  # punctuation, symbols, spaces, controls: separators
                separators[ord(ch)] = " "
    out: list[str] = []
    for token in field.translate(separators).split():
        if token.isascii():
            out.append(token.lower())
            continue
        folded = "".join(c for c in unicodedata.normalize("NFKD", token)
                         if not unicodedata.combining(c)).lower()
        if folded in words or (not folded.isascii() and any(_latin(c) for c in folded)):
            return None
        out.append(OTHER)
    return out


def holds(phrase: tuple[str, ...], fields: Iterable[str]) -> bool | None:
    """True when one of *fields* holds the phrase's words in a row (its tokens consecutive, as a
    quoted FTS5 phrase matches), False when none does, None when that cannot be told exactly.
    The phrase's words must be :func:`decidable`."""
    words = frozenset(phrase)
    wanted = " " + " ".join(phrase) + " "
    unsure = False
    for field in fields:
        found = tokens(field, words)
        if found is None:
            unsure = True
            continue
        if wanted in " " + " ".join(found) + " ":
            return True
    return None if unsure else False
