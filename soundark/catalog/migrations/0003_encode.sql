-- Encode stage: the job journal and the outputs in the content-addressed store.
CREATE TABLE encode_job (
    recording_id  INTEGER PRIMARY KEY REFERENCES recording(id) ON DELETE CASCADE,
    tier          TEXT NOT NULL CHECK (tier IN ('original', 'opus75')),
    source_id     INTEGER NOT NULL REFERENCES source_file(id),
    rank          INTEGER NOT NULL DEFAULT 0, -- plan rank, copied so the queue is one index scan
    status        TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    lease_owner   TEXT,                     -- host:pid:nonce of the run holding it
    lease_expires REAL,                     -- unix time; an expired lease may be taken over
    error         TEXT,
    updated_at    TEXT NOT NULL
) STRICT;
CREATE INDEX encode_job_status ON encode_job(status, rank);

-- Outputs are never deleted by a re-plan: a recording may hold one per tier.
CREATE TABLE encoded (
    recording_id  INTEGER NOT NULL REFERENCES recording(id) ON DELETE CASCADE,
    tier          TEXT NOT NULL CHECK (tier IN ('original', 'opus75')),
    sha256        TEXT NOT NULL,            -- of the stored bytes: store/ab/cd/<sha256><ext>
    bytes         INTEGER NOT NULL,
    ext           TEXT NOT NULL,            -- '.opus', or the original's extension
    duration_ms   INTEGER,
    source_sha256 TEXT NOT NULL,
    encoder       TEXT NOT NULL,            -- e.g. 'soundark 0.1.0; libopus 1.5.2; 75000 bit/s'
    art_sha256    TEXT,                     -- cover extracted into ARCHIVE/art/, when the source had one
    created_at    TEXT NOT NULL,
    PRIMARY KEY (recording_id, tier)
) STRICT;
CREATE INDEX encoded_sha256 ON encoded(sha256);

CREATE TABLE art (
    sha256 TEXT PRIMARY KEY,                -- ARCHIVE/art/ab/cd/<sha256><ext>
    mime   TEXT NOT NULL,
    ext    TEXT NOT NULL,
    bytes  INTEGER NOT NULL,
    width  INTEGER,
    height INTEGER
) STRICT;
