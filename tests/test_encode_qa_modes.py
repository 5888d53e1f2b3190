"""The encoder's fast paths keep their promises: block resampling changes no byte, and
QA mode ``packets`` (setting ``encode_qa``) catches what it claims and only that."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from soundark.encode.worker import EncodeTask, encode_one
from soundark.errors import BadInput
from soundark.media import synth, transcode
from soundark.media.ogg import read_page, with_crc
from soundark.media.qa import check_opus, inspect_opus
from soundark.media.transcode import transcode_to_opus


@pytest.fixture
def encoded(tmp_path):
    src = synth.make_file(tmp_path / "src", "ogg", 2.0)  # Vorbis at 44.1 kHz: resampled
    out = tmp_path / "o.opus"
    return src, out, transcode_to_opus(src, out, serial=5)


def test_resampling_block_size_changes_no_byte(tmp_path, monkeypatch, encoded):
    src, out, pcm = encoded
    monkeypatch.setattr(transcode, "_RESAMPLE_BLOCK", 100)  # far smaller than a decoded frame
    small = tmp_path / "small.opus"
    pcm_small = transcode_to_opus(src, small, serial=5)
    assert small.read_bytes() == out.read_bytes()
    assert pcm_small.out_samples == pcm.out_samples


def test_packets_mode_counts_what_the_decoder_decodes(encoded):
    _, out, pcm = encoded
    decoded = inspect_opus(out)
    counted = check_opus(out, pcm, mode="packets")
    assert counted.decoded_samples == decoded.decoded_samples > 0
    assert counted.rms_db == -np.inf and decoded.rms_db > -40  # no decode, no level


def _audio_page(data: bytes) -> tuple[int, int]:
    """Start and end of the third page: the first one of audio."""
    pos = 0
    for _ in range(2):
        pos = read_page(data, pos).end
    return pos, read_page(data, pos).end


def test_packets_mode_catches_a_damaged_byte_the_decoder_plays(tmp_path, encoded):
    _, out, pcm = encoded
    data = bytearray(out.read_bytes())
    start, end = _audio_page(data)
    data[(start + end) // 2] ^= 0x10  # inside an audio packet: still decodes, to other audio
    out.write_bytes(bytes(data))
    check_opus(out, pcm)  # the decode alone does not notice
    with pytest.raises(BadInput, match="CRC"):
        check_opus(out, pcm, mode="packets")


def test_packets_mode_catches_a_packet_that_is_not_opus(encoded):
    _, out, pcm = encoded
    data = bytearray(out.read_bytes())
    start, end = _audio_page(data)
    page = read_page(data, start)
    first = page.body_start  # first packet of the page: TOC byte, then frames
    data[first] = data[first] | 0x03  # code 3: a frame-count byte follows...
    data[first + 1] = 0  # ...saying zero frames, which RFC 6716 3.2.5 forbids
    data[start:end] = with_crc(bytearray(data[start:end]))
    out.write_bytes(bytes(data))
    with pytest.raises(BadInput, match="not an Opus packet"):
        check_opus(out, pcm, mode="packets")


def test_packets_mode_still_catches_cuts_and_wrong_lengths(tmp_path, encoded):
    _, out, pcm = encoded
    longer = transcode_to_opus(synth.make_file(tmp_path / "long", "flac", 3.0), tmp_path / "l.opus")
    with pytest.raises(BadInput, match="duration"):
        check_opus(out, longer, mode="packets")
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput, match="cut short|end-of-stream"):
        check_opus(out, pcm, mode="packets")


def test_packets_mode_does_not_hear_silence(tmp_path):
    """The documented limit: a silent output passes packets mode, never the default."""
    loud = transcode_to_opus(synth.make_file(tmp_path / "loud", "flac", 1.0), tmp_path / "loud.opus")
    silent_src = tmp_path / "silent.flac"
    synth.encode_file(silent_src, np.zeros((2, 44100), dtype=np.float32), 44100, "flac")
    out = tmp_path / "silent.opus"
    transcode_to_opus(silent_src, out)
    check_opus(out, loud, mode="packets")
    with pytest.raises(BadInput, match="silent"):
        check_opus(out, loud)


def test_unknown_mode_is_refused(encoded):
    _, out, pcm = encoded
    with pytest.raises(BadInput, match="encode_qa: unknown QA mode 'none'"):
        check_opus(out, pcm, mode="none")


@pytest.mark.parametrize("mode", ["decode", "packets"])
def test_worker_encodes_with_either_mode_to_the_same_bytes(tmp_path, mode):
    src = synth.make_file(tmp_path / "src", "mp3", 1.0, bitrate=128_000)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    outcome = encode_one(EncodeTask(1, "opus75", str(src), sha, str(tmp_path), qa=mode))
    assert outcome.ok, outcome.error
    assert outcome.sha256 == hashlib.sha256(Path(outcome.tmp_path).read_bytes()).hexdigest()
    reference = encode_one(EncodeTask(2, "opus75", str(src), sha, str(tmp_path)))
    assert reference.sha256 == outcome.sha256  # QA reads the output; it never changes it
