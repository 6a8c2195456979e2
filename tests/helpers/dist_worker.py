"""Run under torchrun (2 processes, gloo): train a few steps, then check every rank holds
the same weights. Rank 0 writes result.json; all files come from rank 0 only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

import medgan
from medgan.data import EightGaussians

out = Path(sys.argv[1])
medgan.seed_everything(1234 + int(__import__("os").environ["RANK"]))  # different init per rank
g = medgan.models.build("mlp_generator", hidden=32)
d = medgan.models.build("mlp_discriminator", hidden=32)
cfg = medgan.TrainConfig(steps=6, batch_size=16, device="cpu")
cbs = medgan.callbacks.standard_callbacks(out, checkpoint_every=3, sample_every=3, log_every=1)
tr = medgan.Trainer(
    g,
    d,
    EightGaussians(n=256),
    loss=medgan.losses.NonSaturating(r1_weight=0.1),
    config=cfg,
    callbacks=cbs,
).fit()

flat = torch.cat(
    [
        p.detach().reshape(-1)
        for net in (tr.generator, tr.discriminator, tr.ema)
        for p in net.parameters()
    ]
)
gathered = [torch.zeros_like(flat) for _ in range(tr.dist.world_size)]
dist.all_gather(gathered, flat)
losses = torch.tensor([float(tr.train_step()["d_loss"])])  # one more step: losses per rank
all_losses = [torch.zeros(1) for _ in range(tr.dist.world_size)]
dist.all_gather(all_losses, losses)
# feature statistics merged across ranks equal those of all features in one process
from medgan.metrics.frechet import FeatureStats  # noqa: E402


def rank_features(r: int) -> torch.Tensor:
    return torch.randn(50 + 10 * r, 6, generator=torch.Generator().manual_seed(r))


stats = FeatureStats()
stats.update(rank_features(tr.dist.rank))
stats.all_reduce()
ref = FeatureStats()
ref.update(torch.cat([rank_features(r) for r in range(tr.dist.world_size)]))
stats_diff = float(abs(stats.sigma - ref.sigma).max() + abs(stats.mu - ref.mu).max())
if tr.is_main:
    (out / "result.json").write_text(
        json.dumps(
            {
                "stats_n": stats.n,
                "stats_diff": stats_diff,
                "world_size": tr.dist.world_size,
                "max_abs_diff": max(float((x - gathered[0]).abs().max()) for x in gathered),
                "finite": bool(torch.isfinite(flat).all()),
                "losses": [float(x) for x in all_losses],
                "sampler_shard": tr.sampler.per_rank(),
            }
        )
    )
dist.barrier()
dist.destroy_process_group()
