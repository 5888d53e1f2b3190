-- Release stage: every published release (one BagIt bag + one torrent) and the files in it.
-- Rows are only ever added: a published release never changes (docs/release.md).
CREATE TABLE release (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,     -- folder under releases/ and the torrent's name
    phase         TEXT NOT NULL CHECK (phase IN ('metadata', 'audio', 'art', 'parity')),
    created       TEXT NOT NULL,            -- release date, YYYY-MM-DD (also the torrent's creation date)
    infohash_v1   TEXT NOT NULL,            -- 40 hex, SHA-1 of the v1 info dictionary
    infohash_v2   TEXT,                     -- 64 hex for BEP 52 hybrids, NULL for v1 torrents
    bytes         INTEGER NOT NULL,         -- every file of the bag, tag files included
    files         INTEGER NOT NULL,         -- every file of the bag, tag files included
    rank_first    INTEGER,                  -- best (lowest) plan rank in an audio release
    rank_last     INTEGER,                  -- worst (highest) plan rank in an audio release
    listens       INTEGER,                  -- sum of the listens of its recordings
    listens_share REAL,                     -- listens / all listens in the catalog, 0..1
    torrent       TEXT NOT NULL,            -- relative to releases/, e.g. torrents/NAME.torrent
    magnet        TEXT NOT NULL,            -- magnet link (BEP 9), with trackers and web seeds
    parity_for    TEXT                      -- for a parity release: the name of the audio release it repairs
) STRICT;
CREATE INDEX release_phase ON release(phase);

CREATE TABLE release_file (
    release_id   INTEGER NOT NULL REFERENCES release(id),
    recording_id INTEGER REFERENCES recording(id) ON DELETE SET NULL,  -- NULL: not a recording's audio
    path         TEXT NOT NULL,             -- relative to the bag, e.g. data/audio/NAME.opus
    sha256       TEXT NOT NULL,
    bytes        INTEGER NOT NULL,
    PRIMARY KEY (release_id, path)
) STRICT;
CREATE INDEX release_file_recording ON release_file(recording_id);
CREATE INDEX release_file_sha256 ON release_file(sha256);
