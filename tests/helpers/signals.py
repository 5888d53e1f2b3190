"""Real child processes (`python -m soundark ...`) and real signals, for the signal tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "soundark", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def signal_when(proc: subprocess.Popen, busy, signum: int, timeout: float = 120) -> tuple[str, str]:
    """Send *signum* once ``busy()`` is true; return the process's stdout and stderr."""
    deadline = time.monotonic() + timeout
    while not busy():
        assert proc.poll() is None, f"the run ended before it was busy: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "never busy"
        time.sleep(0.005)
    proc.send_signal(signum)
    return proc.communicate(timeout=timeout)


def opens_file_under(pid: int, folder: Path) -> bool:
    """True while process *pid* holds a file below *folder* open (Linux /proc)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(folder) + "/"):
                return True
        except OSError:
            continue
    return False
