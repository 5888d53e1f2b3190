-- No silent merges (docs/scan.md, "Merges"): every scanned file keeps its acoustic signature and
-- the rule by which it joined its recording; files an operator split off are remembered.
ALTER TABLE source_file ADD COLUMN signature BLOB;    -- soundark/media/fingerprint.py: b'saf1' + uint32 LE per frame
ALTER TABLE source_file ADD COLUMN matched_by TEXT;   -- 'new', 'isrc', 'mbid', 'name+duration+audio', 'name+duration', 'split'
ALTER TABLE source_file ADD COLUMN match_detail TEXT; -- why: the ISRC, the audio distance and the other file, ...
ALTER TABLE source_file ADD COLUMN merged_at TEXT;    -- when it joined a recording it did not create (NULL: it did not)
CREATE INDEX source_file_merged ON source_file(merged_at) WHERE merged_at IS NOT NULL;

-- A file given its own recording by `soundark catalog split`: keyed by its bytes (sha256), so a
-- rescan, also after its mtime changed or at another path, never merges it again.
CREATE TABLE split_file (
    sha256        TEXT PRIMARY KEY,
    path          TEXT NOT NULL,          -- the path it had when it was split
    recording_key TEXT NOT NULL,          -- its own recording
    from_key      TEXT NOT NULL,          -- the recording it was split from
    from_track_id INTEGER,                -- its track there (for --undo)
    split_at      TEXT NOT NULL
) STRICT, WITHOUT ROWID;
