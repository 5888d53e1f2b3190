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
- An ASCII token is lower-cased, as unicode61 does. A token with other letters may fold to
  anything unicode61's tables say (``é`` to ``e``, ``ø`` to ``o``...), but code point by code
  point: it can only become a word of its own length whose letters equal its ASCII letters,
  lower-cased, and only a character of the Latin script or an alphanumeric form (full-width,
  enclosed...) may become an ASCII one. When some phrase word could be so made (``Blüe``,
  ``ſun``), the field is undecided; otherwise the token is none of the words (``Łukasz``,
  ``東京``, ``Москва``).

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


# Code points whose fold might be an ASCII letter or digit: Latin letters and their diacritics,
# letter-like and number forms, enclosed, full-width and mathematical alphanumerics. unicode61
# folds no other script into ASCII (case folding keeps a letter's script; diacritics are removed
# from Latin letters only).
_TO_ASCII = ((0x80, 0x370), (0x1D00, 0x1F00), (0x2000, 0x2500), (0x2C60, 0x2C80), (0xA720, 0xA800),
             (0xAB30, 0xAB70), (0xFB00, 0xFB50), (0xFF00, 0xFFF0), (0x1D400, 0x1D800), (0x1F100, 0x1F200))


def _maybe_ascii(ch: str) -> bool:
    o = ord(ch)
    return any(lo <= o < hi for lo, hi in _TO_ASCII)


def _could_be(token: str, word: str) -> bool:
    """Could unicode61 fold *token* (with characters beyond ASCII) into *word*? It folds code point
    by code point, so only a word of the same length can come of it, each ASCII character
    lower-cased and each other one anything, if it is one that may fold into ASCII at all."""
    return len(token) == len(word) and all(c.lower() == x if c.isascii() else _maybe_ascii(c)
                                           for c, x in zip(token, word))


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
        elif any(_could_be(token, w) for w in words):
            return None
        else:
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
