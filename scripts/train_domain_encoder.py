"""Train the domain encoder shipped in src/medgan/metrics/weights/domain_encoder.pt.

Task: 16-way classification of (source, rotation): sources are MNI152 T1 axial, coronal and
sagittal slices and procedural CT phantoms; rotations 0/90/180/270 degrees. Light
augmentation (random crops, intensity scale/shift). About a minute on 2 CPU cores.

    python scripts/train_domain_encoder.py [--steps 1500]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from medgan.data import CTPhantomSlices, SliceDataset, embedded
from medgan.metrics.domain import DomainEncoder

OUT = Path(__file__).resolve().parents[1] / "src/medgan/metrics/weights/domain_encoder.pt"


def pools() -> list[torch.Tensor]:
    t1 = embedded("mni152_t1")
    out = [
        torch.stack([d[i] for i in range(len(d))])
        for d in (
            SliceDataset(t1, ax, min_foreground=0.1, size=72)
            for ax in ("axial", "coronal", "sagittal")
        )
    ]
    ct = CTPhantomSlices(n=512, size=72, seed=99)
    out.append(torch.stack([ct[i] for i in range(len(ct))]))
    return out


def batch(
    pools: list[torch.Tensor], n: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    src = torch.randint(0, len(pools), (n,), generator=g)
    rot = torch.randint(0, 4, (n,), generator=g)
    xs = []
    for s, r in zip(src.tolist(), rot.tolist(), strict=True):
        p = pools[s]
        img = p[torch.randint(0, len(p), (1,), generator=g).item()]
        i, j = torch.randint(0, 9, (2,), generator=g).tolist()
        img = img[:, i : i + 64, j : j + 64]
        scale = 1 + 0.2 * (torch.rand(1, generator=g).item() - 0.5)
        shift = 0.2 * (torch.rand(1, generator=g).item() - 0.5)
        xs.append((torch.rot90(img, r, dims=(1, 2)) * scale + shift).clamp(-1, 1))
    return torch.stack(xs), src * 4 + rot


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1500)
    args = ap.parse_args()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    data = pools()
    net = DomainEncoder()
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=args.steps)
    for step in range(args.steps):
        x, y = batch(data, 64, g)
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == args.steps - 1:
            acc = (net(x).argmax(1) == y).float().mean()
            print(f"step {step}: loss {loss.item():.3f}, batch accuracy {acc:.2f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() for k, v in net.state_dict().items()}, OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
