"""Quality per compute: the recipe vs a plain DCGAN loop vs medgan's previous default, at
equal process-CPU seconds, scored on held-out real images.

Sides (same data, same seeds):
  plain     the PyTorch DCGAN tutorial written by hand (Radford et al. 2016: ngf = ndf = 64,
            nz = 100, BatchNorm, N(0, 0.02) init, BCE, Adam 2e-4 / (0.5, 0.999), batch 64)
  previous  medgan's previous default: dcgan_generator/dcgan_discriminator with their
            default kwargs, non-saturating loss, TrainConfig defaults (batch 64, EMA)
  recipe    medgan.recipes.unconditional(train, 64, seed=seed)

Budgets are process-CPU seconds (getrusage: user + system of this process, all threads).
The sides run interleaved in chunks of ``--chunk`` CPU-seconds, so machine noise hits all of
them alike; when a side passes a budget its generator (EMA where it has one) draws as many
images as the held-out set has, outside the measured time. The recipe is also sampled at a
third of every budget. Scores against the held-out images: FID on the shipped domain
encoder, sliced Wasserstein distance on Laplacian-pyramid patches (x1e3), precision and
coverage (k = 3 / 5). Mean +- sd over seeds.

Data (``--data``):
  mri  embedded MNI152 T1, 64x64 slices of all three orientations; even slice indices
       train, odd slices are held out
  ct   procedural CT phantoms (lung window): seed 0 trains, seed 1 is held out
  epi  a second real modality: echo-planar brain MR (BOLD, T2, diffusion-weighted) from the
       test files of nibabel and dipy (``pip install -e '.[bench]'``), axial 64x64 slices;
       even slices train, odd slices are held out

    python benchmarks/time_to_quality.py --data mri [--budgets 2,5,10] [--seeds 0,1,2] \
        [--threads 1 --jobs 3]

Prints the table and the targets (recipe FID <= 0.5x and SWD <= 0.7x plain at every budget,
coverage >= 0.8, recipe at 1/3 budget no worse than plain at the full budget) and writes
``--out``/time_to_quality_<data>.json and a real | generated figure per side.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import medgan
from medgan.images import save_side_by_side
from medgan.metrics import FID, DensityCoverage, DomainEncoderFeatures, PrecisionRecall
from medgan.metrics.swd import sliced_wasserstein
from medgan.utils import process_cpu_seconds

# --------------------------------------------------------------------------- data


def mri(parity: int) -> torch.Tensor:
    from medgan.data.embedded import mni152_slices

    views = [mni152_slices(size=64, axis=a) for a in ("axial", "coronal", "sagittal")]
    return torch.stack([v[i] for v in views for i in range(parity, len(v), 2)])


def ct(seed: int, n: int = 512) -> torch.Tensor:
    from medgan.data import CTPhantomSlices

    data = CTPhantomSlices(n=n, size=64, seed=seed)
    return torch.stack([data[i] for i in range(n)])


#: a second real modality: T2*/T2/diffusion-weighted echo-planar brain MR from the test files
#: that ship inside nibabel and dipy (4 acquisitions, none of them the MNI template)
EPI_FILES = (
    ("nibabel", "tests/data/example4d.nii.gz"),  # BOLD EPI, 2 time points
    ("dipy", "data/files/aniso_vox.nii.gz"),
    ("dipy", "data/files/S0_10slices.nii.gz"),  # b = 0
    ("dipy", "data/files/test_piesno.nii.gz"),  # diffusion-weighted
)


def epi(parity: int) -> torch.Tensor:
    """64x64 axial slices of every volume (and time point) of :data:`EPI_FILES` with at least
    15 % foreground, each volume windowed on its own 0.5-99.5th percentiles; even slice
    indices of each volume when ``parity`` is 0, odd ones when 1."""
    import importlib

    from medgan.data import SliceDataset, load_nifti
    from medgan.data.volume import Volume

    out = []
    for package, rel in EPI_FILES:
        root = Path(importlib.import_module(package).__file__).parent
        vol = load_nifti(root / rel)
        channels = vol.array if vol.array.ndim == 4 else vol.array[None]
        for channel in channels:
            slices = SliceDataset(
                Volume(channel, vol.affine), "axial", min_foreground=0.15, size=64
            )
            out += [slices[i] for i in range(parity, len(slices), 2)]
    return torch.stack(out)


def load(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if name == "mri":
        return mri(0), mri(1)
    if name == "ct":
        return ct(0), ct(1, 256)
    if name == "epi":
        return epi(0), epi(1)
    raise SystemExit(f"unknown --data {name!r}; use mri, ct or epi")


# --------------------------------------------------------------------------- sides


class Plain:
    """The PyTorch DCGAN tutorial, written out by hand (1 channel, 64x64)."""

    name = "plain"

    def __init__(self, train: torch.Tensor, seed: int) -> None:
        torch.manual_seed(seed)
        nz, ngf, ndf = 100, 64, 64

        def up(i: int, o: int, s: int, p: int) -> list[nn.Module]:
            return [nn.ConvTranspose2d(i, o, 4, s, p, bias=False), nn.BatchNorm2d(o), nn.ReLU(True)]

        def down(i: int, o: int, bn: bool = True) -> list[nn.Module]:
            return [
                nn.Conv2d(i, o, 4, 2, 1, bias=False),
                *([nn.BatchNorm2d(o)] if bn else []),
                nn.LeakyReLU(0.2, True),
            ]

        self.g = nn.Sequential(
            *up(nz, ngf * 8, 1, 0),
            *up(ngf * 8, ngf * 4, 2, 1),
            *up(ngf * 4, ngf * 2, 2, 1),
            *up(ngf * 2, ngf, 2, 1),
            nn.ConvTranspose2d(ngf, 1, 4, 2, 1, bias=False),
            nn.Tanh(),
        )
        self.d = nn.Sequential(
            *down(1, ndf, bn=False),
            *down(ndf, ndf * 2),
            *down(ndf * 2, ndf * 4),
            *down(ndf * 4, ndf * 8),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Flatten(),
        )
        for m in [*self.g.modules(), *self.d.modules()]:
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
        self.opt_g = torch.optim.Adam(self.g.parameters(), 2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), 2e-4, betas=(0.5, 0.999))
        # batch 64, or the whole set when it is smaller (the EPI set has 47 images)
        batch = min(64, len(train))
        self.loader = torch.utils.data.DataLoader(train, batch, shuffle=True, drop_last=True)
        self.it = iter(self.loader)
        self.nz = nz

    def step(self) -> None:
        try:
            real = next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            real = next(self.it)
        b = real.shape[0]
        fake = self.g(torch.randn(b, self.nz, 1, 1))
        ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)
        self.opt_d.zero_grad()
        loss_d = F.binary_cross_entropy_with_logits(
            self.d(real), ones
        ) + F.binary_cross_entropy_with_logits(self.d(fake.detach()), zeros)
        loss_d.backward()
        self.opt_d.step()
        self.opt_g.zero_grad()
        F.binary_cross_entropy_with_logits(self.d(fake), ones).backward()
        self.opt_g.step()

    @torch.no_grad()
    def sample(self, n: int, seed: int) -> torch.Tensor:
        z = torch.randn(n, self.nz, 1, 1, generator=torch.Generator().manual_seed(seed))
        self.g.eval()
        x = self.g(z)
        self.g.train()
        return x


class WithTrainer:
    """A medgan Trainer stepped one generator update at a time."""

    def __init__(self, name: str, trainer: medgan.Trainer) -> None:
        self.name, self.trainer = name, trainer

    def step(self) -> None:
        self.trainer.fit(self.trainer.step + 1)

    @torch.no_grad()
    def sample(self, n: int, seed: int) -> torch.Tensor:
        t = self.trainer
        net = t.ema if t.ema is not None else t.generator
        net.eval()
        z = t.sample_noise(n, torch.Generator(t.device).manual_seed(seed))
        return net(z).float().cpu()


def previous(train: torch.Tensor, seed: int) -> WithTrainer:
    medgan.seed_everything(seed)
    g = medgan.models.build("dcgan_generator", image_size=64)
    d = medgan.models.build("dcgan_discriminator", image_size=64)
    batch = min(64, len(train))  # the default batch, or the whole set when smaller
    config = medgan.TrainConfig(steps=10**9, seed=seed, device="cpu", batch_size=batch)
    return WithTrainer("previous", medgan.Trainer(g, d, train, config=config))


def recipe(train: torch.Tensor, seed: int) -> WithTrainer:
    trainer = medgan.recipes.unconditional(train, 64, seed=seed, steps=10**9, device="cpu")
    return WithTrainer("recipe", trainer)


SIDES = {"plain": Plain, "previous": previous, "recipe": recipe}


def _variant(name: str, overrides: dict):
    def make(train: torch.Tensor, seed: int) -> WithTrainer:
        trainer = medgan.recipes.unconditional(
            train, 64, seed=seed, steps=10**9, **{"device": "cpu", **overrides}
        )
        return WithTrainer(name, trainer)

    return make


# --------------------------------------------------------------------------- scoring


def score(fake: torch.Tensor, held_out: torch.Tensor, enc: nn.Module) -> dict[str, float]:
    out: dict[str, float] = {}
    fid = FID(enc)
    fid.update(held_out, real=True)
    fid.update(fake, real=False)
    out["fid"] = fid.compute()
    out["swd"] = sliced_wasserstein(held_out, fake)["swd"]
    for metric, keys in (
        (PrecisionRecall(enc), ("precision",)),
        (DensityCoverage(enc), ("coverage",)),
    ):
        metric.update(held_out, real=True)
        metric.update(fake, real=False)
        res = metric.compute()
        out |= {k: res[k] for k in keys}
    return out


def run_seed(
    seed: int, sides: list[str], budgets: list[float], chunk: float, train, n_sample: int
) -> dict[str, dict[float, tuple[torch.Tensor, int]]]:
    """Interleaved training; returns side -> budget (CPU s) -> (samples, the number of steps
    made within the budget)."""
    runners = [SIDES[name](train, seed) for name in sides]
    used = {r.name: 0.0 for r in runners}
    steps = {r.name: 0 for r in runners}
    marks = {
        r.name: sorted(set(budgets) | ({b / 3 for b in budgets} if r.name == "recipe" else set()))
        for r in runners
    }
    samples: dict[str, dict[float, tuple[torch.Tensor, int]]] = {r.name: {} for r in runners}
    target = 0.0
    while any(marks[r.name] for r in runners):
        target += chunk
        for r in runners:
            while marks[r.name] and used[r.name] < target:
                t0 = process_cpu_seconds()
                r.step()
                used[r.name] += process_cpu_seconds() - t0
                steps[r.name] += 1
                while marks[r.name] and used[r.name] >= marks[r.name][0]:
                    b = marks[r.name].pop(0)
                    samples[r.name][b] = (r.sample(n_sample, seed=10_000 + seed), steps[r.name])
                    print(
                        f"  seed {seed} {r.name:9s} passed {b / 60:5.2f} CPU-min at step "
                        f"{steps[r.name]} ({time.strftime('%H:%M:%S')})",
                        flush=True,
                    )
    return samples


def _add_variants(specs: list[str]) -> None:
    for spec in specs:
        name, _, js = spec.partition("=")
        SIDES[name] = _variant(name, json.loads(js))


def _seed_job(
    seed: int,
    sides: list[str],
    budgets: list[float],
    chunk: float,
    data: str,
    threads: int,
    variants: list[str],
) -> dict[str, dict[float, tuple[torch.Tensor, int]]]:
    """One seed, all sides (runs in a worker process with ``--jobs``)."""
    torch.set_num_threads(threads)
    _add_variants(variants)
    train, held_out = load(data)
    return run_seed(seed, sides, budgets, chunk, train, len(held_out))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default="mri")
    ap.add_argument("--budgets", default="2,5,10", help="CPU-minutes, comma separated")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--sides", default="plain,previous,recipe")
    ap.add_argument("--chunk", type=float, default=10.0, help="CPU-seconds per turn")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="docs/figures")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME=JSON: an extra side, the recipe with these overrides (for tuning), e.g. "
        "small_batch='{\"batch_size\": 16}'",
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="seeds run in this many processes at once (use --threads 1 with it): process-CPU "
        "budgets are per process, so running seeds side by side changes wall time, not budgets",
    )
    args = ap.parse_args()
    _add_variants(args.variant)
    torch.set_num_threads(args.threads)
    budgets = [60.0 * float(b) for b in args.budgets.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    sides = args.sides.split(",")
    train, held_out = load(args.data)
    print(
        f"data {args.data}: {len(train)} training, {len(held_out)} held-out images; budgets "
        f"{args.budgets} CPU-min; seeds {seeds}; threads {torch.get_num_threads()}"
    )
    enc = DomainEncoderFeatures()
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    figures: dict[str, torch.Tensor] = {}
    job = functools.partial(
        _seed_job,
        sides=sides,
        budgets=budgets,
        chunk=args.chunk,
        data=args.data,
        threads=args.threads,
        variants=args.variant,
    )
    if args.jobs > 1:  # one process per seed; each counts only its own CPU seconds
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            all_samples = list(pool.map(job, seeds))
    else:
        all_samples = [job(seed) for seed in seeds]
    for seed, samples in zip(seeds, all_samples, strict=True):
        for side, by_budget in samples.items():
            for b, (fake, made) in by_budget.items():
                key = f"{b / 60:.3g}"
                row = score(fake, held_out, enc) | {"steps": made}
                results.setdefault(side, {}).setdefault(key, []).append(row)
            if seed == seeds[0]:
                figures[side] = by_budget[max(budgets)][0]
    report(results, budgets, sides)
    ref = score(train, held_out, enc)
    print(
        "reference, the training images themselves scored against the held-out ones (what a "
        "generator that reproduced its data would reach): "
        + ", ".join(f"{k} {v:.3g}" for k, v in ref.items())
    )
    results["train_reference"] = ref
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"time_to_quality_{args.data}.json").write_text(json.dumps(results, indent=1))
    for side, fake in figures.items():
        save_side_by_side(held_out[:36], fake[:36], out / f"time_to_quality_{args.data}_{side}.png")


def _ms(rows: list[dict[str, float]], k: str) -> tuple[float, float]:
    vals = [r[k] for r in rows]
    return statistics.mean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def report(results, budgets: list[float], sides: list[str]) -> None:
    keys = ("steps", "fid", "swd", "precision", "coverage")
    print("\n| budget (CPU-min) | side | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    allb = sorted({float(b) for s in results.values() for b in s})
    for b in allb:
        for side in sides:
            rows = results.get(side, {}).get(f"{b:.3g}")
            if rows:
                cells = " | ".join("{:.3g} ± {:.2g}".format(*_ms(rows, k)) for k in keys)
                print(f"| {b:.3g} | {side} | {cells} |")
    if "plain" in results and "recipe" in results:
        print("\ntargets (means over seeds):")
        for b in budgets:
            key, third = f"{b / 60:.3g}", f"{b / 180:.3g}"
            p, r = results["plain"][key], results["recipe"][key]
            fid_ratio = _ms(r, "fid")[0] / _ms(p, "fid")[0]
            swd_ratio = _ms(r, "swd")[0] / _ms(p, "swd")[0]
            cov = _ms(r, "coverage")[0]
            r3 = results["recipe"][third]
            third_ok = (
                _ms(r3, "fid")[0] <= _ms(p, "fid")[0] and _ms(r3, "swd")[0] <= _ms(p, "swd")[0]
            )
            checks = {
                f"FID ratio {fid_ratio:.2f} (<= 0.5)": fid_ratio <= 0.5,
                f"SWD ratio {swd_ratio:.2f} (<= 0.7)": swd_ratio <= 0.7,
                f"coverage {cov:.2f} (>= 0.8)": cov >= 0.8,
                "recipe at 1/3 of the budget no worse than plain at the full budget": third_ok,
            }
            verdicts = ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in checks.items())
            print(f"  {key} CPU-min: {verdicts}")


if __name__ == "__main__":
    main()
