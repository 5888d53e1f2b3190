"""Quality checks on every output before it may enter the store.

An Ogg Opus file (RFC 7845) is read twice, independently of how it was written:

* its Ogg pages (RFC 3533) are walked: one logical stream, ``OpusHead`` first
  (version, channels, pre-skip, input rate, output gain), granule positions never
  decreasing, the last page flagged end-of-stream. The playable length is
  ``last granule - pre-skip`` (RFC 7845 section 4).
* its audio is decoded completely, every packet, with the libopus PyAV bundles
  (downmixed to mono at 48 kHz: the whole band), measuring samples, peak and RMS;
  FFmpeg's stereo decode is the fallback, and the second opinion when the mono
  level looks too low (out-of-phase stereo cancels in a mono downmix).

The checks (:func:`check_opus`): it decodes completely; its duration matches what
was fed to the encoder within one frame plus pre-skip; it is not silent where the
source is not.

That is QA mode ``decode``, the default. Mode ``packets`` (setting ``encode_qa``)
skips the decode, about a tenth of an encode's CPU on real music: it checks every
page's CRC (RFC 3533), the stream's structure as above, and the length of every
packet from its TOC byte (RFC 6716 section 3.1) against the granule positions and
the samples encoded. It proves the file is whole and well-formed, its pages unchanged
since they were written and its length right; it does not prove that the audio
decodes, nor that it is not silent.

A source (or a kept original) is checked with :func:`check_source`: it decoded to the
length its container declares, so a file cut short is refused.
"""

from __future__ import annotations

import ctypes
import math
import os
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from soundark.errors import BadInput
from soundark.media.libopus import load_libopus
from soundark.media.ogg import EOS, PAGE_HEADER, ogg_crc, read_page
from soundark.media.transcode import FRAME_SAMPLES, OPUS_RATE, PcmFacts

# Below this RMS (dBFS) a source counts as silent and its output is not held to a level.
SILENCE_DB = -60.0
# A non-silent source's output may be this much quieter (dB) at most; Opus keeps energy
# within a fraction of a dB, so a larger drop means lost or zeroed audio.
MAX_LEVEL_DROP_DB = 10.0

# QA decode rate. libopus decodes at 8-48 kHz, but its CELT decoder synthesises at 48 kHz
# and then decimates: a lower rate saves almost nothing and would hear less of the band.
QUICK_RATE = 48_000

QA_MODES = ("decode", "packets")  # see the module docstring


@dataclass(frozen=True)
class OpusFileFacts:
    """What an Ogg Opus file says about itself and what decoding it gives."""

    bytes: int
    channels: int
    pre_skip: int
    input_rate: int
    output_gain: int          # Q7.8 dB, RFC 7845 section 5.1
    last_granule: int
    pages: int
    decoded_samples: int = 0  # from the decoder, pre-skip removed (padding of the last packet
                              # kept by the quick libopus decode, trimmed by FFmpeg's)
    peak: float = 0.0
    rms_db: float = -math.inf

    @property
    def samples(self) -> int:
        """Playable length in 48 kHz samples: last granule position minus pre-skip."""
        return max(0, self.last_granule - self.pre_skip)

    @property
    def duration_ms(self) -> int:
        return int(round(self.samples * 1000 / OPUS_RATE))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "samples": self.samples, "duration_ms": self.duration_ms}


def read_ogg_opus(path: Path) -> OpusFileFacts:
    """Walk the Ogg pages of *path*; raise BadInput if it is not a well-formed Ogg Opus stream."""
    return _walk(Path(path), None)


def _walk(path: Path, packets: list[bytes] | None, data: bytes | None = None,
          crc: bool = False) -> OpusFileFacts:
    """The page walk over *data* (else the file's bytes); with *packets*, also collect them.

    With *crc*, every page's checksum is checked too.
    """
    if data is None:
        data = path.read_bytes()
    pos, pages, serial, last_granule, head, eos = 0, 0, None, -1, b"", False
    partial = b""
    while pos < len(data):
        if len(data) - pos < PAGE_HEADER.size:
            raise BadInput(path, f"Ogg page header cut short at byte {pos}")
        page = read_page(data, pos)
        if page is None:
            raise BadInput(path, f"no Ogg page at byte {pos}")
        if eos:
            raise BadInput(path, "data after the end-of-stream page")
        if page.end > len(data):
            raise BadInput(path, f"Ogg page {pages} cut short")
        if crc and not _crc_ok(data, pos, page.end):
            raise BadInput(path, f"Ogg page {pages} fails its CRC (damaged)")
        if serial is None:
            serial, head = page.serial, data[page.body_start:page.end]
        elif page.serial != serial:
            raise BadInput(path, "more than one logical stream")
        if page.granule != -1:
            if page.granule < last_granule:
                raise BadInput(path, f"granule position goes backwards on page {pages}")
            last_granule = page.granule
        if packets is not None:
            partial = _collect(data, page.body_start, page.lacing, partial, packets)
        eos = bool(page.flags & EOS)
        pos, pages = page.end, pages + 1
    return _facts_from_head(path, head, len(data), last_granule, pages, eos)


