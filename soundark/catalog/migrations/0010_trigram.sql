-- Substring search for scripts written without spaces, and index builds deferred across a
-- fresh bulk import (docs/catalog.md, "Search" and "Bulk imports").
--
-- unicode61 makes one token of a whole run of CJK or Thai text, so the word index finds
-- '東京タワー' but not 'タワー' inside it. recording_trigram indexes every 3-character window
-- (FTS5's trigram tokenizer) of the recordings whose title, artists or album hold such a script
-- (the view recording_nospace: CJK ideographs, kana, Thai, Lao, Khmer, Myanmar); other rows
-- never need it, and leaving them out keeps the index a small fraction of the catalog.
-- soundark/catalog/search.py NOSPACE lists the same ranges (a test checks they agree). The first,
-- one-range GLOB (any character from U+0E00 up) only spares most rows the slower second one.
CREATE VIEW recording_nospace AS
SELECT id, title, artist, album FROM recording
WHERE (title || ' ' || artist || ' ' || album) GLOB '*[฀-𯿿]*'
      AND (title || ' ' || artist || ' ' || album)
      GLOB '*[぀-鿿豈-﫿ｦ-ﾟ฀-໿က-႟ក-៿𠀀-𯿿]*';
CREATE VIRTUAL TABLE recording_trigram USING fts5(
    title, artist, album,
    content='recording_nospace', content_rowid='id',
    tokenize='trigram'
);
INSERT INTO recording_trigram(recording_trigram) VALUES ('rebuild');

-- fts_deferred.upto: recordings with id > upto are not in the search indexes yet. A bulk batch
-- sets it inside its transaction (as in 0005); a fresh import keeps the row across its batches
-- and indexes everything once at the end (soundark/catalog/deferred.py), and a row left by a
-- killed import is finished by the next writer that opens the catalog. NULL: every row pending.
ALTER TABLE fts_deferred ADD COLUMN upto INTEGER;

DROP TRIGGER recording_fts_ad;
DROP TRIGGER recording_fts_au;
-- A recording not indexed yet must not be 'delete'd from an external-content index
-- (that would corrupt it): the update and delete triggers skip rows above fts_deferred.upto.
CREATE TRIGGER recording_fts_ad AFTER DELETE ON recording
WHEN NOT EXISTS (SELECT 1 FROM fts_deferred WHERE upto IS NULL OR old.id > upto) BEGIN
    INSERT INTO recording_fts(recording_fts, rowid, title, artist, album)
    VALUES ('delete', old.id, old.title, old.artist, old.album);
END;
CREATE TRIGGER recording_fts_au AFTER UPDATE OF title, artist, album ON recording
WHEN NOT EXISTS (SELECT 1 FROM fts_deferred WHERE upto IS NULL OR old.id > upto) BEGIN
    INSERT INTO recording_fts(recording_fts, rowid, title, artist, album)
    VALUES ('delete', old.id, old.title, old.artist, old.album);
    INSERT INTO recording_fts(rowid, title, artist, album) VALUES (new.id, new.title, new.artist, new.album);
END;

CREATE TRIGGER recording_trigram_ai AFTER INSERT ON recording
WHEN NOT EXISTS (SELECT 1 FROM fts_deferred)
 AND (new.title || ' ' || new.artist || ' ' || new.album) GLOB '*[฀-𯿿]*'
     AND (new.title || ' ' || new.artist || ' ' || new.album)
     GLOB '*[぀-鿿豈-﫿ｦ-ﾟ฀-໿က-႟ក-៿𠀀-𯿿]*' BEGIN
    INSERT INTO recording_trigram(rowid, title, artist, album) VALUES (new.id, new.title, new.artist, new.album);
END;
CREATE TRIGGER recording_trigram_ad AFTER DELETE ON recording
WHEN NOT EXISTS (SELECT 1 FROM fts_deferred WHERE upto IS NULL OR old.id > upto)
 AND (old.title || ' ' || old.artist || ' ' || old.album) GLOB '*[฀-𯿿]*'
     AND (old.title || ' ' || old.artist || ' ' || old.album)
     GLOB '*[぀-鿿豈-﫿ｦ-ﾟ฀-໿က-႟ក-៿𠀀-𯿿]*' BEGIN
    INSERT INTO recording_trigram(recording_trigram, rowid, title, artist, album)
    VALUES ('delete', old.id, old.title, old.artist, old.album);
END;
CREATE TRIGGER recording_trigram_au AFTER UPDATE OF title, artist, album ON recording
WHEN NOT EXISTS (SELECT 1 FROM fts_deferred WHERE upto IS NULL OR old.id > upto) BEGIN
    INSERT INTO recording_trigram(recording_trigram, rowid, title, artist, album)
    SELECT 'delete', old.id, old.title, old.artist, old.album
    WHERE (old.title || ' ' || old.artist || ' ' || old.album) GLOB '*[฀-𯿿]*'
          AND (old.title || ' ' || old.artist || ' ' || old.album)
          GLOB '*[぀-鿿豈-﫿ｦ-ﾟ฀-໿က-႟ក-៿𠀀-𯿿]*';
    INSERT INTO recording_trigram(rowid, title, artist, album)
    SELECT new.id, new.title, new.artist, new.album
    WHERE (new.title || ' ' || new.artist || ' ' || new.album) GLOB '*[฀-𯿿]*'
          AND (new.title || ' ' || new.artist || ' ' || new.album)
          GLOB '*[぀-鿿豈-﫿ｦ-ﾟ฀-໿က-႟ក-៿𠀀-𯿿]*';
END;
