"""Pretrained folders (hub layout), ONNX/TorchScript export, `medgan export`, `medgan sample
DIR`, what `import medgan` exposes, and the DICOM tutorial's code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn

import medgan
from medgan import models
from medgan.cli import main
from medgan.config import TrainConfig
from medgan.errors import CheckpointError, ConfigError
from medgan.generate import generate, load_generator
from medgan.pretrained import (
    CARD_MARK,
    export_checkpoint,
    export_onnx,
    export_torchscript,
    from_pretrained,
    read_config,
    save_pretrained,
)
from medgan.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "dcgan_2d": ("dcgan_generator", {"image_size": 16, "base_channels": 4, "latent_dim": 8}),
    "dcgan_3d": (
        "dcgan_generator",
        {"image_size": 16, "base_channels": 4, "latent_dim": 8, "spatial_dims": 3},
    ),
    "modern_conditional": (
        "modern_generator",
        {"image_size": 16, "base_channels": 8, "latent_dim": 8, "num_classes": 3},
    ),
}


def _tiny(key: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    name, kwargs = TINY[key]
    g = models.build(name, **kwargs)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so that buffers must round-trip
        for m in g.modules():
            if isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return g.eval()


def _outputs(g: nn.Module, n: int = 4) -> torch.Tensor:
    return generate(g, n, seed=3)


@pytest.mark.parametrize("key", sorted(TINY))
def test_from_pretrained_reproduces_the_generator_exactly(tmp_path, key):
    g = _tiny(key)
    folder = save_pretrained(g, tmp_path / "model")
    g2 = from_pretrained(folder)
    assert type(g2) is type(g) and not g2.training
    assert torch.equal(_outputs(g2), _outputs(g))
    for (k, a), (k2, b) in zip(g.state_dict().items(), g2.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    cfg = read_config(folder)
    assert cfg["model"] == {"name": TINY[key][0], "kwargs": TINY[key][1]}
    assert cfg["output"]["shape"] == list(_outputs(g, 1).shape[1:])
    assert cfg["inputs"]["num_classes"] == TINY[key][1].get("num_classes", 0)


def test_saving_keeps_the_generator_training_mode(tmp_path):
    g = _tiny("dcgan_2d").train()
    save_pretrained(g, tmp_path / "m")
    assert g.training


def test_folder_has_the_hub_layout_and_model_card(tmp_path):
    folder = save_pretrained(
        _tiny("modern_conditional"),
        tmp_path / "m",
        license="apache-2.0",
        description="Tiny test generator.",
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n")  # the hub reads the metadata only at the very start
    front, body = card.split("---\n")[1:3]  # the YAML block between the first two '---' lines
    assert body.startswith(CARD_MARK)
    assert "library_name: medgan" in front
    assert "license: apache-2.0" in front
    assert "pipeline_tag: unconditional-image-generation" in front
    assert '- "medgan"' in front and '- "modern_generator"' in front
    assert "Tiny test generator." in card and "(N, 8)" in card and "[0, 2]" in card
    # the weights load with plain safetensors (no medgan), with the metadata transformers sets
    state = safetensors.torch.load_file(folder / "model.safetensors")
    assert set(state) == set(_tiny("modern_conditional").state_dict())
    with open(folder / "model.safetensors", "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    assert header["__metadata__"]["format"] == "pt"
    assert len(header["__metadata__"]["medgan_sha256"]) == 64


def test_model_card_metadata_reads_with_huggingface_hub(tmp_path):
    hub = pytest.importorskip("huggingface_hub")
    folder = save_pretrained(_tiny("dcgan_2d"), tmp_path / "m", license="cc-by-4.0")
    data = hub.ModelCard.load(folder / "README.md").data.to_dict()
    assert data["library_name"] == "medgan"
    assert data["license"] == "cc-by-4.0"
    assert data["pipeline_tag"] == "unconditional-image-generation"
    assert "medical-imaging" in data["tags"]


def test_a_model_card_written_by_hand_is_kept(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "README.md").write_text("# my own card\n")
    save_pretrained(_tiny("dcgan_2d"), folder)
    assert (folder / "README.md").read_text() == "# my own card\n"


USER_MODULE = '''
import torch
from torch import nn


class TinyUserGenerator(nn.Module):
    """z (N, latent_dim) -> (N, 1, side, side) in [-1, 1]."""

    def __init__(self, latent_dim: int = 4, side: int = 8) -> None:
        super().__init__()
        self.latent_dim, self.side = latent_dim, side
        self.fc = nn.Linear(latent_dim, side * side)

    def forward(self, z):
        return torch.tanh(self.fc(z)).reshape(-1, 1, self.side, self.side)


def tiny_factory(latent_dim: int = 4, side: int = 8) -> nn.Module:
    return TinyUserGenerator(latent_dim, side)
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    pkg = tmp_path / "userpkg"
    pkg.mkdir()
    (pkg / "my_generators.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(pkg))
    import my_generators

    yield my_generators
    sys.modules.pop("my_generators", None)


def test_user_generator_class_round_trips_by_module_path(tmp_path, user_module):
    torch.manual_seed(0)
    g = user_module.TinyUserGenerator(latent_dim=6, side=8)
    folder = save_pretrained(g, tmp_path / "m", kwargs={"latent_dim": 6, "side": 8})
    assert read_config(folder)["model"] == {
        "name": "my_generators:TinyUserGenerator",
        "kwargs": {"latent_dim": 6, "side": 8},
    }
    sys.modules.pop("my_generators")  # from_pretrained must import it by itself
    g2 = from_pretrained(folder)
    assert type(g2).__qualname__ == "TinyUserGenerator" and type(g2) is not type(g)
    assert torch.equal(_outputs(g2), _outputs(g))


def test_registered_user_factory_round_trips_by_module_path(tmp_path, user_module):
    models.register("tiny_user_factory")(user_module.tiny_factory)
    try:
        g = models.build("tiny_user_factory", latent_dim=5)
        folder = save_pretrained(g, tmp_path / "m")
    finally:
        medgan.registry.MODELS.unregister("tiny_user_factory")
    assert read_config(folder)["model"]["name"] == "my_generators:tiny_factory"
    # a file may not make medgan call a function this process did not register
    with pytest.raises(CheckpointError, match="not registered in this process"):
        from_pretrained(folder)
    models.register("tiny_user_factory")(user_module.tiny_factory)
    try:
        assert torch.equal(_outputs(from_pretrained(folder)), _outputs(g))
    finally:
        medgan.registry.MODELS.unregister("tiny_user_factory")


def test_a_file_cannot_name_an_arbitrary_function_or_class():
    from medgan.registry import DATASETS, MODELS

    for path in ("subprocess:run", "os.path:join", "shutil:rmtree"):
        with pytest.raises(ConfigError, match="not registered|not a class"):
            MODELS.get(path)
    for path in ("subprocess:Popen", "builtins:eval", "os:system"):
        with pytest.raises(ConfigError):
            MODELS.get(path)
        with pytest.raises(ConfigError):
            DATASETS.get(path)


def test_user_generators_that_cannot_be_rebuilt_are_refused_at_save(tmp_path, user_module):
    g = user_module.TinyUserGenerator(latent_dim=6)
    with pytest.raises(ConfigError, match="does not rebuild this generator.*kwargs="):
        save_pretrained(g, tmp_path / "m")  # the default latent_dim (4) differs

    class Local(nn.Module):
        latent_dim = 2

        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 16)

        def forward(self, z):
            return self.fc(z).reshape(-1, 1, 4, 4)

    with pytest.raises(ConfigError, match="inside a function"):
        save_pretrained(Local(), tmp_path / "m")
    with pytest.raises(ConfigError, match="drop kwargs="):
        save_pretrained(_tiny("dcgan_2d"), tmp_path / "m", kwargs={"image_size": 32})
    assert not (tmp_path / "m").exists()


def test_a_missing_user_module_is_a_checkpoint_error(tmp_path, user_module):
    folder = save_pretrained(user_module.TinyUserGenerator(), tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model"]["name"] = "not_installed_pkg.gens:Gen"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"not_installed_pkg.*cannot be imported"):
        from_pretrained(folder)


def test_damaged_or_mismatched_files_are_refused_naming_the_file(tmp_path, monkeypatch):
    folder = save_pretrained(_tiny("dcgan_2d"), tmp_path / "m")
    weights = folder / "model.safetensors"
    good = weights.read_bytes()

    damaged = bytearray(good)
    damaged[-5] ^= 0x40  # one flipped bit in the last tensor's bytes
    weights.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: checksum mismatch"):
        from_pretrained(folder)

    weights.write_bytes(good[: len(good) // 2])  # truncated download
    with pytest.raises(CheckpointError, match=r"model\.safetensors cannot be read"):
        from_pretrained(folder)

    weights.write_bytes(b"not safetensors at all")
    with pytest.raises(CheckpointError, match=r"model\.safetensors cannot be read"):
        from_pretrained(folder)

    weights.write_bytes(good)
    monkeypatch.setenv("MEDGAN_MAX_BYTES", "1K")
    with pytest.raises(CheckpointError, match=r"model\.safetensors holds .*MEDGAN_MAX_BYTES"):
        from_pretrained(folder)
    monkeypatch.delenv("MEDGAN_MAX_BYTES")

    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["model"]["kwargs"]["base_channels"] = 8  # the config of another model
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"model\.safetensors \(with config\.json\).*shape"):
        from_pretrained(folder)

    cfg["model"]["kwargs"] = {**TINY["dcgan_2d"][1], "image_size": 16384, "base_channels": 4096}
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        from_pretrained(folder)  # refused on the meta device: nothing huge is allocated

    cfg_path.write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json is not valid JSON"):
        from_pretrained(folder)
    cfg_path.unlink()
    with pytest.raises(CheckpointError, match=r"config\.json does not exist"):
        from_pretrained(folder)


def test_nan_weights_are_refused(tmp_path):
    g = _tiny("dcgan_2d")
    with torch.no_grad():
        next(g.parameters())[0].fill_(float("nan"))
    with pytest.raises(CheckpointError, match="NaN"):
        save_pretrained(g, tmp_path / "m")


def _checkpoint(tmp_path: Path) -> tuple[Path, Trainer]:
    """A real training checkpoint whose EMA weights differ from the raw generator's."""
    torch.manual_seed(0)
    g = models.build("dcgan_generator", **TINY["dcgan_2d"][1])
    d = models.build("dcgan_discriminator", image_size=16, base_channels=4)
    trainer = Trainer(
        g,
        d,
        torch.rand(8, 1, 16, 16) * 2 - 1,
        config=TrainConfig(steps=1, batch_size=4, device="cpu", ema_halflife_kimg=1.0),
    )
    with torch.no_grad():
        for p in trainer.ema.parameters():
            p.add_(0.05)
    return trainer.save(tmp_path / "last.pt"), trainer


