-- Plan stage results: one row per recording (see docs/plan.md).
CREATE TABLE plan (
    recording_id INTEGER PRIMARY KEY REFERENCES recording(id) ON DELETE CASCADE,
    tier         TEXT NOT NULL CHECK (tier IN ('original', 'opus75', 'skip')),
    est_bytes    INTEGER NOT NULL,          -- bytes of the chosen tier (0 for skip)
    rank         INTEGER NOT NULL,          -- 1 = most listened; ties broken by recording key
    weight       REAL NOT NULL,             -- listens, or mapped popularity
    source_id    INTEGER REFERENCES source_file(id),  -- the file to encode or keep; NULL without audio
    planned_at   TEXT NOT NULL
) STRICT;
CREATE INDEX plan_rank ON plan(rank);
CREATE INDEX plan_tier ON plan(tier);

CREATE TABLE plan_run (
    id              INTEGER PRIMARY KEY,
    created_at      TEXT NOT NULL,
    budget          INTEGER,                -- bytes; NULL = no budget
    tiers           TEXT NOT NULL,          -- comma separated
    recordings      INTEGER NOT NULL,
    kept            INTEGER NOT NULL,
    bytes           INTEGER NOT NULL,
    listens_total   REAL NOT NULL,
    listens_covered REAL NOT NULL,
    changed         INTEGER NOT NULL,       -- plan rows written (new or different)
    tier_changes    INTEGER NOT NULL,       -- recordings whose tier changed (encode re-queues them)
    figures         TEXT NOT NULL           -- JSON: coverage curves and tier table (soundark report)
) STRICT;
