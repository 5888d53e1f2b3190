-- More identifiers per recording than the recording row holds (docs/catalog.md, "Identifiers").
-- recording.isrc and recording.mbid stay the primary identifiers; these tables hold the others:
-- a recording with several ISRCs (MusicBrainz lists them all) is found by each of them, and
-- several MusicBrainz recordings that share one ISRC (duplicates MusicBrainz has not merged) are
-- kept as aliases of the one recording: each MBID resolves to it and listens by any of them count.
-- An alias never repeats a primary identifier of any recording; every row says where it came from.
CREATE TABLE isrc_alias (
    isrc         TEXT PRIMARY KEY,          -- normalised, 12 chars
    recording_id INTEGER NOT NULL REFERENCES recording(id) ON DELETE CASCADE,
    source       TEXT NOT NULL              -- e.g. 'musicbrainz:recording.tar.xz:123'
) STRICT, WITHOUT ROWID;
CREATE INDEX isrc_alias_recording ON isrc_alias(recording_id);

CREATE TABLE mbid_alias (
    mbid         TEXT PRIMARY KEY,          -- MusicBrainz recording ID (dashed, lower case)
    recording_id INTEGER NOT NULL REFERENCES recording(id) ON DELETE CASCADE,
    source       TEXT NOT NULL,
    reason       TEXT NOT NULL              -- why it is an alias, e.g. 'shares ISRC GBAYE0601498'
) STRICT, WITHOUT ROWID;
CREATE INDEX mbid_alias_recording ON mbid_alias(recording_id);