def _crc_ok(data: bytes, start: int, end: int) -> bool:
    stored = int.from_bytes(data[start + 22:start + 26], "little")
    return ogg_crc(data[start:start + 22] + b"\0\0\0\0" + data[start + 26:end]) == stored


def _collect(data: bytes, start: int, lacing: bytes, partial: bytes, packets: list[bytes]) -> bytes:
    """Cut a page body into packets: a lacing value under 255 ends a packet."""
    pos = start
    for value in lacing:
        partial += data[pos:pos + value]
        pos += value
        if value < 255:
            packets.append(partial)
            partial = b""
    return partial


def _facts_from_head(path: Path, head: bytes, size: int, last_granule: int, pages: int,
                     eos: bool) -> OpusFileFacts:
    if len(head) < 19 or head[:8] != b"OpusHead":
        raise BadInput(path, "first packet is not an OpusHead")
    version, channels, pre_skip, input_rate, gain = struct.unpack_from("<BBHIh", head, 8)
    if version >> 4 != 0 or channels == 0:
        raise BadInput(path, f"unsupported OpusHead (version {version}, {channels} channels)")
    if not eos:
        raise BadInput(path, "no end-of-stream page (file cut short)")
    return OpusFileFacts(bytes=size, channels=channels, pre_skip=pre_skip, input_rate=input_rate,
                         output_gain=gain, last_granule=max(last_granule, 0), pages=pages)


def inspect_opus(path: Path, quick: bool = True, data: bytes | None = None,
                 mode: str = "decode") -> OpusFileFacts:
    """Page facts plus a complete decode (samples, peak, RMS) of the Ogg Opus file *path*.

    *data*, when given, is the file's bytes already read (the caller hashes the same
    bytes). *quick* decodes every packet with libopus directly, downmixed to mono
    (the range decoder still reads every bit of both channels); otherwise FFmpeg's
    decoder decodes the file in stereo. *mode* ``packets`` decodes nothing: the
    page CRCs are checked and ``decoded_samples`` is the sum of the packets' lengths
    (their TOC bytes); peak and RMS stay unmeasured (0, -inf).
    """
    packets: list[bytes] = []
    facts = _walk(Path(path), packets, data, crc=mode == "packets")
    if mode == "packets" and load_libopus() is not None:
        return _count_packets(path, facts, packets[2:])
    if quick and load_libopus() is not None:
        return _decode_libopus(path, facts, packets[2:])  # after OpusHead and OpusTags
    peak, sumsq, values, samples = 0.0, 0.0, 0, 0
    try:
        with av.open(os.fspath(path), "r") as container:
            stream = container.streams.audio[0]
            for frame in container.decode(stream):
                data = frame.to_ndarray().astype(np.float32, copy=False).reshape(-1)
                if data.size:
                    peak = max(peak, float(np.max(np.abs(data))))
                    sumsq += float(np.dot(data, data))
                    values += data.size
                samples += frame.samples
    except (av.error.FFmpegError, IndexError) as e:
        raise BadInput(path, f"output does not decode ({e})") from e
    rms_db = 10.0 * math.log10(sumsq / values) if values and sumsq > 0 else -math.inf
    return OpusFileFacts(**{**asdict(facts), "decoded_samples": samples, "peak": peak,
                            "rms_db": rms_db})


def _count_packets(path: Path, facts: OpusFileFacts, packets: list[bytes]) -> OpusFileFacts:
    """Each packet's length in samples from its TOC byte and frame count (no decoding)."""
    count = load_libopus().opus_packet_get_nb_samples
    total = 0
    for i, packet in enumerate(packets):
        got = count(packet, len(packet), OPUS_RATE)
        if got <= 0:
            raise BadInput(path, f"packet {i} is not an Opus packet (libopus error {got})")
        total += got
    return OpusFileFacts(**{**asdict(facts), "decoded_samples": max(0, total - facts.pre_skip)})


