"""The web face: FastAPI app (search, recordings, coverage, releases, JSON API) over one archive."""
