"""Capacity model: how long, and how many machines, for the whole archive (issue 16).

    python benchmarks/capacity.py                       # the tables of docs/performance.md
    python benchmarks/capacity.py --node-cores 64 --disk-mb-s 1500

Reads the measured figures below (each names where it was measured; change one and re-run to
regenerate the doc's tables) and prints Markdown: encode core-hours, cluster size for a target
number of days, storage and I/O per stage, catalog size, the torrents and their sizes, the
memory a seeder of everything needs, and the time to verify a full mirror.
Standard library only; nothing is measured here.
"""

from __future__ import annotations

import argparse
import math

GiB, TB = 1 << 30, 1e12

# ---- the archive (issue 16) ------------------------------------------------------------------
CATALOG_ROWS = 256e6        # catalog rows (tracks): issue 16
RECORDINGS = 186e6          # distinct ISRCs, audio stored once per recording: DESIGN.md
AUDIO_FILES = 86e6          # audio files to encode or keep: issue 16
SOURCE_BYTES = 300 * TB     # the sources: issue 16
TRACK_MINUTES = 3.8         # ASSUMED mean length of a file (bench_plan's log-normal median is ~3:50)

# ---- settings (soundark/config.py defaults) --------------------------------------------------
OPUS_KBIT = 75              # opus_bitrate
OGG_OVERHEAD = 1.01         # the plan's estimate: 1 % Ogg pages (docs/plan.md)
TARGET_SIZE = 100 * GiB     # target_size of one audio release
MAX_FILES = 50_000          # max_files of one audio release
PARITY = 0.05               # parity_overhead
PIECE = 16 << 20            # piece length above 16 GiB (soundark/release/torrent.py PIECE_TABLE)

# ---- measured ----------------------------------------------------------------------------------
# Encode, audio seconds per CPU second (one core), best of 3 rounds of bench_encode.py on its real
# corpus (drascula-music, 31 Ogg Vorbis files, 46.8 min, 44.1 kHz at ~112 kbit/s), full
# independent-decoder QA on, an idle 2-core machine (2026-12-02; docs/encode.md "Speed"):
# soundark 80.0, ffmpeg 83.5, libopus alone on decoded PCM 126.6 (ratio to ffmpeg 0.958 by CPU).
# Issue 16's first measurement, another corpus (41 files, 128 min): 204x / 248x / 322x realtime
# on 2 cores, i.e. 102 / 124 / 161 per core; the model takes the newer, slower figures.
ENCODE_X_PER_CORE = 80.0
FFMPEG_X_PER_CORE = 83.5
LIBOPUS_X_PER_CORE = 126.6
# Scan (SHA-256, full decode, acoustic signature, tags). Two measurements disagree by 5x:
# docs/scan.md, 24 synthetic 60 s files in six formats in 3.1 CPU-s (465x realtime per core);
# bench_signature.py --quick (2026-12-01): decode 26.7 + signature 14.9 CPU-s per audio hour
# (87x). The cluster is sized with the slower one until a scan of real files settles it.
SCAN_X_PER_CORE = 3600 / (26.7 + 14.9)
SCAN_X_PER_CORE_DOCS = 24 * 60 / 3.1
# Import into a fresh catalog: bench_scale at 50M rows, fourth run (issue 16, December 2026):
# 5,913 s, 8,456 rows/s on average (test runs shared the machine for part of it; the third run
# measured 7,223 rows/s), growing as rows^1.10 from 10M (docs/performance.md "Fourth run"); the
# time at 256M below is linear from that average, so a lower bound (~10 h by k).
# +1 % rows into the 50M-row catalog: 7,839 rows/s.
IMPORT_ROWS_S = 8_456
IMPORT_INCR_ROWS_S = 7_839
# Catalog bytes on disk per row: bench_scale at 50M rows, 18.81 GB (372 bytes a row), linear
# (k = 1.02 from 10M). None would print a placeholder.
CATALOG_BYTES_PER_ROW: float | None = 372.0
# Plan: selection (bench_plan.py --quick, 2026-12-01, load average ~10 on 2 cores) of 10M
# recordings in 13.9 s, 0.76 GB peak; end to end, bench_scale's first plan of the 50M-row catalog
# (36,716,890 recordings, read, select, write every plan row) in 268.6 s, fourth run; an unchanged
# re-plan of 7,344,103 recordings in 36.7 s (10M rows, beside the 50M import).
# DESIGN.md's floor for the selection at 256M: <= 2 min, <= 12 GB.
PLAN_SELECT_ROWS_S = 10e6 / 13.9
PLAN_FIRST_ROWS_S = 136_711
PLAN_AGAIN_ROWS_S = 200_385
PLAN_GB_256M = 12
# Verify: SHA-256 + v1 SHA-1 of every byte, per core, page cache warm (bench_verify.py: 3.5x
# coreutils sha256sum -c on 2 cores, sha256sum ~370 MB/s here: shared/DEPENDENCIES.md).
VERIFY_MB_S_PER_CORE = 3.5 * 370 / 2
# Seed: peak RSS of `soundark seed` with N releases (bench_many.py, this machine, 2026-12-01):
# 93 MB with 10 releases of 8 files, 95 MB with 100, 111 MB with 1,000 (18 KiB per release);
# 100 releases of 400 files: 53 KiB per release, so ~91 bytes per file beyond the first 8.
SEED_BASE_MB = 93
SEED_KIB_PER_RELEASE = 18
SEED_BYTES_PER_FILE = 91
SEED_OPEN_FILES = 64        # soundark/preserve/swarm.py: libtorrent's file pool, whatever N

