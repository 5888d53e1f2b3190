"""Help texts in plain words: `--budget SIZE`, `RELEASE...`, never `<list[str]>` or `{query}`.

Typer labels every value with its type (0.29: `<int range>`, `<list[str]>`), puts a
required argument in braces in the usage line and adds click's range note (`[x>=0]`).
None of that means anything to someone archiving music, so the finished click command
tree gets a metavar per parameter (from its name, else its type) and those labels off.
"""

from __future__ import annotations

from typing import Any

# Value names by parameter name: what the user types, not what Python holds.
NAMES = {
    "archive": "DIR", "archive_dir": "DIR", "to": "DIR", "out": "DIR", "folder": "DIR",
    "source": "SOURCE", "budget": "SIZE", "target_size": "SIZE", "date": "YYYY-MM-DD",
    "listen": "HOST:PORT", "peer": "HOST:PORT", "host": "ADDRESS", "port": "PORT",
    "address": "ADDRESS", "executor": "local|ray", "tiers": "TIERS", "rights": "RIGHTS",
    "column_map": "FIELD=COLUMN,...", "encoding": "ENCODING", "query": "QUERY",
    "releases": "RELEASE", "files": "FILE", "file": "FILE", "old": "OLD", "new": "NEW",
    "csv_out": "FILE", "magnets": "FILE", "torrents": "FILE", "seeders": "FILE",
    "torrent": "FILE", "catalog_file": "FILE", "listens_file": "FILE", "path": "PATH",
    "duration": "SECONDS", "timeout": "SECONDS", "upload_limit": "BYTES/S",
    "download_limit": "BYTES/S",
}
BY_TYPE = {"int": "N", "float": "NUMBER", "path": "PATH", "str": "TEXT", "text": "TEXT"}


def plain_help(command: Any) -> Any:
    """Give every parameter of *command* and its subcommands a plain metavar; return *command*."""
    for param in getattr(command, "params", ()):
        _plain_param(param)
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    return command


def _metavar(param: Any) -> str:
    name = param.name or ""
    if name in NAMES:
        return NAMES[name]
    # Typer 0.29 names the annotation (`int | None`); before, the click type (`integer range`)
    kind = (param.bare_type() if hasattr(param, "bare_type") else getattr(param.type, "name", "str")).lower()
    for word, label in BY_TYPE.items():
        if word in kind:
            return label
    return name.upper()


def _plain_param(param: Any) -> None:
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return
    name = param.metavar or _metavar(param)
    param.metavar = name
    # Instance attributes shadow Typer's methods: the label is the metavar alone.
    param._get_number_range_help_str = lambda: None
    kind = getattr(param, "type", None)
    if hasattr(kind, "_describe_range"):  # Typer < 0.29 asks the range type itself
        kind._describe_range = lambda: ""
    if param.param_type_name == "argument":
        param.display_type_rich = lambda ctx: None
        usage = name if param.required else f"[{name}]"
        usage += "..." if param.nargs != 1 else ""
        param._usage_display_name = lambda: usage
        param.get_usage_pieces = lambda ctx: [usage]  # what the usage line asks for, in every Typer
        param._rich_display_name = lambda: name + ("..." if param.nargs != 1 else "")
