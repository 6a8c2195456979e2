"""Every bundled example runs end to end (a few training steps), prints its table and writes
its figure: examples are documentation, and documentation that crashes is a bug."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "denoise_mri.py": (["--steps", "2"], "bias-corrected NLM", "denoise_mri.png"),
    "denoise_low_dose_ct.py": (["--steps", "2"], "clean-input check", "denoise_low_dose_ct.png"),
    "superres_mri.py": (["--steps", "2"], "clean-input check", "superres_mri.png"),
    "inpaint_mri.py": (["--steps", "2"], "biharmonic", "inpaint_mri.png"),
    "segment_brain.py": (["--steps", "2"], "adversarial", "segment_brain.png"),
    "synthesize_modality.py": (
        ["--steps", "2", "--cycle-steps", "2"],
        "CycleGAN (unpaired",
        "synthesize_modality.png",
    ),
    "generate_mri.py": (["--steps", "2"], "memorisation audit", "generate_mri.png"),
}


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs(script, tmp_path):
    args, expected, figure = CASES[script]
    env = dict(os.environ, OMP_NUM_THREADS="2")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert expected in proc.stdout
    assert (tmp_path / figure).stat().st_size > 1000
