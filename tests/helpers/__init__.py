"""Helpers that several test modules share (real bags, torrents, archives, audio, signals).

Not test modules: pytest collects nothing here. Fixtures live in ``tests/conftest.py``; test modules
import from ``helpers.*`` and never from one another (``tests/test_test_rules.py`` checks it).
"""
