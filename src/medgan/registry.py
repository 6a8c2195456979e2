"""Name -> builder registries for models, losses and data sources.

Modelled on the timm/torchvision registries: a ``register`` decorator, ``build`` by name
with keyword arguments, ``available`` to list names. Duplicate and unknown names raise a
:class:`~medgan.errors.ConfigError` that lists what exists. ``build`` records the name and
keyword arguments on the object it returns (``obj.medgan_spec``) so a checkpoint can
rebuild it later.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from medgan.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Spec:
    """A registry name plus the JSON-serialisable keyword arguments it was built with."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kwargs": dict(self.kwargs)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | str, what: str = "spec") -> Spec:
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


class Registry:
    """A mapping from names to builders (classes or functions) of one kind of object."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: ``@MODELS.register("my_gen")`` above a class or factory function."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{self.kind} name must be a non-empty string, got {name!r}")

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
        """Remove a name (for tests and notebooks that redefine a model)."""
        self.get(name)
        del self._builders[name]

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._builders[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._builders, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(self.available())}"
            ) from None

    def build(self, name: str, **kwargs: Any) -> Any:
        """Build the object registered as ``name`` and record ``Spec(name, kwargs)`` on it."""
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
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders


def spec_of(obj: Any) -> Spec | None:
    """The ``Spec`` recorded by :meth:`Registry.build`, or ``None`` for hand-built objects."""
    return getattr(obj, "medgan_spec", None)


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


MODELS = Registry("model")
LOSSES = Registry("loss")
DATASETS = Registry("dataset")
