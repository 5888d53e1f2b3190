"""The child side of _reader.py: read and prepare a catalog file, send the batches to stdout."""

from __future__ import annotations

import os
import pickle
import sys

from soundark import lifeline
from soundark.catalog.importers._reader import PARENT_ENV
from soundark.catalog.importers._rows import RowPreparer
from soundark.catalog.importers.tabular import prepare_frame, read_frames
from soundark.errors import EnvironmentProblem


def _serve() -> None:
    parent = os.environ.get(PARENT_ENV, "")
    if parent.isdigit():
        lifeline.die_with_parent(int(parent))
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # nothing else may write into the channel
    path, options, rights, separator = pickle.load(sys.stdin.buffer)
    try:
        preparer = RowPreparer(rights, separator=separator)
        for frame in read_frames(path, options, lambda plan: pickle.dump(("plan", plan), out)):
            pickle.dump(("batch", prepare_frame(preparer, frame)), out, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(("done", None), out)
    except Exception as e:  # raised again in the parent
        try:
            message = pickle.dumps(("error", e))
        except (pickle.PicklingError, TypeError, AttributeError):
            message = pickle.dumps(("error", EnvironmentProblem(path, f"{type(e).__name__}: {e}")))
        out.write(message)
    out.close()


if __name__ == "__main__":
    try:
        _serve()
    except BrokenPipeError:  # the parent stopped reading (an error there, or cancelled)
        pass