def _decode_libopus(path: Path, facts: OpusFileFacts, packets: list[bytes]) -> OpusFileFacts:
    """Decode every packet, measuring a chunk of packets at a time in one reused buffer."""
    lib = load_libopus()
    error = ctypes.c_int(0)
    decoder = lib.opus_decoder_create(QUICK_RATE, 1, ctypes.byref(error))
    if not decoder or error.value != 0:
        raise BadInput(path, f"libopus cannot create a decoder (error {error.value})")
    most = QUICK_RATE * 120 // 1000  # the longest Opus packet is 120 ms
    chunk = 64
    out = np.empty(most * chunk, dtype=np.float32)
    base = out.ctypes.data
    decode = lib.opus_decode_float
    total, peak, sumsq = 0, 0.0, 0.0
    try:
        for start in range(0, len(packets), chunk):
            n = 0
            for i, packet in enumerate(packets[start:start + chunk], start):
                got = decode(decoder, packet, len(packet), base + 4 * n, most, 0)
                if got < 0:
                    raise BadInput(path, f"output does not decode: packet {i} (libopus error {got})")
                n += got
            pcm = out[:n]
            if n:
                peak = max(peak, float(pcm.max()), -float(pcm.min()))
                sumsq += float(np.dot(pcm, pcm))
            total += n
    finally:
        lib.opus_decoder_destroy(decoder)
    scale = OPUS_RATE // QUICK_RATE
    return OpusFileFacts(**{**asdict(facts),
                            "decoded_samples": max(0, total * scale - facts.pre_skip), "peak": peak,
                            "rms_db": 10.0 * math.log10(sumsq / total) if sumsq > 0 else -math.inf})

def check_source(subject: object, pcm: PcmFacts) -> None:
    """Refuse a source that decoded to nothing or to less than its container declares."""
    if pcm.source_samples <= 0:
        raise BadInput(subject, "decodes to no audio at all")
    declared = pcm.declared_ms
    if declared:
        decoded = pcm.duration_ms
        # Lossy codecs add or trim a few ms of priming; a real cut loses far more.
        if decoded < declared - max(250, declared // 100):
            raise BadInput(subject, f"truncated or corrupt: decodes to {decoded / 1000:.2f} s of "
                                    f"the {declared / 1000:.2f} s its header declares")


def check_opus(path: Path, pcm: PcmFacts, data: bytes | None = None,
               mode: str = "decode") -> OpusFileFacts:
    """Check the Ogg Opus file *path* (or its bytes, *data*) against the PCM fed to the encoder.

    *mode* is one of :data:`QA_MODES`; ``packets`` leaves out the level check, which
    needs decoded audio. Raises BadInput with a one-line reason on the first failed
    check; returns the facts when every check passes.
    """
    if mode not in QA_MODES:
        raise BadInput("encode_qa", f"unknown QA mode {mode!r}; use one of: {', '.join(QA_MODES)}")
    facts = inspect_opus(path, data=data, mode=mode)
    tolerance = FRAME_SAMPLES + facts.pre_skip
    expected = pcm.out_samples
    if abs(facts.samples - expected) > tolerance:
        raise BadInput(path, f"duration {facts.samples} samples by granule, {expected} encoded "
                             f"(tolerance {tolerance})")
    if abs(facts.decoded_samples - expected) > tolerance:
        raise BadInput(path, f"decodes to {facts.decoded_samples} samples, {expected} encoded "
                             f"(tolerance {tolerance})")
    source_at_48k = round(pcm.source_samples * OPUS_RATE / pcm.source_rate) if pcm.source_rate else 0
    if abs(facts.samples - source_at_48k) > tolerance:
        raise BadInput(path, f"duration {facts.samples} samples, source {source_at_48k} at 48 kHz "
                             f"(tolerance {tolerance})")
    if facts.channels != pcm.out_channels:
        raise BadInput(path, f"{facts.channels} channels, expected {pcm.out_channels}")
    if mode == "packets":
        return facts
    if pcm.rms_db > SILENCE_DB and facts.rms_db < pcm.rms_db - MAX_LEVEL_DROP_DB:
        # the quick decode is a mono downmix, where out-of-phase stereo cancels: ask
        # FFmpeg's stereo decode before calling the output silent
        facts = inspect_opus(path, quick=False)
    if pcm.rms_db > SILENCE_DB and facts.rms_db < pcm.rms_db - MAX_LEVEL_DROP_DB:
        raise BadInput(path, f"output is silent or too quiet ({_db(facts.rms_db)} dBFS RMS, "
                             f"source {_db(pcm.rms_db)} dBFS)")
    return facts


def _db(value: float) -> str:
    return "-inf" if value == -math.inf else f"{value:.1f}"
