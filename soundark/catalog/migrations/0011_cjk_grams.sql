-- 1- and 2-character words of scripts written without spaces, found through an index
-- (docs/catalog.md, "Search"; docs/performance.md, "Catalog at scale").
--
-- recording_trigram (0010) cannot match fewer than 3 characters, so a word such as '北京' or '愛'
-- was an instr() scan of every recording holding such a script (~17 us a row: seconds at 3M rows).
-- recording_gram holds, for each such recording, every distinct 1- and 2-character substring of
-- lower(title || ' ' || artist || ' ' || album) that contains a character of those scripts and no
-- space: exactly the strings a 1-2 character query word can be, so `gram = word` finds the same
-- recordings as instr() did, in recording id order (the order the scan read them in), from one
-- B-tree seek. The substrings are made in plain SQL a trigger may run (no CTE, no application
-- function), so the sqlite3 CLI and other tools keep the table right: json_each over an array of
-- 2 * length(s) zeros yields keys k = 0, 1, ...; k names the substring at k / 2 of k % 2 + 1
-- characters (one table-valued function, not two joined: half the cost). `LIMIT -1` keeps the
-- subquery t from being flattened, which would compute lower(...) again for every substring
-- (a third of the cost). The class in the last GLOB is
-- soundark/catalog/search.py NOSPACE (a test checks); the first, one-range GLOB spares most rows.
-- soundark/catalog/deferred.py INSERT_TRIGGERS holds recording_gram_ai word for word, and builds
-- the table the same way after a bulk import.
CREATE TABLE recording_gram (
    gram TEXT NOT NULL,
    recording_id INTEGER NOT NULL,
    PRIMARY KEY (gram, recording_id)
) WITHOUT ROWID;

-- Rows a killed bulk import left unindexed (fts_deferred, 0010) are indexed when it is finished.
INSERT OR IGNORE INTO recording_gram(gram, recording_id)
SELECT substr(t.s, p.key / 2 + 1, p.key % 2 + 1), t.id
FROM (SELECT id, lower(title || ' ' || artist || ' ' || album) AS s FROM recording_nospace
      WHERE NOT EXISTS (SELECT 1 FROM fts_deferred WHERE upto IS NULL OR id > upto) LIMIT -1) AS t CROSS JOIN
     json_each('[' || replace(hex(zeroblob(2 * length(t.s) - 1)), '00', '0,') || '0]') AS p
WHERE substr(t.s, p.key / 2 + 1, p.key % 2 + 1) GLOB '*[぀-鿿豈-﫿ｦ-ﾟ฀-໿က-႟ក-៿𠀀-𯿿]*'
  AND instr(substr(t.s, p.key / 2 + 1, p.key % 2 + 1), ' ') = 0
ORDER BY 1, 2;

CREATE TRIGGER recording_gram_ai AFTER INSERT ON recording
WHEN NOT EXISTS (SELECT 1 FROM fts_deferred)
 AND (new.title || ' ' || new.artist || ' ' || new.album) GLOB '*[฀-𯿿]*' BEGIN
    INSERT OR IGNORE INTO recording_gram(gram, recording_id)
    SELECT substr(t.s, p.key / 2 + 1, p.key % 2 + 1), t.id
    FROM (SELECT new.id AS id, lower(new.title || ' ' || new.artist || ' ' || new.album) AS s LIMIT -1) AS t CROSS JOIN
         json_each('[' || replace(hex(zeroblob(2 * length(t.s) - 1)), '00', '0,') || '0]') AS p
    WHERE substr(t.s, p.key / 2 + 1, p.key % 2 + 1) GLOB '*[぀-鿿豈-﫿ｦ-ﾟ฀-໿က-႟ក-៿𠀀-𯿿]*'
      AND instr(substr(t.s, p.key / 2 + 1, p.key % 2 + 1), ' ') = 0;
END;
-- Deleting by (gram, recording_id) seeks the primary key once per substring of the old text.
CREATE TRIGGER recording_gram_ad AFTER DELETE ON recording
WHEN NOT EXISTS (SELECT 1 FROM fts_deferred WHERE upto IS NULL OR old.id > upto)
 AND (old.title || ' ' || old.artist || ' ' || old.album) GLOB '*[฀-𯿿]*' BEGIN
    DELETE FROM recording_gram WHERE recording_id = old.id AND gram IN (
        SELECT substr(t.s, p.key / 2 + 1, p.key % 2 + 1)
        FROM (SELECT lower(old.title || ' ' || old.artist || ' ' || old.album) AS s LIMIT -1) AS t CROSS JOIN
             json_each('[' || replace(hex(zeroblob(2 * length(t.s) - 1)), '00', '0,') || '0]') AS p);
END;
CREATE TRIGGER recording_gram_au AFTER UPDATE OF title, artist, album ON recording
WHEN NOT EXISTS (SELECT 1 FROM fts_deferred WHERE upto IS NULL OR old.id > upto) BEGIN
    DELETE FROM recording_gram WHERE recording_id = old.id AND gram IN (
        SELECT substr(t.s, p.key / 2 + 1, p.key % 2 + 1)
        FROM (SELECT lower(old.title || ' ' || old.artist || ' ' || old.album) AS s
              WHERE (old.title || ' ' || old.artist || ' ' || old.album) GLOB '*[฀-𯿿]*' LIMIT -1) AS t CROSS JOIN
             json_each('[' || replace(hex(zeroblob(2 * length(t.s) - 1)), '00', '0,') || '0]') AS p);
    INSERT OR IGNORE INTO recording_gram(gram, recording_id)
    SELECT substr(t.s, p.key / 2 + 1, p.key % 2 + 1), t.id
    FROM (SELECT new.id AS id, lower(new.title || ' ' || new.artist || ' ' || new.album) AS s
          WHERE (new.title || ' ' || new.artist || ' ' || new.album) GLOB '*[฀-𯿿]*' LIMIT -1) AS t CROSS JOIN
         json_each('[' || replace(hex(zeroblob(2 * length(t.s) - 1)), '00', '0,') || '0]') AS p
    WHERE substr(t.s, p.key / 2 + 1, p.key % 2 + 1) GLOB '*[぀-鿿豈-﫿ｦ-ﾟ฀-໿က-႟ក-៿𠀀-𯿿]*'
      AND instr(substr(t.s, p.key / 2 + 1, p.key % 2 + 1), ' ') = 0;
END;
