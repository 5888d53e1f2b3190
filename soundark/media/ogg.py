"""Ogg pages read and written by hand: RFC 3533 (Ogg) and RFC 7845 sections 3-5 (Opus in Ogg).

:func:`read_page` is the one parser of an Ogg page header in soundark (QA's page walk, probe's
cut-file check, the OpusHead rate patch); :class:`OggWriter` the one writer.

The encoder (:mod:`soundark.media.transcode`) calls libopus directly and pages its packets
here: the identification header (``OpusHead``), the comment header (``OpusTags``), then
audio pages of about one second each whose granule position is the running 48 kHz sample
count including pre-skip; the last page carries the end-of-stream flag and a granule that
trims the padding of the last packet. Nothing here is random: the same packets and serial
give the same bytes.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, NamedTuple

# capture pattern, version, flags, granule position, serial, sequence, CRC, segment count
PAGE_HEADER = struct.Struct("<4sBBqIIIB")
CAPTURE = b"OggS"
EOS = 0x04  # header type flag: last page of a logical stream
_PAGE_PACKETS = 50  # about one second per Ogg page, as FFmpeg's muxer does


def opus_head(channels: int, pre_skip: int, input_rate: int) -> bytes:
    """The identification header (RFC 7845 section 5.1), channel mapping family 0."""
    rate = input_rate if 0 < input_rate < 2**32 else 0
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, rate, 0, 0)


def opus_tags(vendor: str, comments: tuple[str, ...] = ()) -> bytes:
    """The comment header (RFC 7845 section 5.2)."""
    parts = [b"OpusTags", _lstring(vendor.encode()), struct.pack("<I", len(comments))]
    parts += [_lstring(c.encode()) for c in comments]
    return b"".join(parts)


def _lstring(data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + data


_BITSWAP = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def ogg_crc(data: bytes) -> int:
    """CRC-32 of an Ogg page (RFC 3533: polynomial 0x04c11db7, not reflected, init 0, no xor).

    zlib's CRC is the reflected form of the same polynomial: feed it bit-reversed
    bytes and bit-reverse its result (mutagen's trick), at C speed.
    """
    reflected = (~zlib.crc32(data.translate(_BITSWAP), 0xFFFFFFFF)) & 0xFFFFFFFF
    return int.from_bytes(reflected.to_bytes(4, "big").translate(_BITSWAP), "little")


def with_crc(page: bytearray) -> bytearray:
    """*page* (one whole page) with its CRC field recomputed, as RFC 3533 defines it."""
    page[22:26] = b"\0\0\0\0"
    page[22:26] = ogg_crc(bytes(page)).to_bytes(4, "little")
    return page


class OggPage(NamedTuple):
    """One page header as found in a buffer; the body is ``data[body_start:end]``."""

    flags: int
    granule: int
    serial: int
    sequence: int
    lacing: bytes      # shorter than the segment count when the data ends inside the table
    body_start: int
    end: int           # one past the page's last byte: past len(data) when the page is cut short


def read_page(data: bytes | bytearray, pos: int = 0) -> OggPage | None:
    """The Ogg page whose header starts at *pos*, or None when none does (too few bytes for a
    header, another capture pattern, or a stream structure version other than 0)."""
    if len(data) - pos < PAGE_HEADER.size:
        return None
    capture, version, flags, granule, serial, seq, _crc, nsegs = PAGE_HEADER.unpack_from(data, pos)
    if capture != CAPTURE or version != 0:
        return None
    body_start = pos + PAGE_HEADER.size + nsegs
    lacing = bytes(data[pos + PAGE_HEADER.size:body_start])
    return OggPage(flags, granule, serial, seq, lacing, body_start, body_start + sum(lacing))


class OggWriter:
    """Pages one logical stream of packets into an open file (RFC 3533), hashing as it writes."""

    def __init__(self, f: Any, serial: int) -> None:
        self._f, self._serial, self._seq = f, serial & 0xFFFFFFFF, 0
        self._packets: list[bytes] = []
        self._lacing = 0

    def page(self, packets: list[bytes], granule: int, flags: int = 0) -> None:
        lacing = bytearray()
        for packet in packets:
            lacing += b"\xff" * (len(packet) // 255) + bytes((len(packet) % 255,))
        header = PAGE_HEADER.pack(CAPTURE, 0, flags, granule, self._serial, self._seq, 0, len(lacing))
        self._f.write(with_crc(bytearray(header + lacing + b"".join(packets))))
        self._seq += 1

    def audio(self, packet: bytes, granule: int) -> None:
        """Queue an audio packet whose end is at *granule*; write a page when one is full."""
        segments = len(packet) // 255 + 1
        if self._packets and (self._lacing + segments > 255 or len(self._packets) >= _PAGE_PACKETS):
            self.page(self._packets, self._granule)
            self._packets, self._lacing = [], 0
        self._packets.append(packet)
        self._lacing += segments
        self._granule = granule

    def end(self, final_granule: int) -> None:
        """Write the last page with the end-of-stream flag; its granule trims the padding."""
        self.page(self._packets, final_granule, flags=EOS)
        self._packets, self._lacing = [], 0
