"""The package's shape: no import cycle, every builder registered by `import medgan`, one
registry API that also takes import paths (in experiment files, checkpoints and `medgan sample`),
a CLI docstring that lists every command."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import medgan
from medgan.errors import ConfigError
from medgan.registry import DATASETS, LOSSES, MODELS, Registry, import_path

SRC = Path(medgan.__file__).parent


def _module_names() -> dict[str, Path]:
    names = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _imports(tree: ast.AST, modules: dict[str, Path]) -> set[str]:
    """Every medgan module a module imports, at top level or inside functions (a lazy
    import that closes a cycle is still a cycle), except under ``if TYPE_CHECKING:``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for stmt in child.orelse:
                    visit(stmt)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                for a in child.names:  # `from medgan import data` imports medgan.data
                    sub = f"{child.module}.{a.name}"
                    found.add(sub if sub in modules else child.module)
            visit(child)

    visit(tree)
    return {m for m in found if m in modules}


def _import_graph() -> dict[str, set[str]]:
    modules = _module_names()
    return {
        name: _imports(ast.parse(path.read_text(encoding="utf-8")), modules) - {name}
        for name, path in modules.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan 1972)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse(
        "import medgan.x\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    import medgan.y\ndef f():\n    from medgan import z\n"
    )
    modules = dict.fromkeys(["medgan", "medgan.x", "medgan.y", "medgan.z"], Path())
    assert _imports(tree, modules) == {"medgan.x", "medgan.z"}


def test_the_import_graph_has_no_cycle():
    graph = _import_graph()
    assert len(graph) > 50 and "medgan.metrics.features" in graph
    assert _cycles(graph) == []


def test_no_library_module_imports_the_package_facade():
    # medgan/__init__.py imports every subpackage: importing it back from one is a cycle
    # waiting for the next top-level import
    graph = _import_graph()
    assert [m for m, deps in graph.items() if "medgan" in deps] == []


def _registered_in_fresh_interpreter() -> dict[str, list[str]]:
    code = (
        "import json, medgan; from medgan.registry import MODELS, LOSSES, DATASETS; "
        "from medgan.metrics.features import FEATURES; "
        "print(json.dumps({r.kind: r.available() for r in (MODELS, LOSSES, DATASETS, FEATURES)}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_medgan_registers_every_builder():
    registered = _registered_in_fresh_interpreter()
    assert {"unet_segmenter", "cycle_generator", "dcgan_generator"} <= set(registered["model"])
    assert {"segmentation", "pix2pix", "cycle_gan", "hinge"} <= set(registered["loss"])
    assert {"ct_phantoms", "png_folder", "unpaired", "mni152_slices"} <= set(registered["dataset"])
    assert registered["feature extractor"] == ["domain", "inception"]
    # and a decorator somewhere in medgan registers nothing that `import medgan` misses
    assert registered["model"] == MODELS.available()
    assert registered["loss"] == LOSSES.available()
    assert registered["dataset"] == DATASETS.available()


@pytest.mark.parametrize(
    "namespace, builder, registry",
    [
        (medgan.models, "build", MODELS),
        (medgan.losses, "build", LOSSES),
        (medgan.data, "build", DATASETS),
        (medgan.metrics.features, "build_features", None),
    ],
)
def test_registries_share_one_api(namespace, builder, registry):
    for name in ("register", builder, "available"):
        assert callable(getattr(namespace, name)), f"{namespace.__name__}.{name}"
    if registry is not None:
        assert namespace.available() == registry.available()


def test_every_registry_builds_import_paths():
    g = medgan.models.build("medgan.models.dcgan:DCGANGenerator", image_size=16, base_channels=4)
    assert type(g).__name__ == "DCGANGenerator"
    assert g.medgan_spec.name == "medgan.models.dcgan:DCGANGenerator"  # what checkpoints store
    assert type(medgan.losses.build_loss("medgan.losses:Hinge")).__name__ == "Hinge"
    ds = medgan.data.build("medgan.data.phantoms:CTPhantomSlices", n=2, size=16)
    assert ds[0].shape == (1, 16, 16)
    extractor = medgan.metrics.build_features("medgan.metrics.domain:DomainEncoderFeatures")
    assert extractor(medgan.data.CTPhantomSlices(n=2, size=16)[0][None]).shape[0] == 1
    # the inverse: a class's import path, refused for what another program cannot import
    assert import_path(type(g)) == "medgan.models.dcgan:DCGANGenerator"

    class Local:
        pass

    with pytest.raises(ConfigError, match="inside a function"):
        import_path(Local)


def test_import_paths_in_an_experiment_file_reach_the_checkpoint_and_medgan_sample(tmp_path):
    """Every spec of a JSON experiment named by import path: the run trains, its checkpoint
    stores the paths, and ``medgan sample`` rebuilds the generator from them."""
    from medgan.cli import main

    size = {"image_size": 16, "base_channels": 4}
    config = {
        "data": {"name": "medgan.data.phantoms:CTPhantomSlices", "kwargs": {"n": 8, "size": 16}},
        "generator": {"name": "medgan.models.dcgan:DCGANGenerator", "kwargs": size},
        "discriminator": {"name": "medgan.models.dcgan:DCGANDiscriminator", "kwargs": size},
        "loss": {"name": "medgan.losses:Hinge", "kwargs": {"r1_weight": 0.5}},
        "train": {"steps": 1, "batch_size": 4, "device": "cpu"},
        "out_dir": str(tmp_path / "run"),
    }
    (tmp_path / "e.json").write_text(json.dumps(config))
    assert main(["train", "--config", str(tmp_path / "e.json"), "--quiet"]) == 0
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    saved = torch.load(ckpt, weights_only=True)
    assert saved["generator"]["spec"]["name"] == "medgan.models.dcgan:DCGANGenerator"
    assert saved["loss"]["name"] == "medgan.losses:Hinge"
    assert main(["sample", str(ckpt), "-n", "2", "--out", str(tmp_path / "s")]) == 0
    assert len(list((tmp_path / "s").glob("sample_*.png"))) == 2


@pytest.mark.parametrize(
    "registry, path, message",
    [
        (MODELS, "os:system", "not a class or a Python function"),  # a damaged checkpoint
        (MODELS, "builtins:eval", "not a class or a Python function"),
        (MODELS, "subprocess:Popen", "not a subclass of torch.nn"),
        (LOSSES, "medgan.models.dcgan:DCGANGenerator", "not a subclass of medgan.losses.GANLoss"),
        (MODELS, "no_such_package.nets:G", "cannot be imported.*install"),
        (MODELS, "medgan.models.dcgan:NoSuchClass", "cannot be imported"),
        (MODELS, "medgan.models.dcgan:", "package.module:Name"),
    ],
)
def test_import_paths_name_classes_or_functions_of_the_right_kind(registry, path, message):
    with pytest.raises(ConfigError, match=message):
        registry.get(path)


def test_registry_names_cannot_look_like_import_paths():
    with pytest.raises(ConfigError, match="without ':'"):
        Registry("thing").register("a:b")


def test_the_cli_docstring_lists_every_command():
    from medgan import cli

    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    commands = set(sub.choices)
    assert {"demo", "train", "sample", "fid", "enhance", "models"} <= commands
    listed = {
        word
        for line in (cli.__doc__ or "").splitlines()
        if line.startswith("medgan ")
        for word in line.split("  ")[0].replace("|", " ").split()[1:]
    }
    assert commands <= listed, f"not in the docstring of medgan.cli: {commands - listed}"
