"""Experiment files for every job (noise-to-image, class-conditional, pix2pix, CycleGAN,
segmentation), `--set` overrides and `--print-config`, and the TensorBoard / MLflow
trackers, read back with their own readers (#12, items 3-4)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.callbacks import Evaluate, read_metric_log
from medgan.cli import main
from medgan.errors import ConfigError
from medgan.experiment import ExperimentConfig, apply_overrides, build_trainer

CONFIGS = Path(__file__).resolve().parents[1] / "examples" / "configs"

#: tiny sizes for each job's example file (what the file sets is kept otherwise)
TINY = {
    "noise_to_image": [
        "data.kwargs.size=16",
        "data.kwargs.n=16",
        "generator.kwargs.image_size=16",
        "discriminator.kwargs.image_size=16",
    ],
    "conditional": [
        "data.kwargs.size=16",
        "generator.kwargs.image_size=16",
        "discriminator.kwargs.image_size=16",
    ],
    "pix2pix": ["data.kwargs.size=16", "evaluate.data.kwargs.size=16"],
    "cyclegan": [
        "data.kwargs.domain_a.kwargs.size=16",
        "data.kwargs.domain_b.kwargs.size=16",
        "data.kwargs.domain_b.kwargs.n=8",
    ],
    "segmentation": ["data.kwargs.size=16", "evaluate.data.kwargs.size=16"],
}
#: the metric each example file evaluates
METRIC = {
    "noise_to_image": "swd",
    "conditional": "swd",
    "pix2pix": "psnr",
    "cyclegan": "swd",
    "segmentation": "dice",
}


def _argv(job: str, out: Path, steps: int = 3, *extra: str) -> list[str]:
    sets = [
        f"train.steps={steps}",
        "train.batch_size=4",
        "train.device=cpu",
        "train.max_minutes=null",
        f"out_dir={out}",
        "checkpoint_every=2",
        "sample_every=2",
        "log_every=1",
        "evaluate.every=2",
        "evaluate.n=4",
        *TINY[job],
        *extra,
    ]
    argv = ["train", "--config", str(CONFIGS / f"{job}.json"), "--quiet"]
    for s in sets:
        argv += ["--set", s]
    return argv


# ------------------------------------------------------------------ one file per job


@pytest.mark.parametrize("job", sorted(TINY))
def test_example_config_trains_three_steps(job, tmp_path):
    out = tmp_path / job
    assert main(_argv(job, out)) == 0
    rows = read_metric_log(out / "metrics.csv")
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in rows)
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["step"] == 3
    assert (out / "samples" / "samples_final.png").exists()
    evals = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [2, 3]  # every 2 steps and at the end
    assert all(math.isfinite(e[METRIC[job]]) for e in evals), evals
    if job == "noise_to_image":  # adaptive augmentation reports its probability
        assert "aug_p" in rows[0]
    if job == "segmentation":
        assert 0 <= evals[-1]["dice"] <= 1 and {"dice_1", "dice_2"} <= set(evals[-1])


def test_example_files_cover_every_job():
    jobs = {p.stem: ExperimentConfig.from_json(p).job for p in sorted(CONFIGS.glob("*.json"))}
    assert jobs == {
        "noise_to_image": "noise_to_image",
        "conditional": "conditional",
        "pix2pix": "paired",
        "cyclegan": "unpaired",
        "segmentation": "labels_to_one_hot",
    }


def test_config_round_trips_through_json():
    for path in CONFIGS.glob("*.json"):
        cfg = ExperimentConfig.from_json(path)
        again = ExperimentConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert again.to_dict() == cfg.to_dict(), path.name
        assert again.train == cfg.train and again.evaluate == cfg.evaluate, path.name


# ------------------------------------------------------------------ overrides


def test_overrides_follow_the_file_structure():
    d = {"data": "ct_phantoms", "loss": "hinge", "augment": True, "train": {"steps": 5}}
    out = apply_overrides(
        d,
        [
            "train.steps=2000",
            "train.device=cpu",
            "train.betas=[0, 0.99]",
            "loss.kwargs.r1_weight=1",
            "resume=null",
            "augment.p=0.25",
            "data.kwargs.size=32",
            "evaluate.data.name=ct_phantoms",
            "loss.r2_weight=0.5",  # shorthand: kwargs. left out after a spec
            "generator.base_channels=8",
            "evaluate.data.size=8",
        ],
    )
    assert out["train"] == {"steps": 2000, "device": "cpu", "betas": [0, 0.99]}
    assert out["loss"] == {"name": "hinge", "kwargs": {"r1_weight": 1, "r2_weight": 0.5}}
    assert out["generator"] == {"kwargs": {"base_channels": 8}}
    assert out["data"] == {"name": "ct_phantoms", "kwargs": {"size": 32}}
    assert out["augment"] == {"p": 0.25} and out["resume"] is None
    assert out["evaluate"] == {"data": {"name": "ct_phantoms", "kwargs": {"size": 8}}}
    assert d["train"] == {"steps": 5} and d["loss"] == "hinge"  # the input is unchanged


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("trian.steps=1", "unknown path 'trian.steps': 'trian' is not an experiment field"),
        ("train.stepz=1", "unknown path 'train.stepz': train has no field 'stepz'"),
        ("loss.name.x=1", "unknown path 'loss.name.x': loss is a registry spec"),
        ("out_dir.x=1", "unknown path 'out_dir.x': 'out_dir' is a value"),
        ("evaluate.data.name.x=8", "evaluate.data is a registry spec"),
        ("train.steps", "expected PATH=VALUE"),
    ],
)
def test_unknown_override_paths_are_named(assignment, message):
    with pytest.raises(ConfigError) as e:
        apply_overrides({"data": "ct_phantoms"}, [assignment])
    assert message in str(e.value), str(e.value)


def test_cli_set_and_print_config(tmp_path, capsys):
    argv = ["train", "--config", str(CONFIGS / "pix2pix.json"), "--print-config"]
    out = tmp_path / "never"
    sets = ["train.steps=2000", "loss.r1_weight=1", f"out_dir={out}"]  # loss.kwargs.r1_weight
    assert main([*argv, *[a for s in sets for a in ("--set", s)]]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["train"]["steps"] == 2000 and printed["loss"]["kwargs"]["r1_weight"] == 1
    assert printed["train"]["batch_size"] == 8  # the file's, resolved with the defaults
    assert printed["adapter"] == {"name": "paired", "kwargs": {}} and not out.exists()
    assert ExperimentConfig.from_dict(printed).to_dict() == printed
    assert main([*argv, "--set", "trian.steps=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medgan train: error: --set 'trian.steps=1': unknown path")
    assert len(err.splitlines()) == 1 and "train" in err


# ------------------------------------------------------------------ validation


def _pix2pix() -> dict:
    return json.loads((CONFIGS / "pix2pix.json").read_text())


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"adapter": None}, "loss 'pix2pix' compares G's output with the second part"),
        ({"adapter": "pared"}, "adapter: unknown adapter 'pared'. Did you mean 'paired'?"),
        ({"adapter": "labels_to_one_hot"}, "needs kwargs ['num_classes']"),
        ({"adapter": {"name": "paired", "kwargs": {"src": "x"}}}, "unknown kwargs ['src']"),
        ({"evaluate": {"metric": "swd"}}, "'swd' does not fit adapter 'paired'; metrics for it:"),
        ({"evaluate": {"metric": "fidd"}}, "EvaluateConfig.metric: unknown evaluation metric"),
        ({"evaluate": {"n": 0}}, "EvaluateConfig.n must be an integer >= 1, got 0"),
        ({"evaluate": {"bogus": 1}}, "unknown EvaluateConfig field(s) ['bogus']"),
        ({"augment": {"p": 2}}, "AugmentConfig.p must be in [0, 1], got 2"),
        ({"augment": {"policy": ["rotate"]}}, "AugmentConfig.policy: unknown ['rotate']"),
        ({"augment": {"adaptive": False}}, "AugmentConfig.p is 0 and adaptive is false"),
        ({"augment": "yes"}, "ExperimentConfig.augment must be"),
        ({"tracker": "wandb"}, "unknown tracker 'wandb'"),
        (
            {"tracker": {"name": "tensorboard", "kwargs": {"bogus": 1}}},
            "tracker 'tensorboard': unknown kwargs ['bogus']",
        ),
        (
            {"tracker": {"name": "mlflow", "kwargs": {"every": "10"}}},
            "tracker 'mlflow': every must be an integer or null, got '10'",
        ),
        (
            {"generator": None, "discriminator": None, "loss": None},
            "adapter 'paired' needs named models",
        ),
    ],
)
def test_config_errors_name_the_field(patch, message):
    with pytest.raises(ConfigError) as e:
        ExperimentConfig.from_dict(_pix2pix() | patch)
    assert message in str(e.value), str(e.value)


def test_recipe_refuses_an_augment_object():
    with pytest.raises(ConfigError, match="augment: the recipe"):
        ExperimentConfig.from_dict({"data": "ct_phantoms", "augment": {"p": 0.5}})


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (  # what a pix2pix file without an adapter used to fail with, deep in the first step
            {"adapter": None, "loss": None, "evaluate": None},
            "adapter 'noise_to_image' feeds noise to the generator, but generator "
            "'unet_generator' takes no noise (no latent_dim)",
        ),
        (
            {"data": {"name": "ct_phantoms", "kwargs": {"n": 8, "size": 16}}},
            "data 'ct_phantoms' yields single images, but adapter 'paired' reads "
            "(source, target) items",
        ),
    ],
)
def test_build_errors_name_the_fix(tmp_path, patch, message):
    cfg = ExperimentConfig.from_dict(_pix2pix() | {"out_dir": str(tmp_path / "run")} | patch)
    with pytest.raises(ConfigError) as e:
        build_trainer(cfg)
    assert message in str(e.value), str(e.value)


def test_conditional_adapter_needs_classes(tmp_path):
    d = json.loads((CONFIGS / "conditional.json").read_text())
    d = apply_overrides(d, ["generator.kwargs.num_classes=0", f"out_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="set generator.kwargs.num_classes"):
        build_trainer(ExperimentConfig.from_dict(d))


def test_fixed_augmentation_wraps_the_discriminator(tmp_path):
    from medgan.augment import AugmentedDiscriminator, find_augment
    from medgan.callbacks import AdaptiveAugmentation

    d = apply_overrides(
        _pix2pix(),
        [
            'augment={"adaptive": false, "p": 0.5, "policy": "translation,cutout"}',
            f"out_dir={tmp_path}",
            "data.kwargs.size=16",
        ],
    )
    trainer = build_trainer(ExperimentConfig.from_dict(d))
    assert isinstance(trainer.discriminator, AugmentedDiscriminator)
    aug = find_augment(trainer.discriminator)
    assert float(aug.p) == 0.5 and aug.policy == ("translation", "cutout")
    assert not any(isinstance(c, AdaptiveAugmentation) for c in trainer.callbacks)


def test_evaluate_log_drops_rows_after_the_resumed_step(tmp_path):
    log = tmp_path / "eval.jsonl"
    log.write_text("".join(json.dumps({"step": s, "swd": 1.0}) + "\n" for s in (2, 4, 6)))

    class Resumed:  # what Evaluate reads of a trainer at the start
        step, is_main = 4, True

    Evaluate(lambda t: {}, every=2, log_path=log).on_train_start(Resumed())
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [2, 4]


def test_dice_metric_by_hand():
    from medgan.evaluation import METRICS

    labels = torch.tensor([[[0, 1], [2, 2]]])  # (1, 2, 2)
    pred = torch.tensor([[[0, 1], [1, 2]]])
    onehot = torch.nn.functional.one_hot(labels, 3).movedim(-1, 1).float()
    probs = torch.nn.functional.one_hot(pred, 3).movedim(-1, 1).float()
    out = METRICS.get("dice").fn(onehot, probs)
    # class 1: |A∩B| = 1, |A| + |B| = 1 + 2 -> 2/3; class 2: 1, 2 + 1 -> 2/3
    assert out["dice_1"] == pytest.approx(2 / 3) and out["dice_2"] == pytest.approx(2 / 3)
    assert out["dice"] == pytest.approx(2 / 3)


def test_registered_job_datasets_are_aligned():
    from medgan.data.datasets import PNGFolder
    from medgan.registry import DATASETS

    pairs = DATASETS.build("mni152_t1_to_tissue", size=32)
    labels = DATASETS.build("mni152_tissue_labels", size=32)
    assert len(pairs) == len(labels)
    agree, shifted = [], []
    for i in range(0, len(pairs), 4):
        (x, prob), (x2, lab) = pairs[i], labels[i]
        assert x.shape == (1, 32, 32) and prob.shape == (2, 32, 32) and torch.equal(x, x2)
        assert lab.dtype == torch.int64 and set(lab.unique().tolist()) <= {0, 1, 2}
        # the most probable tissue (background = 1 - grey - white) is the labelled one
        q = (prob + 1) / 2
        pred = torch.stack([1 - q.sum(0), q[0], q[1]]).argmax(0)
        fg = (lab > 0) | (pred > 0)
        agree.append((pred == lab)[fg].float().mean())
        shifted.append((pred == lab.roll(2, 0))[fg].float().mean())
    # measured: 0.86 aligned, 0.44 with the labels shifted by 2 pixels
    assert torch.stack(agree).mean() > 0.75 and torch.stack(shifted).mean() < 0.6
    views = DATASETS.build("mni152_views", size=16)
    assert {views[i][1] for i in range(len(views))} == {0, 1, 2}
    assert "png_folder" in DATASETS.available()
    assert DATASETS.get("png_folder") is PNGFolder


# ------------------------------------------------------------------ trackers


def _tracked_run(tmp_path: Path, tracker: dict, steps: int = 5) -> Path:
    out = tmp_path / "run"
    argv = _argv("noise_to_image", out, steps, f"tracker={json.dumps(tracker)}")
    assert main(argv) == 0
    return out


def test_tensorboard_event_file_holds_scalars_images_and_config(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    out = _tracked_run(tmp_path, {"name": "tensorboard", "kwargs": {"every": 1, "image_every": 2}})
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"train/d_loss", "train/g_loss", "train/aug_p", "train/lr_g", "eval/swd"} <= set(
        tags["scalars"]
    )
    assert [e.step for e in acc.Scalars("train/d_loss")] == [1, 2, 3, 4, 5]
    csv_rows = read_metric_log(out / "metrics.csv")
    assert [e.value for e in acc.Scalars("train/g_loss")] == pytest.approx(
        [r["g_loss"] for r in csv_rows], rel=1e-6
    )
    assert [e.step for e in acc.Scalars("eval/swd")] == [2, 4, 5]
    assert [e.step for e in acc.Images("samples")] == [2, 4, 5]
    assert [e.step for e in acc.Images("real")] == [0]
    grid = acc.Images("samples")[0]
    assert grid.width == grid.height == 2 + 4 * (16 + 2)  # 16 images of 16 px, 4 x 4
    start = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hp = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
    assert hp["train.steps"].number_value == 5
    assert hp["generator.name"].string_value == "modern_generator"


def test_tensorboard_shows_three_middle_slices_of_volumes(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import medgan
    from medgan.trackers import TensorBoardLogger

    g = medgan.models.build(
        "dcgan_generator", image_size=16, base_channels=2, latent_dim=8, spatial_dims=3
    )
    d = medgan.models.build("dcgan_discriminator", image_size=16, base_channels=2, spatial_dims=3)
    logger = TensorBoardLogger(tmp_path / "tb", every=1, image_every=2, n_images=4)
    medgan.Trainer(
        g,
        d,
        torch.rand(8, 1, 16, 16, 16) * 2 - 1,
        config=medgan.TrainConfig(steps=2, batch_size=4, device="cpu"),
        callbacks=[logger],
    ).fit()
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0})
    acc.Reload()
    views = {"samples/axis0", "samples/axis1", "samples/axis2"}
    assert views <= set(acc.Tags()["images"])
    assert all([e.step for e in acc.Images(v)] == [2] for v in views)


def test_trackers_and_evaluation_work_on_a_stream(tmp_path, tiny_gan):
    """An IterableDataset cannot be indexed: grids and evaluation use the next batch."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.data import IterableDataset

    import medgan
    from medgan.callbacks import SampleGrid
    from medgan.evaluation import evaluator
    from medgan.trackers import TensorBoardLogger

    class Stream(IterableDataset):
        def __iter__(self):
            g = torch.Generator().manual_seed(0)
            while True:
                yield torch.rand(1, 16, 16, generator=g) * 2 - 1

    g, d = tiny_gan()
    logger = TensorBoardLogger(tmp_path / "tb", every=1, image_every=2, n_images=3)
    ev = Evaluate(evaluator("swd", n=4), every=2, on_result=logger.log_scalars)
    medgan.Trainer(
        g,
        d,
        Stream(),
        config=medgan.TrainConfig(steps=3, batch_size=4, device="cpu"),
        callbacks=[ev, SampleGrid(tmp_path / "s", every=2, n=3), logger],
    ).fit()
    assert [r["step"] for r in ev.history] == [2, 3] and math.isfinite(ev.history[0]["swd"])
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0})
    acc.Reload()
    assert [e.step for e in acc.Images("samples")] == [2, 3]
    assert [e.step for e in acc.Scalars("eval/swd")] == [2, 3]
    assert (tmp_path / "s" / "samples_final.png").exists()


