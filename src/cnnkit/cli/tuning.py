"""``cnnkit lr-find``: sweep the learning rate of a training before running it, and say how to use the rate."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnkit._io import shown_path
from cnnkit.cli.options import add_options, default_out, settings, values

# TrainConfig's options that decide nothing in a sweep of one phase: its length, schedule and stopping, the
# fine-tuning phase (refused), distributed processes (refused), and the rate itself
NOT_SWEPT = ("lr", "epochs", "scheduler", "early_stopping", "finetune_epochs", "finetune_lr", "unfreeze", "precision",
             "devices", "num_nodes", "distributed")


def register(sub) -> None:
    from cnnkit.config import LrFindConfig, TrainConfig

    p = sub.add_parser("lr-find", help="learning-rate finder: train a fresh network one batch per rate, rates rising "
                                       "exponentially until the loss diverges; plot the loss and suggest a rate for "
                                       "train (nothing is kept)")
    p.add_argument("data", help="data folder, or a CSV with columns path,label[,split] (as for train)")
    p.add_argument("--out", help="folder for lr_find.json and lr_find.png, outside DATA (default: "
                                 "runs/DATA-lr-find)")
    add_options(p, LrFindConfig)
    add_options(p, TrainConfig, skip=NOT_SWEPT)
    p.set_defaults(func=cmd_lr_find)


def train_flags(given: dict) -> str:
    """Command-line flags that give ``train`` these TrainConfig settings, ``--model`` first."""
    import shlex

    from cnnkit.config import TrainConfig
    from cnnkit.options import options_of

    declared = options_of(TrainConfig)
    words = []
    for name in ("model", *sorted(set(given) - {"model"}, key=list(declared).index)):
        field, option = declared[name]
        flag, value = option.flag_for(name), given[name]
        if field.type == "bool":
            words += [flag] if value is (not option.negate) else []  # a flag sets True, or False (--no-cache)
        elif isinstance(value, dict):
            for key, item in value.items():
                words += [flag, f"{key}={_text(item)}"]
        else:
            words += [flag, "x".join(map(str, value)) if name == "image_size" else _text(value)]
    return " ".join(shlex.quote(word) for word in words)


def _text(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):  # a record's JSON gives lists back
        return ",".join(_text(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def cmd_lr_find(args: argparse.Namespace) -> None:
    import shlex

    from cnnkit.config import LrFindConfig, TrainConfig
    from cnnkit.training.lr_find import EXPLAINED, RULE, lr_find

    given = values(args, TrainConfig)
    out = Path(args.out or default_out(args.data, "lr-find"))
    found = lr_find(args.data, out, TrainConfig(**given), settings(args, LrFindConfig), progress=not args.quiet)
    print(f"Suggested learning rate: {found.suggestion:g} ({EXPLAINED[RULE]}; the lowest at lr "
          f"{found.lowest_loss_lr:.2g}" + ("" if found.diverged_at is None else
                                           f"; diverged at lr {found.lrs[found.diverged_at]:.2g}") + ")")
    if "head_solver" in found.train_changes and given.get("head_solver") != "epochs":
        print("The default solver fits a transfer head without any rate: train it by epochs at this rate with "
              "--head-solver epochs.")
    model = {"model": found.config.model}
    print(f"cnnkit train {shlex.quote(args.data)} {train_flags({**model, **given, **found.train_changes})}")
    print(f"Plot: {shown_path(out / 'lr_find.png')}  (every batch, and every rule's rate: "
          f"{shown_path(out / 'lr_find.json')})")
