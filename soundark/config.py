"""Archive settings: one frozen :class:`Settings`, loaded from ``ARCHIVE/soundark.toml``.

Every setting is declared once below with its default and its help text
(``field(metadata={"help": ...})``); ``soundark init`` writes them all, with
their help, into a fresh ``soundark.toml``, and the docs are tested against
this table. CLI flags override the file (:meth:`Settings.with_overrides`).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundark.errors import BadInput

SETTINGS_FILE = "soundark.toml"
CATALOG_FILE = "catalog.sqlite3"


def _s(default: Any, help: str) -> Any:
    if isinstance(default, (list, tuple)):
        return field(default=tuple(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Everything an archive can be told. Unknown keys in the file are an error."""

    # catalog / import
    rights: str = _s("unknown", "Rights of sources imported without --rights (e.g. owned, cc-by-4.0, public-domain).")
    artist_separator: str = _s(";", "Separates artists in one text cell of an imported CSV/JSONL row "
                                    "(spaces around names are trimmed); a recognised export uses its own.")
    # plan
    budget: str = _s("", "Byte budget for the plan, e.g. 4TB, 500GB, 4TiB; empty keeps everything.")
    tiers: tuple[str, ...] = _s(("original", "opus75"), "Tiers the plan may choose, from: original, opus75.")
    original_max_bitrate: int = _s(192_000, "Lossy sources at or under this bit rate (bit/s) may be kept as they are.")
    opus_listen_value: float = _s(0.9, "Worth of a listen kept as opus75 relative to one kept as the original (0 < v <= 1); the plan maximises listens x worth under the budget.")
    plan_policy: str = _s("value", "How the plan picks tiers: value (most listens x worth per byte) or popular-originals (the top original_top of listens keep their original).")
    original_top: float = _s(0.5, "For plan_policy = popular-originals: the share of listens (0..1, or '50%' on the command line) whose recordings keep their original.")
    # encode
    opus_bitrate: int = _s(75_000, "Ogg Opus target bit rate for stereo, in bit/s (mono gets 5/8 of it).")
    workers: int = _s(0, "Parallel encode workers; 0 means one per core.")
    executor: str = _s("local", "Where encode jobs run: local (process pool) or ray.")
    ray_address: str = _s("", "Ray cluster address for --executor ray; empty starts a private local cluster.")
    lease_seconds: int = _s(600, "How long a running encode job is reserved before another run may take it.")
    # release
    target_size: str = _s("100GiB", "Target payload size of one audio release (torrent).")
    max_files: int = _s(50_000, "Most files in one release; clients struggle past ~100k files per torrent.")
    torrent_format: str = _s("v1", "v1 (every client reads it) or hybrid (BEP 52 v1+v2 with BEP 47 pad files).")
    trackers: tuple[str, ...] = _s((), "Tracker announce URLs written into torrents; none by default.")
    web_seeds: tuple[str, ...] = _s((), "BEP 19 web seed URLs written into torrents; none by default.")
    redistributable: tuple[str, ...] = _s(
        ("public-domain", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-3.0", "cc-by-sa-3.0", "owned-redistributable"),
        "Rights values that may be published in releases; everything else is held back.",
    )
    release_rights_conflicts: bool = _s(False, "Publish recordings whose file's own licence tag contradicts their rights (scan warns of each); off holds them back.")
    organisation: str = _s("", "Source-Organization written into bag-info.txt.")
    contact: str = _s("", "Contact-Email written into bag-info.txt.")
    parity_overhead: float = _s(0.05, "Share of extra erasure-coded repair data written per audio release.")
    release_prefix: str = _s("soundark", "Release names start with this: <prefix>-audio-0001, <prefix>-metadata-0001 ...")
    release_date: str = _s("", "Release date YYYY-MM-DD written into bags and torrents; empty means today (UTC).")
    # swarm (everything that contacts other hosts is off by default)
    listen_interfaces: str = _s("127.0.0.1:6881", "Where seed/fetch listen (host:port[,host:port]).")
    enable_dht: bool = _s(False, "Use the BitTorrent DHT (contacts public bootstrap nodes).")
    enable_lsd: bool = _s(False, "Use local service discovery (multicast on the LAN).")
    enable_upnp: bool = _s(False, "Ask the router for a port mapping by UPnP.")
    enable_natpmp: bool = _s(False, "Ask the router for a port mapping by NAT-PMP.")
    upload_rate_limit: int = _s(0, "Upload limit in bytes/s; 0 is unlimited.")
    download_rate_limit: int = _s(0, "Download limit in bytes/s; 0 is unlimited.")
    connections_limit: int = _s(200, "Most peer connections at once.")
    # web
    host: str = _s("127.0.0.1", "Address `soundark serve` binds to.")
    port: int = _s(8080, "Port `soundark serve` listens on.")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def help_of(cls, name: str) -> str:
        return {f.name: f.metadata["help"] for f in dataclasses.fields(cls)}[name]

    def with_overrides(self, **values: Any) -> "Settings":
        """A copy with the given settings replaced; ``None`` values are ignored (unset flags)."""
        given = {k: v for k, v in values.items() if v is not None}
        return dataclasses.replace(self, **_checked(given, source="flags"))

    @classmethod
    def load(cls, archive: Path) -> "Settings":
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


def _checked(data: dict[str, Any], source: str) -> dict[str, Any]:
    types = {f.name: f.type for f in dataclasses.fields(Settings)}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in types:
            raise BadInput(source, f"unknown setting {key!r} (known: {', '.join(sorted(types))})")
        kind = types[key]
        if kind.startswith("tuple"):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise BadInput(source, f"setting {key!r} must be a list of strings")
            value = tuple(value)
        elif kind == "bool" and not isinstance(value, bool):
            raise BadInput(source, f"setting {key!r} must be true or false")
        elif kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise BadInput(source, f"setting {key!r} must be an integer")
        elif kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise BadInput(source, f"setting {key!r} must be a number")
        elif kind == "str" and not isinstance(value, str):
            raise BadInput(source, f"setting {key!r} must be a string")
        out[key] = float(value) if kind == "float" else value
    return out


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
    """Write ``soundark.toml`` atomically (temp file + rename)."""
    archive = Path(archive)
    path = archive / SETTINGS_FILE
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(settings.to_toml(), encoding="utf-8")
    os.replace(tmp, path)
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
