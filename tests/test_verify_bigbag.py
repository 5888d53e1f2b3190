"""verify of a bag whose manifest lists hundreds of thousands of files (issue 13, item 6).

Memory follows what is on disk and a capped list of findings, not the manifest's length: the
manifest is checked whole in one streamed pass (8 bytes a line kept) and then verified a
window at a time; findings past the cap are counted. The window path gives the same answers
as the whole-manifest path on small real bags (the limits lowered to reach it).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from soundark.errors import BadInput
from soundark.fixity import bagit, paths
from soundark.fixity.bagit import read_manifest, scan_manifest
from soundark.preserve import verify
from soundark.preserve.verify import verify_path

from helpers.fixity import flip, make_release

LINES = 300_000
REAL = 40      # files on disk with the right bytes
WRONG = 3      # on disk, other bytes
EXTRA = 2      # on disk, not listed


def _rel(i: int) -> str:
    return f"data/d{i // 1000:04d}/f{i:07d}.opus"


@pytest.fixture(scope="module")
def big_bag(tmp_path_factory) -> Path:
    """A bag whose manifest lists LINES files: REAL + WRONG on disk, the rest missing."""
    bag = tmp_path_factory.mktemp("big") / "bag"
    bag.mkdir()
    lines = []
    for i in range(LINES):
        data = b"file %d" % i
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {_rel(i)}\n")
        if i < REAL + WRONG:
            (bag / _rel(i)).parent.mkdir(parents=True, exist_ok=True)
            (bag / _rel(i)).write_bytes(data if i < REAL else b"other bytes")
    for k in range(EXTRA):
        (bag / f"data/extra{k}.opus").write_bytes(b"not listed")
    (bag / bagit.MANIFEST).write_text("".join(lines))
    (bag / bagit.BAGIT_TXT).write_text(bagit.BAGIT_DECLARATION)
    (bag / bagit.BAG_INFO).write_text("Source: test_verify_bigbag\n")
    return bag


def _child(args: list[str], out: Path) -> tuple[int, str]:
    """Run ``python args`` to the end: exit code and output."""
    with open(out, "w") as f:
        proc = subprocess.run([sys.executable, *args], stdout=f, stderr=subprocess.STDOUT, check=False,
                              env={**os.environ, "COLUMNS": "200"})
    return proc.returncode, out.read_text()


VERIFY_1000 = """
import json, sys
from pathlib import Path
from soundark.preserve.verify import verify_path
report = verify_path(Path(sys.argv[1]), max_problems=1000)
# its own peak RSS (ru_maxrss of a child would include the parent's, inherited across fork)
hwm = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(json.dumps({**report.as_dict(), "kept": len(report.problems), "more": sum(report.more.values()),
                  "vmhwm_kb": hwm}))
