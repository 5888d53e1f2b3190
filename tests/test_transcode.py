"""soundark.media.transcode / qa / opus_tags, checked with independent tools (opusinfo, opusdec, ffprobe)."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import pytest

from soundark.errors import BadInput
from soundark.media import synth
from soundark.media.libopus import libopus_version
from soundark.media.opus_tags import (
    MAX_VALUE_CHARS,
    clean_values,
    comments_from_tagset,
    merge_comments,
    r128_gain,
    read_opus_comments,
    write_opus_comments,
)
from soundark.media.qa import check_opus, check_source, inspect_opus, read_ogg_opus
from soundark.media.transcode import (
    OpusSettings,
    bitrate_for,
    measure_source,
    set_opus_input_rate,
    transcode_to_opus,
)
from soundark.model import TagSet

needs_opusinfo = pytest.mark.needs_tool("opusinfo")
needs_ffprobe = pytest.mark.needs_tool("ffprobe")


def opusinfo(path: Path) -> dict[str, str]:
    out = subprocess.run(["opusinfo", str(path)], capture_output=True, text=True, check=True).stdout
    facts = {}
    for key, pattern in {"pre_skip": r"Pre-skip: (\d+)", "channels": r"Channels: (\d+)",
                         "rate": r"Original sample rate: (\d+)",
                         "length": r"Playback length: (\d+)m:([\d.]+)s",
                         "bitrate": r"Average bitrate: ([\d.]+) kbit/s"}.items():
        m = re.search(pattern, out)
        if m:
            facts[key] = (str(int(m.group(1)) * 60 + float(m.group(2))) if key == "length"
                          else m.group(1))
    facts["raw"] = out
    return facts


def ffprobe_duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True).stdout
    return float(json.loads(out)["format"]["duration"])


@needs_opusinfo
@pytest.mark.parametrize("fmt,rate,channels", [
    ("flac", 44100, 2), ("wav", 8000, 1), ("wav24", 96000, 2), ("wavf32", 192000, 2),
    ("aiff", 22050, 1), ("mp3", 44100, 2), ("m4a", 48000, 2), ("ogg", 44100, 2),
    ("flac", 48000, 6), ("wav", 16000, 4),
])
def test_every_input_encodes_with_right_duration_and_preskip(tmp_path, fmt, rate, channels):
    src = synth.make_file(tmp_path / "src", fmt, 1.5, sample_rate=rate, channels=channels)
    out = tmp_path / "out.opus"
    pcm = transcode_to_opus(src, out)
    set_opus_input_rate(out, pcm.source_rate)
    facts = check_opus(out, pcm)
    info = opusinfo(out)
    assert int(info["pre_skip"]) == facts.pre_skip > 0
    assert int(info["channels"]) == (1 if channels == 1 else 2) == pcm.out_channels
    assert int(info["rate"]) == rate  # the source rate is recorded in OpusHead
    # duration by granule: within one 20 ms frame of the source (lossy sources add priming)
    assert abs(float(info["length"]) - 1.5) <= 0.021 + (0.05 if fmt in ("mp3", "m4a", "ogg") else 0)
    assert abs(facts.samples - pcm.out_samples) <= 960
    assert "CRC" not in info["raw"] and "WARNING" not in info["raw"].upper().replace(
        "MAY CAUSE PROBLEMS", "")


@pytest.mark.needs_tool("opusdec")
def test_opusdec_decodes_the_exact_length(tmp_path):
    src = synth.make_file(tmp_path / "src", "flac", 2.0, sample_rate=48000)
    out = tmp_path / "out.opus"
    transcode_to_opus(src, out)
    wav = tmp_path / "dec.wav"
    subprocess.run(["opusdec", "--quiet", "--rate", "48000", str(out), str(wav)], check=True)
    # 44-byte WAV header, 16-bit stereo: opusdec honours pre-skip and the end granule
    assert (wav.stat().st_size - 44) // 4 == 96000


@needs_ffprobe
def test_ffprobe_agrees_on_duration(tmp_path):
    src = synth.make_file(tmp_path / "src", "wav", 3.0, sample_rate=44100)
    out = tmp_path / "out.opus"
    pcm = transcode_to_opus(src, out)
    assert abs(ffprobe_duration(out) - 3.0) < 0.021
    assert pcm.duration_ms == 3000


def test_options_take_effect(tmp_path):
    """PyAV ignores misspelled options silently: check each one changes the output."""
    voice = synth.Voice(noise=0.05, vibrato_hz=5.0)
    src = synth.make_file(tmp_path / "src", "flac", 4.0, voice=voice)
    sizes = {}
    for name, settings in {"default": OpusSettings(), "low": OpusSettings(bitrate=32_000),
                           "cbr": OpusSettings(vbr="off"),
                           "fast": OpusSettings(complexity=0)}.items():
        out = tmp_path / f"{name}.opus"
        transcode_to_opus(src, out, settings)
        sizes[name] = out.read_bytes()
    assert len(sizes["low"]) < 0.6 * len(sizes["default"])
    assert sizes["cbr"] != sizes["default"] and sizes["fast"] != sizes["default"]
    frame_40 = tmp_path / "f40.opus"
    transcode_to_opus(src, frame_40, OpusSettings(frame_ms=40))
    assert read_ogg_opus(frame_40).pages and frame_40.read_bytes() != sizes["default"]


def test_output_is_deterministic(tmp_path):
    src = synth.make_file(tmp_path / "src", "flac", 1.0)
    a, b = tmp_path / "a.opus", tmp_path / "b.opus"
    transcode_to_opus(src, a, serial=7)
    transcode_to_opus(src.read_bytes(), b, serial=7)  # from bytes in memory: same result
    assert a.read_bytes() == b.read_bytes()


def test_mono_gets_five_eighths_of_the_stereo_rate():
    assert bitrate_for(75_000, 2) == 75_000
    assert bitrate_for(75_000, 1) == 47_000
    assert bitrate_for(64_000, 1) == 40_000


def test_multichannel_downmix_does_not_clip(tmp_path):
    src = synth.make_file(tmp_path / "src", "flac", 1.0, sample_rate=48000, channels=6)
    pcm = transcode_to_opus(src, tmp_path / "o.opus")
    assert pcm.out_channels == 2 and pcm.source_channels == 6
    assert pcm.peak <= 1.0


def test_libopus_version_is_known():
    assert re.match(r"libopus \d+\.\d+", libopus_version())


# --- QA -----------------------------------------------------------------------------------------

def test_qa_catches_a_cut_output(tmp_path):
    src = synth.make_file(tmp_path / "src", "flac", 2.0)
    out = tmp_path / "o.opus"
    pcm = transcode_to_opus(src, out)
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput, match="cut short|end-of-stream"):
        check_opus(out, pcm)


def test_qa_catches_a_duration_mismatch(tmp_path):
    short = synth.make_file(tmp_path / "short", "flac", 1.0)
    long = synth.make_file(tmp_path / "long", "flac", 2.0)
    out = tmp_path / "o.opus"
    transcode_to_opus(short, out)
    pcm_long = transcode_to_opus(long, tmp_path / "other.opus")
    with pytest.raises(BadInput, match="duration"):
        check_opus(out, pcm_long)


def test_qa_catches_silence(tmp_path):
    loud = synth.make_file(tmp_path / "loud", "flac", 1.0)
    import numpy as np

    silent = tmp_path / "silent.flac"
    synth.encode_file(silent, np.zeros((2, 44100), dtype=np.float32), 44100, "flac")
    pcm_loud = transcode_to_opus(loud, tmp_path / "loud.opus")
    out = tmp_path / "silent.opus"
    pcm_silent = transcode_to_opus(silent, out)
    assert pcm_silent.rms_db == -math.inf
    check_opus(out, pcm_silent)  # silence in, silence out: fine
    with pytest.raises(BadInput, match="silent"):
        check_opus(out, pcm_loud)


def test_truncated_sources_are_refused(tmp_path):
    for fmt in ("aiff", "mp3"):
        src = synth.make_file(tmp_path / f"src_{fmt}", fmt, 4.0)
        data = src.read_bytes()
        src.write_bytes(data[: len(data) // 2])
        with pytest.raises(BadInput, match="truncated|decode"):
            check_source(src, measure_source(src))


@pytest.mark.parametrize("content", [b"", b"hello, not audio at all\n" * 50, b"\x00" * 4096])
def test_junk_is_refused_with_one_line(tmp_path, content):
    src = tmp_path / "junk.flac"
    src.write_bytes(content)
    with pytest.raises(BadInput) as e:
        transcode_to_opus(src, tmp_path / "o.opus")
    assert "\n" not in str(e.value)


# --- tags ---------------------------------------------------------------------------------------

def test_r128_from_replaygain():
    assert r128_gain(-6.5) == str(round((-6.5 - 5) * 256))
    assert r128_gain(0.0) == "-1280"
    assert r128_gain(200.0) == "32767"


def test_comments_from_tagset_map_names_and_convert_gain():
    tags = TagSet(title="T", artists=("A", "B"), album="Al", track_number=3, disc_number=1,
                  isrc="USRC17607839", mb_recording_id="b1a9c0e9-d987-4042-ae91-78d6a3267d69",
                  replaygain_track_gain=-6.5, replaygain_album_gain=-7.0,
                  extra={"REPLAYGAIN_TRACK_PEAK": "0.9", "COMMENT": "hi", "ENCODER": "lame"})
    c = comments_from_tagset(tags)
    assert c["ARTIST"] == ["A", "B"] and c["TRACKNUMBER"] == ["3"] and c["ISRC"] == ["USRC17607839"]
    assert c["MUSICBRAINZ_TRACKID"] == ["b1a9c0e9-d987-4042-ae91-78d6a3267d69"]
    assert c["R128_TRACK_GAIN"] == [r128_gain(-6.5)] and c["R128_ALBUM_GAIN"] == [r128_gain(-7.0)]
    assert c["COMMENT"] == ["hi"]
    assert not any(k.startswith("REPLAYGAIN") for k in c) and "ENCODER" not in c


def test_nul_and_huge_values_are_cleaned(tmp_path):
    assert clean_values("a\x00b\x00") == ["a", "b"]
    assert clean_values("x\x07y") == ["xy"]
    huge = clean_values("z" * 1_000_000)
    assert len(huge) == 1 and len(huge[0]) == MAX_VALUE_CHARS
    src = synth.make_file(tmp_path / "src", "flac", 1.0)
    out = tmp_path / "o.opus"
    pcm = transcode_to_opus(src, out)
    write_opus_comments(out, merge_comments({"TITLE": "a\x00b", "BIG": "z" * 1_000_000},
                                            {"ISRC": ["USRC17607839"]}))
    back = read_opus_comments(out)
    assert back["TITLE"] == ["a", "b"] and len(back["BIG"][0]) == MAX_VALUE_CHARS
    assert back["ISRC"] == ["USRC17607839"]
    check_opus(out, pcm)  # tagging leaves the audio intact
    assert out.stat().st_size < 60_000


def test_later_layers_win():
    merged = merge_comments({"TITLE": "file", "COMMENT": "keep"}, {"TITLE": "catalog"})
    assert merged == {"TITLE": ["catalog"], "COMMENT": ["keep"]}


def test_inspect_reports_levels(tmp_path):
    src = synth.make_file(tmp_path / "src", "flac", 1.0)
    out = tmp_path / "o.opus"
    pcm = transcode_to_opus(src, out)
    facts = inspect_opus(out)
    assert abs(facts.rms_db - pcm.rms_db) < 1.5
    # libopus directly: pre-skip removed, the last packet's padding kept (under one frame)
    assert 0 <= facts.decoded_samples - facts.samples < 960
    full = inspect_opus(out, quick=False)  # FFmpeg's decoder trims to the end granule
    assert full.decoded_samples == full.samples and abs(full.rms_db - pcm.rms_db) < 1.0


def test_high_frequency_only_source_is_not_called_silent(tmp_path):
    """The quick QA decode hears the whole band: a 10 kHz-only source keeps its level."""
    import numpy as np

    rate = 48000
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 10_000 * t)).astype(np.float32)
    src = tmp_path / "hf.flac"
    synth.encode_file(src, np.stack([tone, tone]), rate, "flac")
    out = tmp_path / "hf.opus"
    pcm = transcode_to_opus(src, out)
    assert abs(inspect_opus(out).rms_db - pcm.rms_db) < 1.5
    check_opus(out, pcm)


def test_out_of_phase_stereo_is_not_called_silent(tmp_path):
    """Left = -right cancels in the quick mono decode; the stereo second opinion keeps it."""
    import numpy as np

    rate = 48000
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    src = tmp_path / "phase.flac"
    synth.encode_file(src, np.stack([tone, -tone]), rate, "flac")
    out = tmp_path / "phase.opus"
    pcm = transcode_to_opus(src, out)
    assert inspect_opus(out).rms_db < pcm.rms_db - 10  # the mono downmix alone would fail it
    assert check_opus(out, pcm).rms_db > pcm.rms_db - 3


# --- the direct libopus path and its Ogg pages ------------------------------------------------

def _reference_ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


@pytest.mark.parametrize("data", [b"", b"OggS", bytes(range(256)) * 3])
def test_ogg_crc_matches_the_bitwise_definition(data):
    from soundark.media.ogg import ogg_crc

    assert ogg_crc(data) == _reference_ogg_crc(data)


def test_bad_encoder_settings_are_refused(tmp_path):
    src = synth.make_file(tmp_path / "src", "flac", 0.5)
    for settings in (OpusSettings(complexity=11), OpusSettings(frame_ms=25)):
        with pytest.raises(BadInput):
            transcode_to_opus(src, tmp_path / "o.opus", settings)


@needs_opusinfo
def test_pyav_fallback_writes_the_same_kind_of_file(tmp_path, monkeypatch):
    """Without a loadable libopus, PyAV's encoder and muxer do the job, checked the same way."""
    from soundark.media import libopus

    src = synth.make_file(tmp_path / "src", "flac", 1.5, sample_rate=44100)
    direct = tmp_path / "direct.opus"
    pcm = transcode_to_opus(src, direct)
    monkeypatch.setattr(libopus, "load_libopus", lambda: None)
    fallback = tmp_path / "fallback.opus"
    pcm_fallback = transcode_to_opus(src, fallback)
    assert pcm_fallback.out_samples == pcm.out_samples and pcm_fallback.codec == pcm.codec
    assert pcm_fallback.rms_db == pytest.approx(pcm.rms_db, abs=1e-3)
    for out in (direct, fallback):
        facts = check_opus(out, pcm)
        info = opusinfo(out)
        assert int(info["rate"]) == 44100 and int(info["pre_skip"]) == facts.pre_skip
        assert abs(float(info["length"]) - 1.5) < 0.001
    assert abs(direct.stat().st_size - fallback.stat().st_size) < 0.05 * direct.stat().st_size


@pytest.mark.parametrize("fmt", ["flac", "wav", "mp3"])
def test_declared_duration_is_rounded_like_probe_rounds_it(tmp_path: Path, fmt: str) -> None:
    """The container says 44,133 samples at 44.1 kHz = 1000.748 ms. The encoder's copy used to
    truncate (1000) while probe rounded (1001); there is one reader now, and it rounds."""
    import av
    import numpy as np

    from soundark.media.probe import declared_ms

    path = synth.encode_file(tmp_path / f"a.{fmt}", np.zeros((1, 44_133), dtype=np.float32), 44_100, fmt)
    with av.open(str(path)) as container:
        assert declared_ms(container, container.streams.audio[0]) == 1001
    assert measure_source(path).declared_ms == 1001
