"""The kill-anywhere test hook (soundark/durable.py): off by default, counts every durable step
(a move into place, a catalog COMMIT) before and after, and kills at exactly the N-th."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from soundark.catalog import open_catalog
    from soundark.durable import write_durably
    folder = Path(sys.argv[1])
    write_durably(folder / "one", b"1")
    with open_catalog(folder / "catalog.sqlite3") as cat:
        with cat.transaction() as conn:
            conn.execute("CREATE TABLE t (x INTEGER)")
    write_durably(folder / "two", b"2")
    print("done")
""")


def run(folder: Path, kill_at: int | None) -> tuple[subprocess.CompletedProcess, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUNDARK_KILL")}
    log = folder / "ticks.log"
    log.unlink(missing_ok=True)
    if kill_at is not None:
        env.update(SOUNDARK_KILL_AT=str(kill_at), SOUNDARK_KILL_LOG=str(log))
    r = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, env=env,
                       start_new_session=True, timeout=120)
    return r, log.read_text().splitlines() if log.exists() else []


def test_off_unless_asked(tmp_path: Path) -> None:
    r, ticks = run(tmp_path, None)
    assert r.returncode == 0 and r.stdout.strip() == "done" and ticks == []


@pytest.mark.parametrize("at", [1, 2, 5, 6, 8])
def test_kills_at_exactly_the_nth_tick(tmp_path: Path, at: int) -> None:
    r, ticks = run(tmp_path, at)
    assert r.returncode == -9, r.stderr
    # the migrations commit first (a fresh catalog); then our transaction; the moves around them
    assert len(ticks) == at and ticks[0] == "1 move" and ticks[-1].split()[0] == str(at)
    assert (tmp_path / "one").exists() == (at >= 2)  # killed before the first move: not in place
    assert not (tmp_path / "two").exists()


def test_counts_every_step_of_a_whole_run(tmp_path: Path) -> None:
    r, ticks = run(tmp_path, 10_000)
    assert r.returncode == 0, r.stderr
    kinds = [t.split()[1] for t in ticks]
    assert kinds[:2] == ["move", "moved"] and kinds[-2:] == ["move", "moved"]
    assert kinds.count("commit") == kinds.count("committed") >= 2  # migrations, then ours
