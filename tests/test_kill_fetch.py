"""Kill anywhere (issue 13): `soundark fetch` SIGKILLed mid-download, then re-run.

The seeder is soundark's own (preserve.swarm.Seeder) in this process, on 127.0.0.1 only,
rate-limited so a download takes a few seconds; the fetch is a real child process killed at
seeded shares of an uninterrupted fetch's working time (fetch makes no durable steps for the
tick hook: libtorrent writes the pieces). The rerun must finish, the release must be
byte-identical to the seeded one and verify, and nothing may be left beside it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from soundark.preserve.swarm import Seeder, SwarmConfig
from soundark.preserve.verify import verify_path

from helpers import kill
from helpers.fixity import make_release

SIDE_BY_SIDE = max(1, min(4, os.cpu_count() or 1))
SLOW = SwarmConfig(listen_interfaces="127.0.0.1:0", upload_rate_limit=800_000)  # a fetch of ~1 s


@pytest.mark.slow
def test_fetch_killed_anywhere_then_rerun_gets_the_same_release(tmp_path: Path) -> None:
    bag, _ = make_release(tmp_path / "releases", n=20, max_size=80_000, parity=None)
    torrent = tmp_path / "releases" / "torrents" / "rel-0001.torrent"
    expected = kill.tree(bag)
    with Seeder(SLOW) as seeder:
        seeder.add(torrent, bag.parent)
        seeder.wait_ready()
        args = ["fetch", str(torrent), "--peer", f"127.0.0.1:{seeder.port}", "--listen", "127.0.0.1:0",
                "--timeout", "60", "-a", str(tmp_path)]

        def fetch_into(dl: Path, **how: float) -> kill.Run:
            return kill.run([*args, "--to", str(dl)], dl, **how)  # type: ignore[arg-type]

        first = tmp_path / "uninterrupted"
        first.mkdir()
        done = fetch_into(first)
        assert done.returncode == 0, done.stderr
        assert kill.tree(first / "rel-0001") == expected
        working = done.seconds - done.started

        def try_point(i: int, point: kill.Point) -> int:
            dl = tmp_path / f"dl{i}"
            dl.mkdir()
            r = fetch_into(dl, kill_after=point.value * working)
            assert r.returncode in (-9, 0), f"fetch killed at {point}: {r.stderr}"
            for _ in range(3):
                again = fetch_into(dl)
                if again.returncode == 0:
                    break
            assert again.returncode == 0, f"fetch killed at {point}, rerun: {again.stderr}"
            print(f"kill fetch at {point}: {'killed' if r.returncode == -9 else 'missed'}")
            assert kill.tree(dl / "rel-0001") == expected, f"fetch killed at {point}"
            assert sorted(p.name for p in dl.iterdir()) == sorted(p.name for p in first.iterdir())
            assert verify_path(dl / "rel-0001").ok
            return r.returncode

        # side by side as the stages' points (tests/test_kill_stages.py): each into its own folder
        with ThreadPoolExecutor(SIDE_BY_SIDE) as pool:
            codes = list(pool.map(try_point, *zip(*enumerate(kill.points("fetch", 0)), strict=True)))
        killed = codes.count(-9)
    assert killed >= 1, "every kill missed the download"
