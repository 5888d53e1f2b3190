"""An acoustic signature of decoded audio, to tell "same recording" from "same name".

The signature follows Haitsma & Kalker, "A Highly Robust Audio Fingerprinting
System" (ISMIR 2002), the design Chromaprint also descends from:

1. the decoded PCM is summed to mono and its rate divided by an integer (44.1 kHz
   to 11025 Hz, 48 kHz to 12000 Hz: see :class:`SignatureBuilder` for why not a
   resampler);
2. frames of 186 ms (2048 samples at 11025 Hz; Hann window) every 93 ms, cut by
   time, so a 44.1 kHz FLAC and a 48 kHz Opus of the same music give the same frames;
3. the energy of 33 bands spaced logarithmically between 300 and 2000 Hz, in dB
   with a floor 60 dB below the frame's loudest band (so near-silent bands, which
   codecs zero out or fill with noise, compare as equal rather than as random bits);
4. 32 bits per frame: bit *m* of frame *n* is set when the energy difference of
   bands *m*, *m*+1 grew since frame *n*-1 by more than :data:`BIT_DEADBAND_DB`.

Only the first :data:`MAX_SECONDS` are used: the cost per file is capped, the stored value
stays small (4 bytes per frame, about 1.3 KB), and on real music 30 s separate same and
different audio as well as 120 s did (docs/scan.md). Stored as ``b"saf1"`` + little-endian
uint32 per frame.

Two signatures are compared by their **bit error rate** (share of differing bits)
at the best time offset within ±:data:`MAX_OFFSET_FRAMES` frames (about ±3 s, the
name matcher's duration tolerance), over the frames both cover. The same audio
through different lossy codecs stays far below :data:`SAME_AUDIO_MAX_DISTANCE`;
different music lands near 0.5 (docs/scan.md gives the measurements).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from av.audio.fifo import AudioFifo

SAMPLE_RATE = 11025  # the analysis rate of the frame and hop sizes below
FRAME = 2048
HOP = 1024
BANDS = 33
LOW_HZ, HIGH_HZ = 300.0, 2000.0
FLOOR_DB = 60.0
BIT_DEADBAND_DB = 0.2
MAX_SECONDS = 30
MAX_OFFSET_FRAMES = 32
# Fewer overlapping frames than this (1.5 s) say too little to tell two pieces apart; a shift
# must also keep three quarters of the shorter signature (a sliver of overlap is no evidence).
MIN_OVERLAP_FRAMES = 16
# Bit error rates at or below this mean "the same audio" (docs/scan.md: how it was chosen).
SAME_AUDIO_MAX_DISTANCE = 0.35
MAGIC = b"saf1"

_DTYPES = {"u8": np.uint8, "s16": np.int16, "s32": np.int32, "s64": np.int64, "flt": np.float32,
           "dbl": np.float64}
_WEIGHTS = (np.uint32(1) << np.arange(BANDS - 1, dtype=np.uint32)).astype(np.uint32)


@functools.lru_cache(maxsize=16)
def _analysis(rate: float) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(frame length, FFT size, window, first FFT bin of each band and the end) at *rate* Hz.

    Frames last FRAME/SAMPLE_RATE seconds at every rate, so files decoded at 44.1 and
    48 kHz give frames of the same music at the same times.
    """
    length = int(round(FRAME * rate / SAMPLE_RATE))
    nfft = 1 << (length - 1).bit_length()
    edges = np.geomspace(LOW_HZ, HIGH_HZ, BANDS + 1)
    bins = np.ceil(edges * nfft / rate).astype(np.intp)  # bands are runs of bins: [bins[m], bins[m+1])
    return length, nfft, np.hanning(length).astype(np.float32), bins


