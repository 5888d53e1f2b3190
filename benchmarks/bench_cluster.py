"""Encode on a Ray cluster vs the local pool, on this machine (docs/cluster.md).

A loopback Ray cluster of ``--nodes`` nodes with one CPU each (``ray.cluster_utils.Cluster``,
no dashboard, no usage stats) against the local process pool with as many workers; the same
archive (generated FLAC, scanned and planned with the CLI) encoded three ways with
``python -m soundark encode``: local pool, Ray with shared storage, Ray with shipped bytes.
All three stores are checked to be byte-identical. On one machine the cluster's cost is
Ray's overhead (task dispatch, object store copies), not the network's.

    python benchmarks/bench_cluster.py [--files 24] [--seconds 20] [--nodes 2]

Ends with one JSON line: files/s and audio-h/s per side, and each Ray side's ratio to local.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep 127.0.0.1 on loopback


def cli(*args: str) -> dict:
    run = subprocess.run([sys.executable, "-m", "soundark", *args, "--json"], capture_output=True,
                         text=True, timeout=3600)
    if run.returncode != 0:
        raise SystemExit(f"soundark {' '.join(args)} failed: {run.stderr[-2000:]}")
    return json.loads(run.stdout)


def prepare(root: Path, files: int, seconds: float) -> Path:
    from soundark.media import synth

    src = root / "sources"
    src.mkdir()
    for i in range(files):
        voice = synth.Voice(notes=tuple(48 + (i * 7 + k) % 30 for k in range(8)), seed=i, noise=0.02)
        synth.make_file(src / f"t{i:03d}", "flac", seconds, voice=voice)
    archive = root / "prepared"
    cli("init", str(archive))
    cli("scan", "-a", str(archive), str(src), "--rights", "owned")
    cli("plan", "-a", str(archive))
    return archive


def side(prepared: Path, name: str, *args: str, settings: str = "") -> tuple[dict, dict[str, bytes]]:
    archive = prepared.with_name(name)
    shutil.copytree(prepared, archive)
    if settings:  # soundark.toml names every setting: replace the line
        toml = archive / "soundark.toml"
        key = settings.split("=")[0].strip()
        lines = [settings.rstrip("\n") if line.split("=")[0].strip() == key else line
                 for line in toml.read_text(encoding="utf-8").splitlines()]
        toml.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = cli("encode", "-a", str(archive), *args)
    store = {str(p.relative_to(archive)): p.read_bytes() for p in (archive / "store").rglob("*")
             if p.is_file()}
    print(f"{name:7} {summary['files_per_second']:.2f} files/s, "
          f"{summary['audio_hours_per_second'] * 3600:.1f}x realtime, {summary['executor']}")
    return summary, store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--nodes", type=int, default=2)
    args = ap.parse_args()
    from ray.cluster_utils import Cluster

    with tempfile.TemporaryDirectory() as d:
        prepared = prepare(Path(d), args.files, args.seconds)
        local, local_store = side(prepared, "local", "--executor", "local", "-j", str(args.nodes))
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"})
        try:
            for _ in range(args.nodes - 1):
                cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
            cluster.wait_for_nodes()
            ray_args = ("--executor", "ray", "--address", cluster.address)
            shared, shared_store = side(prepared, "shared", *ray_args,
                                        settings='ray_storage = "shared"\n')
            ship, ship_store = side(prepared, "ship", *ray_args, settings='ray_storage = "ship"\n')
        finally:
            cluster.shutdown()
    assert shared_store == local_store == ship_store, "stores differ"
    rates = {k: s["files_per_second"] for k, s in (("local", local), ("shared", shared), ("ship", ship))}
    print(json.dumps({"files": args.files, "seconds_each": args.seconds, "nodes": args.nodes,
                      "files_per_second": rates, "identical_stores": True,
                      "shared_vs_local": round(rates["shared"] / rates["local"], 3),
                      "ship_vs_local": round(rates["ship"] / rates["local"], 3)}))


if __name__ == "__main__":
    main()
