"""Plain value helpers of soundark.model: the one byte formatter (SI) and its inverse, parse_bytes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from soundark.errors import BadInput
from soundark.units import format_bytes, parse_bytes, parse_host_port, split_host_port

PACKAGE = Path(__file__).resolve().parents[1] / "soundark"


@pytest.mark.parametrize("n, text", [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (4 * 10**12, "4.0 TB"),
                                     (1.5 * 10**15, "1.5 PB"), (123_456_789, "123.5 MB"),
                                     (999_949, "999.9 kB"), (999_950, "1.0 MB"), (10**24, "1,000,000.0 EB"),
                                     (None, "")])
def test_format_bytes_is_si(n: float | None, text: str) -> None:
    assert format_bytes(n) == text


@pytest.mark.parametrize("budget, shown", [("4TB", "4.0 TB"), ("500GB", "500.0 GB"), ("1.5PB", "1.5 PB"),
                                            ("4TiB", "4.4 TB")])
def test_a_budget_is_shown_in_the_units_it_is_read(budget: str, shown: str) -> None:
    assert format_bytes(parse_bytes(budget)) == shown


def test_no_second_byte_formatter_in_the_package() -> None:
    """Sizes shown to people come from format_bytes only: no IEC units, no hand-made '/ 1e6 MB'."""
    offenders = []
    for path in PACKAGE.rglob("*"):
        if path.suffix not in (".py", ".html") or path.name == "units.py":
            continue
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0] if path.suffix == ".py" else line
            if re.search(r"/ 1e[369]\b|/ 1024\b|\bhuman_bytes\b|\"(KiB|MiB|GiB|TiB)\"", code):
                offenders.append(f"{path.relative_to(PACKAGE)}:{no}: {line.strip()}")
    assert offenders == []


@pytest.mark.parametrize("text, parsed", [("127.0.0.1:6881", ("127.0.0.1", 6881)), ("[::1]:1", ("::1", 1)),
                                          (" example.org:65535 ", ("example.org", 65535))])
def test_host_port(text: str, parsed: tuple[str, int]) -> None:
    assert parse_host_port(text) == parsed


@pytest.mark.parametrize("text", ["127.0.0.1", ":6881", "host:0", "host:65536", "host:http", "host:-1", ""])
def test_host_port_refused(text: str) -> None:
    with pytest.raises(BadInput, match="is not host:port") as e:
        parse_host_port(text, "--peer")
    assert e.value.subject == "--peer"


def test_split_host_port_is_lenient_for_listen_interfaces() -> None:
    assert split_host_port("0.0.0.0:6881s") == ("0.0.0.0", "6881s")  # libtorrent's SSL suffix
    assert split_host_port(" [::1]:6881") == ("::1", "6881")


def test_no_second_host_port_parser_in_the_package() -> None:
    found = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if p.name != "units.py"
             and re.search(r"""(rsplit|rpartition)\(":"(, 1)?\)""", p.read_text(encoding="utf-8"))]
    assert found == []
