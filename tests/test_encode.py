"""The encode stage end to end on a real catalog and real audio (threads executor for speed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from soundark.catalog import open_catalog
from soundark.config import Settings
from soundark.encode.stage import EncodeOptions, run_encode
from soundark.media import synth
from soundark.media.opus_tags import r128_gain, read_opus_comments
from soundark.media.qa import inspect_opus

from helpers.encode import add_source, make_sources, sha256_of, store_files, tmp_leftovers

FAST = EncodeOptions(executor="threads", workers=2)


def opts(**kw) -> EncodeOptions:
    return EncodeOptions(**{"executor": "threads", "workers": 2, **kw})


def encoded_rows(catalog):
    return [dict(r) for r in catalog.execute("SELECT * FROM encoded ORDER BY recording_id")]


def test_encodes_every_planned_recording_once(archive, catalog, tmp_path):
    ids = make_sources(catalog, tmp_path / "src", 3)
    result = run_encode(archive, Settings(), options=FAST)
    assert (result.encoded, result.failed, result.remaining) == (3, 0, 0)
    rows = encoded_rows(catalog)
    assert [r["recording_id"] for r in rows] == ids
    for r in rows:
        path = archive.store_path(r["sha256"], ".opus")
        assert path.is_file() and sha256_of(path) == r["sha256"] and path.stat().st_size == r["bytes"]
        assert r["ext"] == ".opus" and abs(r["duration_ms"] - 1000) <= 20
        assert "libopus" in r["encoder"]
    assert result.bytes_in > result.bytes_out > 0 and result.ratio > 1
    status = dict(catalog.execute("SELECT status, count(*) FROM encode_job GROUP BY status").fetchall())
    assert status == {"done": 3}
    assert tmp_leftovers(archive.root) == []
    again = run_encode(archive, Settings(), options=FAST)  # nothing redone
    assert (again.encoded, again.kept, again.failed) == (0, 0, 0)
    assert len(store_files(archive.store)) == 3


def test_identical_sources_are_stored_once(archive, catalog, tmp_path):
    src = synth.make_file(tmp_path / "a", "flac", 1.0)
    copy = tmp_path / "b.flac"
    shutil.copy(src, copy)
    add_source(catalog, src, rank=1, title="Same")  # same audio and same tags: same bytes
    add_source(catalog, copy, rank=2, title="Same")
    result = run_encode(archive, Settings(), options=FAST)
    assert result.encoded == 2 and result.deduplicated == 1
    assert len(store_files(archive.store)) == 1
    assert len({r["sha256"] for r in encoded_rows(catalog)}) == 1


def test_original_tier_keeps_the_bytes(archive, catalog, tmp_path):
    mp3 = synth.make_file(tmp_path / "song", "mp3", 1.0, bitrate=128_000)
    rid = add_source(catalog, mp3, rank=1, tier="original", codec="mp3")
    result = run_encode(archive, Settings(), options=FAST)
    assert (result.kept, result.encoded) == (1, 0)
    row = encoded_rows(catalog)[0]
    assert row["recording_id"] == rid and row["ext"] == ".mp3"
    assert row["sha256"] == row["source_sha256"] == sha256_of(mp3)
    assert archive.store_path(row["sha256"], ".mp3").read_bytes() == mp3.read_bytes()


def test_dry_run_changes_nothing(archive, catalog, tmp_path):
    make_sources(catalog, tmp_path / "src", 3)
    result = run_encode(archive, Settings(), options=opts(dry_run=True, limit=2))
    assert [j["rank"] for j in result.would_encode] == [1, 2]
    assert catalog.scalar("SELECT count(*) FROM encode_job") == 0
    assert not archive.store.exists() or store_files(archive.store) == []


def test_limit_then_resume_in_rank_order(archive, catalog, tmp_path):
    ids = make_sources(catalog, tmp_path / "src", 3)
    first = run_encode(archive, Settings(), options=opts(limit=1))
    assert first.encoded == 1 and first.remaining == 2
    assert [r["recording_id"] for r in encoded_rows(catalog)] == [ids[0]]
    rest = run_encode(archive, Settings(), options=FAST)
    assert rest.encoded == 2 and rest.remaining == 0


def test_tags_catalog_wins_file_fills_in(archive, catalog, tmp_path):
    art = synth.tiny_jpeg()
    tags = synth.SourceTags(title="File Title", artists=["File Artist"], album="File Album",
                            track_number=4, isrc="GBAYE0000001", label="File Label",
                            replaygain_track_gain="-6.50 dB", replaygain_album_gain="-7.00 dB",
                            art=art, extra={"COMMENT": "from the file"})
    src = synth.make_file(tmp_path / "tagged", "flac", 1.0, tags=tags)
    rid = add_source(catalog, src, rank=1, title="Catalog Title", artist="Catalog Artist",
                     isrc="USRC17607839", mbid="b1a9c0e9-d987-4042-ae91-78d6a3267d69")
    result = run_encode(archive, Settings(), options=FAST)
    assert result.encoded == 1 and result.art_stored == 1
    row = encoded_rows(catalog)[0]
    c = read_opus_comments(archive.store_path(row["sha256"], ".opus"))
    assert c["TITLE"] == ["Catalog Title"] and c["ARTIST"] == ["Catalog Artist"]
    assert c["ISRC"] == ["USRC17607839"]
    assert c["MUSICBRAINZ_TRACKID"] == ["b1a9c0e9-d987-4042-ae91-78d6a3267d69"]
    assert c["ALBUM"] == ["File Album"] and c["TRACKNUMBER"] == ["4"] and c["LABEL"] == ["File Label"]
    assert c["COMMENT"] == ["from the file"]
    assert c["R128_TRACK_GAIN"] == [r128_gain(-6.5)] and c["R128_ALBUM_GAIN"] == [r128_gain(-7.0)]
    assert not any(k.startswith("REPLAYGAIN") for k in c) and "METADATA_BLOCK_PICTURE" not in c
    assert c["SOUNDARK_SOURCE_SHA256"] == [sha256_of(src)] and c["SOUNDARK_RIGHTS"] == ["owned"]
    assert c["SOUNDARK_SOURCE_CODEC"] == ["flac"] and "libopus" in c["ENCODER"][0]
    # cover: once, content-addressed, recorded
    art_row = dict(catalog.execute("SELECT * FROM art").fetchone())
    assert row["art_sha256"] == art_row["sha256"] and art_row["mime"] == "image/jpeg"
    assert archive.art_path(art_row["sha256"], ".jpg").read_bytes() == art
    assert rid == row["recording_id"]


def test_shared_cover_is_stored_once(archive, catalog, tmp_path):
    art = synth.tiny_jpeg((10, 200, 10))
    for i in range(2):
        src = synth.make_file(tmp_path / f"t{i}", "flac", 0.5, voice=synth.Voice(seed=i, noise=0.1),
                              tags=synth.SourceTags(title=f"t{i}", art=art))
        add_source(catalog, src, rank=i + 1)
    result = run_encode(archive, Settings(), options=FAST)
    assert result.encoded == 2 and result.art_stored == 1
    assert catalog.scalar("SELECT count(*) FROM art") == 1
    assert len(list(archive.art.rglob("*.jpg"))) == 1


def test_bad_inputs_fail_one_by_one_and_the_batch_goes_on(archive, catalog, tmp_path):
    good = synth.make_file(tmp_path / "good", "flac", 1.0)
    zero = tmp_path / "zero.flac"
    zero.write_bytes(b"")
    text = tmp_path / "text.flac"
    text.write_text("not audio\n" * 100)
    corrupt = synth.make_file(tmp_path / "corrupt", "flac", 2.0)
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 4: len(data) * 3 // 4] = os.urandom(len(data) // 2)
    corrupt.write_bytes(bytes(data))
    truncated = synth.make_file(tmp_path / "truncated", "aiff", 2.0)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    changed = synth.make_file(tmp_path / "changed", "flac", 1.0)
    deleted = synth.make_file(tmp_path / "deleted", "flac", 1.0)
    locked = synth.make_file(tmp_path / "locked", "flac", 1.0, voice=synth.Voice(seed=3, noise=0.1))
    cases = [good, zero, text, corrupt, truncated, changed, deleted, locked]
    for rank, path in enumerate(cases, start=1):
        add_source(catalog, path, rank=rank)
    changed.write_bytes(synth.make_file(tmp_path / "other", "flac", 1.0,
                                        voice=synth.Voice(seed=9, noise=0.1)).read_bytes())
    deleted.unlink()
    os.chmod(locked, 0)
    try:
        result = run_encode(archive, Settings(), options=FAST)
    finally:
        os.chmod(locked, 0o644)
    reasons = {os.path.basename(f.path): f.reason for f in result.failures}
    assert result.encoded + result.failed == len(cases)
    assert "good.flac" not in reasons
    assert "empty" in reasons["zero.flac"]
    assert "not readable audio" in reasons["text.flac"] or "decode" in reasons["text.flac"]
    assert "changed since the scan" in reasons["changed.flac"]
    assert "gone" in reasons["deleted.flac"]
    assert "truncated" in reasons["truncated.aiff"]
    assert "corrupt" in reasons["corrupt.flac"] or "decode" in reasons["corrupt.flac"]
    if os.geteuid() != 0:  # root reads anything
        assert "permission denied" in reasons["locked.flac"]
    assert all("\n" not in r for r in reasons.values())
    failed = dict(catalog.execute("SELECT recording_id, error FROM encode_job WHERE status='failed'")
                  .fetchall())
    assert len(failed) == result.failed and all(failed.values())
    # --retry-failed after fixing a file: only that one gets encoded
    changed_rid = [f.recording_id for f in result.failures if f.path.endswith("changed.flac")][0]
    catalog.execute("UPDATE source_file SET sha256 = ? WHERE recording_id = ?",
                    (sha256_of(changed), changed_rid))
    plain = run_encode(archive, Settings(), options=FAST)
    assert plain.encoded == 0 and plain.failed == 0  # failed jobs wait for --retry-failed
    retried = run_encode(archive, Settings(), options=opts(retry_failed=True))
    assert retried.encoded >= 1
    assert catalog.scalar("SELECT status FROM encode_job WHERE recording_id = ?", (changed_rid,)) == "done"


def test_encrypted_source_is_refused(archive, catalog, tmp_path):
    m4a = synth.make_file(tmp_path / "drm", "m4a", 1.0)
    data = m4a.read_bytes().replace(b"mp4a", b"enca")  # a protected sample entry (ISO 14496-12)
    m4a.write_bytes(data)
    add_source(catalog, m4a, rank=1, codec="aac")
    result = run_encode(archive, Settings(), options=FAST)
    assert result.failed == 1 and "encrypted" in result.failures[0].reason


def test_a_changed_plan_tier_re_encodes(archive, catalog, tmp_path):
    mp3 = synth.make_file(tmp_path / "song", "mp3", 1.0, bitrate=128_000)
    rid = add_source(catalog, mp3, rank=1, tier="opus75", codec="mp3")
    assert run_encode(archive, Settings(), options=FAST).encoded == 1
    catalog.execute("UPDATE plan SET tier = 'original' WHERE recording_id = ?", (rid,))
    result = run_encode(archive, Settings(), options=FAST)
    assert result.kept == 1 and result.sync["reset"] == 1
    tiers = sorted(r["tier"] for r in encoded_rows(catalog))
    assert tiers == ["opus75", "original"]  # outputs are never deleted by a re-plan
    catalog.execute("UPDATE plan SET tier = 'skip' WHERE recording_id = ?", (rid,))
    assert run_encode(archive, Settings(), options=FAST).encoded == 0


@pytest.mark.needs_tool("opusinfo")
def test_store_output_checks_out_with_opusinfo(archive, catalog, tmp_path):
    src = synth.make_file(tmp_path / "mono", "wav", 1.0, sample_rate=22050, channels=1)
    add_source(catalog, src, rank=1, codec="pcm_s16le")
    run_encode(archive, Settings(), options=FAST)
    row = encoded_rows(catalog)[0]
    path = archive.store_path(row["sha256"], ".opus")
    out = subprocess.run(["opusinfo", str(path)], capture_output=True, text=True, check=True).stdout
    assert "Channels: 1" in out and "Original sample rate: 22050 Hz" in out
    assert "Playback length: 0m:01.000s" in out
    assert inspect_opus(path).channels == 1


def test_local_process_pool(archive, catalog, tmp_path):
    make_sources(catalog, tmp_path / "src", 2, seconds=0.5)
    result = run_encode(archive, Settings(), options=EncodeOptions(workers=2))
    assert result.encoded == 2 and result.executor.startswith("local pool")


def test_unknown_executor_is_a_bad_input(archive, catalog, tmp_path):
    make_sources(catalog, tmp_path / "src", 1, seconds=0.5)
    from soundark.errors import BadInput

    with pytest.raises(BadInput, match="executor"):
        run_encode(archive, Settings(), options=EncodeOptions(executor="cloud"))
    # the lease taken before the failure was given back
    with open_catalog(archive.catalog) as cat:
        assert cat.scalar("SELECT count(*) FROM encode_job WHERE status = 'running'") == 0


def test_cli_dry_run_and_summary(archive, catalog, tmp_path):
    make_sources(catalog, tmp_path / "src", 2, seconds=0.5)
    base = [sys.executable, "-m", "soundark", "encode", "-a", str(archive.root)]
    dry = subprocess.run(base + ["--dry-run"], capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0 and "would encode or keep 2" in dry.stdout
    assert catalog.scalar("SELECT count(*) FROM encoded") == 0
    run = subprocess.run(base + ["--workers", "1"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "encoded 2, kept 0 original(s), failed 0" in run.stdout and "output in" in run.stdout
    as_json = subprocess.run(base + ["--json"], capture_output=True, text=True, timeout=120)
    assert json.loads(as_json.stdout)["encoded"] == 0  # nothing left: one JSON object on stdout
    bad = subprocess.run(base + ["--executor", "cloud"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: executor: unknown executor")


def test_longest_files_start_first(archive, catalog, tmp_path, monkeypatch):
    """Within the leased window the longest file goes first, so a run ends on short ones."""
    from soundark.encode import stage
    from soundark.encode.executors import ThreadExecutor

    seconds = [0.5, 2.0, 1.0, 1.5]
    ids = []
    for rank, length in enumerate(seconds, start=1):
        path = synth.make_file(tmp_path / f"t{rank}", "flac", length)
        ids.append(add_source(catalog, path, rank=rank))
    with catalog.transaction() as conn:  # as the scan records it
        for rid, length in zip(ids, seconds):
            conn.execute("UPDATE source_file SET duration_ms = ? WHERE recording_id = ?",
                         (int(length * 1000), rid))
    submitted: list[int] = []

    class Recording(ThreadExecutor):
        def submit(self, task):
            submitted.append(task.recording_id)
            return super().submit(task)

    monkeypatch.setattr(stage, "make_executor", lambda kind, workers, address: Recording(1))
    result = run_encode(archive, Settings(), options=opts(workers=1))
    assert result.encoded == 4
    assert submitted == [ids[1], ids[3], ids[2], ids[0]]


def test_a_full_disk_stops_the_run_and_leaves_the_job_pending(archive, catalog, tmp_path, monkeypatch):
    """Disk full is the machine's problem, not the input's: nothing is marked failed.

    (A real full filesystem needs a mount; the worker's write is made to fail with ENOSPC.)
    """
    import errno

    from soundark.encode import worker

    make_sources(catalog, tmp_path / "src", 3)
    real = worker._run
    calls = []

    def full_disk(task, tmp):
        calls.append(task.recording_id)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
        return real(task, tmp)

    monkeypatch.setattr(worker, "_run", full_disk)
    result = run_encode(archive, Settings(), options=opts(workers=1))
    assert result.stopped and "disk full: free space and re-run" in result.stopped
    # what was already in flight finishes; nothing new starts; the failed write stays pending
    assert result.failed == 0 and result.encoded in (1, 2) and result.remaining == 3 - result.encoded
    assert catalog.scalar("SELECT count(*) FROM encode_job WHERE status = 'failed'") == 0
    assert tmp_leftovers(archive.root) == []
    monkeypatch.setattr(worker, "_run", real)
    again = run_encode(archive, Settings(), options=FAST)  # space freed: no --retry-failed needed
    assert (again.encoded, again.failed, again.remaining, again.stopped) == (3 - result.encoded, 0, 0, None)