"""


def test_a_300k_line_manifest_is_verified_in_bounded_memory_with_capped_findings(big_bag: Path,
                                                                                 tmp_path: Path) -> None:
    rc, out = _child(["-c", VERIFY_1000, str(big_bag)], tmp_path / "out.json")
    assert rc == 0, out
    report = json.loads(out)
    missing = LINES - REAL - WRONG
    assert report["counts"] == {"missing": missing, "extra": EXTRA, "truncated": 0, "altered": WRONG,
                                "refused": 0}
    assert report["kept"] == 1000 and report["truncated"] and not report["ok"]
    assert report["more"] == report["not_listed"] == missing + EXTRA + WRONG - 1000
    assert report["files"] == LINES
    # the findings kept are the first met, in manifest order: the missing files after the real ones
    assert report["problems"][0] == {"kind": "missing", "path": _rel(REAL + WRONG),
                                     "detail": "listed in the manifest"}
    # before: ~950 MB (every line as dict entries, fold keys, Entry objects and Problems); now
    # the interpreter with numpy (~55 MB), the 100k-line window, 8 bytes a line, 1,000 findings
    assert report["vmhwm_kb"] < 200 << 10, report["vmhwm_kb"]


def test_the_command_lists_the_cap_and_counts_the_rest(big_bag: Path, tmp_path: Path) -> None:
    """The real command: text says "and N more", exit 1."""
    rc, text = _child(["-m", "soundark", "verify", str(big_bag)], tmp_path / "out.txt")
    assert rc == 1, text
    assert f"{LINES - REAL - WRONG} missing" in text and f"{WRONG} altered" in text
    assert f"and {LINES - REAL - WRONG + WRONG + EXTRA - 50} more (the first 100000 are in --json)" in text


def test_scan_refuses_what_read_manifest_refuses_past_the_kept_entries(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    bag.mkdir()
    base = [f"data/f{i:03d}/x{j}.opus" for i in range(40) for j in range(3)]

    def write(rels: list[str]) -> None:
        (bag / bagit.MANIFEST).write_text("".join(f"{'ab' * 32}  {r}\n" for r in rels))

    write(base)
    for keep in (10, 1000):  # hashes only, and the whole dict
        scan = scan_manifest(bag, keep=keep)
        assert scan.count == len(base) and (scan.entries is None) == (keep == 10)
        assert "data/f001/x1.opus" in scan and "data/f001/x9.opus" not in scan
        windows = list(scan.windows(7))
        assert {k: v for w in windows for k, v in w.items()} == read_manifest(bag)
    hostile = {"twice": base + [base[5]], "case": base + ["data/F001/X1.opus"],
               "file and folder": base + ["data/f001"], "folder after file": ["data/a"] + base + ["data/a/b"],
               "dot-dot": base + ["data/../x"]}
    for name, rels in hostile.items():
        write(rels)
        with pytest.raises(BadInput) as small:
            read_manifest(bag)
        with pytest.raises(BadInput) as big:
            scan_manifest(bag, keep=10)
        assert str(big.value) == str(small.value), name


def _summary(report) -> tuple:
    return (report.ok, report.files, report.bytes, sorted((p.kind, p.path, p.detail) for p in report.problems))


@pytest.mark.parametrize("torrent", [False, True])
def test_the_window_path_answers_as_the_whole_manifest_path(tmp_path: Path, monkeypatch, torrent: bool) -> None:
    """A real small bag, damaged every way, verified with the limits lowered (3 lines kept,
    windows of 2) and as usual: the same findings."""
    bag, _ = make_release(tmp_path / "releases", n=9, parity=None)
    if not torrent:
        (tmp_path / "releases" / "torrents" / f"{bag.name}.torrent").unlink()
    audio = sorted(p for p in read_manifest(bag) if p.startswith("data/audio/"))
    flip(bag / audio[0], 3)
    (bag / audio[1]).unlink()
    os.rename(bag / audio[2], bag / "data/audio/moved.bin")
    (bag / "data/audio/new.bin").write_bytes(b"extra")
    whole = verify_path(bag)
    fast_whole = verify_path(bag, fast=True)
    monkeypatch.setattr(bagit, "MANIFEST_KEEP", 3)
    monkeypatch.setattr(verify, "WINDOW_FILES", 2)
    assert scan_manifest(bag).entries is None
    assert _summary(verify_path(bag)) == _summary(whole)
    assert _summary(verify_path(bag, fast=True)) == _summary(fast_whole)
    assert any("renamed to data/audio/moved.bin" in p.detail for p in whole.problems)


def test_a_fast_path_match_agrees_with_every_rule() -> None:
    """check_relpath's one-regex fast path accepts exactly what the rule-by-rule checks accept."""
    rnd = random.Random(13)
    alphabet = ["a", "b", ".", "/", "\\", "\x00", "\x1f", "\x7f", " ", "é", "\u2028", "\ud800", ":", "%", "*"]
    samples = ["", ".", "..", "a/.", "a/..", "./a", "a//b", "/a", "C:x", "x" * 255, "x" * 256,
               "data/" + "é" * 127, "data/" + "é" * 128, "a/" * 63 + "b", "a/" * 64 + "b", "d/" + "x" * 4094]
    samples += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 12))) for _ in range(20_000)]
    for text in samples:
        try:
            slow = paths._check_relpath_slowly(text, "t") == text
        except BadInput:
            slow = False
        assert not paths.is_safe_relpath(text) or slow, repr(text)  # fast never accepts more
        try:
            assert (paths.check_relpath(text, "t") == text) == slow, repr(text)
        except BadInput:
            assert not slow, repr(text)


def test_the_folder_cache_finds_every_file_folder_clash() -> None:
    rnd = random.Random(5)
    for _ in range(3000):
        rels = list(dict.fromkeys("/".join(rnd.choice("ab") for _ in range(rnd.randint(1, 3)))
                                  for _ in range(rnd.randint(1, 6))))
        folders = {"/".join(r.split("/")[:i]) for r in rels for i in range(1, r.count("/") + 1)}
        try:
            paths.check_unique(rels)
            refused = False
        except BadInput:
            refused = True
        assert refused == bool(folders & set(rels)), rels
