-- The catalog model (shared contract of every stage; see docs/catalog.md).
-- recording = one piece of audio, keyed by normalised ISRC when it has one.
CREATE TABLE recording (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,      -- ISRC, or 'mb'+MBID hex, or 'sa'+16 hex (derived)
    isrc        TEXT UNIQUE,               -- normalised, 12 chars
    mbid        TEXT UNIQUE,               -- MusicBrainz recording ID (dashed, lower case)
    title       TEXT NOT NULL,
    artist      TEXT NOT NULL DEFAULT '',  -- display credit, artists in credit order
    album       TEXT NOT NULL DEFAULT '',  -- album of the first track seen (for search)
    duration_ms INTEGER,
    date        TEXT,                      -- first release date, ISO 8601 prefix
    listens     INTEGER,                   -- total listen count, when known
    users       INTEGER,                   -- distinct listeners, when known
    popularity  REAL,                      -- 0..100, the alternative signal
    rights      TEXT NOT NULL DEFAULT 'unknown',
    match_key   TEXT NOT NULL DEFAULT ''   -- normalised artist \x1f title
) STRICT;
CREATE INDEX recording_match ON recording(match_key) WHERE match_key != '';

CREATE TABLE artist (
    id    INTEGER PRIMARY KEY,
    key   TEXT NOT NULL UNIQUE,            -- MBID when known, else 'n:'+normalised name
    name  TEXT NOT NULL,
    mbid  TEXT
) STRICT;

CREATE TABLE recording_artist (
    recording_id INTEGER NOT NULL REFERENCES recording(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,         -- credit order, 0 first
    artist_id    INTEGER NOT NULL REFERENCES artist(id),
    PRIMARY KEY (recording_id, position)
) STRICT, WITHOUT ROWID;

-- An album (the catalog's "release"; the table is named album so as not to
-- collide with the torrents of the release stage).
CREATE TABLE album (
    id         INTEGER PRIMARY KEY,
    key        TEXT NOT NULL UNIQUE,       -- 'mb'+MBID hex, 'upc:'+UPC, or derived from artist+title
    title      TEXT NOT NULL,
    artist     TEXT NOT NULL DEFAULT '',
    date       TEXT,
    label      TEXT,
    upc        TEXT,
    mbid       TEXT,
    art_sha256 TEXT                         -- cover in ARCHIVE/art/, when known
) STRICT;

CREATE TABLE track (
    id           INTEGER PRIMARY KEY,
    key          TEXT NOT NULL UNIQUE,     -- the source's own track ID, or derived
    recording_id INTEGER NOT NULL REFERENCES recording(id),
    album_id     INTEGER REFERENCES album(id),
    title        TEXT NOT NULL,
    artist       TEXT NOT NULL DEFAULT '',
    track_number INTEGER,
    disc_number  INTEGER
) STRICT;
CREATE INDEX track_recording ON track(recording_id);
CREATE INDEX track_album ON track(album_id);

CREATE TABLE source_file (
    id           INTEGER PRIMARY KEY,
    path         TEXT NOT NULL UNIQUE,     -- absolute path on the operator's machine
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    sha256       TEXT,
    status       TEXT NOT NULL CHECK (status IN ('ok', 'rejected')),
    error        TEXT,                     -- why it was rejected
    container    TEXT,
    codec        TEXT,
    bitrate      INTEGER,                  -- bit/s
    sample_rate  INTEGER,
    channels     INTEGER,
    duration_ms  INTEGER,
    lossless     INTEGER,
    recording_id INTEGER REFERENCES recording(id),
    track_id     INTEGER REFERENCES track(id),
    tags         TEXT,                     -- JSON: every text tag, soundark names
    license      TEXT,                     -- the file's own LICENSE tag: evidence of rights
    copyright    TEXT,                     -- the file's own COPYRIGHT tag
    has_art      INTEGER NOT NULL DEFAULT 0,
    rights       TEXT NOT NULL DEFAULT 'unknown',
    scanned_at   TEXT NOT NULL
) STRICT;
CREATE INDEX source_file_recording ON source_file(recording_id);
CREATE INDEX source_file_sha256 ON source_file(sha256);

-- Full-text search over title, artists and album (external content: no copy of the text).
CREATE VIRTUAL TABLE recording_fts USING fts5(
    title, artist, album,
    content='recording', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER recording_fts_ai AFTER INSERT ON recording BEGIN
    INSERT INTO recording_fts(rowid, title, artist, album) VALUES (new.id, new.title, new.artist, new.album);
END;
CREATE TRIGGER recording_fts_ad AFTER DELETE ON recording BEGIN
    INSERT INTO recording_fts(recording_fts, rowid, title, artist, album)
    VALUES ('delete', old.id, old.title, old.artist, old.album);
END;
CREATE TRIGGER recording_fts_au AFTER UPDATE OF title, artist, album ON recording BEGIN
    INSERT INTO recording_fts(recording_fts, rowid, title, artist, album)
    VALUES ('delete', old.id, old.title, old.artist, old.album);
    INSERT INTO recording_fts(rowid, title, artist, album) VALUES (new.id, new.title, new.artist, new.album);
END;
