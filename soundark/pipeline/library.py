"""The built-in demo collection: real audio, tagged, with a catalog and listen counts.

Everything is synthesised here (no downloads): 26 tracks of 15-40 s with their
own melodies and timbres on four albums, in FLAC, WAV, Ogg Vorbis and MP3, fully
tagged with ISRCs (two recordings appear on two albums each, so tracks share an
ISRC), one corrupt file, a catalog file (JSONL) that also lists recordings the
collection does not hold, and long-tailed (Zipf-like) listen counts for every
recording but the own tracks of one album (``UNCOUNTED_ALBUM``): the plan weighs
those by the fallback (their album's one counted track, shared from another
album, dampened).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from soundark.media.synth import SourceTags, Voice, make_file, tiny_jpeg

ALBUMS = (
    # (album, artist, date, label, format, rights, cover colour)
    ("Harbour Lights", "The Tidewater Ensemble", "2019-04-12", "Quay Records", "flac", "cc-by-4.0", (30, 80, 160)),
    ("Copper Fields", "Mara Vell", "2021-09-03", "Open Furrow", "mp3", "cc-by-sa-4.0", (190, 110, 40)),
    ("Night Signals", "Ostrander & Kell", "2016-11-20", "Lantern Tapes", "ogg", "public-domain", (40, 40, 60)),
    ("Room Tone", "Aiko Brandt", "2023-02-14", "Self-released", "wav", "owned", (120, 160, 120)),
)
TITLES = (
    ("Morning Tide", "Salt Wind", "Lamplighter", "Fog Bell", "Ferry at Dusk", "Gull Song", "Breakwater"),
    ("Plough Song", "Rust and Rain", "Harvest Moon Waltz", "Fence Lines", "Tin Roof", "Wheat Light", "Dry Creek"),
    ("Shortwave", "Numbers Station", "Static Bloom", "Relay", "Carrier Wave", "Late Transmission"),
    ("Radiator", "Window Hum", "Fridge in E", "Ceiling Fan", "Hallway", "Kettle"),
)
# track (album index, track index) that reappears on another album, with its ISRC
SHARED = {(0, 0): (2, 6), (1, 2): (3, 6)}
SCALES = ((0, 2, 4, 7, 9), (0, 2, 3, 5, 7, 8, 10), (0, 3, 5, 6, 7, 10), (0, 4, 7, 11, 14))
HARMONICS = ((1.0, 0.5, 0.25), (1.0, 0.2, 0.6, 0.1), (1.0, 0.0, 0.33, 0.0, 0.2), (1.0, 0.7, 0.5, 0.3, 0.2))
EXTRA_CATALOG_RECORDINGS = 14  # listed in the catalog, not held as audio
UNCOUNTED_ALBUM = 2  # "Night Signals": no listen counts for its own tracks (the fallback shows)


@dataclass(frozen=True)
class DemoLibrary:
    music: Path          # folder of audio files to scan
    catalog_file: Path   # JSONL catalog rows
    listens_file: Path   # CSV of isrc,total_listen_count,total_user_count
    tracks: int
    corrupt: Path
    search_example: str  # a query that finds a demo track


def _isrc(album: int, track: int) -> str:
    return f"QZSDA{19 + album}{album * 100 + track + 1:05d}"  # country QZ, registrant SDA


def _voice(album: int, track: int) -> Voice:
    scale = SCALES[album]
    root = 55 + (track * 5) % 12
    notes = tuple(root + scale[(track * 3 + i * (track + 2)) % len(scale)] + 12 * (i % 3 == 2)
                  for i in range(6 + track % 3))
    return Voice(notes=notes, note_seconds=0.22 + 0.05 * ((album + track) % 4),
                 harmonics=HARMONICS[album], vibrato_hz=4.5 if track % 2 else 0.0,
                 noise=0.01 * (album == 2), seed=album * 10 + track)


def _zipf_listens(rank: int) -> int:
    return int(250_000 / (rank + 1) ** 1.1)


def build_demo_library(root: Path) -> DemoLibrary:
    """Write the demo collection under *root* (idempotent: existing files are kept)."""
    music = root / "music"
    music.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    count = 0
    for a, (album, artist, date, label, fmt, rights, colour) in enumerate(ALBUMS):
        folder = music / artist / album
        folder.mkdir(parents=True, exist_ok=True)
        art = tiny_jpeg(colour, 64)
        n_tracks = len(TITLES[a]) + sum(1 for dst in SHARED.values() if dst[0] == a)
        for t in range(n_tracks):
            shared_from = next((src for src, dst in SHARED.items() if dst == (a, t)), None)
            src_a, src_t = shared_from or (a, t)
            title = TITLES[src_a][src_t]
            track_artist = ALBUMS[src_a][1]
            seconds = 15 + (src_a * 7 + src_t * 5) % 26
            code = _isrc(src_a, src_t)
            path = folder / f"{t + 1:02d} {title}"
            tags = SourceTags(title=title, artists=[track_artist], album=album, album_artist=artist,
                              track_number=t + 1, disc_number=1, date=date, isrc=code, label=label,
                              replaygain_track_gain=f"{-4.0 - t * 0.5:.2f} dB", license=rights,
                              copyright=f"{date[:4]} {artist}", art=art)
            written = next(iter(folder.glob(f"{t + 1:02d} *")), None)
            if written is None:
                make_file(path, fmt, seconds, voice=_voice(src_a, src_t),
                          sample_rate=48000 if fmt == "wav" else 44100, tags=tags,
                          bitrate=128_000 if fmt == "mp3" else None)
            count += 1
            rows.append({"title": title, "artists": [track_artist], "album": album, "isrc": code,
                         "duration_ms": seconds * 1000, "date": date, "label": label,
                         "track_number": t + 1, "disc_number": 1, "rights": rights})
    for i in range(EXTRA_CATALOG_RECORDINGS):  # the catalog knows more than the collection holds
        rows.append({"title": f"Unheld Recording {i + 1}", "artists": ["Various Archivists"],
                     "album": "Lost Broadcasts", "isrc": f"QZSDU98{i + 1:05d}",
                     "duration_ms": (120 + 17 * i) * 1000, "date": "1998-01-01", "rights": "unknown"})
    corrupt = music / "Mara Vell" / "Copper Fields" / "99 Damaged Take.flac"
    corrupt.write_bytes(b"fLaC\x00\x00\x00\x22" + bytes(range(256)) * 8)  # a header, then junk
    catalog_file = root / "catalog.jsonl"
    catalog_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                            encoding="utf-8")
    uncounted = {_isrc(UNCOUNTED_ALBUM, t) for t in range(len(TITLES[UNCOUNTED_ALBUM]))}
    distinct = [c for c in dict.fromkeys(r["isrc"] for r in rows) if c not in uncounted]
    order = sorted(distinct, key=lambda c: (hash_rank(c), c))
    listens_file = root / "listens.csv"
    listens_file.write_text("isrc,total_listen_count,total_user_count\n" + "".join(
        f"{c},{_zipf_listens(i)},{max(1, _zipf_listens(i) // 40)}\n" for i, c in enumerate(order)))
    return DemoLibrary(music, catalog_file, listens_file, count, corrupt, "harbour tide")


def hash_rank(code: str) -> int:
    """A fixed, scrambled popularity order (so the most listened are not just album 1)."""
    return sum((i + 7) * ord(ch) for i, ch in enumerate(code)) % 97
