"""Archive settings: one frozen :class:`Settings`, loaded from ``ARCHIVE/soundark.toml``.

Every setting is declared once below with its default and its help text
(``field(metadata={"help": ...})``); ``soundark init`` writes them all, with
their help, into a fresh ``soundark.toml``, and the docs are tested against
this table. CLI flags override the file (:meth:`Settings.with_overrides`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundark.durable import write_durably
from soundark.errors import BadInput
from soundark.units import parse_bytes, parse_host_port

SETTINGS_FILE = "soundark.toml"
CATALOG_FILE = "catalog.sqlite3"


Check = Callable[[Any], "str | None"]  # why a (well-typed) value is refused; None accepts it

# A release name prefix (also checked by soundark.release.names before naming anything)
RELEASE_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        bad = [v for v in (value if isinstance(value, tuple) else (value,)) if v not in choices]
        return f"{bad[0]!r} is not one of {', '.join(choices)}" if bad else None
    return check


def between(low: float, high: float | None = None) -> Check:
    def check(value: Any) -> str | None:
        if value < low or (high is not None and value > high):
            return f"{value!r} is not between {low:g} and {high:g}" if high is not None else \
                f"{value!r} is less than {low:g}"
        return None
    return check


def _worth(value: Any) -> str | None:
    return None if 0.0 < value <= 1.0 else f"{value!r} is not in (0, 1]"


def size(*, empty_ok: bool, positive: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if value == "" and empty_ok:
            return None
        try:
            n = parse_bytes(value)
        except BadInput as e:
            return e.reason
        return f"{value!r} must be more than 0 bytes" if positive and n == 0 else None
    return check


def _listeners(value: Any) -> str | None:
    parts = [p for p in value.split(",") if p.strip()]
    if not parts:
        return "give at least one host:port"
    for part in parts:
        try:
            parse_host_port(part, "listen_interfaces", lowest_port=0)
        except BadInput as e:
            return e.reason
    return None


def _date(value: Any) -> str | None:
    if value == "":
        return None
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return f"{value!r} is not a date YYYY-MM-DD"
    return None if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else f"{value!r} is not a date YYYY-MM-DD"


def _prefix(value: Any) -> str | None:
    return None if RELEASE_PREFIX.match(value) else \
        f"{value!r} must be 1-64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)"


def _not_empty(value: Any) -> str | None:
    return None if value.strip() else "must not be empty"


def _s(default: Any, help: str, check: Check | None = None) -> Any:
    """One row of the table: default, help (written into soundark.toml and docs/settings.md)
    and an optional value check; the type check comes from the field's annotation."""
    if isinstance(default, (list, tuple)):
        default = tuple(default)
    return field(default=default, metadata={"help": help, "check": check})


