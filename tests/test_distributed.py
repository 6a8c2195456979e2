"""Data-parallel training under torchrun with the gloo backend, 2 CPU processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from medgan.callbacks import read_metric_log

WORKER = Path(__file__).parent / "helpers" / "dist_worker.py"


def test_torchrun_gloo_two_processes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(WORKER),
        str(tmp_path),
    ]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "result.json").read_text())
    assert res["world_size"] == 2
    assert res["max_abs_diff"] == 0.0  # identical weights on both ranks
    assert res["finite"]
    assert res["losses"][0] != res["losses"][1]  # each rank saw its own shard
    assert res["sampler_shard"] == 128
    assert res["stats_n"] == 110 and res["stats_diff"] < 1e-12  # FeatureStats.all_reduce
    # only rank 0 wrote: each step logged once, one set of checkpoints
    assert [r["step"] for r in read_metric_log(tmp_path / "metrics.csv")] == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "last.pt",
        "step_00000003.pt",
        "step_00000006.pt",
    ]
