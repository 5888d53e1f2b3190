"""Stream facts of one audio file, checked by decoding it in full.

:func:`probe` opens a file with FFmpeg (through PyAV), decodes its first audio
stream to the end to count the samples, and compares that count with what the
container declares (FLAC STREAMINFO, the RIFF ``data`` chunk of WAV, AIFF
``COMM``, MP3 Xing/Info/VBRI headers, MP4 ``mvhd``/``mdhd``). FFmpeg decodes a
text file named ``.flac`` to zero samples, and MP3/Ogg/WAV files cut short to
fewer samples, all without an error, so only that comparison (and, for Ogg, a
check that the last page is whole: RFC 3533 §6) tells a truncated file from a
short one.

DRM-protected audio is refused before anything is decoded: ISO/IEC 14496-12
protected sample entries (``enca``, ``encv``, ``drms``, ``drmi``) and
protection boxes (``sinf``, ``schm``, ``pssh``, ``tenc``, ``senc``) in MP4, and
the ASF content encryption objects of WMA. soundark never decrypts.

Two refusals protect the reader itself: a per-file time limit checked between packets
(:class:`~soundark.media.deadline.Deadline`), and a source whose channels the encoder could not downmix to stereo (64
channels in no layout FFmpeg knows), refused here in encode's words
(:func:`soundark.media.downmix.check_downmix`) rather than failing at encode.

A file FFmpeg cannot read at all (it will not open it, finds no audio stream, or
decodes nothing) gets a second opinion from libsndfile (:mod:`soundark.media.fallback`);
a refusal then names both decoders and their own messages. A file FFmpeg reads but
finds truncated or corrupt is refused on FFmpeg's word alone.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import av

from soundark.errors import BadInput, EncryptedInput
from soundark.media import fallback, ogg
from soundark.media.deadline import Deadline, TooSlow
from soundark.media.downmix import check_downmix
from soundark.media.fingerprint import SignatureBuilder
from soundark.model import AudioFacts

ENCRYPTED_REASON = "encrypted (DRM) audio: soundark never decrypts; refused"

# A decoded stream shorter than the declared one by more than this is truncated.
# Codecs legitimately differ by a frame or two (Opus pre-skip, AAC priming), never by this much.
TRUNCATION_SLACK_MS = 100
TRUNCATION_SLACK_SHARE = 0.005
# A few undecodable packets in a long file are common in real collections and
# players skip them; more than this share means the file is damaged.
MAX_BAD_PACKET_SHARE = 0.005

_PROTECTED_ENTRIES = {b"enca", b"encv", b"drms", b"drmi", b"encs", b"enct"}
_PROTECTION_BOXES = {b"sinf", b"schm", b"pssh", b"tenc", b"senc"}
_MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"mvex",
                   b"moof", b"traf", b"sinf", b"schi"}
_MP4_TOP_LEVEL = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"moof", b"pdin",
                  b"styp", b"sidx", b"meta", b"mfra", b"pssh"}
_MAX_MOOV = 256 * 1024 * 1024
_ASF_HEADER = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_ASF_ENCRYPTION = (
    bytes.fromhex("fbb3112223bdd211b4b700a0c955fc6e"),  # Content Encryption Object
    bytes.fromhex("14e68a292226174cb935dae07ee9289c"),  # Extended Content Encryption Object
)
# FFmpeg decoder names that are variants of one codec: report the codec.
_CODEC_ALIASES = {"mp3float": "mp3", "mp2float": "mp2", "mp1float": "mp1", "libopus": "opus",
                  "libvorbis": "vorbis", "libfdk_aac": "aac"}


@dataclass(frozen=True)
class _Decoded:
    samples: int
    packets: int
    bad_packets: int
    first_error: str


class _FfmpegCannotRead(BadInput):
    """FFmpeg could not read the file at all: the second decoder is asked (not raised outside)."""


def probe(path: Path, signature: SignatureBuilder | None = None,
          deadline: Deadline | None = None) -> AudioFacts:
    """Decode *path* in full and return its stream facts (``decoder`` names who read it).

    *signature*, when given, is fed every decoded frame (the acoustic signature costs
    no second decode; call its ``finish()`` afterwards). *deadline*, when given, is checked
    between packets: a file still decoding when it passes is refused.

    Raises :class:`EncryptedInput` for DRM-protected files and :class:`BadInput`
    (one-line reason) for empty, non-audio, corrupt or truncated files.
    """
    path = Path(path)
    size = _size_of(path)
    head = _read_head(path)
    if _is_encrypted(path, head, size):
        raise EncryptedInput(path, ENCRYPTED_REASON)
    try:
        return _probe_ffmpeg(path, head, size, signature, deadline)
    except _FfmpegCannotRead as e:
        if signature is not None:
            signature.reset()  # FFmpeg may have fed a few frames before it gave up
        if tracker_module(path, head):
            raise BadInput(path, TRACKER_REASON) from e
        return _probe_fallback(path, size, e.reason, signature, deadline)


TRACKER_REASON = "unsupported format: tracker module"
# Tracker modules are note data plus instrument samples, rendered by a player (libopenmpt),
# not a recording: neither FFmpeg as bundled nor libsndfile reads them. Signatures from the
# formats' documented headers: ProTracker MOD (tag at 1080), FastTracker 2 XM (file start),
# Scream Tracker 3 S3M ("SCRM" at 44), Impulse Tracker IT ("IMPM" at 0).
_MOD_TAGS = (b"M.K.", b"M!K!", b"FLT4", b"FLT8", b"4CHN", b"6CHN", b"8CHN", b"CD81", b"OKTA")
TRACKER_EXTENSIONS = frozenset({".mod", ".xm", ".s3m", ".it", ".mptm", ".669", ".mtm", ".stm"})


def tracker_module(path: Path, head: bytes) -> bool:
    """True for a tracker module, by its header (or, for headerless old formats, its extension)."""
    return (head[1080:1084] in _MOD_TAGS or head.startswith((b"Extended Module: ", b"IMPM"))
            or head[44:48] == b"SCRM" or path.suffix.lower() in TRACKER_EXTENSIONS)


def _probe_fallback(path: Path, size: int, ffmpeg_reason: str, signature: SignatureBuilder | None,
                    deadline: Deadline | None) -> AudioFacts:
    try:
        facts = fallback.probe_pcm(path, size, signature, deadline)
        if facts.container == "ogg" and _ogg_last_page_cut(path, size):
            raise BadInput(path, "truncated: the last Ogg page is cut short")
    except TooSlow:
        raise  # the clock's verdict, not the decoder's: no "not audio"
    except BadInput as e:
        raise BadInput(path, f"not audio: ffmpeg: {ffmpeg_reason}; {fallback.DECODER}: {e.reason}") from e
    return facts


def _probe_ffmpeg(path: Path, head: bytes, size: int, signature: SignatureBuilder | None,
                  deadline: Deadline | None) -> AudioFacts:
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as e:
        raise _open_error(path, e) from e
    with container:
        streams = container.streams.audio
        if not streams:
            kinds = sorted({s.type for s in container.streams}) or ["nothing"]
            raise _FfmpegCannotRead(path, f"no audio stream (found {', '.join(kinds)})")
        stream = streams[0]
        decoded = _decode_all(path, container, stream, signature, deadline)
        facts = _facts(path, container, stream, decoded, size)
        _check_complete(path, container, stream, decoded, facts, head, size)
    return facts


def is_encrypted(path: Path) -> bool:
    """The DRM header checks of :func:`probe` alone (no decoding): True for protected MP4/ASF."""
    path = Path(path)
    return _is_encrypted(path, _read_head(path), _size_of(path))


def _size_of(path: Path) -> int:
    try:
        st = path.stat()
    except OSError as e:
        raise BadInput(path, f"cannot read: {e.strerror or e}") from e
    if not path.is_file():
        raise BadInput(path, "not a regular file")
    if st.st_size == 0:
        raise BadInput(path, "empty file (0 bytes)")
    return st.st_size


def _read_head(path: Path, n: int = 65536) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError as e:
        raise BadInput(path, f"cannot read: {e.strerror or e}") from e


def _open_error(path: Path, e: Exception) -> BadInput:
    text = str(e).lower()
    if "encrypt" in text or "drm" in text:
        return EncryptedInput(path, ENCRYPTED_REASON)
    if isinstance(e, EOFError) or "end of file" in text:
        return BadInput(path, "truncated: the file ends before its headers do")
    return _FfmpegCannotRead(path, _short(getattr(e, "strerror", None) or str(e)))


def _decode_all(path: Path, container: av.container.InputContainer, stream: av.AudioStream,
                signature: SignatureBuilder | None = None, deadline: Deadline | None = None) -> _Decoded:
    """Count decoded samples; count (do not stop at) undecodable packets."""
    samples = packets = bad = 0
    first_error = ""
    try:
        for packet in container.demux(stream):
            packets += 1
            if deadline is not None:
                deadline.check(path)
            try:
                for frame in stream.decode(packet):
                    if not samples and frame.samples:
                        check_downmix(frame, path)
                    samples += frame.samples
                    if signature is not None:
                        signature.add_frame(frame)
            except av.error.FFmpegError as e:
                if "encrypt" in str(e).lower():
                    raise EncryptedInput(path, ENCRYPTED_REASON) from e
                bad += 1
                first_error = first_error or str(e)
    except av.error.FFmpegError as e:  # the demuxer itself gave up mid-file
        if "encrypt" in str(e).lower():
            raise EncryptedInput(path, ENCRYPTED_REASON) from e
        bad += 1
        first_error = first_error or str(e)
    return _Decoded(samples, packets, bad, first_error)


def codec_name(stream: av.AudioStream) -> str:
    name = stream.codec_context.name
    return _CODEC_ALIASES.get(name, name)


def container_name(container: av.container.InputContainer) -> str:
    name = container.format.name
    if name.startswith("mov,mp4"):
        return "mp4"
    return name.split(",")[0]


def _facts(path: Path, container: av.container.InputContainer, stream: av.AudioStream,
           decoded: _Decoded, size: int) -> AudioFacts:
    rate = stream.sample_rate or stream.codec_context.sample_rate
    if decoded.samples == 0 or not rate:
        if decoded.bad_packets:
            raise _FfmpegCannotRead(path, f"corrupt, no audio could be decoded "
                                          f"({_short(decoded.first_error)})")
        raise _FfmpegCannotRead(path, "nothing could be decoded from it")
    duration_ms = round(decoded.samples * 1000 / rate)
    declared = declared_ms(container, stream)
    if declared and duration_ms - 100 <= declared < duration_ms:
        # encoder padding (AAC, Vorbis) decodes as a last partial frame: the container knows better
        duration_ms = declared
    bitrate = stream.bit_rate or None
    if not bitrate and duration_ms > 0:
        bitrate = round(size * 8 * 1000 / duration_ms)
    return AudioFacts(container=container_name(container), codec=codec_name(stream), bitrate=bitrate,
                      sample_rate=rate, channels=stream.codec_context.channels, duration_ms=duration_ms)


def declared_ms(container: av.container.InputContainer, stream: av.AudioStream) -> int | None:
    """The duration the container declares, to the nearest millisecond (as decoded durations
    are rounded); None when it declares none. A stream duration of 0 means unknown."""
    if stream.duration and stream.time_base:
        return round(float(stream.duration * stream.time_base) * 1000)
    if container.duration:
        return round(container.duration / 1000)
    return None


def _check_complete(path: Path, container: av.container.InputContainer, stream: av.AudioStream,
                    decoded: _Decoded, facts: AudioFacts, head: bytes, size: int) -> None:
    declared = _trusted_declared_ms(path, container, stream, head, size)
    if declared:
        slack = max(TRUNCATION_SLACK_MS, declared * TRUNCATION_SLACK_SHARE)
        if facts.duration_ms < declared - slack:
            raise BadInput(path, f"truncated: decodes to {facts.duration_ms / 1000:.2f} s of the "
                                 f"{declared / 1000:.2f} s its headers declare")
    if facts.container == "ogg" and _ogg_last_page_cut(path, size):
        raise BadInput(path, "truncated: the last Ogg page is cut short")
    if decoded.bad_packets > max(1, decoded.packets * MAX_BAD_PACKET_SHARE):
        raise BadInput(path, f"corrupt: {decoded.bad_packets} of {decoded.packets} packets do not "
                             f"decode ({_short(decoded.first_error)})")


def _trusted_declared_ms(path: Path, container: av.container.InputContainer, stream: av.AudioStream,
                         head: bytes, size: int) -> int | None:
    """The duration the headers declare, when they declare one independently of the file size."""
    name = container_name(container)
    if name == "wav":
        # FFmpeg clamps a WAV's duration to the bytes present; the RIFF header keeps the truth
        return _wav_declared_ms(head)
    if name == "mp3" and not _has_vbr_header(head):
        return None  # without Xing/Info/VBRI, FFmpeg estimates duration from the file size
    return declared_ms(container, stream)


def _short(text: str, n: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


# --- raw header checks -----------------------------------------------------------------------

def _is_encrypted(path: Path, head: bytes, size: int) -> bool:
    if head[:16] == _ASF_HEADER:
        return any(guid in head for guid in _ASF_ENCRYPTION)
    if len(head) >= 8 and head[4:8] in _MP4_TOP_LEVEL:
        return _mp4_encrypted(path, size)
    return False


def _mp4_encrypted(path: Path, size: int) -> bool:
    """Walk the top-level boxes (seeking past ``mdat``) and search ``moov``/``moof`` for protection."""
    try:
        with open(path, "rb") as f:
            offset = 0
            while offset + 8 <= size:
                f.seek(offset)
                header = f.read(16)
                box_size, kind, header_len = _box_header(header, size - offset)
                if box_size is None:
                    return False  # not (or no longer) a box structure: let FFmpeg judge it
                if kind in _PROTECTION_BOXES:
                    return True
                if kind in (b"moov", b"moof") and box_size <= _MAX_MOOV:
                    f.seek(offset + header_len)
                    body = f.read(box_size - header_len)
                    if _protected(body):
                        return True
                offset += box_size
    except OSError as e:
        raise BadInput(path, f"cannot read: {e.strerror or e}") from e
    return False


def _box_header(data: bytes, remaining: int) -> tuple[int | None, bytes, int]:
    if len(data) < 8:
        return None, b"", 0
    box_size, kind = struct.unpack(">I4s", data[:8])
    header_len = 8
    if box_size == 1:
        if len(data) < 16:
            return None, kind, 0
        box_size = struct.unpack(">Q", data[8:16])[0]
        header_len = 16
    elif box_size == 0:
        box_size = remaining
    if box_size < header_len or box_size > remaining:
        return None, kind, 0
    return box_size, kind, header_len


def _protected(body: bytes) -> bool:
    """True if a box tree holds a protected sample entry or a protection box."""
    offset = 0
    while offset + 8 <= len(body):
        box_size, kind, header_len = _box_header(body[offset:offset + 16], len(body) - offset)
        if box_size is None:
            return False
        inner = body[offset + header_len: offset + box_size]
        if kind in _PROTECTION_BOXES:
            return True
        if kind == b"stsd" and _stsd_protected(inner):
            return True
        if kind in _MP4_CONTAINERS and _protected(inner):
            return True
        offset += box_size
    return False


def _stsd_protected(body: bytes) -> bool:
    # version/flags (4) and entry count (4), then sample entries; a protected entry
    # carries a sinf box among its children, wherever its format-specific fields end
    offset = 8
    while offset + 8 <= len(body):
        box_size, kind, _ = _box_header(body[offset:offset + 16], len(body) - offset)
        if box_size is None:
            return False
        if kind in _PROTECTED_ENTRIES:
            return True
        entry = body[offset: offset + box_size]
        if any(b in entry for b in (b"sinf", b"schm", b"frma")):
            return True
        offset += box_size
    return False


def _has_vbr_header(head: bytes) -> bool:
    start = 0
    if head[:3] == b"ID3" and len(head) >= 10:
        start = 10 + _syncsafe(head[6:10])
    first_frame = head[start: start + 4096]
    return any(tag in first_frame for tag in (b"Xing", b"Info", b"VBRI"))


def _syncsafe(b: bytes) -> int:
    return (b[0] << 21) | (b[1] << 14) | (b[2] << 7) | b[3]


def _wav_declared_ms(head: bytes) -> int | None:
    """Duration from the RIFF ``fmt `` and ``data`` chunk sizes (None when unknown, e.g. streamed)."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    offset, byte_rate, data_size = 12, 0, None
    while offset + 8 <= len(head):
        kind, chunk_size = struct.unpack("<4sI", head[offset:offset + 8])
        if kind == b"fmt " and offset + 16 <= len(head):
            byte_rate = struct.unpack("<I", head[offset + 16: offset + 20])[0]
        elif kind == b"data":
            data_size = chunk_size
            break
        offset += 8 + chunk_size + (chunk_size & 1)
    if not byte_rate or data_size in (None, 0, 0xFFFFFFFF):
        return None  # streaming writers leave the size as a 0 or -1 placeholder
    return round(data_size * 1000 / byte_rate)


def _ogg_last_page_cut(path: Path, size: int) -> bool:
    """True when the file ends inside an Ogg page (RFC 3533: a page is 27 + segments + body bytes)."""
    tail_len = min(size, 65307 * 2)
    try:
        with open(path, "rb") as f:
            f.seek(size - tail_len)
            tail = f.read(tail_len)
    except OSError as e:
        raise BadInput(path, f"cannot read: {e.strerror or e}") from e
    pos = tail.rfind(ogg.CAPTURE)
    while pos >= 0:
        if pos + ogg.PAGE_HEADER.size > len(tail):
            return True  # the file ends inside a page header
        page = ogg.read_page(tail, pos)
        if page is not None:  # not just the bytes "OggS" inside audio data
            return page.end > len(tail)
        pos = tail.rfind(ogg.CAPTURE, 0, pos)
    return False


__all__ = ["probe", "Deadline", "declared_ms", "is_encrypted", "ENCRYPTED_REASON", "codec_name", "container_name"]
