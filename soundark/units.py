"""Units a user types: byte sizes (``4TB``, ``500GiB``) and ``host:port`` listeners.

The ground floor's floor: ``soundark.config`` validates settings with these and
``soundark.model`` re-exports :func:`parse_bytes`, so a size or an address is read
the same way in a settings file, a flag and a stage. Standard library only.
"""

from __future__ import annotations

import re
from fractions import Fraction

from soundark.errors import BadInput

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpPeE]i?[bB]?|[bB])?\s*$", re.ASCII)
_UNITS = {"": 1, "b": 1}
for _i, _p in enumerate("kmgtpe", start=1):
    _UNITS[_p] = _UNITS[_p + "b"] = 1000**_i
    _UNITS[_p + "i"] = _UNITS[_p + "ib"] = 1024**_i


def parse_bytes(text: object, subject: str = "size") -> int:
    """``500GB``, ``4TB``, ``4 TB``, ``4TiB``, ``1.5PB`` or plain bytes -> bytes (SI: 1 TB = 10^12).

    Raises BadInput for anything else (negative, unknown unit, empty).
    """
    if isinstance(text, bool):
        raise BadInput(subject, f"{text!r} is not a size")
    if isinstance(text, int):
        if text < 0:
            raise BadInput(subject, f"{text} is negative")
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise BadInput(subject, f"{text!r} is not a size; use e.g. 500GB, 4TB, 4TiB, 1.5PB or plain bytes")
    number, unit = m.group(1), (m.group(2) or "").lower()
    # Fraction, not float: plain byte counts past 2**53 must stay exact
    value = Fraction(number) * _UNITS[unit]
    if value > 2**63 - 1:
        raise BadInput(subject, f"{text!r} is too large")
    return int(round(value))


def split_host_port(text: str, subject: str = "address") -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); BadInput when the port is not 0-65535."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise BadInput(subject, f"{text.strip()!r} is not host:port with a port 0-65535")
    return host, int(port)
