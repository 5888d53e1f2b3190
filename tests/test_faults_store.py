"""A store file replaced by garbage (issue 13, faults), end to end through the command line:
`soundark verify` names it (exit 1), `soundark repair` restores it byte-exact (from the release's
parity when the bag copy is the same inode and rotted with it, else by re-linking the intact bag
copy), and verify is clean again. tests/test_store_check.py covers the same paths in-process.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from helpers.faults import run
from helpers.store import archive


def _garbage(victim, how: str, size: int) -> None:
    if how == "a-block-in-place":  # the same inode as its bag file: both hold the garbage
        with open(victim, "r+b") as f:
            f.seek(8192)
            f.write(os.urandom(4096))
    elif how == "whole-file-in-place":
        victim.write_bytes(os.urandom(size // 3))  # another length, nothing of the original left
    else:
        tmp = victim.with_name("garbage.tmp")
        tmp.write_bytes(os.urandom(size // 3))
        tmp.replace(victim)  # a new inode: the bag copy is intact


@pytest.mark.slow
@pytest.mark.parametrize("how", ["a-block-in-place", "replaced-by-a-new-file", "whole-file-in-place"])
def test_a_store_file_replaced_by_garbage_is_named_and_restored(tmp_path, how):
    paths, stored = archive(tmp_path / "a")
    victim = stored[1]
    good = victim.read_bytes()
    _garbage(victim, how, len(good))
    rel = victim.relative_to(paths.root).as_posix()

    done = run("verify", str(paths.root), "--json")
    assert done.returncode == 1, done.stderr
    problems = json.loads(done.stdout)["problems"]
    assert rel in {p["path"] for p in problems}, problems
    text = run("verify", str(paths.root))
    assert text.returncode == 1 and text.stdout.startswith("DAMAGED") and "Traceback" not in text.stderr

    fixed = run("repair", str(paths.root), "--json")
    report = json.loads(fixed.stdout)
    if how == "whole-file-in-place":
        # beyond any parity, and no intact copy anywhere: named, with what to do; nothing else touched
        assert fixed.returncode == 1 and report["ok"] is False
        reasons = {u["path"]: u["reason"] for b in report["bags"] for u in b["unrecoverable"]}
        assert "beyond the parity's reach" in reasons["data/audio/USABC2400001 - Artist - T1.opus"]
        assert reasons[rel] == "no intact copy in any release: delete it and run `soundark encode` to make it again"
        for other in (stored[0], stored[2]):  # the others untouched
            assert hashlib.sha256(other.read_bytes()).hexdigest() == other.name.split(".")[0]
        assert run("verify", str(paths.root / "releases" / "soundark-audio-0001.parity")).returncode == 0
        return
    assert fixed.returncode == 0, fixed.stdout
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == victim.name.split(".")[0]
    assert victim.read_bytes() == good
    again = run("verify", str(paths.root), "--json")
    assert again.returncode == 0, again.stdout
    assert not list(paths.root.rglob("*.restore"))
