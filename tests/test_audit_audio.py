"""Issue 13 audit: pathological audio at scan and encode. Each hostile file is built here, small.

- 100,000 tag entries made the scan's probe take minutes (FFmpeg parses tags quadratically):
  the scan now counts entries with mutagen first and refuses a file over ``max_tag_entries``.
- Decoding has a per-file time limit (``scan_file_seconds``), checked between packets.
- A Vorbis comment that is not UTF-8 passed the scan and failed encode with an internal error:
  both now accept it with U+FFFD in place of the bad bytes, and the scan says so.
- ID3 frames nested inside CHAP frames 2,000 deep gave "RecursionError": one line, refused.
- A 64-channel WAV passed the scan and failed encode: the scan now asks encode's own downmix,
  so the two agree on every channel count.
"""

from __future__ import annotations

import json
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from mutagen.flac import FLAC
from mutagen.oggopus import OggOpus

from soundark.catalog.importers.scan import ReadLimits, read_file
from soundark.cli import main
from soundark.config import Settings, write_settings
from soundark.errors import BadInput, SoundarkError
from soundark.media import ogg, synth, tags
from soundark.media.transcode import transcode_to_opus

BAD_UTF8 = b"Caf\xe9 \xff\xfe"  # Latin-1 'é' and bytes that are never UTF-8


def _tone(path: Path, fmt: str = "flac", seed: int = 1) -> Path:
    return synth.make_file(path, fmt, 0.3, voice=synth.Voice(notes=(60 + seed,), seed=seed))


def _many_tags(path: Path, n: int) -> Path:
    p = _tone(path)
    f = FLAC(p)
    f.tags.clear()
    for k in range(n - len(f.pictures)):
        f.tags.append(("COMMENT", f"c{k}"))
    f.save()
    return p


def _read(path: Path, limits: ReadLimits | None = None):
    st = path.stat()
    return read_file(path, st.st_size, st.st_mtime_ns, limits or ReadLimits())


def _cli(capsys, *argv: str) -> tuple[int, dict]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out = capsys.readouterr().out
    return info.value.code, json.loads(out)


# --- many tags -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("entries", "refused"), [(99, False), (100, False), (101, True)])
def test_tag_entries_over_the_limit_are_refused_before_decoding(tmp_path, entries, refused) -> None:
    scanned = _read(_many_tags(tmp_path / "t", entries), ReadLimits(max_tag_entries=100))
    if refused:
        assert scanned.error == ("101 tag entries, over the limit of 100 (setting max_tag_entries): "
                                 "refused before decoding")
        assert scanned.facts is None  # never decoded
    else:
        assert scanned.error is None and scanned.facts is not None


def test_the_tag_limit_is_a_setting_read_by_scan(archive, tmp_path, capsys) -> None:
    write_settings(archive.root, Settings(max_tag_entries=50))
    lib = tmp_path / "lib"
    lib.mkdir()
    _many_tags(lib / "many", 51)
    _tone(lib / "few", seed=2)
    code, report = _cli(capsys, "scan", str(lib), "-a", str(archive.root), "--json")
    assert code == 0 and report["new"] == 1 and report["rejected"] == 1
    assert report["rejections"][0]["reason"].startswith("51 tag entries, over the limit of 50")


def test_default_limit_refuses_the_audit_file(tmp_path) -> None:
    # the audit's file held 100,000 entries; one over the default limit is the same refusal
    limit = Settings().max_tag_entries
    scanned = _read(_many_tags(tmp_path / "t", limit + 1))
    assert scanned.error is not None and "setting max_tag_entries" in scanned.error


# --- time limit ------------------------------------------------------------------------------------

def test_a_file_still_decoding_at_the_deadline_is_refused(tmp_path) -> None:
    p = _tone(tmp_path / "t")
    scanned = _read(p, ReadLimits(file_seconds=1e-9))  # passed before the first packet is checked
    assert scanned.error == "still decoding after 1e-09 s (setting scan_file_seconds); refused"
    assert _read(p, ReadLimits(file_seconds=0)).error is None  # 0: no limit


def test_the_deadline_holds_for_the_libsndfile_fallback_too() -> None:
    # a real Ogg Vorbis file FFmpeg refuses and libsndfile reads (tests/data/scan/README.md)
    sample = Path(__file__).parent / "data" / "scan" / "vorbis_framing_junk.ogg"
    assert _read(sample).facts.decoder == "libsndfile"
    scanned = _read(sample, ReadLimits(file_seconds=1e-9))
    assert scanned.error == "still decoding after 1e-09 s (setting scan_file_seconds); refused"


# --- invalid UTF-8 in a Vorbis comment ---------------------------------------------------------------

