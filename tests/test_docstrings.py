"""Every public class and function of the library, and every public method of its classes,
has a docstring: the API reference (mkdocs) is generated from them, and a symbol without one
is a symbol whose shapes, ranges and units a user has to read the code to learn.

And every argument is documented (issue #12 item 7): each parameter of a public function or
method, and of a public class's constructor, except self, cls, *args and **kwargs, is an
entry of the docstring's Google-style ``Args:`` section (mkdocstrings renders it as the
parameter table) or, in a docstring without one, named in backticks in the prose
(``"Scale ``x`` by ``k``."``). Overrides and subclasses may rely on the medgan base that
documents the same argument."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from types import ModuleType

import torch

import medgan

# A deprecated alias module: importing it warns, and it defines nothing of its own.
SKIPPED_MODULES = {"medgan.sampling"}

# Public symbols allowed to lack a docstring (none). A name listed here that has a docstring
# fails the test, so the set can only shrink.
KNOWN_MISSING: set[str] = set()


def _modules() -> Iterator[ModuleType]:
    """Every public module of the package (no component starting with `_`), imported."""
    yield medgan
    for info in pkgutil.walk_packages(medgan.__path__, prefix="medgan."):
        if info.name in SKIPPED_MODULES:
            continue
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        yield importlib.import_module(info.name)


def _own_doc(obj: object) -> str:
    """The docstring written on `obj` itself; a dataclass's or named tuple's generated
    signature line (``Name(a: int, b: float)``) is not a docstring."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    if inspect.isclass(obj) and doc.startswith(f"{obj.__name__}("):
        if dataclasses.is_dataclass(obj) or hasattr(obj, "_fields"):
            return ""
    return doc


def _method_doc(cls: type, name: str) -> str:
    """The docstring of method `name` of `cls`: its own, or that of the medgan base class
    method it overrides (as `inspect.getdoc` inherits it). Docstrings of torch's or the
    standard library's methods are not inherited: ``nn.Module.forward``'s says nothing about
    the shapes this model takes and returns."""
    attr = cls.__dict__[name]
    func = attr.fget if isinstance(attr, property) else getattr(attr, "__func__", attr)
    if (func.__doc__ or "").strip():
        return func.__doc__.strip()
    for base in cls.__mro__[1:]:
        if base.__module__.split(".")[0] != "medgan" or name not in _public_methods(base):
            continue  # a plain attribute (``needs_real_logits = False``) has no docstring
        doc = inspect.getdoc(getattr(base, name))
        if doc:
            return doc
    return ""


def _public_methods(cls: type) -> Iterator[str]:
    """Names of the public functions, class/static methods and properties `cls` defines."""
    for name, attr in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(attr, property):
            if attr.fget is not None:
                yield name
        elif isinstance(attr, (staticmethod, classmethod)) or inspect.isfunction(attr):
            yield name


def _undocumented() -> list[str]:
    missing = []
    for module in _modules():
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if getattr(obj, "__module__", None) != module.__name__:
                continue  # imported from elsewhere: checked where it is defined
            qualname = f"{module.__name__}.{name}"
            if not _own_doc(obj):
                missing.append(qualname)
            if inspect.isclass(obj):
                missing += [
                    f"{qualname}.{m}" for m in _public_methods(obj) if not _method_doc(obj, m)
                ]
    return sorted(set(missing))


def test_own_doc_ignores_generated_dataclass_docs():
    @dataclasses.dataclass
    class Plain:
        x: int

    @dataclasses.dataclass
    class Written:
        """Has one."""

        x: int

    assert _own_doc(Plain) == ""
    assert _own_doc(Written) == "Has one."


def test_methods_inherit_docs_from_medgan_bases_only():
    class Net(torch.nn.Module):
        def forward(self, x):
            return x

    class Documented(torch.nn.Module):
        def forward(self, x):
            """Identity."""
            return x

    class Hook(medgan.callbacks.Callback):
        def on_step_end(self, trainer, logs):
            pass

    class Loss(medgan.losses.GANLoss):
        @property
        def needs_real_logits(self):  # the base's is a plain bool, whose doc is not one
            return True

    assert _method_doc(Net, "forward") == ""  # torch's generic forward doc is not enough
    assert _method_doc(Documented, "forward") == "Identity."
    assert _method_doc(Hook, "on_step_end") == inspect.getdoc(medgan.callbacks.Callback.on_step_end)
    assert _method_doc(Loss, "needs_real_logits") == ""


def test_the_walk_finds_an_undocumented_method(monkeypatch):
    monkeypatch.delattr(medgan.models.unet.UNetGenerator.forward, "__doc__")
    assert "medgan.models.unet.UNetGenerator.forward" in _undocumented()


def test_every_public_symbol_has_a_docstring():
    missing = _undocumented()
    unexpected = [name for name in missing if name not in KNOWN_MISSING]
    fixed = sorted(KNOWN_MISSING - set(missing))
    assert not unexpected, f"{len(unexpected)} public symbols have no docstring:\n" + "\n".join(
        unexpected
    )
    assert not fixed, "documented now, remove from KNOWN_MISSING:\n" + "\n".join(fixed)


# --- every argument documented ------------------------------------------------------------

# Google-style sections whose entries name parameters (``name: ...``, ``name (type): ...``,
# ``a, b: ...``); a dataclass's fields may be its Attributes.
_ARG_SECTIONS = {
    "args",
    "arguments",
    "params",
    "parameters",
    "keyword args",
    "keyword arguments",
    "other parameters",
    "attributes",
}
_SECTION = re.compile(r"^(\s*)([A-Za-z][A-Za-z ]*):\s*$")
_ENTRY = re.compile(r"^\s*(\*{0,2}[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s*(?:\([^)]*\))?:")

# Public functions, methods and classes (their ``__init__``) whose arguments are allowed to be
# undocumented, as ``qualname:argument``. An entry that is documented now fails the test, so
# the set can only shrink.
# None left: every argument is documented.
KNOWN_MISSING_ARGS: set[str] = set()


def _args_entries(doc: str) -> set[str] | None:
    """Names of the entries of the docstring's Args-like sections; None when it has none."""
    lines = inspect.cleandoc(doc).splitlines()
    names: set[str] | None = None
    i = 0
    while i < len(lines):
        header = _SECTION.match(lines[i])
        if not header or header.group(2).strip().lower() not in _ARG_SECTIONS:
            i += 1
            continue
        names = names if names is not None else set()
        indent = len(header.group(1))
        entry_indent = None
        i += 1
        while i < len(lines):
            line = lines[i]
            if line.strip():
                this = len(line) - len(line.lstrip())
                if this <= indent:
                    break  # the section ended
                if entry_indent is None:
                    entry_indent = this
                if this == entry_indent and (entry := _ENTRY.match(line)):
                    names.update(n.strip().lstrip("*") for n in entry.group(1).split(","))
            i += 1
    return names


def _documents(doc: str, arg: str) -> bool:
    """Whether `doc` documents parameter `arg`: an entry of its Args section when it has one
    (a partial Args table misleads: a reader takes it as complete), else a mention in
    backticks (``arg`` or `arg`) in the prose of a docstring that has no Args section."""
    entries = _args_entries(doc)
    if entries is not None:
        return arg in entries
    return re.search(rf"`{re.escape(arg)}`", doc) is not None


def _checked_params(func: object) -> list[str]:
    """The parameters of `func` a docstring must name: all but self, cls, *args, **kwargs."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return []
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    skipped = ("self", "cls", "_cls")  # _cls: a named tuple's __new__
    return [p.name for p in params if p.kind not in variadic and p.name not in skipped]


def _constructor(cls: type) -> object | None:
    """The constructor `cls` itself defines (``__init__``, a dataclass's generated one, or a
    named tuple's ``__new__``); None when it inherits one, which is checked where it is
    defined (or is torch's or the standard library's)."""
    if getattr(cls, "_is_protocol", False):
        return None
    for name in ("__init__", "__new__"):
        if name in cls.__dict__:
            attr = cls.__dict__[name]
            return getattr(attr, "__func__", attr)
    return None


def _medgan_bases(cls: type) -> list[type]:
    """`cls`, then its medgan base classes, nearest first."""
    return [cls] + [c for c in cls.__mro__[1:] if c.__module__.split(".")[0] == "medgan"]


def _constructor_docs(cls: type) -> list[str]:
    """The docs that may document a constructor argument of `cls`: its own class and
    ``__init__`` docstrings, then those of its medgan base classes (a dataclass's inherited
    field is documented once, on the base that declares it)."""
    docs = []
    for c in _medgan_bases(cls):
        init = c.__dict__.get("__init__")
        docs.append(_own_doc(c) + "\n\n" + (getattr(init, "__doc__", None) or ""))
    return docs


def _method_docs(cls: type, name: str) -> list[str]:
    """The docs that may document an argument of method `name` of `cls`: its own (or
    inherited, :func:`_method_doc`), then those of the medgan base methods it overrides
    (an override documents what it does differently; the arguments' meaning is the
    contract of the base)."""
    docs = [_method_doc(cls, name)]
    for base in _medgan_bases(cls)[1:]:
        if name in base.__dict__:
            docs.append(_method_doc(base, name))
    return docs


def _undocumented_args() -> list[str]:
    """``qualname:argument`` of every argument of a public function, method or constructor
    that no docstring documents (:func:`_documents`)."""
    missing = []

    def check(qualname: str, func: object, docs: list[str]) -> None:
        missing.extend(
            f"{qualname}:{arg}"
            for arg in _checked_params(func)
            if not any(_documents(doc, arg) for doc in docs)
        )

    for module in _modules():
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            qualname = f"{module.__name__}.{name}"
            if inspect.isfunction(obj):
                check(qualname, obj, [_own_doc(obj)])
                continue
            init = _constructor(obj)
            if init is not None:
                check(qualname, init, _constructor_docs(obj))
            for method in _public_methods(obj):
                attr = obj.__dict__[method]
                if not isinstance(attr, property):
                    func = getattr(attr, "__func__", attr)
                    check(f"{qualname}.{method}", func, _method_docs(obj, method))
    return sorted(set(missing))


def test_args_sections_are_parsed_as_google_style():
    doc = """Summary with `x` in the prose.

    Args:
        real, fake: two batches ``(N, C, H, W)``.
        rng (torch.Generator): noise.
            A continuation line: not_an_arg: is not an entry.
        **kwargs: passed on.

    Returns:
        value: a Returns entry is not a parameter.
    """
    assert _args_entries(doc) == {"real", "fake", "rng", "kwargs"}
    assert _args_entries("One line naming ``x``.") is None
    assert _documents(doc, "fake") and not _documents(doc, "x")  # an Args table is complete
    assert not _documents(doc, "not_an_arg") and not _documents(doc, "value")
    assert _documents("Scale ``x`` by `k`.", "k") and not _documents("Scale x by k.", "k")


def test_the_walk_finds_an_undocumented_argument(monkeypatch):
    doc = medgan.losses.gradient_penalty.__doc__
    monkeypatch.setattr(medgan.losses.gradient_penalty, "__doc__", doc.replace("rng:", "gen:"))
    assert "medgan.losses.gradient_penalty:rng" in _undocumented_args()


def test_overrides_take_argument_docs_from_their_medgan_base():
    class Hook(medgan.callbacks.Callback):
        def on_train_end(self, trainer):
            """Does something else."""

    docs = _method_docs(Hook, "on_train_end")
    assert docs == ["Does something else.", _method_doc(medgan.callbacks.Callback, "on_train_end")]
    assert not _documents(docs[0], "trainer") and _documents(docs[1], "trainer")


def test_every_argument_is_documented():
    missing = _undocumented_args()
    unexpected = [name for name in missing if name not in KNOWN_MISSING_ARGS]
    fixed = sorted(KNOWN_MISSING_ARGS - set(missing))
    assert not unexpected, (
        f"{len(unexpected)} arguments are not documented (an ``Args:`` entry, or ``name`` in "
        "backticks in a docstring without an Args section):\n" + "\n".join(unexpected)
    )
    assert not fixed, "documented now, remove from KNOWN_MISSING_ARGS:\n" + "\n".join(fixed)
