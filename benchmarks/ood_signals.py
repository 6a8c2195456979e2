"""Can the shipped domain encoder tell a user's real MR from things that are not MR? The
question behind `denoise()`'s out-of-distribution warning (issue #15), which warns on the
intensity-histogram distance (its figures are in the comment above
`medgan.tasks.denoising.HISTOGRAM_WARN`); this measures whether a domain-encoder distance
could separate the two groups.

For each image (scaled to [-1, 1] by its `PERCENTILE`-th percentile as `denoise` scales
its input, resized to 64x64): the distance of its
domain-encoder features to the nearest of 256 training images of the MR denoiser
(`mr_training_images`), for
* the training images themselves (leave-one-out nearest neighbour: the scale of "close"),
* the real MR of `medgan.tasks.heldout` (other scanners and subjects), clean and with
  Rician noise sigma 15,
* natural photographs and textures from scikit-image.

    python benchmarks/ood_signals.py
"""

from __future__ import annotations

import numpy as np
import skimage.data
import torch
import torch.nn.functional as F

from medgan.metrics import DomainEncoderFeatures
from medgan.tasks.denoising import PERCENTILE, mr_training_images
from medgan.tasks.heldout import add_noise, heldout_mr_images, scale_to_255

PHOTOS = (
    "camera",
    "coins",
    "text",
    "moon",
    "page",
    "astronaut",
    "brick",
    "grass",
    "gravel",
    "cell",
    "horse",
    "checkerboard",
)


def main() -> None:
    enc = DomainEncoderFeatures()

    def feat(im: np.ndarray) -> torch.Tensor:
        s = max(float(np.percentile(im, PERCENTILE)), 1e-6)
        x = torch.from_numpy(np.clip(im / s, 0, 1) * 2 - 1).float()[None, None]
        return enc(F.interpolate(x, size=(64, 64), mode="area"))[0]

    train = mr_training_images()
    idx = np.random.default_rng(0).choice(len(train), 256, replace=False)
    bank = torch.stack([feat(train[i]) for i in idx])
    d = torch.cdist(bank, bank)
    d.fill_diagonal_(float("inf"))
    nn1 = d.min(1).values
    print(
        f"training images, nearest other training image: median {nn1.median():.2f}, "
        f"95th percentile {nn1.quantile(0.95):.2f}, max {nn1.max():.2f}"
    )
    groups: dict[str, dict[str, np.ndarray]] = {}
    tune, report = heldout_mr_images()
    groups["real MR (held out)"] = {**tune, **report}
    groups["real MR + Rician 15"] = add_noise({**tune, **report}, 15)
    photos = {}
    for name in PHOTOS:
        im = getattr(skimage.data, name)().astype(np.float32)
        photos[name] = scale_to_255(im.mean(-1) if im.ndim == 3 else im)
    groups["photographs"] = photos
    for group, images in groups.items():
        dist = {k: float(torch.cdist(feat(v)[None], bank).min()) for k, v in images.items()}
        print(f"\n{group}: {min(dist.values()):.2f} - {max(dist.values()):.2f}")
        for k, v in dist.items():
            print(f"  {k:32s} {v:.2f}")


if __name__ == "__main__":
    main()
