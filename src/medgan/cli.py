"""``medgan`` command line: thin wrappers over the library.

```text
medgan demo [--out DIR] [--steps N]         train a small CT GAN on embedded data
medgan train --config FILE.json             train any job from an experiment file
      [--set PATH=VALUE ...] [--tracker tensorboard|mlflow|none] [--print-config]
medgan sample CKPT -n N --out DIR           draw samples from a checkpoint or pretrained folder
medgan export CKPT --out DIR [--onnx F] [--torchscript F]   pretrained folder, ONNX, TorchScript
medgan fid REAL GENERATED                   FID (KID, precision/recall) of two image sets
medgan audit --generated --train --held-out memorisation audit
medgan enhance | translate IN OUT --checkpoint CKPT   image-to-image on a volume
      [--axis A] [--window lo,hi] [--sigma S (denoisers)] [--factor F (super-resolution)]
medgan models | losses | datasets           list registered names
```

Errors: a refused argument, any :class:`~medgan.errors.MedganError` and any OSError while
reading or writing files (no space left on device, permission denied, a file where a folder
should be) end as one line on stderr, ``medgan <command>: error: <message>`` naming the
parameter or the path, with exit status 2, and no traceback. The status is 2 for I/O
failures too: in every case the command did not do its job and the message says why.
Anything else is a bug in medgan and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medgan.config import SEED_LIMIT, check_output_folder
from medgan.errors import ConfigError, MedganError

if TYPE_CHECKING:
    from medgan.data import Volume


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op CPU threads set to ``n`` inside the block, restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _demo(args: argparse.Namespace) -> int:
    from medgan.experiment import ExperimentConfig, build_trainer

    check_output_folder(args.out, "--out")
    size = args.size
    cfg = ExperimentConfig.from_dict(
        {
            "data": {"name": args.data, "kwargs": {"size": size}},
            "train": {
                "steps": args.steps,
                "device": args.device,
                "seed": args.seed,
                "max_minutes": args.max_minutes,
                # a short run learns more per CPU-second with smaller batches: CT phantoms,
                # one thread, seed 0, coverage at ~120 / 160 / 240 CPU-s: batch 8 0.45 /
                # 0.53 / 0.69, the recipe's 16 0.0 / 0.08 / 0.67 (600 / 800 / 1,200 steps
                # of batch 8; benchmarks/demo_quality.py has the demo's own figures)
                "batch_size": args.batch_size,
            },
            "out_dir": str(args.out),
            "checkpoint_every": max(1, args.steps // 4),
            "sample_every": max(1, args.steps // 4),
            "log_every": 5,
            "resume": None,
            "tracker": args.tracker,
        }
    )
    print(
        f"medgan demo: training the recipe's {size}x{size} GAN (medgan.recipes.unconditional) "
        f"on '{args.data}' for {args.steps} steps or {args.max_minutes} minutes -> {args.out}"
    )
    t0 = time.perf_counter()
    with _torch_threads(args.threads):
        trainer = build_trainer(cfg)
        out = Path(args.out)
        with _writing(out):
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
            trainer.fit(progress=not args.quiet)
    print(f"done in {time.perf_counter() - t0:.0f} s on {trainer.device}.")
    print(f"  samples:    {out / 'samples' / 'samples_final.png'}")
    print(f"  real | gen: {out / 'samples' / 'real_vs_generated.png'}")
    print(f"  loss plot:  {out / 'losses.png'}")
    print(f"  metrics:    {out / 'metrics.csv'}")
    print(f"  checkpoint: {out / 'checkpoints' / 'last.pt'}")
    print(
        f"  config:     {out / 'config.json'}"
        f"  (rerun with: medgan train --config {out / 'config.json'})"
    )
    _print_tracker(trainer)
    return 0


def _train(args: argparse.Namespace) -> int:
    from medgan.experiment import ExperimentConfig, build_trainer

    overrides = list(args.overrides)
    if args.tracker is not None:
        overrides.append(f"tracker={args.tracker}")
    cfg = ExperimentConfig.from_json(args.config, overrides)
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    trainer = build_trainer(cfg)
    start = trainer.step
    with _writing(cfg.out_dir):
        trainer.fit(progress=not args.quiet)
    if trainer.is_main:
        print(f"trained steps {start}..{trainer.step}; outputs in {cfg.out_dir}")
        _print_tracker(trainer)
    return 0


def _print_tracker(trainer) -> None:
    from medgan.trackers import TensorBoardLogger, Tracker

    for t in trainer.callbacks:
        if isinstance(t, TensorBoardLogger):
            print(f"  tensorboard: tensorboard --logdir {t.location}")
        elif isinstance(t, Tracker):
            print(f"  tracked in: {t.location}")


def _sample(args: argparse.Namespace) -> int:
    from medgan.generate import generate, load_generator, save_samples
    from medgan.images import save_grid

    out = Path(args.out)
    check_output_folder(out, "--out")
    old = sorted(out.glob("sample_*")) if out.is_dir() else []
    if old:
        raise ConfigError(
            f"--out {out} already holds {len(old)} sample file(s) ({old[0].name}, ...); new "
            "samples would mix with them: choose an empty folder or delete them"
        )
    g = load_generator(args.checkpoint, ema=not args.no_ema, device=args.device)
    x = generate(g, args.n, seed=args.seed, device=args.device)
    with _writing(out):
        save_samples(x, out)
        # beside the folder, not in it: the folder holds exactly the samples (for `medgan fid`)
        grid = save_grid(x[:64], _grid_path(out))
    print(f"wrote {len(x)} samples to {out} (grid: {grid})")
    return 0


def _export(args: argparse.Namespace) -> int:
    from medgan import pretrained
    from medgan.generate import load_generator

    if not (args.out or args.onnx or args.torchscript):
        raise ConfigError("give at least one of --out DIR, --onnx FILE, --torchscript FILE")
    if args.out:
        check_output_folder(args.out, "--out")
    try:
        shape = [int(s) for s in args.input_shape.split(",")] if args.input_shape else None
    except ValueError:
        raise ConfigError(f"--input-shape {args.input_shape!r}: expected C,H,W[,D]") from None
    if args.checkpoint.is_dir():  # a pretrained folder: re-export it
        g = load_generator(args.checkpoint, ema=not args.no_ema)
        source = pretrained.read_config(args.checkpoint).get("source", {})
    else:
        g, source = pretrained.checkpoint_generator(args.checkpoint, ema=not args.no_ema)
    inputs = pretrained.example_inputs(g, 2, input_shape=shape)
    if args.out:
        with _writing(args.out):
            pretrained.save_pretrained(g, args.out, license=args.license, source=source)
        print(f"pretrained folder: {args.out} (config.json, model.safetensors, README.md)")
    for path, export in (
        (args.onnx, pretrained.export_onnx),
        (args.torchscript, pretrained.export_torchscript),
    ):
        if path:
            with _writing(path):
                done = export(g, path, inputs=inputs, atol=args.atol)
            print(f"{path}: outputs within {done.max_abs_diff:.2g} of PyTorch (atol {args.atol:g})")
    return 0


def _grid_path(sample_folder: Path) -> Path:
    """Where ``medgan sample`` puts its overview grid: ``<folder>_grid.png`` beside the folder
    (``.`` and ``..`` are resolved first, so the grid never lands inside)."""
    folder = sample_folder if sample_folder.name not in ("", ".", "..") else sample_folder.resolve()
    return folder.parent / f"{folder.name}_grid.png"


def _list(registry_name: str) -> int:
    from medgan.registry import DATASETS, LOSSES, MODELS  # all filled by `import medgan`

    reg = {"models": MODELS, "losses": LOSSES, "datasets": DATASETS}[registry_name]
    print("\n".join(reg.available()))
    return 0


def _features(args: argparse.Namespace):
    """The feature extractor of ``--features``; a ``--weights`` file that is not one is a
    ConfigError naming it."""
    from medgan.metrics.features import build_features

    if args.weights is not None and args.features != "inception":
        raise ConfigError(
            f"--weights is the Inception weights file; --features {args.features} does not "
            "use it: drop --weights or pass --features inception"
        )
    try:
        return build_features(args.features, args.weights)
    except MedganError:
        raise
    except Exception as e:  # noqa: BLE001 - torch.load's many ways to refuse a file
        if args.weights is None:
            raise
        raise ConfigError(
            f"--weights {args.weights} is not a readable FID Inception weights file "
            f"({type(e).__name__}: {_first_line(e)})"
        ) from None


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else ""


def _fid(args: argparse.Namespace) -> int:
    import warnings

    from medgan.metrics.image_sets import fid_between

    extractor = _features(args)
    saving = _writing(args.save_stats) if args.save_stats else contextlib.nullcontext()
    with warnings.catch_warnings(record=True) as caught, saving:
        warnings.simplefilter("always")
        result = fid_between(
            args.path1,
            args.path2,
            extractor,
            kid=args.kid,
            precision_recall=args.pr,
            batch_size=args.batch_size,
            axis=args.axis,
            save_real_stats=args.save_stats,
            progress=not args.quiet,
        )
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print(json.dumps(result, indent=2))
    return 0


def _audit(args: argparse.Namespace) -> int:
    from medgan.metrics.inputs import image_tensor
    from medgan.metrics.memorization import memorization_audit, save_closest_pairs

    check_output_folder(args.out, "--out")
    gen, train, held = (
        image_tensor(p, args.axis) for p in (args.generated, args.train, args.held_out)
    )
    report = memorization_audit(gen, train, held, _features(args))
    with _writing(args.out):
        args.out.mkdir(parents=True, exist_ok=True)
        grid = save_closest_pairs(report, gen, train, args.out / "closest_pairs.png")
        (args.out / "audit.json").write_text(json.dumps(report.to_dict(), indent=2))
    print(json.dumps(report.to_dict(), indent=2))
    print(f"closest pairs: {grid}")
    if report.flagged:
        print("FLAG: generated images are closer to the training set than held-out real images are")
    return 0


def _translate(args: argparse.Namespace) -> int:
    from medgan.data import IntensityWindow, load
    from medgan.generate import load_generator
    from medgan.models.conditioned import ThicknessSR
    from medgan.models.denoiser import CTDenoiser, NoiseLevelDenoiser
    from medgan.tasks import enhance, translate

    vol = load(args.input)
    g = load_generator(args.checkpoint, ema=not args.no_ema)
    if getattr(args, "factor", None) is not None and not isinstance(g, ThicknessSR):
        raise ConfigError(
            "--factor applies to slice-thickness super-resolution (ThicknessSR) checkpoints "
            f"only; {args.checkpoint} holds a {type(g).__name__}"
        )
    enhancer = isinstance(g, NoiseLevelDenoiser | CTDenoiser | ThicknessSR)
    if enhancer and args.command != "enhance":
        raise ConfigError(f"{args.checkpoint} holds a {type(g).__name__}: use `medgan enhance`")
    if getattr(args, "sigma", None) is not None and not isinstance(
        g, NoiseLevelDenoiser | CTDenoiser
    ):
        raise ConfigError("--sigma applies to denoiser checkpoints only")
    if isinstance(g, NoiseLevelDenoiser) and args.window:
        raise ConfigError(
            f"{args.checkpoint} holds a denoiser, which scales each volume by its own "
            "99.5th percentile: drop --window"
        )
    if isinstance(g, NoiseLevelDenoiser) or (isinstance(g, CTDenoiser) and not args.window):
        window = None  # the model's own scale (MR) or HU window (CT)
    else:
        window = IntensityWindow.resolve(args.window or None, vol, "--window")
    # how the slices are run, the same for every model type
    slicing = {
        "axis": args.axis,
        "tile": args.tile,
        "overlap": args.overlap,
        "ensemble": args.ensemble,
    }
    if enhancer:
        out = enhance(vol, g, window, sigma=args.sigma, factor=args.factor, **slicing)
        with _writing(args.output):
            _write_volume(out, args.output, args.command)
        shown = f"{vol.array.shape}" + (f", window {window}" if window is not None else "")
        done = _report(out, g, args.axis)
        print(f"enhance: {args.input} ({shown}) -> {args.output}; {done}")
        return 0
    out_spec = getattr(args, "out_window", None)
    out_window = IntensityWindow.resolve(out_spec, vol, "--out-window") if out_spec else window
    direction = getattr(args, "direction", None)
    if hasattr(g, "ab"):  # a CycleGAN pair: pick one translator
        if direction not in ("ab", "ba"):
            raise ConfigError(
                f"{args.checkpoint} holds a CycleGAN pair: choose --direction ab (A -> B) "
                "or ba (B -> A)"
            )
        g = getattr(g, direction)
    elif direction:
        raise ConfigError(f"--direction applies to CycleGAN checkpoints; {args.checkpoint} is not")
    assert window is not None
    out = translate(vol, g, window, out_window, translated_by=str(args.checkpoint), **slicing)
    with _writing(args.output):
        _write_volume(out, args.output, args.command)
    print(f"{args.command}: {args.input} ({vol.array.shape}, window {window}) -> {args.output}")
    return 0


def _report(out: Volume, model: Any, axis: int) -> str:
    """One line on what ``enhance`` did with ``model`` along ``axis``, from its report in
    ``out.meta``."""
    from medgan.models.conditioned import ThicknessSR
    from medgan.models.denoiser import CTDenoiser

    if isinstance(model, ThicknessSR):
        r = out.meta["superres"]
        sp = ", ".join(f"{s:.3g}" for s in out.spacing)
        how = "from the geometry" if r["factor_from_geometry"] else "given"
        return (
            f"{out.array.shape}, spacing {sp} mm; slice-thickness factor {r['factor']} along "
            f"axis {axis} ({how})" + ("; factor 1: written unchanged" if r["factor"] == 1 else "")
        )
    r = out.meta["denoise"]
    how = "estimated" if r["noise_sigma_estimated"] else "given"
    if isinstance(model, CTDenoiser):
        line = (
            f"noise sigma {r['noise_sigma_hu']:.3g} HU ({how}), change RMS "
            f"{r['change_rms_hu']:.3g} HU"
        )
    else:
        line = (
            f"noise sigma {r['noise_sigma']:.3g} ({how}), change RMS {r['change_rms']:.3g} "
            f"(PSNR vs input {r['change_psnr_db']:.1f} dB), histogram distance to training "
            f"data {r['histogram_distance']:.2f}"
        )
    return line + (f"; {len(r['warnings'])} warning(s) on stderr" if r["warnings"] else "")


def _write_volume(out: Volume, path: Path, command: str) -> None:
    from medgan.data import save_dicom_series, save_nifti

    if str(path).lower().endswith((".nii", ".nii.gz")):
        save_nifti(out, path)
    elif out.array.ndim == 4:
        raise ConfigError(
            f"the output has {out.array.shape[0]} channels: write it as .nii/.nii.gz, not DICOM"
        )
    else:
        save_dicom_series(out, path, series_description=f"medgan {command}")


@contextlib.contextmanager
def _writing(path: str | Path) -> Iterator[None]:
    """OSErrors that do not name a file (``write()`` on a full disk) name ``path``."""
    try:
        yield
    except OSError as e:
        if e.filename is None:
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise


class _UsageError(Exception):
    """A refused command line: ``prog`` and argparse's message."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block): main prints them."""

    def error(self, message: str):  # type: ignore[override]
        raise _UsageError(self.prog, message)


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"  # argparse names the type by it
    return parse


