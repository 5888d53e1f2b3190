"""The catalog file: migrations, WAL, re-open, read-only, and errors a person can act on."""


import pytest

from soundark.catalog import open_catalog
from soundark.catalog.store import migrations
from soundark.errors import EnvironmentProblem, NotFound


def test_migrations_from_empty_are_recorded_once(tmp_path):
    path = tmp_path / "c.sqlite3"
    with open_catalog(path) as cat:
        versions = [r[0] for r in cat.execute("SELECT version FROM schema_migration ORDER BY version")]
        assert versions == [m.version for m in migrations()]
        assert cat.scalar("PRAGMA journal_mode") == "wal"
        assert cat.scalar("PRAGMA foreign_keys") == 1
    with open_catalog(path) as cat:  # re-open: nothing applied twice
        assert cat.scalar("SELECT count(*) FROM schema_migration") == len(migrations())
        assert cat.schema_version() == migrations()[-1].version


def test_migration_numbers_are_unique_and_ordered():
    versions = [m.version for m in migrations()]
    assert versions == sorted(set(versions))
    assert versions[0] == 1


def test_an_older_catalog_is_brought_up_to_date(tmp_path, monkeypatch):
    from soundark.catalog import store

    path = tmp_path / "c.sqlite3"
    every = store.migrations()
    monkeypatch.setattr(store, "migrations", lambda: every[:1])  # an older soundark
    open_catalog(path).close()
    monkeypatch.setattr(store, "migrations", lambda: every)
    with open_catalog(path) as cat:
        assert cat.schema_version() == every[-1].version
        applied = [r[0] for r in cat.execute("SELECT version FROM schema_migration ORDER BY 1")]
        assert applied == [m.version for m in every]


def test_a_failing_migration_leaves_the_catalog_as_it_was(tmp_path, monkeypatch):
    from soundark.catalog import store

    path = tmp_path / "c.sqlite3"
    open_catalog(path).close()
    bad = store.Migration(9999, "broken", "CREATE TABLE half_done (x);\nTHIS IS NOT SQL;")
    every = store.migrations()
    monkeypatch.setattr(store, "migrations", lambda: every + [bad])
    with pytest.raises(EnvironmentProblem):
        open_catalog(path)
    with open_catalog(path, readonly=True) as cat:
        assert cat.schema_version() == every[-1].version
        assert cat.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'") == 0


def test_readonly_catalog_refuses_writes(tmp_path):
    path = tmp_path / "c.sqlite3"
    open_catalog(path).close()
    with open_catalog(path, readonly=True) as cat:
        with pytest.raises(EnvironmentProblem) as e:
            cat.execute("INSERT INTO recording(key, title) VALUES ('k', 't')")
        assert "read-only" in str(e.value)


def test_missing_catalog_is_not_found(tmp_path):
    with pytest.raises(NotFound):
        open_catalog(tmp_path / "nope.sqlite3", readonly=True)
    with pytest.raises(NotFound):
        open_catalog(tmp_path / "no-such-dir" / "c.sqlite3")


def test_a_file_that_is_not_a_database_says_so(tmp_path):
    path = tmp_path / "c.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(EnvironmentProblem) as e:
        open_catalog(path)
    assert "damaged or not a soundark catalog" in str(e.value)


def test_transaction_rolls_back_on_error(tmp_path):
    with open_catalog(tmp_path / "c.sqlite3") as cat:
        with pytest.raises(RuntimeError):
            with cat.transaction() as conn:
                conn.execute("INSERT INTO recording(key, title) VALUES ('k1', 't')")
                raise RuntimeError("boom")
        assert cat.scalar("SELECT count(*) FROM recording") == 0
        with cat.transaction() as conn:
            conn.execute("INSERT INTO recording(key, title) VALUES ('k1', 't')")
        assert cat.scalar("SELECT count(*) FROM recording") == 1


def test_fts_follows_inserts_updates_and_deletes(tmp_path):
    with open_catalog(tmp_path / "c.sqlite3") as cat:
        with cat.transaction() as conn:
            conn.execute("INSERT INTO recording(key, title, artist, album) VALUES ('k', 'Blue Moon', 'X', 'Y')")
        match = "SELECT count(*) FROM recording_fts WHERE recording_fts MATCH ?"
        assert cat.scalar(match, ('"moon"',)) == 1
        with cat.transaction() as conn:
            conn.execute("UPDATE recording SET title = 'Red Sun' WHERE key = 'k'")
        assert cat.scalar(match, ('"moon"',)) == 0
        assert cat.scalar(match, ('"sun"',)) == 1
        with cat.transaction() as conn:
            conn.execute("DELETE FROM recording WHERE key = 'k'")
        assert cat.scalar(match, ('"sun"',)) == 0
