-- Bulk imports index recordings for full-text search once per batch, not once per row.
-- FTS5 flushes its pending terms at every statement savepoint, so the per-row insert
-- trigger of 0001 writes one tiny index segment per recording (~35 us/row measured,
-- ten times the rest of the import). While a bulk importer holds its write
-- transaction it puts a row in fts_deferred, inserts recordings, then indexes them
-- with one INSERT INTO recording_fts ... SELECT and deletes the row before COMMIT:
-- other connections never see the flag, and every committed recording is indexed.
CREATE TABLE fts_deferred (
    id INTEGER PRIMARY KEY CHECK (id = 1)
) STRICT;
DROP TRIGGER recording_fts_ai;
CREATE TRIGGER recording_fts_ai AFTER INSERT ON recording
WHEN NOT EXISTS (SELECT 1 FROM fts_deferred) BEGIN
    INSERT INTO recording_fts(rowid, title, artist, album) VALUES (new.id, new.title, new.artist, new.album);
END;
