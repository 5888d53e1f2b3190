"""Measure the acoustic signature (soundark/media/fingerprint.py): distances and cost.

Synthesises N pieces of music (different melodies and timbres, with noise), encodes each in
several codecs and bitrates, and prints the distance distribution of

- same audio, different codec (FLAC vs MP3 128k/64k, Vorbis, Opus 64k/32k, AAC), and
- different music (every pair of pieces, both FLAC and across codecs),

then the signature's cost: seconds of CPU per hour of audio, on top of the decode.
Real files can be added with ``--real DIR``: every file in DIR is compared with every other
(pairs named ``X.*`` with the same stem count as same audio).

LAST line is one JSON object.

    python benchmarks/bench_signature.py --quick
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from soundark.media.fingerprint import SAME_AUDIO_MAX_DISTANCE, SignatureBuilder, distance
from soundark.media.synth import Voice, make_file

CODECS = (("flac", None), ("mp3", 128000), ("mp3", 64000), ("ogg", None), ("opus", 64000),
          ("opus", 32000), ("m4a", 96000))


def signature_of(path: Path) -> tuple[bytes, float, float]:
    """(signature, seconds decoding alone, seconds decoding + signature)."""
    start = time.perf_counter()
    with av.open(str(path)) as c:
        for _ in c.decode(audio=0):
            pass
    bare = time.perf_counter() - start
    start = time.perf_counter()
    builder = SignatureBuilder()
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            builder.add_frame(frame)
    sig = builder.finish()
    return sig, bare, time.perf_counter() - start


def voice(n: int) -> Voice:
    rng = np.random.default_rng(1000 + n)
    notes = tuple(int(x) for x in rng.integers(48, 76, size=8))
    return Voice(notes=notes, note_seconds=float(rng.uniform(0.2, 0.5)),
                 harmonics=tuple(float(x) for x in rng.uniform(0.1, 1.0, size=3)),
                 noise=0.03, seed=n)


def summary(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"n": int(a.size), "min": round(float(a.min()), 3), "median": round(float(np.median(a)), 3),
            "p95": round(float(np.percentile(a, 95)), 3), "max": round(float(a.max()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 pieces x 10 s instead of 8 x 30 s")
    parser.add_argument("--real", type=Path, help="a folder of real files to compare as well")
    args = parser.parse_args()
    pieces, seconds = (4, 10.0) if args.quick else (8, 30.0)
    same: list[float] = []
    diff: list[float] = []
    bare = total = audio = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        sigs: dict[tuple[int, str], bytes] = {}
        for n in range(pieces):
            for fmt, rate in CODECS:
                name = f"{fmt}{rate or ''}"
                path = make_file(Path(tmp) / f"p{n}_{name}", fmt, seconds, voice=voice(n), bitrate=rate)
                sig, b, t = signature_of(path)
                sigs[(n, name)] = sig
                bare, total, audio = bare + b, total + t, audio + seconds
        for (n1, f1), (n2, f2) in itertools.combinations(sorted(sigs), 2):
            d = distance(sigs[(n1, f1)], sigs[(n2, f2)])
            assert d is not None
            (same if n1 == n2 else diff).append(d)
    if args.real:
        real = {p: signature_of(p)[0] for p in sorted(args.real.iterdir()) if p.is_file()}
        for p, q in itertools.combinations(sorted(real), 2):
            d = distance(real[p], real[q])
            if d is not None:
                (same if p.stem == q.stem else diff).append(d)
    per_hour = (total - bare) / audio * 3600
    result = {"benchmark": "signature", "same_audio": summary(same), "different_music": summary(diff),
              "threshold": SAME_AUDIO_MAX_DISTANCE, "signature_cpu_s_per_audio_hour": round(per_hour, 1),
              "decode_cpu_s_per_audio_hour": round(bare / audio * 3600, 1)}
    print(f"same audio, other codec: {result['same_audio']}")
    print(f"different music:         {result['different_music']}")
    print(f"signature cost: {per_hour:.1f} s per audio hour (decode alone {bare / audio * 3600:.1f} s)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
