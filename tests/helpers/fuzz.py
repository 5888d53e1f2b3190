"""Shared settings and checks of the fuzz tests (tests/test_fuzz_*.py; docs/reliability.md, "Fuzzing").

Two hypothesis profiles:

* ``soundark-ci`` (default): derandomized, so a CI run tries the same inputs every time and
  cannot flake; each target runs its own modest number of examples (``examples(n)``).
* ``soundark-long`` (``SOUNDARK_FUZZ=long``): random inputs, ``SOUNDARK_FUZZ_SCALE`` (default 20)
  times as many examples, failures kept in ``.hypothesis/`` so the next run tries them first.

"No unhandled exception" means only :class:`SoundarkError` (or the parser's documented error
class) escapes: :func:`only_soundark_errors` runs a call and fails on anything else.
"Bounded memory" is measured with tracemalloc (Python allocations: the parsers here are Python).
"""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings

from soundark.errors import SoundarkError

LONG = os.environ.get("SOUNDARK_FUZZ", "") == "long"
SCALE = int(os.environ.get("SOUNDARK_FUZZ_SCALE", "20")) if LONG else 1

_CHECKS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large,
           HealthCheck.large_base_example]
settings.register_profile("soundark-ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=_CHECKS)
settings.register_profile("soundark-long", derandomize=False, deadline=None, print_blob=True,
                          suppress_health_check=_CHECKS)
settings.load_profile("soundark-long" if LONG else "soundark-ci")


def examples(n: int) -> settings:
    """``@examples(n)``: n examples in the default run, n * SCALE in the long one."""
    return settings(max_examples=n * SCALE)


def only_soundark_errors(call: Callable[..., Any], *args: Any, allowed: tuple[type[BaseException], ...] = (),
                         **kwargs: Any) -> Any:
    """Run *call*; return its value, or None when it raised a SoundarkError (or an *allowed* class).

    Any other exception propagates, and the fuzz test fails with the input that caused it.
    """
    try:
        return call(*args, **kwargs)
    except (SoundarkError, *allowed) as e:
        text = str(e)
        assert "\n" not in text.strip() or isinstance(e, allowed), f"a multi-line error: {text!r}"
        return None


def peak_python_bytes(call: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Peak bytes Python allocated while *call* ran (its errors are swallowed as above)."""
    tracemalloc.start()
    try:
        only_soundark_errors(call, *args, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bencode(value: object) -> bytes:
    """Canonical bencode (BEP 3) of ints, bytes, lists and dicts: to build hostile torrents."""
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    assert isinstance(value, dict)
    return b"d" + b"".join(bencode(k) + bencode(value[k]) for k in sorted(value)) + b"e"
