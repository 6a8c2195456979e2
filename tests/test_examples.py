"""Every bundled example runs end to end (a few training steps), prints its result and writes
its figure or run folder: examples are documentation, and documentation that crashes is a
bug. The long ones are marked slow (`pytest -m slow tests/test_examples.py`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

OUT = "{out}"  # replaced by the test's temporary folder
# script: (arguments at tiny settings, a line the run prints, a file it writes or None)
CASES = {
    "custom_model.py": (
        ["--steps", "2", "--out", OUT],
        "UpsampleGenerator (4, 1, 32, 32)",
        "samples/samples_final.png",
    ),
    "denoise_low_dose_ct.py": (
        ["--steps", "2", "--out", OUT],
        "clean-input check (real slice, full dose in, blind sigma",
        "denoise_low_dose_ct.png",
    ),
    "denoise_mri.py": (
        ["--steps", "2", "--out", OUT, "--no-ensemble"],
        "bias-corrected NLM",
        "denoise_mri.png",
    ),
    "eight_gaussians.py": (["--steps", "2"], "modes covered", None),
    "generate_3d.py": (
        ["--cpu-minutes", "0.005", "--train", "16", "--held-out", "16", "--out", OUT],
        "2.5D domain FID",
        "generate_3d.png",
    ),
    "generate_mri.py": (["--steps", "2", "--out", OUT], "memorisation audit", "generate_mri.png"),
    "inpaint_mri.py": (["--steps", "2", "--out", OUT], "biharmonic", "inpaint_mri.png"),
    "segment_brain.py": (["--steps", "2", "--out", OUT], "adversarial", "segment_brain.png"),
    "superres_mri.py": (
        ["--steps", "2", "--out", OUT],
        "factor 1 from the geometry): output == input True, PSNR inf dB",
        "superres_mri.png",
    ),
    "superres_3d.py": (
        ["--steps", "2", "--steps-2d", "2", "--json", OUT + "/sr3d.json"],
        "tiling check (32-voxel cubes, overlap 16 vs whole volume)",
        "medgan-superres-3d/sr3d.pt",
    ),
    "synthesize_modality.py": (
        ["--steps", "2", "--cycle-steps", "2", "--out", OUT],
        "CycleGAN (unpaired",
        "synthesize_modality.png",
    ),
    "train_phantoms.py": (
        ["--steps", "2", "--size", "16", "--out", OUT],
        "outputs in",
        "samples/samples_final.png",
    ),
}
# Over 30 s on a 2-core machine even at 2 steps (held-out evaluation against tuned classical
# baselines): in `pytest -m slow`, which CI runs too.
SLOW = {"denoise_mri.py", "denoise_low_dose_ct.py", "superres_3d.py"}


def test_every_example_is_run():
    assert sorted(p.name for p in (ROOT / "examples").glob("*.py")) == sorted(CASES)


@pytest.mark.parametrize(
    "script", [pytest.param(s, marks=pytest.mark.slow) if s in SLOW else s for s in CASES]
)
def test_example_runs(script, tmp_path):
    args, expected, written = CASES[script]
    env = dict(os.environ, OMP_NUM_THREADS="2")
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / script),
            *(a.replace(OUT, str(tmp_path)) for a in args),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert expected in proc.stdout
    if written is not None:
        assert (tmp_path / written).stat().st_size > 1000
