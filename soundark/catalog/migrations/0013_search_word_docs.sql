-- How many recordings hold each word of search_word (0012): fts5vocab's `doc` count, read when the
-- words are (soundark/catalog/vocabulary.py).
--
-- A lone prefix* with 300 or more hits (a *common* search: its first 300 hits are ranked by
-- listens) takes its hits from its most common words, the fewest whose counts add up to 300,
-- rather than from an OR of every word that starts so: FTS5 seeks each word of an OR before it
-- returns a row (~20 us a word at 10M rows; a 4-letter start has 100-250 words there, ~500 at
-- 50M). docs/catalog.md, "Prefixes".
--
-- The table is rebuilt here from FTS5, with its structure record, so it is current after the
-- migration whatever it was before (~10 s at 50M rows).
DROP TABLE search_word;
CREATE TABLE search_word (
    word TEXT PRIMARY KEY,
    docs INTEGER NOT NULL
) WITHOUT ROWID;

CREATE VIRTUAL TABLE IF NOT EXISTS temp.soundark_fts_terms USING fts5vocab(main, recording_fts, 'row');
INSERT INTO search_word(word, docs) SELECT term, doc FROM temp.soundark_fts_terms;
DELETE FROM search_word_state;
INSERT INTO search_word_state(id, fts_structure) SELECT 1, block FROM recording_fts_data WHERE id = 10;