@dataclass(frozen=True)
class Settings:
    """Everything an archive can be told. Unknown keys in the file are an error."""

    # every command that writes the archive
    lock_wait_seconds: float = _s(5.0, "How long a writing command (init, scan, import, plan, release, repair, "
                                       "archive, demo) waits for another one writing the same archive before it "
                                       "refuses with one line naming it (docs/reliability.md).", between(0))
    # catalog / import
    rights: str = _s("unknown", "Rights of sources imported without --rights (e.g. owned, cc-by-4.0, public-domain).",
                     _not_empty)
    max_tag_entries: int = _s(10_000, "A scanned file with more tag entries (comments, frames, atoms, pictures) "
                                      "than this is refused before it is decoded: FFmpeg's tag parsing slows "
                                      "with the square of the count; 0 = no limit (docs/scan.md).", between(0))
    scan_file_seconds: float = _s(900.0, "Longest time the scan spends decoding one file; a file still decoding "
                                         "then is refused (one line); 0 = no limit (docs/scan.md).", between(0))
    artist_separator: str = _s(";", "Separates artists in one text cell of an imported CSV/JSONL row "
                                    "(spaces around names are trimmed); a recognised export uses its own "
                                    "(Exportify: `,` with `\\,` inside names; docs/formats.md).", _not_empty)
    # plan
    budget: str = _s("", "Byte budget for the plan, e.g. 4TB, 500GB, 4TiB; empty keeps everything.",
                     size(empty_ok=True))
    tiers: tuple[str, ...] = _s(("original", "opus75"), "Tiers the plan may choose, from: original, opus75.",
                                 one_of("original", "opus75"))
    original_max_bitrate: int = _s(192_000, "Lossy sources at or under this bit rate (bit/s) may be kept as they are.",
                                   between(0))
    opus_listen_value: float = _s(0.9, "Worth of a listen kept as opus75 relative to one kept as the original "
                                       "(0 < v <= 1); the plan maximises listens x worth under the budget.",
                                  _worth)
    plan_policy: str = _s("value", "How the plan picks tiers: value (most listens x worth per byte) or "
                                   "popular-originals (the top original_top of listens keep their original).",
                          one_of("value", "popular-originals"))
    original_top: float = _s(0.5, "For plan_policy = popular-originals: the share of listens (0..1, or '50%' "
                                  "on the command line) whose recordings keep their original.",
                             between(0, 1))
    # encode
    opus_bitrate: int = _s(75_000, "Ogg Opus target bit rate for stereo, in bit/s (mono gets 5/8 of it).",
                           between(6_000, 510_000))
    workers: int = _s(0, "Parallel encode workers; 0 means one per core.", between(0, 4096))
    executor: str = _s("local", "Where encode jobs run: local (process pool) or ray.", one_of("local", "ray"))
    ray_address: str = _s("", "Ray cluster address for --executor ray; empty starts a private local cluster.")
    ray_storage: str = _s("auto", "How Ray nodes reach sources and store: shared (same paths on every node), "
                                  "ship (bytes through Ray's object store) or auto (per task, see docs/cluster.md).",
                          one_of("auto", "shared", "ship"))
    ray_ship_bytes: str = _s("1GiB", "Most source bytes shipped through Ray's object store at once (ray_storage "
                                     "ship or auto); one file larger than this still goes, alone.",
                             size(empty_ok=False, positive=True))
    lease_seconds: int = _s(600, "How long a running encode job is reserved before another run may take it.",
                            between(1))
    encode_qa: str = _s("decode", "QA of each Opus output: decode (every packet decoded, length and level "
                                  "checked) or packets (page CRCs and packet lengths only, no decode; "
                                  "about a tenth less CPU).", one_of("decode", "packets"))
    # release
    target_size: str = _s("100GiB", "Target payload size of one audio release (torrent).",
                          size(empty_ok=False, positive=True))
    max_files: int = _s(50_000, "Most files in one release; clients struggle past ~100k files per torrent.",
                        between(1))
    torrent_format: str = _s("v1", "v1 (every client reads it) or hybrid (BEP 52 v1+v2 with BEP 47 pad files).",
                             one_of("v1", "hybrid"))
    trackers: tuple[str, ...] = _s((), "Tracker announce URLs written into torrents; none by default.")
    web_seeds: tuple[str, ...] = _s((), "BEP 19 web seed URLs written into torrents; none by default.")
    redistributable: tuple[str, ...] = _s(
        ("public-domain", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-3.0", "cc-by-sa-3.0", "owned-redistributable"),
        "Rights values that may be published in releases; everything else is held back.",
    )
    release_rights_conflicts: bool = _s(False, "Publish recordings whose file's own licence tag contradicts their"
                                               " rights (scan warns of each); off holds them back.")
    organisation: str = _s("", "Source-Organization written into bag-info.txt.")
    contact: str = _s("", "Contact-Email written into bag-info.txt.")
    parity_overhead: float = _s(0.05, "Share of extra erasure-coded repair data written per audio release; "
                                   "0 writes none.", between(0, 1))
    release_prefix: str = _s("soundark", "Release names start with this: <prefix>-audio-0001, "
                                                   "<prefix>-metadata-0001 ... (docs/release.md).", _prefix)
    release_date: str = _s("", "Release date YYYY-MM-DD written into bags and torrents; empty means today "
                                "(UTC).", _date)
    # swarm (everything that contacts other hosts is off by default)
    listen_interfaces: str = _s("127.0.0.1:6881", "Where seed/fetch listen (host:port[,host:port]).",
                                _listeners)
    enable_dht: bool = _s(False, "Use the BitTorrent DHT (contacts public bootstrap nodes).")
    enable_lsd: bool = _s(False, "Use local service discovery (multicast on the LAN).")
    enable_upnp: bool = _s(False, "Ask the router for a port mapping by UPnP.")
    enable_natpmp: bool = _s(False, "Ask the router for a port mapping by NAT-PMP.")
    enable_trackers: bool = _s(False, "Let seed/fetch announce to the trackers a .torrent or magnet names "
                                      "(otherwise they are stripped before libtorrent sees them).")
    enable_web_seeds: bool = _s(False, "Let fetch download from the web seeds (BEP 19/17) a .torrent or magnet "
                                       "names (otherwise they are stripped before libtorrent sees them).")
    upload_rate_limit: int = _s(0, "Upload limit in bytes/s; 0 is unlimited.", between(0))
    download_rate_limit: int = _s(0, "Download limit in bytes/s; 0 is unlimited.", between(0))
    connections_limit: int = _s(200, "Most peer connections at once.", between(1))
    # web
    host: str = _s("127.0.0.1", "Address `soundark serve` binds to.", _not_empty)
    port: int = _s(8080, "Port `soundark serve` listens on.",
                   between(0, 65535))

    def __post_init__(self) -> None:
        # values that did not come through load()/with_overrides() (code, tests) are held to
        # the same table; those two name the file or the flag themselves
        for f in dataclasses.fields(self):
            reason = _refusal(f, getattr(self, f.name))
            if reason:
                raise BadInput("settings", f"{f.name}: {reason}")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def help_of(cls, name: str) -> str:
        return str({f.name: f.metadata["help"] for f in dataclasses.fields(cls)}[name])

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with the given settings replaced; ``None`` values are ignored (unset flags)."""
        given = {k: v for k, v in values.items() if v is not None}
        return dataclasses.replace(self, **_checked(given, source=None))

    @classmethod
    def load(cls, archive: Path) -> Settings:
        path = Path(archive) / SETTINGS_FILE
        if not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise BadInput(path, f"not valid TOML: {e}") from e
        except OSError as e:
            raise BadInput(path, f"cannot read: {e.strerror or e}") from e
        return cls(**_checked(data, source=str(path)))

    def to_toml(self) -> str:
        lines = ["# soundark archive settings. Every key, its default and its meaning.", ""]
        for f in dataclasses.fields(self):
            lines.append(f"# {f.metadata['help']}")
            lines.append(f"{f.name} = {_toml_value(getattr(self, f.name))}")
            lines.append("")
        return "\n".join(lines)


def _checked(data: dict[str, Any], source: str | None) -> dict[str, Any]:
    """Type and value of each setting in *data*; *source* is the file, None for flags.

    A refusal is one line: ``ARCHIVE/soundark.toml: torrent_format: 'v3' is not one of v1,
    hybrid`` (or ``--torrent-format: ...`` for a flag), before any stage runs.
    """
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise BadInput(source or "flags", f"unknown setting {key!r} (known: {', '.join(sorted(fields))})")
        value = _typed(key, str(fields[key].type), value, source)
        reason = _refusal(fields[key], value)
        if reason:
            if source is None:
                raise BadInput("--" + key.replace("_", "-"), reason)
            raise BadInput(source, f"{key}: {reason}")
        out[key] = value
    return out


def _typed(key: str, kind: str, value: Any, source: str | None) -> Any:
    where = source or "flags"
    if kind.startswith("tuple"):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise BadInput(where, f"setting {key!r} must be a list of strings")
        return tuple(value)
    if kind == "bool" and not isinstance(value, bool):
        raise BadInput(where, f"setting {key!r} must be true or false")
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise BadInput(where, f"setting {key!r} must be an integer")
    if kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise BadInput(where, f"setting {key!r} must be a number")
    if kind == "str" and not isinstance(value, str):
        raise BadInput(where, f"setting {key!r} must be a string")
    return float(value) if kind == "float" else value


def _refusal(f: dataclasses.Field[Any], value: Any) -> str | None:
    check = f.metadata.get("check")
    return check(value) if check is not None else None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def write_settings(archive: Path, settings: Settings) -> Path:
    """Write ``soundark.toml`` atomically and durably (temp file, fsync, rename, fsync the folder)."""
    archive = Path(archive)
    path = archive / SETTINGS_FILE
    write_durably(path, settings.to_toml().encode("utf-8"))
    return path


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True)
class ArchivePaths:
    """Where things live inside an archive folder (the on-disk contract, docs/archive.md)."""

    root: Path

    @property
    def settings(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def catalog(self) -> Path:
        return self.root / CATALOG_FILE

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def art(self) -> Path:
        return self.root / "art"

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def torrents(self) -> Path:
        return self.root / "releases" / "torrents"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def store_path(self, sha256: str, ext: str) -> Path:
        """``store/ab/cd/<sha256><ext>``: content-addressed, same bytes stored once."""
        return self.store / sha256[:2] / sha256[2:4] / f"{sha256}{ext}"

    def art_path(self, sha256: str, ext: str) -> Path:
        return self.art / sha256[:2] / sha256[2:4] / f"{sha256}{ext}"
