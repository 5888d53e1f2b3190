"""Budget strings and tier lists of `soundark plan` (soundark.units.parse_bytes, soundark.plan.budget)."""

from __future__ import annotations

import pytest

from soundark.config import Settings
from soundark.errors import BadInput
from soundark.plan.budget import PlanSettings, parse_budget, parse_tiers
from soundark.units import parse_bytes


@pytest.mark.parametrize("text, expected", [
    ("500GB", 500 * 10**9),
    ("4TB", 4 * 10**12),
    ("4TiB", 4 * 2**40),
    ("4 TB", 4 * 10**12),
    ("1.5PB", 1_500_000_000_000_000),
    ("123456", 123456),
    ("0", 0),
    (" 4 tb ", 4 * 10**12),
    ("64MiB", 64 * 2**20),
    ("10kB", 10_000),
    ("99999999999999999", 99999999999999999),  # past 2**53: exact, not rounded through a float
])
def test_budget_strings_of_the_issue(text: str, expected: int) -> None:
    assert parse_bytes(text, "budget") == expected
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["-1", "abc", "4XB", "4 T B", "1e3", "4TBB", ".5TB", "TB", "4 XiB",
                                  "9223372036854775808", "１TB"])
def test_bad_budget_strings_say_what_is_wrong(text: str) -> None:
    with pytest.raises(BadInput) as info:
        parse_budget(text)
    message = str(info.value)
    assert message.startswith("budget: ")
    assert repr(text) in message


@pytest.mark.parametrize("text", ["", "none", "  None ", "unlimited", None])
def test_no_budget(text: str | None) -> None:
    assert parse_budget(text) is None


def test_negative_int_budget_is_refused() -> None:
    with pytest.raises(BadInput, match="negative"):
        parse_bytes(-1, "budget")


@pytest.mark.parametrize("given, expected", [
    ("original,opus75", ("original", "opus75")),
    ("opus75, original", ("original", "opus75")),
    ("opus75", ("opus75",)),
    (("original",), ("original",)),
    ("opus75,skip", ("opus75",)),
])
def test_tiers(given: object, expected: tuple[str, ...]) -> None:
    assert parse_tiers(given) == expected


@pytest.mark.parametrize("given, reason", [("flac", "unknown tier 'flac'"), ("", "no tier"),
                                           ("skip", "no tier")])
def test_bad_tiers(given: str, reason: str) -> None:
    with pytest.raises(BadInput, match=reason):
        parse_tiers(given)


def test_plan_settings_from_archive_settings() -> None:
    ps = PlanSettings.from_settings(Settings(budget="4TiB", tiers=("opus75",)))
    assert ps.budget == 4 * 2**40 and ps.tiers == ("opus75",) and ps.opus_bitrate == 75_000
    with pytest.raises(BadInput, match="opus_bitrate"):
        PlanSettings.from_settings(Settings(opus_bitrate=0))
    with pytest.raises(BadInput, match="budget"):
        PlanSettings.from_settings(Settings(budget="4XB"))
