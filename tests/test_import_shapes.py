"""Real-world shapes: known CSV exports, --map, stray quotes, bad bytes; raw and named listens."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from soundark.catalog.importers.listens import import_listens
from soundark.catalog.importers.tabular import import_catalog_file
from soundark.errors import BadInput

DATA = Path(__file__).parent / "data"
GOLDEN = "c7d0bf6e-b2aa-4ffa-bded-2448415b39b0"      # Golden Brown, in the ListenBrainz sample
DREAMIN = "20ddea3a-1ad2-4036-9ca7-5f3383ad31c1"     # California Dreamin'
ALIAS = "99999999-9999-4999-8999-999999999999"


def tracks(catalog) -> dict[str, tuple]:
    return {r[0]: (r[1], r[2], r[3]) for r in catalog.execute(
        "SELECT t.title, r.artist, r.isrc, r.duration_ms FROM track t JOIN recording r ON r.id = t.recording_id")}


def test_exportify_export_is_recognised(catalog):
    report = import_catalog_file(catalog, DATA / "csv" / "exportify.csv")
    assert (report.new, report.rejected) == (4, 0)
    assert report.warnings[0].reason.startswith("recognised: Exportify export")
    got = tracks(catalog)
    assert got["Crying"] == ("Six by Seven", "UK4UP1300002", 198093)
    # "\," inside a name is a comma of the name, not a separator
    assert got["Bad Guy"][0] == "Tyler, The Creator, Billie Eilish"
    artists = {r[0] for r in catalog.execute("SELECT name FROM artist")}
    assert {"Tyler, The Creator", "Billie Eilish"} <= artists


def test_spotify_datasets_are_recognised(catalog):
    report = import_catalog_file(catalog, DATA / "csv" / "spotify_tracks.csv")
    assert (report.new, report.rejected) == (4, 0)
    assert "Spotify tracks dataset" in report.warnings[0].reason
    assert tracks(catalog)["To Begin Again"][0] == "Ingrid Michaelson, ZAYN"
    pop = dict(catalog.execute("SELECT title, popularity FROM recording"))
    assert pop["Comedy"] == 73
    report = import_catalog_file(catalog, DATA / "csv" / "spotify_600k.csv")
    assert (report.new, report.rejected) == (2, 0)
    assert tracks(catalog)["Al-Masad, Chapter 111"][0] == "Sami Yusuf, New Year's Party 2016"


def test_headers_are_case_insensitive_and_map_names_the_rest(catalog, tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("\ufeff Title ,ISRC,Song Artist\nA,USAAA0000001,X\n", encoding="utf-8")
    import_catalog_file(catalog, path, column_map="artists=song artist")
    assert tracks(catalog)["A"][:2] == ("X", "USAAA0000001")
    with pytest.raises(BadInput, match="unknown field 'nme'; fields are: title, artists"):
        import_catalog_file(catalog, path, column_map="nme=Title")
    with pytest.raises(BadInput, match="no column 'nope'"):
        import_catalog_file(catalog, path, column_map="artists=nope")


def test_headerless_csv_by_column_numbers(catalog, tmp_path):
    path = tmp_path / "lastfm.csv"  # lastfm-to-csv writes artist,album,track,date without a header
    path.write_text("Radiohead,OK Computer,Airbag,31 Jan 2021 14:03\nBlur,Blur,Song 2,31 Jan 2021 14:07\n")
    report = import_catalog_file(catalog, path, column_map="artists=1,album=2,title=3")
    assert (report.new, report.rejected) == (2, 0)
    assert tracks(catalog)["Song 2"][0] == "Blur"


def test_no_known_column_is_one_clear_error_from_the_cli(tmp_path):
    archive = tmp_path / "a"
    env_run = [sys.executable, "-m", "soundark"]
    assert subprocess.run([*env_run, "init", str(archive)], capture_output=True).returncode == 0
    path = tmp_path / "junk.csv"
    path.write_text("foo,bar\n1,2\n")
    done = subprocess.run([*env_run, "import", "catalog", str(path), "-a", str(archive), "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    assert len(lines) == 1 and "no known column; the columns are: foo, bar" in lines[0]


def test_separator_setting(catalog, tmp_path):
    path = tmp_path / "slash.csv"
    path.write_text("title,artists\nA,X / Y\n")
    import_catalog_file(catalog, path, separator="/")
    assert tracks(catalog)["A"][0] == "X, Y"


def test_stray_quote_rejects_one_row_and_the_rest_imports(catalog, tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text('title,artists,album\nA,X,One\n"B,Y,Two\nC,Z,Three\nD,W,"multi\nline"\nE,V,Five\n')
    report = import_catalog_file(catalog, path)
    assert report.rejected == 1 and report.rejections[0].subject == "quote.csv:3"
    assert report.rejections[0].reason.startswith("unbalanced quote")
    assert set(tracks(catalog)) == {"A", "C", "D", "E"}
    album = dict(catalog.execute("SELECT t.title, a.title FROM track t JOIN album a ON a.id = t.album_id"))
    assert album["D"] == "multi\nline"  # a real multi-line field stays one


def test_bytes_that_are_not_utf8(catalog, tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("title,artists\nCaf\xe9,X\nPlain,Y\n".encode("latin-1"))
    report = import_catalog_file(catalog, path)
    assert report.rejected == 1
    assert report.rejections[0].subject == "latin.csv:2"
    assert report.rejections[0].reason == ("not UTF-8 text: byte 0xE9 in column 1 (title) at character 4; "
                                           "use --encoding latin-1 if the file is Latin-1")
    assert set(tracks(catalog)) == {"Plain"}
    assert import_catalog_file(catalog, path, encoding="latin-1").new == 1
    assert "Café" in tracks(catalog)
    with pytest.raises(BadInput, match="unknown text encoding"):
        import_catalog_file(catalog, path, encoding="klingon")


# ---- listens -------------------------------------------------------------------------------

@pytest.fixture
def music(catalog, tmp_path):
    rows = [
        {"title": "Golden Brown", "artists": ["The Stranglers"], "album": "La Folie", "recording_mbid": GOLDEN},
        {"title": "California Dreamin'", "artists": ["The Mamas & The Papas"], "isrc": "USMC16532697"},
        {"title": "New Ice Age", "artists": ["The Horrors"], "album": "Primary Colours"},
        {"title": "Twin", "artists": ["Echo"], "album": "First", "duration_ms": 100000},
        {"title": "Twin", "artists": ["Echo"], "album": "Second", "duration_ms": 300000},
    ]
    path = tmp_path / "cat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert import_catalog_file(catalog, path).new == 5
    return catalog


def counts(catalog) -> dict[str, tuple]:
    return {r[0]: (r[1], r[2]) for r in catalog.execute(
        "SELECT title || coalesce('/' || duration_ms, ''), listens, users FROM recording")}


def test_listenbrainz_user_export_lines(music, tmp_path):
    path = tmp_path / "listens.jsonl"
    one = (DATA / "listens" / "listenbrainz_listens.jsonl").read_text()
    path.write_text(one * 3)  # the same two listens three times: six listens
    report = import_listens(music, path)
    assert report.rejected == 0 and report.counts["matched"] == 6
    got = counts(music)
    assert got["Golden Brown"] == (3, None)       # by its MBID
    assert got["California Dreamin'"] == (3, None)  # by the ISRC (its MBID is not in the catalog)
    again = import_listens(music, path)  # a snapshot: the same file again changes nothing
    assert (again.updated, again.unchanged) == (0, 2)


def test_json_array_and_popularity_api(music, tmp_path):
    listens = [json.loads(line) for line in (DATA / "listens" / "listenbrainz_listens.jsonl").read_text().splitlines()]
    path = tmp_path / "export.json"
    path.write_text(json.dumps([dict(x, user_name=u) for u in ("ann", "bob") for x in listens] + listens))
    import_listens(music, path)
    assert counts(music)["Golden Brown"] == (3, 2)  # three listens by two distinct users
    report = import_listens(music, DATA / "listens" / "popularity.json")
    assert counts(music)["Golden Brown"] == (2069050, 31070)
    assert sorted(r.reason for r in report.rejections) == [
        "listens 5.5 is not a whole number", f"no recording with MBID {DREAMIN} in the catalog"]


def test_scrobbles_by_artist_and_title(music, tmp_path):
    report = import_listens(music, DATA / "listens" / "librefm.csv")
    assert report.counts == {"matched": 1, "matched_by_name": 1, "unmatched": 1}
    assert report.rejections[0].reason == ("no recording with artist+title 'Sweet Garden' / 'Altered State'"
                                           " in the catalog")
    assert report.warnings[0].reason.startswith("recognised: Last.fm/Libre.fm scrobble export")
    assert counts(music)["New Ice Age"] == (1, None)
    path = tmp_path / "twins.csv"
    path.write_text("artist,track,album\nEcho,Twin,\nECHO,twin!,Second\nEcho,Twin,Second\n")
    report = import_listens(music, path)
    assert report.counts["ambiguous"] == 1 and report.counts["matched"] == 2
    assert "ambiguous: artist+title 'Echo' / 'Twin' is 2 recordings" in report.rejections[0].reason
    assert counts(music)["Twin/300000"] == (2, None)  # the album named the recording


def test_aliases_and_conflicts(music, tmp_path):
    rec = dict(music.execute("SELECT title, id FROM recording"))
    with music.transaction() as conn:
        conn.execute("INSERT INTO mbid_alias VALUES (?, ?, 'test', 'shares ISRC')", (ALIAS, rec["Golden Brown"]))
        conn.execute("INSERT INTO isrc_alias VALUES ('GBAAA9900001', ?, 'test')", (rec["New Ice Age"],))
    path = tmp_path / "agg.csv"
    path.write_text("Recording_MBID,isrc,listen_count\n"
                    f"{GOLDEN},,10\n{ALIAS},,5\n,GBAAA9900001,7\n{GOLDEN},USMC16532697,1\n")
    report = import_listens(music, path)
    got = counts(music)
    assert got["Golden Brown"] == (15, None)  # its own MBID and the alias add up
    assert got["New Ice Age"] == (7, None)
    assert report.rejections[0].subject == "agg.csv:5"
    assert report.rejections[0].reason.startswith(f"recording_mbid {GOLDEN} is recording mb")
    assert "but isrc USMC16532697 is recording USMC16532697" in report.rejections[0].reason


def test_listenbrainz_listens_dump_parquet(music, tmp_path):
    # the column layout of the dump's Parquet files (SPARK_LISTENS_SCHEMA in listenbrainz-server)
    path = tmp_path / "0.parquet"
    n = 5
    pq.write_table(pa.table({
        "listened_at": pa.array([1_700_000_000_000 + i for i in range(n)], pa.timestamp("ms")),
        "user_id": pa.array([1, 2, 1, 3, 3], pa.int64()),
        "recording_msid": ["03dcc65c-0e01-4f25-aa1f-0f469d10e2ad"] * n,
        "artist_name": ["The Stranglers"] * 4 + ["Nobody"],
        "artist_credit_id": pa.array([None] * n, pa.int64()),
        "release_name": ["La Folie"] * n,
        "release_mbid": [None] * n,
        "recording_name": ["Golden Brown"] * n,
        "recording_mbid": [GOLDEN, GOLDEN, None, None, None],
        "artist_credit_mbids": pa.array([None] * n, pa.list_(pa.string())),
    }), path)
    report = import_listens(music, path)
    assert report.counts["matched"] == 4 and report.counts["unmatched"] == 1
    assert counts(music)["Golden Brown"] == (4, 3)


def test_listens_cli_map(tmp_path):
    archive = tmp_path / "a"
    run = [sys.executable, "-m", "soundark"]
    subprocess.run([*run, "init", str(archive)], check=True, capture_output=True)
    cat = tmp_path / "cat.jsonl"
    cat.write_text(json.dumps({"title": "T", "artists": ["A"]}) + "\n")
    subprocess.run([*run, "import", "catalog", str(cat), "-a", str(archive)], check=True, capture_output=True)
    path = tmp_path / "plays.csv"
    path.write_text("who,what,n\nA,T,4\n")
    done = subprocess.run([*run, "import", "listens", str(path), "-a", str(archive), "--json",
                           "--map", "artist=who,title=what,listens=n"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["updated"] == 1 and out["counts"]["matched"] == 1
