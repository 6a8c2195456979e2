"""Name -> builder registries for models, losses, data sets and feature extractors.

Modelled on the timm/torchvision registries: a ``register`` decorator, ``build`` by name
with keyword arguments, ``available`` to list names. Duplicate and unknown names raise a
:class:`~medgan.errors.ConfigError` that lists what exists. ``build`` records the name and
keyword arguments on the object it returns (``obj.medgan_spec``) so a checkpoint can
rebuild it later.

Every registry also accepts an import path ``"package.module:Name"`` wherever it accepts a
name: a class (or a factory function) defined outside medgan, imported on first use. So
JSON experiment files, training checkpoints and pretrained folders can name your own
models without registering them first. Importing runs that module's code: load only files
whose names you trust, as with any import. Two guards keep a damaged or hostile file from
naming arbitrary callables: the path must name a class or a Python function (``os:system``
and other built-ins are refused), and in a registry with a ``base`` (models:
``torch.nn.Module``; losses: :class:`~medgan.losses.GANLoss`) a class must subclass it.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from medgan.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Spec:
    """A registry name plus the JSON-serialisable keyword arguments it was built with.

    Args:
        name: a registered name, or an import path ``"package.module:Name"``.
        kwargs: the keyword arguments of the builder.
    """

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"name": name, "kwargs": {...}}`` (a copy of the kwargs)."""
        return {"name": self.name, "kwargs": dict(self.kwargs)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | str, what: str = "spec") -> Spec:
        """A Spec from a bare name or ``{"name": ..., "kwargs": {...}}`` (kwargs optional).

        Raises:
            ConfigError: ``d`` is neither, or has other keys; the message names ``what``.
        """
        if isinstance(d, str):
            return cls(d, {})
        if not isinstance(d, dict) or "name" not in d:
            raise ConfigError(
                f"{what} must be a name or {{'name': ..., 'kwargs': {{...}}}}, got {d!r}"
            )
        unknown = set(d) - {"name", "kwargs"}
        if unknown:
            raise ConfigError(f"{what} has unknown keys {sorted(unknown)}; allowed: name, kwargs")
        return cls(str(d["name"]), dict(d.get("kwargs") or {}))


def is_import_path(name: str) -> bool:
    """Whether ``name`` is an import path ``"package.module:Name"`` rather than a registry
    name (registry names never contain a colon)."""
    return ":" in name


def import_object(path: str, what: str = "object") -> Any:
    """The object named by ``path``, ``"package.module:Qualified.Name"``, importing the
    module.

    Raises:
        ConfigError: a malformed path, or a module or attribute that cannot be imported;
            the message names ``what`` and the path and says what to install.
    """
    module, _, qualname = path.partition(":")
    if not module or not qualname or ":" in qualname:
        raise ConfigError(f"{what} {path!r}: an import path is 'package.module:Name'")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ConfigError(
            f"the {what} {path!r} cannot be imported ({e}); install the package that defines "
            "it, or put its module on the Python path"
        ) from None
    return obj


def import_path(obj: Any, what: str = "object") -> str:
    """The import path ``"package.module:Qualified.Name"`` of ``obj``, a class or function,
    the inverse of :func:`import_object`; refused (ConfigError, naming ``what``) for what
    another program could not import: objects defined in a script (``__main__``) or inside
    a function."""
    module, qualname = obj.__module__, obj.__qualname__
    if module == "__main__":
        raise ConfigError(
            f"{qualname} is defined in a script (__main__), which another program cannot "
            "import: move it into an importable module (a .py file on the Python path)"
        )
    if "<locals>" in qualname:
        raise ConfigError(
            f"{module}.{qualname} is defined inside a function: define it at the top level "
            "of its module so that it can be imported"
        )
    path = f"{module}:{qualname}"
    if import_object(path, what) is not obj:
        raise ConfigError(f"{path} does not import as the same object; define it at top level")
    return path


