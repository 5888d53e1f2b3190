"""Settings: one frozen table, loaded from soundark.toml, overridable, documented."""

import dataclasses
from pathlib import Path

import pytest

from soundark.config import Settings, write_settings
from soundark.errors import BadInput

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_defaults_round_trip_through_the_file(tmp_path):
    write_settings(tmp_path, Settings())
    assert Settings.load(tmp_path) == Settings()


def test_every_setting_has_help_and_is_written_with_it(tmp_path):
    text = Settings().to_toml()
    for f in dataclasses.fields(Settings):
        assert f.metadata["help"].strip(), f.name
        assert f"# {f.metadata['help']}\n{f.name} = " in text


def test_file_values_are_used_and_flags_override_them(tmp_path):
    (tmp_path / "soundark.toml").write_text('budget = "4TB"\nworkers = 3\ntrackers = ["udp://t.example:1"]\n')
    s = Settings.load(tmp_path)
    assert (s.budget, s.workers, s.trackers) == ("4TB", 3, ("udp://t.example:1",))
    t = s.with_overrides(budget="1TB", workers=None)
    assert (t.budget, t.workers) == ("1TB", 3)
    assert s.budget == "4TB"  # frozen: the original is untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.budget = "x"  # type: ignore[misc]


def test_missing_file_means_defaults(tmp_path):
    assert Settings.load(tmp_path) == Settings()


@pytest.mark.parametrize("text, reason", [
    ("budget = ", "not valid TOML"),
    ("no_such_setting = 1", "unknown setting 'no_such_setting'"),
    ('workers = "two"', "'workers' must be an integer"),
    ("workers = true", "'workers' must be an integer"),
    ('enable_dht = "yes"', "'enable_dht' must be true or false"),
    ("trackers = [1, 2]", "'trackers' must be a list of strings"),
    ("budget = 5", "'budget' must be a string"),
    ('parity_overhead = "lots"', "'parity_overhead' must be a number"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, text, reason):
    (tmp_path / "soundark.toml").write_text(text)
    with pytest.raises(BadInput) as e:
        Settings.load(tmp_path)
    assert str(tmp_path / "soundark.toml") in str(e.value)
    assert reason in str(e.value)


def test_network_features_are_off_by_default():
    s = Settings()
    assert not (s.enable_dht or s.enable_lsd or s.enable_upnp or s.enable_natpmp)
    assert s.trackers == () and s.web_seeds == ()
    assert s.host == "127.0.0.1"
    assert s.listen_interfaces.startswith("127.0.0.1:")


def test_every_setting_is_documented():
    text = (DOCS / "settings.md").read_text()
    for name in Settings.names():
        assert f"`{name}`" in text, f"docs/settings.md does not describe {name}"