def test_mlflow_run_holds_metrics_params_and_images(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3: local store on request
    uri = (tmp_path / "mlruns").as_uri()
    tracker = {
        "name": "mlflow",
        "kwargs": {"tracking_uri": uri, "experiment": "t", "every": 1, "image_every": 2},
    }
    out = _tracked_run(tmp_path, tracker)
    client = MlflowClient(tracking_uri=uri)
    run_id = (out / "mlflow_run_id.txt").read_text().strip()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == client.get_experiment_by_name("t").experiment_id
    history = client.get_metric_history(run_id, "train/d_loss")
    assert [m.step for m in history] == [1, 2, 3, 4, 5]
    csv_rows = read_metric_log(out / "metrics.csv")
    assert [m.value for m in history] == pytest.approx([r["d_loss"] for r in csv_rows], rel=1e-6)
    assert [m.step for m in client.get_metric_history(run_id, "eval/swd")] == [2, 4, 5]
    assert run.data.params["train.steps"] == "5"
    assert run.data.params["adapter.name"] == "noise_to_image"
    assert {a.path for a in client.list_artifacts(run_id)} >= {"config.json", "samples", "real"}
    images = [a.path for a in client.list_artifacts(run_id, "samples")]
    assert images == [f"samples/step_{s:08d}.png" for s in (2, 4, 5)]
    png = Path(client.download_artifacts(run_id, images[-1], str(tmp_path / "dl")))
    from PIL import Image

    assert np.asarray(Image.open(png)).shape == (74, 74, 3)

    # resuming the training run continues the MLflow run
    argv = _argv("noise_to_image", out, 7, f"tracker={json.dumps(tracker)}")
    assert main(argv) == 0
    assert (out / "mlflow_run_id.txt").read_text().strip() == run_id
    steps = [m.step for m in client.get_metric_history(run_id, "train/d_loss")]
    assert steps == [1, 2, 3, 4, 5, 6, 7]
    assert client.get_run(run_id).info.status == "FINISHED"


def test_mlflow_file_store_refusal_says_what_to_do(tmp_run_dir, monkeypatch, capsys):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(_argv("noise_to_image", tmp_run_dir, 2, "tracker=mlflow")) == 2
    err = capsys.readouterr().err
    assert "tracker 'mlflow'" in err and "MLFLOW_ALLOW_FILE_STORE=true" in err, err
    assert (tmp_run_dir / "mlruns").as_uri() in err  # the default store: beside the run


@pytest.mark.parametrize(
    ("tracker", "module"), [("tensorboard", "tensorboard"), ("mlflow", "mlflow")]
)
def test_missing_tracker_package_names_the_extra(tmp_run_dir, monkeypatch, capsys, tracker, module):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    argv = _argv("noise_to_image", tmp_run_dir, 2)
    assert main([*argv, "--tracker", tracker]) == 2
    err = capsys.readouterr().err
    assert f"pip install 'medgan[{tracker}]'" in err, err
    assert not (tmp_run_dir / "checkpoints").exists()  # refused before training


def test_train_with_the_tracker_flag(tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"  # the file says "tracker": "none"; the flag overrides it
    assert main([*_argv("noise_to_image", out, 2), "--tracker", "tensorboard"]) == 0
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_demo_with_tensorboard(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--steps", "2", "--size", "16", "--quiet"]
    assert main([*argv, "--tracker", "tensorboard"]) == 0
    assert f"tensorboard --logdir {out / 'tensorboard'}" in capsys.readouterr().out
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_fuzzed_job_fields_parse_or_raise_config_error():
    """Any JSON in the new fields gives a config or a MedganError, never a traceback."""
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    from medgan.errors import MedganError

    values = st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-5, 5)
        | st.floats(allow_nan=True)
        | st.sampled_from(["paired", "swd", "tensorboard", "none", "dice", "x"]),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(["name", "kwargs", "p", "every", "metric", "data", "n", "policy"]),
                inner,
                max_size=3,
            )
        ),
        max_leaves=6,
    )
    fields = st.sampled_from(["adapter", "augment", "evaluate", "tracker", "loss"])

    @hypothesis.given(top=st.dictionaries(fields, values, max_size=3))
    @hypothesis.settings(max_examples=300, deadline=None)
    def check(top):
        try:
            ExperimentConfig.from_dict(_pix2pix() | top)
        except MedganError:
            pass

    check()
