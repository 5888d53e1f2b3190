"""Reading JSON (RFC 8259) from files soundark did not write, with one error class.

The standard ``json`` module raises ``RecursionError`` for a value nested deeper than the
interpreter's stack allows (``[[[[...`` 100,000 deep is a 200 KB line) and ``ValueError``
for everything else; an integer of more than 4,300 digits is a ``ValueError`` too. Every
reader of foreign JSON goes through :func:`loads`, so all of these become one
:class:`~soundark.errors.BadInput` (itself a ``ValueError``: callers that reject a bad line
with ``except ValueError`` keep working and go on with the next line). Standard library only.
"""

from __future__ import annotations

import json

from soundark.errors import BadInput


def loads(data: str | bytes | bytearray, subject: object = "") -> object:
    """``json.loads`` whose only failure is BadInput (``subject: not valid JSON (why)``)."""
    try:
        return json.loads(data)
    except RecursionError as e:
        raise BadInput(subject, "nested too deeply") from e
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError of bytes, too many digits
        raise BadInput(subject, f"{e}") from e
