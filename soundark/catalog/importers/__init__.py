"""Importers: each streams its input, is idempotent and returns an ImportReport.

- :mod:`.scan`: audio files on disk (tags + stream facts + SHA-256)
- :mod:`.tabular`: catalog rows as JSONL, CSV or Parquet (docs/formats.md)
- :mod:`.musicbrainz`: MusicBrainz JSON dump recording lines
- :mod:`.listens`: listen counts (ListenBrainz popularity shape) or popularity 0-100
"""
