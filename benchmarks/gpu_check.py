"""CUDA readiness in one run (under 5 minutes on one GPU): the recipe at 128x128 with
amp off / bf16 / fp16 (step rate and loss curves side by side), save + resume on CUDA
(random states restored on the CPU side), and FID computed on the GPU vs on the CPU.

    python benchmarks/gpu_check.py [--steps 200] [--out gpu-check]

Prints a table and writes ``--out``/gpu_check.json and loss curves. Without CUDA it says so
and exits 0 unless ``--allow-cpu`` (a smoke run of the same code paths on the CPU, used by
the test suite with tiny settings).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import medgan
from medgan.metrics import FID, DomainEncoderFeatures


def data(n: int, size: int) -> torch.Tensor:
    return torch.stack([medgan.data.CTPhantomSlices(n=n, size=size, seed=0)[i] for i in range(n)])


def run_amp(images, amp: str, steps: int, device: str, batch: int) -> dict:
    tr = medgan.recipes.unconditional(
        images, seed=0, steps=steps, device=device, amp=amp, batch_size=batch
    )
    tr.fit(3)  # warm-up (cuDNN autotuning, allocator)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    curve = []

    class Keep:
        def on_step_end(self, trainer, logs):
            if trainer.step % 10 == 0:
                curve.append((trainer.step, float(logs["d_loss"]), float(logs["g_loss"])))

    tr.callbacks.append(Keep())
    tr.fit(steps)
    if device == "cuda":
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    return {
        "amp": amp,
        "steps_per_s": (steps - 3) / secs,
        "images_per_s": (steps - 3) * batch / secs,
        "curve": curve,
        "finite": all(all(map(lambda v: v == v, c[1:])) for c in curve),
    }


def check_resume(images, device: str, out: Path, batch: int) -> dict:
    def make():
        return medgan.recipes.unconditional(
            images, seed=1, steps=6, device=device, batch_size=batch
        )

    full = make().fit()
    part = make().fit(3)
    part.save(out / "resume.pt")
    resumed = make().resume(out / "resume.pt").fit()
    same = all(
        torch.equal(a, b)
        for a, b in zip(
            full.generator.state_dict().values(),
            resumed.generator.state_dict().values(),
            strict=True,
        )
    )
    return {"resume_bit_exact": same}


def check_fid(images, device: str) -> dict:
    enc = DomainEncoderFeatures()
    real, fake = images[: len(images) // 2], images[len(images) // 2 :]
    values = {}
    for dev in ("cpu", device):
        fid = FID(enc.to(dev))
        fid.update(real.to(dev), real=True)
        fid.update(fake.to(dev), real=False)
        values[dev] = fid.compute()
    return {"fid_cpu": values["cpu"], f"fid_{device}": values[device]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path("gpu-check"))
    ap.add_argument("--allow-cpu", action="store_true")
    args = ap.parse_args()
    if torch.cuda.is_available():
        device, amps = "cuda", ("off", "bf16", "fp16")
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    elif args.allow_cpu:
        device, amps = "cpu", ("off", "bf16")
        print("no CUDA: smoke run on the CPU (fp16 needs CUDA)")
    else:
        print("no CUDA device: nothing to check (run on a GPU machine)")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    images = data(args.images, args.size)
    t0 = time.perf_counter()
    result: dict = {"device": device, "size": args.size, "batch": args.batch}
    result["amp"] = [run_amp(images, amp, args.steps, device, args.batch) for amp in amps]
    result |= check_resume(images, device, args.out, args.batch)
    result |= check_fid(images, device)
    result["seconds"] = time.perf_counter() - t0
    print("| amp | steps/s | images/s | finite losses | last d_loss | last g_loss |")
    print("|---|---|---|---|---|---|")
    for r in result["amp"]:
        last = r["curve"][-1] if r["curve"] else (0, float("nan"), float("nan"))
        print(
            f"| {r['amp']} | {r['steps_per_s']:.2f} | {r['images_per_s']:.0f} | {r['finite']} | "
            f"{last[1]:.3f} | {last[2]:.3f} |"
        )
    print(
        f"resume bit-exact on {device}: {result['resume_bit_exact']}; FID cpu "
        f"{result['fid_cpu']:.4f} vs {device} {result[f'fid_{device}']:.4f}; "
        f"{result['seconds']:.0f} s in all"
    )
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
