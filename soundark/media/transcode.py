"""Decode any FFmpeg input, resample to 48 kHz and encode Ogg Opus (RFC 7845, RFC 6716).

The encoder is libopus: constrained VBR, complexity 10, application ``audio``,
20 ms frames. PyAV decodes and resamples; the libopus that PyAV bundles is then
called directly (:mod:`soundark.media.libopus`) and its packets are paged into Ogg by
:mod:`soundark.media.ogg` (RFC 3533, RFC 7845 section 3). When that libopus cannot be
loaded, PyAV's encoder and Ogg muxer are used.

Mono stays mono (at 5/8 of the stereo rate), stereo stays stereo and anything
wider is downmixed to stereo by libswresample's standard matrix: Opus at 75 kbit/s
has no bits to spare for surround, and almost all music is stereo.

Granule positions are a running count of 48 kHz samples including pre-skip, and
the last page's granule trims the padding of the last packet (RFC 7845 section 4).
The Ogg serial is given by the caller and nothing else varies, so the same input
and settings give the same bytes. (On the PyAV path frame ``pts`` are set
explicitly, else the granules come out 312 samples long, and the muxer runs with
``fflags=+bitexact``.)

While decoding, the PCM is measured (samples in and out, peak, RMS) so that
:mod:`soundark.media.qa` can check the output against what actually went in.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from soundark.errors import BadInput, EnvironmentProblem
from soundark.media import fallback, libopus
from soundark.media.downmix import resampler as _resampler
from soundark.media.libopus import OPUS_RATE, OpusEncoder, libopus_version
from soundark.media.ogg import PAGE_HEADER, OggWriter, opus_head, opus_tags, read_page, with_crc
from soundark.media.probe import declared_ms

FRAME_SAMPLES = 960  # 20 ms at 48 kHz
# Sources larger than this are decoded from disk rather than from one in-memory copy.
MAX_IN_MEMORY = 512 * 1024 * 1024
_TIME_BASE = Fraction(1, OPUS_RATE)
_BATCH_FRAMES = 25  # Opus frames measured and encoded per batch of decoded audio
_RESAMPLE_BLOCK = 8192  # source samples per call into the resampler (see _resampled)


@dataclass(frozen=True)
class OpusSettings:
    """How the Opus tier is encoded. ``bitrate`` is for stereo; see :func:`bitrate_for`."""

    bitrate: int = 75_000
    complexity: int = 10
    # Constrained VBR: unconstrained VBR overshot 75 kbit/s by 10-17 % on music-like test
    # audio (82-88 kbit/s) and the plan's byte budget is a promise; constrained held 76.
    vbr: str = "constrained"  # on | constrained | off (libopus names)
    frame_ms: int = 20

    def codec_options(self) -> dict[str, str]:
        return {"vbr": self.vbr, "compression_level": str(self.complexity),
                "application": "audio", "frame_duration": str(self.frame_ms)}


def bitrate_for(stereo_bitrate: int, channels: int) -> int:
    """Bit rate for an output of *channels* (1 or 2): mono gets 5/8 of the stereo rate.

    libopus spends most of a stereo stream on the mid channel; 5/8 keeps a mono
    file at about the same perceived quality (75 kbit/s stereo -> 47 kbit/s mono).
    """
    if channels <= 1:
        return int(round(stereo_bitrate * 5 / 8 / 1000) * 1000) or 6_000
    return stereo_bitrate


@dataclass(frozen=True)
class PcmFacts:
    """What went through the decoder: the reference QA checks the output against."""

    codec: str
    source_rate: int
    source_channels: int
    source_samples: int          # decoded, at source_rate
    declared_ms: int | None      # what the container says the duration is
    out_rate: int
    out_channels: int
    out_samples: int             # fed to the encoder (or measured), at out_rate
    peak: float                  # of the measured float PCM, 0..1+
    rms_db: float                # dBFS of the measured float PCM; -inf for digital silence
    bitrate: int | None = None   # source bit rate as the container reports it

    @property
    def duration_ms(self) -> int:
        return int(round(self.source_samples * 1000 / self.source_rate)) if self.source_rate else 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Meter:
    """Running peak and sum of squares over float frames."""

    def __init__(self) -> None:
        self.peak = 0.0
        self.sumsq = 0.0
        self.values = 0
        self.samples = 0

    def add(self, frame: av.AudioFrame) -> None:
        # packed float: one plane; frombuffer avoids to_ndarray's per-call copy and vstack
        data = np.frombuffer(frame.planes[0], dtype=np.float32,
                             count=frame.samples * len(frame.layout.channels))
        if data.size:
            self.peak = max(self.peak, float(data.max()), -float(data.min()))
            self.sumsq += float(np.dot(data, data))
            self.values += data.size
        self.samples += frame.samples

    def add_array(self, data: np.ndarray) -> None:
        """Measure float samples; the caller counts ``samples`` (frames, not values)."""
        if data.size:
            self.peak = max(self.peak, float(data.max()), -float(data.min()))
            self.sumsq += float(np.dot(data, data))
            self.values += data.size

    def rms_db(self) -> float:
        if not self.values or self.sumsq <= 0.0:
            return -math.inf
        return 10.0 * math.log10(self.sumsq / self.values)


def open_input(source: Any) -> Any:
    """Open *source* (a path, or the file's bytes) as a PyAV input container."""
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return av.open(io.BytesIO(bytes(source)), "r", metadata_errors="replace")
        # tags that are not valid UTF-8 must not stop the audio (the scan reported them)
        return av.open(os.fspath(source), "r", metadata_errors="replace")
    except av.error.FFmpegError as e:
        raise BadInput(_name(source), f"not readable audio ({_ffmpeg_reason(e)})") from e


def _name(source: Any) -> str:
    return "<bytes>" if isinstance(source, (bytes, bytearray, memoryview)) else os.fspath(source)


def _ffmpeg_reason(e: Exception) -> str:
    text = getattr(e, "strerror", None) or str(e)
    return " ".join(str(text).split())[:200]


@dataclass
class _Decoded:
    """State shared between the decode loop and its caller."""

    codec: str = ""
    source_rate: int = 0
    source_channels: int = 0
    source_samples: int = 0
    declared_ms: int | None = None
    bitrate: int | None = None


def _decode_resampled(container: Any, subject: str, out_layout: str | None, rate: int | None,
                      state: _Decoded) -> Iterator[av.AudioFrame]:
    """Yield packed float frames of the first audio stream, converted to *out_layout*/*rate*."""
    if not container.streams.audio:
        raise BadInput(subject, "no audio stream")
    stream = container.streams.audio[0]
    ctx = stream.codec_context
    state.codec = ctx.name
    state.source_rate = ctx.sample_rate or 0
    state.source_channels = ctx.channels or 0
    state.declared_ms = declared_ms(container, stream)
    state.bitrate = ctx.bit_rate or container.bit_rate or None
    return _resampled(container.decode(stream), subject, out_layout, rate, state)


def _resampled(frames: Iterator[av.AudioFrame], subject: str, out_layout: str | None,
               rate: int | None, state: _Decoded) -> Iterator[av.AudioFrame]:
    """Resample in blocks of ``_RESAMPLE_BLOCK`` source samples, gathered in an AudioFifo.

    Decoders hand out small frames (Vorbis ~670 samples, MP3 1152); PyAV's resampler
    pushes each through a filter graph, whose per-call cost was 55 % of the resampling
    CPU on real Vorbis. libswresample is a stream filter, so the samples out are the
    same whatever the block size.
    """
    resampler = None
    fifo = av.AudioFifo()
    try:
        for frame in frames:
            if not frame.samples:
                continue
            state.source_samples += frame.samples
            state.source_rate = state.source_rate or frame.sample_rate
            if resampler is None:
                resampler = _resampler(frame, out_layout, rate)
            frame.pts = None  # sources with broken timestamps must not upset the resampler
            fifo.write(frame)
            if fifo.samples >= _RESAMPLE_BLOCK:
                yield from resampler.resample(fifo.read())
        if resampler is not None:
            if fifo.samples:
                yield from resampler.resample(fifo.read())
            yield from resampler.resample(None)
    except av.error.FFmpegError as e:
        at = state.source_samples / state.source_rate if state.source_rate else 0.0
        raise BadInput(subject, f"cannot decode at {at:.1f} s ({_ffmpeg_reason(e)})") from e
    except ValueError as e:  # PyAV raises ValueError for layouts/formats it cannot convert
        raise BadInput(subject, f"cannot convert audio ({e})") from e


# (channels, a function of (layout, rate) giving the resampled frames)
_FrameSource = tuple[int, Callable[[str | None, int | None], Iterator[av.AudioFrame]]]


def open_decoded(stack: ExitStack, source: Any, state: _Decoded, decoder: str | None) -> _FrameSource:
    """Open *source* with *decoder*: 'ffmpeg', 'libsndfile' or None (FFmpeg, else libsndfile).

    The scan records which decoder read a file; encode asks the same one, so a file
    only libsndfile reads is encoded from libsndfile's PCM (media/fallback.py).
    """
    subject = _name(source)
    ffmpeg_reason = ""
    if decoder != fallback.DECODER:
        try:
            container = stack.enter_context(open_input(source))
        except BadInput as e:
            if decoder == "ffmpeg":
                raise
            ffmpeg_reason = e.reason
        else:
            if container.streams.audio or decoder == "ffmpeg":
                if not container.streams.audio:
                    raise BadInput(subject, "no audio stream")
                channels = container.streams.audio[0].codec_context.channels or 2
                return channels, lambda layout, rate: _decode_resampled(
                    container, subject, layout, rate, state)
            ffmpeg_reason = "no audio stream"
    try:
        pcm = stack.enter_context(fallback.open_pcm(bytes(source) if isinstance(
            source, (bytearray, memoryview)) else source, subject))
    except BadInput as e:
        if not ffmpeg_reason:
            raise
        raise BadInput(subject, f"not readable audio: ffmpeg: {ffmpeg_reason}; "
                                f"{fallback.DECODER}: {e.reason}") from e
    state.codec, state.source_rate, state.source_channels = pcm.codec, pcm.sample_rate, pcm.channels
    state.declared_ms = pcm.declared_ms or None
    return pcm.channels, lambda layout, rate: _resampled(fallback.av_frames(pcm), subject, layout,
                                                         rate, state)


def output_channels(source_channels: int) -> int:
    """Mono stays mono; everything else becomes stereo (multichannel is downmixed)."""
    return 1 if source_channels == 1 else 2


def transcode_to_opus(source: Any, dest: Path, settings: OpusSettings = OpusSettings(),
                      serial: int = 0, decoder: str | None = None) -> PcmFacts:
    """Encode *source* (path or bytes) into the Ogg Opus file *dest*; return the PCM facts.

    *serial* is the Ogg stream serial number: bit-exact output would otherwise always
    use 0, which some tools warn about; derive it from the source to stay deterministic.
    *decoder* is the one the scan recorded (see :func:`open_decoded`).

    Raises BadInput when the source cannot be opened, has no audio, fails to
    decode, or decodes to nothing; EnvironmentProblem when *dest* cannot be written.
    """
    subject = _name(source)
    state = _Decoded()
    with ExitStack() as stack:
        source_channels, frames_for = open_decoded(stack, source, state, decoder)
        channels = output_channels(source_channels)
        layout = "mono" if channels == 1 else "stereo"
        frames = frames_for(layout, OPUS_RATE)
        if libopus.load_libopus() is not None:
            meter = _encode_direct(frames, Path(dest), subject, layout, settings, state, serial)
        else:
            try:
                out = av.open(os.fspath(dest), "w", format="ogg",
                              options={"fflags": "+bitexact",
                                       "serial_offset": str(serial & 0x7FFFFFFF)})
            except (av.error.FFmpegError, OSError) as e:
                raise EnvironmentProblem(dest, f"cannot write ({_ffmpeg_reason(e)})") from e
            with out:
                meter = _encode(frames, out, subject, layout, settings)
            set_opus_input_rate(Path(dest), state.source_rate)
    if state.source_samples == 0:
        raise BadInput(subject, "decodes to no audio at all")
    return PcmFacts(codec=state.codec, source_rate=state.source_rate,
                    source_channels=state.source_channels, source_samples=state.source_samples,
                    declared_ms=state.declared_ms, out_rate=OPUS_RATE, out_channels=channels,
                    out_samples=meter.samples, peak=meter.peak, rms_db=meter.rms_db(),
                    bitrate=state.bitrate)


def _encode(frames: Iterator[av.AudioFrame], out: Any, subject: str, layout: str,
            settings: OpusSettings) -> _Meter:
    stream = out.add_stream("libopus", rate=OPUS_RATE, layout=layout)
    ctx = stream.codec_context
    ctx.format = "flt"  # the default, s16, would cost a conversion pass and 16-bit rounding
    ctx.bit_rate = bitrate_for(settings.bitrate, 1 if layout == "mono" else 2)
    ctx.options = settings.codec_options()
    fifo = av.AudioFifo()
    meter = _Meter()
    frame_samples = OPUS_RATE * settings.frame_ms // 1000
    written = 0

    def send(frame: av.AudioFrame | None) -> None:
        nonlocal written
        if frame is not None:
            # pts = running sample count: the muxer derives granule positions from it
            frame.pts = written
            frame.time_base = _TIME_BASE
            written += frame.samples
        try:
            for packet in stream.encode(frame):
                out.mux(packet)
        except av.error.FFmpegError as e:
            raise EnvironmentProblem(subject, f"libopus refused the audio ({_ffmpeg_reason(e)})") from e

    for frame in frames:
        meter.add(frame)
        fifo.write(frame)
        while fifo.samples >= frame_samples:
            send(fifo.read(frame_samples))
    if fifo.samples:
        send(fifo.read(fifo.samples))
    send(None)
    return meter


def _encode_direct(frames: Iterator[av.AudioFrame], dest: Path, subject: str, layout: str,
                   settings: OpusSettings, state: _Decoded, serial: int) -> _Meter:
    channels = 1 if layout == "mono" else 2
    encoder = OpusEncoder(channels, bitrate_for(settings.bitrate, channels), settings.complexity,
                          settings.vbr, settings.frame_ms)
    try:
        with _open_output(dest) as f:
            return _encode_stream(frames, encoder, OggWriter(f, serial), subject, state)
    finally:
        encoder.close()


def _open_output(dest: Path) -> Any:
    try:
        return open(dest, "wb")  # the caller's with-block closes it
    except OSError as e:
        raise EnvironmentProblem(dest, f"cannot write ({e.strerror or e})") from e


def _encode_stream(frames: Iterator[av.AudioFrame], encoder: OpusEncoder, ogg: OggWriter,
                   subject: str, state: _Decoded) -> _Meter:
    """Decode, measure, cut into frames and encode; the OpusHead waits for the source rate.

    Decoded frames are copied into one buffer and measured and encoded a batch at a
    time (about half a second), so numpy is called per batch, not per decoded frame.
    """
    meter = _Meter()
    channels = encoder.channels
    step = encoder.frame_samples * channels  # floats per Opus frame
    batch = step * _BATCH_FRAMES
    pending = np.zeros(batch + step * 8, dtype=np.float32)
    filled = metered = packets = 0
    for frame in frames:
        if not packets and not filled:
            ogg.page([opus_head(channels, encoder.pre_skip, state.source_rate)], 0, 0x02)
            ogg.page([opus_tags(libopus_version())], 0)
        n = frame.samples * channels
        if filled + n > pending.size:
            pending = np.concatenate([pending[:filled], np.zeros(n + batch, np.float32)])
        pending[filled:filled + n] = np.frombuffer(frame.planes[0], dtype=np.float32, count=n)
        filled += n
        meter.samples += frame.samples
        if filled >= batch:
            meter.add_array(pending[metered:filled])
            done = 0
            base = pending.ctypes.data
            while filled - done >= step:
                packets += 1
                ogg.audio(encoder.encode(base + 4 * done), packets * encoder.frame_samples)
                done += step
            pending[:filled - done] = pending[done:filled]
            filled = metered = filled - done
    if not packets and not filled:
        raise BadInput(subject, "decodes to no audio at all")
    meter.add_array(pending[metered:filled])
    # Pad with silence until the decoder has put out pre-skip + every sample (RFC 7845 4.4).
    end = encoder.pre_skip + meter.samples
    left = -(-end // encoder.frame_samples) - packets  # frames still to encode, >= filled / step
    tail = np.zeros(left * step, dtype=np.float32)
    tail[:filled] = pending[:filled]
    for i in range(left):
        packets += 1
        ogg.audio(encoder.encode(tail.ctypes.data + 4 * i * step), packets * encoder.frame_samples)
    ogg.end(end)
    return meter

def measure_source(source: Any, decoder: str | None = None) -> PcmFacts:
    """Decode *source* completely (no encoding) and measure it: QA of a kept original."""
    subject = _name(source)
    state = _Decoded()
    meter = _Meter()
    with ExitStack() as stack:
        _, frames_for = open_decoded(stack, source, state, decoder)
        for frame in frames_for(None, None):
            meter.add(frame)
    if state.source_samples == 0:
        raise BadInput(subject, "decodes to no audio at all")
    return PcmFacts(codec=state.codec, source_rate=state.source_rate,
                    source_channels=state.source_channels, source_samples=state.source_samples,
                    declared_ms=state.declared_ms, out_rate=state.source_rate,
                    out_channels=state.source_channels, out_samples=meter.samples,
                    peak=meter.peak, rms_db=meter.rms_db(), bitrate=state.bitrate)


def read_source(path: Path, limit: int = MAX_IN_MEMORY) -> tuple[bytes | None, int]:
    """The bytes of *path* (or None when larger than *limit*) and its size.

    Decoding the very bytes that were hashed means a file changed under us cannot
    slip through between the hash check and the encode.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                return None, size
            return f.read(), size
    except PermissionError as e:
        raise BadInput(path, "cannot read the source (permission denied)") from e
    except FileNotFoundError as e:
        raise BadInput(path, "source file is gone (deleted or moved since the scan): run `soundark scan` "
                             "on its folder again, then `soundark encode --retry-failed`") from e
    except IsADirectoryError as e:
        raise BadInput(path, "source path is a folder") from e
    except OSError as e:
        raise BadInput(path, f"cannot read the source ({e.strerror or e})") from e


def encoder_description(settings: OpusSettings) -> str:
    """The ``encoded.encoder`` value: what produced a file, enough to redo it."""
    from soundark import __version__

    return (f"soundark {__version__}; {libopus_version()}; {settings.bitrate} bit/s VBR {settings.vbr}; "
            f"complexity {settings.complexity}; {settings.frame_ms} ms; PyAV {av.__version__}")


def refuse_encrypted(path: Path, data: bytes | None = None) -> None:
    """Raise EncryptedInput for DRM-protected MP4/ASF audio (probe's header checks)."""
    from soundark.errors import EncryptedInput
    from soundark.media import probe

    if data is not None:
        head, size = data[:65536], len(data)
    else:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(65536)
    if probe._is_encrypted(Path(path), head, size):  # noqa: SLF001 - one media package
        raise EncryptedInput(path, probe.ENCRYPTED_REASON)


def set_opus_input_rate(path: Path, rate: int) -> None:
    """Record the source's sample rate in OpusHead (RFC 7845 5.1: informational only).

    FFmpeg writes 48000 there whatever the input; players use the field to pick a
    rate when decoding back to PCM, and archivists to see what the source was.
    """
    if not 0 < rate < 2**32:
        return
    with open(path, "r+b") as f:
        page = bytearray(f.read(PAGE_HEADER.size + 255))
        found = read_page(page)
        if found is None or found.body_start > len(page):
            raise BadInput(path, "not an Ogg file")
        if len(page) < found.end:
            page += f.read(found.end - len(page))
        body = found.body_start
        if page[body:body + 8] != b"OpusHead" or found.end > len(page):
            raise BadInput(path, "first page is not an OpusHead")
        page = page[:found.end]
        page[body + 12:body + 16] = int(rate).to_bytes(4, "little")
        f.seek(0)
        f.write(with_crc(page))
