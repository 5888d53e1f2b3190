"""Synthesise short pieces of real audio and write them in common formats, tagged.

Used by ``soundark demo`` and by the tests: every file is encoded by FFmpeg's
real encoders (through PyAV) and tagged with mutagen, so the rest of soundark
meets them exactly as it meets a real collection.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

# format name -> (container format, codec, sample format, extension)
FORMATS: dict[str, tuple[str, str, str, str]] = {
    "flac": ("flac", "flac", "s16", ".flac"),
    "wav": ("wav", "pcm_s16le", "s16", ".wav"),
    "wav24": ("wav", "pcm_s24le", "s32", ".wav"),
    "wavf32": ("wav", "pcm_f32le", "flt", ".wav"),
    "aiff": ("aiff", "pcm_s16be", "s16", ".aiff"),
    "ogg": ("ogg", "vorbis", "fltp", ".ogg"),
    "opus": ("ogg", "libopus", "s16", ".opus"),
    "mp3": ("mp3", "libmp3lame", "s16p", ".mp3"),
    "m4a": ("ipod", "aac", "fltp", ".m4a"),
}


@dataclass(frozen=True)
class Voice:
    """A melody and a timbre: enough to make tracks that sound different."""

    notes: tuple[int, ...] = (60, 62, 64, 65, 67, 65, 64, 62)  # MIDI numbers
    note_seconds: float = 0.35
    harmonics: tuple[float, ...] = (1.0, 0.5, 0.25)
    vibrato_hz: float = 0.0
    noise: float = 0.0
    seed: int = 0


def render(voice: Voice, seconds: float, sample_rate: int = 44100, channels: int = 2) -> np.ndarray:
    """Float32 samples shaped (channels, n), peak about -3 dBFS."""
    n = int(round(seconds * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    note_index = (t / voice.note_seconds).astype(np.int64) % len(voice.notes)
    midi = np.asarray(voice.notes, dtype=np.float64)[note_index]
    freq = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    if voice.vibrato_hz:
        freq = freq * (1.0 + 0.004 * np.sin(2 * np.pi * voice.vibrato_hz * t))
    phase = 2 * np.pi * np.cumsum(freq) / sample_rate
    sig = sum(a * np.sin((k + 1) * phase) for k, a in enumerate(voice.harmonics))
    pos = (t % voice.note_seconds) / voice.note_seconds
    sig = sig * np.minimum(1.0, pos * 20) * np.exp(-2.5 * pos)  # attack + decay per note
    if voice.noise:
        rng = np.random.default_rng(voice.seed)
        sig = sig + voice.noise * rng.standard_normal(n)
    sig = sig / (np.max(np.abs(sig)) or 1.0) * 0.7
    out = np.empty((channels, n), dtype=np.float32)
    for c in range(channels):  # a little stereo spread
        out[c] = sig * (1.0 - 0.15 * c / max(1, channels - 1))
    return out


def encode_file(path: Path, samples: np.ndarray, sample_rate: int, fmt: str,
                bitrate: int | None = None) -> Path:
    """Encode float samples (channels, n) to *path* in *fmt* (a key of FORMATS)."""
    container_fmt, codec, sample_fmt, _ = FORMATS[fmt]
    channels = samples.shape[0]
    layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")
    rate = 48000 if codec == "libopus" and sample_rate not in (8000, 12000, 16000, 24000, 48000) else sample_rate
    # bitexact: no random Ogg serial numbers, so the same call writes the same bytes
    with av.open(str(path), "w", format=container_fmt, options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        if bitrate:
            stream.codec_context.bit_rate = bitrate
        frame = av.AudioFrame.from_ndarray(_interleave(samples), format="flt", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = 0
        frame.time_base = Fraction(1, sample_rate)
        resampler = av.AudioResampler(format=sample_fmt, layout=layout, rate=rate,
                                      frame_size=stream.codec_context.frame_size or None)
        for chunk in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(chunk):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _interleave(samples: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(samples.T).reshape(1, -1)


def tiny_jpeg(color: tuple[int, int, int] = (200, 60, 40), size: int = 16) -> bytes:
    """A real, small JPEG (encoded by FFmpeg's mjpeg) for cover-art tests."""
    import io

    img = np.zeros((size, size, 3), dtype=np.uint8)
    img[:, :] = color
    img[: size // 2, : size // 2] = (255, 255, 255)
    buf = io.BytesIO()
    with av.open(buf, "w", format="image2pipe") as out:
        stream = out.add_stream("mjpeg", rate=1)
        stream.width = stream.height = size
        stream.pix_fmt = "yuvj420p"
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuvj420p")
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


@dataclass
class SourceTags:
    """Tags to write into a synthesised file (soundark names; see media.tags for reading)."""

    title: str | None = None
    artists: list[str] = field(default_factory=list)
    album: str | None = None
    album_artist: str | None = None
    track_number: int | None = None
    disc_number: int | None = None
    date: str | None = None
    isrc: str | None = None
    label: str | None = None
    mb_recording_id: str | None = None
    mb_release_id: str | None = None
    replaygain_track_gain: str | None = None  # e.g. "-6.50 dB"
    replaygain_album_gain: str | None = None
    license: str | None = None
    copyright: str | None = None
    art: bytes | None = None  # JPEG bytes
    extra: dict[str, str] = field(default_factory=dict)


def _vorbis_comments(tags: SourceTags) -> dict[str, list[str]]:
    c: dict[str, list[str]] = {}
    simple = {
        "TITLE": tags.title, "ALBUM": tags.album, "ALBUMARTIST": tags.album_artist,
        "DATE": tags.date, "ISRC": tags.isrc, "LABEL": tags.label,
        "MUSICBRAINZ_TRACKID": tags.mb_recording_id, "MUSICBRAINZ_ALBUMID": tags.mb_release_id,
        "REPLAYGAIN_TRACK_GAIN": tags.replaygain_track_gain,
        "REPLAYGAIN_ALBUM_GAIN": tags.replaygain_album_gain,
        "LICENSE": tags.license, "COPYRIGHT": tags.copyright,
        "TRACKNUMBER": None if tags.track_number is None else str(tags.track_number),
        "DISCNUMBER": None if tags.disc_number is None else str(tags.disc_number),
    }
    for k, v in simple.items():
        if v is not None:
            c[k] = [v]
    if tags.artists:
        c["ARTIST"] = list(tags.artists)
    for k, v in tags.extra.items():
        c[k.upper()] = [v]
    return c


def _picture(art: bytes) -> Any:
    from mutagen.flac import Picture

    pic = Picture()
    pic.type, pic.mime, pic.desc, pic.data = 3, "image/jpeg", "cover", art
    return pic


def write_tags(path: Path, tags: SourceTags) -> None:
    """Write *tags* in the native tag format of the file at *path*."""
    import mutagen
    from mutagen import id3

    f = mutagen.File(str(path))
    if f is None:
        raise ValueError(f"{path}: mutagen does not recognise this file")
    name = type(f).__name__
    if name in ("FLAC", "OggVorbis", "OggOpus"):
        for k, v in _vorbis_comments(tags).items():
            f[k] = v
        if tags.art:
            if name == "FLAC":
                f.add_picture(_picture(tags.art))
            else:
                f["METADATA_BLOCK_PICTURE"] = [base64.b64encode(_picture(tags.art).write()).decode()]
    elif name == "MP4":
        f.tags = f.tags or mutagen.mp4.MP4Tags()
        m = {"\xa9nam": tags.title, "\xa9alb": tags.album, "aART": tags.album_artist,
             "\xa9day": tags.date, "cprt": tags.copyright}
        for k, v in m.items():
            if v is not None:
                f.tags[k] = [v]
        if tags.artists:
            f.tags["\xa9ART"] = list(tags.artists)
        if tags.track_number:
            f.tags["trkn"] = [(tags.track_number, 0)]
        if tags.disc_number:
            f.tags["disk"] = [(tags.disc_number, 0)]
        free = {"ISRC": tags.isrc, "LABEL": tags.label, "MusicBrainz Track Id": tags.mb_recording_id,
                "MusicBrainz Album Id": tags.mb_release_id, "LICENSE": tags.license,
                "replaygain_track_gain": tags.replaygain_track_gain,
                "replaygain_album_gain": tags.replaygain_album_gain, **tags.extra}
        for k, v in free.items():
            if v is not None:
                f.tags[f"----:com.apple.iTunes:{k}"] = [mutagen.mp4.MP4FreeForm(v.encode())]
        if tags.art:
            f.tags["covr"] = [mutagen.mp4.MP4Cover(tags.art, imageformat=mutagen.mp4.MP4Cover.FORMAT_JPEG)]
    else:  # MP3, WAVE, AIFF: ID3
        if f.tags is None:
            f.add_tags()
        t = f.tags
        frames = {id3.TIT2: tags.title, id3.TALB: tags.album, id3.TPE2: tags.album_artist,
                  id3.TDRC: tags.date, id3.TSRC: tags.isrc, id3.TPUB: tags.label,
                  id3.TCOP: tags.copyright,
                  id3.TRCK: None if tags.track_number is None else str(tags.track_number),
                  id3.TPOS: None if tags.disc_number is None else str(tags.disc_number)}
        for frame, v in frames.items():
            if v is not None:
                t.add(frame(encoding=3, text=[v]))
        if tags.artists:
            t.add(id3.TPE1(encoding=3, text=list(tags.artists)))
        if tags.mb_recording_id:
            t.add(id3.UFID(owner="http://musicbrainz.org", data=tags.mb_recording_id.encode()))
        txxx = {"MusicBrainz Album Id": tags.mb_release_id, "LICENSE": tags.license,
                "REPLAYGAIN_TRACK_GAIN": tags.replaygain_track_gain,
                "REPLAYGAIN_ALBUM_GAIN": tags.replaygain_album_gain, **tags.extra}
        for desc, v in txxx.items():
            if v is not None:
                t.add(id3.TXXX(encoding=3, desc=desc, text=[v]))
        if tags.art:
            t.add(id3.APIC(encoding=3, mime="image/jpeg", type=3, desc="cover", data=tags.art))
    f.save()


def make_file(path: Path, fmt: str, seconds: float = 1.0, *, voice: Voice | None = None,
              sample_rate: int = 44100, channels: int = 2, tags: SourceTags | None = None,
              bitrate: int | None = None) -> Path:
    """Render, encode and tag one file; the extension comes from FORMATS if *path* has none."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(FORMATS[fmt][3])
    samples = render(voice or Voice(), seconds, sample_rate, channels)
    encode_file(path, samples, sample_rate, fmt, bitrate)
    if tags is not None:
        write_tags(path, tags)
    return path