class SignatureBuilder:
    """Accumulates decoded audio and returns its signature.

    Feed it PyAV frames (:meth:`add_frame`) or float32 PCM blocks with their rate
    (:meth:`add_pcm`, for decoders other than FFmpeg), in order; then :meth:`finish`.
    Once :data:`MAX_SECONDS` are collected, further input is ignored at no cost.

    Cost matters (it runs inside every scan's decode), so no resampler: channels are
    summed and the rate divided by an integer factor with a box filter (44.1 kHz -> 11025 Hz,
    48 kHz -> 12000 Hz), which leaves the 300-2000 Hz bands intact; frames are cut by time.
    Blocks are kept as views of the decoder's buffers and reduced about once a second.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget what was fed (a decoder that gave up part-way; the next one starts afresh)."""
        self.rate = 0
        self._factor = 1
        self._channels = 0
        self._pending: list[np.ndarray] = []  # mono float32 blocks at the input rate
        self._pending_samples = 0
        self._carry = np.zeros(0, dtype=np.float32)
        self._mono: list[np.ndarray] = []  # decimated blocks
        self._samples = 0  # input samples taken
        self._limit = 0
        self.stopped = False
        self._fifo: Any = None  # AudioFifo of PyAV frames not yet taken (add_frame)
        self._dtype: Any = None
        self._planar = False

    def add_frame(self, frame: Any) -> None:
        """One decoded PyAV audio frame (any sample format and layout).

        Frames are gathered in PyAV's AudioFifo (in C) and taken out a second at a time: the
        per-frame work in Python is one call, about a fifth of converting every frame (the
        signature's share of the scan's CPU fell accordingly). The frame's pts is cleared.
        """
        if self.stopped:
            return
        if self._fifo is None:
            fmt = frame.format
            self._dtype = _DTYPES.get(fmt.name.rstrip("p"))
            self._planar = fmt.is_planar
            if self._dtype is None or not self._accepts(frame.sample_rate, len(frame.layout.channels)):
                self.stopped = True
                return
            self._fifo = AudioFifo()
        frame.pts = None  # the fifo checks pts continuity; a decoder's gaps do not matter here
        try:
            self._fifo.write(frame)
        except ValueError:  # format, layout or rate changed mid-stream: the input ends here
            self.stopped = True
            return
        while self._fifo.samples >= self.rate and not self.stopped:
            self._take(self._fifo.read(self.rate))

    def _take(self, block: Any) -> None:
        """A block out of the fifo: channels mixed to mono, pushed."""
        data = block.to_ndarray()
        channels = self._channels
        if self._planar:
            planes = [data[c] for c in range(channels)]
        else:
            flat = data.reshape(-1)
            planes = [flat[c::channels] for c in range(channels)]
        self._push(_mix(planes, self._dtype))

    def add_pcm(self, pcm: np.ndarray, sample_rate: int) -> None:
        """Float32 samples shaped (n,) mono or (n, channels) interleaved, at *sample_rate*."""
        if self.stopped:
            return
        block = np.asarray(pcm, dtype=np.float32)
        block = block.reshape(-1, 1) if block.ndim == 1 else block
        if self._accepts(sample_rate, block.shape[1]):
            self._push(_mix([block[:, c] for c in range(block.shape[1])], np.float32))
        else:
            self.stopped = True

    def finish(self) -> bytes:
        """The signature: ``MAGIC`` + one little-endian uint32 per frame (none under ~0.3 s)."""
        if self._fifo is not None and self._fifo.samples and not self.stopped:
            self._take(self._fifo.read())
        self._reduce()
        mono = np.concatenate(self._mono) if self._mono else np.zeros(0, np.float32)
        rate = self.rate / self._factor if self.rate else SAMPLE_RATE
        return MAGIC + signature_bits(mono, rate).astype("<u4").tobytes()

    def _accepts(self, rate: int, channels: int) -> bool:
        """Fix the input rate and channels at the first block; a change mid-stream ends the input."""
        if not self.rate:
            if rate <= 0:
                return False
            self.rate, self._channels = rate, channels
            self._factor = max(1, rate // SAMPLE_RATE)
            self._limit = MAX_SECONDS * rate
        return rate == self.rate and channels == self._channels

    def _push(self, block: np.ndarray) -> None:
        self._pending.append(block)
        self._pending_samples += block.size
        self._samples += block.size
        if self._pending_samples >= self.rate:
            self._reduce()
        if self._samples >= self._limit:
            self._reduce()
            self.stopped = True

    def _reduce(self) -> None:
        """Sum channels, divide the rate by the box filter, keep the remainder for the next call."""
        if not self._pending:
            return
        mono = np.concatenate([self._carry, *self._pending])
        self._pending, self._pending_samples = [], 0
        f = self._factor
        whole = mono.size // f * f
        self._carry = mono[whole:]
        # strided adds: much faster than reshape(-1, f).sum(axis=1) on a short last axis
        out = mono[0:whole:f].copy()
        for k in range(1, f):
            out += mono[k:whole:f]
        self._mono.append(out)


def _mix(planes: list[np.ndarray], dtype: Any) -> np.ndarray:
    """Sum channels into one float32 block (the level does not matter: bits compare dB)."""
    mono = planes[0].astype(np.float32)
    for plane in planes[1:]:
        mono += plane
    if dtype is np.uint8:
        mono -= 128.0 * len(planes)
    return mono


def signature_bits(mono: np.ndarray, rate: float = SAMPLE_RATE) -> np.ndarray:
    """uint32 per frame for mono float32 PCM at *rate* Hz (about 11-16 kHz)."""
    length, nfft, window, bins = _analysis(float(rate))
    hop = HOP * rate / SAMPLE_RATE
    count = int((mono.size - length) // hop) + 1 if mono.size >= length else 0
    if count < 2:
        return np.zeros(0, dtype=np.uint32)
    starts = np.round(np.arange(count) * hop).astype(np.int64)
    frames = mono[starts[:, None] + np.arange(length)]
    spectrum = np.fft.rfft(frames * window, n=nfft, axis=1)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    # band sums by reduceat, not a matrix product: BLAS threads spinning inside the scan's
    # worker threads made the whole scan several times slower on two cores
    energy = np.add.reduceat(power[:, : bins[-1]], bins[:-1], axis=1)  # (frames, BANDS)
    db = 10.0 * np.log10(energy + 1e-12)
    db = np.maximum(db, db.max(axis=1, keepdims=True) - FLOOR_DB)
    diff = db[:, :-1] - db[:, 1:]  # (frames, BANDS-1): spectral slope
    bits = (diff[1:] - diff[:-1]) > BIT_DEADBAND_DB  # its change over time
    return (bits.astype(np.uint32) * _WEIGHTS).sum(axis=1, dtype=np.uint32)


def decode_signature(blob: bytes | None) -> np.ndarray | None:
    """The uint32 frames of a stored signature; None for a missing or foreign value."""
    if not blob or blob[:4] != MAGIC or (len(blob) - 4) % 4:
        return None
    return np.frombuffer(blob, dtype="<u4", offset=4)


def distance(a: bytes | None, b: bytes | None) -> float | None:
    """Bit error rate (0 = identical, about 0.5 = unrelated) at the best small offset.

    None when either signature is missing or they overlap too little to judge.
    """
    x, y = decode_signature(a), decode_signature(b)
    if x is None or y is None:
        return None
    need = max(MIN_OVERLAP_FRAMES, min(x.size, y.size) * 3 // 4)
    best: float | None = None
    for shift in range(-MAX_OFFSET_FRAMES, MAX_OFFSET_FRAMES + 1):
        xs = x[max(0, shift):]
        ys = y[max(0, -shift):]
        n = min(xs.size, ys.size)
        if n < need:
            continue
        errors = int(np.bitwise_count(xs[:n] ^ ys[:n]).sum())
        ber = errors / (n * (BANDS - 1))
        if best is None or ber < best:
            best = ber
    return best


def same_audio(a: bytes | None, b: bytes | None) -> bool | None:
    """True/False when the signatures can be compared, None when they cannot."""
    d = distance(a, b)
    return None if d is None else d <= SAME_AUDIO_MAX_DISTANCE


__all__ = ["SignatureBuilder", "signature_bits", "decode_signature", "distance", "same_audio",
           "SAME_AUDIO_MAX_DISTANCE", "MAX_SECONDS", "SAMPLE_RATE"]