# ---- assumptions for the cluster -------------------------------------------------------------
UTILISATION = 0.85          # ASSUMED share of a node's core-hours that encode (stragglers, restarts)


def audio_hours() -> float:
    return AUDIO_FILES * TRACK_MINUTES / 60


def store_bytes() -> float:
    """Every file as Opus 75k (an upper bound when the plan keeps small lossy originals)."""
    return AUDIO_FILES * TRACK_MINUTES * 60 * OPUS_KBIT * 1000 / 8 * OGG_OVERHEAD


def fmt_bytes(n: float) -> str:
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,.0f} B"


def fmt_h(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:,.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 60:,.0f} min"


def encode_table(node_cores: int) -> list[str]:
    hours = audio_hours()
    ours, ffmpeg, floor = hours / ENCODE_X_PER_CORE, hours / FFMPEG_X_PER_CORE, hours / LIBOPUS_X_PER_CORE
    scan = hours / SCAN_X_PER_CORE
    out = [f"Audio: {AUDIO_FILES / 1e6:.0f}M files x {TRACK_MINUTES} min = {hours / 1e6:.2f}M hours "
           f"({hours / 8766:,.0f} years).", "",
           "| work | x realtime per core | core-hours |", "|---|---|---|",
           f"| encode, soundark (full QA) | {ENCODE_X_PER_CORE:.0f} | {ours:,.0f} |",
           f"| encode, ffmpeg (no QA), for comparison | {FFMPEG_X_PER_CORE:.0f} | {ffmpeg:,.0f} |",
           f"| libopus alone on decoded PCM (the floor) | {LIBOPUS_X_PER_CORE:.0f} | {floor:,.0f} |",
           f"| scan (hash, decode, signature, tags), bench_signature | {SCAN_X_PER_CORE:.0f} | {scan:,.0f} |",
           f"| scan, docs/scan.md's synthetic files | {SCAN_X_PER_CORE_DOCS:.0f} | "
           f"{hours / SCAN_X_PER_CORE_DOCS:,.0f} |", "",
           f"Cluster at {UTILISATION:.0%} utilisation, nodes of {node_cores} cores: encode alone "
           f"({ours:,.0f} core-hours), and scan + encode ({ours + scan:,.0f}):", "",
           "| target | encode: cores | nodes | scan + encode: cores | nodes | sources read | store written |",
           "|---|---|---|---|---|---|---|"]
    for days in (7, 30, 90):
        enc, both = (ours / (days * 24 * UTILISATION), (ours + scan) / (days * 24 * UTILISATION))
        secs = days * 86400
        out.append(f"| {days} days | {enc:,.0f} | {math.ceil(enc / node_cores):,} | {both:,.0f} | "
                   f"{math.ceil(both / node_cores):,} | {2 * SOURCE_BYTES / secs / 1e6:,.0f} MB/s | "
                   f"{store_bytes() / secs / 1e6:,.0f} MB/s |")
    out += ["", "Sources are read twice (scan, then encode: the MB/s above are for both within the "
            "target); the store is written once."]
    return out


def releases() -> dict:
    store = store_bytes()
    n = max(math.ceil(store / TARGET_SIZE), math.ceil(AUDIO_FILES / MAX_FILES))
    return {"audio": n, "bytes": store / n, "files": AUDIO_FILES / n, "parity": n,
            "parity_bytes": store * PARITY / n, "pieces": store / n / PIECE}


