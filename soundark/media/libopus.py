"""The libopus that PyAV bundles, called through ctypes (RFC 6716; API of opus.h, codes of opus_defines.h).

Two users: :mod:`soundark.media.transcode` encodes with :class:`OpusEncoder` (PyAV's own
encode path pushes every 20 ms frame through a filter graph and costs about a tenth more
CPU for the same bytes from the same library), and :mod:`soundark.media.qa` decodes outputs
with ``opus_decode_float``: a path independent of FFmpeg's Opus decoder.

:func:`load_libopus` returns None when the library cannot be found or its variadic
``opus_encoder_ctl`` does not work through ctypes; callers then fall back to PyAV.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
from typing import Any

import av

from soundark.errors import BadInput, EnvironmentProblem

OPUS_RATE = 48_000  # libopus encodes at 48 kHz here (RFC 7845 section 5.1: any rate decodes)
APPLICATION_AUDIO = 2049
_SET_BITRATE, _GET_BITRATE = 4002, 4003
_SET_VBR, _GET_VBR = 4006, 4007
_SET_COMPLEXITY, _GET_COMPLEXITY = 4010, 4011
_SET_VBR_CONSTRAINT, _GET_VBR_CONSTRAINT = 4020, 4021
_GET_LOOKAHEAD = 4027
_MAX_PACKET = 4000  # bytes; a 120 ms packet holds at most 6 x 1275 + 7
FRAME_MS = (10, 20, 40, 60, 80, 100, 120)  # the frame sizes opus_encode_float accepts


class OpusEncoder:
    """One libopus encoder (``opus_encoder_create``), set up and checked.

    *bitrate* is for this many *channels* (the caller scales it); *vbr* is ``on``,
    ``constrained`` or ``off`` (libopus names).
    """

    def __init__(self, channels: int, bitrate: int, complexity: int, vbr: str, frame_ms: int) -> None:
        lib = load_libopus()
        if lib is None:
            raise EnvironmentProblem("libopus", "the libopus bundled with PyAV cannot be loaded")
        self._lib, self.channels = lib, channels
        self.frame_samples = OPUS_RATE * frame_ms // 1000
        if frame_ms not in FRAME_MS:
            raise BadInput("frame_ms", f"{frame_ms} ms is not an Opus frame size")
        error = ctypes.c_int(0)
        self._enc = lib.opus_encoder_create(OPUS_RATE, channels, APPLICATION_AUDIO,
                                            ctypes.byref(error))
        if not self._enc or error.value != 0:
            raise EnvironmentProblem("libopus", f"cannot create an encoder (error {error.value})")
        wanted = {(_SET_BITRATE, _GET_BITRATE): bitrate,
                  (_SET_COMPLEXITY, _GET_COMPLEXITY): complexity,
                  (_SET_VBR, _GET_VBR): int(vbr != "off"),
                  (_SET_VBR_CONSTRAINT, _GET_VBR_CONSTRAINT): int(vbr == "constrained")}
        for (set_request, get_request), value in wanted.items():
            # a value libopus refuses or clamps must not pass silently (PyAV ignores typos)
            if self._ctl(set_request, value) != 0 or self._get(get_request) != value:
                self.close()
                raise BadInput("opus settings", f"libopus refused request {set_request} = {value}")
        self.pre_skip = self._get(_GET_LOOKAHEAD)
        self._packet = ctypes.create_string_buffer(_MAX_PACKET)

    def _ctl(self, request: int, value: int) -> int:
        return int(self._lib.opus_encoder_ctl(ctypes.c_void_p(self._enc), ctypes.c_int(request),
                                              ctypes.c_int(value)))

    def _get(self, request: int) -> int:
        out = ctypes.c_int32(0)
        if self._lib.opus_encoder_ctl(ctypes.c_void_p(self._enc), ctypes.c_int(request),
                                      ctypes.byref(out)) != 0:
            raise EnvironmentProblem("libopus", f"request {request} failed")
        return out.value

    def encode(self, address: int) -> bytes:
        """Encode one frame of interleaved float PCM at *address*; return the packet."""
        n = self._lib.opus_encode_float(self._enc, address, self.frame_samples, self._packet,
                                        _MAX_PACKET)
        if n < 0:
            raise EnvironmentProblem("libopus", f"refused the audio (error {n})")
        return ctypes.string_at(self._packet, n)  # one copy of n bytes (.raw[:n] made two)

    def close(self) -> None:
        if self._enc:
            self._lib.opus_encoder_destroy(self._enc)
            self._enc = None


@functools.lru_cache(maxsize=1)
def load_libopus() -> Any:
    """The libopus that PyAV bundles, through ctypes (None when it cannot be found).

    The encoder runs on it directly, and QA decodes outputs with it: an independent
    path from FFmpeg's decoder.
    """
    folder = os.path.dirname(av.__file__)
    for pattern in (folder + ".libs/libopus*.so*", folder + "/.dylibs/libopus*"):
        for candidate in glob.glob(pattern):
            try:
                lib = ctypes.CDLL(candidate)
                _declare(lib)
                if _ctl_round_trip(lib):
                    return lib
            except (OSError, AttributeError):
                continue
    return None


def _declare(lib: Any) -> None:
    """Argument and result types of the functions used (opus.h), so ctypes converts correctly."""
    lib.opus_get_version_string.restype = ctypes.c_char_p
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_decode_float.restype = ctypes.c_int
    lib.opus_decode_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32,
                                      ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_packet_get_nb_samples.restype = ctypes.c_int
    lib.opus_packet_get_nb_samples.argtypes = [ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32]
    lib.opus_encoder_create.restype = ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int,
                                        ctypes.POINTER(ctypes.c_int)]
    lib.opus_encode_float.restype = ctypes.c_int32
    lib.opus_encode_float.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                      ctypes.c_char_p, ctypes.c_int32]
    lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_encoder_ctl.restype = ctypes.c_int  # variadic: no argtypes


def _ctl_round_trip(lib: Any) -> bool:
    """Whether variadic ``opus_encoder_ctl`` calls work through ctypes on this platform.

    Where the C calling convention passes variadic arguments differently (e.g. Apple
    arm64), a set value does not read back; then PyAV's encoder is used instead.
    """
    error = ctypes.c_int(0)
    enc = lib.opus_encoder_create(OPUS_RATE, 2, APPLICATION_AUDIO, ctypes.byref(error))
    if not enc or error.value != 0:
        return False
    try:
        for set_request, get_request, value in ((_SET_BITRATE, _GET_BITRATE, 75_000),
                                                (_SET_COMPLEXITY, _GET_COMPLEXITY, 7)):
            out = ctypes.c_int32(0)
            if (lib.opus_encoder_ctl(ctypes.c_void_p(enc), ctypes.c_int(set_request), ctypes.c_int(value)) != 0
                    or lib.opus_encoder_ctl(ctypes.c_void_p(enc), ctypes.c_int(get_request),
                                            ctypes.byref(out)) != 0
                    or out.value != value):
                return False
        return True
    finally:
        lib.opus_encoder_destroy(ctypes.c_void_p(enc))


@functools.lru_cache(maxsize=1)
def libopus_version() -> str:
    """``libopus 1.5.2``: the version of the libopus PyAV bundles (or 'libopus' if unknown)."""
    lib = load_libopus()
    if lib is None:
        return "libopus"
    return lib.opus_get_version_string().decode("ascii", "replace")
