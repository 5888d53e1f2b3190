-- The recordings of the most common words, stored (soundark/catalog/postings.py, vocabulary.py).
--
-- A search of a rare word and a common one costs FTS5 a seek in the common word's doclist per row
-- of the rare word (~1.4 us at 50M rows); the web intersects them in memory instead, with the
-- common word's recording ids read from here: every word of search_word held by at least 1/200 of
-- the recordings, its ids ascending as little-endian integers of `width` bytes (4, or 8 past 2^31).
--
-- Exact or unused, like search_word: written by vocabulary.refresh in the same transaction as
-- search_word_state, whose `postings` flag says they were; readers use them only while the
-- structure record there equals the index's. Until the next import (whose end refreshes), the
-- table is empty and searches ask FTS5 as before.
CREATE TABLE search_postings (
    word TEXT PRIMARY KEY,
    width INTEGER NOT NULL CHECK (width IN (4, 8)),
    ids BLOB NOT NULL
);
ALTER TABLE search_word_state ADD COLUMN postings INTEGER NOT NULL DEFAULT 0;
