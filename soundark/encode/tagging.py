"""The catalog's side of an output's Vorbis comments (RFC 7845 5.2, Picard's field names).

These values replace the source file's own tags field by field: the catalog holds
the matched, normalised identity (ISRC per ISO 3901, MusicBrainz IDs) that the
release manifests publish, so the audio files and the manifests agree. Fields the
catalog does not know keep the file's values.
"""

from __future__ import annotations

from soundark.catalog.store import Catalog


def catalog_comments(catalog: Catalog, recording_id: int, source_id: int) -> dict[str, list[str]]:
    """Vorbis comments from the recording, its credited artists, and the source's track/album."""
    rec = catalog.execute(
        "SELECT title, artist, isrc, mbid, date, rights FROM recording WHERE id = ?",
        (recording_id,)).fetchone()
    if rec is None:
        return {}
    out: dict[str, list[str]] = {}

    def put(name: str, *values: object) -> None:
        clean = [str(v) for v in values if v not in (None, "")]
        if clean:
            out[name] = clean

    put("TITLE", rec["title"])
    put("ARTIST", rec["artist"])
    artists = catalog.execute(
        "SELECT a.name, a.mbid FROM recording_artist ra JOIN artist a ON a.id = ra.artist_id "
        "WHERE ra.recording_id = ? ORDER BY ra.position", (recording_id,)).fetchall()
    if len(artists) > 1:
        put("ARTISTS", *[a["name"] for a in artists])
    if artists and all(a["mbid"] for a in artists):
        put("MUSICBRAINZ_ARTISTID", *[a["mbid"] for a in artists])
    put("ISRC", rec["isrc"])
    put("MUSICBRAINZ_TRACKID", rec["mbid"])
    put("DATE", rec["date"])
    _album_fields(catalog, source_id, put)
    put("SOUNDARK_RIGHTS", rec["rights"])
    return out


def _album_fields(catalog: Catalog, source_id: int, put) -> None:  # noqa: ANN001
    row = catalog.execute(
        "SELECT t.track_number, t.disc_number, a.title AS album, a.artist AS album_artist, "
        "a.date, a.label, a.upc, a.mbid FROM source_file s JOIN track t ON t.id = s.track_id "
        "LEFT JOIN album a ON a.id = t.album_id WHERE s.id = ?", (source_id,)).fetchone()
    if row is None:
        return
    put("TRACKNUMBER", row["track_number"])
    put("DISCNUMBER", row["disc_number"])
    put("ALBUM", row["album"])
    put("ALBUMARTIST", row["album_artist"])
    put("DATE", row["date"])  # the album's date is what players show beside the album
    put("LABEL", row["label"])
    put("BARCODE", row["upc"])
    put("MUSICBRAINZ_ALBUMID", row["mbid"])
