import pytest

from soundark import isrc
from soundark.errors import BadInput


@pytest.mark.parametrize("text", [
    "USRC17607839", "US-RC1-76-07839", "usrc17607839", " US RC1 76 07839 ", "us-rc1-76-07839",
    "ISRC USRC17607839", "ISRC:US-RC1-76-07839", "US\u2013RC1\u201376\u201307839",
])
def test_accepted_forms_normalise_to_12_upper_case(text):
    assert isrc.normalise(text) == "USRC17607839"


def test_parse_splits_the_four_parts():
    code = isrc.parse("GB-A1B-02-00001")
    assert code == ("GB", "A1B", "02", "00001")
    assert code.hyphenated == "GB-A1B-02-00001"
    assert str(code) == "GBA1B0200001"


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("   ", "empty"),
    ("USRC1760783", "12 characters, not 11"),
    ("USRC176078390", "12 characters, not 13"),
    ("U1RC17607839", "country code 'U1'"),
    ("USR_C1760783", "12 characters"),
    ("USR!17607839", "registrant code 'R!1'"),
    ("USRC1A607839", "year 'A6'"),
    ("USRC17607X39", "designation code '07X39'"),
    ("ÜSRC17607839", "letters A-Z"),
    ("US\x00C17607839", "registrant"),
])
def test_rejections_say_why(text, reason):
    with pytest.raises(BadInput) as e:
        isrc.normalise(text)
    assert reason in str(e.value)


def test_non_text_is_rejected():
    with pytest.raises(BadInput):
        isrc.normalise(12345678901)
    assert isrc.normalise_or_none(None) is None
    assert not isrc.is_valid("nope")
    assert isrc.is_valid("usrc17607839")


def test_a_long_rejected_value_is_shortened_in_the_message():
    with pytest.raises(BadInput) as e:
        isrc.normalise("X" * 10_000)
    assert len(str(e.value)) < 120


def test_the_tolerant_reader_accepts_exactly_what_parse_accepts():
    """normalise_or_none has its own fast path (no exception a search): the same verdicts and the
    same codes as parse on near-ISRCs, noise, prefixes and non-ASCII look-alikes."""
    import random

    from soundark.errors import BadInput

    rng = random.Random(3)
    parts = ["US", "us", "RC1", "rc1", "76", "07839", "-", " ", "_", ".", "\u2013", ":", "ISRC", "isrc ", "ß",
             "Ａ", "١", "7", "A", "0", "1234567", "GB", "XYZ", "ﬁ", "İ", "\t", "ISRC:"]
    verdicts = set()
    for _ in range(20000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(0, 8)))
        try:
            expected: str | None = str(isrc.parse(text))
        except BadInput:
            expected = None
        assert isrc.normalise_or_none(text) == expected, text
        verdicts.add(expected is None)
    assert verdicts == {True, False}
    for text in ("USRC17607839", "ISRC: US-RC1-76-07839", "isrc usrc17607839", "US RC1 76 07839"):
        assert isrc.normalise_or_none(text) == "USRC17607839"