def _bad_utf8(path: Path, fmt: str) -> Path:
    p = _tone(path, fmt, seed=3)
    f = FLAC(p) if fmt == "flac" else OggOpus(p)
    f["TITLE"] = "QQQQQQQ"
    f.save()
    data = bytearray(p.read_bytes())
    at = data.find(b"QQQQQQQ")
    assert at > 0 and data.count(b"QQQQQQQ") == 1
    data[at:at + len(BAD_UTF8)] = BAD_UTF8  # same length: no size field changes
    if fmt != "flac":  # an Ogg page carries a CRC of its bytes (RFC 3533): make it right again
        start = data.rfind(b"OggS", 0, at)
        page = ogg.read_page(data, start)
        assert page is not None
        data[start:page.end] = ogg.with_crc(bytearray(data[start:page.end]))
    p.write_bytes(bytes(data))
    return p


def test_vorbis_comment_not_utf8_is_reported_by_scan_and_encoded(archive, catalog, tmp_path, capsys) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    flac = _bad_utf8(lib / "bad", "flac")
    kept = _bad_utf8(lib / "kept", "opus")  # a small lossy file: the plan keeps it byte for byte
    code, report = _cli(capsys, "scan", str(lib), "-a", str(archive.root), "--json")
    assert code == 0 and report["new"] == 2 and report["rejected"] == 0
    assert report["counts"]["tags not valid UTF-8"] == 2
    warned = {w["subject"]: w["reason"] for w in report["warnings"]}
    assert warned[str(flac)].startswith("tags not valid UTF-8 (TITLE): kept with U+FFFD")
    assert str(kept) in warned
    code, _ = _cli(capsys, "plan", "-a", str(archive.root), "--json")
    code, result = _cli(capsys, "encode", "-a", str(archive.root), "--executor", "threads", "--json")
    assert code == 0 and result["failed"] == 0, result["failures"]
    assert result["encoded"] + result["kept"] == 2 and result["kept"] == 1
    opus = [p for p in archive.store.rglob("*.opus")]
    titles = sorted(t for p in opus for t in OggOpus(p).get("title", []))
    assert titles and all("\ufffd" in t for t in titles), titles


def test_encode_opens_a_source_with_bad_utf8_tags(tmp_path) -> None:
    facts = transcode_to_opus(_bad_utf8(tmp_path / "bad", "flac"), tmp_path / "out.opus")
    assert facts.source_samples > 0  # before: internal error, UnicodeDecodeError


# --- nested ID3 -----------------------------------------------------------------------------------------

def _id3_frame(fid: bytes, body: bytes) -> bytes:
    n = len(body)
    return fid + bytes([(n >> 21) & 127, (n >> 14) & 127, (n >> 7) & 127, n & 127]) + b"\x00\x00" + body


def _nested_id3(path: Path, depth: int) -> Path:
    """An MP3 whose ID3v2.4 tag holds a CHAP frame inside a CHAP frame, *depth* deep."""
    inner = _id3_frame(b"TIT2", b"\x03deep\x00")
    for d in range(depth):
        inner = _id3_frame(b"CHAP", b"c%d\x00" % d + struct.pack(">IIII", 0, 300, 2**32 - 1, 2**32 - 1) + inner)
    n = len(inner)
    header = b"ID3\x04\x00\x00" + bytes([(n >> 21) & 127, (n >> 14) & 127, (n >> 7) & 127, n & 127])
    p = _tone(path, "mp3", seed=4)
    p.write_bytes(header + inner + p.read_bytes())
    return p


def test_nested_id3_is_one_line_and_refused(tmp_path) -> None:
    p = _nested_id3(tmp_path / "nested", 2000)
    assert _read(p).error == "tags nested too deeply (frames inside frames); refused"
    with pytest.raises(BadInput, match="nested too deeply"):
        tags.read_art(p)


def test_shallow_chapters_still_read(tmp_path) -> None:
    p = _nested_id3(tmp_path / "chapters", 3)
    scanned = _read(p)
    assert scanned.error is None and scanned.facts is not None


# --- channels -------------------------------------------------------------------------------------------

def _wav(path: Path, channels: int) -> Path:
    data = (np.random.default_rng(channels).standard_normal((800, channels)) * 3000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(data.tobytes())
    return path


@pytest.mark.parametrize("channels", [3, 6, 9, 12, 32, 64])
def test_scan_and_encode_agree_on_channels(tmp_path, channels) -> None:
    p = _wav(tmp_path / f"c{channels}.wav", channels)
    scanned = _read(p)
    try:
        transcode_to_opus(p, tmp_path / "out.opus")
        encoded = None
    except SoundarkError as e:
        encoded = e.reason
    assert (scanned.error is None) == (encoded is None), (scanned.error, encoded)
    if channels == 64:  # the audit's file
        assert scanned.error == ("64 channels in a layout FFmpeg cannot downmix to stereo for encoding; "
                                 "refused")
