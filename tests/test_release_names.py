"""Portable release file names (soundark.release.names) against hostile titles."""

from __future__ import annotations

import unicodedata

import pytest

from soundark.errors import BadInput
from soundark.release.names import NameSet, check_prefix, portable_name, safe_ext

WINDOWS_ILLEGAL = set('<>:"/\\|?*') | {chr(c) for c in range(32)}
RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
HOSTILE = ["../", "..", "../../etc/passwd", "CON", "con", "nul.txt", "COM1", "LPT9 ", "a:b*?", "<x>|\"y\"",
           "é" * 300, "日本語" * 100, "trailing. . ", "  spaces  ", ".hidden", "-rf", "tab\there", "new\nline",
           "\u202eevil\u202c", "zero\u200bwidth", "", "\ud800bad surrogate", "back\\slash", "NUL\x00byte"]


def assert_portable(name: str) -> None:
    assert name == unicodedata.normalize("NFC", name)
    assert 0 < len(name.encode("utf-8")) <= 255
    assert not (set(name) & WINDOWS_ILLEGAL), name
    assert not name.endswith((".", " ")) and not name.startswith((".", " ", "-"))
    assert name.split(".")[0].rstrip(" ").upper() not in RESERVED
    assert all(unicodedata.category(c) not in ("Cf", "Cs", "Cc") for c in name)
    name.encode("utf-8")  # no lone surrogates


@pytest.mark.parametrize("title", HOSTILE)
@pytest.mark.parametrize("key", ["USABC1234567", "CON", "..", "mb0123abcd"])
def test_hostile_titles_give_portable_names(key: str, title: str) -> None:
    name = portable_name(key, "Artist: The *Best*", title, ".opus")
    assert_portable(name)
    assert name.endswith(".opus")


def test_names_keep_the_key_and_are_stable() -> None:
    a = portable_name("USABC1234567", "Art", "é" * 300, ".opus")
    assert a.startswith("USABC1234567 - Art - é")
    assert a == portable_name("USABC1234567", "Art", "é" * 300, ".opus")
    assert portable_name("K", "A", "a:b*?", ".opus") == "K - A - a_b__.opus"
    assert portable_name("CON", "", "", ".opus") == "_CON.opus"
    assert "/" not in portable_name("K", "A", "../../x", ".opus")


def test_truncation_respects_utf8_boundaries() -> None:
    name = portable_name("K", "A", "😀" * 200, ".opus", max_bytes=101)
    assert len(name.encode("utf-8")) <= 101
    assert name.endswith(".opus")


def test_odd_extensions_become_bin() -> None:
    assert safe_ext("OPUS") == ".opus"
    assert safe_ext(".m4a") == ".m4a"
    assert safe_ext("../x") == ".bin"
    assert safe_ext(None) == ".bin"


def test_nameset_separates_case_and_normalisation_collisions() -> None:
    names = NameSet()
    assert names.add("data/audio/Abc.opus") == "data/audio/Abc.opus"
    assert names.add("data/audio/ABC.opus") == "data/audio/ABC~2.opus"
    assert names.add("data/audio/e\u0301.opus") == "data/audio/e\u0301.opus"
    assert names.add("data/audio/\u00e9.opus") == "data/audio/\u00e9~2.opus"


def test_prefix_is_checked() -> None:
    assert check_prefix("my-archive_1.0") == "my-archive_1.0"
    for bad in ("", "../x", "a b", "-x", "x" * 65):
        with pytest.raises(BadInput):
            check_prefix(bad)
