"""The plain-text READMEs inside every release, written for someone who never heard of soundark.

Each is fixed text plus the release's own facts (name, date, counts), so the same release
gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

_BAG = """\
HOW THIS FOLDER IS LAID OUT

This folder is a "BagIt bag" (RFC 8493, https://www.rfc-editor.org/rfc/rfc8493), a simple,
standard way of packaging files so that anyone can check that they arrived complete and
unchanged, now or in fifty years, with ordinary tools.

  bagit.txt              says "this is a bag" and which version of the format it uses
  bag-info.txt           who made the bag and when, and Payload-Oxum: the total size in
                         bytes and the number of files under data/ ("bytes.count")
  manifest-sha256.txt    one line per file under data/: its SHA-256 checksum and its path
  tagmanifest-sha256.txt the same for the three files above
  data/                  the content itself (described below)

TO CHECK THE FILES, open a terminal in this folder and run

  sha256sum -c manifest-sha256.txt          (Linux; on macOS: shasum -a 256 -c ...)

Every line must say OK. Any BagIt tool (e.g. the Library of Congress "bagit" programs)
also validates the whole bag. The folder is shared as a BitTorrent torrent of the same
name; a torrent client checks the same bytes again as it downloads.
"""


def audio_readme(name: str, date: str, files: int, rank_first: int, rank_last: int) -> str:
    return f"""\
{name}: AUDIO RELEASE
{"=" * (len(name) + 15)}

Released {date}. {files} audio recordings, ranks {rank_first} to {rank_last} of a music
preservation archive, most listened first.

WHAT IS IN data/

  audio/          the recordings, one file each. Names are
                  "<key> - <artist> - <title>.<ext>", where <key> identifies the
                  recording: an ISRC (the 12-character International Standard
                  Recording Code, ISO 3901) when it has one, "mb" + its MusicBrainz
                  recording ID, or "sa" + 16 hex digits otherwise. Characters that
                  some operating systems refuse were replaced by "_", and long
                  names were shortened, so every file copies to Windows, macOS and
                  Linux alike.
  tracks.jsonl    one line per audio file, in JSON (https://jsonlines.org): its path,
                  SHA-256 and size; the recording (title, artists, ISRC, MusicBrainz
                  ID, duration, first release date); every album track that carries
                  it (album, track and disc number, label, UPC); "rank" (1 = the most
                  listened recording of the archive), "listens", "tier", "rights",
                  and "provenance": how the file was made and from what.
  README.txt      this file.

THE AUDIO is either Ogg Opus ("tier": "opus75", .opus files, RFC 7845, about 75 kbit/s,
made from the best source available) or the original file kept byte for byte ("tier":
"original", when the source was already a compressed file at or under 192 kbit/s; making
yet another lossy copy would only lose quality). Opus plays in VLC, foobar2000, mpv, any
web browser and most music players.

{_BAG}"""


def art_readme(name: str, date: str, images: int) -> str:
    return f"""\
{name}: COVER ART RELEASE
{"=" * (len(name) + 19)}

Released {date}. {images} distinct cover images of a music preservation archive.

WHAT IS IN data/

  art/<sha256>.<ext>  the images, each named by the SHA-256 checksum of its own bytes
                      (content addressing: the same image is stored once, however many
                      albums use it)
  albums.jsonl        one line per album (JSON Lines): album key, title, artist, date,
                      label, UPC, MusicBrainz release ID, and "image": the path of its
                      cover in this folder
  recordings.jsonl    one line per recording whose own file carried a cover: recording
                      key, ISRC, title, artist and "image"
  README.txt          this file.

Audio files themselves are in the archive's audio releases; they refer to these images
by the same SHA-256.

{_BAG}"""


def metadata_readme(name: str, date: str, files: Iterable[tuple[str, str]],
                    tables: Iterable[tuple[str, str, list[tuple[str, str, str]]]]) -> str:
    """``files``: (path, what it is); ``tables``: (table, what it is, [(column, type, meaning)])."""
    lines = [f"{name}: CATALOG METADATA RELEASE", "=" * (len(name) + 27), "",
             f"Released {date}. A snapshot of the archive's catalog: every recording, artist,",
             "album and track it knows, the plan of what is preserved, and every release. The",
             "operator's own data (local file paths, modification times, job logs) is removed.",
             "", "WHAT IS IN data/", ""]
    for path, what in files:
        lines.append(f"  {path}")
        lines.append(f"      {what}")
    lines += ["", "TABLES AND COLUMNS (the same in the SQLite file and the Parquet files)", ""]
    for table, what, columns in tables:
        lines.append(f"{table}: {what}")
        for column, kind, meaning in columns:
            lines.append(f"  {column:<16} {kind:<8} {meaning}")
        lines.append("")
    return "\n".join(lines) + "\n" + _BAG