_positive = _int_at_least(1)


def _seed(text: str) -> int:
    value = _int_at_least(0)(text)
    if value >= SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**53), got {value}")
    return value


_TRACKER_HELP = (
    "record losses, sample grids and the config: none | tensorboard | mlflow "
    "(pip install 'medgan[tensorboard]' / 'medgan[mlflow]')"
)


def build_parser() -> argparse.ArgumentParser:
    """The ``medgan`` argument parser: one subcommand per command in this module's docstring,
    each with ``fn`` (the function :func:`main` calls with the parsed arguments) as a default.
    A refused argument raises an internal usage error that :func:`main` turns into one line,
    instead of argparse's usage block."""
    p = _Parser(prog="medgan", description="GANs for medical images.")
    p.add_argument("-v", "--verbose", action="store_true", help="log INFO messages")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="train a small GAN on embedded CT data (a few CPU minutes)")
    d.add_argument("--out", type=Path, default=Path("medgan-demo"))
    d.add_argument("--steps", type=_positive, default=1000)
    d.add_argument(
        "--max-minutes",
        type=float,
        default=1.75,
        help="wall-clock budget (stops cleanly); with one thread it bounds the CPU time too",
    )
    d.add_argument("--batch-size", type=_positive, default=8)
    d.add_argument("--size", type=int, default=64, choices=[16, 32, 64, 128])
    d.add_argument(
        "--data",
        default="ct_phantoms",
        help="a registered dataset taking `size` (mni152_slices: real brain MRI; "
        "ct_phantoms: procedural CT in HU)",
    )
    d.add_argument("--device", default="auto")
    d.add_argument(
        "--threads",
        type=_positive,
        default=1,
        help="torch CPU threads (default 1: the demo's small networks make about 2.5x more "
        "steps per CPU-second on one thread than on two, and the wall-clock budget then "
        "bounds the CPU time too)",
    )
    d.add_argument("--seed", type=_seed, default=0)
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.add_argument("--tracker", default="none", help=_TRACKER_HELP)
    d.set_defaults(fn=_demo)

    t = sub.add_parser(
        "train",
        help="train from a JSON experiment config (any job: see docs/experiments.md)",
    )
    t.add_argument("--config", required=True, type=Path)
    t.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a config value by dotted path (repeatable), e.g. train.steps=2000 "
        "or loss.kwargs.r1_weight=1; VALUE is parsed as JSON, else taken as a string",
    )
    t.add_argument("--tracker", default=None, help=_TRACKER_HELP + " (replaces the config's)")
    t.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config (after --set) as JSON and exit without training",
    )
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(fn=_train)

    s = sub.add_parser("sample", help="draw samples from a checkpoint")
    s.add_argument("checkpoint", type=Path, help="training checkpoint or pretrained folder")
    s.add_argument("-n", type=_positive, default=64, help="number of samples")
    s.add_argument(
        "--out", type=Path, required=True, help="folder of the samples (grid: OUT_grid.png)"
    )
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA")
    s.add_argument("--device", default="cpu")
    s.set_defaults(fn=_sample)

    x = sub.add_parser(
        "export", help="export a generator: pretrained folder (hub layout), ONNX, TorchScript"
    )
    x.add_argument("checkpoint", type=Path, help="training checkpoint or pretrained folder")
    x.add_argument("--out", type=Path, help="pretrained folder to write")
    x.add_argument("--onnx", type=Path, help="ONNX file to write (batch axis dynamic)")
    x.add_argument("--torchscript", type=Path, help="TorchScript file to write")
    x.add_argument("--no-ema", action="store_true", help="export the raw generator, not its EMA")
    x.add_argument("--input-shape", help="image-to-image generators: C,H,W[,D] of one input")
    x.add_argument("--license", help="model card license (hub id, e.g. apache-2.0)")
    x.add_argument("--atol", type=float, default=1e-4, help="max output difference allowed")
    x.set_defaults(fn=_export)

    f = sub.add_parser(
        "fid", help="FID (and optionally KID, precision/recall) between two image sets"
    )
    f.add_argument("path1", type=Path, help="real: PNG/DICOM/NIfTI folder or file, or .npz stats")
    f.add_argument("path2", type=Path, help="generated: same kinds")
    f.add_argument(
        "--features", default="inception", help="inception | domain | pkg.module:factory"
    )
    f.add_argument(
        "--weights", default=None, help="Inception weights file (or $MEDGAN_INCEPTION_WEIGHTS)"
    )
    f.add_argument("--axis", default="axial", help="slicing axis for volumes")
    f.add_argument("--batch-size", type=_positive, default=50)
    f.add_argument("--kid", action="store_true")
    f.add_argument("--pr", action="store_true", help="also precision/recall (k=3)")
    f.add_argument("--save-stats", type=Path, default=None, help="write path1's statistics (.npz)")
    f.add_argument("--quiet", action="store_true")
    f.set_defaults(fn=_fid)

    a = sub.add_parser("audit", help="memorisation audit: generated vs training vs held-out images")
    a.add_argument("--generated", type=Path, required=True)
    a.add_argument("--train", type=Path, required=True)
    a.add_argument("--held-out", type=Path, required=True)
    a.add_argument("--features", default="domain")
    a.add_argument("--weights", default=None)
    a.add_argument("--axis", default="axial")
    a.add_argument("--out", type=Path, default=Path("audit"))
    a.set_defaults(fn=_audit)

    for name, help_text in (
        ("enhance", "apply a trained image-to-image generator to a volume (same units out)"),
        ("translate", "synthesise another modality/contrast from a volume (pix2pix or CycleGAN)"),
    ):
        e = sub.add_parser(name, help=help_text)
        e.add_argument("input", type=Path, help="DICOM folder/file, NIfTI or PNG")
        e.add_argument(
            "output", type=Path, help=".nii/.nii.gz file, or a folder for a DICOM series"
        )
        e.add_argument("--checkpoint", type=Path, required=True)
        e.add_argument(
            "--window", default=None, help="CT window name or 'lo,hi' (default: by unit)"
        )
        e.add_argument("--axis", type=int, default=0, help="array axis to process slice by slice")
        e.add_argument(
            "--tile", type=_positive, default=None, help="tile side (default: whole slices)"
        )
        e.add_argument(
            "--overlap",
            type=_int_at_least(0),
            default=None,
            help="tile overlap (default: half a tile)",
        )
        e.add_argument("--no-ema", action="store_true")
        e.add_argument(
            "--ensemble",
            action="store_true",
            help="average the model over the 8 flips and quarter turns of each slice "
            "(8x the compute; not for slice-thickness SR)",
        )
        if name == "enhance":
            e.add_argument(
                "--sigma",
                type=float,
                default=None,
                help="denoisers: noise std in the input's units (default: estimated blind)",
            )
            e.add_argument(
                "--factor",
                type=_positive,
                default=None,
                help="slice-thickness super-resolution: slab / fine spacing along --axis, the "
                "slice axis (default: from the geometry; 1 writes the input unchanged)",
            )
        if name == "translate":
            e.add_argument(
                "--out-window",
                default=None,
                help="'lo,hi' of the output's units (default: the input window)",
            )
            e.add_argument(
                "--direction", choices=["ab", "ba"], default=None, help="CycleGAN direction"
            )
        e.set_defaults(fn=_translate)

    for name in ("models", "losses", "datasets"):
        sub.add_parser(name, help=f"list registered {name}").set_defaults(
            fn=lambda a, n=name: _list(n)
        )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (0, or 2 after a one-line error). A refused
    command line exits (SystemExit 2) as argparse does, after the same one-line message.

    Args:
        argv: the command-line arguments without the program name (``["train",
            "--config", "run.json"]``); None reads them from ``sys.argv[1:]``.
    """
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as e:
        raise SystemExit(_fail(e.prog, str(e))) from None
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    prog = f"medgan {args.command}"
    try:
        return args.fn(args)
    except MedganError as e:
        return _fail(prog, str(e))
    except OSError as e:
        where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
        reason = e.strerror or str(e)
        return _fail(prog, f"{where}: {reason}" if where else reason)


def _fail(prog: str, message: str) -> int:
    """Print ``<prog>: error: <message>`` as one line on stderr; the exit status 2."""
    one_line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"{prog}: error: {one_line}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
