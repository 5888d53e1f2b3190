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


_SI_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def si_unit(n: float) -> tuple[float, str]:
    """The largest SI unit not above ``n`` bytes, as (bytes per unit, name): a chart axis's unit."""
    scale, name = 1.0, "B"
    for i, unit in enumerate(_SI_UNITS):
        if abs(n) >= 1000.0**i:
            scale, name = 1000.0**i, unit
    return scale, name


def format_bytes(n: float | None) -> str:
    """Bytes for people, in SI units (1 kB = 1000 B, 1 TB = 10^12 B), everywhere a size is shown.

    One unit system across the CLI, reports, torrents.html and the web (docs/settings.md, "Units"):
    SI, as budgets and disks are sold. JSON keeps integer bytes. None reads as "".
    """
    if n is None:
        return ""
    # round first, so 999,950 B reads "1.0 MB", not "1,000.0 kB"
    scale, unit = si_unit(float(f"{float(n):.4g}") if abs(n) >= 1000 else n)
    return f"{n:,.0f} {unit}" if unit == "B" else f"{n / scale:,.1f} {unit}"


def split_host_port(text: str) -> tuple[str, str]:
    """``host:port`` -> (host, port text), IPv6 brackets removed (``[::1]:6881`` -> ``::1``).

    Lenient: the port is not checked (libtorrent's listen_interfaces allows suffixes such as
    ``6881s``); :func:`parse_host_port` is the strict form.
    """
    host, _, port = text.strip().rpartition(":")
    return host.strip().removeprefix("[").removesuffix("]"), port.strip()


def parse_host_port(text: str, subject: object = None, *, lowest_port: int = 1) -> tuple[str, int]:
    """``host:port`` -> (host, port); BadInput unless the port is *lowest_port*..65535.

    A peer or a magnet's ``x.pe`` needs a real port (1..); a listener may ask for 0 (any free port).
    """
    host, port = split_host_port(text)
    if not host or not port.isdigit() or not lowest_port <= int(port) <= 65535:
        raise BadInput(subject if subject is not None else text,
                       f"{text.strip()!r} is not host:port (e.g. 127.0.0.1:6881 or [::1]:6881)")
    return host, int(port)