def test_export_from_a_checkpoint_takes_the_ema_weights_by_default(tmp_path):
    ckpt, trainer = _checkpoint(tmp_path)
    ema = export_checkpoint(ckpt, tmp_path / "ema")
    raw = export_checkpoint(ckpt, tmp_path / "raw", ema=False)
    assert torch.equal(_outputs(from_pretrained(ema)), _outputs(trainer.ema.eval()))
    assert torch.equal(_outputs(from_pretrained(raw)), _outputs(trainer.generator.eval()))
    assert read_config(ema)["source"] == {"checkpoint": "last.pt", "step": 0, "weights": "ema"}
    assert read_config(raw)["source"]["weights"] == "generator"


def _ort_outputs(path: Path, *args: torch.Tensor) -> torch.Tensor:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: a.numpy() for i, a in zip(session.get_inputs(), args, strict=True)}
    return torch.from_numpy(session.run(None, feeds)[0])


@pytest.mark.parametrize("key", ["dcgan_2d", "dcgan_3d", "modern_conditional"])
def test_onnx_export_matches_pytorch(tmp_path, key):
    for package in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(package)
    g = _tiny(key)
    done = export_onnx(g, tmp_path / "g.onnx")
    assert done.path.is_file() and done.max_abs_diff is not None and done.max_abs_diff <= 1e-4
    # an independent run on a batch size the export never saw (the batch axis is dynamic)
    z = torch.randn(5, 8)
    args = (z, torch.tensor([0, 1, 2, 0, 1])) if g.num_classes else (z,)
    with torch.no_grad():
        expected = g(*args)
    got = _ort_outputs(tmp_path / "g.onnx", *args)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() <= 1e-4


