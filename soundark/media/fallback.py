"""The second decoder: libsndfile (through the ``soundfile`` wheel) for files FFmpeg refuses.

Real collections hold files that FFmpeg will not open but the reference libraries
decode in full. The case met most (docs/scan.md, "Decoders"): an Ogg Vorbis file
whose identification header ends in a framing byte with junk in its seven unused
bits. The Vorbis I specification (section 4.2.2) reads the framing flag as one
bit, and so does libvorbis; FFmpeg's Ogg demuxer compares the whole byte with 1
and answers "Invalid data found when processing input". libsndfile 1.2 (bundled
in the ``soundfile`` wheel) reads WAV/AIFF/FLAC/Ogg Vorbis/Ogg Opus/MP3 and the
older PCM formats through the Xiph reference libraries.

:func:`probe_pcm` decodes a file in full with libsndfile and returns its facts;
:func:`pcm_blocks` yields the decoded audio as float32 blocks of shape
``(frames, channels)`` at the source rate, for the encoder and any other PCM
consumer. Only files FFmpeg cannot read come here: a file FFmpeg reads but finds
truncated or corrupt stays refused (a second opinion must not launder damage).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile

from soundark.errors import BadInput
from soundark.media.deadline import Deadline
from soundark.media.fingerprint import SignatureBuilder
from soundark.model import AudioFacts

DECODER = "libsndfile"
BLOCK_FRAMES = 65536
# Decoding shorter than the frame count the headers declare by more than this is truncation.
TRUNCATION_SLACK_MS = 100

# libsndfile's major formats and subtypes in soundark's container and codec names.
_CONTAINERS = {"OGG": "ogg", "WAV": "wav", "WAVEX": "wav", "RF64": "wav", "W64": "w64",
               "AIFF": "aiff", "FLAC": "flac", "MP3": "mp3", "CAF": "caf", "AU": "au"}
_CODECS = {"VORBIS": "vorbis", "OPUS": "opus", "FLAC": "flac", "MPEG_LAYER_III": "mp3",
           "MPEG_LAYER_II": "mp2", "MPEG_LAYER_I": "mp1", "ALAC_16": "alac", "ALAC_20": "alac",
           "ALAC_24": "alac", "ALAC_32": "alac", "PCM_16": "pcm_s16", "PCM_24": "pcm_s24",
           "PCM_32": "pcm_s32", "PCM_U8": "pcm_u8", "PCM_S8": "pcm_s8", "FLOAT": "pcm_f32",
           "DOUBLE": "pcm_f64", "ULAW": "pcm_mulaw", "ALAW": "pcm_alaw"}


@dataclass(frozen=True)
class PcmSource:
    """An open libsndfile reader and what its headers say."""

    reader: soundfile.SoundFile
    container: str
    codec: str
    sample_rate: int
    channels: int
    declared_frames: int

    @property
    def declared_ms(self) -> int:
        """The declared length to the nearest millisecond, as probe rounds a container's."""
        return round(self.declared_frames * 1000 / self.sample_rate)


def describe_error(e: BaseException) -> str:
    """libsndfile's own message, on one line, without the file name soundfile prepends."""
    text = " ".join(str(e).split())
    if text.startswith("Error opening "):
        text = text.split(": ", 1)[-1]
    return text.rstrip(".")[:200] or type(e).__name__


@contextmanager
def open_pcm(path: Path | bytes, subject: object = None) -> Iterator[PcmSource]:
    """Open *path* (or a file's bytes) with libsndfile; BadInput carries libsndfile's own message."""
    subject = subject if subject is not None else path
    try:
        reader = soundfile.SoundFile(io.BytesIO(path) if isinstance(path, bytes) else str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise BadInput(subject, describe_error(e)) from e
    except OSError as e:
        raise BadInput(subject, f"cannot read: {e.strerror or e}") from e
    with reader:
        if reader.samplerate <= 0 or reader.channels <= 0:
            raise BadInput(subject, "no audio: zero rate or channels")
        yield PcmSource(reader, _CONTAINERS.get(reader.format, reader.format.lower()),
                        _CODECS.get(reader.subtype, reader.subtype.lower()), reader.samplerate,
                        reader.channels, max(0, reader.frames))


def pcm_blocks(source: PcmSource, block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """The audio as C-contiguous float32 blocks of shape ``(frames, channels)``.

    Stops at the first block libsndfile cannot decode, as a player would; the caller
    compares the count with :attr:`PcmSource.declared_frames`.
    """
    while True:
        try:
            block = source.reader.read(block_frames, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError) as e:
            at = source.reader.tell() / source.sample_rate
            raise BadInput(source.reader.name, f"cannot decode at {at:.1f} s ({describe_error(e)})") from e
        if not len(block):
            return
        yield np.ascontiguousarray(block)


def av_frames(source: PcmSource) -> Iterator[av.AudioFrame]:
    """The blocks of :func:`pcm_blocks` as packed float PyAV frames at the source rate.

    The encoder resamples and downmixes these exactly as it does FFmpeg's own frames.
    """
    layout = {1: "mono", 2: "stereo"}.get(source.channels) or av.AudioLayout(source.channels).name
    for block in pcm_blocks(source):
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout=layout)
        frame.sample_rate = source.sample_rate
        yield frame


def probe_pcm(path: Path, size: int, signature: SignatureBuilder | None = None,
              deadline: Deadline | None = None) -> AudioFacts:
    """Decode *path* in full with libsndfile and return its facts (``decoder='libsndfile'``).

    *signature*, when given, is fed every decoded block (the acoustic signature of the scan);
    *deadline*, when given, is checked between blocks.
    """
    frames = 0
    with open_pcm(path) as source:
        for block in pcm_blocks(source):
            if deadline is not None:
                deadline.check(path)
            frames += len(block)
            if signature is not None:
                signature.add_pcm(block, source.sample_rate)
    if frames == 0:
        raise BadInput(path, "nothing could be decoded from it")
    duration_ms = round(frames * 1000 / source.sample_rate)
    declared_ms = source.declared_ms
    if duration_ms < declared_ms - TRUNCATION_SLACK_MS:
        raise BadInput(path, f"truncated: decodes to {duration_ms / 1000:.2f} s of the "
                             f"{declared_ms / 1000:.2f} s its headers declare")
    return AudioFacts(container=source.container, codec=source.codec,
                      bitrate=round(size * 8 * 1000 / duration_ms) if duration_ms else None,
                      sample_rate=source.sample_rate, channels=source.channels,
                      duration_ms=duration_ms, decoder=DECODER)


__all__ = ["DECODER", "PcmSource", "open_pcm", "pcm_blocks", "av_frames", "probe_pcm", "describe_error"]
