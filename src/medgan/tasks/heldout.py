"""Real MR images from other scanners and subjects, for judging an MR denoiser on data it
never saw, and the evaluation that compares it with its input and the classical baselines.

The images are the MR files inside the installed wheels (none is the MNI152 template the
embedded training data come from), each scaled to 0-255 by its 99.5th percentile:

- tune set (choose the baselines' parameters here, never on the report set): pydicom-data
  ``emri_small.dcm`` (head, frames 2, 5, 8) and nibabel ``anatomical.nii`` (brain, axial
  10 and 15).
- report set: pydicom ``MR_small.dcm`` (Toshiba head, 64^2), pydicom-data
  ``MR-SIEMENS-DICOM-WithOverlays.dcm`` (Siemens abdomen, 484^2), ``MR2_UNCR.dcm`` (Philips
  shoulder, 1024^2) and nibabel ``example4d.nii.gz`` (EPI brain, axial 8, 12, 16).

pydicom-data comes with the test extras (``pip install -e '.[test]'``).
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from medgan.data.io import load
from medgan.data.volume import Volume
from medgan.errors import DataError
from medgan.tasks.baselines import bm4d_rician, dipy_nlmeans, nlm_rician, psnr_ssim
from medgan.tasks.degradations import rician_noise

H_FACTORS = (0.4, 0.6, 0.8, 1.0, 1.2, 1.5)
#: BM4D strengths (x sigma) tried on the tune set
BM4D_STRENGTHS = (0.8, 1.0, 1.25)


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise DataError(f"{package} is not installed: pip install -e '.[test]'")
    return Path(spec.origin).parent


def scale_to_255(a: np.ndarray) -> np.ndarray:
    """The image ``a`` shifted so its minimum is >= 0, then scaled so its 99.5th percentile
    is 255 (float32); DataError for a blank image."""
    a = np.asarray(a, np.float32)
    a = a - min(0.0, float(a.min()))
    top = float(np.percentile(a, 99.5))
    if top <= 0:
        raise DataError("the image is blank: its 99.5th percentile is 0")
    return (a / top * 255.0).astype(np.float32)


def heldout_mr_images() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(tune, report)``: name -> clean 2D image ``(H, W)`` in 0..255 units."""
    import pydicom

    pyd = _package_dir("pydicom") / "data" / "test_files"
    store = _package_dir("pydicom").parent / "data_store" / "data"  # pydicom-data's files
    nib = _package_dir("nibabel") / "tests" / "data"
    if not (store / "emri_small.dcm").exists():
        raise DataError(f"pydicom-data's files are missing from {store}: pip install pydicom-data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emri = pydicom.dcmread(store / "emri_small.dcm").pixel_array.astype(np.float32)
        anat = load(nib / "anatomical.nii").array
        epi = load(nib / "example4d.nii.gz").array[0]
        tune = {f"emri_small[{k}]": scale_to_255(emri[k]) for k in (2, 5, 8)}
        tune |= {f"anatomical z={k}": scale_to_255(anat[:, :, k]) for k in (10, 15)}
        report = {
            "MR_small (Toshiba head)": scale_to_255(load(pyd / "MR_small.dcm").array[0]),
            "Siemens abdomen": scale_to_255(
                load(store / "MR-SIEMENS-DICOM-WithOverlays.dcm").array[0]
            ),
            "MR2 (Philips shoulder)": scale_to_255(load(store / "MR2_UNCR.dcm").array[0]),
        }
        report |= {f"example4d EPI z={k}": scale_to_255(epi[:, :, k]) for k in (8, 12, 16)}
    return tune, report


def add_noise(images: dict[str, np.ndarray], sigma: float, seed: int = 15) -> dict[str, np.ndarray]:
    """Rician noise of ``sigma`` (in the images' units, 0..255 here) on every image of
    ``images`` (name -> ``(H, W)``), a fixed generator per (``seed``, position in the
    dict)."""
    return {
        k: rician_noise(v, np.random.default_rng([seed, i]), sigma)
        for i, (k, v) in enumerate(images.items())
    }


def _score(out: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    return psnr_ssim(out[None], clean[None], 255.0)


Method = Callable[[np.ndarray, float, float], np.ndarray]


def baselines(
    with_dipy: bool = True, with_bm4d: bool = True
) -> dict[str, tuple[Method, tuple[float, ...]]]:
    """The classical MR denoisers ``(stack, h_factor, sigma) -> stack`` with the filter
    strengths to try: bias-corrected NLM over ``H_FACTORS``; dipy's Rician nlmeans (when
    installed) at the true sigma only (its strength and bias correction are one value);
    bias-corrected BM4D (when installed) over ``BM4D_STRENGTHS``. ``with_dipy`` and
    ``with_bm4d`` False leave those two out even when installed."""
    methods: dict[str, tuple[Method, tuple[float, ...]]] = {
        "bias-corrected NLM": (nlm_rician, H_FACTORS)
    }
    if with_dipy and importlib.util.find_spec("dipy") is not None:
        methods["dipy nlmeans"] = (lambda stack, h, sigma: dipy_nlmeans(stack, sigma), (1.0,))
    if with_bm4d and importlib.util.find_spec("bm4d") is not None:
        methods["bias-corrected BM4D"] = (bm4d_rician, BM4D_STRENGTHS)
    return methods


def best_h(
    method: Method,
    grid: tuple[float, ...],
    clean: dict[str, np.ndarray],
    noisy: dict[str, np.ndarray],
    sigma: float,
) -> float:
    """The filter strength in ``grid`` with the best mean PSNR of ``method`` (``(stack,
    h, sigma) -> stack``) on the ``noisy`` images against the ``clean`` ones (same names,
    0..255 units), at the noise level ``sigma``; a one-value grid is returned unscored."""
    if len(grid) == 1:
        return grid[0]
    means = {
        h: float(
            np.mean([_score(method(noisy[k][None], h, sigma)[0], c)[0] for k, c in clean.items()])
        )
        for h in grid
    }
    return max(means, key=means.__getitem__)


def evaluate_denoiser(
    model: Any,
    sigma: float = 15.0,
    with_dipy: bool = True,
    images: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None,
    with_bm4d: bool = True,
    ensemble: bool = True,
) -> dict[str, Any]:
    """Per-image ``(PSNR dB, SSIM)`` on the report set for the noisy input, ``model``
    through :func:`~medgan.tasks.denoising.denoise` and each baseline at its tune-set
    parameter; plus the clean-input check (PSNR of the model's output against its clean
    input, blind noise estimate; ``clean_change_psnr_db`` for the plain model and, when the
    ensemble runs, ``clean_change_psnr_db_x8`` for it) and the blind noise estimates. The model's
    columns: "GAN" (blind noise estimate), and with ``ensemble``
    "GAN x8" (its 8-fold geometric self-ensemble, blind) and "GAN x8, sigma given" (told
    the true ``sigma``, as the baselines are).

    Args:
        model: a trained :class:`~medgan.models.denoiser.NoiseLevelDenoiser`.
        sigma: the Rician noise sigma added to every image, in 0..255 units.
        with_dipy: include dipy's nlmeans (when installed).
        images: the ``(tune, report)`` sets when already loaded (default
            :func:`heldout_mr_images`).
        with_bm4d: include bias-corrected BM4D (when installed).
        ensemble: also score ``denoise(..., ensemble=True)``, blind and told ``sigma``.

    Returns:
        ``{"sigma", "rows", "mean", "baseline_h", "clean_change_psnr_db",
        "clean_change_psnr_db_x8" (empty without the ensemble), "sigma_estimate",
        "tune"}``, the input of :func:`format_table`.
    """
    return evaluate_denoisers([model], sigma, with_dipy, images, with_bm4d, ensemble)[0]


def evaluate_denoisers(
    models: list[Any],
    sigma: float = 15.0,
    with_dipy: bool = True,
    images: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None,
    with_bm4d: bool = True,
    ensemble: bool = True,
) -> list[dict[str, Any]]:
    """:func:`evaluate_denoiser` for each of ``models`` (say, one per training seed), the
    baselines tuned and scored once for all; one result per model, in order. ``sigma``,
    ``with_dipy``, ``images``, ``with_bm4d`` and ``ensemble`` as in
    :func:`evaluate_denoiser`."""
    from medgan.tasks.denoising import denoise

    tune, report = images if images is not None else heldout_mr_images()
    n_tune, n_report = add_noise(tune, sigma), add_noise(report, sigma)
    methods = baselines(with_dipy, with_bm4d)
    h = {name: best_h(m, grid, tune, n_tune, sigma) for name, (m, grid) in methods.items()}
    base = {
        k: {
            f"{name} (h={h[name]}s)": _score(m(n_report[k][None], h[name], sigma)[0], clean)
            for name, (m, _) in methods.items()
        }
        for k, clean in report.items()
    }
    results = []
    for model in models:
        rows: dict[str, dict[str, tuple[float, float]]] = {}
        clean_change, clean_change_x8, sigma_hat = {}, {}, {}
        for k, clean in report.items():
            noisy = Volume(n_report[k][None], np.eye(4), {"sources": [k]})
            out = denoise(noisy, model)
            sigma_hat[k] = out.meta["denoise"]["noise_sigma"]
            r = {"noisy input": _score(n_report[k], clean), "GAN": _score(out.array[0], clean)}
            if ensemble:  # the blind estimate made above, not made again
                x8 = denoise(noisy, model, sigma_hat[k], ensemble=True)
                r["GAN x8"] = _score(x8.array[0], clean)
                told = denoise(noisy, model, sigma, ensemble=True)
                r["GAN x8, sigma given"] = _score(told.array[0], clean)
            rows[k] = r | base[k]
            same = Volume(clean[None], np.eye(4), {"sources": [k]})
            plain = denoise(same, model).meta["denoise"]
            clean_change[k] = plain["change_psnr_db"]
            if ensemble:  # blind, with the estimate just made
                x8 = denoise(same, model, plain["noise_sigma"], ensemble=True)
                clean_change_x8[k] = x8.meta["denoise"]["change_psnr_db"]
        cols = list(next(iter(rows.values())))
        mean = {
            c: tuple(float(np.mean([r[c][i] for r in rows.values()])) for i in (0, 1)) for c in cols
        }
        results.append(
            {
                "sigma": sigma,
                "rows": rows,
                "mean": mean,
                "baseline_h": h,
                "clean_change_psnr_db": clean_change,
                "clean_change_psnr_db_x8": clean_change_x8,
                "sigma_estimate": sigma_hat,
                "tune": list(tune),
            }
        )
    return results


def format_table(result: dict[str, Any]) -> str:
    """The evaluation ``result`` (:func:`evaluate_denoiser`'s) as a fixed-width text table
    with a summary line."""
    rows, mean = result["rows"], result["mean"]
    cols = list(mean)
    lines = [
        f"held-out real MR (report set), Rician sigma={result['sigma']} of 255; PSNR dB / SSIM; "
        f"baselines' h chosen on the tune set",
        f"{'image':26s}" + "".join(f"{c[:28]:>30s}" for c in cols) + f"{'sigma est':>10s}",
    ]
    for k, r in rows.items():
        cells = "".join(f"{r[c][0]:>22.2f} / {r[c][1]:.3f}" for c in cols)
        lines.append(f"{k[:26]:26s}{cells}{result['sigma_estimate'][k]:>10.2f}")
    lines.append(f"{'mean':26s}" + "".join(f"{mean[c][0]:>22.2f} / {mean[c][1]:.3f}" for c in cols))
    gans = [c for c in cols if c.startswith("GAN")]
    base = [c for c in cols if c != "noisy input" and c not in gans]
    best = max(base, key=lambda c: mean[c][0])
    for g in gans:
        wins = sum(r[g][0] > r["noisy input"][0] for r in rows.values())
        lines.append(
            f"{g} better than its input on {wins}/{len(rows)} images; mean {g} "
            f"{mean[g][0]:.2f} dB vs best baseline {best} {mean[best][0]:.2f} dB"
        )
    for label, key in (("GAN", "clean_change_psnr_db"), ("GAN x8", "clean_change_psnr_db_x8")):
        cc = result.get(key) or {}
        if cc:
            lines.append(
                f"clean-input check, {label} (PSNR of output vs clean input, dB): "
                + ", ".join(f"{k}: {v:.1f}" for k, v in cc.items())
                + f"; min {min(cc.values()):.1f}"
            )
    return "\n".join(lines)


def format_seeds(results: list[dict[str, Any]]) -> str:
    """Several :func:`evaluate_denoisers` ``results`` (one per training seed) as one table:
    per column, the mean PSNR and SSIM over the report set as mean ± sd (sample sd,
    ddof 1) over the seeds;
    for the model's columns also the images it improved on and the worst clean-input
    check (dB)."""
    cols = list(results[0]["mean"])
    lines = [
        f"over {len(results)} models (seeds): mean over the report set, mean ± sd over seeds",
        f"{'column':34s}{'PSNR dB':>16s}{'SSIM':>16s}{'better than input':>20s}",
    ]
    for c in cols:
        p = np.array([r["mean"][c][0] for r in results])
        q = np.array([r["mean"][c][1] for r in results])
        sd_p, sd_q = (float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for v in (p, q))
        line = f"{c[:34]:34s}{p.mean():>9.2f} ± {sd_p:.2f}{q.mean():>9.3f} ± {sd_q:.3f}"
        if c.startswith("GAN"):
            wins = [sum(v[c][0] > v["noisy input"][0] for v in r["rows"].values()) for r in results]
            line += f"{'/'.join(map(str, wins)):>14s} of {len(results[0]['rows'])}"
        lines.append(line)
    for label, key in (("GAN", "clean_change_psnr_db"), ("GAN x8", "clean_change_psnr_db_x8")):
        if results[0].get(key):
            worst = [min(r[key].values()) for r in results]
            lines.append(
                f"worst clean-input check per seed, {label} (dB): "
                + ", ".join(f"{w:.1f}" for w in worst)
            )
    return "\n".join(lines)
