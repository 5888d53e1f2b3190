"""probe(): stream facts of real files in every format, and every way a file can be refused."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from soundark.errors import BadInput, EncryptedInput
from soundark.media.probe import ENCRYPTED_REASON, is_encrypted, probe
from soundark.media.synth import FORMATS, make_file, tiny_jpeg

SECONDS = 1.5

# format -> (container, codec, sample rate, the codec's frame in ms: the duration tolerance)
EXPECTED = {
    "flac": ("flac", "flac", 44100, 5),
    "wav": ("wav", "pcm_s16le", 44100, 1),
    "wav24": ("wav", "pcm_s24le", 44100, 1),
    "wavf32": ("wav", "pcm_f32le", 44100, 1),
    "aiff": ("aiff", "pcm_s16be", 44100, 1),
    "ogg": ("ogg", "vorbis", 44100, 47),
    "opus": ("ogg", "opus", 48000, 21),
    "mp3": ("mp3", "mp3", 44100, 27),
    "m4a": ("mp4", "aac", 44100, 24),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("probe")
    return {fmt: make_file(folder / f"tone_{fmt}", fmt, SECONDS) for fmt in FORMATS}


def test_every_format_is_covered() -> None:
    assert set(EXPECTED) == set(FORMATS)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_stream_facts(files: dict[str, Path], fmt: str) -> None:
    container, codec, rate, frame_ms = EXPECTED[fmt]
    facts = probe(files[fmt])
    assert (facts.container, facts.codec, facts.sample_rate, facts.channels) == (container, codec, rate, 2)
    assert abs(facts.duration_ms - SECONDS * 1000) <= frame_ms
    assert facts.bitrate and facts.bitrate > 0
    assert facts.lossless == (fmt in ("flac", "wav", "wav24", "wavf32", "aiff"))
    assert facts.encrypted is False


def test_pcm_bitrate_is_exact(files: dict[str, Path]) -> None:
    assert probe(files["wav"]).bitrate == 44100 * 2 * 16


def test_mono_and_other_rates(tmp_path: Path) -> None:
    facts = probe(make_file(tmp_path / "mono", "flac", 0.5, sample_rate=22050, channels=1))
    assert (facts.channels, facts.sample_rate, facts.duration_ms) == (1, 22050, 500)


def test_bitrate_from_size_when_stream_has_none(files: dict[str, Path]) -> None:
    # FLAC streams carry no bit rate: it is file size * 8 / duration
    facts = probe(files["flac"])
    size = files["flac"].stat().st_size
    assert facts.bitrate == pytest.approx(size * 8 / SECONDS, rel=0.01)


def test_zero_byte_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.flac"
    p.write_bytes(b"")
    with pytest.raises(BadInput, match="empty file"):
        probe(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="cannot read"):
        probe(tmp_path / "nope.flac")


def test_text_named_flac(tmp_path: Path) -> None:
    p = tmp_path / "notes.flac"
    p.write_text("these are liner notes, not audio\n" * 50)
    with pytest.raises(BadInput, match="not audio") as info:
        probe(p)
    assert not isinstance(info.value, EncryptedInput)


def test_jpeg_named_mp3(tmp_path: Path) -> None:
    p = tmp_path / "cover.mp3"
    p.write_bytes(tiny_jpeg())
    with pytest.raises(BadInput, match="not audio"):
        probe(p)


def test_random_bytes(tmp_path: Path) -> None:
    p = tmp_path / "noise.ogg"
    p.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(BadInput):
        probe(p)


def _cut(src: Path, dst: Path, share: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * share)])
    return dst


@pytest.mark.parametrize("fmt", ["flac", "mp3", "wav", "aiff", "ogg", "opus", "m4a"])
@pytest.mark.parametrize("share", [0.5, 0.9])
def test_truncated(files: dict[str, Path], tmp_path: Path, fmt: str, share: float) -> None:
    p = _cut(files[fmt], tmp_path / f"cut{files[fmt].suffix}", share)
    with pytest.raises(BadInput, match="truncated"):
        probe(p)


def test_corrupt_middle_of_flac(files: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(files["flac"].read_bytes())
    mid = len(data) // 2
    data[mid: mid + 8000] = bytes(8000)  # zeroed frames: no sync codes, CRC failures
    p = tmp_path / "damaged.flac"
    p.write_bytes(bytes(data))
    with pytest.raises(BadInput, match="corrupt|truncated"):
        probe(p)


def _sample_entry_offset(data: bytes) -> int:
    """Offset of the stsd sample entry fourcc, found by walking the real box tree."""
    def walk(start: int, end: int) -> int | None:
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack(">I4s", data[pos:pos + 8])
            if kind == b"stsd":
                return pos + 8 + 8 + 4  # header, version/flags + count, first entry's size
            if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
                found = walk(pos + 8, pos + size)
                if found:
                    return found
            pos += size
        return None

    found = walk(0, len(data))
    assert found is not None
    return found


@pytest.mark.parametrize("fourcc", [b"enca", b"drms"])
def test_encrypted_m4a_sample_entry(files: dict[str, Path], tmp_path: Path, fourcc: bytes) -> None:
    data = bytearray(files["m4a"].read_bytes())
    at = _sample_entry_offset(bytes(data))
    assert data[at:at + 4] == b"mp4a"
    data[at:at + 4] = fourcc
    p = tmp_path / f"{fourcc.decode()}.m4a"
    p.write_bytes(bytes(data))
    assert is_encrypted(p)
    with pytest.raises(EncryptedInput) as info:
        probe(p)
    assert info.value.reason == ENCRYPTED_REASON
    assert str(info.value) == f"{p}: {ENCRYPTED_REASON}"


def test_sinf_box_in_sample_entry(files: dict[str, Path], tmp_path: Path) -> None:
    # a protection scheme box named inside the sample entry (as iTunes FairPlay files have)
    data = bytearray(files["m4a"].read_bytes())
    at = _sample_entry_offset(bytes(data))
    esds = data.find(b"esds", at)
    assert esds > 0
    data[esds:esds + 4] = b"sinf"
    p = tmp_path / "sinf.m4a"
    p.write_bytes(bytes(data))
    with pytest.raises(EncryptedInput):
        probe(p)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_plain_files_are_not_encrypted(files: dict[str, Path], fmt: str) -> None:
    assert not is_encrypted(files[fmt])


def test_asf_content_encryption_object(tmp_path: Path) -> None:
    asf_header = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
    encryption = bytes.fromhex("fbb3112223bdd211b4b700a0c955fc6e")
    p = tmp_path / "protected.wma"
    p.write_bytes(asf_header + struct.pack("<QI2B", 30 + 24, 1, 1, 2) + encryption + bytes(40))
    with pytest.raises(EncryptedInput):
        probe(p)
