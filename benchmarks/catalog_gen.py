"""Realistic synthetic music catalogs for scale benchmarks, written as catalog rows (docs/formats.md).

One row is one track (a recording on an album), in the JSON Lines shape `soundark import
catalog` reads (and, optionally, the same rows as CSV for the sqlite3 CLI side of
benchmarks/bench_import.py). What it imitates, from the archive this project is for:

- **ISRC sharing**: 256M tracks carry 186M ISRCs. Albums come in a fixed pattern of 11: eight
  originals (new recordings) and three compilations whose tracks are recordings of earlier
  albums, so 3/11 = 27.3 % of rows repeat a recording (186/256 = 72.7 % distinct); 3 % of
  recordings have no ISRC (they join by artist + title + duration).
- **Artists with several albums**: album *a*'s artist is drawn from the first a/3 + 50 artists,
  so early artists have long discographies and the average is a few albums each; 15 % of
  recordings credit a featured artist.
- **Listens**: Zipf's law (s = 1) over the recordings (rank drawn uniformly): a few recordings
  hold most listens, about half have none.
- **Durations**: log-normal, median 3:45, sigma 0.4, clipped to 30 s .. 30 min.
- **Scripts**: 10 % of artists (and their titles) write Japanese, Chinese, Cyrillic or Arabic;
  the Latin vocabulary has accented words. Title words follow Zipf's law over a vocabulary of
  real words followed by a long tail of made-up ones.
- **Identifiers**: MusicBrainz recording IDs on 35 % of recordings, release IDs on 30 % of
  albums, UPCs on 55 % of original albums and on every compilation (without one, soundark keys an
  album by its artists and title, and a various-artists compilation would split into one album per
  artist).

Every field of a recording is a pure function of (seed, recording number), computed with a
counter-based hash (splitmix64) in numpy chunks, so the generator streams in constant memory,
a compilation repeats an earlier recording exactly without remembering it, and a continuation
(``start_album``) adds new albums to the same catalog: the incremental import's rows.

    python benchmarks/catalog_gen.py 1000000 rows.jsonl [--csv rows.csv] [--seed 42]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

STRIDE = 16                 # recording numbers per album: recording = album * STRIDE + position
COMPILATION = (3, 7, 10)    # album % 11 in these: a compilation of earlier recordings (3/11 of rows)
CHUNK_ALBUMS = 8192         # albums per numpy chunk (~90k rows)
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)

LATIN = (
    "love night dream heart fire rain blue song river light gold shadow moon star road home summer "
    "winter city dance girl boy baby time world life soul sky sun sea wind ghost storm wild broken "
    "little happy lonely electric sweet midnight silver golden forever tonight morning angel devil "
    "paradise highway memory echo shine fall rise run away back again hold free young old true black "
    "white red fever heaven kiss tears words hands eyes mind house garden train letter window "
    "Ökonomie café señor amour Zeit Straße naïve déjà vu fiancée über ciudad corazón canción noche "
    "été mélodie Ångström fjord smörgåsbord mañana día vida liebe nacht sommer"
).split()
SCRIPTS = {  # real common words first, then syllables for the long tail and for names
    "ja": ("東京 夜 愛 夢 心 星 雨 空 花 桜 さくら ありがとう タワー 東京タワー 恋 君 光 風 海 未来 青春 "
           "さよなら 約束 世界 明日 涙 笑顔 月 春 夏 秋 冬".split(),
           "カ キ ク ケ コ サ シ ス セ ソ タ チ ツ テ ト ナ ニ ヌ ネ ノ ハ ヒ フ ヘ ホ "
           "マ ミ ム メ モ ラ リ ル レ ロ ン "
           "か き く こ さ し す た ち つ な に の は ひ ま み も ら り る".split()),
    "zh": ("月亮 爱情 北京 朋友 时间 梦想 天空 我们 你 爱 心 夜 雨 风 花 海 春天 故事 回家 青春 "
           "永远 世界 星星 城市 明天 再见 自由 光".split(),
           "天 地 人 山 水 火 木 金 土 日 月 星 云 雨 风 雪 花 草 林 江 河 湖 海 长 明 清 白 红 青 新 大 小 中 东 "
           "西 南 北 安 平 乐 美 华 国 家 龙 凤".split()),
    "ru": ("ночь любовь Москва звезда зима дорога город песня сердце небо солнце весна мечта время "
           "жизнь душа ветер море огонь свет друг дом мама луна река лето осень".split(),
           "ка ри мо ла не со та ви де лу ан ел ор ми ко ра бе ст ва го ди жи за по ру ша".split()),
    "ar": ("حب ليل قمر بحر حياة قلب سماء نور شمس حلم وطن أمل روح عيون ياحبيبي سلام بيت طريق نجوم "
           "زمان ورد دنيا غربة فرح".split(),
           "ب ت ث ج ح خ د ر ز س ش ص ط ع غ ف ق ك ل م ن ه و ي ا".split()),
}
LATIN_SYLLABLES = "ka ri mo la ne so ta vi de lu an el or mi ja ko ra be st ph ch ev ol ur is".split()
SCRIPT_SHARE = (("ja", 0.03), ("zh", 0.02), ("ru", 0.03), ("ar", 0.02))  # the rest: Latin
COUNTRIES = ("US", "GB", "DE", "FR", "JP", "SE", "NL", "BR", "KR", "RU")
COMPILATION_WORDS = ("Greatest Hits", "The Best of", "Essentials", "Gold", "Anthology", "Hits of the Year",
                     "Summer Hits", "Now That's Music", "Love Songs", "Classics")


# ---------------------------------------------------------------- hashing: field = f(seed, number)

def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, vectorised (uint64 arithmetic wraps, as the algorithm needs)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class Hasher:
    """Independent streams of 64-bit hashes of numbers: one stream per field, all from one seed."""

    def __init__(self, seed: int) -> None:
        self.salt = int(_mix(np.array([seed], dtype=np.uint64))[0])

    def bits(self, numbers: np.ndarray, stream: int) -> np.ndarray:
        key = np.uint64((self.salt + stream * 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF)
        return _mix(_mix(numbers.astype(np.uint64) ^ key))

    def uniform(self, numbers: np.ndarray, stream: int) -> np.ndarray:
        """Floats in [0, 1)."""
        return (self.bits(numbers, stream) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _json_safe(words: list[str]) -> list[str]:
    bad = [w for w in words if any(c in w for c in '"\\,\n\r\t')]
    assert not bad, f"vocabulary words must need no JSON or CSV quoting: {bad}"
    return words


@dataclass(frozen=True)
class Vocabulary:
    """Words of one script in Zipf order (real words first), with the cumulative weights to draw them."""

    words: list[str]
    cum: np.ndarray
    syllables: list[str]

    @staticmethod
    def make(real: list[str], syllables: list[str], tail: int, rng: np.random.Generator,
             joiner: str = "") -> Vocabulary:
        made: dict[str, None] = {}
        taken = set(real)
        while len(made) < tail:  # a few rounds of vectorised draws, duplicates dropped
            k = rng.integers(2, 5, size=tail)
            idx = rng.integers(len(syllables), size=(tail, 4)).tolist()
            for row, n in zip(idx, k.tolist()):
                w = joiner.join([syllables[i] for i in row[:n]])
                if w not in taken:
                    taken.add(w)
                    made[w] = None
                    if len(made) == tail:
                        break
        words = _json_safe(list(real) + list(made))
        weights = 1.0 / (np.arange(len(words)) + 8.0) ** 1.05
        return Vocabulary(words, np.cumsum(weights) / weights.sum(), syllables)

    def draw(self, u: np.ndarray) -> np.ndarray:
        return np.minimum(np.searchsorted(self.cum, u), len(self.words) - 1)


class CatalogGenerator:
    """The catalog of one seed: albums 0, 1, 2, ... and their track rows, made chunk by chunk."""

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed
        self.h = Hasher(seed)
        rng = np.random.default_rng(seed)
        self.vocab = {"la": Vocabulary.make(LATIN, LATIN_SYLLABLES, 20_000, rng)}
        for script, (real, syl) in SCRIPTS.items():
            self.vocab[script] = Vocabulary.make(real, syl, 3_000, rng)
        self.script_names = ["la"] + [s for s, _ in SCRIPT_SHARE]
        # all scripts' words (and syllables) in one Series, each script from its offset on
        lists = [self.vocab[name] for name in self.script_names]
        self.words = pl.Series([w for v in lists for w in v.words])
        self.word_offset = np.cumsum([0] + [len(v.words) for v in lists])[:-1]
        self.syllables = pl.Series([w for v in lists for w in v.syllables])
        self.syl_offset = np.cumsum([0] + [len(v.syllables) for v in lists])[:-1]
        self.syl_size = np.array([len(v.syllables) for v in lists])
        self.script_edges = np.cumsum([1.0 - sum(p for _, p in SCRIPT_SHARE)] + [p for _, p in SCRIPT_SHARE])

    # ------------------------------------------------------------ albums
    def album_size(self, albums: np.ndarray) -> np.ndarray:
        return 8 + (self.h.bits(albums, 1) % np.uint64(7)).astype(np.int64)  # 8..14 tracks

    def album_artist(self, albums: np.ndarray) -> np.ndarray:
        return np.floor(self.h.uniform(albums, 2) * (albums // 3 + 50)).astype(np.int64)

    @staticmethod
    def is_compilation(albums: np.ndarray) -> np.ndarray:
        return np.isin(albums % 11, COMPILATION)

    def rows_of(self, first_album: int, last_album: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(album, position, recording) of every track row of albums [first, last)."""
        albums = np.arange(first_album, last_album, dtype=np.int64)
        sizes = self.album_size(albums)
        album = np.repeat(albums, sizes)
        starts = np.cumsum(sizes) - sizes
        pos = np.arange(album.size, dtype=np.int64) - np.repeat(starts, sizes)
        recording = album * STRIDE + pos
        comp = self.is_compilation(album)
        if comp.any():  # a track of a compilation: a recording of an earlier original album
            slot = album[comp] * STRIDE + pos[comp]
            src = np.floor(self.h.uniform(slot, 3) * album[comp]).astype(np.int64)
            src -= self.is_compilation(src)  # 3 -> 2, 7 -> 6, 10 -> 9: all originals
            src_pos = np.floor(self.h.uniform(slot, 4) * self.album_size(src)).astype(np.int64)
            recording[comp] = src * STRIDE + src_pos
        return album, pos, recording

    # ------------------------------------------------------------ names and words
    def script_of_artist(self, artists: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.script_edges, self.h.uniform(artists, 5), side="right").clip(0, 4)

    def artist_names(self, artists: np.ndarray, script: np.ndarray) -> pl.Series:
        """A name per artist: 2-4 syllables of its script, "The ...s" now and then, a number for namesakes."""
        b = self.h.bits(artists, 6)
        k = 2 + (b % np.uint64(3)).astype(np.int64)
        parts = []
        for j in range(4):
            pick = ((b >> np.uint64(8 + 6 * j)) % np.uint64(64)).astype(np.int64) % self.syl_size[script]
            syllable = pl.lit(self.syllables.gather(self.syl_offset[script] + pick))
            parts.append(pl.when(pl.lit(pl.Series(k > j))).then(syllable).otherwise(pl.lit("")))
        df = pl.DataFrame({"latin": pl.Series(np.isin(script, (0, 3))), "the": pl.Series(b % np.uint64(10) == 0),
                           "num": pl.Series(b % np.uint64(7) == 0), "id": pl.Series(artists)})
        name = pl.concat_str(parts)
        name = pl.when(pl.col("latin")).then(name.str.slice(0, 1).str.to_uppercase() + name.str.slice(1)) \
            .otherwise(name)
        name = pl.when(pl.col("the") & pl.col("latin")).then(pl.lit("The ") + name + pl.lit("s")).otherwise(name)
        name = pl.when(pl.col("num")).then(name + pl.lit(" ") + pl.col("id").cast(pl.String)).otherwise(name)
        return df.select(name.alias("name")).to_series()

    def phrases(self, numbers: np.ndarray, script: np.ndarray, stream: int, max_words: int) -> pl.Series:
        """One title per number: 1..max_words Zipf-drawn words of its script (CJK often run together)."""
        count = 1 + np.minimum(self.h.bits(numbers, stream) % np.uint64(max_words),
                               self.h.bits(numbers, stream + 1) % np.uint64(max_words)).astype(np.int64)
        glued = np.isin(script, (1, 2)) & (self.h.bits(numbers, stream + 9) % np.uint64(2) == 0)
        idx = np.empty((numbers.size, max_words), dtype=np.int64)
        for s, name in enumerate(self.script_names):
            sel = script == s
            if sel.any():
                for j in range(max_words):
                    idx[sel, j] = self.word_offset[s] + self.vocab[name].draw(
                        self.h.uniform(numbers[sel], stream + 2 + j))
        df = pl.DataFrame({"k": pl.Series(count), "sep": pl.Series(np.where(glued, "", " ")),
                           "latin": pl.Series(script == 0)})
        parts = [pl.lit(self.words.gather(idx[:, 0]))]
        for j in range(1, max_words):
            parts.append(pl.when(pl.col("k") > j).then(pl.col("sep") + pl.lit(self.words.gather(idx[:, j])))
                         .otherwise(pl.lit("")))
        title = pl.concat_str(parts)
        title = pl.when(pl.col("latin")).then(title.str.slice(0, 1).str.to_uppercase() + title.str.slice(1)) \
            .otherwise(title)
        return df.select(title.alias("t")).to_series()

    # ------------------------------------------------------------ recordings
    def recordings(self, rec: np.ndarray) -> pl.DataFrame:
        """Every field of the recordings numbered *rec* (a pure function of seed and number)."""
        origin = rec // STRIDE
        artist = self.album_artist(origin)
        script = self.script_of_artist(artist)
        feat_artist = np.floor(self.h.uniform(rec, 11) * (origin // 3 + 50)).astype(np.int64)
        feat = (self.h.uniform(rec, 10) < 0.15) & (feat_artist != artist)
        year = self.album_year(origin)
        country = np.array(COUNTRIES)[self.h.bits(rec, 13) % np.uint64(len(COUNTRIES))]
        isrc = pl.concat_str([pl.lit(pl.Series(country)), pl.lit(_base36(rec // 100_000)),
                              pl.lit(pl.Series(year % 100)).cast(pl.String).str.zfill(2),
                              pl.lit(pl.Series(rec % 100_000)).cast(pl.String).str.zfill(5)])
        z = np.sqrt(-2.0 * np.log1p(-self.h.uniform(rec, 14))) * np.cos(2 * np.pi * self.h.uniform(rec, 15))
        duration = np.clip(225_000 * np.exp(0.4 * z), 30_000, 1_800_000).astype(np.int64)
        listens = np.floor(1e7 / (1.0 + self.h.uniform(rec, 16) * 2e7)).astype(np.int64)
        main = self.artist_names(artist, script)
        other = self.artist_names(feat_artist, self.script_of_artist(feat_artist))
        df = pl.DataFrame({"title": self.phrases(rec, script, 20, 5), "main": main, "other": other,
                           "feat": pl.Series(feat), "has_isrc": pl.Series(self.h.uniform(rec, 12) >= 0.03)})
        return df.select(
            "title",
            pl.when(pl.col("feat")).then(pl.concat_list("main", "other")).otherwise(pl.concat_list("main"))
            .alias("artists"),
            pl.when(pl.col("has_isrc")).then(isrc).otherwise(None).alias("isrc"),
            _uuids(self.h, rec, 30, 0.35).alias("recording_mbid"),
            pl.lit(pl.Series(duration)).alias("duration_ms"),
            pl.lit(pl.Series(listens)).alias("listens"))

    def album_year(self, albums: np.ndarray) -> np.ndarray:
        return 2025 - np.floor(75 * self.h.uniform(albums, 40) ** 2).astype(np.int64)  # more recent albums

    def albums(self, albums: np.ndarray) -> pl.DataFrame:
        artist = self.album_artist(albums)
        comp = self.is_compilation(albums)
        kind = np.array(COMPILATION_WORDS)[self.h.bits(albums, 41) % np.uint64(len(COMPILATION_WORDS))]
        comp_title = pl.Series(np.char.add(np.char.add(kind, " "), (albums % 97 + 1).astype(str)))
        upc = pl.Series(self.h.bits(albums, 42) % np.uint64(10**12)).cast(pl.String).str.zfill(12)
        label = pl.Series(self.h.bits(albums, 44) % np.uint64(5000)).cast(pl.String)
        df = pl.DataFrame({"t": self.phrases(albums, self.script_of_artist(artist), 50, 3), "comp": pl.Series(comp),
                           "has_upc": pl.Series((self.h.uniform(albums, 43) < 0.55) | comp)})
        return df.select(
            pl.when(pl.col("comp")).then(pl.lit(comp_title)).otherwise(pl.col("t")).alias("album"),
            _uuids(self.h, albums, 45, 0.30).alias("release_mbid"),
            pl.when(pl.col("has_upc")).then(pl.lit(upc)).otherwise(None).alias("upc"),
            pl.lit(pl.Series(self.album_year(albums))).cast(pl.String).alias("date"),
            (pl.lit("Label ") + pl.lit(label)).alias("label"))

    # ------------------------------------------------------------ streaming
    def frames(self, rows: int, start_album: int = 0) -> Iterator[tuple[pl.DataFrame, int]]:
        """(rows as a DataFrame in the JSONL column order, next album) for *rows* rows from *start_album* on."""
        album = start_album
        left = rows
        while left > 0:
            a, pos, rec = self.rows_of(album, album + CHUNK_ALBUMS)
            if a.size > left:
                a, pos, rec = a[:left], pos[:left], rec[:left]
            uniq_rec, rec_inv = np.unique(rec, return_inverse=True)
            uniq_alb, alb_inv = np.unique(a, return_inverse=True)
            r = self.recordings(uniq_rec)[rec_inv]
            al = self.albums(uniq_alb)[alb_inv]
            df = pl.concat([r, al], how="horizontal").with_columns(
                track_id=pl.lit("t") + pl.lit(pl.Series(a)).cast(pl.String) + pl.lit("-")
                + pl.lit(pl.Series(pos)).cast(pl.String),
                track_number=pl.lit(pl.Series(pos + 1)), disc_number=pl.lit(1))
            left -= a.size
            album = int(a[-1]) + 1
            yield df.select(JSONL_COLUMNS), album

    def write(self, rows: int, jsonl: Path, csv_path: Path | None = None, start_album: int = 0) -> int:
        """Write *rows* rows; return the next album number (where a continuation starts)."""
        album = start_album
        with open(jsonl, "wb") as fj, (open(csv_path, "wb") if csv_path else nullcontext()) as fc:
            for n, (df, next_album) in enumerate(self.frames(rows, start_album)):
                album = next_album
                df.write_ndjson(fj)
                if fc is not None:
                    df.with_columns(pl.col("artists").list.join("; "), popularity=pl.lit(None, pl.Int64),
                                    rights=pl.lit("owned")).select(CSV_COLUMNS).write_csv(fc, include_header=n == 0)
        return album

    def sample(self, count: int, albums: int, seed: int) -> pl.DataFrame:
        """Fields of *count* recordings drawn uniformly from the originals of the first *albums* albums."""
        rng = np.random.default_rng(seed)
        a = rng.integers(0, albums, size=count)
        a -= self.is_compilation(a)
        pos = np.floor(rng.random(count) * self.album_size(a)).astype(np.int64)
        return self.recordings(a * STRIDE + pos)


JSONL_COLUMNS = ("title", "artists", "album", "isrc", "recording_mbid", "release_mbid", "upc", "track_id",
                 "duration_ms", "date", "label", "track_number", "disc_number", "listens")
CSV_COLUMNS = ("title", "artists", "album", "isrc", "recording_mbid", "release_mbid", "track_id",
               "duration_ms", "date", "label", "upc", "track_number", "disc_number", "listens",
               "popularity", "rights")


def _base36(n: np.ndarray) -> pl.Series:
    """Three base-36 digits of each number (the ISRC registrant code)."""
    digits = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    return pl.Series(np.char.add(np.char.add(digits[n // 1296 % 36], digits[n // 36 % 36]), digits[n % 36]))


def _uuids(h: Hasher, numbers: np.ndarray, stream: int, share: float) -> pl.Expr:
    """A UUID-shaped MusicBrainz ID for a *share* of the numbers, null for the rest."""
    words = np.empty((numbers.size, 2), dtype=">u8")
    words[:, 0], words[:, 1] = h.bits(numbers, stream), h.bits(numbers, stream + 1)
    hexes = pl.Series(np.frombuffer(words.tobytes().hex().encode(), dtype="S32").astype(str))
    uuid = pl.concat_str([pl.lit(hexes).str.slice(0, 8), pl.lit(hexes).str.slice(8, 4),
                          pl.lit(hexes).str.slice(12, 4), pl.lit(hexes).str.slice(16, 4),
                          pl.lit(hexes).str.slice(20, 12)], separator="-")
    return pl.when(pl.lit(pl.Series(h.uniform(numbers, stream + 2) < share))).then(uuid).otherwise(None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", type=int)
    ap.add_argument("jsonl", type=Path)
    ap.add_argument("--csv", type=Path, default=None, help="also write the same rows as CSV")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--start-album", type=int, default=0, help="continue a catalog from this album on")
    args = ap.parse_args()
    t = time.perf_counter()
    nxt = CatalogGenerator(args.seed).write(args.rows, args.jsonl, args.csv, args.start_album)
    s = time.perf_counter() - t
    print(f"{args.rows:,} rows in {s:.1f} s ({args.rows / s:,.0f} rows/s); next album {nxt}", file=sys.stderr)


if __name__ == "__main__":
    main()