def test_onnx_export_of_an_image_to_image_generator(tmp_path):
    for package in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(package)
    torch.manual_seed(0)
    g = models.build("unet_generator", base_channels=4, depth=2).eval()
    with pytest.raises(ConfigError, match="input_shape"):
        export_onnx(g, tmp_path / "u.onnx")
    from medgan.pretrained import example_inputs

    export_onnx(g, tmp_path / "u.onnx", inputs=example_inputs(g, input_shape=(1, 16, 16)))
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        assert (_ort_outputs(tmp_path / "u.onnx", x) - g(x)).abs().max() <= 1e-4


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("key", ["dcgan_3d", "modern_conditional"])
def test_torchscript_export_matches_pytorch(tmp_path, key):
    g = _tiny(key)
    done = export_torchscript(g, tmp_path / "g.pt")
    assert done.max_abs_diff is not None and done.max_abs_diff <= 1e-4
    scripted = torch.jit.load(tmp_path / "g.pt")
    z = torch.randn(5, 8)
    args = (z, torch.tensor([2, 1, 0, 2, 1])) if g.num_classes else (z,)
    with torch.no_grad():
        assert (scripted(*args) - g(*args)).abs().max() <= 1e-4


def test_cli_export_then_sample_from_the_folder(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    ckpt, trainer = _checkpoint(tmp_path)
    folder, onnx, ts = tmp_path / "pretrained", tmp_path / "g.onnx", tmp_path / "g.pt"
    argv = ["export", str(ckpt), "--out", str(folder), "--onnx", str(onnx)]
    assert main([*argv, "--torchscript", str(ts), "--license", "mit"]) == 0
    printed = capsys.readouterr().out
    assert "pretrained folder" in printed and printed.count("outputs within") == 2
    assert onnx.is_file() and ts.is_file()
    assert "license: mit" in (folder / "README.md").read_text()
    # the folder and the checkpoint give the same samples (EMA weights by default)
    assert torch.equal(_outputs(load_generator(folder)), _outputs(load_generator(ckpt)))
    assert torch.equal(_outputs(load_generator(folder)), _outputs(trainer.ema.eval()))

    out = tmp_path / "samples"
    assert main(["sample", str(folder), "-n", "3", "--out", str(out)]) == 0
    assert len(list(out.glob("sample_*.png"))) == 3

    assert main(["sample", str(folder), "-n", "3", "--out", str(tmp_path / "s2"), "--no-ema"]) == 2
    assert "exported from EMA weights" in capsys.readouterr().err
    assert main(["export", str(ckpt)]) == 2
    assert "at least one of --out" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x")]) == 2
    assert "missing.pt does not exist" in capsys.readouterr().err
    # re-export of a pretrained folder keeps its provenance
    assert main(["export", str(folder), "--out", str(tmp_path / "again")]) == 0
    assert read_config(tmp_path / "again")["source"]["weights"] == "ema"


def test_cli_sample_refuses_a_folder_that_is_not_pretrained(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["sample", str(tmp_path / "empty"), "--out", str(tmp_path / "s")]) == 2
    assert "config.json does not exist" in capsys.readouterr().err


def test_import_medgan_exposes_every_subpackage_and_registers_every_model():
    code = textwrap.dedent(
        """
        import warnings
        warnings.filterwarnings("error", message="medgan.sampling")  # not imported by medgan
        import medgan
        from medgan.registry import LOSSES, MODELS
        for name in ("data", "models", "losses", "metrics", "tasks", "augment", "recipes",
                     "callbacks", "generate", "pretrained"):
            assert name in medgan.__all__, name
            getattr(medgan, name)
        assert "unet_segmenter" in MODELS and "segmentation" in LOSSES
        # the old name of medgan.generate still works, with a DeprecationWarning
        assert "sampling" not in medgan.__all__
        try:
            medgan.sampling
        except DeprecationWarning as w:
            assert "medgan.generate" in str(w)
        else:
            raise AssertionError("medgan.sampling did not warn")
        warnings.simplefilter("ignore")
        assert medgan.sampling.load_generator is medgan.generate.load_generator
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_tutorial_code_compiles_and_names_real_api():
    text = (ROOT / "docs" / "tutorial_dicom.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 5
    for block in blocks:
        compile(block, "tutorial_dicom.md", "exec")
    names = set(re.findall(r"\bmedgan(?:\.[A-Za-z_]\w*)+", "\n".join(blocks)))
    assert names
    for dotted in sorted(names):
        obj = medgan
        for part in dotted.split(".")[1:]:
            assert hasattr(obj, part), dotted
            obj = getattr(obj, part)
    for imported in re.findall(r"from (medgan[\w.]*) import ([\w, ]+)", "\n".join(blocks)):
        module = __import__(imported[0], fromlist=["_"])
        for attr in imported[1].split(","):
            assert hasattr(module, attr.strip()), f"{imported[0]}.{attr.strip()}"


def test_tutorial_runs_top_to_bottom_on_the_phantom_folder(tmp_path, monkeypatch):
    """The tutorial's Python blocks, in order, as one script; only the training budget is
    cut to 2 steps (the replaced line must exist, so the page and this test move together)."""
    text = (ROOT / "docs" / "tutorial_dicom.md").read_text()
    script = "\n".join(re.findall(r"```python\n(.*?)```", text, flags=re.S))
    budget = 'out_dir="runs/lung", max_minutes=30)'
    assert script.count(budget) == 1
    script = script.replace(budget, 'out_dir="runs/lung", max_minutes=30, steps=2)')
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "tutorial"}
    with pytest.warns(UserWarning, match="rank-deficient"):  # 40 held-out slices < 128-d
        exec(compile(script, "tutorial_dicom.md", "exec"), namespace)
    assert tuple(namespace["fake"].shape) == (256, 1, 64, 64)
    assert (tmp_path / "lung-gan" / "model.safetensors").is_file()


def _api_reference_objects() -> set[int]:
    """The ids of the objects docs/api renders: for each ``::: target`` directive, its
    ``members: [...]`` when given, else a module's ``__all__`` or, without one, the public
    classes and functions it defines; a class or function target is itself."""
    import importlib
    import inspect

    text = "\n".join(p.read_text() for p in sorted((ROOT / "docs" / "api").glob("*.md")))
    found: set[int] = set()
    for target, options in re.findall(r"^::: ([\w.]+)\n((?:    .*\n)*)", text, flags=re.M):
        try:
            obj = importlib.import_module(target)
        except ImportError:
            parent, _, name = target.rpartition(".")
            obj = getattr(importlib.import_module(parent), name)
        if not inspect.ismodule(obj):
            found.add(id(obj))
            continue
        members = re.search(r"members: \[(.*)\]", options)
        if members:
            names = [n.strip() for n in members.group(1).split(",")]
        elif hasattr(obj, "__all__"):
            names = list(obj.__all__)
        else:
            names = [n for n, v in vars(obj).items() if getattr(v, "__module__", None) == target]
        found.update(id(getattr(obj, n)) for n in names if not n.startswith("_"))
    return found


def test_the_api_reference_renders_every_public_class_and_function():
    import importlib
    import inspect
    import pkgutil
    import warnings

    rendered = _api_reference_objects()
    missing = []
    for info in pkgutil.walk_packages(medgan.__path__, prefix="medgan."):
        if info.name == "medgan.sampling" or any(p.startswith("_") for p in info.name.split(".")):
            continue  # the deprecated alias of medgan.generate defines nothing
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            public = not name.startswith("_") and getattr(obj, "__module__", None) == info.name
            if public and (inspect.isclass(obj) or inspect.isfunction(obj)):
                if id(obj) not in rendered:
                    missing.append(f"{info.name}.{name}")
    assert not missing, "not in docs/api (add a ::: directive or a members entry): " + ", ".join(
        missing
    )


def test_huggingface_hub_uploads_and_downloads_the_folder_offline(tmp_path, monkeypatch):
    """What the hub needs, without a network: ``upload_folder`` commits the folder's three
    files at the repository root (the commit is caught, the hub's YAML check skipped), and
    ``snapshot_download`` of a cached copy gives a folder ``from_pretrained`` loads."""
    hub = pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants, hf_api

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # any request would raise
    g = _tiny("modern_conditional")
    folder = save_pretrained(g, tmp_path / "m", license="mit")
    committed: list = []
    # (raising=False: older huggingface_hub versions have neither)
    monkeypatch.setattr(hf_api, "is_xet_available", lambda: False, raising=False)
    monkeypatch.setattr(hf_api.HfApi, "_validate_yaml", lambda *a, **kw: None, raising=False)
    monkeypatch.setattr(
        hf_api.HfApi, "create_commit", lambda self, **kw: committed.extend(kw["operations"])
    )
    hub.HfApi(token=False).upload_folder(repo_id="me/tiny-gan", folder_path=folder)
    assert sorted(op.path_in_repo for op in committed) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    # the download side: the hub's cache layout (refs/main -> snapshots/<commit>/files)
    repo = tmp_path / "cache" / "models--me--tiny-gan"
    commit = "0123456789abcdef0123456789abcdef01234567"
    for op in committed:
        target = repo / "snapshots" / commit / op.path_in_repo
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(op.path_or_fileobj).read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    path = hub.snapshot_download("me/tiny-gan", cache_dir=tmp_path / "cache", local_files_only=True)
    assert torch.equal(_outputs(from_pretrained(path)), _outputs(g))