def storage_table() -> list[str]:
    store, r = store_bytes(), releases()
    catalog = ("(see Catalog at scale)" if CATALOG_BYTES_PER_ROW is None
               else fmt_bytes(CATALOG_ROWS * CATALOG_BYTES_PER_ROW))
    torrent_file = r["pieces"] * 20 + r["files"] * 60  # SHA-1s + a file entry (~60 B bencoded)
    return ["| stage | reads | writes | keeps on disk | time |", "|---|---|---|---|---|",
            f"| import {CATALOG_ROWS / 1e6:.0f}M rows | dumps | catalog | catalog {catalog} | "
            f"{fmt_h(CATALOG_ROWS / IMPORT_ROWS_S)} fresh ({IMPORT_ROWS_S:,} rows/s), "
            f"{fmt_h(CATALOG_ROWS / IMPORT_INCR_ROWS_S)} incremental |",
            f"| scan | {fmt_bytes(SOURCE_BYTES)} | catalog rows | - | see the cluster table |",
            f"| plan {RECORDINGS / 1e6:.0f}M recordings | catalog | plan rows | - | selection "
            f"{fmt_h(RECORDINGS / PLAN_SELECT_ROWS_S * math.log(RECORDINGS) / math.log(10e6))} (n log n from 10M; "
            f"floor <= 2 min, <= {PLAN_GB_256M} GB); end to end {fmt_h(RECORDINGS / PLAN_FIRST_ROWS_S)} first, "
            f"{fmt_h(RECORDINGS / PLAN_AGAIN_ROWS_S)} re-plan |",
            f"| encode | {fmt_bytes(SOURCE_BYTES)} | {fmt_bytes(store)} | store {fmt_bytes(store)} | "
            "see the cluster table |",
            f"| release audio | {fmt_bytes(store)} (once: SHA-256 + SHA-1) | parity {fmt_bytes(store * PARITY)}, "
            f"{r['audio']:,} + {r['parity']:,} torrents | bags are hard links: 0 B more | "
            f"{store / (VERIFY_MB_S_PER_CORE * 1e6) / 3600:,.0f} core-hours of hashing; at 1 GB/s of disk "
            f"{fmt_h(store / 1e9)} |",
            f"| verify | {fmt_bytes(store * (1 + PARITY))} | - | - | see below |", "",
            f"Releases: {r['audio']:,} audio torrents of {fmt_bytes(r['bytes'])} and {r['files']:,.0f} files each "
            f"(both limits, {TARGET_SIZE // GiB} GiB and {MAX_FILES:,} files, bind about equally), "
            f"{r['pieces']:,.0f} pieces of {PIECE >> 20} MiB, a .torrent of ~{fmt_bytes(torrent_file)}; "
            f"as many parity releases of {fmt_bytes(r['parity_bytes'])}; plus the metadata and art releases."]


def seed_verify_table(disk_mb_s: float) -> list[str]:
    r, store = releases(), store_bytes() * (1 + PARITY)
    n = r["audio"] + r["parity"]
    ram = SEED_BASE_MB * 1e6 + n * SEED_KIB_PER_RELEASE * 1024 + AUDIO_FILES * SEED_BYTES_PER_FILE
    out = [f"Seeding everything ({n:,} releases, {AUDIO_FILES / 1e6:.0f}M files) from one session: "
           f"~{fmt_bytes(ram)} of RSS (not counting the payload pages libtorrent maps while serving, which "
           f"the kernel reclaims like page cache), {SEED_OPEN_FILES} open files. The first start checks every "
           "piece (as long as a verify, below); a restart with resume data reads no payload, only a stat "
           "of every file.", "",
           f"Verify a full mirror ({fmt_bytes(store)}):", "",
           "| disks | throughput | verify CPU cores needed | time |", "|---|---|---|---|"]
    for what, mb_s in (("one HDD", 200), ("a 12-disk array", 2000), ("given (--disk-mb-s)", disk_mb_s)):
        out.append(f"| {what} | {mb_s:,.0f} MB/s | {mb_s / VERIFY_MB_S_PER_CORE:.1f} | "
                   f"{fmt_h(store / (mb_s * 1e6))} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--node-cores", type=int, default=32, help="cores per cluster node")
    ap.add_argument("--disk-mb-s", type=float, default=1000, help="a mirror's read throughput")
    args = ap.parse_args()
    for block in (encode_table(args.node_cores), [""], storage_table(), [""],
                  seed_verify_table(args.disk_mb_s)):
        print("\n".join(block))


if __name__ == "__main__":
    main()
