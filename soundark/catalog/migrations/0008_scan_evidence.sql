-- What a scan learned about each file beyond its stream facts (docs/scan.md).
-- decoder: which library read the file: 'ffmpeg', or 'libsndfile' for a file FFmpeg refuses
--   (soundark/media/fallback.py); encode decodes it with the same one. NULL when rejected or
--   scanned before this migration (encode then tries FFmpeg, then libsndfile).
-- guessed: JSON list of the fields taken from the path, not from tags ('title', 'artist',
--   'album', 'track_number', 'disc_number'); NULL when nothing was guessed.
-- licence_conflict: why the file's own LICENSE/COPYRIGHT tag contradicts the rights given to the
--   scan (e.g. "LICENSE says cc-by-nc-4.0: nc forbids what cc-by-4.0 allows"); NULL when none.
--   release holds such recordings back unless the setting release_rights_conflicts is true.
ALTER TABLE source_file ADD COLUMN decoder TEXT;
ALTER TABLE source_file ADD COLUMN guessed TEXT;
ALTER TABLE source_file ADD COLUMN licence_conflict TEXT;
CREATE INDEX source_file_licence_conflict ON source_file(recording_id) WHERE licence_conflict IS NOT NULL;
