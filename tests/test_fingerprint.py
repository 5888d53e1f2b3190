"""The acoustic signature (soundark/media/fingerprint.py) on real decoded audio."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from soundark.media.fingerprint import (
    MAGIC,
    SAME_AUDIO_MAX_DISTANCE,
    SignatureBuilder,
    decode_signature,
    distance,
    same_audio,
)
from soundark.media.probe import probe
from soundark.media.synth import Voice, make_file, render

TUNE_A = Voice(notes=(60, 64, 67, 72, 67, 64, 62, 59), noise=0.02, seed=1)
TUNE_B = Voice(notes=(57, 55, 53, 52, 62, 65, 69, 71), note_seconds=0.25, noise=0.02, seed=2)


def _signature(path: Path) -> bytes:
    builder = SignatureBuilder()
    probe(path, signature=builder)
    return builder.finish()


def test_same_music_through_lossy_codecs_is_close_and_other_music_is_far(tmp_path: Path) -> None:
    flac = _signature(make_file(tmp_path / "a", "flac", 4.0, voice=TUNE_A))
    opus = _signature(make_file(tmp_path / "a", "opus", 4.0, voice=TUNE_A, bitrate=32000))  # 48 kHz
    mp3 = _signature(make_file(tmp_path / "a", "mp3", 4.0, voice=TUNE_A, bitrate=64000))
    other = _signature(make_file(tmp_path / "b", "flac", 4.0, voice=TUNE_B))
    assert distance(flac, flac) == 0.0
    for copy in (opus, mp3):
        d = distance(flac, copy)
        assert d is not None and d <= SAME_AUDIO_MAX_DISTANCE, d
    far = distance(flac, other)
    assert far is not None and far > 0.4
    assert same_audio(flac, mp3) is True and same_audio(flac, other) is False


def test_pcm_blocks_give_the_signature_of_decoded_frames(tmp_path: Path) -> None:
    samples = render(TUNE_A, 4.0, 44100, 2)
    wav = _signature(make_file(tmp_path / "a", "wavf32", 4.0, voice=TUNE_A))
    builder = SignatureBuilder()
    interleaved = np.ascontiguousarray(samples.T)
    for start in range(0, interleaved.shape[0], 3000):  # blocks of any size, as a fallback decoder gives
        builder.add_pcm(interleaved[start:start + 3000], 44100)
    assert builder.finish() == wav


def test_a_small_time_offset_is_found(tmp_path: Path) -> None:
    samples = render(TUNE_A, 6.0, 44100, 1)[0]
    late = np.concatenate([np.zeros(22050, np.float32), samples[:-22050]])  # half a second later
    a, b = SignatureBuilder(), SignatureBuilder()
    a.add_pcm(samples, 44100)
    b.add_pcm(late, 44100)
    d = distance(a.finish(), b.finish())
    # 5.4 hops: the whole hops are found; the rest (a fraction of a hop) costs bits, not the verdict
    assert d is not None and d <= SAME_AUDIO_MAX_DISTANCE


def test_too_short_or_foreign_values_cannot_be_compared(tmp_path: Path) -> None:
    short = _signature(make_file(tmp_path / "s", "flac", 0.3, voice=TUNE_A))
    full = _signature(make_file(tmp_path / "a", "flac", 4.0, voice=TUNE_A))
    assert short.startswith(MAGIC)
    assert distance(short, full) is None and same_audio(short, full) is None
    assert decode_signature(b"xxxx" + full[4:]) is None and distance(None, full) is None
    assert decode_signature(full[:-1]) is None


def test_input_stops_counting_after_the_cap_and_on_a_format_change() -> None:
    builder = SignatureBuilder()
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 2048), np.float32), format="flt", layout="mono")
    frame.sample_rate = 22050
    builder.add_frame(frame)
    builder.add_pcm(np.zeros(100, np.float32), 44100)  # another rate: the rest is ignored
    assert builder.stopped
