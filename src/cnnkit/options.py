"""Options declared once: each setting is a dataclass field carrying its default, allowed values and help.

The Python API takes the dataclasses (``TrainConfig(lr=0.01)``); the command line is generated from the same fields
(``cnnkit.cli.options``), and a test proves the two agree. Library messages name parameters as `name`; the CLI shows
the flag instead (``--name``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnnkit.errors import ConfigError, check_choice


@dataclass(frozen=True)
class Option:
    """How one setting is offered: help text, allowed values, and its command-line spelling."""

    help: str
    choices: tuple | None = None
    flag: str | None = None  # default: --name-with-dashes
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None  # command-line text -> value (default: from the field's type)
    group: str = "options"  # the heading it is listed under in --help
    negate: bool = False  # a flag that sets a True-by-default setting to False (--no-cache)
    repeat: bool = False  # the flag may be given several times; values are collected in a list
    renamed_from: tuple[str, ...] = ()  # older names of the option, still taken (flags and keywords) for a release

    def flag_for(self, name: str) -> str:
        return self.flag or "--" + name.replace("_", "-")


def option(default: Any = dataclasses.MISSING, help: str = "", *, default_factory: Any = dataclasses.MISSING,
           **how: Any) -> Any:
    """A dataclass field declared as an option (see ``Option`` for ``how``)."""
    metadata = {"option": Option(help, **how)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def options_of(cls: type) -> dict[str, tuple[dataclasses.Field, Option]]:
    """The declared options of a settings dataclass, in declaration order."""
    return {f.name: (f, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata}


def default_of(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def check_declared(settings: Any) -> None:
    """Every option with allowed values holds one of them (scikit-learn's wording, naming the parameter)."""
    owner = type(settings).__name__
    for name, (field, declared) in options_of(type(settings)).items():
        if declared.choices is not None and not (field.default is None and getattr(settings, name) is None):
            check_choice(name, getattr(settings, name), declared.choices, owner)


def check_range(settings: Any, name: str, low: float | None = None, high: float | None = None,
                strict_low: bool = False) -> None:
    """Raise ConfigError unless ``low <= value <= high`` (``low < value`` with ``strict_low``); None passes."""
    value = getattr(settings, name)
    if value is None:
        return
    ok = value == value and abs(value) != float("inf")  # NaN and infinities are never in range
    if low is not None:
        ok = ok and (value > low if strict_low else value >= low)
    if high is not None:
        ok = ok and value <= high
    if not ok:
        bound = " and ".join(b for b in (
            None if low is None else f"{'>' if strict_low else '>='} {low}",
            None if high is None else f"<= {high}") if b)
        raise ConfigError(f"Expected `{name}` {bound}. Received: {name}={value!r}")


def renamed(cls: type, values: dict[str, Any], warn: bool = True) -> dict[str, Any]:
    """``values`` with every older name of an option of ``cls`` (``renamed_from``) replaced by its current name; a
    warning names each (not for records written before the rename: ``warn`` False)."""
    current = {old: name for name, (_, declared) in options_of(cls).items() for old in declared.renamed_from}
    out = {}
    for key, value in values.items():
        if key in current:
            if warn:
                warnings.warn(f"`{key}` is now `{current[key]}`; the old name goes in the next release.",
                              DeprecationWarning, stacklevel=3)
            key = current[key]
        out[key] = value
    return out


def with_options(cls: type, name: str = "config") -> Callable:
    """Decorate ``fn(..., config: cls)`` so that it also takes ``cls``'s options as keywords (``fn(x, tta=8)``);
    its signature (and ``help()``) lists them with their declared defaults."""
    names = [f.name for f in dataclasses.fields(cls)] + [old for _, declared in options_of(cls).values()
                                                          for old in declared.renamed_from]

    def wrap(fn: Callable) -> Callable:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            given = renamed(cls, {k: kwargs.pop(k) for k in list(kwargs) if k in names})
            bound = signature.bind(*args, **kwargs)
            if given:
                base = bound.arguments.get(name)
                changed = getattr(base, "replace", None)
                bound.arguments[name] = (cls(**given) if base is None else changed(**given) if changed
                                         else dataclasses.replace(base, **given))
            return fn(*bound.args, **bound.kwargs)

        extra = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default_of(f), annotation=f.type)
                 for f in dataclasses.fields(cls)]
        call.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *extra])
        return call

    return wrap
