"""The encoder's channel conversion (libswresample through PyAV), shared by encode and the scan.

Encode makes mono of mono and stereo of everything else (:func:`resampler`). FFmpeg knows how
to downmix the channel layouts it has names for (5.1, 7.1, 7.1.4, 22.2 ...); a file of 9, 32
or 64 channels in no named layout has no downmix matrix, and encode would fail on it. The scan
asks :func:`check_downmix` of a file's first frame, so such a file is refused at scan, in
the same words, rather than accepted and failed later: scan and encode agree.
"""

from __future__ import annotations

import av

from soundark.errors import BadInput
from soundark.media.libopus import OPUS_RATE


def resampler(frame: av.AudioFrame, out_layout: str | None, rate: int | None) -> av.AudioResampler:
    """A resampler from *frame*'s format to packed float *out_layout* at *rate*."""
    source_channels = len(frame.layout.channels)
    layout = out_layout or ("mono" if source_channels == 1 else "stereo")
    options = None
    if source_channels > 2:
        # The standard downmix adds centre and surrounds at -3 dB into each side; on float
        # output libswresample does not normalise, so loud multichannel would clip in libopus.
        options = {"rematrix_maxval": "1.0"}
    return av.AudioResampler(format="flt", layout=layout, rate=rate or frame.sample_rate,
                             options=options)


def check_downmix(frame: av.AudioFrame, subject: object) -> None:
    """Raise BadInput (about *subject*) when encode could not downmix *frame* to stereo."""
    channels = len(frame.layout.channels)
    if channels <= 2:
        return
    pts = frame.pts
    try:
        frame.pts = None  # as encode resamples: timestamps play no part
        resampler(frame, "stereo", OPUS_RATE).resample(frame)
    except (av.error.FFmpegError, ValueError) as e:
        raise BadInput(subject, f"{channels} channels in a layout FFmpeg cannot downmix to stereo "
                                "for encoding; refused") from e
    finally:
        frame.pts = pts


__all__ = ["resampler", "check_downmix"]
