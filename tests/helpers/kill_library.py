"""The kill tests' library: tagged real audio, catalog rows, MusicBrainz lines and listens.

Small enough to run every stage in seconds, big enough that imports commit in several blocks
(CATALOG_ROWS rows; 200,000 with SOUNDARK_KILL=long). The MusicBrainz lines are the real
recording of tests/data/musicbrainz (README there: source and licence) with their own ids.
"""

from __future__ import annotations

import json
from pathlib import Path

from soundark.media.synth import SourceTags, Voice, make_file, tiny_jpeg

from helpers.kill import LONG

DATA = Path(__file__).parent.parent / "data" / "musicbrainz"
CATALOG_ROWS = 200_000 if LONG else 10_000
HELD = 8  # real audio files, 1 s each
FORMATS = ("flac", "mp3", "ogg", "wav")
SETTINGS = """\
release_date = "2024-05-01"
target_size = "40KB"
parity_overhead = 0.2
workers = 2
lock_wait_seconds = 120  # two runs at once: the second waits (test_two_runs_at_once_...)
"""


def isrc(i: int) -> str:
    """A valid ISRC for row *i*: the year digits carry what five digits cannot."""
    return f"QZKIL{26 + i // 100_000:02d}{i % 100_000:05d}"


def build_library(folder: Path) -> None:
    """Tagged audio on two albums with covers, catalog rows, MusicBrainz lines and listens."""
    music = folder / "music"
    for i in range(HELD):
        album = f"Album {i % 2}"
        tags = SourceTags(title=f"Song {i}", artists=[f"Artist {i % 3}"], album=album,
                          album_artist="Kill Test", track_number=i // 2 + 1, date="2020-01-01",
                          isrc=isrc(i), license="cc-by-4.0",
                          art=tiny_jpeg((40 + 100 * (i % 2), 80, 160), 32))
        (music / album).mkdir(parents=True, exist_ok=True)
        make_file(music / album / f"{i:02d}", FORMATS[i % 4], 1.0, tags=tags,
                  voice=Voice(notes=tuple(55 + (i * 5 + k * 3) % 24 for k in range(4)), seed=i, noise=0.01))
    with open(folder / "rows.jsonl", "w", encoding="utf-8") as f:
        for i in range(CATALOG_ROWS):
            f.write(json.dumps({"title": f"Song {i}", "artists": [f"Artist {i % 3}" if i < HELD else f"Band {i % 997}"],
                                "album": f"Album {i % 2}" if i < HELD else f"Record {i // 12}",
                                "isrc": isrc(i), "duration_ms": 1000 if i < HELD else 180_000 + i,
                                "rights": "cc-by-4.0"}) + "\n")
    # the real MusicBrainz recording (tests/data/musicbrainz), as dump lines with their own ids
    real = json.loads((DATA / "recording_trimmed.json").read_text())
    with open(folder / "mb.jsonl", "w", encoding="utf-8") as f:
        for i in range(3000):
            line = dict(real, id=f"00000000-0000-4000-8000-{i:012d}", title=f"Song {i}", isrcs=[isrc(i)])
            f.write(json.dumps(line) + "\n")
    with open(folder / "listens.csv", "w", encoding="utf-8") as f:
        f.write("isrc,total_listen_count,total_user_count\n")
        for i in range(5000):
            f.write(f"{isrc(i)},{100_000 // (i + 1) + 1},{i % 50 + 1}\n")
