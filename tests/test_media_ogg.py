"""soundark.media.ogg: the one Ogg page reader (RFC 3533), checked on pages another writer made
(libsndfile's, tests/data/scan) and on our own writer's, and cut at every awkward place."""

from __future__ import annotations

import io
import re
from pathlib import Path

from soundark.media.ogg import CAPTURE, EOS, PAGE_HEADER, OggWriter, read_page, with_crc

SAMPLE = Path(__file__).parent / "data" / "scan" / "vorbis_framing_junk.ogg"
PACKAGE = Path(__file__).resolve().parents[1] / "soundark"


def walk(data: bytes) -> list:
    pages, pos = [], 0
    while (page := read_page(data, pos)) is not None:
        pages.append((pos, page))
        pos = page.end
    assert pos == len(data)
    return pages


def test_pages_of_a_file_written_by_libsndfile() -> None:
    data = SAMPLE.read_bytes()
    pages = walk(data)
    assert len(pages) >= 2 and [p.sequence for _, p in pages] == list(range(len(pages)))
    assert len({p.serial for _, p in pages}) == 1
    assert pages[-1][1].flags & EOS and not any(p.flags & EOS for _, p in pages[:-1])
    # the first page was patched and re-CRCed by hand; every CRC agrees with ours
    for pos, page in pages:
        raw = data[pos:page.end]
        assert bytes(with_crc(bytearray(raw))) == raw


def test_our_writer_reads_back() -> None:
    buf = io.BytesIO()
    w = OggWriter(buf, serial=7)
    w.page([b"head"], 0, 0x02)
    for i in range(120):
        w.audio(bytes([i]) * (300 + i), 960 * (i + 1))
    w.end(960 * 120 - 100)
    pages = [p for _, p in walk(buf.getvalue())]
    assert [p.serial for p in pages] == [7] * len(pages)
    assert pages[-1].granule == 960 * 120 - 100 and pages[-1].flags == EOS


def test_a_cut_page_and_a_non_page() -> None:
    data = SAMPLE.read_bytes()
    first = read_page(data)
    assert first is not None
    for cut in (first.body_start - 1, first.body_start, first.end - 1):  # in the lacing, the body
        assert read_page(data[:cut]).end > cut
    assert read_page(data[:PAGE_HEADER.size - 1]) is None  # not even a header
    assert read_page(b"XggS" + data[4:]) is None
    assert read_page(data[:4] + b"\x01" + data[5:]) is None  # stream structure version 1


def test_no_second_ogg_page_parser_in_the_package() -> None:
    """Ogg page headers are unpacked in media/ogg.py only."""
    found = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if p.name != "ogg.py"
             and re.search(r"4sBBq|b\"OggS\"|\[(pos \+ )?26\]", p.read_text(encoding="utf-8"))]
    assert found == [] and CAPTURE == b"OggS"
