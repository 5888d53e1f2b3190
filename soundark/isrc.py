"""International Standard Recording Code (ISO 3901).

An ISRC is 12 characters: a 2-letter country code, a 3-character alphanumeric
registrant code, a 2-digit year of reference and a 5-digit designation code,
e.g. ``US-RC1-76-07839`` written with dashes or ``USRC17607839`` without.
:func:`normalise` accepts dashes, spaces, an ``ISRC`` prefix and lower case,
and returns the 12-character upper-case form; :func:`parse` also splits it.
A rejection raises :class:`~soundark.errors.BadInput` saying which part is wrong.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from soundark.errors import BadInput

_NOISE = re.compile(r"[\s\-\u2010-\u2015_.]+")
_SHAPE = re.compile(r"[A-Z]{2}[A-Z0-9]{3}[0-9]{7}")


class ISRC(NamedTuple):
    country: str
    registrant: str
    year: str
    designation: str

    def __str__(self) -> str:
        return self.country + self.registrant + self.year + self.designation

    @property
    def hyphenated(self) -> str:
        return f"{self.country}-{self.registrant}-{self.year}-{self.designation}"


def parse(text: object) -> ISRC:
    """Parse and validate an ISRC; raise BadInput naming the wrong part."""
    if not isinstance(text, str):
        raise BadInput(repr(text), "ISRC must be text")
    shown = text if len(text) <= 40 else text[:37] + "..."
    code = _NOISE.sub("", text).upper()
    if code.startswith("ISRC") and len(code[4:].lstrip(":")) == 12:
        code = code[4:].lstrip(":")  # "ISRC USRC17607839", "ISRC: US-RC1-..."
    if not code:
        raise BadInput(repr(shown), "ISRC is empty")
    if len(code) != 12:
        raise BadInput(shown, f"ISRC must have 12 characters, not {len(code)}")
    if not code.isascii():
        raise BadInput(shown, "ISRC must use only letters A-Z and digits")
    country, registrant, year, designation = code[:2], code[2:5], code[5:7], code[7:]
    if not (country.isalpha()):
        raise BadInput(shown, f"country code {country!r} must be two letters")
    if not registrant.isalnum():
        raise BadInput(shown, f"registrant code {registrant!r} must be three letters or digits")
    if not year.isdigit():
        raise BadInput(shown, f"year {year!r} must be two digits")
    if not designation.isdigit():
        raise BadInput(shown, f"designation code {designation!r} must be five digits")
    if not _SHAPE.fullmatch(code):  # the checks above name the part; this keeps the shape the one rule
        raise BadInput(shown, "must be CC-XXX-YY-NNNNN: 2 letters, 3 letters or digits, 2 digits, 5 digits")
    return ISRC(country, registrant, year, designation)


def normalise(text: object) -> str:
    """The 12-character upper-case ISRC, or BadInput saying why not."""
    return str(parse(text))


def normalise_or_none(text: object) -> str | None:
    """Like :func:`normalise` but ``None`` for an invalid code (for tolerant readers). The same
    rule as :func:`parse` without its messages: every search asks, and most text is no ISRC."""
    if not isinstance(text, str):
        return None
    code = _NOISE.sub("", text).upper()
    if code.startswith("ISRC") and len(code[4:].lstrip(":")) == 12:
        code = code[4:].lstrip(":")
    return code if len(code) == 12 and _SHAPE.fullmatch(code) else None


def is_valid(text: object) -> bool:
    return normalise_or_none(text) is not None
