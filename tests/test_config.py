"""Settings: one frozen table, loaded from soundark.toml, overridable, documented."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from soundark.config import Settings, _toml_value, write_settings
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


def _documented() -> dict[str, tuple[str, str]]:
    """docs/settings.md's table: name -> (default as written in soundark.toml, meaning)."""
    rows = {}
    for line in (DOCS / "settings.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `([a-z_0-9]+)` \| `(.*)` \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    return rows


def test_every_setting_is_documented_with_its_default_and_help():
    documented = _documented()
    assert set(documented) == set(Settings.names())
    for f in dataclasses.fields(Settings):
        default, meaning = documented[f.name]
        assert default == _toml_value(f.default), f"docs/settings.md: default of {f.name}"
        assert meaning == f.metadata["help"], f"docs/settings.md: help of {f.name} differs from config.py"


@pytest.mark.parametrize("text, reason", [
    ('torrent_format = "v3"', "torrent_format: 'v3' is not one of v1, hybrid"),
    ('executor = "slurm"', "executor: 'slurm' is not one of local, ray"),
    ("parity_overhead = 1.5", "parity_overhead: 1.5 is not between 0 and 1"),
    ("port = 65536", "port: 65536 is not between 0 and 65535"),
    ("workers = -2", "workers: -2 is not between 0 and 4096"),
    ('budget = "lots"', "budget: 'lots' is not a size"),
    ('target_size = "0"', "target_size: '0' must be more than 0 bytes"),
    ('tiers = ["opus75", "flac"]', "tiers: 'flac' is not one of original, opus75"),
    ('listen_interfaces = "127.0.0.1:99999"', "listen_interfaces: '127.0.0.1:99999' is not host:port"),
    ('release_date = "2024-02-30"', "release_date: '2024-02-30' is not a date YYYY-MM-DD"),
    ('release_prefix = "../x"', "release_prefix: '../x' must be 1-64 of"),
    ("opus_bitrate = 1000", "opus_bitrate: 1000 is not between 6000 and 510000"),
])
def test_bad_values_are_refused_in_one_line_naming_file_and_setting(tmp_path, text, reason):
    (tmp_path / "soundark.toml").write_text(text)
    with pytest.raises(BadInput) as e:
        Settings.load(tmp_path)
    assert str(e.value).startswith(f"{tmp_path / 'soundark.toml'}: {reason}")
    assert "\n" not in str(e.value)


def test_values_at_the_edges_are_accepted(tmp_path):
    (tmp_path / "soundark.toml").write_text(
        'parity_overhead = 0\nport = 65535\nworkers = 0\nbudget = ""\ntarget_size = "1"\n'
        'listen_interfaces = "127.0.0.1:0,[::1]:6881"\nrelease_date = "2024-02-29"\n')
    s = Settings.load(tmp_path)
    assert (s.parity_overhead, s.port, s.listen_interfaces) == (0.0, 65535, "127.0.0.1:0,[::1]:6881")


def test_a_bad_flag_names_the_flag():
    with pytest.raises(BadInput) as e:
        Settings().with_overrides(torrent_format="v2")
    assert str(e.value) == "--torrent-format: 'v2' is not one of v1, hybrid"


def test_settings_made_in_code_are_held_to_the_same_table():
    with pytest.raises(BadInput, match="executor: 'slurm' is not one of local, ray"):
        Settings(executor="slurm")


def test_tier_choices_are_the_models_tiers():
    from soundark.model import TIERS
    check = next(f for f in dataclasses.fields(Settings) if f.name == "tiers").metadata["check"]
    assert [t for t in TIERS if check((t,)) is None] == [t for t in TIERS if t != "skip"]


def test_archive_refuses_a_bad_setting_before_any_stage_runs(tmp_path):
    """`archive` used to scan, plan and encode before a bad torrent_format was noticed."""
    root, source = tmp_path / "a", tmp_path / "music"
    source.mkdir()
    run = [sys.executable, "-m", "soundark"]
    subprocess.run([*run, "init", str(root)], check=True, capture_output=True)
    settings = root / "soundark.toml"
    settings.write_text(settings.read_text().replace('torrent_format = "v1"', 'torrent_format = "v3"'))
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    done = subprocess.run([*run, "archive", str(source), "-a", str(root)], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr == f"error: {settings}: torrent_format: 'v3' is not one of v1, hybrid\n"
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
