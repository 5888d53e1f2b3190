"""The Ray executor on a REAL private Ray cluster (loopback only, no dashboard, no usage stats)."""

from __future__ import annotations

import os

import pytest

from soundark.config import Settings
from soundark.encode.stage import EncodeOptions, run_encode

from helpers.encode import make_sources, store_files

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'soundark[ray]')")


@pytest.fixture
def ray_cluster():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray's own imports
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_ray_executor_encodes_like_the_local_pool(archive, catalog, tmp_path, ray_cluster):
    ids = make_sources(catalog, tmp_path / "src", 3, seconds=0.5)
    result = run_encode(archive, Settings(), options=EncodeOptions(executor="ray"))
    assert result.executor.startswith("ray") and (result.encoded, result.failed) == (3, 0)
    assert ray_cluster.is_initialized()  # a cluster the caller started is left running
    rows = catalog.execute("SELECT recording_id, sha256 FROM encoded ORDER BY recording_id").fetchall()
    assert [r[0] for r in rows] == ids
    assert sorted(archive.store_path(r[1], ".opus") for r in rows) == store_files(archive.store)
