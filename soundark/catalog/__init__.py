"""The catalog: SQLite store, migrations, search and importers (the system of record)."""

from soundark.catalog.store import Catalog, open_catalog

__all__ = ["Catalog", "open_catalog"]
