"""Child processes that die with their parent, and a liveness check that sees zombies (Linux).

A process killed with SIGKILL whose own parent does not reap it stays a zombie, and a zombie
still passes ``os.kill(pid, 0)``; a watcher built on that check waits for ever. Two tools:

- :func:`die_with_parent` asks the kernel (``prctl(PR_SET_PDEATHSIG, SIGKILL)``, prctl(2)) to
  kill the calling process when its parent dies. The signal fires when the *thread* that forked
  the caller exits, so it is for children forked by a main thread (a fork server's, or
  ``subprocess`` called from the main thread), and it is checked against the expected parent
  pid, because a parent that died before the call leaves the child reparented and unprotected.
- :func:`process_gone` is true for a pid that no longer exists or is a zombie
  (``/proc/PID/stat`` state ``Z``, proc(5)).

Standard library only. Elsewhere than Linux, :func:`die_with_parent` does nothing and
:func:`process_gone` falls back to ``os.kill(pid, 0)``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int | None = None) -> bool:
    """Be SIGKILLed when the parent dies; exit at once if *parent* is already gone.

    Returns True when the kernel took the request (Linux), False elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if parent is not None and os.getppid() != parent:
        os._exit(1)  # the parent died before the request was made: nobody will signal us
    return True


def is_zombie(pid: int) -> bool:
    """True while *pid* is dead but not yet reaped (state ``Z`` in /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # the command name (field 2) may hold spaces and parentheses: split after the last ')'
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def process_gone(pid: int) -> bool:
    """True when *pid* does not exist or is a zombie; False while it runs (or is not ours to see)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return is_zombie(pid)


__all__ = ["die_with_parent", "is_zombie", "process_gone"]
