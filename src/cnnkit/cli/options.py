"""Command-line options generated from the declarations in ``cnnkit.config`` (``cnnkit.options``): flags, choices,
help and the default shown come from the dataclass field; an option not given on the command line is not set, so
the dataclass's own default applies. Library messages name parameters (`lr`); ``to_flags`` shows the flags."""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

from cnnkit.errors import ConfigError
from cnnkit.options import Option, default_of, options_of

TYPES = {"int": int, "float": float, "str": str}
EXTRA_FLAGS = {"resume": "--resume RUN", "out": "--out", "data": "--data", "overwrite": "--overwrite",
               "choose": "--choose-threshold", "budget": "--budget", "dots": "--dots",
               "auto": "--auto"}


def _type(field: dataclasses.Field, declared: Option):
    if declared.parse is None:
        base = str(field.type).split("|")[0].strip()
        base = base.split("[")[1].split(",")[0].strip() if base.startswith("tuple[") else base
        return TYPES.get(base, str)

    def parse(text: str):
        try:
            return declared.parse(text)
        except ConfigError as e:  # argparse reports it as a usage error naming the flag
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = field.name
    return parse


def _help(field: dataclasses.Field, declared: Option, defaults: dict) -> str:
    default = defaults.get(field.name, default_of(field))
    if isinstance(default, Shown):
        return f"{declared.help} (default: {default.text})"
    if declared.negate or isinstance(default, bool) or default in (None, {}, ()):
        return declared.help
    return f"{declared.help} (default: {default})"


class Shown:
    """A command's default that its own code applies (``demo`` picks the model by data set): shown, not set."""

    def __init__(self, text: str):
        self.text = text


def add_options(parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = (),
                defaults: dict[str, Any] | None = None, grouped: bool = True,
                required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Add every declared option of ``cls`` (but ``skip``) to ``parser``, under its group's heading; returns the
    groups by heading.

    ``defaults`` are the command's own defaults where they differ from the declaration's (``demo``'s epochs)."""
    defaults, groups = defaults or {}, {}
    for name, (field, declared) in options_of(cls).items():
        if name in skip:
            continue
        if grouped and declared.group not in groups:
            groups[declared.group] = parser.add_argument_group(declared.group)
        target = groups[declared.group] if grouped else parser
        default = defaults.get(name, argparse.SUPPRESS)
        how: dict[str, Any] = {"dest": name, "help": _help(field, declared, defaults),
                               "default": argparse.SUPPRESS if isinstance(default, Shown) else default}
        if name in required:
            how["required"] = True
        if declared.negate:
            how.update(action="store_const", const=False)
        elif field.type == "bool":
            how.update(action="store_const", const=True)
        else:
            how.update(type=_type(field, declared), metavar=declared.metavar,
                       action="append" if declared.repeat else "store")
            if declared.choices is not None:
                how["choices"] = [c for c in declared.choices if c is not None]
        older = ["--" + old.replace("_", "-") for old in declared.renamed_from]
        if older:
            how["action"] = _Renamed
        target.add_argument(declared.flag_for(name), *older, **how)
    return groups


class _Renamed(argparse._StoreAction):
    """A value option given by its older flag: taken, with one line saying the new one."""

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string != self.option_strings[0]:
            print(f"cnnkit: {option_string} is now {self.option_strings[0]}; the old flag goes in the next release.",
                  file=sys.stderr)
        super().__call__(parser, namespace, values, option_string)


def default_out(data: str | Path, what: str) -> Path:
    """``runs/<data>-<what>``: where a command that reads a data set writes without ``--out``, named after the data
    as ``cnnkit train`` names its runs (a CSV of labels by its folder and its name: ``runs/photos-labels-audit``)."""
    resolved = Path(data).resolve()
    name = f"{resolved.parent.name}-{resolved.stem}" if resolved.is_file() else resolved.name
    return Path("runs") / f"{name}-{what}"


def values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of ``cls`` given on the command line (repeated dict-valued options merged)."""
    out = {}
    for name, (_, declared) in options_of(cls).items():
        if not hasattr(args, name):
            continue
        value = getattr(args, name)
        if declared.repeat and value and isinstance(value[0], dict):
            value = {k: v for item in value for k, v in item.items()}
        out[name] = value
    return out


def settings(args: argparse.Namespace, cls: type, **extra: Any):
    """``cls`` built from the command line's options (and ``extra``); its own defaults for the rest."""
    return cls(**{**values(args, cls), **extra})


def flag_table() -> dict[str, str]:
    """Parameter name -> command-line flag, for every declared option."""
    import cnnkit.config as config

    table = {}
    first = (config.TrainConfig, config.BaselineConfig, config.EvaluateConfig, config.DecisionConfig,
             config.SearchConfig, config.TsneConfig, config.PreviewConfig, config.ScanConfig)
    for cls in first:
        table.update({name: declared.flag_for(name) for name, (_, declared) in options_of(cls).items()})
    for cls in (getattr(config, n) for n in config.__all__ if n.endswith("Config")):  # every other command's too
        for name, (_, declared) in options_of(cls).items():
            table.setdefault(name, declared.flag_for(name))
    return {**table, **EXTRA_FLAGS}


def to_flags(message: str) -> str:
    """A library message as the command line's user reads it: `lr` -> `--lr`, "The 'lr' parameter" -> "--lr"."""
    table = flag_table()
    message = re.sub(r"`(\w+)`", lambda m: table.get(m[1], m[0]), message)
    return re.sub(r"The '(\w+)' parameter of \w+",
                  lambda m: f"The {table[m[1]]} option" if m[1] in table else m[0], message)
