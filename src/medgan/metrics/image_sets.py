"""FID (with KID and precision/recall on request) between two image sets on disk, as
``medgan fid`` computes it: each set a folder or file of PNG/DICOM/NIfTI images (read by
:func:`medgan.metrics.inputs.image_batches`) or a ``.npz`` of precomputed statistics
(``mu``, ``sigma``, as pytorch-fid writes them). Every image passes the extractor once; its
features feed every requested metric.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from medgan.errors import DataError, MedganError
from medgan.metrics.frechet import FeatureStats
from medgan.metrics.inputs import image_batches
from medgan.metrics.scores import FID, KID, PrecisionRecall


def fid_between(
    real: str | Path,
    generated: str | Path,
    extractor: nn.Module,
    *,
    kid: bool = False,
    precision_recall: bool = False,
    batch_size: int = 50,
    axis: str = "axial",
    save_real_stats: str | Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Scores of ``generated`` against ``real``.

    Args:
        real, generated: a folder of PNGs, DICOM series or NIfTI volumes, a single DICOM or
            NIfTI file (volumes are cut into 2D slices along ``axis``), or a ``.npz`` file
            of feature statistics computed with the same extractor.
        extractor: images ``(N, C, H, W)`` in [-1, 1] -> features ``(N, d)``
            (:func:`medgan.metrics.build_features`).
        kid: also the KID (:class:`~medgan.metrics.KID`); needs images on both sides.
        precision_recall: also precision and recall (k=3); needs images on both sides.
        batch_size: images per forward pass of the extractor.
        axis: "axial", "coronal" or "sagittal": how volumes are sliced.
        save_real_stats: write the statistics of ``real`` here (``.npz``; reuse them
            as ``real`` later); its path is returned as ``"saved_stats"``.
        progress: show a tqdm progress bar per image set.

    Returns:
        ``{"fid": float, ...KID/precision-recall entries, "n1": real count, "n2":
        generated count, "extractor", "weights_sha256", "published_weights"[,
        "saved_stats"]}``.

    Raises:
        DataError: a set with fewer than 2 images (the covariance is undefined), an
            unreadable path or statistics file.
        MedganError: KID or precision/recall asked for with a ``.npz`` side.
    """
    fid = FID(extractor, batch_size=batch_size)
    extra: list[KID | PrecisionRecall] = []
    if kid:
        extra.append(KID(extractor, batch_size=batch_size))
    if precision_recall:
        extra.append(PrecisionRecall(extractor, batch_size=batch_size))
    for path, is_real in ((Path(real), True), (Path(generated), False)):
        if path.suffix == ".npz":
            if extra:
                raise MedganError(f"{path}: KID/precision-recall need images, not .npz statistics")
            if is_real:
                fid.real = FeatureStats.load(path)
            else:
                fid.fake = FeatureStats.load(path)
            continue
        batches = list(image_batches(path, axis=axis))
        count = sum(len(b) for b in batches)
        if count < 2:
            raise DataError(
                f"{path}: {count} image(s); FID needs at least 2 images per side (its "
                "covariance is undefined for 1), and hundreds to thousands for a stable score"
            )
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc=path.name, unit="batch")
        for x in batches:
            feats = fid.features(x)
            fid.update_features(feats, real=is_real)
            for m in extra:
                m.update_features(feats, real=is_real)
    result: dict[str, Any] = {"fid": fid.compute()}
    for m in extra:
        result |= m.compute()
    result |= {"n1": fid.real.n, "n2": fid.fake.n, **fid.provenance()}
    if save_real_stats is not None:
        result["saved_stats"] = str(fid.real.save(save_real_stats))
    return result