class Registry:
    """A mapping from names to builders (classes or functions) of one kind of object.

    Args:
        kind: what it holds, for messages ("model", "loss", ...).
        base: the class every builder named by an import path must subclass (a class, or
            the import path of one, read on first use so that a registry can name a base
            defined in a module that imports the registry); None accepts any class. A
            function named by an import path is accepted only when it is registered in
            this process (a file could otherwise name any function, e.g. subprocess.run).
    """

    def __init__(self, kind: str, base: type | str | None = None) -> None:
        self.kind = kind
        self._base = base
        self._builders: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: ``@MODELS.register("my_gen")`` above a class or factory function.

        Args:
            name: the name to register, non-empty and without ":" (ConfigError otherwise,
                and when another builder already holds it).
        """
        if not isinstance(name, str) or not name or is_import_path(name):
            raise ConfigError(
                f"{self.kind} name must be a non-empty string without ':', got {name!r}"
            )

        def decorator(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders and self._builders[name] is not builder:
                raise ConfigError(
                    f"{self.kind} name {name!r} is already registered "
                    f"(by {_qualname(self._builders[name])}); pick another name. "
                    f"Registered: {', '.join(self.available())}"
                )
            self._builders[name] = builder
            return builder

        return decorator

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests and notebooks that redefine a model); ConfigError when
        it is not registered."""
        self.get(name)
        del self._builders[name]

    def get(self, name: str) -> Callable[..., Any]:
        """The builder registered as ``name``, or the class or function that the import
        path ``"package.module:Name"`` names (see the module docstring for what is
        accepted)."""
        if is_import_path(name):
            return self._imported(name)
        try:
            return self._builders[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._builders, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(self.available())} "
                "(or an import path 'package.module:Name')"
            ) from None

    def _imported(self, path: str) -> Callable[..., Any]:
        obj = import_object(path, self.kind)
        if inspect.isclass(obj):
            base = self._base
            if isinstance(base, str):
                base = import_object(base, f"base class of {self.kind}s")
            if base is not None and not issubclass(obj, base):
                raise ConfigError(
                    f"{self.kind} {path!r} is not a subclass of {_qualname(base)}; a "
                    f"{self.kind} class must be one"
                )
        elif not inspect.isfunction(obj):
            raise ConfigError(
                f"{self.kind} {path!r} is a {type(obj).__name__}, not a class or a Python function"
            )
        elif self.name_of(obj) is None:
            # A function could be anything (subprocess.run): calling one named by a file
            # (checkpoint, pretrained folder) with the file's keyword arguments would run
            # whatever the file says. Only factories this process registered are called.
            raise ConfigError(
                f"{self.kind} {path!r} is a function that is not registered in this process; "
                f"import its module and register it (medgan's {self.kind} registry "
                "`register(name)`) before loading, or name a class instead"
            )
        return obj

    def build(self, name: str, **kwargs: Any) -> Any:
        """Build the object registered as ``name`` (or named by an import path) and record
        ``Spec(name, kwargs)`` on it."""
        builder = self.get(name)
        try:
            json.dumps(kwargs)
        except TypeError as e:
            raise ConfigError(
                f"{self.kind} {name!r}: keyword arguments must be JSON-serialisable so that "
                f"checkpoints can rebuild it ({e})"
            ) from None
        try:
            obj = builder(**kwargs)
        except TypeError as e:
            raise ConfigError(f"{self.kind} {name!r}: bad keyword arguments {kwargs}: {e}") from e
        try:  # object.__setattr__ also works on frozen dataclasses and nn.Modules
            object.__setattr__(obj, "medgan_spec", Spec(name, dict(kwargs)))
        except AttributeError:  # objects with __slots__: the spec is then simply unknown
            pass
        return obj

    def name_of(self, builder: Any) -> str | None:
        """The name ``builder`` (a class or function) is registered under, if any."""
        return next((n for n, b in self._builders.items() if b is builder), None)

    def available(self) -> list[str]:
        """The registered names, sorted (import paths are accepted besides these)."""
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders


def spec_of(obj: Any) -> Spec | None:
    """The ``Spec`` that :meth:`Registry.build` recorded on ``obj``, or ``None`` for
    hand-built objects."""
    return getattr(obj, "medgan_spec", None)


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


MODELS = Registry("model", base="torch.nn:Module")
LOSSES = Registry("loss", base="medgan.losses:GANLoss")
DATASETS = Registry("dataset", base="torch.utils.data:Dataset")
