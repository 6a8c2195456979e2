"""``classical_denoisers(outputs=...)`` keeps, per row, the stack that row's score was
measured on."""

import numpy as np
import pytest

from medgan.tasks.baselines import classical_denoisers, psnr_ssim


def test_classical_denoisers_keep_the_scored_outputs():
    pytest.importorskip("skimage")
    rng = np.random.default_rng(0)
    clean = np.zeros((2, 32, 32), np.float32)
    clean[:, 8:24, 8:24] = 100.0
    noisy = clean + rng.normal(0, 10, clean.shape).astype(np.float32)
    score = lambda a: psnr_ssim(a, clean, 200.0)  # noqa: E731
    kept: dict[str, np.ndarray] = {}
    rows = classical_denoisers(
        noisy,
        score,
        10.0,
        gaussian_sigmas=(0.5, 1.0),
        nlm_factors=(1.0,),
        bm3d_strengths=(1.0,),
        outputs=kept,
    )
    assert list(kept) == list(rows)
    for k, out in kept.items():
        assert out.shape == noisy.shape
        assert score(out) == pytest.approx(rows[k])
