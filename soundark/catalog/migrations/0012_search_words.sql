-- The words of the word index (recording_fts), for prefix* searches (soundark/catalog/vocabulary.py).
--
-- A prefix search `lov*` runs as an OR of the indexed words that start with `lov`: FTS5 evaluates
-- that lazily, where its own prefix query merges every such word's doclist first. Listing the words
-- from FTS5 itself (fts5vocab) reads all their doclists too: 15-50 ms for a 3-letter start at 10M
-- rows. search_word holds the words alone, so the list is one B-tree range.
--
-- It is exact or unused: search_word_state keeps the FTS5 structure record (recording_fts_data,
-- id 10) the words were read at. Every write to the index changes that record, so readers use
-- search_word only while the two are equal. The catalog import refreshes it at its end; until the
-- first import after this migration, it is empty and unused.
CREATE TABLE search_word (
    word TEXT PRIMARY KEY
) WITHOUT ROWID;

CREATE TABLE search_word_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    fts_structure BLOB NOT NULL
);
